"""What ``torch.compile`` buys on a training step: eager and compiled steps of one model
alternated in one process on the same batch, compilation timed apart. Run it on a quiet
machine:

    OMP_NUM_THREADS=2 .venv/bin/python tools/bench_compile.py --steps 10

By default the model is the ModelNet40 Point Transformer (the ``model:`` section of
``configs/point_transformer_modelnet40.yaml``) on its training batch, 16 clouds of 512
points with normals; ``--model`` takes any registered model or run config. A step is
forward, loss, backward and AdamW, as ``pcattn train`` runs it (``train.compile: true``
compiles the forward the same way, ``dynamic=False``). Eager, kNN and FPS run on open3d
when it is importable; compiled, on the torch path the graph holds, so the table compares
the two default paths.

Prints the graph breaks of the forward (``torch._dynamo.explain``; 0 means
``fullgraph=True`` compiles it), then a table: the first compiled step (compilation
included), the compilation alone (that step less the median compiled step), and the
median eager and compiled steps with their ratio. ``--backend eager`` checks the set-up
quickly (dynamo alone, no code generation).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch_geometric.loader import DataLoader

from pcattn.bench.train import _dataset, _is_segmenter, build_model

MODELNET40 = "configs/point_transformer_modelnet40.yaml"


def graph_breaks(model: nn.Module, data) -> int:
    """Print the forward's graphs and where each break is; return the number of breaks."""
    explained = torch._dynamo.explain(model)(data)
    print(f"forward: {explained.graph_count} graphs, {explained.graph_break_count} breaks")
    for reason in explained.break_reasons:
        where = reason.user_stack[-1] if reason.user_stack else None
        at = f"{where.filename.split('pcattn/')[-1]}:{where.lineno}" if where else "?"
        print(f"  break at {at}: {reason.reason.splitlines()[0][:100]}")
    torch._dynamo.reset()
    return explained.graph_break_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODELNET40,
                        help="a registered model or a run config (default: %(default)s)")
    parser.add_argument("--points", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backend", default="inductor")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = next(iter(DataLoader(_dataset(args.batch, args.points, _is_segmenter(args.model)),
                                batch_size=args.batch)))
    graph_breaks(model, data)
    compiled = torch.compile(model, backend=args.backend, dynamic=False)

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
    print(f"{args.model}: {args.batch} x {args.points} points, backend {args.backend}, "
          f"{torch.get_num_threads()} threads, median of {args.steps} steps each")
    rows = [("first compiled step", first), ("compilation", first - c),
            ("eager step", e), ("compiled step", c)]
    for name, seconds in rows:
        print(f"  {name:<20} {seconds:9.3f} s")
    print(f"  {'eager / compiled':<20} {e / c:9.2f} x")


if __name__ == "__main__":
    main()
