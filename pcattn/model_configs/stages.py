"""The checks shared by configs whose network is a list of stages."""

from __future__ import annotations


def check_stages(config) -> None:
    """Turn ``config.channels``, ``config.blocks`` and ``config.head_hidden`` (lists from YAML)
    into tuples, and check that there is one ``blocks`` entry per ``channels`` entry."""
    config.channels, config.blocks = tuple(config.channels), tuple(config.blocks)
    config.head_hidden = tuple(config.head_hidden)
    if len(config.channels) != len(config.blocks) or not config.channels:
        raise ValueError(f"channels {config.channels} and blocks {config.blocks} must be "
                         "non-empty and of the same length (one entry per stage)")


def check_split_stages(config, parts: str) -> None:
    """Turn ``config.channels``, ``config.depths``, ``config.<parts>`` (``"groups"`` or
    ``"heads"``: what each stage's channels are split into) and ``config.head_hidden`` into
    tuples, and check one entry per stage in each and each stage's channels divisible by
    its ``parts``."""
    config.channels, config.depths = tuple(config.channels), tuple(config.depths)
    split = tuple(getattr(config, parts))
    setattr(config, parts, split)
    config.head_hidden = tuple(config.head_hidden)
    if not config.channels or not len(config.channels) == len(config.depths) == len(split):
        raise ValueError(f"channels {config.channels}, depths {config.depths} and {parts} "
                         f"{split} need one entry per stage each")
    bad = [(c, g) for c, g in zip(config.channels, split) if c % g]
    if bad:
        raise ValueError(f"each stage's channels must be divisible by its {parts}, got "
                         f"(channels, {parts}) {bad}")
