"""The Python examples in the README run as printed."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks() -> list[str]:
    if not README.exists():  # an installed wheel is tested without the checkout
        return []
    text = README.read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    # Interactive transcripts and the global patch one-liner are not scripts.
    return [b for b in blocks if not b.lstrip().startswith(">>>") and "patch_all" not in b]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("block", _blocks())
def test_readme_example_runs(block: str) -> None:
    code = block.replace("8765", str(_free_port()))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_readme_has_examples() -> None:
    if README.exists():
        assert len(_blocks()) >= 2
