"""The asyncio WebSocket server: :func:`serve`, :class:`Server`, :class:`ServerConnection`.

One :class:`ServerConnection` (an :class:`asyncio.Protocol`) per TCP
connection. Once the HTTP request is parsed, one task runs
``process_request`` (if any), answers the handshake and then runs the
handler; when the handler returns, the connection is closed with 1000 (1011
if it raised).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from fastws import _check, limits
from fastws.asyncio._options import Opener, check_endpoint, compression_options, fragments_limit
from fastws.asyncio.connection import Connection, check_options
from fastws.asyncio.exceptions import ConnectionClosed
from fastws.events import Request, Response
from fastws.exceptions import InvalidHandshake
from fastws.frames import CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR
from fastws.handshake import header_pairs, serialize_response
from fastws.protocol import ServerProtocol, State

__all__ = [
    "HeadersLike",
    "Server",
    "ServerConnection",
    "serve",
    "unix_serve",
]

_logger = logging.getLogger("fastws.asyncio.server")

#: Extra response headers: a mapping, ``(name, value)`` pairs, or a callable
#: of the request returning either.
HeadersLike = (
    Mapping[str, str]
    | Iterable[tuple[str, str]]
    | Callable[[Request], Mapping[str, str] | Iterable[tuple[str, str]]]
)

Handler = Callable[["ServerConnection"], Awaitable[Any]]
ProcessRequest = Callable[
    ["ServerConnection", Request],
    Awaitable[Response | None] | Response | None,
]


class ServerConnection(Connection):
    """The server side of a WebSocket connection; the handler receives one.

    See :class:`~fastws.asyncio.Connection` for receiving, sending and closing.
    """

    __slots__ = ("_logged_rejection", "_server", "_task")

    def __init__(self, server: Server, protocol: ServerProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self._server = server
        self._task: asyncio.Task[None] | None = None
        self._logged_rejection = False

    def _log_rejection(self, status: int, reason: object) -> None:
        """Log, once, that the opening handshake was answered with an error."""
        if not self._logged_rejection:
            self._logged_rejection = True
            _logger.info(
                "refused a connection from %s with %d: %s", self.remote_address, status, reason
            )

    def _on_failure(self) -> None:
        exc = self._proto.close_exc
        if isinstance(exc, InvalidHandshake) and self._proto.state is not State.OPEN:
            self._log_rejection(exc.status or 400, exc)

    @property
    def server(self) -> Server:
        """The :class:`Server` this connection belongs to."""
        return self._server

    def respond(
        self,
        status: int,
        body: str | bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Build a plain HTTP response, for ``process_request`` to return.

        Args:
            status: the HTTP status code, e.g. 200 or 404.
            body: the body; ``str`` is sent as UTF-8 ``text/plain`` unless
                ``headers`` has a ``Content-Type``.
            headers: extra response headers.

        Returns:
            A response that, returned by ``process_request``, is sent instead
            of upgrading the connection.
        """
        proto = self._proto
        assert isinstance(proto, ServerProtocol)
        return proto.reject(status, body, headers)

    # -- protocol hooks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the server, then set up the transport."""
        super().connection_made(transport)
        self._server._connections.add(self)
        if self._server._closing:
            self._abort()

    def _intercept_handshake(self, data: bytes | memoryview) -> bool:
        """Give a plain HTTP request (not an upgrade) to ``process_request``.

        Returns:
            Whether ``data`` was handled here.
        """
        proto = self._proto
        if self._server._process_request is None or self._task is not None:
            return False
        proto.receive_data(data)
        if proto.request is None and isinstance(proto.close_exc, InvalidHandshake):
            request = self._plain_http_request()
            if request is not None:
                # The state machine rejected a request that is not an upgrade;
                # process_request may still answer it (pages, health checks).
                pending = proto.data_to_send()
                self._task = self._loop.create_task(self._answer_plain(request, pending))
                self._server._tasks.add(self._task)
                self._task.add_done_callback(self._server._tasks.discard)
                return True
        self._process_events()
        self._flush()
        return True

    def _plain_http_request(self) -> Request | None:
        """The request the state machine parsed and refused, if it is plain HTTP."""
        exc = self._proto.close_exc
        request: Request | None = exc.request if isinstance(exc, InvalidHandshake) else None
        if request is None or "websocket" in request.headers.get("Upgrade", "").lower():
            return None
        return request

    async def _answer_plain(self, request: Request, pending: list[bytes]) -> None:
        result: Response | None = None
        try:
            process_request = self._server._process_request
            assert process_request is not None
            value = process_request(self, request)
            result = await value if inspect.isawaitable(value) else value
        except Exception:
            _logger.error("process_request failed", exc_info=True)
            result = self.respond(500, "Internal server error.\n")
        transport = self._transport
        if transport is None or self._lost:
            return
        if isinstance(result, Response):
            transport.write(serialize_response(result))
        else:
            transport.writelines([chunk for chunk in pending if chunk])
        self._eof_written = True
        transport.close()
        if self._close_handle is None:
            self._close_handle = self._loop.call_later(self._close_timeout, self._abort)

    def _on_request(self, request: Request) -> None:
        if self._task is None:
            self._task = self._loop.create_task(self._run(request))
            self._server._tasks.add(self._task)
            self._task.add_done_callback(self._server._tasks.discard)

    def _on_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)

    # -- the per-connection task ------------------------------------------

    async def _run(self, request: Request) -> None:
        server = self._server
        proto = self._proto
        assert isinstance(proto, ServerProtocol)
        try:
            response: Response | None = None
            if server._process_request is not None:
                try:
                    result = server._process_request(self, request)
                    if inspect.isawaitable(result):
                        result = await result
                    response = result
                except Exception:
                    _logger.error("process_request failed", exc_info=True)
                    response = proto.reject(500, "Failed to open a WebSocket connection.\n")
            if self._lost:
                return
            if response is None:
                try:
                    extra = server._extra_headers
                    if callable(extra):
                        extra = extra(request)
                    response = proto.accept(request, extra or ())
                except InvalidHandshake as exc:
                    response = proto.reject(exc.status or 400, f"{exc}\n")
                except (TypeError, ValueError):
                    _logger.error("extra_headers failed", exc_info=True)
                    response = proto.reject(500, "Failed to open a WebSocket connection.\n")
            proto.send_response(response)
            self._flush()
            if response.status != 101:
                self._log_rejection(response.status, response.reason)
            if proto.state is not State.OPEN:
                return
            self._on_open()
            # Frames that arrived with the request were parsed by send_response().
            self._after_receive()
            try:
                await server._handler(self)
            except ConnectionClosed:
                pass
            except asyncio.CancelledError:
                self._fail(CLOSE_INTERNAL_ERROR, "server shutting down")
                raise
            except Exception:
                _logger.error("connection handler failed", exc_info=True)
                await self.close(CLOSE_INTERNAL_ERROR, "internal error")
                return
            await self.close()
        except asyncio.CancelledError:
            self._abort()
            raise
        except Exception:  # pragma: no cover - bug guard: never leave a task error unseen
            _logger.error("unexpected error in the connection task", exc_info=True)
            self._abort()

    def _shutdown(self) -> None:
        """Start closing for server shutdown: 1001 if open, abort otherwise."""
        if self._lost:
            return
        if self._proto.state is State.OPEN:
            self._sent_reason = "server shutting down"
            self._proto.send_close(CLOSE_GOING_AWAY, "server shutting down")
            self._flush()
        elif self._proto.state is State.CONNECTING:
            self._abort()


