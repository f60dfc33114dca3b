"""Errors raised by the data readers: each names the file (and line or key) and the fix."""

from __future__ import annotations


class DataFormatError(ValueError):
    """A file exists but its content is not what its format promises."""


class DatasetNotFoundError(FileNotFoundError):
    """No known layout under a root, or a file that a split list names is missing."""


class SplitMissingError(DatasetNotFoundError):
    """A layout is there, but not the file of one of its splits."""
