"""Training and evaluation loops, metrics, checkpoints, run configs.

The names below load on first use: reading a config does not import the training loop.
"""

from pcattn._lazy import lazy_exports

_EXPORTS = {
    "pcattn.engine.config": ("RunConfig", "TrainConfig", "load_config"),
    "pcattn.engine.evaluation": ("evaluate", "evaluate_checkpoint"),
    "pcattn.engine.interrupt": ("TrainingInterrupted",),
    "pcattn.engine.resume": ("resume_config",),
    "pcattn.engine.loop": ("train",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
