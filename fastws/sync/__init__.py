"""WebSocket server and client on threads, for code that does not use asyncio.

The API follows ``websockets.sync``: a program moves by changing its import::

    from fastws.sync import connect

    with connect("ws://127.0.0.1:8765/") as ws:
        ws.send("hello")
        print(ws.recv())

and a server::

    from fastws.sync import serve

    def echo(ws):
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 8765) as server:
        server.serve_forever()

Both run on the sans-IO core of :mod:`fastws.protocol` with the same C
kernels as the asyncio front-end; see :mod:`fastws.sync.connection`.
"""

from __future__ import annotations

from fastws.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from fastws.sync.client import ClientConnection, connect, unix_connect
from fastws.sync.connection import Connection, Data
from fastws.sync.server import Server, ServerConnection, serve, unix_serve

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
    "connect",
    "serve",
    "unix_connect",
    "unix_serve",
]
