"""The names a ``data:`` section chooses from, in a module that imports nothing, so that a
config error in that section is reported without importing torch or torch_geometric.
``pcattn.data.base`` and ``pcattn.data.transforms`` use these names (a test keeps
``PRESET_NAMES`` equal to the presets ``transforms`` defines)."""

SAMPLINGS = ("auto", "first", "random", "fps")  # how point layouts are cut to num_points
PRESET_NAMES = ("modelnet", "modelnet_dgcnn", "modelnet_so3", "shapenetpart")  # data.augment
