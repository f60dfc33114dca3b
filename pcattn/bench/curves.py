"""What the benchmarks of time and peak memory against the number of points
(:mod:`pcattn.bench.attention`, :mod:`pcattn.bench.scale`) share: the check of what to
measure, and their files (a CSV of the rows, a Markdown table, a log-log chart)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable


def write_curves(rows: list[dict], out: Path, name: str, *, series: str, table: list[str],
                 time_title: str, style: Callable[[str], str] = lambda label: "o-") -> None:
    """``out/<name>.csv`` (every row), ``out/<name>.md`` (the lines ``table``) and
    ``out/<name>.png``: ``seconds`` and ``peak_mb`` against ``n``, log-log, one line per
    value of ``rows[i][series]`` drawn in ``style(value)`` (rows without a time left out)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [series])
        w.writeheader()
        w.writerows(rows)
    (out / f"{name}.md").write_text("\n".join(table) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for label in dict.fromkeys(r[series] for r in rows):
        pts = [r for r in rows if r[series] == label and r["seconds"] == r["seconds"]]
        for ax, key in zip(axes, ("seconds", "peak_mb")):
            ax.plot([r["n"] for r in pts], [max(r[key], 1e-3) for r in pts], style(label),
                    label=label)
    for ax, title in zip(axes, (time_title, "peak memory (MB)")):
        ax.set(xscale="log", yscale="log", xlabel="points N (one cloud)", title=title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=120)
    plt.close(fig)


def prepare(chosen: list[str] | None, known: tuple[str, ...], what: str, out: str | Path
            ) -> tuple[list[str], Path]:
    """The ``chosen`` names of ``what`` to measure (all of ``known`` for ``None``), checked,
    and the folder ``out``, made."""
    names = list(chosen or known)
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown {what} {bad}; choose from {list(known)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return names, out
