"""Datasets (synthetic default, benchmarks, users' files), transforms and caches.

The names below load on first use, so importing one module of this package does not
import the readers of every format.
"""

from pcattn._lazy import lazy_exports

_EXPORTS = {
    "pcattn.data.errors": ("DataFormatError", "DatasetNotFoundError"),
    "pcattn.data.folder": ("FolderDataset",),
    "pcattn.data.io": ("read_cloud", "read_off"),
    "pcattn.data.modelnet": ("MODELNET10_CLASSES", "MODELNET40_CLASSES", "ModelNet"),
    "pcattn.data.shapenetpart": ("SHAPENETPART_CATEGORIES", "SHAPENETPART_PARTS",
                                 "ShapeNetPart", "category_part_mask", "part_to_category"),
    "pcattn.data.split": ("HeldOut", "stratified_split"),
    "pcattn.data.synthetic": ("PART_CATEGORIES", "SHAPE_CLASSES", "SyntheticParts",
                              "SyntheticShapes"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
