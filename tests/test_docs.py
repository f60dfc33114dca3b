"""The code in docs/blocks.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "blocks.md"


def test_blocks_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/blocks.md lost its example"
    scope: dict = {}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - our own documentation
    assert scope["logits"].shape == (3, 10)
    query, source, _ = scope["query"], scope["source"], scope["weight"]
    assert query.numel() == source.numel() > 0
