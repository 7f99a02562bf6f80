"""The asyncio connection shared by the server and the client.

:class:`Connection` is an :class:`asyncio.BufferedProtocol`: the event loop
reads from the socket straight into a receive buffer shared by the connections
of the thread (see :func:`_read_buffer`), and :meth:`buffer_updated` feeds the
bytes to the sans-IO state machine (:mod:`fastws.protocol`), which copies out
what it keeps; the bytes it produces are written with ``transport.write``. No
stream objects and no reader task sit in between.

Lifecycle and rules (one connection, both roles):

* ``CONNECTING``: the opening handshake runs; it must finish within
  ``open_timeout`` or the transport is aborted.
* ``OPEN``: received messages go to a bounded queue (``max_queue`` items, a
  whole message or, with streaming, one frame per item). When the queue is
  full, reading from the socket pauses until :meth:`Connection.recv` has
  drained it to a quarter. When the transport's write buffer is above its
  high-water mark (``write_limit``), :meth:`Connection.send` waits until it
  drops below the low-water mark, and reading pauses too, so that a peer that
  does not read cannot make us buffer replies (pongs, echoes) without bound.
* ``CLOSING``: a close frame was sent or received. The TCP connection must end
  within ``close_timeout``, else it is aborted.
* ``CLOSED``: ``connection_lost`` was called; every waiter is woken and every
  further ``recv``/``send`` raises :class:`ConnectionClosed`.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import logging
import mmap
import os
import sys
import threading
import time
import uuid
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast, overload

from fastws import _check, limits
from fastws.asyncio.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from fastws.events import CloseReceived, Pong, Request, Response
from fastws.exceptions import InvalidState
from fastws.frames import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_DATA,
    CLOSE_NO_STATUS,
    CLOSE_NORMAL,
)
from fastws.protocol import MessageQueue, Role, State

if TYPE_CHECKING:
    from fastws.protocol import ClientProtocol, ServerProtocol

__all__ = ["Connection", "Data", "LoggerLike", "State", "broadcast"]

#: A message: ``str`` for text, ``bytes`` for binary.
Data = str | bytes

#: What the ``logger`` option takes: a logger or a logger adapter.
if TYPE_CHECKING:
    LoggerLike: TypeAlias = logging.Logger | logging.LoggerAdapter[Any]
else:  # LoggerAdapter is subscriptable from Python 3.11 only
    LoggerLike = logging.Logger | logging.LoggerAdapter

#: The loggers of the two roles (``logger=None``).
SERVER_LOGGER = logging.getLogger("fastws.server")
CLIENT_LOGGER = logging.getLogger("fastws.client")
_OPEN = State.OPEN
_CONNECTING = State.CONNECTING

_OK_CODES = frozenset((CLOSE_NORMAL, CLOSE_GOING_AWAY))

# How long a protocol failure may wait for the application to answer the
# messages received just before it, before the close frame is sent anyway.
_HOLD_FAILURE = 0.5

# Bytes that send() may leave unwritten until the end of the loop iteration.
_COALESCE_LIMIT = 1 << 18


# The receive buffer: one per thread, shared by every connection of the thread's
# event loop. An event loop calls get_buffer() and then buffer_updated() for
# one connection without running anything in between, and buffer_updated()
# is done with the bytes when it returns (the state machine copies an
# incomplete frame, and every message it delivers is a new object), so no
# connection sees another's bytes. Compared with data_received(), this saves
# the allocation and copy of a new bytes object per read, which for large
# reads costs page faults as well. Large reads mean fewer system calls, and a
# large frame's first read more often holds enough of it to be unmasked
# straight into its final payload (see the state machine). The buffer is an
# anonymous mapping: a page costs memory only once a read has reached it.
_READ_SIZE = 1 << 20
_local = threading.local()


def _read_buffer() -> memoryview:
    """This thread's receive buffer."""
    try:
        view: memoryview = _local.view
    except AttributeError:
        view = _local.view = memoryview(mmap.mmap(-1, _READ_SIZE))
    return view


# Writing. Before Python 3.12, the transport of asyncio's own event loop keeps
# the writelines() of its base class, which joins the chunks into one new bytes
# object; and its write() copies the part that the socket does not take at once
# twice (a slice of the bytes, then its buffer), but once only for a view. So a
# large payload written after its header was copied up to three times, and a
# 1 MiB echo cost more than twice the CPU time that it costs on uvloop. For such
# a transport, _write() passes large chunks on their own as views and joins the
# small ones between them. (A single chunk is written as it is: its size is not
# checked, which would cost every small message; only a client's large masked
# frame comes as one chunk.)
#
# From Python 3.12 that transport has a writelines() of its own, without copies;
# but before the fix of CPython gh-127655 (3.12.9 and 3.13.2) it does not pause
# the protocol above the high-water mark, so a peer that does not read would
# make the write buffer grow without bound. There, _write() joins the chunks
# and uses write(), which pauses (one copy, as aiohttp does on those releases).
_LARGE_WRITE = 1 << 16
_JOINING_WRITELINES = asyncio.WriteTransport.writelines
_WRITELINES_PAUSES = sys.version_info >= (3, 13, 2) or (3, 12, 9) <= sys.version_info < (3, 13)


def _write(transport: asyncio.WriteTransport, chunks: list[bytes]) -> None:
    """Write ``chunks`` (non-empty, immutable) in order, with as few copies as possible."""
    writelines = type(transport).writelines
    if writelines is not _JOINING_WRITELINES:
        if _WRITELINES_PAUSES or not type(transport).__module__.startswith("asyncio."):
            transport.writelines(chunks)
        else:
            transport.write(b"".join(chunks))
        return
    small: list[bytes] = []
    for chunk in chunks:
        if len(chunk) < _LARGE_WRITE:
            small.append(chunk)
            continue
        if small:
            transport.write(memoryview(b"".join(small)))
            small = []
        transport.write(memoryview(chunk))
    if small:
        transport.write(memoryview(b"".join(small)))


def _joined(parts: list[Data]) -> Data:
    """The message made of the pieces of a fragmented one (all ``str`` or all ``bytes``)."""
    if isinstance(parts[0], str):
        return "".join(parts)  # type: ignore[arg-type]
    return b"".join(parts)  # type: ignore[arg-type]


def _payload(name: str, data: object) -> bytes:
    """A ping or pong payload as ``bytes`` (``str`` encoded as UTF-8)."""
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{name} must be str or bytes-like, not {type(data).__name__}")


def _discard(message: Data) -> None:
    """The on_message() callback that replaces one that raised."""


