"""The threaded WebSocket client: :func:`connect` and :class:`ClientConnection`."""

from __future__ import annotations

import os
import selectors
import socket
import ssl as ssl_module
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from fastws import _check, limits
from fastws.asyncio._options import check_endpoint, compression_options, fragments_limit
from fastws.events import Response
from fastws.exceptions import InvalidMessage
from fastws.handshake import header_pairs, header_value, parse_uri
from fastws.protocol import ClientProtocol, State
from fastws.sync.connection import Connection

__all__ = ["ClientConnection", "connect", "unix_connect"]


class ClientConnection(Connection):
    """The client side of a WebSocket connection, returned by :func:`connect`.

    See :class:`~fastws.sync.connection.Connection` for receiving, sending
    and closing. Use it as a context manager to close it on exit.
    """


def connect(
    uri: str,
    *,
    sock: socket.socket | None = None,
    path: str | os.PathLike[str] | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    origin: str | None = None,
    additional_headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    user_agent: str | None = None,
    subprotocols: Sequence[str] | None = None,
    compression: str | Any | None = "deflate",
    max_size: int | None = limits.MAX_MESSAGE_SIZE,
    max_fragments: int | Literal["auto"] | None = "auto",
    max_queue: int = limits.MAX_QUEUE,
    ping_interval: float | None = limits.PING_INTERVAL,
    ping_timeout: float | None = limits.PING_TIMEOUT,
    open_timeout: float | None = limits.OPEN_TIMEOUT,
    close_timeout: float = limits.CLOSE_TIMEOUT,
) -> ClientConnection:
    """Open a WebSocket connection; returns once the opening handshake is done.

    Use as ``with connect(uri) as ws:`` (closed on exit) or ``ws = connect(uri)``.
    The options mean what they mean for :class:`fastws.asyncio.connect`, and
    are checked at the call in the same way.

    Raises:
        TypeError, ValueError: an option has a wrong type or value.
        InvalidURI: ``uri`` is not a ``ws://`` or ``wss://`` URI.
        InvalidHandshake: the server refused the upgrade (``InvalidStatus``)
            or did not answer with HTTP (``InvalidMessage``).
        TimeoutError: the connection did not open within ``open_timeout``.
        OSError: the TCP connection failed.
    """
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, not {uri!r}")
    check_endpoint(path=path, sock=sock, ssl=ssl)
    header_value("server_hostname", server_hostname)
    secure, host, port, _ = parse_uri(uri)
    if ssl is not None and not secure:
        raise ValueError("ssl= was given for a ws:// URI; use wss://")
    _check.integer("max_queue", max_queue, minimum=1)
    _check.seconds("ping_interval", ping_interval, none=True, zero=False)
    _check.seconds("ping_timeout", ping_timeout, none=True)
    _check.seconds("open_timeout", open_timeout, none=True)
    _check.seconds("close_timeout", close_timeout)
    options: dict[str, Any] = {
        "origin": origin,
        "subprotocols": subprotocols,
        "compression": compression_options(compression, server=False),
        "additional_headers": header_pairs("additional_headers", additional_headers),
        "max_message_size": max_size,
        "max_fragments": fragments_limit(max_size, max_fragments),
        "stream_messages": True,
    }
    if user_agent is not None:
        options["user_agent"] = user_agent
    protocol = ClientProtocol(uri, **options)  # checks the rest

    deadline = None if open_timeout is None else time.monotonic() + open_timeout
    if sock is None:
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(open_timeout)
            try:
                sock.connect(os.fspath(path))
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((host, port), timeout=open_timeout)
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if secure:
            context = ssl or ssl_module.create_default_context()
            sock.settimeout(_remaining(deadline))
            sock = context.wrap_socket(sock, server_hostname=server_hostname or host)
        sock.settimeout(None)
        connection = ClientConnection(
            sock,
            protocol,
            max_queue=max_queue,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
        )
        _handshake(connection, protocol, deadline)
    except BaseException:
        sock.close()
        raise
    connection._start(f"fastws-client-{connection.id.hex[:8]}")
    return connection


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out during the opening handshake")
    return remaining


def _handshake(
    connection: ClientConnection, protocol: ClientProtocol, deadline: float | None
) -> None:
    """Send the request and read until the response is complete."""
    sock = connection.socket
    protocol.send_request(protocol.connect())
    for chunk in protocol.data_to_send():
        sock.sendall(chunk)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    try:
        while True:
            for event in protocol.events_received():
                if isinstance(event, Response):
                    return
            if protocol.close_exc is not None:
                raise protocol.close_exc
            if protocol.state is not State.CONNECTING:  # pragma: no cover - defensive
                raise InvalidMessage("the connection closed during the opening handshake")
            pending = isinstance(sock, ssl_module.SSLSocket) and sock.pending() > 0
            if not pending and not selector.select(_remaining(deadline)):
                raise TimeoutError("timed out during the opening handshake")
            try:
                data = sock.recv(1 << 16)
            except ssl_module.SSLWantReadError:
                continue
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
    finally:
        selector.close()


def unix_connect(
    path: str | os.PathLike[str] | None = None, uri: str = "ws://localhost/", **options: Any
) -> ClientConnection:
    """:func:`connect` over a unix socket; ``uri`` gives the ``Host`` header and the path."""
    return connect(uri, path=path, **options)
