"""Device names in configs and on the command line: checked early, resolved with a message
that lists the devices this machine has."""

from __future__ import annotations

import re

_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
FORMS = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def check_device_name(name, key: str = "device") -> str:
    """``name`` if it is a device name pcattn accepts (no torch import: a typo in a config
    fails at once), else a ValueError naming ``key`` and the valid forms."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{key} must be {FORMS}, got {name!r}")
    return name


def available_devices() -> list[str]:
    """The devices this process can use: ``cpu``, ``cuda:0``..., ``mps``."""
    import torch

    out = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def resolve_device(name: str, key: str = "device", local_rank: int = 0):
    """The ``torch.device`` that ``name`` means here (``auto``: a GPU, else the CPU; under
    torchrun ``auto`` and ``cuda`` take GPU ``local_rank``); a device this machine lacks is a
    ValueError listing the ones it has."""
    import torch

    check_device_name(name, key)
    have = available_devices()
    wanted = name
    if wanted == "auto":
        wanted = "cuda" if len(have) > 1 and have[1].startswith("cuda") else "cpu"
    if wanted == "cuda":
        wanted = f"cuda:{local_rank}"
    if wanted not in have:
        raise ValueError(f"{key}={name!r} is not available on this machine; available: "
                         f"auto, {', '.join(have)}")
    return torch.device(wanted)
