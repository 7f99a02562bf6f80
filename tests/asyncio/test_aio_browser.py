"""The echo page in headless Chromium, served by ``python -m fastws echo``.

Chromium is driven over the DevTools protocol with the fastws client itself:
the test types a message, clicks Send and reads the echo from the page's
log; then a binary message, then a close with a code.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aio_helpers import EchoServer

from fastws.asyncio import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"

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
