"""A WebSocket echo server that also serves the browser echo page.

Run it, then open http://127.0.0.1:8765/ in a browser::

    python examples/echo_server.py [--host 127.0.0.1] [--port 8765]

The page is the one shipped inside the package (``fastws/static/echo.html``),
so this example and ``python -m fastws echo`` serve the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from importlib import resources

from fastws.asyncio import ServerConnection, serve
from fastws.events import Request, Response

PAGE = resources.files("fastws").joinpath("static").joinpath("echo.html").read_bytes()


async def echo(ws: ServerConnection) -> None:
    """Send every message back: text as text, binary as binary."""
    async for message in ws:
        await ws.send(message)


def process_request(ws: ServerConnection, request: Request) -> Response | None:
    """Answer a plain ``GET /`` with the page; let WebSocket upgrades through."""
    if "websocket" in request.headers.get("Upgrade", "").lower():
        return None
    if request.path == "/":
        return ws.respond(200, PAGE, [("Content-Type", "text/html; charset=utf-8")])
    return ws.respond(404, "Not found.\n")


async def main(host: str, port: int) -> None:
    """Serve until Ctrl-C."""
    async with serve(echo, host, port, process_request=process_request) as server:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, server.close)
        loop.add_signal_handler(signal.SIGTERM, server.close)
        print(f"open http://{host}:{server.port}/ in a browser (Ctrl-C to stop)")
        await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="WebSocket echo server with a browser page")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
