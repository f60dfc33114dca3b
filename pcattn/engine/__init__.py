"""Training and evaluation loops, metrics, checkpoints, run configs."""

from pcattn.engine.config import RunConfig, TrainConfig, load_config
from pcattn.engine.evaluate import evaluate, evaluate_checkpoint
from pcattn.engine.interrupt import TrainingInterrupted
from pcattn.engine.resume import resume_config
from pcattn.engine.loop import train

__all__ = ["RunConfig", "TrainConfig", "TrainingInterrupted", "evaluate",
           "evaluate_checkpoint", "load_config", "resume_config", "train"]
