"""Front-ends talk to the state machine through its documented verbs only.

Every ``_``-prefixed member of the sans-IO protocol classes is private to
``fastws/protocol.py``: no other module of the package may use one on an
object that is not itself (``self._x`` of its own class is fine). Checked
with the syntax tree, so that a new front-end cannot quietly grow a second
way in.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fastws"


def _private_protocol_members() -> set[str]:
    tree = ast.parse((PACKAGE / "protocol.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name.endswith("Protocol"):
            for item in ast.walk(node):
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name):
                    if item.value.id == "self":
                        names.add(item.attr)
                elif isinstance(item, ast.Constant) and isinstance(item.value, str):
                    names.add(item.value)  # __slots__
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_private_protocol_member_is_used_outside_the_protocol() -> None:
    private = _private_protocol_members()
    assert {"_reader", "_out", "_events", "_pending_fail", "_control"} <= private
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("protocol.py", "_reader_c.py") or path.is_symlink():
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in private
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: .{node.attr}")
    assert offenders == []


def test_every_front_end_is_in_the_scope_of_the_check() -> None:
    # The asyncio front-end and the uvicorn protocol drive the state machine
    # through its verbs only; the check above reads both.
    scanned = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert {"asyncio/connection.py", "uvicorn.py"} <= scanned


def test_the_uvicorn_protocol_uses_only_public_members_of_the_core() -> None:
    # Every attribute fastws.uvicorn reads on its ServerProtocol (self._core,
    # or a local ``core`` bound to it) is public, whatever its name.
    tree = ast.parse((PACKAGE / "uvicorn.py").read_text())
    used = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "core") or (
            isinstance(owner, ast.Attribute) and owner.attr == "_core"
        ):
            used.add(node.attr)
    assert {"receive_data", "data_to_send", "events_received", "resume_receiving"} <= used
    assert {name for name in used if name.startswith("_")} == set()


def test_the_check_finds_a_private_use() -> None:
    # The rule above must be able to fail.
    private = _private_protocol_members()
    tree = ast.parse("def f(conn):\n    return conn._proto._out\n")
    found = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in private]
    assert found == ["_out"]


def test_one_header_decoder_and_no_c_inside_cython_sources() -> None:
    # The frame header is decoded in C by csrc/frame.c alone (its pure-Python
    # twin is fastws/_kernels_py.py); the binding embeds no C code of its own.
    csrc = PACKAGE.parent / "csrc"
    definers = [
        p.name
        for p in sorted(csrc.glob("*.c"))
        if re.search(r"^int\s+fws_header_decode\s*\(", p.read_text(), re.M)
    ]
    assert definers == ["frame.c"]
    for path in sorted(PACKAGE.glob("*.p[yx][xd]")):
        text = path.read_text()
        assert not re.search(r"cdef\s+extern\s+from\s+\*", text), f"{path.name} embeds C code"
    assert "fws_header_decode" not in (PACKAGE / "_recycle.h").read_text()
