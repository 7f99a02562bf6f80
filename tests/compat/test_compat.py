"""Programs written for websockets run unchanged on fastws but for their imports.

Each program in ``programs/`` is written once against ``websockets.asyncio``
(17.x), as its documentation shows. Its ``main(port)`` serves and connects
over 127.0.0.1 and returns what it observed (what the clients received,
status codes, close codes). Each test runs the program as written, with
websockets, then with only its import lines rewritten to fastws, and
compares the two results.
"""

from __future__ import annotations

import re
import socket
import sys
import types
from pathlib import Path
from typing import Any

import pytest

websockets = pytest.importorskip("websockets")
if int(websockets.__version__.split(".")[0]) < 14:  # pragma: no cover
    pytest.skip("the programs need websockets.asyncio (websockets 14+)", allow_module_level=True)

PROGRAMS = Path(__file__).resolve().parent / "programs"
_IMPORT = re.compile(r"^(\s*)(from|import)(\s+)websockets(?=[.\s])", re.MULTILINE)


def to_fastws(source: str) -> str:
    """``source`` with ``websockets`` replaced by ``fastws`` in its import lines, and only there."""
    return _IMPORT.sub(r"\1\2\3fastws", source)


def load(name: str, source: str) -> types.ModuleType:
    """A module made of ``source`` (not registered in ``sys.modules``)."""
    module = types.ModuleType(name)
    module.__file__ = str(PROGRAMS / f"{name}.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own programs
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_rewrite_touches_only_imports() -> None:
    source = (
        "import websockets\n"
        "from websockets.asyncio.server import serve\n"
        "    from websockets.exceptions import ConnectionClosed\n"
        "print('websockets is great')\n"
        "import websocketsx\n"
    )
    assert to_fastws(source) == (
        "import fastws\n"
        "from fastws.asyncio.server import serve\n"
        "    from fastws.exceptions import ConnectionClosed\n"
        "print('websockets is great')\n"
        "import websocketsx\n"
    )
    for path in PROGRAMS.glob("*.py"):
        rewritten = to_fastws(path.read_text())
        assert "websockets." not in "".join(
            line for line in rewritten.splitlines() if line.lstrip().startswith(("from", "import"))
        ), path.name


@pytest.mark.parametrize("name", sorted(p.stem for p in PROGRAMS.glob("*.py")))
def test_program(run: Any, name: str) -> None:
    source = (PROGRAMS / f"{name}.py").read_text()
    results: dict[str, Any] = {}
    for library, text in (("websockets", source), ("fastws", to_fastws(source))):
        module = load(name, text)
        results[library] = run(module.main(free_port()))
    assert results["fastws"] == results["websockets"]
    assert results["fastws"]  # the program observed something


def test_fastws_programs_do_not_import_websockets(run: Any) -> None:
    source = to_fastws((PROGRAMS / "echo.py").read_text())
    before = {name for name in sys.modules if name.split(".")[0] == "websockets"}
    module = load("echo", source)
    run(module.main(free_port()))
    after = {name for name in sys.modules if name.split(".")[0] == "websockets"}
    assert after == before
