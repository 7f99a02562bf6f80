"""The echo page in headless Chromium, served by ``python -m fastws echo``; the chat example.

Chromium is driven over the DevTools protocol with the fastws client itself:
the test types a message, clicks Send and reads the echo from the page's
log; then a binary message, then a close with a code. The chat example
(examples/chat) runs two workers sharing Redis, with two pages of one room
served by different workers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aio_helpers import ENV, ROOT, EchoServer, free_port
from redis_server import RedisServer

from fastws.asyncio import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
CHAT = ROOT / "examples" / "chat" / "chat.py"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(90),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium"),
]


class DevTools:
    """A minimal DevTools protocol client for one page."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # skip events until our answer
            message = json.loads(await self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll a JavaScript expression until it is truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                log = await self.evaluate("document.getElementById('log').innerText")
                raise AssertionError(f"timed out waiting for {expression!r}; log:\n{log}")
            await asyncio.sleep(0.05)

    async def log_has(self, pattern: str) -> str:
        expr = (
            "Array.from(document.querySelectorAll('#log div')).map(d => d.textContent)"
            f".find(t => t.includes({json.dumps(pattern)})) || ''"
        )
        return str(await self.wait_for(expr))


@pytest.fixture
def chromium() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    profile = tempfile.mkdtemp(prefix="fastws-chromium-")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        port = 0
        for _ in range(200):  # bounded: Chromium prints a few lines at start
            line = proc.stderr.readline().decode(errors="replace")
            if not line:
                break
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                port = int(match.group(1))
                break
        if not port:
            pytest.fail("Chromium did not start its DevTools server")
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)


def _page_ws_url(devtools_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=10) as r:
        targets = json.load(r)
    for target in targets:
        if target.get("type") == "page":
            return str(target["webSocketDebuggerUrl"])
    raise AssertionError(f"no page target in {targets}")


def test_echo_page_in_chromium(chromium: tuple[subprocess.Popen[bytes], int]) -> None:
    _, devtools_port = chromium
    server = EchoServer()
    try:
        page_url = f"http://127.0.0.1:{server.port}/"
        asyncio.run(asyncio.wait_for(_drive(devtools_port, page_url), 60))
    finally:
        assert server.stop() == 0


async def _drive(devtools_port: int, page_url: str) -> None:
    async with connect(_page_ws_url(devtools_port), max_size=None, compression=None) as ws:
        cdp = DevTools(ws)
        await cdp.call("Page.enable")
        await cdp.call("Runtime.enable")
        await cdp.call("Page.navigate", url=page_url)
        await cdp.wait_for("document.readyState === 'complete' && !!document.getElementById('log')")

        # The page connects on load.
        opened = await cdp.log_has("OPEN")
        assert "permessage-deflate" in opened
        await cdp.wait_for("document.getElementById('status').textContent === 'OPEN'")

        # Type a text message and click Send.
        await cdp.evaluate(
            "(() => { const m = document.getElementById('message'); m.value = ''; m.focus(); })()"
        )
        await cdp.call("Input.insertText", text="Hello from Chromium ✓")
        await cdp.evaluate("document.getElementById('send').click()")
        await cdp.log_has("RECEIVED TEXT: Hello from Chromium ✓")

        # A binary message.
        await cdp.evaluate(
            "(() => { document.getElementById('binary').checked = true;"
            " document.getElementById('message').value = 'bin';"
            " document.getElementById('send').click(); })()"
        )
        received = await cdp.log_has("RECEIVED BINARY")
        assert "(3 bytes): 62 69 6e [bin]" in received

        # Close with a code and a reason.
        await cdp.evaluate(
            "(() => { document.getElementById('code').value = '4001';"
            " document.getElementById('reason').value = 'done';"
            " document.getElementById('close').click(); })()"
        )
        closed = await cdp.log_has("CLOSE code=")
        assert "code=4001" in closed
        assert "clean=true" in closed
        await cdp.wait_for("document.getElementById('status').textContent === 'CLOSED'")


def _new_page(devtools_port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{devtools_port}/json/new?about:blank", method="PUT"
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return str(json.load(r)["webSocketDebuggerUrl"])


def test_chat_example_across_two_workers(
    chromium: tuple[subprocess.Popen[bytes], int], redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two pages in one room, served by different workers, talk through Redis."""
    _, devtools_port = chromium
    port = free_port()
    command = [sys.executable, str(CHAT), "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(
        [*command, "--redis", redis_server.url],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "2 workers serving on" in line:
                break
        else:
            raise AssertionError(f"the chat did not start: {server.wait()}")
        page_url = f"http://127.0.0.1:{port}/?room=kitchen"
        asyncio.run(asyncio.wait_for(_chat(devtools_port, page_url, redis_server), 60))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
    assert server.returncode == 0


async def _open_chat(cdp: DevTools, page_url: str) -> int:
    await cdp.call("Page.navigate", url=page_url)
    # Page.navigate answers before the new document replaces the old one:
    # until then the elements are missing (hence ?.), and polling goes on.
    await cdp.wait_for("document.getElementById('status')?.textContent === 'OPEN'")
    worker = await cdp.wait_for("Number(document.getElementById('worker')?.textContent)")
    return int(worker)


async def _say(cdp: DevTools, text: str) -> None:
    await cdp.evaluate(
        "(() => { const m = document.getElementById('message'); m.value = ''; m.focus(); })()"
    )
    await cdp.call("Input.insertText", text=text)
    await cdp.evaluate("document.getElementById('send').click()")


async def _chat(devtools_port: int, page_url: str, redis: RedisServer) -> None:
    first = connect(_page_ws_url(devtools_port), max_size=None, compression=None)
    second = connect(_new_page(devtools_port), max_size=None, compression=None)
    async with first as ws1, second as ws2:
        one, two = DevTools(ws1), DevTools(ws2)
        for cdp in (one, two):
            await cdp.call("Page.enable")
            await cdp.call("Runtime.enable")
        worker1 = await _open_chat(one, page_url)
        for _ in range(40):  # reload the second page until another worker serves it
            worker2 = await _open_chat(two, page_url)
            if worker2 != worker1:
                break
        else:
            raise AssertionError("both pages stayed on one worker")
        for _ in range(200):  # both workers listen to the room on Redis
            if redis.command("PUBSUB SHARDNUMSUB", "fastws:kitchen").endswith(b":2\r\n"):
                break
            await asyncio.sleep(0.05)
        await _say(one, "Hello from the first page ✓")
        await two.log_has(f"[worker {worker1}] Hello from the first page ✓")
        await one.log_has(f"[worker {worker1}] Hello from the first page ✓")
        await _say(two, "and from the second")
        await one.log_has(f"[worker {worker2}] and from the second")
