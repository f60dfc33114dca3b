"""What a run reports each epoch: one console line, ``metrics.csv`` and TensorBoard events."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tqdm import tqdm

from pcattn.fileio import atomic_write_text


def scalars(metrics: dict, prefix: str) -> dict[str, float]:
    """The top-level numbers of a metrics dict, keys prefixed (``test/overall_accuracy``)."""
    return {f"{prefix}/{k}": float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def format_duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def epoch_line(row: dict, epochs: int, best_metric: str, eval_split: str) -> str:
    """``epoch 3/8  loss 0.912  train acc ...  test ...  lr 1.2e-03  45.1 clouds/s  0m31s``."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train/loss']:.4f}",
             f"train {best_metric} {row[f'train/{best_metric}']:.4f}"]
    shown = [k for k in row if k.startswith(f"{eval_split}/") and k != f"{eval_split}/num_samples"]
    if shown:
        parts.append(f"{eval_split} " + " ".join(
            f"{k.split('/', 1)[1]} {row[k]:.4f}" for k in shown))
    parts += [f"lr {row['lr']:.2e}", f"{row['clouds_per_second']:.1f} clouds/s",
              format_duration(row["elapsed_seconds"])]
    return "  ".join(parts)


class RunLog:
    """Writes ``metrics.csv`` (rewritten atomically each epoch: a row per epoch, columns the
    union of what was reported) and TensorBoard events when ``tensorboard`` is installed."""

    def __init__(self, run_dir: Path, history: list[dict]) -> None:
        self.path = run_dir / "metrics.csv"
        self.rows = list(history)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.writer = None
            tqdm.write("TensorBoard logging is off (pip install 'pcattn[tb]' to turn it on)")
        else:
            self.writer = SummaryWriter(log_dir=str(run_dir))

    def add(self, row: dict) -> None:
        self.rows.append(row)
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        buf = io.StringIO()
        out = csv.DictWriter(buf, fieldnames=columns)
        out.writeheader()
        out.writerows(self.rows)
        atomic_write_text(buf.getvalue(), self.path)
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