def _write_limits(write_limit: int | tuple[int, int]) -> tuple[int, int]:
    """Return ``(high, low)`` water marks from an int or a pair."""
    if isinstance(write_limit, tuple) and len(write_limit) == 2:
        high, low = write_limit
    elif isinstance(write_limit, tuple):
        raise ValueError(f"write_limit must be an int or a (high, low) pair, got {write_limit!r}")
    else:
        high = _check.integer("write_limit", write_limit, minimum=0)
        low = high // 4
    _check.integer("write_limit's high-water mark", high, minimum=0)
    _check.integer("write_limit's low-water mark", low, minimum=0)
    if low > high:
        raise ValueError(f"invalid write_limit {write_limit!r}: need 0 <= low <= high")
    return high, low


def check_options(
    *,
    max_queue: int,
    write_limit: int | tuple[int, int],
    ping_interval: float | None,
    ping_timeout: float | None,
    open_timeout: float | None,
    close_timeout: float,
    logger: object = None,
) -> None:
    """Check the options of :class:`Connection` (``serve()`` and ``connect()`` call it first).

    Raises:
        TypeError: an option has the wrong type.
        ValueError: an option is out of range.
    """
    _check.integer("max_queue", max_queue, minimum=1)
    _write_limits(write_limit)
    _check.seconds("ping_interval", ping_interval, none=True, zero=False)
    _check.seconds("ping_timeout", ping_timeout, none=True)
    _check.seconds("open_timeout", open_timeout, none=True)
    _check.seconds("close_timeout", close_timeout)
    if logger is not None and not isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        raise TypeError(f"logger must be a logging.Logger, a LoggerAdapter or None, not {logger!r}")


