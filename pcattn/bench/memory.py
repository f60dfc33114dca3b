"""Peak memory of a piece of work: on the CPU the process's peak resident set (``VmHWM``),
reset to the current resident set before the work through ``/proc/self/clear_refs`` (Linux;
elsewhere the process's ``ru_maxrss``, which cannot be reset); on CUDA
``torch.cuda.max_memory_allocated``. Run each case in a fresh process: memory freed by one
case stays resident and would hide the next one's peak."""

from __future__ import annotations

import math
import resource

import torch


def peak_reset(device: torch.device) -> float:
    """Start measuring a peak on ``device``; returns the level (MB) to pass to
    :func:`peak_since`."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    try:  # hand the heap's free memory back first, so the next peak shows in the RSS
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        return proc_mb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_since(base: float, device: torch.device) -> float:
    """The peak memory (MB) on ``device`` above ``base`` since :func:`peak_reset`."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20 - base
    peak = proc_mb("VmHWM")
    if math.isnan(peak):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak - base


def proc_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB; NaN elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
