"""The threaded WebSocket server: :func:`serve`, :class:`Server`, :class:`ServerConnection`.

One thread accepts connections (the one that calls :meth:`Server.serve_forever`);
each connection gets a thread that runs the opening handshake and then the
handler, and a reader thread (see :mod:`fastws.sync.connection`). When the
handler returns, the connection is closed with 1000 (1011 if it raised).
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from fastws import _check, limits
from fastws.asyncio._options import check_endpoint, compression_options, fragments_limit
from fastws.events import Request, Response
from fastws.exceptions import ConnectionClosed, InvalidHandshake
from fastws.frames import CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR
from fastws.handshake import header_pairs
from fastws.protocol import ServerProtocol, State
from fastws.sync.connection import Connection

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Server", "ServerConnection", "serve", "unix_serve"]

_logger = logging.getLogger("fastws.server")

Handler = Callable[["ServerConnection"], Any]
ProcessRequest = Callable[["ServerConnection", Request], Response | None]
ProcessResponse = Callable[["ServerConnection", Request, Response], Response | None]


class ServerConnection(Connection):
    """The server side of a WebSocket connection; the handler receives one."""

    def respond(
        self,
        status: int,
        body: str | bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> Response:
        """A plain HTTP response, for ``process_request`` to return instead of upgrading."""
        proto = self.protocol
        assert isinstance(proto, ServerProtocol)
        return proto.reject(status, body, headers)


class Server:
    """A running sync WebSocket server, returned by :func:`serve`.

    :meth:`serve_forever` accepts connections until :meth:`shutdown` is
    called (from another thread, or a handler). As a context manager, it
    shuts down on exit.
    """

    def __init__(self, sock: socket.socket, handler: Handler, options: dict[str, Any]) -> None:
        self.socket = sock
        self._handler = handler
        self._options = options
        self._connections: set[ServerConnection] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._shutdown = threading.Event()
        self._stopped = threading.Event()
        self._running = False

    @property
    def port(self) -> int | None:
        """The TCP port it listens on (``None`` for a unix socket)."""
        name = self.socket.getsockname()
        return name[1] if isinstance(name, tuple) else None

    @property
    def connections(self) -> frozenset[ServerConnection]:
        """The connections open now (handshake done)."""
        with self._lock:
            return frozenset(c for c in self._connections if c.state is State.OPEN)

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`; then close them (1001) and return."""
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        self._running = True
        try:
            while not self._shutdown.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready or self._shutdown.is_set():
                    break
                try:
                    conn_sock, _ = self.socket.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    _logger.error("accept() failed: %s", exc)
                    time.sleep(0.1)  # e.g. out of file descriptors: do not spin
                    continue
                self._start_connection(conn_sock)
        finally:
            selector.close()
            self._close_all()
            self._stopped.set()

    def _start_connection(self, conn_sock: socket.socket) -> None:
        with self._lock:
            if len(self._threads) >= self._options["max_connections"]:
                _logger.warning("refused a connection: max_connections reached")
                _refuse(conn_sock)
                return
            thread = threading.Thread(
                target=self._run_connection,
                args=(conn_sock,),
                name="fastws-server-conn",
                daemon=True,
            )
            self._threads.add(thread)
        thread.start()

    def _run_connection(self, conn_sock: socket.socket) -> None:
        try:
            self._handle(conn_sock)
        except Exception:  # pragma: no cover - bug guard
            _logger.error("unexpected error in a connection thread", exc_info=True)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _handle(self, conn_sock: socket.socket) -> None:
        options = self._options
        deadline = (
            None if options["open_timeout"] is None else time.monotonic() + options["open_timeout"]
        )
        try:
            if conn_sock.family in (socket.AF_INET, socket.AF_INET6):
                conn_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if options["ssl"] is not None:
                conn_sock.settimeout(options["open_timeout"])
                conn_sock = options["ssl"].wrap_socket(conn_sock, server_side=True)
            conn_sock.settimeout(None)
        except (OSError, ssl_module.SSLError) as exc:
            _logger.info("TLS handshake failed: %s", exc)
            conn_sock.close()
            return
        protocol = ServerProtocol(**options["protocol"])
        connection = ServerConnection(
            conn_sock,
            protocol,
            max_queue=options["max_queue"],
            ping_interval=options["ping_interval"],
            ping_timeout=options["ping_timeout"],
            close_timeout=options["close_timeout"],
        )
        with self._lock:
            if self._shutdown.is_set():
                conn_sock.close()
                return
            self._connections.add(connection)
        try:
            request = _read_request(connection, protocol, deadline)
            if request is None:
                return
            response = self._respond(connection, request)
            with connection._lock:
                protocol.send_response(response)
                connection._collect()
            connection._flush()
            if protocol.state is not State.OPEN:
                _logger.info(
                    "refused a connection from %s with %d",
                    connection.remote_address,
                    response.status,
                )
                connection._wait_ended(0)
                return
            connection._start(f"fastws-server-{connection.id.hex[:8]}")
            try:
                self._handler(connection)
            except ConnectionClosed:
                pass
            except Exception:
                _logger.error("connection handler failed", exc_info=True)
                connection.close(CLOSE_INTERNAL_ERROR, "internal error")
                return
            connection.close()
        finally:
            connection._wait_ended(options["close_timeout"])
            with self._lock:
                self._connections.discard(connection)

    def _respond(self, connection: ServerConnection, request: Request) -> Response:
        protocol = connection.protocol
        assert isinstance(protocol, ServerProtocol)
        options = self._options
        response: Response | None = None
        if options["process_request"] is not None:
            try:
                response = options["process_request"](connection, request)
            except Exception:
                _logger.error("process_request failed", exc_info=True)
                response = protocol.reject(500, "Failed to open a WebSocket connection.\n")
        if response is None:
            try:
                response = protocol.accept(request, options["extra_headers"])
            except InvalidHandshake as exc:
                response = protocol.reject(exc.status or 400, f"{exc}\n")
        if options["process_response"] is not None and response.status == 101:
            try:
                replaced = options["process_response"](connection, request, response)
            except Exception:
                _logger.error("process_response failed", exc_info=True)
                replaced = protocol.reject(500, "Failed to open a WebSocket connection.\n")
            if replaced is not None:
                response = replaced
        return response

    def shutdown(self) -> None:
        """Stop accepting, close every connection with 1001, wait for their threads.

        Safe to call from any thread, more than once.
        """
        self._shutdown.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._running and threading.current_thread() is not None:
            self._stopped.wait()
        else:
            self._close_all()

    def _close_all(self) -> None:
        try:
            self.socket.close()
        except OSError:  # pragma: no cover
            pass
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.close(CLOSE_GOING_AWAY, "server shutting down")
            except Exception:  # pragma: no cover - best effort
                _logger.debug("closing a connection failed", exc_info=True)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(self._options["close_timeout"] * 2 + 1)
        for s in (self._wake_r, self._wake_w):
            s.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def _refuse(conn_sock: socket.socket) -> None:
    try:
        conn_sock.sendall(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    except OSError:
        pass
    conn_sock.close()


def _read_request(
    connection: ServerConnection, protocol: ServerProtocol, deadline: float | None
) -> Request | None:
    """Read until the request is complete; ``None`` if it was refused (already answered)."""
    sock = connection.socket
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    try:
        while True:
            for event in protocol.events_received():
                if isinstance(event, Request):
                    return event
            if protocol.close_exc is not None or protocol.state is not State.CONNECTING:
                with connection._lock:
                    connection._collect()
                connection._flush()
                exc = protocol.close_exc
                if isinstance(exc, InvalidHandshake) and exc.status:
                    _logger.info(
                        "refused a connection from %s with %d: %s",
                        connection.remote_address,
                        exc.status,
                        exc,
                    )
                connection._wait_ended(0)
                return None
            timeout = None if deadline is None else deadline - time.monotonic()
            pending = isinstance(sock, ssl_module.SSLSocket) and sock.pending() > 0
            if (timeout is not None and timeout <= 0) or (
                not pending and not selector.select(timeout)
            ):
                _logger.info("opening handshake timed out")
                connection._wait_ended(0)
                return None
            try:
                data = sock.recv(1 << 16)
            except ssl_module.SSLWantReadError:
                continue
            except OSError:
                data = b""
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
    finally:
        selector.close()


def serve(
    handler: Handler,
    host: str | None = None,
    port: int | None = None,
    *,
    sock: socket.socket | None = None,
    path: str | os.PathLike[str] | None = None,
    ssl: ssl_module.SSLContext | None = None,
    reuse_port: bool = False,
    backlog: int = limits.BACKLOG,
    max_connections: int = 1024,
    origins: Sequence[str | None] | None = None,
    subprotocols: Sequence[str] | None = None,
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    extra_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    compression: str | Any | None = "deflate",
    max_size: int | None = limits.MAX_MESSAGE_SIZE,
    max_fragments: int | Literal["auto"] | None = "auto",
    max_queue: int = limits.MAX_QUEUE,
    ping_interval: float | None = limits.PING_INTERVAL,
    ping_timeout: float | None = limits.PING_TIMEOUT,
    open_timeout: float | None = limits.OPEN_TIMEOUT,
    close_timeout: float = limits.CLOSE_TIMEOUT,
) -> Server:
    """Listen for WebSocket connections; call :meth:`Server.serve_forever` to serve them.

    ``handler(connection)`` runs in a thread of its own for each connection.
    The options mean what they mean for :class:`fastws.asyncio.serve` and are
    checked at the call in the same way; ``max_connections`` bounds the
    connections (and so the threads) at once: above it, a client gets 503.

    Raises:
        TypeError, ValueError: an option has a wrong type or value.
        OSError: the address cannot be bound.
    """
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {handler!r}")
    check_endpoint(path=path, sock=sock, ssl=ssl)
    _check.boolean("reuse_port", reuse_port)
    _check.integer("backlog", backlog, minimum=1)
    _check.integer("max_connections", max_connections, minimum=1)
    _check.callable_or_none("process_request", process_request)
    _check.callable_or_none("process_response", process_response)
    _check.integer("max_queue", max_queue, minimum=1)
    _check.seconds("ping_interval", ping_interval, none=True, zero=False)
    _check.seconds("ping_timeout", ping_timeout, none=True)
    _check.seconds("open_timeout", open_timeout, none=True)
    _check.seconds("close_timeout", close_timeout)
    if port is not None:
        _check.integer("port", port, minimum=0)
    protocol_options: dict[str, Any] = {
        "subprotocols": subprotocols,
        "origins": origins,
        "compression": compression_options(compression, server=True),
        "max_message_size": max_size,
        "max_fragments": fragments_limit(max_size, max_fragments),
        "stream_messages": True,
    }
    ServerProtocol(**protocol_options)  # checks them now
    options: dict[str, Any] = {
        "protocol": protocol_options,
        "ssl": ssl,
        "max_connections": max_connections,
        "process_request": process_request,
        "process_response": process_response,
        "extra_headers": header_pairs("extra_headers", extra_headers),
        "max_queue": max_queue,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "open_timeout": open_timeout,
        "close_timeout": close_timeout,
    }
    if sock is None:
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(os.fspath(path))
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_server(
                (host or "", port or 0),
                backlog=backlog,
                reuse_port=reuse_port,
                family=socket.AF_INET6 if host and ":" in host else socket.AF_INET,
            )
        sock.listen(backlog)
    return Server(sock, handler, options)


def unix_serve(
    handler: Handler, path: str | os.PathLike[str] | None = None, **options: Any
) -> Server:
    """:func:`serve` on a unix socket."""
    return serve(handler, path=path, **options)
