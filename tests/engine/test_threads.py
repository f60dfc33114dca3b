"""train.threads: "auto" is the user's OMP_NUM_THREADS, else the cores this process may use
shared among the trainings on them (and torchrun's local processes); workers compute on one
thread."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from pcattn.engine import threads
from pcattn.engine.rng import seed_worker


@pytest.fixture
def cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7},
                        raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


def test_auto_is_the_affinity_divided_by_local_processes(cores, monkeypatch):
    assert threads.usable_cores() == 8
    assert threads.thread_count("auto") == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert threads.thread_count("auto") == 2  # 8 cores // 3 processes
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert threads.thread_count("auto") == 1


def test_the_environment_and_a_number_win(cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.thread_count("auto") == 3
    assert threads.thread_count(5) == 5


def test_workers_compute_on_one_thread():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seed_worker(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_auto_trainings_split_the_cores_they_share(cores, keep_threads, tmp_path):
    other = _sleeper()
    try:
        with threads.SharedCores("auto", folder=tmp_path) as mine:
            cpus, started = (tmp_path / str(os.getpid())).read_text().split("\n")
            assert cpus == "0 1 2 3 4 5 6 7" and started == threads._start_time(os.getpid())
            assert mine.threads == 8 and torch.get_num_threads() == 8  # alone
            (tmp_path / str(other.pid)).write_text("6 7 8 9")  # overlaps ours: shares
            assert mine.poll() == 8  # counted again only after the interval
            assert mine.poll(force=True) == 4 and torch.get_num_threads() == 4
            (tmp_path / str(other.pid)).write_text("8 9")  # pinned elsewhere: not ours
            assert mine.poll(force=True) == 8
            (tmp_path / str(other.pid)).write_text("0")
            assert mine.poll(force=True) == 4
            if threads._start_time(other.pid):  # Linux: a reused number is not that training
                (tmp_path / str(other.pid)).write_text("0\n1")
                assert mine.poll(force=True) == 8
                assert not (tmp_path / str(other.pid)).exists()
                (tmp_path / str(other.pid)).write_text(f"0\n{threads._start_time(other.pid)}")
                assert mine.poll(force=True) == 4
            other.kill()
            other.wait()
            assert mine.poll(force=True) == 8  # the dead one's file is removed
            assert not (tmp_path / str(other.pid)).exists()
        assert not any(tmp_path.iterdir())  # ours too, on exit
    finally:
        other.kill()
        other.wait()


def test_three_trainings_on_eight_cores_get_two_threads_each(cores, keep_threads, tmp_path):
    others = [_sleeper(), _sleeper()]
    try:
        for p in others:
            (tmp_path / str(p.pid)).write_text("0 1 2 3 4 5 6 7")
        (tmp_path / "notes.txt").write_text("not a training")  # ignored
        with threads.SharedCores("auto", folder=tmp_path) as mine:
            assert mine.trainings() == 3 and mine.threads == 2
    finally:
        for p in others:
            p.kill()
            p.wait()


def test_a_fixed_count_registers_nothing(cores, keep_threads, tmp_path, monkeypatch):
    with threads.SharedCores(3, folder=tmp_path) as mine:
        assert mine.threads == 3 and torch.get_num_threads() == 3
        assert not tmp_path.exists() or not any(tmp_path.iterdir())
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with threads.SharedCores("auto", folder=tmp_path) as mine:
        assert mine.threads == 2 and not any(tmp_path.iterdir())


def test_a_removed_folder_does_not_stop_a_training(cores, keep_threads, tmp_path):
    import shutil

    with threads.SharedCores("auto", folder=tmp_path / "trainings") as mine:
        shutil.rmtree(tmp_path / "trainings")
        assert mine.poll(force=True) == 8


def test_an_unwritable_folder_runs_as_if_alone(cores, keep_threads, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with threads.SharedCores("auto", folder=blocker / "trainings") as mine:
        assert mine.threads == 8


def test_bad_settings_are_config_errors():
    from pcattn.engine.config import config_from_dict

    for bad in (0, "many", 1.5):
        with pytest.raises(ValueError, match="train.threads"):
            config_from_dict({"train": {"threads": bad}})


def test_a_training_shares_the_cores_with_a_running_one(tmp_path, data_root, monkeypatch,
                                                        keep_threads):
    from enginefixtures import tiny_run

    from pcattn.engine import train

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(threads, "registry_folder", lambda: tmp_path / "trainings")
    seen, set_num_threads = [], torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), set_num_threads(n)))
    polls = []
    poll = threads.SharedCores.poll
    monkeypatch.setattr(threads.SharedCores, "poll",
                        lambda self, force=False: polls.append(
                            sorted(p.name for p in self.folder.iterdir())) or poll(self, force))
    other = _sleeper()
    try:
        (tmp_path / "trainings").mkdir()
        (tmp_path / "trainings" / str(other.pid)).write_text(
            " ".join(map(str, sorted(threads._cpu_set()))))
        train(tiny_run(tmp_path, data_root, epochs=1), progress=False)
    finally:
        other.kill()
        other.wait()
    assert seen[0] == max(1, threads.usable_cores() // 2)
    assert len(polls) >= 1 + 5  # on entering, then every step (40 clouds / 8)
    assert polls[-1] == sorted([str(os.getpid()), str(other.pid)])
    assert not (tmp_path / "trainings" / str(os.getpid())).exists()  # unregistered at the end
    # the count the epoch ran with is recorded for reruns and --resume
    import csv

    from pcattn.engine.checkpoint import load_checkpoint

    run_dir = tmp_path / "runs" / "tiny"
    with open(run_dir / "metrics.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert int(float(row["threads"])) == seen[-1] and int(float(row["thread_changes"])) == 0
    assert load_checkpoint(run_dir / "last.pt")["threads"] == seen[-1]


@pytest.mark.parametrize("fixed", [1, 3, 5])
def test_a_fixed_count_never_changes(cores, keep_threads, tmp_path, fixed):
    others = [_sleeper(), _sleeper()]
    try:
        with threads.SharedCores(fixed, folder=tmp_path, interval=0.0) as mine:
            for p in others:  # other trainings start on the same cores
                (tmp_path / str(p.pid)).write_text("0 1 2 3 4 5 6 7")
                assert mine.poll() == fixed and torch.get_num_threads() == fixed
            torch.set_num_threads(fixed + 1)  # something else in the process sets another
            assert mine.poll() == fixed and torch.get_num_threads() == fixed
    finally:
        for p in others:
            p.kill()
            p.wait()


def test_an_epoch_records_its_thread_counts():
    record = threads.ThreadRecord()
    assert record.row() == {}
    for n in (4, 4, 4):
        record.step(n)
    assert record.row() == {"threads": 4, "thread_changes": 0}
    for n in (2, 2, 4, 3):
        record.step(n)
    assert record.row() == {"threads": 3, "thread_changes": 3}


@pytest.mark.parametrize("ckpt, want", [
    ({"threads": 3, "history": [{"threads": 5}]}, 3),
    ({"history": [{"threads": 5}, {"epoch": 2}]}, 5),  # the last row that has a count
    ({"history": [{"epoch": 1}]}, None),  # written before counts were recorded
    ({}, None),
])
def test_the_recorded_count_of_a_checkpoint(ckpt, want):
    assert threads.recorded_threads(ckpt) == want
