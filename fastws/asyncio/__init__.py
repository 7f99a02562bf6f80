"""WebSocket server and client on asyncio (default loop or uvloop).

Quick start::

    import asyncio
    from fastws.asyncio import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 8765) as server:
            await server.serve_forever()

    asyncio.run(main())

and a client::

    from fastws.asyncio import connect

    async with connect("ws://127.0.0.1:8765") as ws:
        await ws.send("hello")
        print(await ws.recv())
"""

from __future__ import annotations

from fastws.asyncio.client import ClientConnection, connect, unix_connect
from fastws.asyncio.connection import Connection, Data, State
from fastws.asyncio.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from fastws.asyncio.server import (
    Server,
    ServerConnection,
    basic_auth,
    broadcast,
    serve,
    unix_serve,
)

__all__ = [
    "ClientConnection",
    "ConcurrencyError",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Data",
    "Server",
    "ServerConnection",
    "State",
    "basic_auth",
    "broadcast",
    "connect",
    "serve",
    "unix_connect",
    "unix_serve",
]


def _publish() -> None:
    """Put the real functions in ``fastws`` in place of its import-on-first-use forwarders."""
    import fastws

    for name in ("connect", "serve", "unix_connect", "unix_serve"):
        setattr(fastws, name, globals()[name])


_publish()
