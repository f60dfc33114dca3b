"""Row chunking, with recomputation above a memory budget, for local attention blocks.

Local attention builds a dozen ``[M, K, C]`` intermediates. Two things decide their cost on
a CPU: every elementwise pass over them goes out to DRAM unless they are small, and a
tensor above glibc's mmap threshold (32 MB at most) comes as fresh pages from the kernel,
faulted in (and zeroed) on every allocation. Processing rows in chunks of ``2**18``
elements (1 MB in float32) keeps one chunk's passes in the cache and its allocations on the
heap: about 30 % less time per block forward + backward than one pass, measured with
``pcattn bench blocks`` at every stage of the ModelNet40 Point Transformer.

Chunks are recomputed in backward (activation checkpointing) only when the whole
``[M, K, C]`` would exceed a memory budget (``recompute_above`` elements); below it the
chunks keep their intermediates, as one pass would, and nothing is computed twice.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from pcattn.nn.checks import check_int

CPU_CHUNK = 2**18  # elements of [R, K, C] per chunk on the CPU ("auto")
DEVICE_CHUNK = 2**22  # ... on other devices, when recomputing ("auto")
RECOMPUTE_ABOVE = 2**23  # default budget: elements of [M, K, C] kept for backward


def check_chunking(block: str, chunk_size, recompute_above) -> tuple[int | str | None,
                                                                      int | None]:
    """A block's ``chunk_size`` (an int >= 1, ``"auto"`` or None) and ``recompute_above``
    (an int >= 0 or None), checked; one error naming the block otherwise."""
    if chunk_size != "auto":
        chunk_size = check_int(block, "chunk_size", chunk_size, optional=True)
    return chunk_size, check_int(block, "recompute_above", recompute_above, minimum=0,
                                 optional=True)


def chunked_rows(
    fn: Callable[..., tuple[Tensor, ...]], row_args: tuple[Tensor, ...],
    shared_args: tuple, *, chunk_size: int | str | None, row_elems: int,
    keep: tuple[bool, ...], recompute_above: int | None = RECOMPUTE_ABOVE,
) -> tuple[Tensor | None, ...]:
    """``fn(*row_args[rows], *shared_args)`` over chunks of rows, outputs concatenated.

    Args:
        fn: returns a tuple of tensors whose first dimension is the chunk's rows.
        row_args: tensors split along dim 0 (queries, centres, ``idx``...).
        shared_args: passed whole to every chunk (feature tables, all positions, flags).
        chunk_size: elements of the ``[R, K, C]`` intermediates per chunk; ``"auto"``:
            :data:`CPU_CHUNK` on the CPU, and elsewhere one chunk, or
            :data:`DEVICE_CHUNK` when recomputing; ``None``: one chunk, never recomputed.
        row_elems: elements per row of the intermediates (``K * C``).
        keep: which outputs to concatenate and return (the others give ``None``), so
            attention weights are only gathered when asked for.
        recompute_above: when gradients are on and the whole ``[M, K, C]`` has more
            elements than this, each chunk keeps only its inputs and is recomputed in
            backward, so the intermediates of one chunk exist at a time; ``None``: never.
    """
    if not (chunk_size is None or chunk_size == "auto"
            or (isinstance(chunk_size, int) and not isinstance(chunk_size, bool)
                and chunk_size >= 1)):
        raise ValueError(f"chunk_size must be a positive int, 'auto' or None, got "
                         f"{chunk_size!r}")
    m = row_args[0].shape[0]
    total = m * row_elems
    recompute = (torch.is_grad_enabled() and chunk_size is not None
                 and recompute_above is not None and total > recompute_above)
    if chunk_size == "auto":
        on_cpu = row_args[0].device.type == "cpu"
        chunk_size = CPU_CHUNK if on_cpu else (DEVICE_CHUNK if recompute else None)
    if chunk_size is None or m == 0 or total <= chunk_size:
        chunk_size = max(1, total)  # one chunk
    rows = max(1, chunk_size // max(1, row_elems))  # R
    parts: list[list[Tensor]] = [[] for _ in keep]
    # split, not slices: one concatenation in backward instead of a zero-filled
    # full-size gradient per chunk
    pieces = [a.split(rows) if m else (a,) for a in row_args]
    for chunk in zip(*pieces):
        args = tuple(chunk) + tuple(shared_args)
        if recompute:
            outs = checkpoint(fn, *args, use_reentrant=False)
        else:
            outs = fn(*args)
        for part, out, k in zip(parts, outs, keep):
            if k:
                part.append(out)
    return tuple((torch.cat(p) if len(p) > 1 else p[0]) if k else None
                 for p, k in zip(parts, keep))
