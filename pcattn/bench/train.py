"""Training speed of whole models (``pcattn bench train``), with a PyG-built peer.

Each model runs in a fresh process on the ModelNet40 recipe: ``B`` clouds of ``N`` points
with normals (``data.x``), 40 classes, the ``modelnet`` augmentation (random anisotropic
scale, shift, shuffle) on every training cloud, PyG's ``DataLoader``, AdamW. Segmentation
models get the ShapeNetPart shape of the task (50 parts in 16 categories, the
``shapenetpart`` augmentation). The clouds are random points on a sphere (the speed of a
step does not depend on the shapes). Measured, each as the median over ``steps`` after
two warm-up steps:

- ``step``: one training step on a batch already drawn: forward, loss, backward, AdamW;
- ``data``: drawing one batch from the loader (items, augmentation, collation);
- ``e2e``: both, as a training loop runs them (with ``workers > 0`` the loader overlaps
  the step);
- ``GFLOP``: floating-point operations of one training step (forward and backward), as
  ``torch.utils.flop_counter.FlopCounterMode`` counts them (matrix products, convolutions,
  attention kernels; elementwise work is not counted);
- ``x floor``: the step's time over its floor, ``GFLOP`` at the rate a reference product
  (``[16384, 256] x [256, 256]``, a per-point linear map of 16 clouds of 1024 points) reaches
  in the same process: how far the step is from doing nothing but its matrix products;
- ``peak MB``: memory of training steps above the level after a first step (model,
  AdamW's state, data and lazy imports in place): the process's peak resident set on the
  CPU (glibc's free heap handed back with ``malloc_trim``, ``VmHWM`` reset through
  ``/proc/self/clear_refs``; else ``ru_maxrss``), ``torch.cuda.max_memory_allocated`` on
  CUDA.

The peer, ``pyg_point_transformer_cls``, is ``point_transformer_cls`` with each vector
attention layer replaced by PyG's ``PointTransformerConv`` holding the same ``pos_nn`` and
``attn_nn`` MLPs (same channels, k, sampling, embedding, transitions and head; the same
number of parameters): the same network on PyG's message passing (scatter softmax over an
``edge_index``) instead of pcattn's dense ``[M, K, C]`` neighbourhoods. Its neighbourhoods
come from pcattn's kNN, converted with ``neighbors_to_edge_index``.

A model is a registered name or a run config's ``model:`` section, with overrides after
colons as ``bench budget --configs`` takes them: ``configs/pct_synthetic.yaml:model.attention=
linear`` measures that PCT with linear attention (its row is named by the whole item).

``pointnet_cls`` (among the classifiers) is the reference without attention: a step of
per-point MLPs and one max pool, the floor the attention models' steps are read against.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import torch
from torch import Tensor, nn

from pcattn.bench.memory import peak_reset, peak_since

PEER = "pyg_point_transformer_cls"
# the model section of configs/point_transformer_modelnet40.yaml (a test checks they agree)
MODELNET40_POINT_TRANSFORMER = dict(channels=(32, 64, 128, 256), blocks=(1, 1, 1, 1), k=16,
                                    ratio=0.25)
NUM_CLASSES, NUM_PARTS, NUM_CATEGORIES = 40, 50, 16


def default_models() -> list[str]:
    """Every registered classifier (``*_cls``, ``pointnet_cls`` the reference without
    attention), ``point_transformer_seg`` and the peer."""
    from pcattn.models import list_models

    return ([n for n in list_models() if n.endswith("_cls")] + ["point_transformer_seg", PEER])


class PyGPointTransformerLayer(nn.Module):
    """PyG's ``PointTransformerConv`` behind pcattn's local block signature.

    Same formula and sub-networks as :class:`pcattn.nn.PointTransformerLayer` (default
    ``pos_nn`` and ``attn_nn`` MLPs), computed by message passing over the edges of
    ``idx``. Used as the peer in ``pcattn bench train``.

    Shape:
        x: [M, C_in], pos: [M, 3], idx: [M, K] (``-1`` padded) -> [M, C]
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        from torch_geometric.nn import PointTransformerConv

        from pcattn.nn.mlp import mlp

        self.add_self_loops = False  # read by PointTransformerBlock; idx is used as given
        self.conv = PointTransformerConv(
            in_channels, out_channels, pos_nn=mlp([3, out_channels, out_channels]),
            attn_nn=mlp([out_channels, out_channels, out_channels]), add_self_loops=False)

    def forward(self, x: Tensor, pos: Tensor, idx: Tensor, *, return_attention: bool = False
                ) -> Tensor:
        from pcattn.ops import neighbors_to_edge_index

        if return_attention:
            raise ValueError("the PyG peer returns no attention maps; it is for timing only")
        return self.conv(x, pos, neighbors_to_edge_index(idx))  # [M, C]


