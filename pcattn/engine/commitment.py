"""``train.commitment_weight``: the Routing Transformer's commitment loss as an extra loss of
a training."""

from __future__ import annotations

from torch import Tensor, nn

from pcattn.nn.cluster_attention import ClusterAttention


def cluster_blocks(model: nn.Module, model_name: str) -> list[ClusterAttention]:
    """Every :class:`~pcattn.nn.ClusterAttention` of ``model``; an error if it has none."""
    blocks = [m for m in model.modules() if isinstance(m, ClusterAttention)]
    if not blocks:
        raise ValueError(f"train.commitment_weight > 0 needs a model with ClusterAttention "
                         f"blocks (e.g. pct_cls with model.attention: cluster); {model_name} "
                         f"has none; set train.commitment_weight: 0")
    return blocks


def commitment_loss(blocks: list[ClusterAttention], weight: float) -> Tensor:
    r"""``weight`` times the sum over ``blocks`` of the commitment loss of their last
    training forward, :math:`w \sum_b \frac{1}{M H} \sum_{i,h}
    \lVert \hat k^h_i - \mu^h_{c^h(i)} \rVert^2` (a scalar with gradient to the keys)."""
    return weight * sum(b.commitment_loss for b in blocks if b.commitment_loss is not None)
