"""A new run that fails before its first checkpoint leaves no run folder behind; one that
has a checkpoint keeps it (resumable)."""

from __future__ import annotations

import pytest
from enginefixtures import tiny_run

from pcattn.engine import train


def _fail_at(monkeypatch, call: int, error: Exception | None = None):
    from pcattn.engine import loop

    real, calls = loop.forward_loss, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            if error is not None:
                raise error
            loss, logits = real(*args, **kwargs)
            return loss * float("nan"), logits
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "forward_loss", failing)


def test_failure_in_the_first_epoch_removes_the_new_run_folder(tmp_path, data_root,
                                                                 monkeypatch, capsys):
    _fail_at(monkeypatch, 2, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        train(tiny_run(tmp_path, data_root), progress=False)
    assert list((tmp_path / "runs").iterdir()) == []
    assert "removed the run folder" in capsys.readouterr().out
    monkeypatch.undo()
    metrics = train(tiny_run(tmp_path, data_root, epochs=1), progress=False)
    assert metrics["run_dir"] == str(tmp_path / "runs" / "tiny")  # the name is free again


def test_non_finite_loss_in_the_first_epoch_leaves_nothing(tmp_path, data_root, monkeypatch):
    _fail_at(monkeypatch, 3)
    with pytest.raises(ValueError, match="loss is nan at epoch 1"):
        train(tiny_run(tmp_path, data_root), progress=False)
    assert not (tmp_path / "runs" / "tiny").exists()


def test_a_run_with_a_checkpoint_is_kept(tmp_path, data_root, monkeypatch):
    _fail_at(monkeypatch, 7, RuntimeError("boom"))  # 5 steps per epoch: in epoch 2
    with pytest.raises(RuntimeError, match="boom"):
        train(tiny_run(tmp_path, data_root), progress=False)
    kept = {p.name for p in (tmp_path / "runs" / "tiny").iterdir()}
    assert {"config.yaml", "last.pt", "best.pt", "metrics.csv"} <= kept
