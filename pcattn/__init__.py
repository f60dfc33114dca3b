"""pcattn: attention models for point clouds and graphs, in pure PyTorch."""

__version__ = "0.1.0"
