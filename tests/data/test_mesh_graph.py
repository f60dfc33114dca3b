"""Meshes as graphs: edge counts of the real ModelNet OFF files against a count made here
from the face lines, welding, normalisation, the dataset option and subsetting of graphs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from pcattn.data.mesh_graph import ModelNetMeshGraphs, read_mesh_graph
from pcattn.data.registry import DataConfig, build_dataset
from pcattn.data.transforms import RandomDropout, Shuffle, subset

REAL_OFF = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "ModelNet_off"
OFF_FILES = sorted(REAL_OFF.glob("*/*/*/*.off"))
needs_real = pytest.mark.skipif(not OFF_FILES, reason="needs ../shared/realdata")


def count_by_hand(path: Path, weld: bool) -> tuple[int, int]:
    """(vertices, undirected edges) read from the text: vertices keyed by their coordinate
    strings' values when welding, edges as sets of two ends over the faces' polygon sides."""
    tokens = path.read_text().split()
    if tokens[0] == "OFF":
        tokens = tokens[1:]
    else:  # "OFF384" on the first line
        tokens[0] = tokens[0][3:]
    nv, nf = int(tokens[0]), int(tokens[1])
    rest = tokens[3:]
    coords = [tuple(float(v) for v in rest[3 * i:3 * i + 3]) for i in range(nv)]
    key = {}
    node = [key.setdefault(c, len(key)) if weld else i for i, c in enumerate(coords)]
    pos, edges, used = 3 * nv, set(), set()
    for _ in range(nf):
        n = int(rest[pos])
        corners = [node[int(v)] for v in rest[pos + 1:pos + 1 + n]]
        pos += 1 + n
        used.update(corners)
        for a, b in zip(corners, corners[1:] + corners[:1]):
            if a != b:
                edges.add(frozenset((a, b)))
    return (len(used) if weld else nv), len(edges)


@needs_real
@pytest.mark.parametrize("path", OFF_FILES, ids=lambda p: p.name)
def test_real_meshes_have_their_edge_count_each_edge_both_ways(path):
    g = read_mesh_graph(path)
    nv, ne = count_by_hand(path, weld=True)
    assert g.pos.shape == (nv, 3) and g.edge_index.shape == (2, 2 * ne)
    pairs = set(map(tuple, g.edge_index.T.tolist()))
    assert len(pairs) == 2 * ne and all((b, a) in pairs for a, b in pairs)
    assert not any(a == b for a, b in pairs)
    assert g.pos.mean(0).abs().max() < 1e-5 and g.pos.norm(dim=1).max() == pytest.approx(1)
    torch.testing.assert_close(g.x.norm(dim=1)[g.x.norm(dim=1) > 0],
                               torch.ones(int((g.x.norm(dim=1) > 0).sum())))


@needs_real
def test_without_welding_the_file_vertices_are_the_nodes():
    path = OFF_FILES[0]
    g = read_mesh_graph(path, weld=False, normalize=False)
    nv, ne = count_by_hand(path, weld=False)
    assert g.num_nodes == nv and g.edge_index.shape[1] == 2 * ne
    assert g.pos.abs().max() > 1.5  # raw ModelNet units, not the unit sphere


@needs_real
def test_dataset_option_reads_graphs_and_caches(tmp_path):
    cfg = DataConfig(name="modelnet10", root=str(REAL_OFF), graph="mesh",
                     cache_dir=str(tmp_path))
    ds = build_dataset(cfg, "test")
    assert isinstance(ds, ModelNetMeshGraphs) and len(ds) == 2
    assert ds.labels.tolist() == [7, 8]  # sofa, table in ModelNet10's order
    for i, item in enumerate(ds):
        nv, ne = count_by_hand(ds.source / ds.names[i], weld=True)
        assert item.num_nodes == nv and item.edge_index.shape[1] == 2 * ne
        assert item.x.shape == (nv, 3) and item.y.shape == (1,)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch.edge_index.max() == batch.num_nodes - 1  # offsets per graph
    assert list(tmp_path.glob("modelnet10_test_mesh_*.pt"))
    assert ModelNetMeshGraphs(REAL_OFF, "test", variant=10, cache_dir=tmp_path,
                              use_normals=False)[0].x is None


def test_graph_option_is_for_modelnet_only():
    with pytest.raises(ValueError, match="data.graph: mesh reads ModelNet"):
        DataConfig(name="synthetic_shapes", graph="mesh")
    with pytest.raises(ValueError, match="'' .* or 'mesh'"):
        DataConfig(name="modelnet40", graph="voxels")


def ring(n=6):
    a = torch.arange(n)
    ei = torch.cat([torch.stack([a, (a + 1) % n]), torch.stack([(a + 1) % n, a])], 1)
    return Data(pos=torch.rand(n, 3), x=torch.randn(n, 3), y=torch.tensor([1]),
                edge_index=ei, edge_weight=torch.arange(2 * n).float())


def by_position(d):
    """Edges as (source position, target position, weight): independent of node numbering."""
    return sorted((tuple(d.pos[a].tolist()), tuple(d.pos[b].tolist()), float(w))
                  for (a, b), w in zip(d.edge_index.T.tolist(), d.edge_weight))


def test_shuffle_renumbers_the_edges():
    d = ring()
    s = Shuffle(generator=3)(d)
    assert by_position(s) == by_position(d) and s.y.tolist() == [1]


def test_subset_keeps_edges_between_kept_nodes_and_first_copies():
    d = ring()
    s = subset(d, torch.tensor([4, 0, 1, 1]))  # node 1 twice: its edges at the first copy
    got = sorted(s.edge_index.T.tolist())
    assert got == [[1, 2], [2, 1]]  # only 0 <-> 1 survives; 4's neighbours 3, 5 are gone
    assert s.edge_weight.tolist() == [0.0, 6.0]  # the weights of edges 0 -> 1 and 1 -> 0
    dropped = RandomDropout(0.5, generator=0)(d)
    assert dropped.edge_index.max() < dropped.num_nodes