class Connection(asyncio.BufferedProtocol):
    """A WebSocket connection on an asyncio transport (base of both roles).

    Create connections with :func:`fastws.asyncio.serve` or
    :func:`fastws.asyncio.connect`, not directly.

    Args:
        protocol: the sans-IO state machine.
        max_queue: how many received items (messages, or frames when
            streaming) may wait for :meth:`recv` before reading pauses.
        write_limit: high-water mark of the write buffer in bytes, or a
            ``(high, low)`` pair; the low mark defaults to a quarter of high.
        ping_interval: seconds between keepalive pings; ``None`` disables them.
        ping_timeout: seconds to wait for the pong of a keepalive ping before
            failing the connection with 1011; ``None`` waits forever.
        open_timeout: seconds allowed for the opening handshake; ``None``: no limit.
        close_timeout: seconds allowed for the closing handshake and the end of
            the TCP connection before the transport is aborted.
        logger: where this connection logs (through :attr:`logger`, an
            adapter that adds ``websocket``, the connection, to each record);
            ``None``: the ``fastws.server`` or ``fastws.client`` logger.

    Attributes:
        latency: the round-trip time of the last ping answered by its pong
            (keepalive pings included) in seconds; ``0.0`` until measured.
    """

    __slots__ = (
        "__weakref__",
        "_adapter",
        "_base_logger",
        "_close_handle",
        "_close_timeout",
        "_delivering",
        "_drain_waiters",
        "_eof_fed",
        "_eof_written",
        "_flush_handle",
        "_fragment_waiter",
        "_hold",
        "_hold_handle",
        "_id",
        "_keepalive_handle",
        "_keepalive_timeout_handle",
        "_loop",
        "_lost",
        "_lost_waiter",
        "_low_queue",
        "_max_queue",
        "_on_message",
        "_open_handle",
        "_open_timeout",
        "_parts",
        "_paused_by_queue",
        "_paused_by_write",
        "_ping_interval",
        "_ping_timeout",
        "_pings",
        "_proto",
        "_queue",
        "_read_view",
        "_reading_paused",
        "_recv_busy",
        "_recv_waiter",
        "_resume_handle",
        "_sent_reason",
        "_skip_partial",
        "_transport",
        "_unflushed",
        "_write_high",
        "_write_low",
        "_write_paused",
        "latency",
    )

    def __init__(
        self,
        protocol: ServerProtocol | ClientProtocol,
        *,
        max_queue: int = limits.MAX_QUEUE,
        write_limit: int | tuple[int, int] = limits.WRITE_LIMIT,
        ping_interval: float | None = limits.PING_INTERVAL,
        ping_timeout: float | None = limits.PING_TIMEOUT,
        open_timeout: float | None = limits.OPEN_TIMEOUT,
        close_timeout: float = limits.CLOSE_TIMEOUT,
        logger: LoggerLike | None = None,
    ) -> None:
        check_options(
            max_queue=max_queue,
            write_limit=write_limit,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            logger=logger,
        )
        self._proto = protocol
        if logger is None:
            logger = SERVER_LOGGER if protocol.role is Role.SERVER else CLIENT_LOGGER
        self._base_logger: LoggerLike = logger
        # Both made on first use: most connections never log, nor ask their id.
        self._adapter: logging.LoggerAdapter[Any] | None = None
        self._id: uuid.UUID | None = None
        self.latency = 0.0
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._max_queue = max_queue
        self._low_queue = max(max_queue // 4, 0)
        self._write_high, self._write_low = _write_limits(write_limit)
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout

        # Receiving. The state machine puts each message (or frame, when
        # streaming) in this queue; when it holds max_queue items or max_size
        # bytes, the state machine pauses (keeping what it has not parsed)
        # and so does reading, until recv() has drained it to a quarter.
        limit = protocol.max_message_size
        self._queue = MessageQueue(max_queue, limit if limit is not None else 1 << 62)
        self._resume_handle: asyncio.Handle | None = None
        self._recv_waiter: asyncio.Future[None] | None = None
        self._recv_busy = False
        self._skip_partial = False
        self._paused_by_queue = False
        self._paused_by_write = False
        self._reading_paused = False
        self._read_view: memoryview | None = None
        # on_message(): the callback, the pieces of a fragmented message being
        # joined for it (created on demand) and whether a batch of received
        # messages is being delivered (send_nowait() then writes once after it).
        self._on_message: Callable[[Data], object] | None = None
        self._parts: list[Data] | None = None
        self._delivering = False

        # Sending.
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._fragment_waiter: asyncio.Future[None] | None = None
        self._eof_written = False
        self._sent_reason = ""
        # A protocol failure waiting for the answers to the messages before it.
        self._hold = False
        self._hold_handle: asyncio.TimerHandle | None = None
        # Write coalescing (see send()).
        self._unflushed = 0
        self._flush_handle: asyncio.Handle | None = None

        # Pings: payload -> (future or None for keepalive, time sent).
        self._pings: dict[bytes, tuple[asyncio.Future[float] | None, float]] = {}
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._keepalive_timeout_handle: asyncio.TimerHandle | None = None

        # Lifecycle.
        self._open_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._lost = False
        self._eof_fed = False
        # Created on demand (most connections never wait for it): see _lost_future().
        self._lost_waiter: asyncio.Future[None] | None = None
        protocol.set_message_queue(self._queue)

    # ------------------------------------------------------------------
    # Public properties

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier of the connection (a random UUID), handy in logs."""
        ident = self._id
        if ident is None:
            ident = self._id = uuid.uuid4()
        return ident

    @property
    def logger(self) -> logging.LoggerAdapter[Any]:
        """This connection's logger: an adapter that adds ``websocket`` (the connection)."""
        adapter = self._adapter
        if adapter is None:
            adapter = self._adapter = logging.LoggerAdapter(self._base_logger, {"websocket": self})
        return adapter

    def _debug_enabled(self) -> bool:
        """Whether this connection's DEBUG records would be emitted (checked before making one)."""
        return self._base_logger.isEnabledFor(logging.DEBUG)

    @property
    def protocol(self) -> ServerProtocol | ClientProtocol:
        """The sans-IO state machine behind this connection."""
        return self._proto

    @property
    def transport(self) -> asyncio.Transport | None:
        """The asyncio transport, ``None`` before the connection is made."""
        return self._transport

    @property
    def state(self) -> State:
        """The connection state: ``CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED``."""
        if self._lost:
            return State.CLOSED
        return self._proto.state

    @property
    def request(self) -> Request | None:
        """The opening handshake's HTTP request (path, headers)."""
        return self._proto.request

    @property
    def response(self) -> Response | None:
        """The opening handshake's HTTP response."""
        return self._proto.response

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or ``None``."""
        return self._proto.subprotocol

    @property
    def extensions(self) -> list[str]:
        """The negotiated extensions, e.g. ``["permessage-deflate"]``."""
        return self._proto.extensions

    @property
    def remote_address(self) -> Any:
        """The peer's address (``(host, port, ...)``, or a path for unix sockets)."""
        if self._transport is None:
            return None
        return self._transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        """Our end's address."""
        if self._transport is None:
            return None
        return self._transport.get_extra_info("sockname")

    @property
    def close_code(self) -> int | None:
        """The code that describes the closure, ``None`` while the connection is open.

        The peer's close code when it sent a close frame (1005 for an empty
        one), else the code we sent, else 1006.
        """
        if not self._lost and self._proto.close_code is None:
            return None
        return self._closed_info()[0]

    @property
    def close_reason(self) -> str | None:
        """The reason that goes with :attr:`close_code`, ``None`` while open."""
        if not self._lost and self._proto.close_code is None:
            return None
        return self._closed_info()[1]

    # ------------------------------------------------------------------
    # Receiving

    @overload
    def recv(self, decode: Literal[True]) -> Coroutine[Any, Any, str]: ...

    @overload
    def recv(self, decode: Literal[False]) -> Coroutine[Any, Any, bytes]: ...

    @overload
    def recv(self, decode: bool | None = None) -> Coroutine[Any, Any, Data]: ...

    def recv(self, decode: bool | None = None) -> Coroutine[Any, Any, Data]:
        """Receive the next message (a coroutine: ``await ws.recv()``).

        Args:
            decode: ``None``: ``str`` for a text message, ``bytes`` for a
                binary one. ``True``: always ``str`` (a binary message is
                decoded as UTF-8; invalid UTF-8 fails the connection with
                1007). ``False``: always ``bytes`` (a text message is returned
                as its UTF-8 bytes).

        Returns:
            ``str`` for a text message, ``bytes`` for a binary message, unless
            ``decode`` says otherwise.

        Raises:
            ConnectionClosedOK: the connection was closed normally.
            ConnectionClosedError: the connection was closed with an error.
            ConcurrencyError: another coroutine is already receiving.
        """
        if decode is None:
            return self._receive(False)
        return self._recv_decoded(_check.boolean("decode", decode))

    async def _recv_decoded(self, decode: bool) -> Data:
        return self._decoded(await self._receive(False), decode)

    def _decoded(self, data: Data, decode: bool) -> Data:
        """``data`` as ``str`` (``decode``) or as ``bytes``."""
        if not decode:
            return data.encode() if isinstance(data, str) else data
        if isinstance(data, str):
            return data
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise self._invalid_utf8(exc) from exc

    def _invalid_utf8(self, exc: UnicodeDecodeError) -> ConnectionClosed:
        """A binary message asked for as text is not UTF-8: fail with 1007, say why."""
        self._fail(CLOSE_INVALID_DATA, f"{exc.reason} at position {exc.start}")
        return self._closed_exception()

    async def _receive(self, iterating: bool = True) -> Data:
        """recv(), and with ``iterating`` the next step of ``async for``.

        One coroutine serves both, so that a message costs one coroutine frame;
        it is ``__anext__`` itself, so that ``async for`` makes no other call.
        """
        try:
            queue = self._queue
            if not self._recv_busy and not self._skip_partial:
                if not queue and not self._lost and not self._hold:
                    # The common case: wait here for the next item, without
                    # going through the general (fragment-joining) path.
                    if self._proto.close_code is not None:
                        raise self._closed_exception()
                    waiter = self._loop.create_future()
                    self._recv_waiter = waiter
                    self._recv_busy = True
                    try:
                        await waiter
                    finally:
                        self._recv_waiter = None
                        self._recv_busy = False
                message: Data | None = queue.get_message()
                if message is not None:
                    if self._paused_by_queue and len(queue) <= self._low_queue:
                        self._schedule_resume()
                    return message
            return await self._recv_slow()
        except ConnectionClosedOK:
            if iterating:
                raise StopAsyncIteration from None
            raise

    async def _recv_slow(self) -> Data:
        if self._recv_busy:
            raise self._busy_error()
        self._recv_busy = True
        parts: list[Data] = []
        try:
            if self._skip_partial:
                await self._discard_partial()
            while True:
                data, final = await self._next_item()
                if final and not parts:
                    return data
                parts.append(data)
                if final:
                    break
        except BaseException:
            # Cancelled (or closed) in the middle of a message: put back what
            # was taken so that the next recv() starts at the same message.
            if parts:
                self._requeue(parts)
            raise
        finally:
            self._recv_busy = False
        return _joined(parts)

    @overload
    def recv_streaming(self, decode: Literal[True]) -> AsyncIterator[str]: ...

    @overload
    def recv_streaming(self, decode: Literal[False]) -> AsyncIterator[bytes]: ...

    @overload
    def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]: ...

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Receive the next message in pieces, as its frames arrive.

        Memory stays bounded by ``max_queue`` frames instead of a whole message.
        The pieces are ``str`` for a text message and ``bytes`` for binary. If
        the iteration stops early, the rest of the message is discarded.

        Args:
            decode: as for :meth:`recv`: ``True`` yields ``str`` pieces (a
                binary message is decoded as UTF-8 as it arrives), ``False``
                yields ``bytes``.

        Yields:
            The pieces of one message, in order.

        Raises:
            ConnectionClosedOK: the connection was closed normally.
            ConnectionClosedError: the connection was closed with an error.
            ConcurrencyError: another coroutine is already receiving.
        """
        _check.boolean("decode", decode, none=True)
        if self._recv_busy:
            raise self._busy_error()
        self._recv_busy = True
        done = False
        decoder: codecs.IncrementalDecoder | None = None
        try:
            if self._skip_partial:
                await self._discard_partial()
            while not done:
                data, done = await self._next_item()
                if decode is False and isinstance(data, str):
                    yield data.encode()
                elif decode and isinstance(data, bytes):
                    if decoder is None:
                        decoder = codecs.getincrementaldecoder("utf-8")()
                    try:
                        text = decoder.decode(data, final=done)
                    except UnicodeDecodeError as exc:
                        raise self._invalid_utf8(exc) from exc
                    yield text
                else:
                    yield data
        finally:
            self._recv_busy = False
            if not done:
                self._skip_partial = True

    def _requeue(self, parts: list[Data]) -> None:
        """Put the first pieces of a fragmented message back at the front of the queue."""
        self._queue.unget(parts)

    def _busy_error(self) -> ConcurrencyError:
        if self._on_message is not None:
            return ConcurrencyError("messages go to the on_message() callback")
        return ConcurrencyError("another coroutine is already receiving")

    def on_message(self, callback: Callable[[Data], object] | None) -> None:
        """Deliver each received message to ``callback`` instead of :meth:`recv`.

        ``callback(message)`` is called from the event loop as soon as a whole
        message has arrived (``str`` for text, ``bytes`` for binary), in
        order, without a task switch per message: the fastest way to receive.
        It must not block. Messages already waiting for :meth:`recv` are
        delivered at once, from this call. While a callback is set, ``recv()``,
        ``async for`` and :meth:`recv_streaming` raise :class:`ConcurrencyError`;
        ``on_message(None)`` goes back to them. If the callback raises, the
        error is logged and the connection is closed with 1011, like a server
        handler that raises.

        A server handler that only uses the callback must still wait for the
        end of the connection (it is closed when the handler returns)::

            async def echo(ws):
                ws.on_message(ws.send_nowait)
                await ws.wait_closed()

        Args:
            callback: a plain function (not a coroutine function), or ``None``.

        Raises:
            TypeError: ``callback`` is a coroutine function or not callable.
            ConcurrencyError: a coroutine is receiving with ``recv()``.
        """
        if callback is None:
            if self._on_message is not None:
                self._on_message = None
                self._proto.set_message_callback(None)
                self._proto.set_message_handler(None)
                self._proto.set_message_queue(self._queue)
                self._recv_busy = False
                parts, self._parts = self._parts, None
                if parts:
                    self._requeue(parts)
            return
        if inspect.iscoroutinefunction(callback) or not callable(callback):
            raise TypeError("on_message() takes a plain function; use recv() to await")
        if self._on_message is None and self._recv_busy:
            raise self._busy_error()
        self._on_message = callback
        self._recv_busy = True
        # New messages go straight to the callback; the rest of one that
        # started before (streamed to the queue) is joined by _on_data().
        self._proto.set_message_queue(None)
        self._proto.set_message_handler(self._on_data)
        self._proto.set_message_callback(callback)
        waiting = self._queue.take_all()
        if waiting:
            self._delivering = True
            try:
                for data, final in waiting:
                    self._on_data(data, final)
            finally:
                self._delivering = False
            self._flush()
        if self._paused_by_queue:
            self._schedule_resume()

    async def _discard_partial(self) -> None:
        final = False
        while not final:
            _, final = await self._next_item()
        self._skip_partial = False

    async def _next_item(self) -> tuple[Data, bool]:
        queue = self._queue
        while not queue:
            if self._hold:
                self._release_failure()
            if self._lost or self._proto.close_code is not None:
                raise self._closed_exception()
            waiter = self._loop.create_future()
            self._recv_waiter = waiter
            try:
                await waiter
            finally:
                self._recv_waiter = None
        item: tuple[Data, bool] = queue.get()
        if self._paused_by_queue and len(queue) <= self._low_queue:
            self._schedule_resume()
        return item

    def __aiter__(self) -> Connection:
        """Iterate over received messages until the connection closes normally.

        Stops on :class:`ConnectionClosedOK`; raises
        :class:`ConnectionClosedError`.
        """
        return self

    #: The next message; ``StopAsyncIteration`` after a normal closure.
    __anext__ = _receive

    # ------------------------------------------------------------------
    # Sending

    async def send(
        self,
        message: Data | bytearray | memoryview | Iterable[Data] | AsyncIterable[Data],
        text: bool | None = None,
    ) -> None:
        """Send a message.

        A ``str`` is sent as a text message and bytes-like objects as binary. An
        iterable or async iterable of ``str`` (or of bytes-like objects) is sent
        as one fragmented message, one frame per item.

        Waits while the write buffer is above its high-water mark.

        Args:
            message: what to send.
            text: ``True`` sends bytes-like objects as a text message (they
                must be UTF-8: they are not checked), ``False`` sends ``str``
                as a binary message (UTF-8 encoded); ``None`` goes by type.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` has an unsupported type, or a fragmented
                message mixes text and bytes.
        """
        while self._fragment_waiter is not None:
            await asyncio.shield(self._fragment_waiter)
        try:
            if text is None:
                framed = self._proto.send_message(message)
            else:
                framed = self._send_as(message, _check.boolean("text", text))
        except InvalidState as exc:
            framed = self._refused(exc, message)
        if framed:
            pass
        elif isinstance(message, dict):
            raise TypeError("a dict is not a message; send str or bytes")
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message.__aiter__(), True, text)
            return
        elif isinstance(message, Iterable):
            await self._send_fragments(iter(message), False, text)
            return
        else:
            raise TypeError(f"cannot send {type(message).__name__}; send str or bytes")
        if (self._queue or self._paused_by_queue) and not self._write_paused:
            # More received messages wait for the application (queued, or
            # kept by the state machine until the queue has room), which is
            # likely to send again (an echo loop): coalesce the writes, up to
            # a bound, into one at the end of this loop iteration or, while
            # a resume is due, after the last resume of the read.
            self._unflushed += len(message)  # type: ignore[arg-type]  # framed: str or bytes-like
            if self._unflushed < _COALESCE_LIMIT:
                if self._flush_handle is None:
                    self._flush_handle = self._loop.call_soon(self._scheduled_flush)
                return
        self._flush()
        if self._write_paused:
            await self._drain()

    def _send_as(self, message: object, text: bool) -> bool:
        """Send a ``str`` or bytes-like ``message`` as text or binary; ``False`` for other types."""
        if isinstance(message, str):
            if text:
                self._proto.send_text(message)
            else:
                self._proto.send_binary(message.encode())
        elif isinstance(message, (bytes, bytearray, memoryview)):
            if text:
                self._proto.send_text(message)
            else:
                self._proto.send_binary(message)
        else:
            return False
        return True

    def send_nowait(self, message: Data | bytearray | memoryview) -> None:
        """Send a whole message now, without waiting: the companion of :meth:`on_message`.

        A ``str`` is sent as a text message and bytes-like objects as binary.
        Unlike :meth:`send`, this never waits for the write buffer to drain:
        the bytes are handed to the transport at once (from an on_message()
        callback, once after the batch of messages that arrived together).
        Reading from the peer still pauses while the write buffer is above
        ``write_limit``, so an echo server stays bounded; code that sends
        many messages on its own initiative should ``await send()`` instead.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: ``message`` is not ``str`` or bytes-like.
            ConcurrencyError: a fragmented message is being sent by :meth:`send`.
        """
        if self._fragment_waiter is not None:
            raise ConcurrencyError("a fragmented message is being sent")
        try:
            framed = self._proto.send_message(message)
        except InvalidState as exc:
            framed = self._refused(exc, message)
        if not framed:
            raise TypeError(f"cannot send {type(message).__name__}; send str or bytes")
        if not self._delivering:
            self._flush()

    def _refused(self, exc: InvalidState, message: object) -> bool:
        """The state machine refused to send ``message`` (``exc``): raise why.

        A closing or closed connection raises :class:`ConnectionClosed` for a
        ``str`` or bytes-like message; for any other type this returns
        ``False``, as the state machine would have, so that the caller can
        reject the type or send an iterable. (A lost connection is never
        ``OPEN``: :meth:`connection_lost` ends the state machine first.)
        """
        if self._proto.state is _OPEN:
            raise exc  # a fragmented message started on the state machine itself
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            raise self._closed_exception() from None
        return False

    def _scheduled_flush(self) -> None:
        self._flush_handle = None
        if self._resume_handle is not None and self._unflushed < _COALESCE_LIMIT:
            return  # the resume that comes next writes, or schedules this again
        self._flush()

    async def _send_fragments(self, iterator: Any, is_async: bool, force: bool | None) -> None:
        # One item is held back so that the last one goes out with FIN set:
        # n items make n frames, and nothing is sent before the second item
        # arrives (an error in between leaves the connection usable).
        self._fragment_waiter = self._loop.create_future()
        text: bool | None = None
        pending: Any = None
        started = False
        try:
            while True:
                try:
                    chunk = await iterator.__anext__() if is_async else next(iterator)
                except (StopIteration, StopAsyncIteration):
                    break
                if isinstance(chunk, str):
                    is_text = True
                elif isinstance(chunk, (bytes, bytearray, memoryview)):
                    is_text = False
                else:
                    raise TypeError(f"cannot send a fragment of type {type(chunk).__name__}")
                if text is None:
                    text = is_text
                elif text != is_text:
                    raise TypeError("a fragmented message cannot mix str and bytes")
                if pending is not None:
                    self._check_open()
                    started = True
                    self._send_fragment(pending, bool(text) if force is None else force, False)
                    self._flush()
                    if self._write_paused:
                        await self._drain()
                pending = chunk
            if pending is None:
                return  # an empty iterable sends nothing
            self._check_open()
            self._send_fragment(pending, bool(text) if force is None else force, True)
            self._flush()
        except ConnectionClosed:
            raise
        except BaseException:
            # A started message cannot be finished: fail the connection, the
            # peer would otherwise wait for the end of the message forever.
            if started and self._proto.state is _OPEN:
                self._fail(CLOSE_INTERNAL_ERROR, "error while sending a fragmented message")
            raise
        finally:
            waiter, self._fragment_waiter = self._fragment_waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._write_paused:
            await self._drain()

    def _send_fragment(self, chunk: Data | bytearray | memoryview, text: bool, fin: bool) -> None:
        if text:
            self._proto.send_text(chunk, fin=fin)
        else:
            self._proto.send_binary(chunk.encode() if isinstance(chunk, str) else chunk, fin=fin)

    async def ping(
        self, data: str | bytes | bytearray | memoryview | None = None
    ) -> Awaitable[float]:
        """Send a ping; return a future that the matching pong completes.

        Wait for the pong only if you need to::

            pong_waiter = await ws.ping()
            latency = await pong_waiter  # seconds

        A pong also answers every ping sent before its own. The future fails
        with :class:`ConnectionClosed` if the connection closes first.

        Args:
            data: the ping payload (up to 125 bytes; ``str`` is UTF-8 encoded);
                random 4 bytes when ``None``.

        Returns:
            A future whose result is the round-trip time in seconds (also
            stored in :attr:`latency`).

        Raises:
            ConnectionClosed: the connection is closing or closed.
            ConcurrencyError: a ping with the same payload awaits its pong.
            ValueError: ``data`` is longer than 125 bytes.
            TypeError: ``data`` is not ``str``, bytes-like or ``None``.
        """
        payload = None if data is None else _payload("data", data)
        self._check_open()
        if payload is not None and payload in self._pings:
            raise ConcurrencyError("a ping with this payload is already waiting for its pong")
        while payload is None or payload in self._pings:
            payload = os.urandom(4)
        self._proto.send_ping(payload)
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._pings[payload] = (waiter, time.monotonic())
        self._flush()
        return waiter

    async def pong(self, data: str | bytes | bytearray | memoryview = b"") -> None:
        """Send an unsolicited pong (a heartbeat that needs no answer).

        Args:
            data: the payload, up to 125 bytes; ``str`` is UTF-8 encoded.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            ValueError: ``data`` is longer than 125 bytes.
            TypeError: ``data`` is not ``str`` or bytes-like.
        """
        payload = _payload("data", data)
        self._check_open()
        self._proto.send_pong(payload)
        self._flush()

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Run the closing handshake and wait until the TCP connection is closed.

        Safe to call more than once and on a closed connection. The wait is
        bounded by ``close_timeout``; then the transport is aborted.

        Args:
            code: the close code.
            reason: the close reason (UTF-8, at most 123 bytes).
        """
        self._release_failure()
        state = self._proto.state
        if not self._lost:
            if state is _OPEN:
                self._sent_reason = reason
                self._proto.send_close(code, reason)
                self._flush()
                self._drop_messages()
            elif state is State.CONNECTING:
                self._abort()
            if self._close_handle is None and not self._lost:
                self._close_handle = self._loop.call_later(self._close_timeout, self._abort)
        await self.wait_closed()

    def _drop_messages(self) -> None:
        """We sent a close frame: drop the messages that arrive before the peer's.

        The application is done receiving (what the queue holds stays there
        for it). Without this, a full queue would keep reading paused and the
        peer's close frame unread until ``close_timeout``.
        """
        proto = self._proto
        proto.drop_messages()
        if proto.receiving_paused:
            self._schedule_resume()
        if self._paused_by_queue:
            self._paused_by_queue = False
            self._update_reading()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        await asyncio.shield(self._lost_future())

    def _lost_future(self) -> asyncio.Future[None]:
        """A future that is done once the TCP connection is closed."""
        waiter = self._lost_waiter
        if waiter is None:
            waiter = self._lost_waiter = self._loop.create_future()
            if self._lost:
                waiter.set_result(None)
        return waiter

    def abort(self) -> None:
        """Close the TCP connection at once, without a closing handshake."""
        self._abort()

    async def __aenter__(self) -> Connection:  # noqa: PYI034 - no typing.Self on 3.10
        """``async with ws:`` closes the connection on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close with 1000, or 1011 when the block raised."""
        await self.close(CLOSE_NORMAL if exc_type is None else CLOSE_INTERNAL_ERROR)

    # ------------------------------------------------------------------
    # asyncio.BufferedProtocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Set up the transport (called by the event loop)."""
        # uvloop's transports implement the interface without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.set_write_buffer_limits(self._write_high, self._write_low)
        if self._open_timeout is not None:
            self._open_handle = self._loop.call_later(self._open_timeout, self._on_open_timeout)

    def get_buffer(self, sizehint: int) -> memoryview:
        """The buffer for the next read: the loop thread's shared receive buffer."""
        view = self._read_view
        if view is None:
            view = self._read_view = _read_buffer()
        return view

    def data_received(self, data: bytes | memoryview) -> None:
        """Feed bytes to the state machine (for a transport that has no get_buffer())."""
        self.buffer_updated(len(data), data)

    def buffer_updated(self, nbytes: int, data: bytes | memoryview | None = None) -> None:
        """``nbytes`` were read into the buffer from :meth:`get_buffer` (or are ``data``).

        Feeds them to the state machine and acts on its events. This is the
        body of both entry points, in the one the event loop calls, so that a
        read costs one Python call before the state machine.
        """
        if data is None:
            view = self._read_view
            assert view is not None
            data = view[:nbytes]
        proto = self._proto
        if proto.state is _CONNECTING and self._intercept_handshake(data):
            return
        # Messages go to the queue, or with on_message() to the callback;
        # send_nowait() from a callback writes once, after the batch.
        self._delivering = True
        try:
            proto.receive_data(data)
        except Exception as exc:
            self._callback_raised(exc)
        finally:
            self._delivering = False
        self._after_receive()

    def _callback_raised(self, exc: Exception) -> None:
        """The on_message() callback raised ``exc`` from inside the state machine."""
        while self._callback_failed(exc):
            # Delivery goes on with the rest of the bytes, kept by the state machine.
            try:
                self._proto.resume_receiving()
                return
            except Exception as again:
                exc = again

    def _after_receive(self, write: bool = True) -> None:
        """Act on what the state machine did with received bytes (after a read or a resume).

        With ``write`` false, only wake the receiver and act on events.
        """
        proto = self._proto
        queue = self._queue
        if queue:
            waiter = self._recv_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            # (Full and not paused: messages are dropped, see _drop_messages().)
            if queue.full and not self._paused_by_queue and proto.receiving_paused:
                self._paused_by_queue = True
                self._update_reading()
        events = proto.events_received()
        if events:
            self._process_events(events)
        if not write:
            return
        if proto.close_exc is None and proto.state is _OPEN:
            # The usual case: write what there is (echoes, pongs), if anything.
            chunks = proto.data_to_send()
            if chunks:
                transport = self._transport
                if (
                    len(chunks) == 1
                    and chunks[0]
                    and transport is not None
                    and not self._eof_written
                    and not transport.is_closing()
                ):
                    self._unflushed = 0
                    transport.write(chunks[0])  # the usual reply: one chunk
                else:
                    self._write_out(chunks)
            return
        if proto.close_exc is not None and queue and proto.state is _OPEN:
            # The peer broke the protocol after messages that the application
            # has not seen yet: let it answer them before the close frame goes
            # out (the state machine queues the close frame on the next flush).
            self._hold_failure()
            return
        self._flush()
        if proto.close_exc is not None:
            self._on_failure()

    def _schedule_resume(self) -> None:
        """The queue has room again: parse what the state machine kept, soon.

        Not at once: a consumer that never waits (the queue is never empty
        when it asks) would otherwise keep the event loop to itself while a
        peer floods it; from the loop, every connection gets its turn.
        """
        if self._resume_handle is None and not self._lost:
            self._resume_handle = self._loop.call_soon(self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        if self._lost:
            return
        proto = self._proto
        self._delivering = True
        try:
            proto.resume_receiving()
        except Exception as exc:
            self._callback_raised(exc)
        finally:
            self._delivering = False
        if not proto.receiving_paused and self._paused_by_queue:
            self._paused_by_queue = False
            self._update_reading()
        if proto.receiving_paused and proto.close_exc is None and not self._write_paused:
            # More of this read is to come: let the answers to this part wait
            # for the rest (see send()), but never without a flush scheduled.
            self._after_receive(write=False)
            if self._flush_handle is None and proto.has_data_to_send():
                self._flush_handle = self._loop.call_soon(self._scheduled_flush)
            return
        self._after_receive()

    def _on_failure(self) -> None:
        """Hook: the state machine failed the connection (or the handshake)."""

    def _intercept_handshake(self, data: bytes | memoryview) -> bool:
        """Hook for a role to handle handshake bytes itself; ``True`` if it did."""
        return False

    def _hold_failure(self) -> None:
        if not self._hold:
            self._hold = True
            self._hold_handle = self._loop.call_later(_HOLD_FAILURE, self._release_failure)

    def _release_failure(self) -> None:
        if self._hold:
            self._hold = False
            if self._hold_handle is not None:
                self._hold_handle.cancel()
                self._hold_handle = None
            self._flush()

    def eof_received(self) -> bool | None:
        """The peer closed its side: let the transport close ours."""
        self._release_failure()
        if not self._eof_fed:
            self._eof_fed = True
            self._proto.receive_eof()
            self._process_events()
            self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Release everything and wake every waiter (called by the event loop)."""
        self._lost = True
        # The state machine's handler is a method of this object: break the
        # reference cycle so that both are freed as soon as they are dropped.
        self._proto.set_message_handler(None)
        if not self._eof_fed:
            self._eof_fed = True
            try:
                self._proto.receive_eof()
                self._process_events()
                self._proto.data_to_send()
            except Exception:  # pragma: no cover - defensive: never raise in a callback
                self.logger.debug("error while finishing the state machine", exc_info=True)
        self._hold = False
        for handle in (
            self._resume_handle,
            self._flush_handle,
            self._hold_handle,
            self._open_handle,
            self._close_handle,
            self._keepalive_handle,
            self._keepalive_timeout_handle,
        ):
            if handle is not None:
                handle.cancel()
        self._open_handle = self._close_handle = self._hold_handle = None
        self._flush_handle = self._resume_handle = None
        self._keepalive_handle = self._keepalive_timeout_handle = None
        if self._recv_waiter is not None and not self._recv_waiter.done():
            self._recv_waiter.set_result(None)
        self._wake_drain_waiters()
        if self._pings:
            closed = self._closed_exception()
            for waiter, _ in self._pings.values():
                if waiter is not None and not waiter.done():
                    waiter.set_exception(closed)
                    waiter.exception()  # mark retrieved: nobody may be waiting
            self._pings.clear()
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        self._on_lost(exc)
        if self._debug_enabled():
            code, reason, _, _ = self._closed_info()
            self.logger.debug("connection closed: %d %s", code, reason)

    def pause_writing(self) -> None:
        """The write buffer went above the high-water mark."""
        self._write_paused = True
        self._paused_by_write = True
        self._update_reading()

    def resume_writing(self) -> None:
        """The write buffer went below the low-water mark."""
        self._write_paused = False
        self._paused_by_write = False
        self._update_reading()
        self._wake_drain_waiters()

    # ------------------------------------------------------------------
    # Hooks for the roles

    def _on_request(self, request: Request) -> None:  # pragma: no cover - server only
        pass

    def _on_response(self, response: Response) -> None:  # pragma: no cover - client only
        pass

    def _on_lost(self, exc: Exception | None) -> None:
        pass

    def _on_open(self) -> None:
        """The connection became OPEN: stop the open timer, start keepalive."""
        if self._open_handle is not None:
            self._open_handle.cancel()
            self._open_handle = None
        if self._debug_enabled():
            self.logger.debug("connection open")
        if self._ping_interval is not None and not self._lost:
            self._keepalive_handle = self._loop.call_later(
                self._ping_interval, self._keepalive_ping
            )

    def _on_open_timeout(self) -> None:
        self._open_handle = None
        if self._proto.state is State.CONNECTING:
            self.logger.debug("opening handshake timed out")
            self._abort()

    # ------------------------------------------------------------------
    # Internals

    def _process_events(self, events: list[Any] | None = None) -> None:
        """Act on the state machine's new events (pongs, the close frame, handshake events).

        Messages do not come as events: see :meth:`_on_data`.
        """
        if events is None:
            events = self._proto.events_received()
            if not events:
                return
        wake = False
        for event in events:
            if self._other_event(type(event), event):
                wake = True
        if wake:
            waiter = self._recv_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _on_data(self, data: Data, final: bool) -> bool:
        """The state machine's message handler while an on_message() callback is set.

        Joins the frames of a fragmented message, calls the callback with
        each whole message, and never pauses receiving.
        """
        if not final or self._parts is not None or self._skip_partial:
            joined = self._join(data, final)
            if joined is None:
                return False
            data = joined
        callback = self._on_message
        if callback is None:  # cannot happen: the handler is set with the callback
            return False
        try:
            callback(data)
        except Exception as exc:
            self._callback_failed(exc)
        return False

    def _callback_failed(self, exc: Exception) -> bool:
        """The on_message() callback raised ``exc``; ``True`` if delivery goes on."""
        if isinstance(exc, ConnectionClosed):
            return True  # e.g. an answer to a message that came just before a close frame
        self.logger.error("on_message callback failed", exc_info=exc)
        # Like a server handler that raises: 1011, and nothing more is delivered.
        self._on_message = _discard
        self._proto.set_message_callback(_discard)
        self._fail(CLOSE_INTERNAL_ERROR, "internal error")
        return False

    def _join(self, data: Data, final: bool) -> Data | None:
        """Collect the pieces of a fragmented message; the whole message on the last one."""
        if self._skip_partial:  # the rest of a message left by recv_streaming()
            self._skip_partial = not final
            return None
        parts = self._parts
        if not final:
            if parts is None:
                self._parts = [data]
            else:
                parts.append(data)
            return None
        if parts is None:
            return data
        parts.append(data)
        self._parts = None
        return _joined(parts)

    def _other_event(self, kind: type, event: Any) -> bool:
        """Act on an event that is not data; ``True`` if receivers must wake (a close)."""
        if kind is Pong:
            self._on_pong(event.data)
        elif kind is CloseReceived:
            return True
        elif kind is Request:
            self._on_request(event)
        elif kind is Response:
            self._on_response(event)
        # Ping: answered by the state machine.
        return False

    def _flush(self) -> None:
        """Write what the state machine has queued; act on end-of-stream markers."""
        if self._hold:
            return
        self._write_out(self._proto.data_to_send())

    def _write_out(self, chunks: list[bytes]) -> None:
        """Write ``chunks`` from :meth:`Protocol.data_to_send`; act on end-of-stream markers."""
        self._unflushed = 0
        proto = self._proto
        if chunks:
            transport = self._transport
            if transport is None or self._eof_written or transport.is_closing():
                chunks = []
            elif len(chunks) == 1 and chunks[0]:
                transport.write(chunks[0])
            else:
                pending: list[bytes] = []
                for chunk in chunks:
                    if chunk:
                        pending.append(chunk)
                        continue
                    if pending:
                        _write(transport, pending)
                        pending = []
                    self._write_eof()
                    break
                else:
                    if pending:
                        _write(transport, pending)
        if (
            proto.state is not _OPEN
            and self._close_handle is None
            and not self._lost
            and proto.close_expected()
        ):
            self._close_handle = self._loop.call_later(self._close_timeout, self._abort)

    def _write_eof(self) -> None:
        """End our side of the TCP connection.

        A half-close (FIN) when the transport supports it: unread bytes from
        the peer (e.g. the rest of an oversized frame) are then still read and
        discarded, instead of making the kernel reset the connection, which
        could destroy our close frame before the peer reads it. The peer closes
        its side in turn, or ``close_timeout`` aborts. TLS transports cannot
        half-close and are closed.
        """
        self._eof_written = True
        transport = self._transport
        if transport is None:
            return
        if transport.can_write_eof():
            try:
                transport.write_eof()
                return
            except (OSError, RuntimeError):  # pragma: no cover - racing with loss
                pass
        transport.close()

    def _abort(self) -> None:
        self._close_handle = None
        if self._transport is not None and not self._lost:
            self._transport.abort()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._lost:
            return
        pause = self._paused_by_queue or self._paused_by_write
        if pause and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not pause and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    async def _drain(self) -> None:
        while self._write_paused and not self._lost:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._drain_waiters:
                    self._drain_waiters.remove(waiter)
        if self._lost:
            raise self._closed_exception()

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _check_open(self) -> None:
        if self._lost or self._proto.state is not _OPEN:
            raise self._closed_exception()

    def _fail(self, code: int, reason: str) -> None:
        if self._proto.state is _OPEN:
            self._sent_reason = reason
            self._proto.fail(code, reason)
            self._flush()

    def _on_pong(self, data: bytes) -> None:
        pings = self._pings
        if data not in pings:
            return
        now = time.monotonic()
        # A pong acknowledges its ping and every ping sent before it.
        for key in list(pings):
            waiter, sent = pings.pop(key)
            if waiter is None:
                self._on_keepalive_pong()
            elif not waiter.done():
                waiter.set_result(now - sent)
            if key == data:
                self.latency = now - sent
                break

    def _keepalive_ping(self) -> None:
        self._keepalive_handle = None
        if self._lost or self._proto.state is not _OPEN:
            return
        payload = os.urandom(4)
        while payload in self._pings:
            payload = os.urandom(4)
        self._proto.send_ping(payload)
        self._pings[payload] = (None, time.monotonic())
        self._flush()
        if self._ping_timeout is not None:
            self._keepalive_timeout_handle = self._loop.call_later(
                self._ping_timeout, self._on_keepalive_timeout
            )

    def _on_keepalive_pong(self) -> None:
        if self._keepalive_timeout_handle is not None:
            self._keepalive_timeout_handle.cancel()
            self._keepalive_timeout_handle = None
        if self._ping_interval is not None and not self._lost and self._keepalive_handle is None:
            self._keepalive_handle = self._loop.call_later(
                self._ping_interval, self._keepalive_ping
            )

    def _on_keepalive_timeout(self) -> None:
        self._keepalive_timeout_handle = None
        self.logger.debug("keepalive ping timed out")
        self._fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")

    def _closed_info(self) -> tuple[int, str, int | None, int | None]:
        proto = self._proto
        received = proto.close_code
        sent = proto.close_code_sent
        if received is not None and received != CLOSE_ABNORMAL:
            return received, proto.close_reason, received, sent
        exc = proto.close_exc
        if sent is not None:
            reason = self._sent_reason
            if exc is not None and not reason:
                reason = getattr(exc, "message", str(exc))
            return sent, reason, None, sent
        return CLOSE_ABNORMAL, "", None, sent

    def _closed_exception(self) -> ConnectionClosed:
        code, reason, received, sent = self._closed_info()
        ok = (
            received is not None
            and (received in _OK_CODES or received == CLOSE_NO_STATUS)
            and (sent is None or sent in _OK_CODES or sent == CLOSE_NO_STATUS)
            and self._proto.close_exc is None
        )
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        return cls(code, reason, received_code=received, sent_code=sent)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.state.name} "
            f"local={self.local_address!r} remote={self.remote_address!r}>"
        )


if sys.version_info >= (3, 11):
    import builtins

    _ExceptionGroup = builtins.ExceptionGroup
else:  # pragma: no cover - Python 3.10

    class _ExceptionGroup(Exception):
        """The failures of a broadcast (``ExceptionGroup`` from Python 3.11)."""

        def __init__(self, message: str, exceptions: list[Exception]) -> None:
            super().__init__(message, exceptions)
            self.message = message
            self.exceptions = tuple(exceptions)


class _SkipLog:
    """Counts messages that broadcast() skipped and logs them at most every ``interval`` s."""

    __slots__ = ("count", "interval", "next")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next = 0.0
        self.count = 0

    def add(self, count: int, conn: Connection) -> None:
        self.count += count
        now = time.monotonic()
        if now >= self.next:
            conn.logger.warning(
                "broadcast skipped %d message(s) for connections whose write buffer is full "
                "(this warning comes at most every %g s)",
                self.count,
                self.interval,
            )
            self.count = 0
            self.next = now + self.interval


_skipped = _SkipLog(10.0)


def broadcast(
    connections: Iterable[Connection],
    message: Data | bytearray | memoryview,
    *,
    text: bool | None = None,
    raise_exceptions: bool = False,
) -> int:
    """Send ``message`` to every open connection of ``connections``, without waiting.

    The message is framed once and the same bytes are written to every
    server connection (with permessage-deflate, once per set of negotiated
    settings when the server's compressor has no context takeover, see
    ``DeflateOptions.server_no_context_takeover``; else it is compressed
    for each connection). Client connections mask their frames: each frames
    its own.

    Connections that are not open are skipped silently, as are those whose
    write buffer is above its high-water mark (``write_limit``): a slow
    client loses the message instead of making the server's memory grow.
    Those are counted: the count is returned and a warning says how many,
    at most every 10 seconds. A connection in the middle of sending a
    fragmented message is skipped with a warning (or a
    :class:`ConcurrencyError` with ``raise_exceptions``).

    Args:
        connections: the connections, e.g. :attr:`Server.connections`.
        message: ``str`` for a text message, bytes-like for binary.
        text: force a text (``True``) or binary (``False``) message, as in
            :meth:`Connection.send`.
        raise_exceptions: collect the failures and raise them at the end in
            an ``ExceptionGroup`` instead of logging them.

    Returns:
        How many open connections were skipped because their write buffer
        was full.

    Raises:
        TypeError: ``message`` is not ``str`` or bytes-like.
        ExceptionGroup: with ``raise_exceptions``, the connections that failed.
    """
    if isinstance(message, str):
        payload: bytes | bytearray | memoryview = message.encode()
        is_text = text is not False
    elif isinstance(message, (bytes, bytearray, memoryview)):
        payload = message
        is_text = text is True
    else:
        raise TypeError(f"cannot broadcast {type(message).__name__}; send str or bytes")
    _check.boolean("text", text, none=True)
    _check.boolean("raise_exceptions", raise_exceptions)
    frames: dict[tuple[object, ...], bytes] = {}
    errors: list[Exception] = []
    skipped = 0
    slow: Connection | None = None
    for conn in connections:
        proto = conn._proto
        if conn._lost or proto.state is not _OPEN:
            continue
        if conn._fragment_waiter is not None:
            if raise_exceptions:
                errors.append(ConcurrencyError("skipped broadcast: sending a fragmented message"))
            else:
                conn.logger.warning("skipped broadcast: sending a fragmented message")
            continue
        if conn._write_paused:
            skipped += 1
            slow = conn
            continue
        try:
            key = proto.broadcast_key()
            if key is None:
                if is_text:
                    proto.send_text(payload)
                else:
                    proto.send_binary(payload)
            else:
                frame = frames.get(key)
                if frame is None:
                    frame = frames[key] = proto.encode_message(payload, text=is_text)
                proto.send_encoded(frame)
            conn._flush()
        except Exception as exc:
            if raise_exceptions:
                error = RuntimeError("skipped broadcast: failed to write the message")
                error.__cause__ = exc
                errors.append(error)
            else:
                conn.logger.warning("skipped broadcast: failed to write the message: %r", exc)
    if slow is not None:
        _skipped.add(skipped, slow)
    if errors:
        raise _ExceptionGroup("skipped broadcast", errors)
    return skipped
