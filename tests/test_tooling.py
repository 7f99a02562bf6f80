"""The development tools agree with each other: one version of each linter."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def _pins() -> dict[str, str]:
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("an installed wheel is tested without the checkout")
    extras = tomllib.loads(pyproject.read_text("utf-8"))["project"]["optional-dependencies"]
    pins = {}
    for spec in extras["lint"]:
        match = re.fullmatch(r"([\w-]+)==([\w.]+)", spec)
        assert match, f"not pinned: {spec}"
        pins[match[1]] = match[2]
    assert set(pins) == {"ruff", "mypy"}
    assert f"mypy=={pins['mypy']}" in extras["test"]  # tests/test_typing.py runs it too
    return pins


def test_pre_commit_uses_the_pinned_linters() -> None:
    pins = _pins()
    config = (ROOT / ".pre-commit-config.yaml").read_text("utf-8")
    assert re.search(rf"ruff-pre-commit\n\s+rev: v{re.escape(pins['ruff'])}\n", config)
    assert f'"mypy=={pins["mypy"]}"' in config


def test_ci_and_make_install_the_lint_extra() -> None:
    _pins()
    workflow = (ROOT / ".github/workflows/ci.yml").read_text("utf-8")
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert '-e ".[lint]"' in workflow and '-e ".[lint]"' in makefile
    # No other, unpinned install of a linter.
    for text in (workflow, makefile):
        assert not re.search(r"pip install[^\n]*\b(ruff|mypy)\b(?![=\w])", text)
