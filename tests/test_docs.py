"""Every Python example in the README and in docs/ runs as printed.

Each ```python block is run as a script (``example.py``) in a fresh interpreter, in a
temporary folder that holds a TLS certificate for ``localhost`` (``cert.pem``,
``key.pem``) and the certificate of the authority that issued it
(``ca.pem``), with port 8765 replaced by a free one. Where a ``print(...)``
line ends with a comment, the comment is what it must print (unless it
starts with "e.g.": an output that depends on the machine). Signatures and
other text that is not a program are fenced as ``text``, not ``python``.
An example that imports an optional library (uvicorn, Starlette, FastAPI) is
skipped where that library is not installed.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Libraries that examples may use and that are not there everywhere the
# suite runs (uvicorn, Starlette and FastAPI need Python 3.11 or later).
OPTIONAL = ("uvicorn", "starlette", "fastapi")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for page in PAGES:
        if not page.exists():  # an installed wheel is tested without the checkout
            continue
        text = page.read_text("utf-8")
        for match in re.finditer(r"```python\n(.*?)```", text, re.S):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((page.relative_to(ROOT).as_posix(), line, match.group(1)))
    return blocks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("docs")
    try:
        import trustme
    except ImportError:  # pragma: no cover - trustme is a test dependency
        return path
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(str(path / "ca.pem"))
    cert.private_key_pem.write_to_path(str(path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(path / "cert.pem"))
    return path


@pytest.mark.parametrize(
    ("page", "line", "block"), _blocks(), ids=[f"{p}:{n}" for p, n, _ in _blocks()]
)
def test_example_runs_as_printed(workdir: Path, page: str, line: int, block: str) -> None:
    if "cert.pem" in block and not (workdir / "cert.pem").exists():
        pytest.skip("trustme is needed to make the example's certificate")
    for module in OPTIONAL:
        if re.search(rf"^(import|from) {module}\b", block, re.M) and not find_spec(module):
            pytest.skip(f"{module} is not installed (an optional dependency)")
    script = workdir / "example.py"  # a file, so that multiprocessing can import it
    script.write_text(block.replace("8765", str(_free_port())), "utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=workdir
    )
    assert proc.returncode == 0, f"{page}:{line}\n{proc.stderr}"
    printed = proc.stdout.splitlines()
    expected = re.findall(r"^\s*print\(.*\)\s*#\s*(.+?)\s*$", block, re.M)
    missing = [e for e in expected if e not in printed and not e.startswith("e.g.")]
    assert missing == [], f"{page}:{line} printed {printed}"


def test_the_pages_have_examples() -> None:
    if (ROOT / "README.md").exists():
        assert len(_blocks()) >= 8


def test_readme_links_work_on_a_package_index_page() -> None:
    # The README is the package's description on the index, where relative
    # links and images point nowhere.
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("an installed wheel is tested without the checkout")
    targets = re.findall(r"!?\[[^\]]*\]\(([^)]+)\)", readme.read_text("utf-8"))
    assert targets
    relative = [t for t in targets if not re.match(r"https://|#", t)]
    assert relative == []
    for target in targets:
        prefix = "https://github.com/fastws/fastws/"
        raw = "https://raw.githubusercontent.com/fastws/fastws/main/"
        if target.startswith((prefix + "blob/main/", prefix + "tree/main/", raw)):
            path = target.split("/main/", 1)[1].split("#", 1)[0]
            assert (ROOT / path).exists(), target


def test_links_between_the_docs_pages_resolve() -> None:
    docs = ROOT / "docs"
    if not docs.exists():
        pytest.skip("an installed wheel is tested without the checkout")
    broken = []
    for page in sorted(docs.glob("*.md")):
        text = page.read_text("utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []
