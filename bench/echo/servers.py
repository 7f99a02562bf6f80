"""Echo servers for the load benchmark, one per library.

Usage: ``python bench/echo/servers.py KIND PORT [--deflate]``; prints
``READY <pid>`` when listening, runs until SIGTERM/SIGINT. Every server echoes
text as text and binary as binary, with message size limits above 16 MiB and
without keepalive pings, so that all do the same work. Without ``--deflate``
compression is off; with it, every server accepts permessage-deflate with
its library's default settings (what a user of each gets), and the kinds
that cannot compress (picows, raw-*) refuse to start.

Kinds: ``fastws-asyncio``, ``fastws-uvloop`` (an ``async for`` handler),
``fastws-cb-asyncio``, ``fastws-cb-uvloop`` (the ``on_message`` callback),
``websockets``, ``aiohttp``, ``picows``, ``raw-asyncio``, ``raw-uvloop``.
websockets, aiohttp and picows run on uvloop (their fastest setup). ``raw-*``
is the ceiling: an asyncio ``Protocol`` that answers the upgrade with a fixed
response and then only strips the mask of each frame (with fastws's masking
kernel) and writes it back: the least work a WebSocket echo can do in Python.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from fastws import apply_mask
from fastws.handshake import accept_key

MAX = 64 << 20
#: Set by ``--deflate``: accept permessage-deflate.
DEFLATE = False


def _ready() -> None:
    print(f"READY {os.getpid()}", flush=True)


async def _until_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop


async def _fastws_serve(port: int, handler: Callable[[Any], Awaitable[None]]) -> None:
    from fastws.asyncio import serve

    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression="deflate" if DEFLATE else None,
        max_size=MAX,
        ping_interval=None,
    ):
        _ready()
        await _until_signal()


async def fastws_server(port: int) -> None:
    """fastws.asyncio with an ``async for`` handler."""
    from fastws.asyncio import ServerConnection

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    await _fastws_serve(port, echo)


async def fastws_callback_server(port: int) -> None:
    """fastws.asyncio with the on_message() callback and send_nowait()."""
    from fastws.asyncio import ServerConnection

    async def echo(ws: ServerConnection) -> None:
        ws.on_message(ws.send_nowait)
        await ws.wait_closed()

    await _fastws_serve(port, echo)


async def websockets_server(port: int) -> None:
    """websockets (its asyncio implementation)."""
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(
        echo,
        "127.0.0.1",
        port,
        compression="deflate" if DEFLATE else None,
        max_size=MAX,
        ping_interval=None,
    ):
        _ready()
        await _until_signal()


async def aiohttp_server(port: int) -> None:
    """aiohttp.web."""
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=DEFLATE, max_msg_size=MAX, autoping=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    _ready()
    try:
        await _until_signal()
    finally:
        await runner.cleanup()


async def picows_server(port: int) -> None:
    """picows (callback API)."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            kind = frame.msg_type
            if kind == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif kind in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
                transport.send(kind, frame.get_payload_as_memoryview(), frame.fin)

    server = await ws_create_server(lambda _request: Echo(), "127.0.0.1", port, max_frame_size=MAX)
    _ready()
    try:
        await _until_signal()
    finally:
        server.close()


class _RawEcho(asyncio.Protocol):
    """Fixed 101 answer, then unmask-and-echo frames with no other checks."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.open = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            key = b""
            for line in bytes(buf[:end]).split(b"\r\n"):
                if line.lower().startswith(b"sec-websocket-key:"):
                    key = line.split(b":", 1)[1].strip()
            accept = accept_key(key.decode("latin-1")).encode()
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            del buf[: end + 4]
            self.open = True
        pos = 0
        size = len(buf)
        out: list[bytes] = []
        view = memoryview(buf)
        while size - pos >= 6:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 8:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if size - pos < 14:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            start = pos + head + 4
            if size < start + n:
                break
            body = apply_mask(view[start : start + n], view[pos + head : start])
            if head == 2:
                out.append(bytes((b0, n)))
            else:
                out.append(bytes((b0, 126 if head == 4 else 127)) + n.to_bytes(head - 2, "big"))
            out.append(body)
            pos = start + n
            if b0 & 0x0F == 8:
                view.release()
                self.transport.writelines(out)
                self.transport.close()
                return
        view.release()
        if pos:
            del buf[:pos]
        if out:
            self.transport.writelines(out)


async def raw_server(port: int) -> None:
    """The ceiling: minimal framing on a bare asyncio Protocol."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_RawEcho, "127.0.0.1", port, backlog=4096)
    _ready()
    try:
        await _until_signal()
    finally:
        server.close()


#: The kinds that support permessage-deflate (picows has no permessage-deflate).
DEFLATE_SERVERS = (
    "fastws-asyncio",
    "fastws-uvloop",
    "fastws-cb-asyncio",
    "fastws-cb-uvloop",
    "websockets",
    "aiohttp",
)

SERVERS: dict[str, tuple[Callable[[int], Awaitable[None]], bool]] = {
    "fastws-asyncio": (fastws_server, False),
    "fastws-uvloop": (fastws_server, True),
    "fastws-cb-asyncio": (fastws_callback_server, False),
    "fastws-cb-uvloop": (fastws_callback_server, True),
    "websockets": (websockets_server, True),
    "aiohttp": (aiohttp_server, True),
    "picows": (picows_server, True),
    "raw-asyncio": (raw_server, False),
    "raw-uvloop": (raw_server, True),
}


def main() -> None:
    """Run one server: ``servers.py KIND PORT [--deflate]``."""
    global DEFLATE
    kind, port = sys.argv[1], int(sys.argv[2])
    DEFLATE = "--deflate" in sys.argv[3:]
    if DEFLATE and kind not in DEFLATE_SERVERS:
        sys.exit(f"{kind} cannot compress (no permessage-deflate)")
    func, use_uvloop = SERVERS[kind]
    if use_uvloop:
        import uvloop

        uvloop.run(func(port))
    else:
        asyncio.run(func(port))


if __name__ == "__main__":
    main()
