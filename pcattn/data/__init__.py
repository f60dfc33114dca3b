"""Datasets (synthetic default, benchmarks, users' files), transforms and caches."""

from pcattn.data.synthetic import PART_CATEGORIES, SHAPE_CLASSES, SyntheticParts, SyntheticShapes

__all__ = ["PART_CATEGORIES", "SHAPE_CLASSES", "SyntheticParts", "SyntheticShapes"]
