"""The training loop: the run folder, evaluation every N epochs through the one evaluate,
the time budget, NaN losses, bf16, worker seeding, and stopping on SIGTERM from the CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from enginefixtures import ROOT, tiny_run, write_tiny_config

from pcattn.cli import _parser, main
from pcattn.engine import evaluate_checkpoint, train
from pcattn.engine.checkpoint import load_checkpoint


def test_run_folder_and_eval_every(tmp_path, data_root, capsys):
    metrics = train(tiny_run(tmp_path, data_root, epochs=3, eval_every=2), progress=False)
    run_dir = tmp_path / "runs" / "tiny"
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "metrics.csv", "last.pt", "best.pt", "metrics.json"} <= names
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert "TensorBoard logging is off" in capsys.readouterr().out
    else:
        assert any(n.startswith("events.out.tfevents") for n in names)
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    # evaluated after epoch 2 (eval_every) and after the last one, not after epoch 1
    assert [bool(r["test/overall_accuracy"]) for r in rows] == [False, True, True]
    assert all(float(r["train/loss"]) > 0 and float(r["lr"]) >= 0 for r in rows)
    out = capsys.readouterr().out
    assert out.count("clouds/s") == 3 and "epoch 3/3" in out
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["final"]["num_samples"] == 10 and saved["best"]["epoch"] in (2, 3)
    assert saved["parameters"] == sum(
        v.numel() for v in load_checkpoint(run_dir / "last.pt")["model"].values())
    assert saved["clouds_per_second"] > 0 and saved["wall_seconds"] > 0
    assert metrics["final"] == saved["final"]
    # pcattn eval: the same evaluate on the best checkpoint gives the same numbers
    best = evaluate_checkpoint(run_dir)
    assert best["checkpoint"].endswith("best.pt") and best["epoch"] == saved["best"]["epoch"]
    assert best["overall_accuracy"] == saved["best"]["metrics"]["overall_accuracy"]
    assert best["loss"] == pytest.approx(saved["best"]["metrics"]["loss"])
    voted = evaluate_checkpoint(run_dir / "last.pt", votes=3)
    assert voted["votes"] == 3 and voted["num_samples"] == 10
    assert voted["loss"] != pytest.approx(saved["final"]["loss"])  # the copies were scaled


def test_time_budget_lays_the_schedule_over_the_epochs_that_fit(tmp_path, data_root):
    # a budget far shorter than an epoch: one epoch fits, the schedule is cut to it
    metrics = train(tiny_run(tmp_path, data_root, epochs=4, time_budget=1e-5), progress=False)
    assert metrics["finished"] and metrics["epochs"] == 1 and metrics["planned_epochs"] == 1
    ckpt = load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")
    assert ckpt["scheduler"]["lr_lambdas"][0]["total"] == 5  # 40 clouds / 8 per step
    roomy = train(tiny_run(tmp_path, data_root, epochs=2, time_budget=600.0), progress=False)
    assert roomy["epochs"] == 2 and roomy["planned_epochs"] == 2


@pytest.mark.parametrize("budget, per_epoch, done, max_epochs, want", [
    (240, 144, 1, 100, (2, 66)),  # 1.67 epochs fit: a second one of 2/3 of the steps
    (720, 144, 1, 100, (5, 100)),  # exactly 5
    (730, 144, 1, 100, (5, 100)),  # 5.07: the last 7 steps are not worth an evaluation
    (240, 144, 1, 1, (1, 100)),  # no more epochs than configured
    (60, 144, 1, 100, (1, 100)),  # the first epoch already took longer than the budget
    (500, 144, 3, 100, (4, 47)),  # resumed after 3 epochs: 3.47 fit
])
def test_a_time_budget_plans_whole_epochs_and_a_shorter_last_one(budget, per_epoch, done,
                                                                 max_epochs, want):
    from pcattn.engine.optim import plan_budget

    assert plan_budget(budget, per_epoch, done, max_epochs, 100) == want


def test_the_shorter_last_epoch_trains_its_steps_and_ends_the_schedule(tmp_path, data_root,
                                                                      monkeypatch):
    import pcattn.engine.loop as loop

    monkeypatch.setattr(loop, "plan_budget", lambda *args: (2, 3))  # 1 + 3/5 epochs fit
    metrics = train(tiny_run(tmp_path, data_root, epochs=4, time_budget=10.0), progress=False)
    assert metrics["finished"] and metrics["epochs"] == 2
    ckpt = load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")
    assert ckpt["scheduler"]["lr_lambdas"][0]["total"] == 5 + 3  # 40 clouds / 8 per step
    assert ckpt["scheduler"]["last_epoch"] == 8  # the steps taken: the schedule's end
    assert ckpt["seen"] == 40 + 3 * 8


def test_the_budget_plan_counts_the_evaluation_of_an_epoch(tmp_path, data_root, monkeypatch):
    import time

    import pcattn.engine.loop as loop

    seen, real_eval, real_plan = {}, loop.evaluate, loop.plan_budget

    def slow_eval(*args, **kwargs):
        time.sleep(1.0)  # an evaluation far longer than the tiny training epoch
        return real_eval(*args, **kwargs)

    def plan(budget, per_epoch, *args):
        seen["per_epoch"] = per_epoch
        return real_plan(budget, per_epoch, *args)

    monkeypatch.setattr(loop, "evaluate", slow_eval)
    monkeypatch.setattr(loop, "plan_budget", plan)
    train(tiny_run(tmp_path, data_root, epochs=2, time_budget=10.0), progress=False)
    assert seen["per_epoch"] >= 1.0


def test_a_slow_first_epoch_is_replanned_from_the_second(tmp_path, data_root, monkeypatch):
    import time

    import pcattn.engine.loop as loop

    seen, real_eval, real_plan = [], loop.evaluate, loop.plan_budget

    def slow_first_eval(*args, **kwargs):
        if not seen:  # start-up costs: only the first epoch pays them
            time.sleep(4.0)
        return real_eval(*args, **kwargs)

    def plan(budget, per_epoch, done, *args):
        seen.append((done, per_epoch))
        return real_plan(budget, per_epoch, done, *args)

    monkeypatch.setattr(loop, "evaluate", slow_first_eval)
    monkeypatch.setattr(loop, "plan_budget", plan)
    # 9 s: the first epoch alone would plan 2 epochs; the second shows 8 fit
    metrics = train(tiny_run(tmp_path, data_root, epochs=8, time_budget=0.15), progress=False)
    assert [done for done, _ in seen] == [1, 2]  # planned twice, then never again
    assert seen[0][1] >= 4.0 and seen[1][1] < 2.0
    assert metrics["epochs"] == metrics["planned_epochs"] == 8
    ckpt = load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")
    assert ckpt["scheduler"]["lr_lambdas"][0]["total"] == 8 * 5  # laid over all 8 epochs
    assert ckpt["budget_planned"]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data_root,
                                                                  monkeypatch):
    import pcattn.engine.loop as loop

    real, calls = loop.forward_loss, {"n": 0}

    def nan_in_epoch_2(*args, **kwargs):
        loss, logits = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 8 else loss), logits

    monkeypatch.setattr(loop, "forward_loss", nan_in_epoch_2)
    with pytest.raises(ValueError, match=r"loss is nan at epoch 2, step 3.*train\.lr.*amp"):
        train(tiny_run(tmp_path, data_root), progress=False)
    assert load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")["epoch"] == 1


def test_bf16_run_on_the_cpu(tmp_path, data_root):
    metrics = train(tiny_run(tmp_path, data_root, epochs=1, amp="bf16"), progress=False)
    assert np.isfinite(metrics["final_train"]["loss"]) and metrics["final"]["num_samples"] == 10


def test_bad_device_and_amp_are_clear_errors(tmp_path, data_root):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available on this machine"):
            train(tiny_run(tmp_path, data_root, device="cuda"), progress=False)
        with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
            train(tiny_run(tmp_path, data_root, amp="fp16"), progress=False)
    with pytest.raises(ValueError, match="unknown train.amp 'fp8'"):
        tiny_run(tmp_path, data_root, amp="fp8")


class Draws(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return float(np.random.rand())


def test_workers_are_seeded_apart_and_reproducibly():
    from pcattn.engine.rng import seed_worker

    def draws():
        loader = torch.utils.data.DataLoader(
            Draws(), batch_size=1, num_workers=2, worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(3))
        return [float(x) for x in loader]

    first = draws()
    assert first[0] != first[1]  # worker 0 and worker 1 draw differently
    assert draws() == first  # and again the same with the same generator seed


def test_set_given_several_times_keeps_all():
    args = _parser().parse_args(["train", "--config", "c.yaml", "--set", "train.epochs=2",
                                 "model.k=4", "--set", "train.lr=0.1"])
    assert args.set == ["train.epochs=2", "model.k=4", "train.lr=0.1"]


def test_sigterm_from_outside_saves_and_the_cli_resumes(tmp_path, data_root, capsys):
    config = write_tiny_config(tmp_path, data_root, epochs=400)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pcattn", "train", "--config", str(config),
                             "--no-progress"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    csv_path = tmp_path / "runs" / "tiny" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not csv_path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and f"pcattn train --resume {tmp_path / 'runs' / 'tiny'}" in err
    ckpt = load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")
    assert ckpt["epoch"] >= 1
    assert main(["train", "--resume", str(tmp_path / "runs" / "tiny"), "--no-progress",
                 "--set", f"train.epochs={ckpt['epoch'] + 1}"]) == 0
    assert load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")["epoch"] == ckpt["epoch"] + 1
    assert "best test overall_accuracy" in capsys.readouterr().out


def test_predict_prints_top_5_of_a_cloud_file(tmp_path, data_root, capsys):
    from pcattn.data import SyntheticShapes

    train(tiny_run(tmp_path, data_root, epochs=1), progress=False)
    cloud = SyntheticShapes(data_root, "test", num_points=64, per_class=1, rotation="z")[3]
    f = tmp_path / "cloud.xyz"
    np.savetxt(f, torch.cat([cloud.pos, cloud.x], 1).numpy())
    np.savetxt(tmp_path / "bare.xyz", cloud.pos.numpy())
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "runs" / "tiny"), str(f), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    probs = [p for _, p in found["top5"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    assert found["class"] == found["top5"][0][0] in SyntheticShapes.classes
    assert main(["predict", str(tmp_path / "runs" / "tiny"), str(tmp_path / "bare.xyz")]) != 0
    assert "the file has none" in capsys.readouterr().err
