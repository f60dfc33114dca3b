"""Datasets (synthetic default, benchmarks, users' files), transforms and caches."""

from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.folder import FolderDataset
from pcattn.data.io import read_cloud, read_off
from pcattn.data.modelnet import MODELNET10_CLASSES, MODELNET40_CLASSES, ModelNet
from pcattn.data.shapenetpart import (
    SHAPENETPART_CATEGORIES,
    SHAPENETPART_PARTS,
    ShapeNetPart,
    category_part_mask,
    part_to_category,
)
from pcattn.data.synthetic import PART_CATEGORIES, SHAPE_CLASSES, SyntheticParts, SyntheticShapes

__all__ = [
    "DataFormatError",
    "DatasetNotFoundError",
    "FolderDataset",
    "MODELNET10_CLASSES",
    "MODELNET40_CLASSES",
    "ModelNet",
    "PART_CATEGORIES",
    "SHAPENETPART_CATEGORIES",
    "SHAPENETPART_PARTS",
    "SHAPE_CLASSES",
    "ShapeNetPart",
    "SyntheticParts",
    "SyntheticShapes",
    "category_part_mask",
    "part_to_category",
    "read_cloud",
    "read_off",
]
