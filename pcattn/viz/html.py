"""One self-contained, offline HTML page to explore a model's attention on a cloud.

The page inlines plotly.js and the model's sparse attention maps (weights in float16) and
computes in the browser what :mod:`pcattn.viz.quantities` computes in Python: the map of the
clicked queries (relative to uniform or absolute), the attention received and the rollout
(page.js beside this file). Rotate and zoom the cloud, click a point to make it the query
(shift-click adds one), choose layer, head, mode and scale from menus or step through the
layers; the predicted (and true) class or parts and each layer's focus
(:mod:`pcattn.viz.focus`) are shown beside the cloud.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pcattn.nn.attention_map import LayerAttention
from pcattn.viz.colors import Scale
from pcattn.viz.focus import Focus, focus_stats
from pcattn.viz.quantities import layer_triples, select_layer
from pcattn.viz.view import MODES, QUANTITY

PAGE_BUDGET = 15_000_000  # bytes: per-head weights, then whole layers, are left out beyond it
PAGE_JS = Path(__file__).with_name("page.js")


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def layer_payload(layer: LayerAttention, with_heads: bool) -> dict:
    """One layer as CSR rows over input points: ``query`` (row points), ``rowptr``, ``col``
    (source points), ``mean`` (weights averaged over heads, float16) and, with
    ``with_heads``, ``w`` ([nnz, H] row-major float16). Arrays are base64."""
    rows, cols, _ = layer_triples(layer)
    _, _, w = layer.map.to_sparse()  # [nnz, H]
    order = torch.argsort(rows, stable=True)
    rows, cols, w = rows[order].cpu(), cols[order].cpu(), w[order].float().cpu()
    query, counts = torch.unique_consecutive(rows, return_counts=True)
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    out = {
        "name": layer.name, "kind": layer.map.kind, "residual": bool(layer.residual),
        "heads": int(w.shape[1]), "nnz": int(cols.numel()),
        "query": _b64(query.numpy().astype(np.uint32)),
        "rowptr": _b64(rowptr.numpy().astype(np.uint32)),
        "col": _b64(cols.numpy().astype(np.uint32)),
        "sources": _b64(layer.source_index.cpu().numpy().astype(np.uint32)),
        "mean": _b64(w.mean(1).numpy().astype(np.float16)),
        "w": _b64(w.numpy().astype(np.float16)) if with_heads else None,
    }
    if layer.map.kind != "pool":  # query nodes, also those that read nothing
        out["query_nodes"] = _b64(layer.query_index.cpu().numpy().astype(np.uint32))
    return out


def page_data(pos: Tensor, layers: Sequence[LayerAttention], *, title: str = "",
              layer: int | str = 0, head: int | None = None, mode: str = "map",
              queries: Sequence[int] = (0,), relative: bool | None = None,
              labels: dict | None = None, focus: Sequence[Focus] | None = None,
              budget: int = PAGE_BUDGET) -> dict:
    """Everything the page embeds, within ``budget`` bytes with plotly.js: the layer the
    page opens on, then the others in order, each while it fits (a layer that does not is
    listed as left out: the PNG draws it), then their per-head weights while they fit (the
    others offer the mean over heads only). ``labels``:
    :func:`~pcattn.viz.run.predicted_labels`; ``focus``: per layer (default:
    :func:`~pcattn.viz.focus.focus_stats` of ``layers``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    i = select_layer(layers, layer)
    if head is not None and not -layers[i].map.heads <= head < layers[i].map.heads:
        raise ValueError(f"head {head} is out of range: layer {layers[i].name!r} has heads "
                         f"0..{layers[i].map.heads - 1}")
    left = budget - fixed_size(pos.shape[0])
    sizes = []
    for la in layers:
        nnz = la.map.to_sparse()[0].numel()
        base = nnz * (4 + 2) * 4 // 3 + 4 * (la.query_index.numel() + la.source_index.numel())
        sizes.append((base, nnz * la.map.heads * 2 * 4 // 3 if la.map.heads > 1 else None))
    kept = set()
    for j in [i, *(j for j in range(len(layers)) if j != i)]:
        if sizes[j][0] <= left or j == i:
            kept.add(j)
            left -= sizes[j][0]
    payload = []
    for j, la in enumerate(layers):
        if j not in kept:
            payload.append({"name": la.name, "kind": la.map.kind, "heads": la.map.heads,
                            "left_out": True})
            continue
        with_heads = sizes[j][1] is not None and sizes[j][1] <= left
        left -= sizes[j][1] if with_heads else 0
        payload.append(layer_payload(la, with_heads))
    for entry, f in zip(payload, focus if focus is not None else focus_stats(layers)):
        entry["focus"] = {"entropy": [round(float(v), 4) for v in f.entropy],
                          "top1": [round(float(v), 4) for v in f.top1],
                          "uniform_top1": round(f.uniform_top1, 4)}
    parts = (labels or {}).get("parts") or (None, None)
    return {
        "title": title, "n": int(pos.shape[0]),
        "pos": _b64(pos.detach().float().cpu().numpy()),
        "layers": payload,
        "labels": (labels or {}).get("text", ""),
        "parts": [None if p is None else _b64(p.cpu().numpy().astype(np.uint8)) for p in parts],
        "quantity": {f"{m},{int(r)}": q for (m, r), q in QUANTITY.items()},
        "diverging": Scale(True, -1, 1).colorscale(), "sequential": Scale(
            False, 0, 1).colorscale(),
        "init": {"layer": i, "head": head, "mode": mode, "queries": [int(q) for q in queries],
                 "relative": mode != "rollout" if relative is None else bool(relative)},
    }


def save_html(path: str | Path, pos: Tensor, layers: Sequence[LayerAttention], *,
              title: str = "", layer: int | str = 0, head: int | None = None,
              mode: str = "map", queries: Sequence[int] = (0,), relative: bool | None = None,
              labels: dict | None = None, focus: Sequence[Focus] | None = None,
              budget: int = PAGE_BUDGET) -> Path:
    """Write the page for the cloud ``pos`` and its ``layers``, opening on the given
    layer, head (``None``: mean), mode, query points and scale (``relative`` to uniform;
    default for map and received). Returns the path.

    Shape:
        pos: [N, 3]
    """
    data = page_data(pos, layers, title=title, layer=layer, head=head, mode=mode,
                     queries=queries, relative=relative, labels=labels, focus=focus,
                     budget=budget)
    html = _TEMPLATE.format(
        title=_escape(title or "pcattn attention"), plotly=_plotly_js(),
        data=json.dumps(data, separators=(",", ":")).replace("</", "<\\/"),
        page=PAGE_JS.read_text())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def fixed_size(num_points: int) -> int:
    """Bytes of a page before its layers: plotly.js, page.js, the template, the points,
    labels and focus numbers (a bound)."""
    return (len(_plotly_js()) + len(PAGE_JS.read_text()) + len(_TEMPLATE) + 64 * num_points
            + 8192)


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval';
               style-src 'unsafe-inline'; img-src data: blob:; worker-src blob:">
<style>
body {{ font-family: sans-serif; margin: 0; height: 100vh; display: flex;
       flex-direction: column; }}
#bar {{ padding: 6px 10px; background: #f3f3f3; display: flex; gap: 14px; align-items: center;
       flex-wrap: wrap; font-size: 14px; }}
#info {{ padding: 3px 10px; font-size: 13px; color: #444; display: flex; gap: 14px;
        flex-wrap: wrap; }}
#plot {{ flex: 1; min-height: 0; }}
#focus {{ color: #225; }}
.swatch {{ display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 8px; }}
</style></head>
<body>
<div id="bar"><b id="title"></b> <span id="labels"></span>
<label>layer <select id="layer"></select></label>
<input id="depth" type="range" min="0" step="1" title="layers in forward order">
<button id="play" title="step through the layers">play</button>
<label>head <select id="head"></select></label>
<label>mode <select id="mode"></select></label>
<label>scale <select id="scale"><option value="1">relative to uniform</option>
<option value="0">absolute</option></select></label></div>
<div id="info"><span id="status"></span> <span id="focus"></span> <span id="legend"></span></div>
<div id="plot"></div>
<script>{plotly}</script>
<script>const PCATTN_DATA = {data};</script>
<script>{page}</script>
</body></html>
"""
