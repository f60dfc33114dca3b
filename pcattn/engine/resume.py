"""``pcattn train --resume``: the run config of a stopped run, checked against what is given."""

from __future__ import annotations

import copy
from pathlib import Path

from pcattn.engine.build import FILLED_FIELDS
from pcattn.engine.checkpoint import checkpoint_path, load_checkpoint
from pcattn.engine.config import (
    RunConfig,
    apply_overrides,
    config_differences,
    config_from_dict,
    load_config,
)
from pcattn.engine.run_folder import check_resume_agrees
from pcattn.engine.threads import recorded_threads

# what may change between a run and its resumption (epochs: a new, longer schedule)
MAY_CHANGE = {"train.epochs", "train.stop_after", "train.device", "train.run_name",
              "train.out_dir", "train.threads"} | {f"model.{k}" for k in FILLED_FIELDS}


def resume_config(target: str | Path, config: str | Path | None = None,
                  overrides: list[str] = ()) -> tuple[RunConfig, Path]:
    """The config to resume ``target`` (a run folder or a checkpoint) with, and its ``last.pt``.

    Without ``config`` the run's own config (the checkpoint's) is used, and the folder's
    ``config.yaml`` must agree with it except on keys ``overrides`` set; ``overrides`` apply
    either way. Any difference from the saved config outside :data:`MAY_CHANGE` is an error
    naming the keys. ``train.threads`` becomes the count the run last computed with
    (recorded in the checkpoint) unless ``overrides`` or ``config`` set another: a resumed
    run sums over the same threads, so it continues bit-exactly.
    """
    path = checkpoint_path(target, "last.pt")
    ckpt = load_checkpoint(path)
    saved = ckpt["config"]
    if config is None:  # the folder's config.yaml must describe what resumes
        check_resume_agrees(path, saved, list(overrides))
        run = config_from_dict(apply_overrides(copy.deepcopy(saved), list(overrides)))
    else:
        run = load_config(config, list(overrides))
    # the saved config through today's dataclasses: keys added since it was saved (e.g.
    # data.val_fraction) take their defaults instead of counting as changes
    known = config_from_dict(copy.deepcopy(saved)).to_dict()
    differ = [k for k in config_differences(known, run.to_dict()) if k not in MAY_CHANGE]
    if differ:
        raise ValueError(f"cannot resume {path}: the config differs from the run's in "
                         f"{differ}; only train.epochs (a new schedule), train.stop_after, "
                         "train.device and train.threads may change (start a new run for "
                         "anything else)")
    given = any(item.partition("=")[0] == "train.threads" for item in overrides)
    recorded = recorded_threads(ckpt)
    if not given and run.train.threads == known["train"]["threads"] and recorded:
        run.train.threads = recorded  # the count the run computed with: the same sums
    return run, path