def _is_config(spec: str) -> bool:
    """Whether a ``--model`` item is a run config (``CONFIG[:SECTION.KEY=VALUE]...``)."""
    return spec.partition(":")[0].endswith((".yaml", ".yml"))


def _model_spec(spec: str) -> tuple[str, dict]:
    """The model name and ``model:`` values of a ``--model`` item: a model name (no values),
    or a run config's path with its own overrides after colons, as ``bench budget
    --configs`` reads them: ``configs/pct_synthetic.yaml:model.attention=linear`` is that
    file's ``model:`` section with ``attention: linear``."""
    if not _is_config(spec):
        return spec, {}
    from pcattn.bench.budget import parse_entries
    from pcattn.engine.config import load_config

    path = spec.partition(":")[0]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--model: config file not found: {path}")
    entry = parse_entries([spec])[0]
    run = load_config(entry.path, list(entry.overrides))
    return run.model_name, vars(run.model)


def _is_segmenter(spec: str) -> bool:
    """Whether ``spec`` (a model, the peer or a run config) predicts a part per point."""
    from pcattn.models.registry import model_task

    name = _model_spec(spec)[0]
    return name != PEER and model_task(name) == "part_segmentation"


def build_model(spec: str) -> nn.Module:
    """The model ``spec`` sized for the benchmark's data (the peer included), or the model
    of a run config (see :func:`_model_spec`: its ``model:`` section as written, with the
    item's overrides)."""
    import dataclasses

    from pcattn.models import create_model
    from pcattn.models.registry import model_config_class

    name, given = _model_spec(spec)
    base = "point_transformer_cls" if name == PEER else name
    seg = _is_segmenter(base)
    fields = {f.name for f in dataclasses.fields(model_config_class(base))}
    values = dict(given, num_classes=NUM_PARTS if seg else NUM_CLASSES, feature_channels=3)
    if seg:
        values["num_categories"] = NUM_CATEGORIES
    if base == "point_transformer_cls" and not given:
        values.update(MODELNET40_POINT_TRANSFORMER)
    model = create_model(base, **{k: v for k, v in values.items() if k in fields})
    if name == PEER:
        for stage in model.encoder.stages:
            for block in stage:
                block.attn = PyGPointTransformerLayer(block.in_channels, block.out_channels)
    return model


def _dataset(num_clouds: int, points: int, seg: bool, seed: int = 0):
    """Random clouds on the unit sphere with their normals, held packed as the real
    datasets hold them, read through the same ``CloudDataset`` item path."""
    from pcattn.data.base import CloudDataset
    from pcattn.data.transforms import preset

    g = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(num_clouds * points, 3, generator=g), dim=1)
    labels = torch.randint(NUM_CATEGORIES if seg else NUM_CLASSES, (num_clouds,), generator=g)

    data = CloudDataset()
    data.segmentation = seg
    data.store = {"pos": pos, "x": pos.clone(), "label": labels,
                  "ptr": torch.arange(num_clouds + 1) * points,
                  "seg": torch.randint(NUM_PARTS, (num_clouds * points,), generator=g)}
    data.split, data.seed, data.use_normals, data.resample = "train", seed, True, None
    data.transform = preset("shapenetpart" if seg else "modelnet", "train", generator=seed)
    return data


REFERENCE_MM = (16384, 256, 256)  # rows, inner, columns of the product that sets the floor


