"""Models side by side under one time budget (``pcattn bench budget``).

Each config is trained once per seed, in this process and one run at a time (two trainings
on the same cores would slow each other and spoil the comparison), with
``train.time_budget`` set to the budget, ``train.seed`` to the seed and ``data.seed`` left
as the config has it, so every model and seed holds out the same validation clouds. The
runs go seed by seed (every config at seed 0, then every config at seed 1...), so a sweep
stopped early still compares every model. After each run ``budget.csv`` (a row per run)
and ``budget.md`` (a row per config: mean and range over the seeds) are rewritten in place,
atomically; a run that fails is a ``failed`` row with its reason and the sweep goes on.

A config may carry its own overrides, after a colon:
``configs/nw_modelnet40.yaml:model.name=nw_cls:model.k=8`` runs that file with those values
(applied after the common ``--set``); a ``model.name`` override is added to its label
(``nw_modelnet40-nw_cls``), which names its runs ``<label>-s<seed>``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import glob
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from pcattn.bench.budget_report import write_report

DEFAULT_GLOB = "configs/*_modelnet40.yaml"  # the mesh config ends in _mesh.yaml: not matched
SWEEP_KEYS = ("train.seed", "train.time_budget", "train.run_name", "train.out_dir")
_OVERRIDE = re.compile(r":(?=[A-Za-z_]\w*\.[A-Za-z_]\w*=)")  # a ':' that starts key=value


@dataclass(frozen=True)
class Entry:
    """One ``--configs`` item: a YAML file, its own overrides and the label of its runs."""

    path: str
    overrides: tuple[str, ...]
    label: str


def parse_entries(specs: list[str]) -> list[Entry]:
    """``CONFIG[:SECTION.KEY=VALUE]...`` items as entries with distinct labels."""
    entries, seen = [], set()
    for spec in specs:
        path, *overrides = _OVERRIDE.split(spec)
        if not Path(path).is_file():
            raise FileNotFoundError(f"--configs: config file not found: {path}")
        label = Path(path).stem + "".join(f"-{o.partition('=')[2]}" for o in overrides
                                          if o.startswith("model.name="))
        base, n = label, 1
        while label in seen:
            n += 1
            label = f"{base}-{n}"
        seen.add(label)
        entries.append(Entry(path, tuple(overrides), label))
    return entries


def default_configs() -> list[str]:
    found = sorted(glob.glob(DEFAULT_GLOB))
    if not found:
        raise FileNotFoundError(f"no {DEFAULT_GLOB} under {Path.cwd()}; give --configs")
    return found


def command_line(configs: list[str], budget: float, seeds: list[int], sets: list[str],
                 out: str) -> str:
    """The command that repeats this sweep, defaults written out."""
    parts = ["pcattn", "bench", "budget", "--configs", *configs, "--budget", f"{budget:g}",
             "--seeds", *map(str, seeds)] + (["--set", *sets] if sets else []) + ["--out", out]
    return shlex.join(parts)


def run(configs: list[str] | None = None, *, budget: float | None, seeds: list[int] = (0,),
        sets: list[str] = (), out: str | None = None) -> list[dict]:
    """Train every config at every seed under ``budget`` minutes; write ``out/budget.csv``
    and ``out/budget.md`` after each run; return the rows."""
    if budget is None or budget <= 0:
        raise ValueError(f"bench budget needs --budget MINUTES > 0, got {budget}")
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct integers, got {seeds}")
    for item in sets:
        if item.partition("=")[0] in SWEEP_KEYS:
            raise ValueError(f"--set {item}: the sweep sets {', '.join(SWEEP_KEYS)} (use "
                             "--seeds, --budget, --out)")
    configs = list(configs or default_configs())
    entries = parse_entries(configs)
    out = out or f"runs/budget-{datetime.datetime.now():%Y-%m-%d-%H%M}"
    if (Path(out) / "budget.csv").exists():
        raise ValueError(f"{out} already holds a sweep (budget.csv); give another --out")
    header = {"command": command_line(configs, budget, seeds, list(sets), out),
              "started": datetime.datetime.now().isoformat(sep=" ", timespec="seconds"),
              "budget": budget, "entries": entries}
    runs = {e.label: _load(e, list(sets)) for e in entries}
    for label, loaded in runs.items():
        if isinstance(loaded, str):
            print(f"{label}: {loaded}; its runs are recorded as failed", flush=True)
    print(f"{len(entries)} configs x {len(seeds)} seeds, {budget:g} min each, one after "
          f"another; tables in {out}/budget.md", flush=True)
    rows: list[dict] = []
    for seed in seeds:
        for entry in entries:
            row = train_one(entry, runs[entry.label], seed, budget=budget, out=out)
            rows.append(row)
            print(run_line(row), flush=True)
            write_report(rows, Path(out), header)
    return rows


def _load(entry: Entry, sets: list[str]):
    """The entry's RunConfig, or why it cannot be built (one line)."""
    from pcattn.engine.config import load_config

    try:
        run = load_config(entry.path, [*sets, *entry.overrides])
    except Exception as err:  # noqa: BLE001  (a broken config fails its runs, not the sweep)
        return _one_line(err)
    return run


