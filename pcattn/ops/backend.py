"""Which optional fast backends are importable."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def has_open3d() -> bool:
    """True when ``open3d.core`` imports (its kNN and FPS are used on the CPU)."""
    try:
        import open3d.core  # noqa: F401
    except ImportError:
        return False
    return True
