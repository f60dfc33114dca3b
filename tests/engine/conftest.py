"""The fixtures of enginefixtures.py, registered for the tests of pcattn.engine."""

from enginefixtures import data_root  # noqa: F401