def step_flops(step, *args) -> float:
    """Floating-point operations of ``step(*args)`` (forward and backward), counted by
    ``FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(*args)
    return float(counter.get_total_flops())


def matmul_rate(device: torch.device, repeats: int = 5) -> float:
    """FLOP/s of :data:`REFERENCE_MM` on ``device``, the median of ``repeats`` products."""
    m, k, n = REFERENCE_MM
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / statistics.median(times[1:])


def measure_model(name: str, *, points: int = 1024, batch: int = 16, steps: int = 10,
                  workers: int = 0, device: str = "cpu", seed: int = 0) -> dict:
    """Times of one model (see the module docstring); runs in the calling process."""
    from torch_geometric.loader import DataLoader

    dev = torch.device(device)
    torch.manual_seed(seed)
    seg = _is_segmenter(name)
    model = build_model(name).to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    warmup = 2
    dataset = _dataset(batch * (steps + warmup), points, seg, seed)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(seed))

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def step(data) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(data), data.y)
        loss.backward()
        optimizer.step()
        sync()

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    step(next(iter(loader)).to(dev))  # lazy imports (open3d...), AdamW's state
    base = peak_reset(dev)
    data_s, e2e_s = [], []
    for epoch in range(2):  # 1: the data path alone; 2: the loop as training runs it
        it, times = iter(loader), []
        for i in range(steps + warmup):
            if epoch == 0:
                t = timed(lambda: next(it))
            else:
                t = timed(lambda: step(next(it).to(dev)))
            if i >= warmup:
                times.append(t)
        (data_s if epoch == 0 else e2e_s).extend(times)
    batch_data = next(iter(loader)).to(dev)
    step(batch_data)
    step_s = [timed(lambda: step(batch_data)) for _ in range(steps)]
    peak = peak_since(base, dev)
    flops, rate = step_flops(step, batch_data), matmul_rate(dev)
    med = {k: statistics.median(v) for k, v in
           [("step", step_s), ("data", data_s), ("e2e", e2e_s)]}
    return {"model": name, "params": sum(p.numel() for p in model.parameters()),
            "step_s": med["step"], "data_s": med["data"], "e2e_s": med["e2e"],
            "step_clouds_per_s": batch / med["step"], "e2e_clouds_per_s": batch / med["e2e"],
            "data_share": med["data"] / (med["step"] + med["data"]), "peak_mb": peak,
            "gflop": flops / 1e9, "matmul_gflops": rate / 1e9,
            "x_floor": med["step"] / (flops / rate) if flops else float("nan")}


def run(models: list[str] | None = None, *, points: int = 1024, batch: int = 16,
        steps: int = 10, workers: int = 0, device: str = "cpu", as_json: bool = False
        ) -> list[dict]:
    """Measure each model in a fresh process; print a table (or JSON) and return the rows."""
    import multiprocessing as mp

    from pcattn.devices import resolve_device

    device = str(resolve_device(device, "--device"))
    for key, value in (("points", points), ("batch", batch), ("steps", steps)):
        if value < 1:
            raise ValueError(f"--{key} must be >= 1, got {value}")
    models = models or default_models()
    known = set(default_models()) | set(_registered())
    unknown = [m for m in models if m not in known and not _is_config(m)]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {sorted(known)}, or a run "
                         "config's path (configs/x.yaml[:model.KEY=VALUE...])")
    for spec in (m for m in models if m not in known):
        _model_spec(spec)  # a missing or wrong config is said before any model runs
    ctx = mp.get_context("spawn")
    meta = {"points": points, "batch": batch, "steps": steps, "workers": workers,
            "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpus": os.cpu_count()}
    width = max(28, *map(len, models))
    if not as_json:
        print(f"B={batch} x N={points}, {steps} steps, workers={workers}, device={device}, "
              f"{meta['threads']} threads")
        print(f"{'model':<{width}} {'params':>9} {'step ms':>8} {'data ms':>8} {'e2e ms':>8} "
              f"{'step cl/s':>9} {'e2e cl/s':>9} {'data %':>7} {'peak MB':>8} {'GFLOP':>7} "
              f"{'x floor':>7}", flush=True)
    rows = []
    for name in models:
        with ctx.Pool(1) as pool:
            row = pool.apply(measure_model, (name,), dict(points=points, batch=batch,
                                                          steps=steps, workers=workers,
                                                          device=device))
        rows.append(row)
        if not as_json:
            print(f"{name:<{width}} {row['params']:>9,} {1e3 * row['step_s']:8.1f} "
                  f"{1e3 * row['data_s']:8.1f} {1e3 * row['e2e_s']:8.1f} "
                  f"{row['step_clouds_per_s']:9.1f} {row['e2e_clouds_per_s']:9.1f} "
                  f"{100 * row['data_share']:7.1f} {row['peak_mb']:8.1f} {row['gflop']:7.1f} "
                  f"{row['x_floor']:7.2f}", flush=True)
    if as_json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return rows


def _registered() -> list[str]:
    from pcattn.models import list_models

    return list_models()
