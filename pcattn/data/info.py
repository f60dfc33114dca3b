"""What a data root holds (``pcattn data info``) and building its caches (``pcattn data
prepare``). Counting reads only split lists, folder listings and the label arrays of h5
and voxel files."""

from __future__ import annotations

import os
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np

from pcattn.data.errors import DatasetNotFoundError, SplitMissingError
from pcattn.data.layouts import CACHE_DIRNAME, LAYOUTS, Layout, find_layouts, not_found_error


def dataset_name(layout: Layout) -> str:
    """The registry name that reads ``layout`` (ModelNet10 if its folder says 10)."""
    if layout.kind.startswith("shapenetpart"):
        return "shapenetpart"
    if layout.kind == "folder":
        return "folder"
    if layout.kind == "modelnet_voxels":
        from pcattn.data.layouts import VOXEL_FILE, voxel_files

        variants = {VOXEL_FILE.match(p.name).group(2) for p in voxel_files(layout.path)}
        return "modelnet10" if variants == {"10"} else "modelnet40"
    ten = "10" in layout.path.name or (
        layout.kind == "modelnet_normal"
        and not (layout.path / "modelnet40_shape_names.txt").is_file())
    return "modelnet10" if ten else "modelnet40"


def _counts(layout: Layout, name: str) -> tuple[list[str], dict[str, Counter], list[str]]:
    """Class names, per split the number of clouds of each class, and the splits whose
    files are not there."""
    if name.startswith("modelnet"):
        from pcattn.data import modelnet as m

        variant = int(name[len("modelnet"):])
        classes, splits = m.modelnet_classes(layout, variant), m.SPLITS
        lister = lambda s: m.list_files(layout, s, variant)  # noqa: E731
        label_key, h5_keys = "label", ("data", "label")
    elif name == "shapenetpart":
        from pcattn.data import shapenetpart as sp

        classes, splits = list(sp.SHAPENETPART_CATEGORIES), ("train", "val", "test")
        lister = lambda s: sp.list_files(layout, s)  # noqa: E731
        label_key, h5_keys = "label", ("data", "label", "pid")
    else:
        from pcattn.data import folder as fo

        classes, splits = fo.folder_classes(layout.path), fo.SPLITS
        lister = lambda s: fo.list_files(layout.path, s)[0]  # noqa: E731
        label_key = h5_keys = None
    out, missing = {}, []
    for s in splits:
        c: Counter = Counter()
        try:
            listed = lister(s)
        except SplitMissingError:  # e.g. a voxel file without its test file
            missing.append(s)
            continue
        for f, label in listed:
            if label >= 0:
                c[label] += 1
            else:  # an h5 file: count its labels
                from pcattn.data.h5 import read_h5

                labels = read_h5(f, h5_keys)[label_key].reshape(-1)
                if name == "modelnet10":
                    labels = [classes.index(n) for n in (np.array(m.modelnet_classes(
                        layout, 40))[labels]) if n in classes]
                c.update(int(v) for v in labels)
        out[s] = c
    return classes, out, missing


def describe(root: str | os.PathLike) -> list[dict]:
    """One dict per layout found under ``root``: kind, path, name, classes, counts, caches.

    Falls back to the folder-per-class layout when no benchmark layout is there.
    """
    root = Path(root)
    layouts = find_layouts(root)
    if not layouts:
        from pcattn.data.folder import folder_classes

        try:
            folder_classes(root)
        except FileNotFoundError:
            raise not_found_error(root, tuple(LAYOUTS)) from None
        layouts = [Layout("folder", root)]
    out = []
    for layout in layouts:
        name = dataset_name(layout)
        entry = {"kind": layout.kind, "path": str(layout.path), "name": name}
        try:
            classes, counts, missing = _counts(layout, name)
            entry.update(classes=classes, splits={s: sum(c.values()) for s, c in counts.items()},
                         missing_splits=missing,
                         per_class={s: {classes[k]: v for k, v in sorted(c.items())}
                                    for s, c in counts.items()})
        except (OSError, ValueError) as err:
            entry["error"] = str(err)
        cache = layout.path / CACHE_DIRNAME
        entry["caches"] = sorted(p.name for p in cache.glob("*.pt")) if cache.is_dir() else []
        out.append(entry)
    return out


