"""The asyncio WebSocket server: :func:`serve`, :class:`Server`, :class:`ServerConnection`.

One :class:`ServerConnection` (an :class:`asyncio.Protocol`) per TCP
connection. Once the HTTP request is parsed, one task runs
``process_request`` (if any), answers the handshake and then runs the
handler; when the handler returns, the connection is closed with 1000 (1011
if it raised).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hmac
import inspect
import os
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from fastws import _check, limits
from fastws.asyncio._options import (
    Opener,
    check_endpoint,
    compression_options,
    connections_limit,
    fragments_limit,
)
from fastws.asyncio.connection import (
    SERVER_LOGGER,
    Connection,
    LoggerLike,
    broadcast,
    check_options,
)
from fastws.asyncio.exceptions import ConnectionClosed
from fastws.events import Request, Response
from fastws.exceptions import InvalidHandshake, InvalidState
from fastws.frames import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CloseCode,
    build_close_payload,
)
from fastws.handshake import header_pairs, header_value, serialize_response
from fastws.protocol import _USER_AGENT as _SERVER_HEADER
from fastws.protocol import ServerProtocol, State
from fastws.pubsub import Broker, LocalBroker, PublishResult

__all__ = [
    "HeadersLike",
    "Server",
    "ServerConnection",
    "basic_auth",
    "broadcast",
    "serve",
    "unix_serve",
]

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
ProcessResponse = Callable[
    ["ServerConnection", Request, Response],
    Awaitable[Response | None] | Response | None,
]
SelectSubprotocol = Callable[["ServerConnection", Sequence[str]], "str | None"]

_FAILED = "Failed to open a WebSocket connection.\nSee server log for more information.\n"
_OPEN = State.OPEN
_SLOW = "slow subscriber: too much data buffered"
_TRY_AGAIN_LATER = int(CloseCode.TRY_AGAIN_LATER)


class ServerConnection(Connection):
    """The server side of a WebSocket connection; the handler receives one.

    See :class:`~fastws.asyncio.Connection` for receiving, sending and closing.
    Subclass it and pass the subclass as ``serve(create_connection=...)`` to
    add attributes or behaviour.

    Args:
        protocol: the sans-IO state machine.
        server: the :class:`Server` the connection belongs to.
        **kwargs: the options of :class:`~fastws.asyncio.Connection`.

    Attributes:
        username: set by :func:`basic_auth` once the client authenticated
            (absent until then).
    """

    __slots__ = ("_logged_rejection", "_server", "_subscriptions", "_task", "username")

    username: str

    def __init__(self, protocol: ServerProtocol, server: Server, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self._server = server
        self._task: asyncio.Task[None] | None = None
        self._logged_rejection = False
        self._subscriptions: set[str] | None = None

    def _log_rejection(self, status: int, reason: object) -> None:
        """Log, once, that the opening handshake was answered with an error."""
        if not self._logged_rejection:
            self._logged_rejection = True
            self.logger.info(
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

    # -- topics -----------------------------------------------------------

    def subscribe(self, topic: str) -> None:
        """Receive what is published to ``topic`` (see :meth:`Server.publish`).

        Subscribing twice is the same as once. Subscriptions end when the
        connection closes.

        Raises:
            TypeError: ``topic`` is not a ``str``.
            ConnectionClosed: the connection is not open.
        """
        _topic(topic)
        self._check_open()
        subscriptions = self._subscriptions
        if subscriptions is None:
            subscriptions = self._subscriptions = set()
        elif topic in subscriptions:
            return
        subscriptions.add(topic)
        self._server._subscribe(self, topic, self._proto.broadcast_key())

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving what is published to ``topic`` (nothing if not subscribed).

        Raises:
            TypeError: ``topic`` is not a ``str``.
        """
        _topic(topic)
        subscriptions = self._subscriptions
        if subscriptions is not None and topic in subscriptions:
            subscriptions.discard(topic)
            self._server._unsubscribe(self, topic)

    @property
    def topics(self) -> frozenset[str]:
        """The topics this connection is subscribed to."""
        return frozenset(self._subscriptions or ())

    def publish(self, topic: str, message: str | bytes | bytearray | memoryview) -> PublishResult:
        """Publish ``message`` to every subscriber of ``topic`` but this connection.

        The same as ``ws.server.publish(topic, message, exclude=ws)``.
        """
        return self._server.publish(topic, message, exclude=self)

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
        server = self._server
        limit = server._max_connections
        if limit is not None and len(server._connections) >= limit:
            server._refused_connection()
            proto = self._proto
            assert isinstance(proto, ServerProtocol)
            proto.send_response(
                proto.reject(503, "Too many connections: try again later.\n", {"Retry-After": "5"})
            )
            self._flush()
            return
        server._connections.add(self)
        if server._closing:
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
        result = await self._callback("process_request", self._server._process_request, request)
        transport = self._transport
        if transport is None or self._lost:
            return
        if result is not None:
            try:
                head = serialize_response(result)
            except ValueError:
                self.logger.error("cannot send the response", exc_info=True)
                head = serialize_response(self.respond(500, _FAILED))
            transport.write(head)
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
        subscriptions = self._subscriptions
        if subscriptions:
            server = self._server
            for topic in subscriptions:
                server._unsubscribe(self, topic)
            subscriptions.clear()

    # -- the per-connection task ------------------------------------------

    async def _run(self, request: Request) -> None:
        server = self._server
        proto = self._proto
        assert isinstance(proto, ServerProtocol)
        try:
            response = await self._callback("process_request", server._process_request, request)
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
                    self.logger.error("extra_headers failed", exc_info=True)
                    response = proto.reject(500, _FAILED)
            if server._process_response is not None:
                replaced = await self._callback(
                    "process_response", server._process_response, request, response
                )
                if replaced is not None:
                    response = replaced
                if self._lost:
                    return
            if response.status == 101 and server._closing:
                response = proto.reject(503, "Server is shutting down.\n")
            try:
                proto.send_response(response)
            except (InvalidState, TypeError, ValueError):
                self.logger.error("cannot send the handshake response", exc_info=True)
                proto.send_response(proto.reject(500, _FAILED))
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
                self.logger.error("connection handler failed", exc_info=True)
                await self.close(CLOSE_INTERNAL_ERROR, "internal error")
                return
            await self.close()
        except asyncio.CancelledError:
            self._abort()
            raise
        except Exception:  # pragma: no cover - bug guard: never leave a task error unseen
            self.logger.error("unexpected error in the connection task", exc_info=True)
            self._abort()

    async def _callback(
        self, name: str, callback: Callable[..., Any] | None, *args: Any
    ) -> Response | None:
        """Call ``process_request`` or ``process_response`` (sync or async).

        Returns:
            Its response, ``None`` to go on, or a 500 response if it raised or
            returned something else (logged with the traceback).
        """
        if callback is None:
            return None
        try:
            result = callback(self, *args)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            self.logger.error("%s failed", name, exc_info=True)
            return self.respond(500, _FAILED)
        if result is None or isinstance(result, Response):
            return result
        self.logger.error("%s returned %r instead of a Response or None", name, result)
        return self.respond(500, _FAILED)

    def _shutdown(self, code: int, reason: str) -> None:
        """Start closing for server shutdown: ``code`` if open, abort otherwise."""
        if self._lost:
            return
        if self._proto.state is State.OPEN:
            self._sent_reason = reason
            self._proto.send_close(code, reason)
            self._flush()
        elif self._proto.state is State.CONNECTING:
            self._abort()


