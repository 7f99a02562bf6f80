"""Interoperability with a Go gorilla/websocket client, compressed.

gorilla offers ``permessage-deflate; server_no_context_takeover;
client_no_context_takeover`` and refuses a response that does not repeat
``client_no_context_takeover``. The client (``tests/gorilla/main.go``) is
built from the system's gorilla/websocket package (Debian/Ubuntu:
``apt-get install golang-go golang-github-gorilla-websocket-dev``); the test
is skipped, saying why, where those are not installed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from fastws.asyncio import ServerConnection, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def gorilla_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gorilla test client, built once per session."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gobuild
    finally:
        sys.path.pop(0)
    reason = gobuild.unavailable()
    if reason is not None:
        pytest.skip(f"no gorilla/websocket client: {reason}")
    out = tmp_path_factory.mktemp("gorilla") / "gorilla"
    path: Path = gobuild.build(ROOT / "tests" / "gorilla", out)
    return path


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("backend_module")  # our answers compressed by zlib, then by ISA-L
def test_gorilla_compressed_client(run: Any, gorilla_client: Path) -> None:
    seen: list[list[str]] = []

    async def echo(ws: ServerConnection) -> None:
        seen.append(list(ws.extensions))
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0, max_size=4 << 20) as server:
            port = server.sockets[0].getsockname()[1]
            proc = await asyncio.create_subprocess_exec(
                str(gorilla_client),
                f"ws://127.0.0.1:{port}/",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            # 7 sizes x text and binary x compression levels 1 and 9
            assert out.decode().split() == ["ok", "28"]

    run(main())
    assert seen == [["permessage-deflate"]]