def format_description(found: list[dict]) -> str:
    """Human-readable text of :func:`describe`'s result."""
    lines = []
    for e in found:
        lines.append(f"{e['path']}")
        lines.append(f"  layout:  {e['kind']}  (data.name: {e['name']})")
        if "error" in e:
            lines.append(f"  problem: {e['error']}")
        else:
            present = sorted({c for per in e["per_class"].values() for c in per})
            lines.append(f"  classes: {len(e['classes'])} in the label set, {len(present)} "
                         f"with clouds" + (f" ({', '.join(present[:8])}"
                                           f"{', ...' if len(present) > 8 else ''})"
                                           if present else ""))
            absent = e.get("missing_splits", [])
            lines.append("  splits:  " + ", ".join(f"{s} {n}" for s, n in e["splits"].items())
                         + "".join(f"; no {s} split here" for s in absent))
            for s, per in e["per_class"].items():
                text = ", ".join(f"{c} {n}" for c, n in per.items()) or "none"
                lines += textwrap.wrap(text, 96, initial_indent=f"  {s + ':':9}",
                                       subsequent_indent=" " * 11)
        lines.append(f"  caches:  {len(e['caches'])}" + (
            f" ({', '.join(e['caches'][:4])}{', ...' if len(e['caches']) > 4 else ''})"
            if e["caches"] else ""))
    return "\n".join(lines)


def guess_name(root: str | os.PathLike, layout: str = "auto") -> str:
    """The dataset name (``data.name``) for the first layout under ``root``."""
    found = find_layouts(root)
    match = [f for f in found if layout in ("auto", f.kind)]
    if match:
        return dataset_name(match[0])
    if layout in ("auto", "folder"):
        from pcattn.data.folder import folder_classes

        try:
            folder_classes(Path(root))
            return "folder"
        except FileNotFoundError:
            pass
    root = Path(root)
    if not root.is_dir() or layout != "auto":
        raise not_found_error(root, tuple(LAYOUTS) if layout == "auto" else (layout,))
    raise DatasetNotFoundError(
        f"{root} {'is empty' if not any(root.iterdir()) else 'holds no dataset pcattn knows'}"
        "; data.name says what it should hold: " + "; ".join(
            f"{name}: {what}" for name, what in NAME_EXPECTS.items())
        + ". Set it (pcattn data prepare ROOT --set name=NAME) to see the files that name "
        "looks for; pcattn never downloads data")


# what each data.name reads under its root, for the message of a root that holds nothing
NAME_EXPECTS = {
    "modelnet40 / modelnet10": "a ModelNet release (layouts " + ", ".join(
        k for k in LAYOUTS if k.startswith("modelnet")) + ")",
    "shapenetpart": "a ShapeNetPart release (layouts " + ", ".join(
        k for k in LAYOUTS if k.startswith("shapenetpart")) + ")",
    "folder": "your own clouds as <root>/<class>/<file> (.ply, .txt, .off, ...)",
    "synthetic_shapes / synthetic_parts": "nothing: the clouds are generated into root",
}


def prepare(cfg, *, progress: bool = True) -> dict[str, int]:
    """Build the caches of the train and test splits that the data config ``cfg``
    (a :class:`~pcattn.data.registry.DataConfig`) reads. Returns clouds per split; a
    split whose files are not there (a voxel file without its test file) is left out."""
    from pcattn.data.registry import build_dataset

    out = {}
    for s in ("train", "test"):
        try:
            out[s] = len(build_dataset(cfg, s, progress=progress))
        except SplitMissingError:
            if s == "train":
                raise
    return out
