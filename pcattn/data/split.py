"""A validation split held out of the training clouds: stratified by class, seeded, the same
for every model; and :class:`HeldOut`, the dataset of one part of such a split.

``build_dataset(cfg, "train" | "val")`` uses them when ``data.val_fraction > 0``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch


def stratified_split(labels: torch.Tensor | Sequence[int], fraction: float, *, seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(train, val)`` of a stratified split of clouds labelled ``labels``.

    Each class of ``n_c`` clouds gives ``round(fraction * n_c)`` of them (rounded half up) to
    val, at least 1 when ``n_c >= 2`` and at most ``n_c - 1``, so that every class keeps a
    training cloud. Within a class the clouds are ranked by a hash of ``(seed, class,
    position)``: the split depends on nothing else (not on the model, the process or the
    library versions), and another seed draws another one.

    Args:
        labels: the class (classification) or category (part segmentation) of each cloud.
        fraction: in ``(0, 1)``.
        seed: ``data.seed``.

    Shape:
        labels: [S] -> train: [S - V], val: [V] (both sorted, disjoint, together ``0..S-1``)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the val fraction must be in (0, 1), got {fraction}")
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)  # [S]
    val: list[int] = []
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).reshape(-1).tolist()
        n = len(members)
        k = min(n - 1, max(1 if n >= 2 else 0, math.floor(fraction * n + 0.5)))
        val += sorted(members, key=lambda i: _rank(seed, c, i))[:k]
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[val] = True
    return torch.nonzero(~is_val).reshape(-1), torch.nonzero(is_val).reshape(-1)


def _rank(seed: int, label: int, position: int) -> bytes:
    return hashlib.blake2b(f"{seed}/{label}/{position}".encode(), digest_size=8).digest()


class HeldOut(torch.utils.data.Dataset):
    """The clouds ``indices`` of ``dataset``, in that order, as a dataset of their own.

    It answers what the engine and ``pcattn.viz`` read of a dataset: the per-dataset
    attributes (``num_classes``, ``classes``, ``categories``, ``part_mask``, the ``resample``
    and ``transform`` whose generators a checkpoint saves, ...) are ``dataset``'s; ``labels``
    and the cloud ``names`` are those of the kept clouds.

    Args:
        dataset: a map-style dataset with ``labels`` (class or category of each cloud).
        indices: positions in ``dataset``.
        name: which part this is (``"train"`` or ``"val"``).
        of: the split of ``dataset`` it is taken from (``"train"``, ``"trainval"``).

    Shape:
        indices: [S'] (into ``dataset``'s S clouds)
    """

    FORWARDED = ("num_classes", "num_categories", "classes", "categories", "parts",
                 "part_mask", "segmentation", "resample", "transform", "skipped", "source",
                 "seed", "use_normals")

    def __init__(self, dataset, indices: torch.Tensor | Sequence[int], *, name: str,
                 of: str = "train") -> None:
        self.dataset, self.name, self.of = dataset, name, of
        self.indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)  # [S']

    def __getattr__(self, key: str):
        # only called for what the instance lacks; never recurse before __init__ ran
        if key in HeldOut.FORWARDED and "dataset" in self.__dict__:
            return getattr(self.__dict__["dataset"], key)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[int(self.indices[int(i)])]

    @property
    def labels(self) -> torch.Tensor:
        """Class (classification) or category (segmentation) of each kept cloud. Shape: [S']."""
        return torch.as_tensor(self.dataset.labels)[self.indices]

    @property
    def names(self) -> list[str]:
        """The name of each kept cloud (datasets read from files name their clouds)."""
        names = cloud_names(self.dataset)
        if names is None:
            raise AttributeError(f"{type(self.dataset).__name__} does not name its clouds")
        return [names[i] for i in self.indices.tolist()]

    def __repr__(self) -> str:
        return (f"HeldOut({self.name!r}, {len(self)} of the {len(self.dataset)} clouds of "
                f"{self.dataset!r})")


def cloud_names(dataset) -> list[str] | None:
    """The name of each cloud of ``dataset`` (the file, or ``file[row]``), or None where
    clouds have no names (synthetic sets, whose ``names`` are their classes)."""
    from pcattn.data.base import CloudDataset

    return list(dataset.names) if isinstance(dataset, CloudDataset) else None


def split_record(train: HeldOut) -> dict:
    """What ``train`` leaves out of its dataset, for ``split.json``: the clouds per class in
    each part, and the held-out clouds of each class by name (or, for clouds without names,
    by position in the ``of`` split of the dataset)."""
    source = train.dataset
    labels = torch.as_tensor(source.labels).reshape(-1)  # [S]
    is_val = torch.ones(len(labels), dtype=torch.bool)
    is_val[train.indices] = False
    groups = getattr(source, "classes", None) or getattr(source, "categories", None) or ()
    label_name = (lambda c: str(groups[c])) if groups else str  # noqa: E731
    names = cloud_names(source)
    per_class, held = {}, {}
    for c in labels.unique().tolist():
        members = labels == c
        key = label_name(c)
        per_class[key] = {"train": int((members & ~is_val).sum()),
                          "val": int((members & is_val).sum())}
        positions = torch.nonzero(members & is_val).reshape(-1).tolist()
        held[key] = [names[i] for i in positions] if names is not None else positions
    return {"of": train.of, "clouds": len(labels), "train": len(train),
            "val": int(is_val.sum()), "val_clouds_by": "name" if names is not None else
            f"position in the {train.of} split", "per_class": per_class, "val_clouds": held}
