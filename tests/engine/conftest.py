"""The fixtures of enginefixtures.py, registered for the tests of pcattn.engine."""

from enginefixtures import classifier_run, data_root, segmenter_run  # noqa: F401
