import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pcattn.data.cache import cache_key, load_or_build
from pcattn.fileio import atomic_save


def test_cache_key_is_stable_and_changes_with_any_option():
    a = cache_key({"n": 1024, "normalize": True})
    assert a == cache_key({"normalize": True, "n": 1024})
    assert a != cache_key({"n": 2048, "normalize": True})
    assert a != cache_key({"n": 1024, "normalize": False})


def test_options_recorded_and_checked(tmp_path):
    path = tmp_path / "c.pt"
    calls = []

    def build(value):
        calls.append(value)
        return {"v": torch.tensor([value])}

    assert load_or_build(path, lambda: build(1), options={"n": 1})["v"].item() == 1
    assert load_or_build(path, lambda: build(2), options={"n": 1})["v"].item() == 1
    assert calls == [1]  # second call read the cache
    with pytest.warns(UserWarning, match="other options"):
        out = load_or_build(path, lambda: build(3), options={"n": 2})
    assert out["v"].item() == 3 and calls == [1, 3]


def test_unreadable_cache_is_rebuilt_not_returned(tmp_path):
    path = tmp_path / "c.pt"
    load_or_build(path, lambda: torch.arange(1000), options={"n": 1})
    path.write_bytes(path.read_bytes()[:100])  # a truncated copy
    with pytest.warns(UserWarning, match="unreadable"):
        out = load_or_build(path, lambda: torch.arange(5), options={"n": 1})
    assert torch.equal(out, torch.arange(5))
    assert torch.equal(load_or_build(path, lambda: None, options={"n": 1}), torch.arange(5))


def test_ctrl_c_between_write_and_rename_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"

    def interrupted(src, dst):
        assert Path(src).stat().st_size > 0  # the content was written
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"a": 1}, path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    atomic_save({"a": 1}, path)
    assert torch.load(path) == {"a": 1}


def test_killed_preparer_leaves_only_a_temporary_file_that_is_never_read(tmp_path):
    """SIGKILL between write and rename: no cleanup runs; the next load must rebuild."""
    path = tmp_path / "c.pt"
    script = textwrap.dedent(f"""
        import os, signal
        import torch
        from pcattn.data.cache import load_or_build
        os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        load_or_build({str(path)!r}, lambda: torch.ones(3), options={{"n": 1}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = list(tmp_path.iterdir())
    assert not path.exists() and len(leftovers) == 1 and leftovers[0].suffix == ".tmp"
    assert leftovers[0].name.startswith(".c.pt.pcattn-")
    out = load_or_build(path, lambda: torch.zeros(3), options={"n": 1})
    assert torch.equal(out, torch.zeros(3))
    assert list(tmp_path.iterdir()) == [path], "the dead writer's temporary file is removed"


def test_a_live_writers_temporary_file_is_kept(tmp_path):
    path = tmp_path / "c.pt"
    mine = tmp_path / f".c.pt.pcattn-{os.getpid()}-abc.tmp"
    other = tmp_path / ".d.pt.pcattn-1-abc.tmp"  # another file's
    mine.write_bytes(b"")
    other.write_bytes(b"")
    atomic_save({"a": 1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, mine.name, other.name])


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_cache_holding_a_pickle_payload_is_rebuilt_and_never_runs(tmp_path):
    path = tmp_path / "c.pt"
    marker = tmp_path / "payload-ran"
    torch.save({"options": {"n": 1}, "content": _Payload(marker)}, path)
    with pytest.warns(UserWarning, match="unreadable"):
        out = load_or_build(path, lambda: torch.ones(2), options={"n": 1})
    assert torch.equal(out, torch.ones(2)) and not marker.exists()

