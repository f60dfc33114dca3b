"""``pcattn bench concurrent``: a training alone, then two at once, in fresh processes."""

from __future__ import annotations

import pytest
from enginefixtures import data_root, write_tiny_config  # noqa: F401  (fixture)

from pcattn.bench import concurrent as bench_concurrent
from pcattn.cli import main


def test_two_tiny_trainings_alone_and_at_once(tmp_path, data_root, capsys):  # noqa: F811
    config = str(write_tiny_config(tmp_path, data_root, epochs=1))
    assert main(["bench", "concurrent", "--config", config, "--epochs", "1", "--json"]) == 0
    out = capsys.readouterr().out
    result = __import__("json").loads(out)
    assert result["epochs"] == 1 and result["threads"] == "auto"
    assert len(result["concurrent_s"]) == 2 and result["lone_s"] > 0
    assert result["ratios"] == [t / result["lone_s"] for t in result["concurrent_s"]]


def test_a_failing_training_names_itself(tmp_path, data_root):  # noqa: F811
    config = str(write_tiny_config(tmp_path, data_root, epochs=1))
    with pytest.raises(ValueError, match=r"the lone training failed \(exit 2\): pcattn train: "
                                         r"error: train.threads must be 'auto' or an integer"):
        bench_concurrent.run(config, threads="0")
