"""Bad inputs to every public block of pcattn.nn give one error that names the block, the
argument, the shape it expects and the shape it got (pcattn/nn/checks.py)."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
import torch
from blockzoo import SIZES, ZOO, C, problem, public_blocks

M = sum(SIZES)
# blocks that take features of any width (kernel regression and pooling functions)
ANY_WIDTH = {"NadarayaWatsonLayer", "NadarayaWatsonPool", "NadarayaWatsonPool(k, query)",
             "global_max_pool", "global_mean_pool"}
# the problem field whose width each block checks (x unless named)
WIDTH_FIELD = {"FourierPositionalEncoding": "pos", "LearnedPositionalEncoding": "pos",
               "RelativePositionalEncoding": "pos"}
# the problem field whose length must match x: pos for blocks with positions, batch for the
# global blocks and pools; none where the block reads no per-node tensor beside x
ROWS_FIELD = {"local": "pos", "points": "pos", "global": "batch", "pool": "batch"}
NO_ROWS = {"GraphAttention", "PointEmbedding", "FourierPositionalEncoding",
           "LearnedPositionalEncoding", "ClassificationHead"}


def _block_name(entry_name: str) -> str:
    return entry_name.split("(")[0]


def _call(name, p):
    entry = ZOO[name]
    with pytest.raises((ValueError, TypeError)) as err:
        entry.run(entry.make(), p)
    msg = str(err.value)
    assert _block_name(name) in msg, msg
    assert "\n" not in msg
    return err.value, msg


def _shape_with(rows=r"\d+", width=r"\d+") -> str:
    return rf"\[{rows}, {width}\]"


WIDTH_CASES = sorted(set(ZOO) - ANY_WIDTH)


def test_the_case_lists_name_blocks_of_the_zoo():
    assert ANY_WIDTH | set(WIDTH_FIELD) | NO_ROWS <= set(ZOO)


@pytest.mark.parametrize("name", WIDTH_CASES)
def test_wrong_width_names_block_and_both_shapes(name):
    p = problem()
    field = WIDTH_FIELD.get(name, "x")
    good = getattr(p, field)
    w = good.shape[1]
    wide = torch.cat([good, good[:, :1]], dim=1)  # [M, w + 1]
    _, msg = _call(name, dataclasses.replace(p, **{field: wide}))
    assert re.search(_shape_with(width=w), msg), msg  # expected
    assert re.search(_shape_with(width=w + 1), msg), msg  # given


ROWS_CASES = sorted(n for n, e in ZOO.items()
                    if n not in NO_ROWS and (e.kind in ROWS_FIELD or e.kind == "head"
                                             or n == "RelativePositionalEncoding"))


@pytest.mark.parametrize("name", ROWS_CASES)
def test_wrong_length_names_block_and_both_shapes(name):
    p = problem()
    kind = ZOO[name].kind
    field = ROWS_FIELD.get(kind, "batch" if kind == "head" else "pos")
    short = getattr(p, field)[:-1]  # one node fewer than x
    _, msg = _call(name, dataclasses.replace(p, **{field: short}))
    rest = r"(, \d+)?\]"
    assert re.search(rf"\[{M}{rest}", msg), msg  # expected: M rows
    assert re.search(rf"\[{M - 1}{rest}", msg), msg  # given: M - 1 rows


DTYPE_CASES = sorted(set(ZOO) - {"PointEmbedding", "ClassificationHead"})


@pytest.mark.parametrize("name", DTYPE_CASES)
def test_integer_features_are_a_type_error(name):
    p = problem()
    field = WIDTH_FIELD.get(name, "x")
    as_int = (getattr(p, field) * 10).long()
    err, msg = _call(name, dataclasses.replace(p, **{field: as_int}))
    assert isinstance(err, TypeError) and "torch.int64" in msg and ".float()" in msg


def test_messages_read_as_documented():
    p = problem()
    layer = ZOO["PointTransformerLayer"].make()
    with pytest.raises(ValueError) as err:
        layer(p.x, p.pos[:-1], p.idx)
    assert str(err.value) == (f"PointTransformerLayer: pos must be [{M}, 3] (one row per row "
                              f"of x), got [{M - 1}, 3]")
    with pytest.raises(ValueError) as err:
        layer(p.x[:, :5], p.pos, p.idx)
    assert str(err.value) == (f"PointTransformerLayer: x must be [{M}, {C}] (in_channels={C}),"
                              f" got [{M}, 5]")
    with pytest.raises(ValueError, match=rf"idx must be \[{M}, 5\] .* got \[{M - 1}, 5\]"):
        layer(p.x, p.pos, p.idx[:-1])


# constructor arguments that must be integers >= 1, and a valid value of each
INTS = {"in_channels": C, "out_channels": C, "num_classes": 3, "heads": 2, "k": 3,
        "num_tokens": 2, "num_frequencies": 2, "num_categories": 2, "hidden_channels": 4,
        "reduction": 2, "kernel_size": 3, "qk_channels": 4, "skip_channels": C,
        "edge_dim": 2, "chunk_size": 1024, "dim": 3}


def _int_params(cls) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [n for n, prm in sig.parameters.items()
            if n in INTS and "tuple" not in str(prm.annotation)]  # heads' hidden widths


# every block class with an integer argument (all but NadarayaWatsonLayer)
BLOCK_CLASSES = sorted(n for n, o in public_blocks().items()
                       if isinstance(o, type) and _int_params(o))


def _build(cls, **change):
    kw = {}
    for n, prm in inspect.signature(cls.__init__).parameters.items():
        if n in change:
            kw[n] = change[n]
        elif prm.default is inspect.Parameter.empty and n in INTS:  # required widths
            kw[n] = INTS[n]
    return cls(**kw)


@pytest.mark.parametrize("bad", ["8", 2.5, 0, -1, True])
@pytest.mark.parametrize("name", BLOCK_CLASSES)
def test_non_integer_or_non_positive_widths_fail_at_construction(name, bad):
    cls = public_blocks()[name]
    for param in _int_params(cls):
        with pytest.raises((TypeError, ValueError)) as err:
            _build(cls, **{param: bad})
        msg = str(err.value)
        assert name in msg and param in msg and repr(bad) in msg, msg
        assert isinstance(err.value, TypeError) == (not isinstance(bad, int)
                                                    or isinstance(bad, bool))


def test_the_issue_example():
    from pcattn.nn import PointTransformerLayer

    with pytest.raises(TypeError, match=r"PointTransformerLayer: in_channels must be an "
                                        r"integer >= 1, got '64' \(str\)"):
        PointTransformerLayer("64", 64)


@pytest.mark.parametrize("name", BLOCK_CLASSES)
def test_valid_integer_widths_still_build(name):
    cls = public_blocks()[name]
    for param in _int_params(cls):
        _build(cls, **{param: INTS[param]})


# blocks that compute with positions (beyond a neighbour search): pos of another dtype than
# x (or than their parameters, for the encodings of pos alone) must be a named TypeError
POS_DTYPE_CASES = ["PointTransformerLayer", "PointTransformerBlock", "NadarayaWatsonLayer",
                   "LocalSelfAttention", "GroupedVectorAttention", "TransitionDown",
                   "TransitionUp", "TransitionUp(nadaraya_watson)", "NeighborEmbedding",
                   "FourierPositionalEncoding", "LearnedPositionalEncoding",
                   "RelativePositionalEncoding"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", POS_DTYPE_CASES)
def test_positions_of_another_dtype_are_a_named_type_error(name, dtype):
    p = problem()
    coarse = tuple(t.to(dtype) if i == 1 else t for i, t in enumerate(p.coarse))
    err, msg = _call(name, dataclasses.replace(p, pos=p.pos.to(dtype), coarse=coarse))
    assert isinstance(err, TypeError), msg
    assert "dtype" in msg and str(dtype) in msg and "torch.float32" in msg, msg
    assert "cast it with" in msg, msg


@pytest.mark.parametrize("name", sorted(ZOO))
def test_float64_positions_never_reach_torch_unnamed(name):
    p = problem()
    coarse = tuple(t.double() if i == 1 else t for i, t in enumerate(p.coarse))
    entry = ZOO[name]
    try:
        entry.run(entry.make(), dataclasses.replace(p, pos=p.pos.double(), coarse=coarse))
    except TypeError as err:  # named, like the cases above
        assert _block_name(name) in str(err) and "dtype" in str(err), err


@pytest.mark.parametrize("name", ["PointTransformerLayer", "TransitionDown",
                                  "NadarayaWatsonLayer"])
def test_autocast_mixes_dtypes_as_it_casts_them(name):
    p = problem()
    entry = ZOO[name]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        entry.run(entry.make(), dataclasses.replace(p, x=p.x.bfloat16()))
