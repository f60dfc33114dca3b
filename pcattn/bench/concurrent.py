"""Trainings side by side (``pcattn bench concurrent``): a run alone, then ``runs`` copies of
it started at once, each a fresh ``pcattn train`` process; the wall time of each and its
ratio to the lone run.

With ``train.threads: auto`` the trainings split the cores (:mod:`pcattn.engine.threads`);
two trainings on two cores should then each take about twice the lone time, where two
processes that each spin a thread per core take many times longer. ``--threads`` sets
``train.threads`` of every run (for example ``2`` to see the oversubscribed case).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _command(config: str, out_dir: Path, epochs: int, threads: str) -> list[str]:
    return [sys.executable, "-m", "pcattn", "train", "--config", config, "--no-progress",
            "--set", f"train.epochs={epochs}", f"train.out_dir={out_dir}",
            f"train.threads={threads}", "train.eval_every=1000"]


def _start(config: str, out_dir: Path, epochs: int, threads: str) -> subprocess.Popen:
    return subprocess.Popen(_command(config, out_dir, epochs, threads),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, started: float, what: str) -> float:
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise ValueError(f"the {what} training failed (exit {proc.returncode}): "
                         f"{err.strip().splitlines()[-1] if err.strip() else ''}")
    return seconds


def run(config: str, *, epochs: int = 2, runs: int = 2, threads: str = "auto",
        as_json: bool = False) -> dict:
    """Time ``config`` alone and ``runs`` times at once; prints and returns the times."""
    from pcattn.data.info import prepare
    from pcattn.engine.config import load_config

    prepare(load_config(config).data, progress=False)  # no run builds the data cache
    with tempfile.TemporaryDirectory(prefix="pcattn-bench-") as tmp:
        t0 = time.perf_counter()
        lone = _finish(_start(config, Path(tmp) / "lone", epochs, threads), t0, "lone")
        t0 = time.perf_counter()
        procs = [_start(config, Path(tmp) / f"run{i}", epochs, threads) for i in range(runs)]
        together = [_finish(p, t0, f"concurrent #{i}") for i, p in enumerate(procs)]
    result = {"config": config, "epochs": epochs, "threads": threads, "lone_s": lone,
              "concurrent_s": together, "ratios": [t / lone for t in together]}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{config}, {epochs} epochs, train.threads={threads}: alone {lone:.1f} s; "
              f"{runs} at once " + ", ".join(f"{t:.1f} s ({t / lone:.2f}x)" for t in together))
    return result
