"""Type checkers see the kernels' real signatures, and the README's examples type-check.

``fastws._impl`` hands type checkers the fully annotated pure-Python twin
(``fastws._kernels_py``) while the program gets whichever implementation is
live, so ``reveal_type(fastws.apply_mask)`` is a signature, not ``Any``.
These tests run mypy (skipped when it is not installed) on a small program
that uses the public kernel API, and on the Python blocks of README.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastws

pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Uses every public kernel. The ignores are needed only if the call is really
# typed: strict mode reports an unused ignore, so an Any signature fails.
API_PROGRAM = """
import fastws

key = b"\\x37\\xfa\\x21\\x3d"
masked: bytes = fastws.apply_mask(b"Hello", key)
buf = bytearray(masked)
fastws.mask_inplace(memoryview(buf)[:2], key)
fastws.mask_inplace(buf, key, phase=2)
ok: bool = fastws.validate_utf8(b"caf\\xc3\\xa9")
validator: fastws.Utf8Validator = fastws.Utf8Validator()
validator.feed(b"abc", final=True)
position: int = validator.position
header: bytes = fastws.encode_header(True, 1, 5, mask=key)
decoded = fastws.decode_header(header)
if decoded is not None:
    fin, rsv, opcode, length, mask, header_length = decoded
frame: bytes = fastws.encode_frame(True, 2, b"payload", mask=key)

fastws.apply_mask("text", key)  # type: ignore[arg-type]
fastws.mask_inplace(buf, key, phase="2")  # type: ignore[arg-type]
fastws.validate_utf8(None)  # type: ignore[arg-type]
fastws.encode_header(True, 1, 5, mask=1)  # type: ignore[arg-type]

reveal_type(fastws.apply_mask)
reveal_type(fastws.mask_inplace)
reveal_type(fastws.validate_utf8)
reveal_type(fastws.Utf8Validator)
reveal_type(fastws.decode_header)
reveal_type(fastws.encode_header)
reveal_type(fastws.encode_frame)
"""

BUFFER = r"[\w.]*Buffer"


def _mypy(files: list[Path], *flags: str) -> str:
    """mypy's report on ``files`` (settings from ``flags`` only, no cache), as text."""
    config = files[0].parent / "mypy.ini"
    config.write_text("[mypy]\n", encoding="utf-8")  # not the project's settings
    env = dict(os.environ)
    package_root = Path(fastws.__file__).resolve().parent.parent
    if (package_root / "pyproject.toml").exists():  # a checkout (editable install)
        env["MYPYPATH"] = str(package_root)
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental"]
    proc = subprocess.run(
        [*cmd, "--cache-dir", os.devnull, *flags, *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if proc.returncode not in (0, 1) or proc.stderr.strip():
        pytest.fail(f"mypy did not run: {proc.stderr or proc.stdout}")
    return proc.stdout


def _revealed(report: str) -> list[str]:
    return re.findall(r'note: Revealed type is "(.*)"', report)


def test_kernel_signatures_are_real(tmp_path: Path) -> None:
    program = tmp_path / "use_kernels.py"
    program.write_text(API_PROGRAM, encoding="utf-8")
    report = _mypy([program], "--strict")
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert not errors, report
    revealed = _revealed(report)
    assert len(revealed) == 7, report
    apply_mask, mask_inplace, *others = revealed
    assert re.fullmatch(
        rf"def \(data: {BUFFER}, mask: {BUFFER}\) -> (builtins\.)?bytes", apply_mask
    ), apply_mask
    assert re.fullmatch(
        rf"def \(buffer: {BUFFER}, mask: {BUFFER}, phase: (builtins\.)?int =\)( -> None)?",
        mask_inplace,
    ), mask_inplace
    for sig in others:
        assert sig.startswith("def (") and "Any" not in sig, sig


def _readme_blocks() -> list[str]:
    text = README.read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    # Interactive transcripts (>>>) are not programs.
    return [b for b in blocks if not b.lstrip().startswith(">>>")]


def test_readme_examples_type_check(tmp_path: Path) -> None:
    if not README.exists():  # an installed wheel is tested without the checkout
        pytest.skip("README.md is not here")
    blocks = _readme_blocks()
    assert blocks
    files = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"readme_{i}.py"
        path.write_text(block, encoding="utf-8")
        files.append(path)
    # The examples are left unannotated for readability; their bodies are
    # checked all the same.
    report = _mypy(files, "--check-untyped-defs", "--warn-unused-ignores")
    assert "error:" not in report, report
