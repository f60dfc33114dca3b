"""``pcattn visualize``: a trained model's attention on one cloud, written as PNG, PLY, HTML.

The model is rebuilt from a checkpoint (``weights_only`` loading) and run once on the cloud
with ``forward_features(data, return_attention=True)``; everything drawn comes from the
``"attention"`` list it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from pcattn.engine.checkpoint import checkpoint_path
from pcattn.engine.run_folder import load_model
from pcattn.engine.user_cloud import category_index

def load_sample(run, sample: str | None = None, file: str | Path | None = None,
                category: str | None = None, categories: list[str] | None = None, *,
                max_points: int | None = None, sampling: str = "auto", say=None) -> Data:
    """One cloud: ``sample="test:17"`` (item 17 of the run's test split; ``"test:torus"``:
    its first cloud of that class or category) or a file read like the run's data (centred
    and scaled to the unit sphere; more than ``max_points`` points, default the training
    ``num_points``, are down-sampled by ``sampling``; see :mod:`pcattn.engine.user_cloud`).
    A part-segmentation model needs the object ``category`` of a file (a name of
    ``categories`` or an index); options that cannot apply are errors."""
    from pcattn.data.registry import build_dataset

    if (sample is None) == (file is None):
        raise ValueError("give one cloud: --sample SPLIT:INDEX (e.g. test:17) or --file PATH")
    needed = getattr(run.model, "num_categories", 0)
    if category is not None and (file is None or not needed):
        why = ("the --sample cloud brings its own category" if file is None else
               f"{run.model_name} takes no object category")
        raise ValueError(f"--category does not apply: {why}; leave it out")
    if file is not None:
        data = _file_sample(run, Path(file), max_points, sampling, say)
        if needed:
            data.category = torch.tensor([category_index(category, categories, needed)])
        return data
    if max_points is not None or sampling != "auto":
        raise ValueError("--max-points and --sampling apply to --file clouds; a --sample "
                         "cloud is read as the run's data is; leave them out")
    split, sep, index = str(sample).partition(":")
    if not sep or not index:
        raise ValueError(f"--sample expects SPLIT:INDEX or SPLIT:CLASS, like test:17 or "
                         f"test:torus, got {sample!r}")
    dataset = build_dataset(run.data, split, eval_split=run.train.eval_split)
    if not index.lstrip("-").isdigit():
        return dataset[_first_of_class(dataset, index, sample)]
    i = int(index)
    if not -len(dataset) <= i < len(dataset):
        raise ValueError(f"--sample {sample}: the {split} split has clouds 0..{len(dataset) - 1}")
    return dataset[i]


def _first_of_class(dataset, name: str, sample: str) -> int:
    """Index of the first cloud of class (or category) ``name`` in ``dataset``."""
    names = list(getattr(dataset, "classes", None) or getattr(dataset, "categories", None) or [])
    if name not in names:
        raise ValueError(f"--sample {sample}: no class {name!r} in this data; classes: {names}")
    for i in range(len(dataset)):
        item = dataset[i]
        label = item.category if getattr(item, "category", None) is not None else item.y
        if int(label.reshape(-1)[0]) == names.index(name):
            return i
    raise ValueError(f"--sample {sample}: the split has no cloud of class {name!r}")


def _file_sample(run, path: Path, max_points: int | None, sampling: str, say) -> Data:
    from pcattn.engine.user_cloud import load_user_cloud

    limit = run.data.num_points if max_points is None else max_points
    return load_user_cloud(path, run, max_points=limit, sampling=sampling, say=say).data


@torch.no_grad()
def run_model(model: nn.Module, data: Data) -> dict:
    """One forward of ``model`` on the cloud ``data``: ``{"attention": [...], "logits"}``."""
    device = next(model.parameters()).device
    batch = Batch.from_data_list([data]).to(device)
    feats = model.forward_features(batch, return_attention=True)
    if not isinstance(feats, dict) or "attention" not in feats:
        raise ValueError(f"{type(model).__name__}.forward_features(data, return_attention=True) "
                         "returned no 'attention' list; this model cannot be visualized yet")
    if not feats["attention"]:
        raise ValueError(f"{type(model).__name__} has no attention layers (forward_features "
                         "returned an empty 'attention' list): there is no attention to draw")
    return {"attention": feats["attention"], "logits": model(batch), "pos": batch.pos}


def visualize(path: str | Path | Sequence[str | Path], *, sample: str | None = None,
              file: str | Path | None = None, layer: int | str | None = None,
              head: int | None = None, query: str | None = None, mode: str = "map",
              out: str | Path | None = None, category: str | None = None,
              formats: tuple[str, ...] = ("png", "ply", "html"), device: str = "auto",
              max_points: int | None = None, sampling: str = "auto", scale: str | None = None,
              grid: str | None = None, figure_format: str = "png", stats: bool = False,
              clouds: int = 32, say=None, report=None) -> dict[str, Path]:
    """Write the attention of the model at ``path`` on one cloud; returns ``{kind: path}``.

    Files go to ``out`` (default: ``<run folder>/attention``), named for the cloud, mode,
    layer and head, so that calls with other choices do not overwrite each other. The page
    opens on the same choices and queries and offers every layer, head and mode. ``scale``:
    ``relative`` (to uniform; the default for map and received) or ``absolute``. ``grid``:
    also a figure of ``layers x heads`` or ``layers x queries``. Figures are written as
    ``figure_format`` (png, svg, pdf). ``stats``: the focus of every layer and head
    (:mod:`pcattn.viz.focus`) on this cloud and over ``clouds`` clouds of the run's test
    split, drawn and written as CSV, its table passed to ``report``. A ``file`` is read by
    :func:`load_sample` (``max_points``, ``sampling``; ``say`` gets its long steps).

    Several ``path`` (run folders or checkpoints) run on the same cloud (read with the first
    run's data): each run's files are prefixed with its folder name and go to ``out`` (default:
    the first run's), with a figure of layers x runs side by side on one scale and, with
    ``stats``, every run's focus in one table and plot.
    """
    from pcattn.fileio import output_folder
    from pcattn.viz.figures import check_grid, save_focus, save_grid, save_runs
    from pcattn.viz.png import FORMATS

    if scale not in (None, "relative", "absolute"):
        raise ValueError(f"--scale must be relative or absolute, got {scale!r}")
    if figure_format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {figure_format!r}")
    if grid is not None:
        check_grid(grid, mode, head)
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        raise ValueError("give a run folder or checkpoint to visualize")
    relative = None if scale is None else scale == "relative"
    runs, data = [], None
    for p in paths:
        ckpt_path = checkpoint_path(p)
        model, run, ckpt = load_model(ckpt_path, device)
        info = ckpt.get("dataset") or {}
        if data is None:
            data = load_sample(run, sample, file, category, info.get("categories"),
                               max_points=max_points, sampling=sampling, say=say)
        runs.append(_drawn(ckpt_path, model, run, info, data, mode, layer, head, query,
                           relative, len(paths) > 1))
    _name_apart(runs)
    over = {}  # the test-split focus first: a split that cannot be read writes nothing
    for r in runs if stats else []:
        over.update(_split_focus(r["model"], r["run"], r["label"], clouds, say) or {})
    where = output_folder(out if out is not None else runs[0]["ckpt"].parent / "attention",
                          "--out")
    cloud = Path(file).stem if file is not None else str(sample).replace(":", "_")
    written = {}
    for r in runs:
        prefix = f"{r['label']}_" if len(runs) > 1 else ""
        key = (lambda k: f"{k} {r['label']}") if len(runs) > 1 else (lambda k: k)
        files = _write_run(r, where, f"{prefix}{cloud}", mode, head, formats, figure_format)
        written.update({key(k): v for k, v in files.items()})
        if grid is not None:
            written[key("grid")] = save_grid(
                where / f"{prefix}{cloud}_{mode}_layers_x_{grid}.{figure_format}", grid,
                r["pos"], r["layers"], r["focus"], mode=mode, query=query, head=head,
                relative=r["view"].relative, title=f"{r['title']} on {cloud}{r['suffix']}",
                parts=r["labels"]["parts"])
    if len(runs) > 1:
        names = "_vs_".join(r["label"] for r in runs)
        written["runs"] = save_runs(
            where / f"{cloud}_{mode}_{names}.{figure_format}", runs[0]["pos"],
            {r["label"]: r["layers"] for r in runs}, mode=mode, query=query, head=head,
            relative=runs[0]["view"].relative, title=f"{cloud}{runs[0]['suffix']}")
    if stats:
        files, text = save_focus(
            where / (f"{cloud}_focus" if len(runs) == 1 else f"{cloud}_focus_{names}"),
            {r["label"]: r["focus"] for r in runs}, over=over, figure_format=figure_format)
        written.update(files)
        if report is not None:
            report(text)
    return written


def _drawn(ckpt_path: Path, model, run, info: dict, data: Data, mode: str, layer, head,
           query, relative, several: bool) -> dict:
    """One run's forward on the cloud and the view of the choices."""
    from pcattn.viz.focus import focus_stats
    from pcattn.viz.quantities import point_layers
    from pcattn.viz.view import make_view

    result = run_model(model, data)
    layers, pos = point_layers(result["attention"]), result["pos"]
    try:
        view = make_view(layers, pos, mode, layer, head, query, relative)
    except ValueError as err:
        if not several:
            raise
        raise ValueError(f"{ckpt_path.parent.name}: {err}") from None
    labels = predicted_labels(result["logits"].cpu(), data, info, pos.shape[0])
    return {"ckpt": ckpt_path, "model": model, "run": run, "layers": layers, "pos": pos,
            "view": view, "labels": labels, "focus": focus_stats(layers),
            "label": ckpt_path.parent.name, "title": run.model_name,
            "suffix": f"; {labels['text']}" if labels["text"] else ""}


def _name_apart(runs: list[dict]) -> None:
    """Labels that tell the runs apart: the run folder's name, numbered when repeated."""
    names = [r["label"] for r in runs]
    for i, r in enumerate(runs):
        if names.count(r["label"]) > 1:
            r["label"] = f"{r['label']}{i}"


def _write_run(r: dict, where: Path, cloud: str, mode: str, head, formats, figure_format: str
               ) -> dict[str, Path]:
    """The picture, PLY and page of one run's view."""
    from pcattn.viz.html import save_html
    from pcattn.viz.ply import save_ply
    from pcattn.viz.png import save_png
    from pcattn.viz.query import parse_query
    from pcattn.viz.view import DEFAULT_QUERY

    view, pos = r["view"], r["pos"]
    stem = f"{cloud}_{mode}_layer{view.layer}" + ("" if head is None else f"_head{head}")
    written = {}
    if "png" in formats:
        written[figure_format] = save_png(
            where / f"{stem}.{figure_format}", pos, view.values, active=view.active,
            queries=view.queries, title=f"{r['title']}: {view.label}{r['suffix']}",
            parts=r["labels"]["parts"], scale=view.scale())
    if "ply" in formats:
        written["ply"] = save_ply(where / f"{stem}.ply", pos, view.values, active=view.active,
                                  queries=view.queries, scale=view.scale())
    if "html" in formats:
        # a view without queries (received, a pooling layer) gives the page map's default ones
        queries = view.queries.tolist() or parse_query(DEFAULT_QUERY["map"], pos).tolist()
        written["html"] = save_html(
            where / f"{stem}.html", pos, r["layers"], title=f"{r['title']} on {cloud}",
            layer=view.layer, head=view.head, mode=mode, queries=queries,
            relative=view.relative, labels=r["labels"], focus=r["focus"])
    return written


def predicted_labels(logits, data: Data, info: dict, num_points: int) -> dict:
    """What the model predicts for the cloud and what is true: ``{"text": "predicted cone,
    true cone"`` (a classifier; "" for a segmenter), ``"parts": (predicted [N], truth [N] or
    None)`` (a segmenter; None for a classifier), ``"classes"`` / ``"parts_ids"``}."""
    if logits.shape[0] == num_points:  # a part per point
        mask = info.get("part_mask")
        if mask is not None and getattr(data, "category", None) is not None:
            logits = logits.masked_fill(~mask[int(data.category.reshape(-1)[0])], float("-inf"))
        truth = getattr(data, "y", None)
        return {"text": "", "parts": (logits.argmax(-1), None if truth is None else truth.cpu())}
    names = info.get("classes")
    text = f"predicted {_name(names, int(logits.argmax(-1)[0]))}"
    if getattr(data, "y", None) is not None:
        text += f", true {_name(names, int(data.y.reshape(-1)[0]))}"
    return {"text": text, "parts": None}


def _split_focus(model, run, label: str, clouds: int, say) -> dict | None:
    """``{"<label>, N test clouds": focus}`` over ``clouds`` clouds spread over the run's
    test split (None for 0)."""
    if clouds <= 0:
        return None
    from pcattn.data.registry import build_dataset
    from pcattn.viz.focus import focus_stats, merge_focus
    from pcattn.viz.quantities import point_layers

    try:
        dataset = build_dataset(run.data, "test", eval_split=run.train.eval_split)
    except (OSError, ValueError) as err:
        raise ValueError(f"--stats averages the focus over {label}'s test split, which cannot "
                         f"be read ({err}); pass --clouds 0 for this cloud only") from None
    count = min(clouds, len(dataset))
    picks = torch.linspace(0, len(dataset) - 1, count).round().long().unique().tolist()
    if say is not None:
        say(f"{label}: focus over {len(picks)} clouds of the test split")
    merged = merge_focus([focus_stats(point_layers(run_model(model, dataset[i])["attention"]))
                          for i in picks])
    return {f"{label}, {len(picks)} test clouds": merged}


def _name(names, i: int) -> str:
    return names[i] if names is not None and 0 <= i < len(names) else str(i)
