"""The layout fixtures of datafixtures.py, registered for the tests of pcattn.data."""

from datafixtures import (  # noqa: F401
    modelnet_h5,
    modelnet_normal,
    modelnet_off,
    shapenet_h5,
    shapenet_normal,
)
