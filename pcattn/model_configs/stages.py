"""The check shared by configs whose network is a list of stages (``channels``, ``blocks``)."""

from __future__ import annotations


def check_stages(config) -> None:
    """Turn ``config.channels``, ``config.blocks`` and ``config.head_hidden`` (lists from YAML)
    into tuples, and check that there is one ``blocks`` entry per ``channels`` entry."""
    config.channels, config.blocks = tuple(config.channels), tuple(config.blocks)
    config.head_hidden = tuple(config.head_hidden)
    if len(config.channels) != len(config.blocks) or not config.channels:
        raise ValueError(f"channels {config.channels} and blocks {config.blocks} must be "
                         "non-empty and of the same length (one entry per stage)")
