"""The asyncio WebSocket client: :func:`connect` and :class:`ClientConnection`."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as ssl_module
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from fastws import _check, limits
from fastws.asyncio._options import Opener, check_endpoint, compression_options, fragments_limit
from fastws.asyncio.connection import CLIENT_LOGGER, Connection, LoggerLike, check_options
from fastws.events import Response
from fastws.exceptions import InvalidHandshake
from fastws.handshake import header_pairs, header_value, parse_uri
from fastws.protocol import ClientProtocol

__all__ = ["ClientConnection", "connect", "unix_connect"]


class _Default:
    """Marker for "use the state machine's default" (``fastws/<version>``)."""

    def __repr__(self) -> str:
        return "'fastws/<version>'"


_USER_AGENT: Any = _Default()


class ClientConnection(Connection):
    """The client side of a WebSocket connection, returned by :func:`connect`.

    See :class:`~fastws.asyncio.Connection` for receiving, sending and closing.
    """

    __slots__ = ("_opened",)

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self._opened: asyncio.Future[None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the HTTP upgrade request."""
        super().connection_made(transport)
        proto = self._proto
        assert isinstance(proto, ClientProtocol)
        proto.send_request(proto.connect())
        self._flush()

    def _on_failure(self) -> None:
        # During the handshake: report a failed upgrade at once.
        if not self._opened.done() and self._proto.close_exc is not None:
            self._fail_open(self._proto.close_exc)

    def _on_response(self, response: Response) -> None:
        # The event means a valid 101; the state may already be past OPEN when
        # the server's first frames (even its close) came in the same read.
        self._on_open()
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            error = self._proto.close_exc
            if error is None:
                error = InvalidHandshake("connection closed during the opening handshake")
                if exc is not None:
                    error.__cause__ = exc
            self._fail_open(error)

    def _on_open_timeout(self) -> None:
        super()._on_open_timeout()
        if not self._opened.done():
            self._opened.set_exception(TimeoutError("timed out during the opening handshake"))

    def _fail_open(self, error: BaseException) -> None:
        if not self._opened.done():
            self._opened.set_exception(error)
        self._abort()


