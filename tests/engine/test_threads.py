"""train.threads: "auto" is the user's OMP_NUM_THREADS, else the cores this process may use
divided by the processes torchrun starts on the machine; workers compute on one thread."""

from __future__ import annotations

import os

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


def test_set_threads_and_workers(cores):
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(2) == 2 and torch.get_num_threads() == 2
        seed_worker(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bad_settings_are_config_errors():
    from pcattn.engine.config import config_from_dict

    for bad in (0, "many", 1.5):
        with pytest.raises(ValueError, match="train.threads"):
            config_from_dict({"train": {"threads": bad}})
