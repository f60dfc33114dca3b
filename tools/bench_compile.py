"""What ``torch.compile`` buys on the ModelNet40 Point Transformer training step: eager and
compiled steps alternated in one process on the same batch, compile time apart. Run it on
a quiet machine:

    OMP_NUM_THREADS=2 .venv/bin/python tools/bench_compile.py --steps 10

Prints the graph breaks of the model's forward (``torch._dynamo.explain``), the first
compiled step (compilation included) and the median eager and compiled steps (forward,
loss, backward, AdamW) with their ratio. ``--backend eager`` checks the set-up quickly
(dynamo alone, no code generation).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch_geometric.loader import DataLoader

from pcattn.bench.train import _dataset, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="point_transformer_cls")
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backend", default="inductor")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = next(iter(DataLoader(_dataset(args.batch, args.points, "_seg" in args.model),
                                batch_size=args.batch)))
    explained = torch._dynamo.explain(model)(data)
    print(f"forward: {explained.graph_count} graphs, {explained.graph_break_count} breaks")
    for reason in explained.break_reasons:
        where = reason.user_stack[-1] if reason.user_stack else None
        at = f"{where.filename.split('pcattn/')[-1]}:{where.lineno}" if where else "?"
        print(f"  break at {at}: {reason.reason.splitlines()[0][:100]}")
    torch._dynamo.reset()
    compiled = torch.compile(model, backend=args.backend)

    def step(net) -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(data), data.y).backward()
        optimizer.step()
        return time.perf_counter() - start

    step(model)  # lazy imports, AdamW's state
    first = step(compiled)
    eager, fast = [], []
    for _ in range(args.steps):
        eager.append(step(model))
        fast.append(step(compiled))
    e, c = statistics.median(eager), statistics.median(fast)
    print(f"{args.model}, {args.batch} x {args.points} points, backend {args.backend}")
    print(f"first compiled step {first:.2f} s (compilation included)")
    print(f"eager step {e:.3f} s, compiled step {c:.3f} s: x{e / c:.2f}")


if __name__ == "__main__":
    main()
