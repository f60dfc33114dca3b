"""Training and evaluation loops, metrics, checkpoints, run configs."""

from pcattn.engine.config import RunConfig, TrainConfig, load_config
from pcattn.engine.train import evaluate, evaluate_checkpoint, train

__all__ = ["RunConfig", "TrainConfig", "evaluate", "evaluate_checkpoint", "load_config", "train"]
