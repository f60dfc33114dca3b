"""Does a layer attend? Per layer and head, how far its attention rows are from uniform.

For each query row ``p`` (its weights over the ``n`` sources it reads, renormalised to sum to
1) two numbers, averaged over the rows that read at least two sources:

- normalised entropy ``-sum_j p_j log p_j / log n``: 1 = uniform, 0 = all weight on one source;
- top-1 share ``max_j p_j``: ``1 / n`` when uniform, 1 when one source takes all.

:func:`focus_stats` gives them for one forward's layers, :func:`merge_focus` pools them over
clouds (weighted by rows), :func:`focus_table` prints them, :func:`plot_focus` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from pcattn.nn.attention_map import LayerAttention


class Focus(NamedTuple):
    """One layer's focus: ``entropy [H]`` and ``top1 [H]`` (means over ``rows`` rows),
    ``uniform_top1`` (the mean ``1 / n``: uniform attention's top-1 share) and
    ``sources`` (the mean ``n``)."""

    name: str
    entropy: Tensor
    top1: Tensor
    uniform_top1: float
    sources: float
    rows: int


def layer_focus(layer: LayerAttention) -> Focus:
    """The focus of one layer's attention rows (every kind but ``channel``).

    Shape:
        -> Focus(entropy [H], top1 [H])
    """
    rows, _, w = layer.map.to_sparse()  # [nnz], [nnz, H]
    w = w.detach().double().cpu().clamp_min(0)
    rows = torch.unique(rows.cpu(), return_inverse=True)[1]  # [nnz] in 0..R-1
    r, h = int(rows.max()) + 1 if rows.numel() else 0, w.shape[1]
    total = torch.zeros(r, h, dtype=w.dtype).index_add_(0, rows, w)  # [R, H]
    p = w / total[rows].clamp_min(1e-300)  # [nnz, H]
    plogp = torch.where(p > 0, p * torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))
    entropy = -torch.zeros(r, h, dtype=w.dtype).index_add_(0, rows, plogp)  # [R, H]
    top1 = torch.zeros(r, h, dtype=w.dtype).scatter_reduce_(
        0, rows[:, None].expand(-1, h), p, reduce="amax")  # [R, H]
    n = torch.bincount(rows, minlength=r).double()  # [R]
    keep = (n >= 2) & (total > 0).all(dim=1)
    if not keep.any():
        nan = torch.full((h,), float("nan"))
        return Focus(layer.name, nan, nan, float("nan"), float(n.mean()) if r else 0.0, 0)
    normalised = entropy[keep] / torch.log(n[keep])[:, None]  # [R', H]
    return Focus(layer.name, normalised.mean(0).float(), top1[keep].mean(0).float(),
                 float((1 / n[keep]).mean()), float(n[keep].mean()), int(keep.sum()))


def focus_stats(layers: Sequence[LayerAttention]) -> list[Focus]:
    """:func:`layer_focus` of every layer that weighs points."""
    return [layer_focus(la) for la in layers if la.map.kind != "channel"]


def merge_focus(per_cloud: Sequence[Sequence[Focus]]) -> list[Focus]:
    """The focus of several clouds' forwards (same layers), each layer's means weighted by
    its rows."""
    out = []
    for same in zip(*per_cloud):
        rows = torch.tensor([float(f.rows) for f in same])
        wt = rows / rows.sum().clamp_min(1)

        def mean(values):
            return sum(float(a) * v for a, v in zip(wt, values))

        out.append(Focus(same[0].name, mean([f.entropy for f in same]),
                         mean([f.top1 for f in same]), mean([f.uniform_top1 for f in same]),
                         mean([f.sources for f in same]), int(rows.sum())))
    return out


def focus_table(stats: Sequence[Focus], title: str = "") -> str:
    """A text table: per layer the mean over heads and the most / least focused head."""
    lines = [title] if title else []
    lines.append(f"{'layer':<28} {'reads':>6} {'entropy':>8} {'min head':>13} "
                 f"{'top-1':>6} {'uniform':>8} {'max head':>13}")
    for i, f in enumerate(stats):
        e, t = f.entropy, f.top1
        lines.append(f"{f'{i}: {f.name}'[:28]:<28} {f.sources:>6.1f} {float(e.mean()):>8.3f} "
                     f"{_at(e, int(e.argmin())):>13} {float(t.mean()):>6.3f} "
                     f"{f.uniform_top1:>8.3f} {_at(t, int(t.argmax())):>13}")
    lines.append("entropy: normalised, 1 = uniform, 0 = one source; top-1: share of the top "
                 "source (uniform: 1/reads); means over heads, then the extreme head")
    return "\n".join(lines)


def _at(values: Tensor, i: int) -> str:
    return f"{float(values[i]):.3f} (h{i})" if values.numel() > 1 else "-"


def most_selective_heads(focus: Focus, count: int) -> list[int]:
    """The ``count`` heads (channels, groups) of lowest normalised entropy."""
    return torch.argsort(focus.entropy)[:count].tolist()


def plot_focus(runs: Mapping[str, Sequence[Focus]], title: str = ""):
    """Normalised entropy and top-1 share per layer (mean over heads, bars to the extreme
    heads), one colour per run; top-1 of uniform attention dotted. The axes zoom onto the
    values (attention near uniform differs in the second decimal)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    lowest, highest = 1.0, 0.0
    for c, (label, stats) in enumerate(runs.items()):
        colour = f"C{c}"
        x = torch.arange(len(stats)).double() + 0.1 * (c - (len(runs) - 1) / 2)
        for ax, key in ((ax_e, "entropy"), (ax_t, "top1")):
            vals = [getattr(f, key) for f in stats]
            mid = [float(v.mean()) for v in vals]
            lo = [m - float(v.min()) for m, v in zip(mid, vals)]
            hi = [float(v.max()) - m for m, v in zip(mid, vals)]
            ax.errorbar(x, mid, yerr=[lo, hi], fmt="o-", color=colour, capsize=3, ms=4,
                        label=label)
        ax_t.plot(x, [f.uniform_top1 for f in stats], ":", color=colour, lw=1)
        lowest = min([lowest] + [float(f.entropy.min()) for f in stats])
        highest = max([highest] + [float(f.top1.max()) for f in stats])
    named = [[f.name for f in stats] for stats in runs.values()]
    depth = max(len(n) for n in named)
    same = all(n == named[0] for n in named)
    ticks = [f"{i}: {n}" for i, n in enumerate(named[0])] if same else [
        f"layer {i}" for i in range(depth)]
    for ax, name in ((ax_e, "normalised entropy (1 = uniform)"),
                     (ax_t, "top-1 share (dotted: uniform)")):
        ax.set_xticks(range(depth), ticks, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(name, fontsize=9)
        ax.grid(alpha=0.3)
    ax_e.set_ylim(max(0.0, math.floor((lowest - 0.02) * 20) / 20), 1.005)
    ax_t.set_ylim(0, min(1.0, highest * 1.15 + 0.01))
    ax_e.legend(fontsize=7, loc="lower left")
    fig.suptitle(title or "focus per layer: mean over heads, bars to the extreme heads",
                 fontsize=10)
    fig.tight_layout()
    return fig
