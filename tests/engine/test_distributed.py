"""torchrun with 2 gloo processes on the CPU: DDP gradients equal one process's on the same
global batch; a 2-process run writes what a 1-process run writes, with exact metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from enginefixtures import ROOT, tiny_run, write_tiny_config

from pcattn.engine import evaluate_checkpoint, train

HERE = Path(__file__).resolve().parent


def torchrun(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_ddp_gradients_equal_single_process_gradients(data_root, tmp_path):
    train(tiny_run(tmp_path, data_root, epochs=1), progress=False)  # builds the data cache
    out = torchrun(str(HERE / "ddp_grad_check.py"), str(data_root))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "GRADIENTS MATCH" in out.stdout


def test_two_process_run_writes_the_same_files_with_exact_metrics(data_root, tmp_path):
    single = train(tiny_run(tmp_path, data_root, epochs=2, batch_size=4), progress=False)
    config = write_tiny_config(tmp_path, data_root, epochs=2, batch_size=4,
                               run_name="ddp")
    out = torchrun("-m", "pcattn", "train", "--config", str(config), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("epoch 2/2") == 1  # only rank 0 prints
    one, two = tmp_path / "runs" / "tiny", tmp_path / "runs" / "ddp"
    names = lambda d: sorted(p.name for p in d.iterdir() if "tfevents" not in p.name)  # noqa
    assert names(two) == names(one)
    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["final"]["num_samples"] == 10
    assert metrics["final_train"]["num_samples"] == single["final_train"]["num_samples"] == 40
    # the reduced metrics of the 2 shards are those of one process on the whole split
    again = evaluate_checkpoint(two / "last.pt")
    assert again["overall_accuracy"] == metrics["final"]["overall_accuracy"]
    assert again["loss"] == pytest.approx(metrics["final"]["loss"], rel=1e-6)


def test_eval_shards_count_every_item_once_and_train_shards_drop_the_tail():
    from pcattn.engine.distributed import DistEnv, ResumableSampler, shard

    items = list(range(7))
    shards = [list(shard(items, DistEnv(rank=r, world=2))) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == items  # 4 + 3: no padded repeat
    samplers = [ResumableSampler(items, DistEnv(rank=r, world=2), seed=0) for r in range(2)]
    for s in samplers:
        s.set_epoch(3)
    drawn = [list(s) for s in samplers]
    assert len(drawn[0]) == len(drawn[1]) == 3 and not set(drawn[0]) & set(drawn[1])
    samplers[0].skip = 2
    assert list(samplers[0]) == drawn[0][2:] and len(samplers[0]) == 1


def test_two_process_run_with_a_val_split_counts_each_cloud_once(data_root, tmp_path):
    import yaml
    from enginefixtures import tiny_config

    raw = tiny_config(tmp_path, data_root, epochs=1, batch_size=4, eval_split="val",
                      run_name="ddp_val")
    raw["data"]["val_fraction"] = 0.25  # 30 train, 10 val clouds
    config = tmp_path / "val.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = torchrun("-m", "pcattn", "train", "--config", str(config), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    run_dir = tmp_path / "runs" / "ddp_val"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["final_train"]["num_samples"] == 24  # 3 x 2 x 4
    assert metrics["final"]["num_samples"] == 10 and metrics["test"]["num_samples"] == 10
    assert (run_dir / "split.json").is_file()
    # the 2 shards of the test split give what one process gives on best.pt
    again = evaluate_checkpoint(run_dir, split="test")
    assert again["overall_accuracy"] == metrics["test"]["overall_accuracy"]
    assert again["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-6)
