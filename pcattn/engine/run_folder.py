"""A run folder (or one checkpoint) read back: :func:`load_model` is how ``eval``,
``predict`` and ``visualize`` rebuild a trained model, and the checkpoint is the truth.

``pcattn train`` writes ``config.yaml`` for people to read; every command rebuilds the model
and the data from the config saved inside the checkpoint. A ``config.yaml`` edited since (or
copied from another run) describes another run than the one in the folder: ``eval``,
``predict`` and ``visualize`` say which keys disagree (:class:`RunFolderWarning`), and
``train --resume`` refuses until they agree or the change comes with ``--set``.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

# keys that change between a run and its resumption without changing what it computes
SCHEDULE_KEYS = {"train.epochs", "train.stop_after", "train.device", "train.run_name",
                 "train.out_dir"}


class RunFolderWarning(UserWarning):
    """The run folder's ``config.yaml`` disagrees with its checkpoint."""


def folder_drift(ckpt_path: str | Path, saved: dict) -> tuple[Path, list[str] | str] | None:
    """``(config.yaml, keys)`` where the ``config.yaml`` beside ``ckpt_path`` differs from
    the checkpoint's config ``saved`` (``keys``: ``section.key`` names, or why the file
    cannot be read as a run config); None where they agree or there is no ``config.yaml``."""
    from pcattn.engine.config import config_differences, config_from_dict
    from pcattn.model_configs.values import parse_yaml

    path = Path(ckpt_path).parent / "config.yaml"
    if not path.is_file():
        return None
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8", errors="replace"), str(path))
    except (OSError, ValueError) as err:
        return path, f"it cannot be read ({str(err).splitlines()[0][:200]})"
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        return path, "it is not a run config (sections model, data, train)"
    try:  # defaults filled in, as in the checkpoint's
        folder = config_from_dict(copy.deepcopy(raw)).to_dict()
    except (ValueError, TypeError):  # e.g. another model's keys: compare as written
        folder = raw
    truth = config_from_dict(copy.deepcopy(saved)).to_dict()
    differ = config_differences(truth, folder)
    return (path, differ) if differ else None


def warn_if_drifted(ckpt_path: str | Path, saved: dict) -> None:
    """A :class:`RunFolderWarning` naming the keys where ``config.yaml`` disagrees with the
    checkpoint on what it computes (schedule keys such as ``train.epochs`` are left out)."""
    found = folder_drift(ckpt_path, saved)
    if found is None:
        return
    path, keys = found
    if isinstance(keys, list):
        keys = [k for k in keys if k not in SCHEDULE_KEYS]
        if not keys:
            return
        what = f"differs from {Path(ckpt_path).name} in {', '.join(keys)}"
    else:
        what = keys
    warnings.warn(f"{path} {what}; using the checkpoint's config (the checkpoint is the run; "
                  "config.yaml is only its description)", RunFolderWarning, stacklevel=2)


def check_resume_agrees(ckpt_path: str | Path, saved: dict, overrides: list[str]) -> None:
    """Refuse to resume a run whose ``config.yaml`` disagrees with its checkpoint on a key
    that ``overrides`` (``--set section.key=value``) does not set."""
    found = folder_drift(ckpt_path, saved)
    if found is None:
        return
    path, keys = found
    if not isinstance(keys, list):
        raise ValueError(f"cannot resume: {path}: {keys}; restore it (the checkpoint holds the "
                         "run's config) or delete it to have it written again")
    given = {item.partition("=")[0] for item in overrides}
    left = [k for k in keys if k not in given]
    if left:
        raise ValueError(
            f"cannot resume: {path} differs from {Path(ckpt_path).name} in {', '.join(left)}; "
            "the checkpoint is what resumes, so undo the edit, or pass the intended change "
            f"with --set (e.g. --set {left[0]}=VALUE) where a resumed run may change it")


def load_model(path: str | Path, device: str = "auto"):
    """The eval-mode model of a run folder (its ``best.pt``, else ``last.pt``, else
    ``checkpoint.pt``, see :func:`~pcattn.engine.checkpoint.checkpoint_path`) or of one
    checkpoint file, its run config and the checkpoint dict (its ``"path"`` added). Loaded
    with ``weights_only=True``; the model is built from the checkpoint's config, with a
    :class:`RunFolderWarning` where the folder's ``config.yaml`` disagrees.

    Returns:
        ``(model, run, ckpt)``
    """
    from pcattn.devices import resolve_device
    from pcattn.engine.checkpoint import checkpoint_path, load_checkpoint
    from pcattn.engine.config import config_from_dict
    from pcattn.models.registry import create_model

    path = checkpoint_path(path)
    ckpt = load_checkpoint(path)
    warn_if_drifted(path, ckpt["config"])
    run = config_from_dict(ckpt["config"])
    model = create_model(run.model_name, run.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:  # torch lists every mismatch; the first names the layer
        first = str(err).splitlines()[1].strip().rstrip(".") if "\n" in str(err) else str(err)
        raise ValueError(f"{path}: its weights do not fit the model its config describes "
                         f"({first}); the checkpoint was changed or written by other code: "
                         "train again or give the checkpoint as pcattn train wrote it") from None
    ckpt["path"] = str(path)
    return model.to(resolve_device(device)).eval(), run, ckpt