class Server:
    """A running WebSocket server, returned by :func:`serve`.

    Use it as an async context manager (closes on exit), or call
    :meth:`serve_forever`, :meth:`close` and :meth:`wait_closed`.

    Attributes:
        logger: the server's logger (``fastws.server`` unless ``serve(logger=...)``).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        process_request: ProcessRequest | None,
        process_response: ProcessResponse | None,
        select_subprotocol: SelectSubprotocol | None,
        extra_headers: HeadersLike | None,
        close_timeout: float,
        protocol_factory: Callable[[], ServerProtocol],
        create_connection: Callable[..., ServerConnection],
        connection_options: dict[str, Any],
        logger: LoggerLike,
        max_connections: int | None = None,
        broker: Broker | None = None,
        max_backpressure: int | None = limits.MAX_BACKPRESSURE,
        backpressure: str = "drop",
    ) -> None:
        self._handler = handler
        self._process_request = process_request
        self._process_response = process_response
        self._select_subprotocol = select_subprotocol
        self._extra_headers = extra_headers
        self._close_timeout = close_timeout
        self._protocol_factory = protocol_factory
        self._create_connection = create_connection
        self._connection_options = connection_options
        self.logger = logger
        self._connections: set[ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._close_task: asyncio.Task[None] | None = None
        self._max_connections = max_connections
        # Refused connections and failed accepts: counted, logged at most
        # once per limits.LOG_INTERVAL.
        self._refused = 0
        self._accept_errors = 0
        self._last_log = -limits.LOG_INTERVAL
        self._exception_handler: Any = None
        self._last_error: object = None
        # Topics: topic -> {subscriber: its broadcast_key()}.
        self._topics: dict[str, dict[ServerConnection, tuple[object, ...] | None]] = {}
        self._broker: Broker = broker if broker is not None else LocalBroker()
        self._max_backpressure = max_backpressure
        self._close_slow = backpressure == "close"
        self._dropped = 0  # since the last log line about them
        self._last_drop_log = -limits.LOG_INTERVAL

    def _make_connection(self) -> ServerConnection:
        proto = self._protocol_factory()
        conn = self._create_connection(proto, self, **self._connection_options)
        select = self._select_subprotocol
        if select is not None:
            # The state machine asks (request, offered); serve() takes
            # websockets' (connection, offered).
            def select_subprotocol(request: Request, offered: list[str]) -> str | None:
                return select(conn, offered)

            proto.select_subprotocol = select_subprotocol
        return conn

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
    def connections(self) -> set[ServerConnection]:
        """The connections that finished the opening handshake and are not closing.

        A new set each time, e.g. for :func:`broadcast`.
        """
        return {conn for conn in self._connections if conn.state is State.OPEN}

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether the server accepts new connections."""
        return self._server is not None and self._server.is_serving()

    async def start_serving(self) -> None:
        """Start accepting connections (after ``serve(..., start_serving=False)``)."""
        if self._server is not None and not self._server.is_serving() and not self._closing:
            await self._server.start_serving()
            self._log_listening()

    # -- topics -------------------------------------------------------------

    @property
    def broker(self) -> Broker:
        """The :class:`~fastws.pubsub.Broker` that relays publishes between processes."""
        return self._broker

    def topics(self) -> dict[str, int]:
        """How many local subscribers each topic has (a new dict each time)."""
        return {topic: len(subscribers) for topic, subscribers in self._topics.items()}

    def _subscribe(
        self, conn: ServerConnection, topic: str, key: tuple[object, ...] | None
    ) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None:
            subscribers = self._topics[topic] = {}
            self._broker.subscribe(topic)
        subscribers[conn] = key

    def _unsubscribe(self, conn: ServerConnection, topic: str) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is not None and subscribers.pop(conn, 0) != 0 and not subscribers:
            del self._topics[topic]
            self._broker.unsubscribe(topic)

    def publish(
        self,
        topic: str,
        message: str | bytes | bytearray | memoryview,
        *,
        exclude: ServerConnection | None = None,
    ) -> PublishResult:
        """Send ``message`` to every subscriber of ``topic``, without waiting.

        A plain call, on the event loop's thread (from another thread, see
        :meth:`publish_threadsafe`). The message is framed once (once per
        set of compression settings; see :func:`broadcast`) and the same
        bytes are written to each subscriber's transport in one pass. A
        subscriber whose transport holds more than ``max_backpressure``
        bytes does not get it: it is counted as dropped and, with
        ``backpressure="close"``, closed with 1013 (try again later). The
        broker then sends the message to the other processes (see
        :mod:`fastws.pubsub`).

        Args:
            topic: the topic.
            message: ``str`` for a text message, bytes-like for binary.
            exclude: a connection that must not receive it (e.g. the sender).

        Returns:
            ``PublishResult(delivered, dropped)``, counting this process's
            subscribers.

        Raises:
            TypeError: ``topic`` is not a ``str``, ``message`` not ``str``
                or bytes-like, or ``exclude`` not a connection.
        """
        _topic(topic)
        if isinstance(message, str):
            payload = message.encode()
            text = True
        elif isinstance(message, (bytes, bytearray, memoryview)):
            payload = bytes(message)
            text = False
        else:
            raise TypeError(f"cannot publish {type(message).__name__}; send str or bytes")
        if exclude is not None and not isinstance(exclude, ServerConnection):
            raise TypeError(f"exclude must be a ServerConnection or None, not {exclude!r}")
        result = self._fan_out(topic, payload, text, exclude)
        self._broker.publish(topic, payload, text)
        return result

    def publish_threadsafe(
        self,
        topic: str,
        message: str | bytes | bytearray | memoryview,
        *,
        exclude: ServerConnection | None = None,
    ) -> concurrent.futures.Future[PublishResult]:
        """:meth:`publish` from another thread: runs it on the server's event loop.

        Returns:
            A :class:`concurrent.futures.Future` of the :class:`~fastws.pubsub.PublishResult`
            (or of the error :meth:`publish` raised).
        """
        future: concurrent.futures.Future[PublishResult] = concurrent.futures.Future()
        if isinstance(message, (bytearray, memoryview)):
            message = bytes(message)  # the caller may change it before the loop runs

        def publish() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self.publish(topic, message, exclude=exclude))
            except Exception as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(publish)
        return future

    def _deliver(self, topic: str, payload: bytes, text: bool) -> None:
        """A publish from another process (the broker calls this)."""
        if topic in self._topics:
            self._fan_out(topic, payload, text, None)

    def _fan_out(
        self, topic: str, payload: bytes, text: bool, exclude: ServerConnection | None
    ) -> PublishResult:
        subscribers = self._topics.get(topic)
        if not subscribers:
            return PublishResult(0, 0)
        frames: dict[tuple[object, ...], bytes] = {}
        frame_key: tuple[object, ...] | None = None
        frame = b""
        limit = self._max_backpressure
        delivered = dropped = 0
        slow: list[ServerConnection] | None = None
        for conn, key in subscribers.items():
            proto = conn._proto
            if proto.state is not _OPEN or conn is exclude:
                continue
            transport = conn._transport
            assert transport is not None
            if limit is not None and transport.get_write_buffer_size() > limit:
                dropped += 1
                if self._close_slow:
                    if slow is None:
                        slow = []
                    slow.append(conn)
                continue
            if conn._fragment_waiter is not None:
                dropped += 1  # a message cannot go between the frames of another
                continue
            try:
                if key is None:
                    if text:
                        proto.send_text(payload)
                    else:
                        proto.send_binary(payload)
                    conn._flush()
                else:
                    if key is not frame_key:  # most subscribers share one key object
                        cached = frames.get(key)
                        if cached is None:
                            cached = frames[key] = proto.encode_message(payload, text=text)
                        frame_key, frame = key, cached
                    if conn._hold or proto.has_data_to_send():
                        # Keep the order of what the connection queued before.
                        proto.send_encoded(frame)
                        conn._flush()
                    else:
                        transport.write(frame)
            except Exception as exc:  # pragma: no cover - a transport that failed under us
                conn.logger.warning("skipped a publish: failed to write the message: %r", exc)
                dropped += 1
                continue
            delivered += 1
        if dropped:
            self._log_dropped(dropped)
            if slow is not None:
                for conn in slow:
                    conn.logger.info("closing a slow subscriber (%s)", _SLOW)
                    conn._shutdown(_TRY_AGAIN_LATER, _SLOW)
        return PublishResult(delivered, dropped)

    def _log_dropped(self, count: int) -> None:
        """Count subscribers a publish skipped; log them at most once per limits.LOG_INTERVAL."""
        self._dropped += count
        now = self._loop.time()
        if now - self._last_drop_log >= limits.LOG_INTERVAL:
            self._last_drop_log = now
            self.logger.warning(
                "publishes skipped %d subscribers (more than max_backpressure=%s bytes "
                "buffered, or sending a fragmented message)",
                self._dropped,
                self._max_backpressure,
            )
            self._dropped = 0

    def _refused_connection(self) -> None:
        self._refused += 1
        self._log_overload()

    def _log_overload(self) -> None:
        now = self._loop.time()
        if now - self._last_log < limits.LOG_INTERVAL:
            return
        self._last_log = now
        if self._refused:
            self.logger.warning(
                "refused %d connections with 503: max_connections (%s) reached",
                self._refused,
                self._max_connections,
            )
        if self._accept_errors:
            self.logger.error(
                "accepting connections failed %d times (%s)", self._accept_errors, self._last_error
            )
        self._refused = self._accept_errors = 0

    def _filter_accept_errors(self) -> None:
        """Count the event loop's errors in accepting our connections instead of logging each.

        When the process runs out of file descriptors, the loop reports every
        failed accept(), thousands of times a second. Reports about our
        listening sockets are counted and logged on the server's logger at
        most once per limits.LOG_INTERVAL; every other report goes to the
        loop's handler as before, and that handler is put back when the
        server closes (unless someone replaced ours meanwhile).
        """
        loop = self._loop
        previous = loop.get_exception_handler()
        ours = {s.fileno() for s in self.sockets}

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            sock = context.get("socket")
            fileno = getattr(sock, "fileno", None)
            if fileno is not None and "accept" in str(context.get("message", "")):
                try:
                    mine = fileno() in ours
                except OSError:  # pragma: no cover - a closed socket
                    mine = False
                if mine:
                    self._accept_errors += 1
                    self._last_error = context.get("exception") or context.get("message")
                    self._log_overload()
                    return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        self._exception_handler = (handler, previous)
        loop.set_exception_handler(handler)

    def _unfilter_accept_errors(self) -> None:
        installed = self._exception_handler
        if installed is not None and self._loop.get_exception_handler() is installed[0]:
            self._loop.set_exception_handler(installed[1])
        self._exception_handler = None

    def _log_listening(self) -> None:
        for sock in self.sockets:
            name = sock.getsockname()
            if sock.family == socket.AF_INET:
                name = f"{name[0]}:{name[1]}"
            elif sock.family == socket.AF_INET6:
                name = f"[{name[0]}]:{name[1]}"
            self.logger.info("server listening on %s", name)

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or the calling task is cancelled.

        Starts accepting connections first if ``start_serving=False`` was
        given. Cancelling the task that runs this closes the server gracefully.
        """
        try:
            await self.start_serving()
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    def close(
        self,
        close_connections: bool = True,
        code: int = CLOSE_GOING_AWAY,
        reason: str = "server shutting down",
    ) -> None:
        """Stop accepting connections and close the open ones.

        Every open connection gets a close frame with ``code`` (1001, going
        away, by default; e.g. 1012 for a restart); those still open after
        ``close_timeout`` are aborted, and handlers still running after a
        further ``close_timeout`` are cancelled. Idempotent.

        Args:
            close_connections: ``False`` only stops listening; the open
                connections carry on and :meth:`wait_closed` waits for them.
            code: the close code sent to open connections.
            reason: the close reason sent with it.

        Raises:
            ValueError: ``code`` or ``reason`` cannot be sent in a close frame.
        """
        if self._closing:
            return
        build_close_payload(code, reason)  # checked now, not in each connection
        self._closing = True
        self.logger.info("server closing")
        self._unfilter_accept_errors()
        if self._server is not None:
            self._server.close()
        self._close_task = self._loop.create_task(self._close(close_connections, code, reason))

    async def _close(self, close_connections: bool, code: int, reason: str) -> None:
        try:
            if close_connections:
                for conn in list(self._connections):
                    conn._shutdown(code, reason)
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
            await self._broker.close()
        finally:
            if not self._closed.done():
                self._closed.set_result(None)
                self.logger.info("server closed")

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
        max_connections: connections kept at once; a client above it gets
            503 (counted, logged at most every 10 s). ``"auto"`` (the
            default) keeps a margin below the process's file-descriptor
            limit; ``None``: no limit.
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
        select_subprotocol: custom choice, as in websockets:
            ``(connection, offered) -> str | None``; the result must be one of
            ``offered`` (else 500) or ``None`` for no subprotocol.
        process_request: ``(connection, request) -> Response | None``, sync or
            async, called before the handshake. Return a response (see
            :meth:`ServerConnection.respond`) to answer with plain HTTP
            instead of upgrading (health checks, pages, authentication).
            See :func:`basic_auth`.
        process_response: ``(connection, request, response) -> Response |
            None``, sync or async, called with the response about to be sent
            (the 101, or an error): edit ``response.headers``, or return
            another response. A replacement 101 must keep the
            ``Sec-WebSocket-*`` headers of the original. If either callback
            raises, the client gets a 500 and the error is logged.
        extra_headers: headers added to the 101 response: pairs, or a callable
            of the request that returns pairs.
        server_header: the ``Server`` header of every response
            (``fastws/<version>`` by default); ``None`` sends none.
        stream_messages: deliver frames as they arrive (needed by
            :meth:`~fastws.asyncio.Connection.recv_streaming` to stream
            without reassembling first). ``True`` by default.
        start_serving: ``False`` opens the listening sockets without
            accepting connections until :meth:`Server.start_serving` or
            :meth:`Server.serve_forever`.
        logger: the logger of the server and its connections (default
            ``fastws.server``).
        create_connection: the class of the connections (a
            :class:`ServerConnection` subclass, or a callable that takes the
            same arguments and returns one).
        broker: relays :meth:`Server.publish` between processes: a
            :class:`~fastws.pubsub.RedisBroker`, or ``None`` for a
            :class:`~fastws.pubsub.LocalBroker` (this process only). It
            starts and closes with the server.
        max_backpressure: bytes a subscriber's transport may hold before a
            publish skips it (``None``: no limit).
        backpressure: what a publish does to a subscriber above
            ``max_backpressure``: ``"drop"`` skips it (counted as dropped),
            ``"close"`` also closes it with 1013 (try again later).
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
        max_connections: int | Literal["auto"] | None = limits.MAX_CONNECTIONS,
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
        select_subprotocol: SelectSubprotocol | None = None,
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponse | None = None,
        extra_headers: HeadersLike | None = None,
        server_header: str | None = _SERVER_HEADER,
        stream_messages: bool = True,
        start_serving: bool = True,
        logger: LoggerLike | None = None,
        create_connection: Callable[..., ServerConnection] | None = None,
        broker: Broker | None = None,
        max_backpressure: int | None = limits.MAX_BACKPRESSURE,
        backpressure: Literal["drop", "close"] = "drop",
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
        self._max_connections = connections_limit(max_connections)
        _check.callable_or_none("process_request", process_request)
        _check.callable_or_none("process_response", process_response)
        _check.callable_or_none("select_subprotocol", select_subprotocol)
        _check.boolean("start_serving", start_serving)
        _check.callable_or_none("create_connection", create_connection)
        if isinstance(create_connection, type) and not issubclass(
            create_connection, ServerConnection
        ):
            raise TypeError(
                f"create_connection must be a ServerConnection subclass, not {create_connection!r}"
            )
        if not callable(extra_headers):
            extra_headers = header_pairs("extra_headers", extra_headers)
        if broker is not None and not isinstance(broker, Broker):
            raise TypeError(f"broker must be a fastws.pubsub.Broker or None, not {broker!r}")
        _check.integer("max_backpressure", max_backpressure, minimum=0, none=True)
        if not isinstance(backpressure, str):
            raise TypeError(f"backpressure must be 'drop' or 'close', not {backpressure!r}")
        if backpressure not in ("drop", "close"):
            raise ValueError(f"backpressure must be 'drop' or 'close', not {backpressure!r}")
        self._broker = broker
        self._max_backpressure = max_backpressure
        self._backpressure = backpressure
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
            "origins": origins,
            "server_header": header_value("server_header", server_header),
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
            "logger": logger if logger is not None else SERVER_LOGGER,
        }
        # Every option is checked now, not when the first client connects.
        check_options(**self._connection_options)
        ServerProtocol(**self._protocol_kwargs)
        self._close_timeout = close_timeout
        self._process_request = process_request
        self._process_response = process_response
        self._select_subprotocol = select_subprotocol
        self._extra_headers = extra_headers
        self._start_serving = start_serving
        self._create_connection = create_connection or ServerConnection

    async def _open(self) -> Server:
        loop = asyncio.get_running_loop()
        kwargs = self._protocol_kwargs

        def protocol_factory() -> ServerProtocol:
            return ServerProtocol(**kwargs)

        server = Server(
            self._handler,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            extra_headers=self._extra_headers,
            close_timeout=self._close_timeout,
            protocol_factory=protocol_factory,
            create_connection=self._create_connection,
            connection_options=self._connection_options,
            logger=self._connection_options["logger"],
            max_connections=self._max_connections,
            broker=self._broker,
            max_backpressure=self._max_backpressure,
            backpressure=self._backpressure,
        )
        await server._broker.start(server._deliver)
        try:
            if self._path is not None or (
                self._sock is not None and self._sock.family == getattr(socket, "AF_UNIX", None)
            ):
                server._server = await loop.create_unix_server(
                    server._make_connection,
                    os.fspath(self._path) if self._path is not None else None,
                    sock=self._sock,
                    ssl=self._ssl,
                    backlog=self._backlog,
                    start_serving=self._start_serving,
                )
            else:
                tcp_options: dict[str, Any] = {
                    "sock": self._sock,
                    "ssl": self._ssl,
                    "reuse_port": self._reuse_port,
                    "backlog": self._backlog,
                    "start_serving": self._start_serving,
                }
                server._server = await loop.create_server(
                    server._make_connection, self._host, self._port, **tcp_options
                )
        except BaseException:
            await server._broker.close()
            raise
        server._filter_accept_errors()
        if self._start_serving:
            server._log_listening()
        return server

    async def _shut(self, opened: Server) -> None:
        opened.close()
        await opened.wait_closed()


def _topic(topic: object) -> None:
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, not {type(topic).__name__}: {topic!r}")


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


def _credential_pairs(credentials: object) -> list[tuple[str, str]]:
    """``credentials`` (a pair or pairs of ``str``) as a list of pairs."""

    def is_pair(item: object) -> bool:
        return (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        )

    if is_pair(credentials):
        return [credentials]  # type: ignore[list-item]
    if isinstance(credentials, Iterable) and not isinstance(credentials, (str, bytes)):
        pairs = list(credentials)
        if pairs and all(is_pair(item) for item in pairs):
            return pairs
    raise TypeError(
        "credentials must be a (username, password) pair of str or a list of them, "
        f"not {credentials!r}"
    )


def _parse_basic(authorization: str) -> tuple[str, str] | None:
    """The ``(username, password)`` of a ``Basic`` Authorization header, or ``None``."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], Awaitable[bool] | bool] | None = None,
) -> Callable[[ServerConnection, Request], Awaitable[Response | None]]:
    """A ``process_request`` that requires HTTP Basic authentication (RFC 7617).

    ::

        async with serve(handler, "127.0.0.1", 8765,
                         process_request=basic_auth(realm="dev",
                                                    credentials=("alice", "s3cret"))):
            ...

    A client that sends no credentials, credentials that are not ``Basic``,
    or wrong ones gets a 401 with ``WWW-Authenticate: Basic realm="..."``.
    Once it authenticated, ``connection.username`` holds its user name.
    Passwords are compared in constant time.

    Args:
        realm: the protection space named in the challenge (ASCII).
        credentials: the accepted ``(username, password)`` pair, or a list of them.
        check_credentials: ``(username, password) -> bool``, a function or a
            coroutine function, instead of ``credentials``.

    Returns:
        The ``process_request`` callable, for :class:`serve`.

    Raises:
        ValueError: both or neither of ``credentials`` and
            ``check_credentials`` were given, or ``realm`` cannot be sent.
        TypeError: an argument of the wrong type.
    """
    if not isinstance(realm, str):
        raise TypeError(f"realm must be a str, not {realm!r}")
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    challenge = header_value("realm", f'Basic realm="{quoted}", charset="UTF-8"')
    if (credentials is None) == (check_credentials is None):
        raise ValueError("basic_auth() needs either credentials or check_credentials")
    if check_credentials is None:
        accepted = [
            (user.encode(), password.encode()) for user, password in _credential_pairs(credentials)
        ]

        def check(username: str, password: str) -> bool:
            # Every pair is compared, in constant time: the time taken does
            # not tell which user exists or how much of a password matched.
            user_bytes, password_bytes = username.encode(), password.encode()
            found = False
            for user, expected in accepted:
                same_user = hmac.compare_digest(user, user_bytes)
                same_password = hmac.compare_digest(expected, password_bytes)
                found |= same_user & same_password
            return found

        checker: Callable[[str, str], Awaitable[bool] | bool] = check
    else:
        checker = _check.callable_or_none("check_credentials", check_credentials)

    def refuse(connection: ServerConnection, text: str) -> Response:
        return connection.respond(401, text, [("WWW-Authenticate", challenge)])

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return refuse(connection, "Missing credentials\n")
        parsed = _parse_basic(authorization)
        if parsed is None:
            return refuse(connection, "Unsupported credentials\n")
        username, password = parsed
        valid = checker(username, password)
        if inspect.isawaitable(valid):
            valid = await valid
        if not valid:
            return refuse(connection, "Invalid credentials\n")
        connection.username = username
        return None

    return process_request
