"""``train.compile: true``: the training forward runs under ``torch.compile`` and the
checkpoints keep the model's own ``state_dict`` keys, so they load into a model that was
never compiled."""

from __future__ import annotations

import pytest
import torch
from enginefixtures import tiny_run

from pcattn.engine import train
from pcattn.engine.checkpoint import load_checkpoint
from pcattn.models import create_model


@pytest.mark.parametrize("backend", ["eager", pytest.param("inductor",
                                                           marks=pytest.mark.slow)])
def test_a_compiled_run_writes_checkpoints_an_eager_model_loads(tmp_path, data_root,
                                                                monkeypatch, backend):
    """``backend="eager"`` (dynamo alone) keeps the default run fast; inductor is slow."""
    compiled = []

    def compile_with(model, **kw):
        compiled.append(model)
        return real(model, **{**kw, "backend": backend})

    real = torch.compile
    monkeypatch.setattr(torch, "compile", compile_with)
    run = tiny_run(tmp_path, data_root, epochs=1, compile=True)
    metrics = train(run, progress=False)
    assert len(compiled) == 1 and metrics["final_train"]["loss"] > 0
    state = load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")["model"]
    assert not any("_orig_mod" in key for key in state)
    model = create_model(run.model_name, run.model)
    model.load_state_dict(state)  # strict: every key, nothing extra
    torch._dynamo.reset()
