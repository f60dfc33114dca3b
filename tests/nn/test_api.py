"""The block contract of docs/blocks.md, checked on every public block of pcattn.nn at once:
one calling convention, one attention-map type, permutation equivariance."""

from __future__ import annotations

import inspect

import pytest
import torch

from blockzoo import POSITIONAL, ZOO, problem, public_blocks, within_clouds_permutation
from pcattn.nn import AttentionMap

ATTENTION = [name for name, e in ZOO.items() if e.attention]
# names of the parameters a constructor may take positionally (the widths)
POSITIONAL_INIT = {"in_channels", "out_channels", "num_classes", "num_frequencies"}


def _forward(obj):
    return obj.forward if isinstance(obj, type) else obj


def test_the_zoo_holds_every_public_block():
    assert {name.split("(")[0] for name in ZOO} == set(public_blocks())


@pytest.mark.parametrize("name", sorted(public_blocks()))
def test_signature_follows_the_convention(name):
    obj = public_blocks()[name]
    kind = ZOO[name].kind
    params = [p for p in inspect.signature(_forward(obj)).parameters.values()
              if p.name != "self"]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD)]
    if kind in POSITIONAL:
        assert positional == POSITIONAL[kind], name
    if kind == "head":
        assert positional in (["x"], ["x", "batch"]), name
    by_name = {p.name: p for p in params}
    if ZOO[name].attention:
        flag = by_name["return_attention"]
        assert flag.kind == flag.KEYWORD_ONLY and flag.default is False, name
    else:
        assert "return_attention" not in by_name, name
    for key in ("batch", "num_clouds", "query", "query_batch", "edge_attr", "pos"):
        if key in by_name and key not in positional:
            assert by_name[key].kind == by_name[key].KEYWORD_ONLY, (name, key)
    if "batch" in by_name:
        assert by_name["batch"].default is None, f"{name}: batch must be optional"
    if isinstance(obj, type):
        init = [p for p in inspect.signature(obj.__init__).parameters.values()
                if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD]
        assert {p.name for p in init} <= POSITIONAL_INIT, name


def _cloud(ids, p, name, amap, role):
    """The cloud of each query / source id of ``amap.to_sparse()``."""
    m = p.x.shape[0]
    if name in ("GlobalTokens", "InducedSetAttention"):  # ids >= M: T tokens per cloud
        t = (amap.num_sources - m) // len(p.batch.unique())
        return torch.where(ids < m, p.batch[ids.clamp(max=m - 1)], (ids - m) // t)
    if role == "query" and (amap.kind == "pool" or name == "NadarayaWatsonPool"):
        return ids  # one query per cloud
    if role == "source" and name.startswith("TransitionUp"):
        return p.coarse[2][ids]
    return p.batch[ids]


@pytest.mark.parametrize("name", ATTENTION)
def test_attention_map(name, device):
    entry, p = ZOO[name], problem(device)
    block = entry.make().to(device)
    out, amap = entry.run(block, p, return_attention=True)
    assert isinstance(amap, AttentionMap)
    torch.testing.assert_close(entry.run(block, p), out)  # the weights of the same path
    if amap.kind == "channel":
        assert amap.weight.shape == (2, 8) and ((amap.weight > 0) & (amap.weight < 1)).all()
        with pytest.raises(ValueError, match="channel"):
            amap.to_sparse()
        return
    q, s, w = amap.to_sparse()
    assert w.dim() == 2 and w.shape[1] == amap.heads and (w >= 0).all()
    assert (s >= 0).all()
    if amap.num_sources is not None:
        assert (s < amap.num_sources).all()
    assert torch.equal(_cloud(q, p, name, amap, "query"), _cloud(s, p, name, amap, "source"))
    # every query's weights sum to 1 (OffsetAttention: its transposed map, PCT's columns)
    assert amap.transposed == (name == "OffsetAttention")
    total = torch.zeros(int(q.max()) + 1, w.shape[1], device=device).index_add_(0, q, w)
    present = q.unique()
    torch.testing.assert_close(total[present], torch.ones_like(total[present]))


def test_padding_never_shows_in_a_local_map():
    p = problem()
    entry = ZOO["LocalSelfAttention"]
    _, amap = entry.run(entry.make(), p, return_attention=True)
    assert (p.idx == -1).any()  # the small cloud is padded
    assert (amap.weight[p.idx < 0] == 0).all()
    _, s, _ = amap.to_sparse()
    assert s.numel() == int((p.idx >= 0).sum())


@pytest.mark.parametrize("name", sorted(ZOO))
def test_permutation(name, device):
    """Outputs per node follow a permutation of the nodes of each cloud; per-cloud outputs
    do not move; sampled nodes are the same set with the same features."""
    entry, p = ZOO[name], problem(device)
    perm = within_clouds_permutation(device)
    block = entry.make()
    block = block.to(device) if isinstance(block, torch.nn.Module) else block
    out, out_p = entry.run(block, p), entry.run(block, p.permuted(perm))
    tol = dict(atol=1e-5, rtol=1e-4)
    if entry.output == "nodes":
        torch.testing.assert_close(out_p, out[perm], **tol)
    elif entry.output == "clouds":
        torch.testing.assert_close(out_p, out, **tol)
    else:  # sampled: (x, pos, batch, index into the input)
        match = torch.cdist(out_p[1], out[1]).argmin(1)
        torch.testing.assert_close(out_p[1], out[1][match])
        torch.testing.assert_close(out_p[0], out[0][match], **tol)
        assert torch.equal(perm[out_p[3]], out[3][match])
