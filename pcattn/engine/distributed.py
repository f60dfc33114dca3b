"""torchrun + DDP: the process group from torchrun's environment, exact metric reduction,
samplers that never count a sample twice."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Subset

from pcattn.devices import resolve_device


@dataclass
class DistEnv:
    """Where this process stands: ``rank`` of ``world`` processes (1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_name: str) -> tuple[DistEnv, torch.device]:
    """Join torchrun's process group when ``WORLD_SIZE > 1`` (gloo on the CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, "train.device", local_rank)
    if world <= 1:
        return DistEnv(), device
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank), device


def close_distributed(env: DistEnv) -> None:
    if env.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(tensors: dict[str, torch.Tensor], env: DistEnv) -> dict[str, torch.Tensor]:
    """Sum each entry over the processes (in place; a no-op in one process)."""
    if env.active:
        for t in tensors.values():
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return tensors


def gather_objects(obj, env: DistEnv) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
    if not env.active:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def broadcast_float(value: float, env: DistEnv, device: torch.device) -> float:
    """Rank 0's ``value`` on every process (so that all take the same decision)."""
    if not env.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t)


def broadcast_module(module: torch.nn.Module, env: DistEnv) -> None:
    """Rank 0's parameters and buffers in ``module`` on every process (in place)."""
    if env.active:
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def shard(dataset, env: DistEnv):
    """This process's share of an evaluation set: items ``rank, rank + world, ...``, no
    padding, so that summed metric states count every item exactly once."""
    if not env.active:
        return dataset
    return Subset(dataset, range(env.rank, len(dataset), env.world))


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled by ``seed + epoch``, the tail dropped so that every
    process gets the same number of items, none repeated) that can start an epoch part-way:
    ``skip`` items are left out, as a run resumed mid-epoch needs."""

    def __init__(self, dataset, env: DistEnv, *, seed: int) -> None:
        super().__init__(dataset, num_replicas=env.world, rank=env.rank, shuffle=True,
                         seed=seed, drop_last=True)
        self.skip = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return super().__len__() - self.skip