class connect(Opener["ClientConnection"]):
    """Open a WebSocket client connection.

    Use as ``async with connect(uri) as ws:`` (closed on exit) or
    ``ws = await connect(uri)``.

    Args:
        uri: ``ws://`` or ``wss://`` URI.
        path: connect to this unix socket instead of the URI's host and port
            (the URI still provides the ``Host`` header and the path).
        sock: an already connected socket.
        ssl: client :class:`ssl.SSLContext` for ``wss://`` (default:
            :func:`ssl.create_default_context`).
        server_hostname: the host name for TLS verification (default: the URI's host).
        origin: value of the ``Origin`` header.
        additional_headers: extra request headers: a mapping or ``(name, value)`` pairs.
        user_agent: ``User-Agent`` header; ``None`` to send none.
        subprotocols: subprotocols to offer, in order of preference.
        compression: ``"deflate"``, a ``DeflateOptions``, or ``None``.
        max_size: largest accepted message in bytes; larger ones close with 1009.
        max_fragments: most frames in one message; see :class:`fastws.asyncio.serve`.
        max_queue: see :class:`fastws.asyncio.serve`.
        write_limit: see :class:`fastws.asyncio.serve`.
        ping_interval: seconds between keepalive pings (``None``: off).
        ping_timeout: seconds to wait for a keepalive pong before closing with 1011.
        open_timeout: seconds allowed for TCP connect, TLS and the handshake.
        close_timeout: seconds allowed for the closing handshake.
        stream_messages: deliver frames as they arrive (see ``serve``).
        logger: the connection's logger (default ``fastws.client``).
        create_connection: the class of the connection (a
            :class:`ClientConnection` subclass, or a callable that takes the
            same arguments and returns one).

    Raises:
        InvalidHandshake: the server refused the upgrade (``.response`` has
            its answer).
        TimeoutError: the connection did not open within ``open_timeout``.
        OSError: the TCP connection failed.
    """

    def __init__(
        self,
        uri: str,
        *,
        path: str | os.PathLike[str] | None = None,
        sock: socket.socket | None = None,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        origin: str | None = None,
        additional_headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        user_agent: str | None = _USER_AGENT,
        subprotocols: Sequence[str] | None = None,
        compression: str | Any | None = "deflate",
        max_size: int | None = limits.MAX_MESSAGE_SIZE,
        max_fragments: int | Literal["auto"] | None = "auto",
        max_queue: int = limits.MAX_QUEUE,
        write_limit: int | tuple[int, int] = limits.WRITE_LIMIT,
        ping_interval: float | None = limits.PING_INTERVAL,
        ping_timeout: float | None = limits.PING_TIMEOUT,
        open_timeout: float | None = limits.OPEN_TIMEOUT,
        close_timeout: float = limits.CLOSE_TIMEOUT,
        stream_messages: bool = True,
        logger: LoggerLike | None = None,
        create_connection: Callable[..., ClientConnection] | None = None,
    ) -> None:
        if not isinstance(uri, str):
            raise TypeError(f"uri must be a str, not {uri!r}")
        check_endpoint(path=path, sock=sock, ssl=ssl)
        header_value("server_hostname", server_hostname)
        self._secure, self._host, self._port, _ = parse_uri(uri)
        if ssl is not None and not self._secure:
            raise ValueError("ssl= was given for a ws:// URI; use wss://")
        self._uri = uri
        self._path = path
        self._sock = sock
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._protocol_kwargs: dict[str, Any] = {
            "origin": origin,
            "subprotocols": subprotocols,
            "compression": compression_options(compression, server=False),
            "additional_headers": header_pairs("additional_headers", additional_headers),
            "max_message_size": max_size,
            "max_fragments": fragments_limit(max_size, max_fragments),
            "stream_messages": stream_messages,
        }
        self._connection_options: dict[str, Any] = {
            "max_queue": max_queue,
            "write_limit": write_limit,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "open_timeout": open_timeout,
            "close_timeout": close_timeout,
            "logger": logger if logger is not None else CLIENT_LOGGER,
        }
        _check.callable_or_none("create_connection", create_connection)
        if isinstance(create_connection, type) and not issubclass(
            create_connection, ClientConnection
        ):
            raise TypeError(
                f"create_connection must be a ClientConnection subclass, not {create_connection!r}"
            )
        self._create_connection = create_connection or ClientConnection
        if not isinstance(user_agent, _Default):
            self._protocol_kwargs["user_agent"] = user_agent
        # Every option is checked now, not once the TCP connection is up.
        check_options(**self._connection_options)
        ClientProtocol(uri, **self._protocol_kwargs)
        self._open_timeout = open_timeout

    def _factory(self) -> ClientConnection:
        proto = ClientProtocol(self._uri, **self._protocol_kwargs)
        return self._create_connection(proto, **self._connection_options)

    async def _open(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        ssl_context: ssl_module.SSLContext | None = None
        server_hostname: str | None = None
        if self._secure:
            ssl_context = self._ssl or ssl_module.create_default_context()
            server_hostname = self._server_hostname or self._host
        kwargs: dict[str, Any] = {"ssl": ssl_context, "server_hostname": server_hostname}
        if self._path is not None:
            coro = loop.create_unix_connection(self._factory, os.fspath(self._path), **kwargs)
        elif self._sock is not None:
            if self._sock.family == getattr(socket, "AF_UNIX", None):
                coro = loop.create_unix_connection(self._factory, sock=self._sock, **kwargs)
            else:
                coro = loop.create_connection(self._factory, sock=self._sock, **kwargs)
        else:
            coro = loop.create_connection(self._factory, self._host, self._port, **kwargs)
        try:
            if self._open_timeout is None:
                _, conn = await coro
            else:
                try:
                    _, conn = await asyncio.wait_for(coro, self._open_timeout)
                except asyncio.TimeoutError:
                    raise TimeoutError("timed out while opening the connection") from None
        except ssl_module.SSLCertVerificationError:
            raise
        except ssl_module.SSLError as exc:
            raise InvalidHandshake(
                f"the TLS handshake with {self._host}:{self._port} failed ({exc.reason or exc}): "
                "the server does not seem to speak TLS (a plain server? then use ws://)"
            ) from exc
        try:
            await conn._opened
        except BaseException:
            conn._abort()
            raise
        return conn

    async def _shut(self, opened: ClientConnection) -> None:
        await opened.close()


def unix_connect(
    path: str | os.PathLike[str] | None = None, uri: str = "ws://localhost/", **options: Any
) -> connect:
    """Open a WebSocket client connection over a unix socket; options as :class:`connect`.

    Args:
        path: the socket path (or pass a connected unix ``sock=``).
        uri: the URI for the ``Host`` header and request path.
        **options: any option of :class:`connect`.
    """
    return connect(uri, path=path, **options)
