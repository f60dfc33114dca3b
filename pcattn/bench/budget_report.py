"""The tables of ``pcattn bench budget``: ``budget.csv`` (a row per run) and ``budget.md``
(a row per config: mean and ``[min-max]`` over its seeds that finished)."""

from __future__ import annotations

import csv
import datetime
import io
import os
import statistics
from pathlib import Path

from pcattn.fileio import atomic_write_text

CSV_FIELDS = ("config", "model", "seed", "status", "parameters", "epochs", "best_epoch",
              "eval_split", "val_fraction", "accuracy", "mean_class_accuracy", "miou",
              "test_accuracy", "test_mean_class_accuracy", "test_miou", "clouds_per_second", "wall_seconds", "device",
              "run_dir", "overrides", "reason")


def split_label(eval_split: str, val_fraction: float) -> str:
    """Where a run's best accuracy was measured."""
    if eval_split != "val":
        return f"{eval_split} split"
    if val_fraction:
        return f"validation split (data.val_fraction={val_fraction:g})"
    return "validation split (the dataset's own)"


def summarize(rows: list[dict]) -> list[dict]:
    """One summary per config, in the order the configs first appear.

    Each has ``config``, ``model``, ``parameters``, ``runs`` / ``failed`` (counts),
    ``epochs`` and ``clouds_per_second`` (means), ``accuracy`` (overall, or per point for
    segmenters), ``mean_class_accuracy``, ``miou``, ``test_accuracy`` and ``test_miou`` as
    ``(mean, min, max)`` or None, and ``split``; the numbers are over the
    config's ``ok`` runs only.
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["config"], []).append(row)
    out = []
    for config, group in groups.items():
        ok = [r for r in group if r["status"] == "ok"]
        first = ok[0] if ok else group[0]
        out.append({
            "config": config, "model": first.get("model") or "", "runs": len(group),
            "failed": len(group) - len(ok), "parameters": first.get("parameters"),
            "epochs": _mean([r["epochs"] for r in ok]),
            "accuracy": _spread([r["accuracy"] for r in ok]),
            "mean_class_accuracy": _spread([r["mean_class_accuracy"] for r in ok]),
            "miou": _spread([r.get("miou") for r in ok]),
            "test_accuracy": _spread([r["test_accuracy"] for r in ok]),
            "test_miou": _spread([r.get("test_miou") for r in ok]),
            "clouds_per_second": _mean([r["clouds_per_second"] for r in ok]),
            "split": split_label(first["eval_split"], first.get("val_fraction") or 0.0)
                     if ok else "",
        })
    return out


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _spread(values: list) -> tuple[float, float, float] | None:
    values = [v for v in values if v is not None]
    return (statistics.fmean(values), min(values), max(values)) if values else None


def percent(spread: tuple[float, float, float] | None) -> str:
    """``91.2 [90.1-92.3]`` (one value: ``91.2``; none: ``-``)."""
    if spread is None:
        return "-"
    mean, lo, hi = (100 * v for v in spread)
    return f"{mean:.1f}" if lo == hi else f"{mean:.1f} [{lo:.1f}-{hi:.1f}]"


def format_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in CSV_FIELDS})
    return buf.getvalue()


def format_markdown(rows: list[dict], header: dict) -> str:
    """``budget.md``: the command, date and machine, then a row per config."""
    now = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    lines = ["# Models under one time budget", "",
             f"Command: `{header['command']}`", "",
             f"Started {header['started']}, updated {now}; {len(rows)} runs done.", "",
             f"Machine: {_machine(rows)}.", "",
             f"Each run: `train.time_budget={header['budget']:g}` (minutes), `train.seed` from "
             "--seeds, `data.seed` as its config has it; runs one after another. Accuracies in "
             "% (mean [min-max] over seeds) are those of `best.pt` on the split named in the "
             "last column (segmenters: accuracy per point, and mIoU); the test columns are "
             "`best.pt` evaluated once on the test split.", ""]
    summaries = summarize(rows)
    seg = any(s["miou"] or s["test_miou"] for s in summaries)
    miou_head, test_miou_head = (" mIoU % |", " test mIoU % |") if seg else ("", "")
    lines += [f"| config | model | parameters | runs | epochs (mean) | accuracy % | "
              f"mean class acc. % |{miou_head} test acc. % (best.pt) |{test_miou_head} "
              "clouds/s | numbers from |",
              "|---|---|---:|---:|---:|---:|---:|" + ("---:|" if seg else "") + "---:|"
              + ("---:|" if seg else "") + "---:|---|"]
    for s in summaries:
        runs = f"{s['runs']}" + (f" ({s['failed']} failed)" if s["failed"] else "")
        params = "-" if s["parameters"] is None else f"{s['parameters']:,}"
        epochs = "-" if s["epochs"] is None else f"{s['epochs']:.1f}"
        rate = "-" if s["clouds_per_second"] is None else f"{s['clouds_per_second']:.1f}"
        miou, test_miou = ((f" {percent(s['miou'])} |", f" {percent(s['test_miou'])} |")
                           if seg else ("", ""))
        lines.append(f"| {s['config']} | {s['model'] or '-'} | {params} | {runs} | {epochs} | "
                     f"{percent(s['accuracy'])} | {percent(s['mean_class_accuracy'])} |{miou} "
                     f"{percent(s['test_accuracy'])} |{test_miou} {rate} | "
                     f"{s['split'] or '-'} |")
    configs = [f"- {e.label}: `{e.path}`" + (f" with `{' '.join(e.overrides)}`"
                                             if e.overrides else "")
               for e in header["entries"]]
    failed = [f"- {r['config']} seed {r['seed']}: {r['reason']}" for r in rows
              if r["status"] != "ok"]
    lines += ["", "Configs:", *configs]
    if failed:
        lines += ["", "Failed runs:", *failed]
    return "\n".join(lines) + "\n"


def _machine(rows: list[dict]) -> str:
    import torch

    devices = sorted({r["device"] for r in rows if r.get("device")})
    names = [f"{d} ({torch.cuda.get_device_name(d)})" if d.startswith("cuda") else d
             for d in devices]
    return (f"{os.cpu_count()} CPUs, torch {torch.__version__}, device "
            f"{', '.join(names) or 'not known yet'}")


def write_report(rows: list[dict], out: Path, header: dict) -> None:
    """Rewrite ``out/budget.csv`` and ``out/budget.md`` atomically."""
    atomic_write_text(format_csv(rows), out / "budget.csv")
    atomic_write_text(format_markdown(rows, header), out / "budget.md")
