"""Row chunking, with recomputation above a memory budget, for local attention blocks.

Local attention builds a dozen ``[M, K, C]`` intermediates. Two things decide their cost on
a CPU: every elementwise pass over them goes out to DRAM unless they are small, and a
tensor above glibc's mmap threshold (32 MB at most) comes as fresh pages from the kernel,
faulted in (and zeroed) on every allocation. Processing rows in chunks of ``2**19``
elements (2 MB in float32) keeps one chunk's passes in the cache and its allocations on the
heap: about 30 % less time per block forward + backward than one pass, measured with
``pcattn bench blocks`` at every stage of the ModelNet40 Point Transformer. Chunk sizes,
measured on the whole ModelNet40 Point Transformer training step (steps alternated in one
process): ``2**19`` and ``2**20`` 2-4 % faster than ``2**18``, ``2**17`` 6 % and ``2**21``
10 % slower.

Chunks are recomputed in backward (activation checkpointing) only when the whole
``[M, K, C]`` would exceed a memory budget (``recompute_above`` elements); below it the
chunks keep their intermediates, as one pass would, and nothing is computed twice.

The node tables that chunks gather from (keys and values, positions) are cut into windows
where the neighbourhoods allow it (kNN within clouds stored one after another): each chunk
reads the window of the clouds its rows belong to, so the gradient of a gather, a zero-filled
table plus a scatter, is window-sized instead of a full table per chunk.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from pcattn.nn.checks import check_int
from pcattn.ops.gather import pad_zero_row

CPU_CHUNK = 2**19  # elements of [R, K, C] per chunk on the CPU ("auto")
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
    tables: tuple[Tensor, ...] = (), index: int | None = None,
) -> tuple[Tensor | None, ...]:
    """``fn(*row_args[rows], *tables, *shared_args)`` over chunks of rows, outputs
    concatenated.

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
        tables: node tables ``[N, *]`` that ``row_args[index]`` (neighbour indices into
            ``[0, N)``, ``-1`` padded) points into; each chunk gets them with a zero row
            appended (:func:`~pcattn.ops.gather.pad_zero_row`), cut to the window of rows
            its neighbours lie in (:func:`table_windows`), and its indices shifted to match.
        index: position in ``row_args`` of the neighbour indices (needed with ``tables``).
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
    if tables and index is None:
        raise ValueError("chunked_rows: tables need index=, the position of the neighbour "
                         "indices in row_args")
    windows = _chunk_tables(tables, row_args[index], rows) if tables else None
    for c, chunk in enumerate(zip(*pieces)):
        chunk = list(chunk)
        window: tuple = ()
        if windows is not None:
            start, window = windows[c]
            if start:
                local = chunk[index]
                chunk[index] = torch.where(local < 0, local, local - start)
        args = tuple(chunk) + tuple(window) + tuple(shared_args)
        if recompute:
            outs = checkpoint(fn, *args, use_reentrant=False)
        else:
            outs = fn(*args)
        for part, out, k in zip(parts, outs, keep):
            if k:
                part.append(out)
    return tuple((torch.cat(p) if len(p) > 1 else p[0]) if k else None
                 for p, k in zip(parts, keep))


def table_windows(idx: Tensor, rows: int, num_nodes: int) -> list[tuple[int, int]]:
    """Windows of table rows for chunks of ``rows`` rows of ``idx``.

    Returns ``(first chunk, first table row)`` per window: window ``w`` serves the chunks
    from its first one up to the next window's, and its table rows run from its first row
    up to the next window's (the last up to ``num_nodes``); together the windows cover the
    table once. Every neighbour of a chunk's rows lies in its window. Two chunks share a
    window when their neighbourhoods overlap: one window, the whole table, when they all
    do, and under ``torch.compile`` or on ``meta`` tensors, where the neighbourhoods cannot
    be read (a compiled graph would break on the read-back).

    Shape:
        idx: [M, K] (``-1`` padded, entries in ``[0, num_nodes)``)
    """
    m, k = idx.shape
    n_chunks = -(-m // rows) if m else 0
    if n_chunks < 2 or k == 0 or idx.device.type == "meta" or torch.compiler.is_compiling():
        return [(0, 0)]
    pad = n_chunks * rows - m
    lo = torch.where(idx < 0, num_nodes, idx).amin(1)  # [M]: lowest neighbour per row
    hi = idx.amax(1) + 1  # [M]: past the highest (0 for rows with none)
    lo = torch.nn.functional.pad(lo, (0, pad), value=num_nodes).view(n_chunks, rows).amin(1)
    hi = torch.nn.functional.pad(hi, (0, pad), value=0).view(n_chunks, rows).amax(1)
    before = hi.cummax(0).values  # [n_chunks]: past the highest row chunks <= c read
    after = lo.flip(0).cummin(0).values.flip(0)  # lowest row chunks >= c read
    # a window may start at chunk c + 1 when nothing before it reads at or past `before[c]`
    # and nothing from it on reads below
    cuts = (before[:-1] <= after[1:]).nonzero().flatten().tolist()
    starts = before[:-1].tolist()
    return [(0, 0)] + [(c + 1, starts[c]) for c in cuts]


def _chunk_tables(tables: tuple[Tensor, ...], idx: Tensor, rows: int
                  ) -> list[tuple[int, tuple[Tensor, ...]]]:
    """Per chunk: the first table row of its window, and each table's window with a zero
    row appended. The windows are a ``split`` of each table, so the tables' gradients are
    assembled by one concatenation, not summed from full-size pieces."""
    n = tables[0].shape[0]
    windows = table_windows(idx, rows, n)
    n_chunks = max(1, -(-idx.shape[0] // rows))
    bounds = [start for _, start in windows] + [n]
    sizes = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    pieces = [t.split(sizes) if len(sizes) > 1 else (t,) for t in tables]
    out = []
    firsts = [first for first, _ in windows] + [n_chunks]
    for w, (first, start) in enumerate(windows):
        padded = tuple(pad_zero_row(p[w]) for p in pieces)
        out.extend([(start, padded)] * (firsts[w + 1] - first))
    return out
