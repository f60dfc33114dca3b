"""Run by test_distributed.py under ``torchrun --nproc_per_node 2``: the gradient of one
DDP step through the engine's step equals that of one process on the whole global batch."""

from __future__ import annotations

import sys

import torch
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data import Batch

from pcattn.data.registry import DataConfig, build_dataset
from pcattn.engine.distributed import close_distributed, init_distributed
from pcattn.engine.precision import grad_scaler
from pcattn.engine.step import backward_step, forward_loss
from pcattn.engine.tasks import task_for
from pcattn.models import create_model


def model():
    torch.manual_seed(0)
    return create_model("point_transformer_cls", channels=(8, 16), blocks=(1, 1), k=8,
                        head_hidden=(16,), dropout=0.0, feature_channels=3)


def grads(net, batch, task) -> list[torch.Tensor]:
    """Gradients after the engine's backward (an lr=0 SGD step leaves them in place)."""
    params = list(net.parameters())
    loss, _ = forward_loss(net, batch, task, amp="none", device=torch.device("cpu"))
    backward_step(loss, net, torch.optim.SGD(params, lr=0.0), grad_scaler("none", torch.device("cpu")))
    return [p.grad.clone() for p in params]


def main(data_root: str) -> None:
    env, _ = init_distributed("cpu")
    dataset = build_dataset(DataConfig(root=data_root, num_points=64, per_class=4,
                                       rotation="z"), "train")
    task = task_for(dataset)
    clouds = [dataset[i] for i in (0, 5, 17, 33)]  # the global batch, 2 clouds per rank
    local = Batch.from_data_list(clouds[2 * env.rank: 2 * env.rank + 2])
    ddp = grads(DistributedDataParallel(model()), local, task)
    if env.rank == 0:
        ref = grads(model(), Batch.from_data_list(clouds), task)
        worst = max(float((a - b).abs().max()) for a, b in zip(ddp, ref))
        scale = max(float(b.abs().max()) for b in ref)
        print(f"max |ddp - single| = {worst:.3g} (largest gradient {scale:.3g})")
        if not worst <= 1e-5:
            sys.exit(1)
        print("GRADIENTS MATCH")
    close_distributed(env)


if __name__ == "__main__":
    main(sys.argv[1])