class Server:
    """A running WebSocket server, returned by :func:`serve`.

    Use it as an async context manager (closes on exit), or call
    :meth:`serve_forever`, :meth:`close` and :meth:`wait_closed`.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        process_request: ProcessRequest | None,
        extra_headers: HeadersLike | None,
        close_timeout: float,
        protocol_factory: Callable[[], ServerProtocol],
        connection_options: dict[str, Any],
    ) -> None:
        self._handler = handler
        self._process_request = process_request
        self._extra_headers = extra_headers
        self._close_timeout = close_timeout
        self._protocol_factory = protocol_factory
        self._connection_options = connection_options
        self._connections: set[ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._close_task: asyncio.Task[None] | None = None

    def _make_connection(self) -> ServerConnection:
        return ServerConnection(self, self._protocol_factory(), **self._connection_options)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    @property
    def port(self) -> int | None:
        """The TCP port of the first listening socket (handy with ``port=0``)."""
        for sock in self.sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                return int(sock.getsockname()[1])
        return None

    @property
    def connections(self) -> frozenset[ServerConnection]:
        """The connections currently open (or opening)."""
        return frozenset(self._connections)

    def is_serving(self) -> bool:
        """Whether the server accepts new connections."""
        return self._server is not None and self._server.is_serving()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or the calling task is cancelled.

        Cancelling the task that runs this closes the server gracefully.
        """
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    def close(self, close_connections: bool = True) -> None:
        """Stop accepting connections and close the open ones.

        Every open connection gets a close frame with 1001 (going away); those
        still open after ``close_timeout`` are aborted, and handlers still
        running after a further ``close_timeout`` are cancelled.

        Args:
            close_connections: ``False`` only stops listening; the open
                connections carry on and :meth:`wait_closed` waits for them.
        """
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._close_task = self._loop.create_task(self._close(close_connections))

    async def _close(self, close_connections: bool) -> None:
        try:
            if close_connections:
                for conn in list(self._connections):
                    conn._shutdown()
                await self._wait_lost(self._close_timeout)
                for conn in list(self._connections):
                    conn._abort()
                await self._wait_lost(1.0)
                if self._tasks:
                    await asyncio.wait(set(self._tasks), timeout=self._close_timeout)
                for task in list(self._tasks):
                    task.cancel()
            else:
                await self._wait_lost(None)
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            if self._server is not None:
                await self._server.wait_closed()
        finally:
            if not self._closed.done():
                self._closed.set_result(None)

    async def _wait_lost(self, timeout: float | None) -> None:
        waiters = [conn._lost_future() for conn in self._connections if not conn._lost]
        if waiters:
            await asyncio.wait(waiters, timeout=timeout)

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection handler has returned."""
        await asyncio.shield(self._closed)
        if self._close_task is not None:
            await self._close_task

    async def __aenter__(self) -> Server:  # noqa: PYI034 - no typing.Self on 3.10
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<Server sockets={[s.getsockname() for s in self.sockets]!r}>"


class serve(Opener["Server"]):
    """Start a WebSocket server; use as ``async with serve(...) as server`` or ``await serve(...)``.

    Args:
        handler: coroutine function called with each :class:`ServerConnection`
            once the handshake succeeded. When it returns the connection is
            closed with 1000; when it raises, with 1011.
        host: address(es) to listen on (``None``: all interfaces).
        port: TCP port (0: any free port; see :attr:`Server.port`).
        path: listen on this unix socket path instead of TCP.
        sock: a pre-bound listening socket instead of ``host``/``port``.
        ssl: a server :class:`ssl.SSLContext` to serve ``wss://``.
        reuse_port: set ``SO_REUSEPORT`` (several processes share the port).
        backlog: the listen backlog.
        max_size: largest accepted message in bytes (after decompression);
            larger ones close the connection with 1009. ``None``: unlimited.
        max_fragments: most frames in one message (1009 above). ``"auto"``:
            ``max_size // 64``, at least 65,536, unlimited when ``max_size``
            is ``None``: fragments average 64 bytes or more, which bounds the
            bookkeeping of a fragmented message to about its size.
        max_queue: received messages (frames when streaming) buffered before
            reading pauses.
        write_limit: write-buffer high-water mark in bytes, or ``(high, low)``;
            ``send()`` waits above it.
        ping_interval: seconds between keepalive pings (``None``: off).
        ping_timeout: seconds to wait for a keepalive pong before closing with 1011.
        open_timeout: seconds allowed for the opening handshake.
        close_timeout: seconds allowed for the closing handshake.
        compression: ``"deflate"`` (permessage-deflate with memory-frugal
            settings), a :class:`~fastws.extensions.permessage_deflate.DeflateOptions`,
            or ``None`` to disable compression.
        origins: accepted ``Origin`` header values (``None`` in the list
            accepts requests without one); ``None`` disables the check.
        subprotocols: supported subprotocols in order of preference.
        select_subprotocol: custom choice: ``(request, offered) -> str | None``.
        process_request: ``(connection, request) -> Response | None``, sync or
            async, called before the handshake. Return a response (see
            :meth:`ServerConnection.respond`) to answer with plain HTTP
            instead of upgrading (health checks, pages, authentication).
        extra_headers: headers added to the 101 response: pairs, or a callable
            of the request that returns pairs.
        stream_messages: deliver frames as they arrive (needed by
            :meth:`~fastws.asyncio.Connection.recv_streaming` to stream
            without reassembling first). ``True`` by default.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        sock: socket.socket | None = None,
        ssl: ssl_module.SSLContext | None = None,
        reuse_port: bool | None = None,
        backlog: int = limits.BACKLOG,
        max_size: int | None = limits.MAX_MESSAGE_SIZE,
        max_fragments: int | Literal["auto"] | None = "auto",
        max_queue: int = limits.MAX_QUEUE,
        write_limit: int | tuple[int, int] = limits.WRITE_LIMIT,
        ping_interval: float | None = limits.PING_INTERVAL,
        ping_timeout: float | None = limits.PING_TIMEOUT,
        open_timeout: float | None = limits.OPEN_TIMEOUT,
        close_timeout: float = limits.CLOSE_TIMEOUT,
        compression: str | Any | None = "deflate",
        origins: Sequence[str | None] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Request, list[str]], str | None] | None = None,
        process_request: ProcessRequest | None = None,
        extra_headers: HeadersLike | None = None,
        stream_messages: bool = True,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be a coroutine function, not {handler!r}")
        check_endpoint(path=path, sock=sock, ssl=ssl)
        if host is not None and not isinstance(host, str):
            _check.strings("host", host, what="host")
        if port is not None:
            _check.integer("port", port, minimum=0)
            if port > 65535:
                raise ValueError(f"port must be in 0..65535, got {port!r}")
        _check.boolean("reuse_port", reuse_port, none=True)
        _check.integer("backlog", backlog, minimum=1)
        _check.callable_or_none("process_request", process_request)
        if not callable(extra_headers):
            extra_headers = header_pairs("extra_headers", extra_headers)
        self._handler = handler
        self._host = host
        self._port = port
        self._path = path
        self._sock = sock
        self._ssl = ssl
        self._reuse_port = reuse_port
        self._backlog = backlog
        deflate = compression_options(compression, server=True)
        self._protocol_kwargs: dict[str, Any] = {
            "subprotocols": subprotocols,
            "select_subprotocol": select_subprotocol,
            "origins": origins,
            "compression": deflate,
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
        }
        # Every option is checked now, not when the first client connects.
        check_options(**self._connection_options)
        ServerProtocol(**self._protocol_kwargs)
        self._close_timeout = close_timeout
        self._process_request = process_request
        self._extra_headers = extra_headers

    async def _open(self) -> Server:
        loop = asyncio.get_running_loop()
        kwargs = self._protocol_kwargs

        def protocol_factory() -> ServerProtocol:
            return ServerProtocol(**kwargs)

        server = Server(
            self._handler,
            process_request=self._process_request,
            extra_headers=self._extra_headers,
            close_timeout=self._close_timeout,
            protocol_factory=protocol_factory,
            connection_options=self._connection_options,
        )
        if self._path is not None or (
            self._sock is not None and self._sock.family == getattr(socket, "AF_UNIX", None)
        ):
            server._server = await loop.create_unix_server(
                server._make_connection,
                os.fspath(self._path) if self._path is not None else None,
                sock=self._sock,
                ssl=self._ssl,
                backlog=self._backlog,
            )
        else:
            tcp_options: dict[str, Any] = {
                "sock": self._sock,
                "ssl": self._ssl,
                "reuse_port": self._reuse_port,
                "backlog": self._backlog,
            }
            server._server = await loop.create_server(
                server._make_connection, self._host, self._port, **tcp_options
            )
        return server

    async def _shut(self, opened: Server) -> None:
        opened.close()
        await opened.wait_closed()


def unix_serve(
    handler: Handler, path: str | os.PathLike[str] | None = None, **options: Any
) -> serve:
    """Start a WebSocket server on a unix socket; same options as :class:`serve`.

    Args:
        handler: the connection handler.
        path: the socket path (or pass a bound unix ``sock=``).
        **options: any option of :class:`serve`.
    """
    return serve(handler, path=path, **options)