def train_one(entry: Entry, loaded, seed: int, *, budget: float, out: str) -> dict:
    """Train one (config, seed) and return its row; an error is a failed row."""
    from pcattn.engine.interrupt import TrainingInterrupted

    row = {"config": entry.label, "model": "", "seed": seed, "status": "failed",
           "overrides": " ".join(entry.overrides), "reason": ""}
    if isinstance(loaded, str):
        return {**row, "reason": loaded}
    train_cfg = dataclasses.replace(loaded.train, seed=seed, time_budget=budget,
                                    run_name=f"{entry.label}-s{seed}", out_dir=out)
    run = dataclasses.replace(copy.deepcopy(loaded), train=train_cfg)
    row.update(model=run.model_name, val_fraction=run.data.val_fraction)
    t0 = time.perf_counter()
    try:
        from pcattn.engine.loop import train

        metrics = train(run, progress=False)
    except (KeyboardInterrupt, TrainingInterrupted):
        raise
    except Exception as err:  # noqa: BLE001  (any failure of one run is that run's row)
        return {**row, "reason": _one_line(err), "wall_seconds": time.perf_counter() - t0}
    return {**row, **metrics_row(metrics), "status": "ok"}


def metrics_row(metrics: dict) -> dict:
    """The table's fields of one run's ``metrics.json``."""
    best, test = metrics.get("best") or {}, metrics.get("test") or {}
    scores = best.get("metrics") or {}
    return {"model": metrics["model"], "parameters": metrics["parameters"],
            "epochs": metrics["epochs"], "best_epoch": best.get("epoch"),
            "eval_split": metrics["eval_split"],
            "accuracy": scores.get("overall_accuracy", scores.get("point_accuracy")),
            "mean_class_accuracy": scores.get("mean_class_accuracy"),
            "miou": scores.get("miou", scores.get("instance_miou")),
            "test_accuracy": test.get("overall_accuracy", test.get("point_accuracy")),
            "test_miou": test.get("miou", test.get("instance_miou")),
            "test_mean_class_accuracy": test.get("mean_class_accuracy"),
            "clouds_per_second": metrics["clouds_per_second"],
            "wall_seconds": metrics["wall_seconds"], "device": metrics.get("device", ""),
            "run_dir": metrics["run_dir"]}


def run_line(row: dict) -> str:
    """One printed line per finished run."""
    head = f"{row['config']} seed {row['seed']}:"
    if row["status"] != "ok":
        return f"{head} FAILED: {row['reason']}"
    acc = row["accuracy"]
    acc = "n/a" if acc is None else f"{100 * acc:.1f} %"
    if row.get("miou") is not None:
        acc += f", mIoU {100 * row['miou']:.1f} %"
    return (f"{head} {row['eval_split']} accuracy {acc}, {row['epochs']} epochs, "
            f"{row['clouds_per_second']:.1f} clouds/s, {row['wall_seconds']:.0f} s")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}"[:300]
