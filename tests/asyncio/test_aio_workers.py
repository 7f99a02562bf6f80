"""``python -m fastws serve --workers N``: real processes sharing a port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest
from aio_helpers import CMD, ENV, free_port
from redis_server import RedisServer

from fastws import workers
from fastws.asyncio import ClientConnection, ConnectionClosed, connect

pytestmark = pytest.mark.skipif(
    not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="no SO_REUSEPORT here"
)

APP = """
import os

async def handler(ws):
    ws.subscribe("room")
    await ws.send(f"pid {os.getpid()}")
    async for message in ws:
        ws.publish("room", message)
"""


class Workers:
    """``python -m fastws serve app:handler --workers 2`` in a folder holding app.py."""

    def __init__(self, folder: Path, *args: str) -> None:
        (folder / "app.py").write_text(APP)
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen(
            [*CMD, "serve", "app:handler", "--port", str(self.port), "--workers", "2", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            env=ENV,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "2 workers serving on" in line:
                break
        else:
            raise AssertionError(f"the workers did not start: {self.proc.wait()}")

    async def client(self) -> tuple[ClientConnection, int]:
        ws = await connect(self.url)
        hello = await ws.recv()
        assert isinstance(hello, str) and hello.startswith("pid ")
        return ws, int(hello[4:])

    async def one_per_worker(self, pids: int = 2) -> dict[int, ClientConnection]:
        """Clients until there is one on each of ``pids`` workers (the others closed)."""
        found: dict[int, ClientConnection] = {}
        for _ in range(200):
            ws, pid = await self.client()
            if pid in found:
                await ws.close()
            else:
                found[pid] = ws
            if len(found) == pids:
                return found
        raise AssertionError(f"connections reached only {sorted(found)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return int(self.proc.returncode)


@pytest.mark.timeout(90)
def test_workers_share_the_port_restart_and_stop_with_1001(tmp_path: Path) -> None:
    server = Workers(tmp_path)
    try:

        async def main() -> None:
            clients = await server.one_per_worker()
            dead, survivor = sorted(clients)
            await clients[dead].close()
            os.kill(dead, signal.SIGKILL)
            # The supervisor starts another worker in its place.
            replaced: dict[int, ClientConnection] = {}
            for _ in range(100):
                await asyncio.sleep(0.1)
                ws, pid = await server.client()
                assert pid != dead
                if pid != survivor:
                    replaced[pid] = ws
                    break
                await ws.close()
            assert replaced, "the dead worker was not replaced"
            open_clients = [clients[survivor], *replaced.values()]
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
            for ws in open_clients:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1001

        asyncio.run(main())
    finally:
        assert server.stop() == 0


@pytest.mark.timeout(90)
def test_workers_share_publishes_through_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    server = Workers(tmp_path, "--redis", redis_server.url)
    try:

        async def main() -> None:
            clients = await server.one_per_worker()
            a, b = clients.values()
            for _ in range(200):  # both workers listen on Redis
                reply = redis_server.command("PUBSUB SHARDNUMSUB", "fastws:room")
                if reply.endswith(b":2\r\n"):
                    break
                await asyncio.sleep(0.05)
            await a.send("hello from a")
            assert await b.recv() == "hello from a"
            await b.send("hello from b")
            assert await a.recv() == "hello from b"
            await a.close()
            await b.close()

        asyncio.run(main())
    finally:
        assert server.stop() == 0


def test_run_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="module:function"):
        workers.run("no_colon")
    with pytest.raises(ValueError, match="top level"):
        workers.run(lambda ws: ws)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="workers"):
        workers.run("app:handler", workers=0)
    with pytest.raises(TypeError, match="reuse_port"):
        workers.run("app:handler", reuse_port=False)
    with pytest.raises(ValueError, match="port"):
        workers.run("app:handler", port=0)


def test_the_cli_reports_a_handler_that_cannot_be_imported(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CMD, "serve", "missing_module:handler", "--workers", "1", "--port", str(free_port())],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=ENV,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "missing_module" in proc.stderr
