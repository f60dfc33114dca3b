"""The training loop. It only talks to a :class:`~pcattn.engine.tasks.Task`, so
classification and part segmentation share it; every process runs it under torchrun, rank 0
writes the run folder. A run stopped at any step resumes bit-exactly (CPU, fixed seeds)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pcattn.data.errors import DatasetNotFoundError
from pcattn.data.registry import build_dataset
from pcattn.data.split import HeldOut, split_record
from pcattn.engine.build import (
    augmentation_generators,
    dataset_info,
    build_model,
    eval_loader,
    fill_model_config,
    fresh_run_dir,
    train_loader,
)
from pcattn.engine.checkpoint import load_checkpoint, save_checkpoint
from pcattn.engine.commitment import cluster_blocks, commitment_loss
from pcattn.engine.config import RunConfig, save_config
from pcattn.engine.distributed import (
    DistEnv,
    all_reduce_sum,
    broadcast_float,
    broadcast_module,
    close_distributed,
    gather_objects,
    init_distributed,
)
from pcattn.engine.evaluation import evaluate
from pcattn.engine.interrupt import StopSignals, TrainingInterrupted
from pcattn.engine.optim import (
    build_optimizer,
    build_scheduler,
    plan_budget,
    set_schedule_length,
)
from pcattn.engine.precision import check_amp, grad_scaler
from pcattn.engine.rng import capture_rng, restore_rng, seed_everything
from pcattn.engine.runlog import RunLog, epoch_line, scalars
from pcattn.engine.sad import WithDistillation, sad_weight_at
from pcattn.engine.step import backward_step, forward_loss
from pcattn.engine.tasks import task_for
from pcattn.engine.threads import SharedCores, ThreadRecord
from pcattn.fileio import atomic_write_text, output_folder


def train(run: RunConfig, *, progress: bool = True, resume: str | Path | None = None) -> dict:
    """Train ``run`` (or continue the checkpoint ``resume``) and write its run folder:
    ``config.yaml``, ``split.json`` (with ``data.val_fraction > 0``: the clouds held out of
    train), ``metrics.csv``, TensorBoard events, ``last.pt``, ``best.pt`` and, at the end,
    ``metrics.json``. ``best.pt`` is chosen on ``train.eval_split``; when that is ``"val"``,
    the finished run evaluates ``best.pt`` once on the test split (``metrics.json``'s
    ``test``). Returns what ``metrics.json`` holds.

    Raises :class:`~pcattn.engine.interrupt.TrainingInterrupted` after Ctrl-C / SIGTERM
    (``last.pt`` then holds the run up to the last finished step).
    """
    env, device = init_distributed(run.train.device)
    finished = False
    try:
        with SharedCores(run.train.threads) as cores:
            out = Trainer(run, env, device, progress=progress, resume=resume, cores=cores).fit()
        finished = True
        return out
    finally:
        if finished:
            close_distributed(env)
        elif env.active:
            torch.distributed.destroy_process_group()


class Trainer:
    """The state of one run between steps; see :func:`train`."""

    def __init__(self, run: RunConfig, env: DistEnv, device: torch.device, *,
                 progress: bool, resume: str | Path | None,
                 cores: SharedCores | None = None) -> None:
        self.run, self.cfg, self.env, self.device = run, run.train, env, device
        self.cores = cores
        self.progress = progress and env.is_main
        cfg = self.cfg
        ckpt = load_checkpoint(resume) if resume is not None else None
        check_amp(cfg.amp, device)
        if ckpt is None and env.is_main:  # before the data is built: a bad out_dir fails fast
            output_folder(cfg.out_dir, "train.out_dir")
        seed_everything(cfg.seed)
        self.train_set = build_dataset(run.data, "train", progress=self.progress,
                                       eval_split=cfg.eval_split)
        self.eval_set = build_dataset(run.data, cfg.eval_split, progress=self.progress,
                                      eval_split=cfg.eval_split)
        self.task = task_for(self.train_set, label_smoothing=cfg.label_smoothing)
        fill_model_config(run, self.train_set)
        self.model = build_model(run, self.task).to(device)
        self.sad = (WithDistillation(self.model, run.model_name) if cfg.sad_weight > 0
                    else None)
        self.net = self.model if self.sad is None else self.sad
        self.commitment = (cluster_blocks(self.model, run.model_name)
                           if cfg.commitment_weight > 0 else [])
        if env.active:
            self.net = DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.compile:  # training steps only: evaluation's clouds may differ in size
            self.net = torch.compile(self.net, dynamic=False)
        self.loader_gen = torch.Generator().manual_seed(cfg.seed)
        self.loader, self.sampler = train_loader(self.train_set, run, env, self.loader_gen)
        self.eval_loader = eval_loader(self.eval_set, run, env)
        self.steps = len(self.loader)
        self.final_steps = self.steps  # of the last planned epoch (a time budget shortens it)
        self.opt = build_optimizer(self.model, cfg)
        self.sched = build_scheduler(self.opt, cfg, epochs=cfg.epochs,
                                     steps_per_epoch=self.steps)
        self.scaler = grad_scaler(cfg.amp, device)
        self.gens = {"loader": [self.loader_gen],
                     "train_augment": augmentation_generators(self.train_set),
                     "eval_augment": augmentation_generators(self.eval_set)}
        self.epoch = self.step = 0
        self.planned, self.budget_planned = cfg.epochs, False
        self.best = self.last_eval = self.partial = None
        self.history: list[dict] = []
        self.elapsed = self.train_seconds = 0.0
        self.epoch_began = 0.0  # self.elapsed when the current epoch began
        self.seen = 0
        self.run_dir: Path | None = None  # rank 0 only (except when resuming)
        self.resumed = ckpt is not None
        if ckpt is not None:
            self.run_dir = Path(resume).parent
            self._restore(ckpt, Path(resume))
            if env.is_main:  # the folder describes the run as it continues
                save_config(run, self.run_dir / "config.yaml")
        elif env.is_main:
            self.run_dir = fresh_run_dir(Path(cfg.out_dir), cfg.run_name)
            save_config(run, self.run_dir / "config.yaml")
        if env.is_main:
            self._save_split()

    def _save_split(self) -> None:
        """``split.json``: which training clouds ``data.val_fraction`` holds out as val."""
        if isinstance(self.train_set, HeldOut):
            data = self.run.data
            record = {"dataset": data.name, "val_fraction": data.val_fraction,
                      "seed": data.seed, **split_record(self.train_set)}
            atomic_write_text(json.dumps(record, indent=1), self.run_dir / "split.json")

    # -- checkpoints --------------------------------------------------------------------

    def _restore(self, ckpt: dict, path: Path) -> None:
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as err:
            raise ValueError(f"{path} does not fit the model this config builds: "
                             f"{str(err).splitlines()[1][:300]}") from None
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        for key in ("epoch", "step", "best", "last_eval", "history", "elapsed",
                    "train_seconds", "seen", "budget_planned"):
            setattr(self, key, ckpt[key])
        self.final_steps = ckpt.get("final_steps", self.steps)
        self.planned, self.epoch_began = ckpt["planned_epochs"], self.elapsed
        if self.cfg.epochs != ckpt["config"]["train"]["epochs"]:  # extended: a new schedule
            self.planned, self.budget_planned = self.cfg.epochs, True
            self.final_steps = self.steps
            set_schedule_length(self.sched, self.planned, self.steps)
        if self.epoch >= self.planned:
            raise ValueError(f"{path} holds a finished run ({self.epoch} epochs); extend it "
                             f"with --set train.epochs=N, N > {self.epoch}")
        rng = ckpt["rng"]
        restore_rng(rng[self.env.rank % len(rng)], self.gens)
        if self.step and self.env.is_main:
            self.partial = ckpt["partial"]

    def _state(self, partial: dict | None = None) -> dict:
        rng = capture_rng(self.gens)
        if partial is not None:  # mid-epoch: the loader restarts the epoch's order
            rng["generators"]["loader"] = [self.epoch_loader_state]
        return {
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "step": self.step, "planned_epochs": self.planned,
            "final_steps": self.final_steps,
            "budget_planned": self.budget_planned, "best": self.best,
            "last_eval": self.last_eval, "history": self.history, "elapsed": self.elapsed,
            "train_seconds": self.train_seconds, "seen": self.seen,
            "rng": gather_objects(rng, self.env), "partial": partial,
            "threads": torch.get_num_threads(),  # what --resume computes with by default
            "config": self.run.to_dict(), "task": self.task.name,
            "class_names": [str(c) for c in getattr(self.train_set, "classes", ())],
            "dataset": dataset_info(self.train_set),
        }

    def _save(self, *names: str, partial: dict | None = None) -> None:
        state = self._state(partial)  # collective under DDP: every rank builds it
        if self.env.is_main:
            for name in names:
                save_checkpoint(self.run_dir / name, state)

    # -- the loop -----------------------------------------------------------------------

    def fit(self) -> dict:
        start = time.perf_counter()
        params = sum(p.numel() for p in self.model.parameters())
        if self.env.is_main:
            tqdm.write(f"{self.run.model_name} ({params:,} parameters), {self.task.name}: "
                       f"{len(self.train_set)} train / {len(self.eval_set)} "
                       f"{self.cfg.eval_split} clouds, {self.env.world} x "
                       f"{self.cfg.batch_size} per step on {self.device}; run folder "
                       f"{self.run_dir}")
        log = RunLog(self.run_dir, self.history) if self.env.is_main else None
        stopped = None
        try:
            with StopSignals() as signals:
                while stopped is None:
                    self._train_epoch(signals)
                    stopped = self._end_epoch(log)
        finally:
            if log is not None:
                log.close()
            if stopped is None:  # failed
                self._discard_unstarted()
        return self._finish(stopped, params, time.perf_counter() - start)

    def _discard_unstarted(self) -> None:
        """Remove the run folder of a new run that failed before it saved a checkpoint
        (``config.yaml``, an empty ``metrics.csv``, TensorBoard events): no half run is left
        for ``--resume`` or a later run name to trip over."""
        if self.resumed or not self.env.is_main or self.run_dir is None:
            return
        if any((self.run_dir / n).exists() for n in ("last.pt", "best.pt")):
            return  # resumable: keep it
        ours = [self.run_dir / "config.yaml", self.run_dir / "metrics.csv",
                self.run_dir / "split.json",
                *self.run_dir.glob("events.out.tfevents.*")]
        try:
            for path in ours:
                path.unlink(missing_ok=True)
            self.run_dir.rmdir()  # only if nothing else is in it
        except OSError:
            return
        tqdm.write(f"removed the run folder {self.run_dir}: the run failed before its first "
                   "checkpoint")

    def _train_epoch(self, signals: StopSignals) -> None:
        cfg, task, device = self.cfg, self.task, self.device
        self.sampler.set_epoch(self.epoch)
        self.sampler.skip = self.step * cfg.batch_size
        self.epoch_loader_state = self.loader_gen.get_state()
        totals = {"loss": torch.zeros((), dtype=torch.float64, device=device),
                  "clouds": torch.zeros((), dtype=torch.float64, device=device)}
        state, seconds = task.new_state(device), 0.0
        if self.partial is not None:  # resumed mid-epoch
            for d, saved in ((totals, self.partial["totals"]), (state, self.partial["state"])):
                for k, v in saved.items():
                    d[k] += v.to(device)
            seconds, self.partial = self.partial["seconds"], None
        self.net.train()
        if self.sad is not None:
            self.sad.weight = sad_weight_at(self.epoch, cfg.sad_weight, cfg.sad_start)
        self.thread_record = ThreadRecord()
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{self.planned}", leave=False,
                   total=self.steps, initial=self.step, disable=not self.progress)
        t0 = time.perf_counter()
        last = self.final_steps if self.epoch + 1 == self.planned else self.steps
        for batch in bar:
            if self.step >= last:  # the time budget's shorter last epoch
                break
            if self.cores is not None:
                self.cores.poll()  # another training may have started or ended
            self.thread_record.step(torch.get_num_threads())
            batch = batch.to(device)
            loss, logits = forward_loss(self.net, batch, task, amp=cfg.amp, device=device)
            if self.commitment:
                loss = loss + commitment_loss(self.commitment, cfg.commitment_weight)
            stop, finite = self._sync_flags(signals.received, loss)
            if not finite:
                self._non_finite(loss)
            backward_step(loss, self.net, self.opt, self.scaler, grad_clip=cfg.grad_clip)
            self.sched.step()
            totals["loss"] += loss.detach().double() * batch.num_graphs
            totals["clouds"] += batch.num_graphs
            task.update(state, logits.detach(), batch)
            self.step += 1
            if self.progress:
                bar.set_postfix(loss=f"{float(totals['loss'] / totals['clouds']):.3f}")
            if stop:
                seconds += time.perf_counter() - t0
                self._interrupt(signals.received or signal.SIGTERM, totals, state, seconds)
        bar.close()
        seconds += time.perf_counter() - t0
        all_reduce_sum({**totals, **{f"state/{k}": v for k, v in state.items()}}, self.env)
        self.epoch, self.step = self.epoch + 1, 0
        self.train_seconds += seconds
        self.elapsed += seconds
        self.seen += int(totals["clouds"])
        self.epoch_train = {**task.compute(state),
                            "loss": float(totals["loss"] / totals["clouds"])}
        self.epoch_rate = float(totals["clouds"]) / max(seconds, 1e-9)

    def _sync_flags(self, received: int, loss: torch.Tensor) -> tuple[bool, bool]:
        """(any process asked to stop, the loss is finite on every process)."""
        flags = torch.stack([torch.tensor(float(received != 0), device=loss.device),
                             (~torch.isfinite(loss.detach())).double()])
        all_reduce_sum({"flags": flags}, self.env)
        return bool(flags[0] > 0), bool(flags[1] == 0)

    def _non_finite(self, loss: torch.Tensor) -> None:
        cfg = self.cfg
        raise ValueError(
            f"the loss is {float(loss.detach())} at epoch {self.epoch + 1}, step {self.step + 1}; "
            f"stopped without saving (last.pt / best.pt in {self.run_dir} keep the last "
            f"finished epoch). Usual causes: too high a learning rate (train.lr={cfg.lr}: "
            f"lower it, or lengthen train.warmup_epochs={cfg.warmup_epochs}, or set "
            f"train.grad_clip), or fp16 overflow (train.amp={cfg.amp}: use bf16 or none)")

    def _interrupt(self, signum: int, totals: dict, state: dict, seconds: float) -> None:
        all_reduce_sum({**totals, **{f"state/{k}": v for k, v in state.items()}}, self.env)
        partial = {"totals": {k: v.cpu() for k, v in totals.items()},
                   "state": {k: v.cpu() for k, v in state.items()}, "seconds": seconds}
        self._save("last.pt", partial=partial)
        name = signal.Signals(signum).name
        raise TrainingInterrupted(
            signum, f"{name}: stopped after step {self.step}/{self.steps} of epoch "
            f"{self.epoch + 1}; {self.run_dir}/last.pt holds it. Resume with:\n"
            f"  pcattn train --resume {self.run_dir}")

    def _end_epoch(self, log: RunLog | None) -> str | None:
        """Evaluate when due, plan or apply the time budget, log, checkpoint; returns why the
        run stops after this epoch, or None."""
        cfg, t0 = self.cfg, time.perf_counter()
        evaluated = None
        if self.epoch % cfg.eval_every == 0 or self.epoch >= self.planned:
            evaluated = self._evaluate()
        self.elapsed += time.perf_counter() - t0  # a time budget plans with evaluation in
        t0 = time.perf_counter()
        stopped = self._stop_reason()
        if stopped and evaluated is None:
            evaluated = self._evaluate()
        self.elapsed += time.perf_counter() - t0
        row = {"epoch": self.epoch, "lr": self.opt.param_groups[0]["lr"],
               **scalars(self.epoch_train, "train"),
               **(scalars(evaluated, cfg.eval_split) if evaluated else {}),
               "clouds_per_second": self.epoch_rate, "elapsed_seconds": self.elapsed,
               **self.thread_record.row()}
        self.history.append(row)
        names = ["last.pt"]
        if evaluated is not None:
            value = evaluated[self.task.best_metric]
            if self.best is None or value > self.best["value"]:
                self.best = {"epoch": self.epoch, "metric": self.task.best_metric,
                             "value": value, "metrics": evaluated}
                names.append("best.pt")
        self._save(*names)
        if log is not None:
            log.add(row)
            tqdm.write(epoch_line(row, self.planned, self.task.best_metric, cfg.eval_split))
        return stopped

    def _evaluate(self) -> dict:
        self.last_eval = evaluate(self.model, self.eval_loader, self.task, device=self.device,
                                  amp=self.cfg.amp, env=self.env,
                                  chunk_points=self.cfg.eval_chunk_points)
        return self.last_eval

    def _stop_reason(self) -> str | None:
        cfg = self.cfg
        budget = cfg.time_budget * 60
        if budget > 0 and not self.budget_planned:
            # Plan after the first epoch, and again after the second: the first carries the
            # start-up (loader workers, first allocations) and would plan a fast model short.
            # The second plan lengthens the schedule early, where the LR barely moves.
            last = broadcast_float(self.elapsed - self.epoch_began, self.env, self.device)
            left = budget - broadcast_float(self.elapsed, self.env, self.device)
            self.planned, self.final_steps = plan_budget(
                self.epoch * last + left, last, self.epoch, cfg.epochs, self.steps)
            self.budget_planned = self.epoch >= 2
            set_schedule_length(self.sched, self.planned, self.steps, self.final_steps)
        self.epoch_began = self.elapsed
        if self.epoch >= self.planned:
            return "finished"
        if self.epoch == cfg.stop_after:
            return "stop_after"
        if budget > 0 and broadcast_float(self.elapsed, self.env, self.device) >= budget:
            return "time_budget"
        return None

    def _test_best(self, stopped: str) -> tuple[dict | None, str | None]:
        """Metrics of ``best.pt``'s weights on the test split, evaluated once when the run
        ends (they leave the model holding those weights), or None and the reason."""
        if stopped == "stop_after":
            return None, "the run stopped before its last epoch (train.stop_after); resume it"
        if self.best is None:
            return None, "no epoch was evaluated"
        try:
            test_set = build_dataset(self.run.data, "test", eval_split=self.cfg.eval_split)
        except DatasetNotFoundError as err:
            return None, f"the test split cannot be read: {err}"
        if self.env.is_main:
            self.model.load_state_dict(load_checkpoint(self.run_dir / "best.pt")["model"])
        broadcast_module(self.model, self.env)
        metrics = evaluate(self.model, eval_loader(test_set, self.run, self.env), self.task,
                           device=self.device, amp=self.cfg.amp, env=self.env,
                           chunk_points=self.cfg.eval_chunk_points)
        return {"epoch": self.best["epoch"], "checkpoint": "best.pt", **metrics}, None

    def _finish(self, stopped: str, params: int, wall: float) -> dict:
        test = {}
        if self.cfg.eval_split == "val":  # best and final are on val: test best.pt once
            test["test"], why = self._test_best(stopped)
            if why is not None:
                test["test_missing"] = why
        metrics = {
            "model": self.run.model_name, "dataset": self.run.data.name,
            "task": self.task.name, "run_dir": str(self.run_dir),
            "finished": stopped == "finished", "stopped": stopped,
            "epochs": self.epoch, "planned_epochs": self.planned,
            "eval_split": self.cfg.eval_split, "best": self.best, "final": self.last_eval,
            **test,
            "final_train": self.epoch_train, "parameters": params,
            "clouds_per_second": self.seen / max(self.train_seconds, 1e-9),
            "train_seconds": self.train_seconds, "wall_seconds": self.elapsed,
            "session_wall_seconds": wall, "device": str(self.device),
            "world_size": self.env.world, "history": self.history,
        }
        if self.env.is_main:
            atomic_write_text(json.dumps(metrics, indent=2), self.run_dir / "metrics.json")
            if test.get("test") is not None:
                metric = self.task.best_metric
                tqdm.write(f"test {metric} {test['test'][metric]:.4f} (best.pt, epoch "
                           f"{test['test']['epoch']})")
            elif test:
                tqdm.write(f"no test metrics: {test['test_missing']}")
            if stopped != "finished":
                tqdm.write(f"stopped ({stopped}) after epoch {self.epoch}; continue with: "
                           f"pcattn train --resume {self.run_dir}")
        return metrics
