"""Start-up: a config error (data, train or model section) and the CLI's help import no
heavy package; lazy package names
behave like eager imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torch_geometric", "open3d", "h5py", "plyfile")


def _imported_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(__import__('json').dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_config_errors_and_help_import_no_heavy_package(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1\n")
    cfg = ROOT / "configs" / "point_transformer_synthetic.yaml"
    code = ("from pcattn.cli import main\n"
            f"assert main(['train', '--config', {str(bad)!r}]) == 2\n"
            f"assert main(['train', '--config', {str(cfg)!r}, '--set', 'train.device=gpu']) == 2\n"
            f"for bad in ('data.sampling=banana', 'data.augment=banana', 'data.name=banana',"
            f" 'data.num_points=0', 'data.layout=banana'):\n"
            f"    assert main(['train', '--config', {str(cfg)!r}, '--set', bad]) == 2\n"
            f"for bad in ('model.k=16.5', 'model.ratio=2', 'model.kk=3', 'model.name=gat_seg',"
            f" 'model.name=pct_cls', 'model.name=banana'):\n"
            f"    assert main(['train', '--config', {str(cfg)!r}, '--set', 'model.k=x', bad])"
            f" == 2\n"
            "assert main(['models']) == 0\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert _imported_after(code) == []


def test_lazy_names_survive_their_submodule_being_imported_first():
    import pcattn.engine.evaluation  # noqa: F401  (binds the submodule in the package first)
    from pcattn.data import read_cloud
    from pcattn.data.io import read_cloud as direct
    from pcattn.engine import evaluate

    assert callable(evaluate) and evaluate.__module__ == "pcattn.engine.evaluation"
    assert read_cloud is direct
    import pcattn.data

    assert "FolderDataset" in dir(pcattn.data) and "FolderDataset" in pcattn.data.__all__


def test_building_and_running_blocks_imports_no_optional_package():
    """A user's network of blocks needs torch and PyG only: no open3d, h5py, plyfile,
    plotting or TensorBoard (``ops.knn``'s auto backend loads open3d on first use, so the
    neighbourhoods here come from the torch backend)."""
    code = ("import torch\nimport pcattn\nfrom pcattn import ops\n"
            "from pcattn.nn import GraphAttention, PointTransformerBlock, global_max_pool\n"
            "pos = torch.rand(40, 3)\nidx = ops.knn(pos, 4, backend='torch')\n"
            "x = PointTransformerBlock(3)(pos, pos, idx)\n"
            "x = GraphAttention(3, 4, heads=2)(x, ops.neighbors_to_edge_index(idx))\n"
            "global_max_pool(x)\n"
            "for name in ('matplotlib', 'plotly', 'tensorboard', 'torch.utils.tensorboard'):\n"
            "    assert name not in sys.modules, name")
    assert _imported_after(code) == ["torch", "torch_geometric"]


def test_a_public_name_that_is_also_a_submodule_is_refused():
    from pcattn._lazy import lazy_exports

    with pytest.raises(ValueError, match=r"public names \['checkpoint'\] are also submodules"):
        lazy_exports("pcattn.engine", {"pcattn.engine.checkpoint": ("checkpoint",)})
