"""One evaluation function, used by the training loop and by ``pcattn eval``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from pcattn.engine.distributed import DistEnv, all_reduce_sum
from pcattn.engine.precision import autocast
from pcattn.engine.tasks import Task
from pcattn.engine.votes import vote_logits


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, task: Task, *, device: torch.device,
             amp: str = "none", votes: int = 1, vote_rotation: str = "none", seed: int = 0,
             env: DistEnv | None = None, chunk_points: int = 0) -> dict:
    """Eval-mode metrics of ``model`` on ``loader`` (this process's shard under DDP; states
    are summed over processes, so every item counts once).

    With ``votes > 1`` the logits of the batch and ``votes - 1`` copies, each scaled by random
    per-axis factors (PointNeXt's voting) and rotated as ``vote_rotation`` says, are averaged
    (:func:`pcattn.engine.votes.vote_logits`). With ``chunk_points > 0`` a segmenter runs
    on clouds larger than that in crops (:func:`pcattn.engine.chunked.predict_in_chunks`),
    every point still labelled. Also returns the mean ``loss`` per cloud.
    """
    env = env or DistEnv()
    if votes < 1:
        raise ValueError(f"votes must be >= 1, got {votes}")
    was_training = model.training
    model.eval()
    state = task.new_state(device)
    totals = {"loss": torch.zeros((), dtype=torch.float64, device=device),
              "clouds": torch.zeros((), dtype=torch.float64, device=device)}
    gen = torch.Generator().manual_seed(seed)
    net = model
    if chunk_points > 0 and task.name != "classification":
        from pcattn.engine.chunked import predict_in_chunks

        net = lambda data: predict_in_chunks(model, data, chunk_points)  # noqa: E731
    for batch in loader:
        batch = batch.to(device)
        with autocast(amp, device):
            logits = vote_logits(net, batch, votes, generator=gen,
                                 rotation=vote_rotation).float()
            loss = task.loss(logits, batch)
        task.update(state, logits, batch)
        totals["loss"] += loss.double() * batch.num_graphs
        totals["clouds"] += batch.num_graphs
    all_reduce_sum({**state, **totals}, env)
    model.train(was_training)
    return {**task.compute(state), "loss": float(totals["loss"] / totals["clouds"].clamp_min(1))}


def evaluate_checkpoint(path: str | Path, *, split: str = "test", device: str = "auto",
                        votes: int = 1, vote_rotation: str = "none") -> dict:
    """Rebuild the model of a checkpoint or run folder (``load_model``) and evaluate it
    on ``split`` (``"test"``, ``"val"``, ``"train"``) of its dataset with :func:`evaluate`.
    The model and the data are rebuilt from the checkpoint's config (a
    :class:`~pcattn.engine.run_folder.RunFolderWarning` says where the folder's
    ``config.yaml`` disagrees), so ``"val"`` holds out the same clouds as the run did."""
    from pcattn.data.registry import build_dataset
    from pcattn.engine.build import data_fields, eval_loader
    from pcattn.engine.run_folder import load_model
    from pcattn.engine.tasks import task_for

    model, run, ckpt = load_model(path, device)
    path, dev = ckpt["path"], next(model.parameters()).device
    dataset = build_dataset(run.data, split, eval_split=run.train.eval_split)
    found = data_fields(dataset)["num_classes"]
    if getattr(run.model, "num_classes", found) != found:
        raise ValueError(f"{path} has a head for {run.model.num_classes} classes, the "
                         f"{split} split of {run.data.name!r} has {found}")
    task = task_for(dataset)
    loader = eval_loader(dataset, run, DistEnv())
    amp = "none" if run.train.amp == "fp16" and dev.type != "cuda" else run.train.amp
    metrics = evaluate(model, loader, task, device=dev, amp=amp, votes=votes,
                       vote_rotation=vote_rotation, seed=run.train.seed,
                       chunk_points=run.train.eval_chunk_points)
    return {"checkpoint": str(path), "epoch": ckpt["epoch"], "split": split, "votes": votes,
            "vote_rotation": vote_rotation, **metrics}
