"""The code of README.md and docs/*.md runs as written: Python blocks are executed, and every
`pcattn ...` command line of their shell blocks parses, with the files it names present."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pcattn.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(lang, code) for page in PAGES
          for lang, code in re.findall(r"```(\w+)\n(.*?)```", page.read_text(), flags=re.S)]
# docs/blocks.md's Python runs in test_docs.py
PYTHON = [code for page in PAGES if page.name != "blocks.md"
          for lang, code in re.findall(r"```(\w+)\n(.*?)```", page.read_text(), flags=re.S)
          if lang == "python"]
COMMANDS = [line.split("#")[0].strip() for lang, code in BLOCKS if lang == "bash"
            for line in code.replace("\\\n", " ").splitlines()  # continued lines joined
            if line.lstrip().startswith("pcattn ")]


def test_the_readme_has_code_to_check():
    assert PYTHON and len(COMMANDS) >= 5


@pytest.mark.parametrize("code", PYTHON, ids=[f"python{i}" for i in range(len(PYTHON))])
def test_python_blocks_run(code):
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("line", COMMANDS)
def test_command_lines_parse_and_name_existing_configs(line):
    args = _parser().parse_args(shlex.split(line)[1:])
    config = getattr(args, "config", None)
    if config is not None:
        assert (README.parent / config).is_file(), f"{line}: {config} does not exist"
    for entry in getattr(args, "configs", None) or []:  # bench budget: FILE[:KEY=VALUE...]
        path = entry.split(":")[0]
        assert (README.parent / path).is_file(), f"{line}: {path} does not exist"
