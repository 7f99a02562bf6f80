"""The threaded connection shared by the sync server and client.

One background thread per connection reads from the socket and feeds the
sans-IO state machine (:mod:`fastws.protocol`); received messages wait in a
bounded queue for :meth:`Connection.recv`. The thread also answers pings,
sends keepalive pings and finishes the closing handshake.

Rules:

* The state machine and writes to the socket are guarded by one lock, so
  :meth:`~Connection.send` may be called from any thread; frames go out in
  the order the calls were made.
* When ``max_queue`` items wait, the reader stops reading (the kernel's
  buffers then fill and the peer's writes block) until :meth:`recv` has
  taken the queue down to a quarter.
* :meth:`recv` from two threads at once raises :class:`ConcurrencyError`;
  :meth:`close` from another thread wakes a waiting :meth:`recv`.
* When the connection ends, the socket is closed and the thread ends: no
  thread or file descriptor is left behind.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import selectors
import socket
import ssl as ssl_module
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fastws._closed import closed_exception
from fastws.events import CloseReceived, Pong, Request, Response
from fastws.exceptions import ConcurrencyError, ConnectionClosed, InvalidState
from fastws.frames import CLOSE_INTERNAL_ERROR, CLOSE_NORMAL
from fastws.protocol import State
from fastws.sync._tls import TLSInTLS

if TYPE_CHECKING:
    from typing_extensions import Self

    from fastws.protocol import ClientProtocol, ServerProtocol

__all__ = ["Connection", "Data"]

#: A message: ``str`` for text, ``bytes`` for binary.
Data = str | bytes

_logger = logging.getLogger("fastws.sync")

#: Bytes read from the socket at a time.
_READ_SIZE = 1 << 16

#: How long a protocol failure may wait for the application to answer the
#: messages received just before it, before the close frame is sent anyway.
_HOLD_FAILURE = 0.5


class Connection:
    """A WebSocket connection over a socket, served by a thread (base of both roles).

    Made by :func:`fastws.sync.connect` and :func:`fastws.sync.serve`, not
    directly.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: ServerProtocol | ClientProtocol,
        *,
        max_queue: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
    ) -> None:
        self.socket = sock
        self.protocol = protocol
        self.id = uuid.uuid4()
        self.logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = _logger
        #: Round-trip time of the last keepalive ping, in seconds (0 until one was answered).
        self.latency = 0.0
        self._max_queue = max_queue
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        # The state machine (and the outbox): held briefly, never while writing.
        self._lock = threading.Lock()
        # What the state machine produced, in order, waiting to be written by
        # whichever thread holds the write lock (see _flush()).
        self._outbox: deque[bytes] = deque()
        self._write_lock = threading.Lock()
        # A protocol failure right after messages that recv() has not taken
        # yet waits (up to _HOLD_FAILURE s) for the application to answer them
        # before the close frame goes out (see _release_hold()).
        self._hold = False
        self._hold_deadline = 0.0
        # Counts of what the reader queued, what recv() took, and what was
        # taken before the latest call to recv() (the application is done
        # with those). _queued > _answered: a message may still be being
        # answered. Each is written by one thread only, so no lock is needed.
        self._queued = 0
        self._taken = 0
        self._answered = 0
        # Held while a fragmented message is being sent: other sends wait.
        self._fragments = threading.Lock()
        self._sent_reason = ""
        # Received messages (or frames of a fragmented one): (data, final).
        # (A SimpleQueue: put and get are C calls, cheaper than a Condition.)
        self._items: queue.SimpleQueue[tuple[Data, bool] | None] = queue.SimpleQueue()
        self._recv_lock = threading.Lock()  # held by the thread in recv()
        self._room = threading.Event()  # set when the reader may go on (see _wait_for_room)
        self._dropping = False  # close() was called: messages are dropped
        self._reader_waiting = False
        self._parts: list[Data] = []  # the start of a message, kept by a recv() that timed out
        self._ended = False  # the reader is done: nothing more will be queued
        self._aborted = False  # _abort() was called: the reader must stop
        # Pings: payload -> (event set on its pong, time sent).
        self._pings: dict[bytes, tuple[threading.Event, float]] = {}
        self._keepalive_payload: bytes | None = None
        self._next_ping = 0.0
        self._reader: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None  # with the reader
        protocol.set_message_handler(self._on_message)

    # -- properties -------------------------------------------------------

    @property
    def state(self) -> State:
        """``CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED``."""
        return self.protocol.state

    @property
    def request(self) -> Request | None:
        """The opening handshake's request."""
        return self.protocol.request

    @property
    def response(self) -> Response | None:
        """The opening handshake's response."""
        return self.protocol.response

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, if any."""
        return self.protocol.subprotocol

    @property
    def close_code(self) -> int | None:
        """The close code of the connection once it is closed (see ``ConnectionClosed``)."""
        if self.protocol.state is not State.CLOSED:
            return None
        return closed_exception(self.protocol, self._sent_reason).code

    @property
    def close_reason(self) -> str | None:
        """The close reason that goes with :attr:`close_code`."""
        if self.protocol.state is not State.CLOSED:
            return None
        return closed_exception(self.protocol, self._sent_reason).reason

    @property
    def local_address(self) -> Any:
        """The socket's own address."""
        return self.socket.getsockname()

    @property
    def remote_address(self) -> Any:
        """The peer's address."""
        try:
            return self.socket.getpeername()
        except OSError:
            return None

    # -- receiving ----------------------------------------------------------

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Data:
        """Receive the next message.

        Args:
            timeout: seconds to wait; ``None`` waits as long as it takes.
            decode: ``True`` returns a binary message as ``str`` (UTF-8),
                ``False`` a text message as ``bytes``; ``None`` leaves them.

        Raises:
            TimeoutError: nothing came within ``timeout`` (a fragmented
                message begun meanwhile is kept for the next call).
            ConnectionClosed: the connection is closed (and every message
                that arrived before was taken).
            ConcurrencyError: another thread is in :meth:`recv`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._recv_lock.acquire(blocking=False):
            raise ConcurrencyError("recv() is already running in another thread")
        try:
            while True:
                data, final = self._take(deadline)
                if final and not self._parts:
                    break
                self._parts.append(data)
                if final:
                    first = self._parts[0]
                    if isinstance(first, str):
                        data = "".join(p for p in self._parts if isinstance(p, str))
                    else:
                        data = b"".join(p for p in self._parts if isinstance(p, bytes))
                    self._parts = []
                    break
        finally:
            self._recv_lock.release()
        return self._decoded(data, decode)

    def recv_streaming(self, decode: bool | None = None) -> Iterator[Data]:
        """Yield the frames of the next message as they arrive (a whole one in one frame).

        Raises:
            ConnectionClosed: the connection closed before the message ended.
            ConcurrencyError: another thread is receiving.
        """
        if not self._recv_lock.acquire(blocking=False):
            raise ConcurrencyError("recv() is already running in another thread")
        try:
            parts, self._parts = self._parts, []
            yield from (self._decoded(p, decode) for p in parts)
            while True:
                data, final = self._take(None)
                yield self._decoded(data, decode)
                if final:
                    return
        finally:
            self._recv_lock.release()

    def __iter__(self) -> Iterator[Data]:
        """Each message until the connection closes normally.

        Raises:
            ConnectionClosedError: the connection closed with an error.
        """
        try:
            while True:
                yield self.recv()
        except ConnectionClosed as exc:
            if exc.code not in (1000, 1001, 1005):
                raise

    @staticmethod
    def _decoded(data: Data, decode: bool | None) -> Data:
        if decode is True and isinstance(data, bytes):
            return data.decode()
        if decode is False and isinstance(data, str):
            return data.encode()
        return data

    def _take(self, deadline: float | None) -> tuple[Data, bool]:
        items = self._items
        self._answered = self._taken  # a new call: the application is done with those
        if self._hold and self._answered == self._queued:
            self._release_hold()  # every message before the failure was answered
        if deadline is None:
            item = items.get()
        else:
            try:
                item = items.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError("timed out waiting for a message") from None
        if item is None:  # the end: leave it for the next call
            items.put(None)
            raise closed_exception(self.protocol, self._sent_reason)
        self._taken += 1
        if self._reader_waiting and items.qsize() <= self._max_queue // 4:
            self._room.set()  # the reader may go on
        return item

    def _on_message(self, data: Data, final: bool) -> bool:
        # Called by the state machine from receive_data() in the reader thread.
        items = self._items
        # Counted before recv() can take it: until recv() is called again
        # after taking it, it counts as unanswered (_after_receive).
        self._queued += 1
        items.put((data, final))
        return items.qsize() >= self._max_queue

    # -- sending ------------------------------------------------------------

    def send(
        self,
        message: Data | bytearray | memoryview | Iterable[Data],
        text: bool | None = None,
    ) -> None:
        """Send a message; an iterable of ``str`` or of bytes-like sends a fragmented one.

        Args:
            message: ``str`` (text), bytes-like (binary), or an iterable of
                either kind (one frame each).
            text: ``True`` sends bytes (UTF-8) as a text frame, ``False`` a
                ``str`` as a binary frame.

        Raises:
            ConnectionClosed: the connection is closed.
            TypeError: ``message`` is of no supported type.
        """
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            self._send_frames([message], text)
        elif isinstance(message, Iterable):
            self._send_frames(message, text)
        else:
            raise TypeError(
                "message must be str, bytes-like or an iterable of them, "
                f"not {type(message).__name__}"
            )

    def _send_frames(self, pieces: Iterable[Any], text: bool | None) -> None:
        proto = self.protocol
        if isinstance(pieces, list) and len(pieces) == 1 and text is None:
            # A whole message: one frame, framed in one call.
            with self._fragments, self._lock:
                try:
                    if not proto.send_message(pieces[0]):
                        raise TypeError(f"cannot send {type(pieces[0]).__name__}")
                except InvalidState:
                    raise closed_exception(proto, self._sent_reason) from None
                self._collect()
            self._flush()
            return
        # A fragmented message: the iterable is read outside the state
        # machine's lock (it may take its time); other messages wait for the
        # last frame.
        with self._fragments:
            iterator = iter(pieces)
            item = next(iterator, None)
            if item is None:
                raise ValueError("an iterable message needs at least one piece")
            is_text = isinstance(item, str) if text is None else text
            while item is not None:
                following = next(iterator, None)
                if isinstance(item, str):
                    payload: Any = item.encode()
                elif isinstance(item, (bytes, bytearray, memoryview)):
                    payload = item
                else:
                    raise TypeError(f"cannot send a piece of type {type(item).__name__}")
                with self._lock:
                    try:
                        if is_text:
                            proto.send_text(payload, following is None)
                        else:
                            proto.send_binary(payload, following is None)
                    except InvalidState:
                        raise closed_exception(proto, self._sent_reason) from None
                    self._collect()
                self._flush()
                item = following

    def ping(self, data: str | bytes | None = None) -> threading.Event:
        """Send a ping; the returned event is set when its pong arrives.

        Args:
            data: the payload (at most 125 bytes); random when ``None``.

        Raises:
            ConnectionClosed: the connection is closed.
            ValueError: a ping with the same payload is still waiting.
        """
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            if data is None:
                data = os.urandom(4)
                while data in self._pings:
                    data = os.urandom(4)
            elif data in self._pings:
                raise ValueError("a ping with this payload is already waiting for its pong")
            try:
                self.protocol.send_ping(data)
            except InvalidState:
                raise closed_exception(self.protocol, self._sent_reason) from None
            event = threading.Event()
            self._pings[data] = (event, time.monotonic())
            self._collect()
        self._flush()
        return event

    def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong.

        Raises:
            ConnectionClosed: the connection is closed.
        """
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            try:
                self.protocol.send_pong(data)
            except InvalidState:
                raise closed_exception(self.protocol, self._sent_reason) from None
            self._collect()
        self._flush()

    # -- closing ----------------------------------------------------------------

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the closing handshake and wait up to ``close_timeout`` for it to end.

        Idempotent; wakes a :meth:`recv` waiting in another thread once the
        connection is closed.
        """
        with self._lock:
            if self.protocol.state is State.OPEN:
                self._sent_reason = reason
                self.protocol.send_close(code, reason)
                self._collect()
                # Done receiving: messages that come before the peer's close
                # frame are dropped (what the queue holds stays for recv()),
                # so that a full queue cannot keep the close frame unread.
                self._dropping = True
                self.protocol.drop_messages()
                self._room.set()
        self._flush()
        self._wait_ended(self._close_timeout)

    def _wait_ended(self, timeout: float) -> None:
        reader = self._reader
        if reader is None:
            self._finish()
            return
        if reader is threading.current_thread():
            return
        reader.join(timeout)
        if reader.is_alive():
            self._abort()
            reader.join()

    def _abort(self) -> None:
        """End the connection now (the reader sees the socket shut down)."""
        self._aborted = True
        self._room.set()
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        wake = self._wake
        if wake is not None:
            try:
                wake[1].send(b"x")
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(CLOSE_NORMAL if exc_type is None else CLOSE_INTERNAL_ERROR)

    # -- the reader thread ------------------------------------------------

    def _start(self, name: str) -> None:
        """Start the reader thread (once the opening handshake is done)."""
        if self._ping_interval is not None:
            self._next_ping = time.monotonic() + self._ping_interval
        with self._lock:
            self._after_receive()  # what came with the handshake (frames, even a close)
        self._flush()
        self._wake = socket.socketpair()
        self._reader = threading.Thread(target=self._run, name=name, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        """Move what the state machine has to send to the outbox (the lock is held)."""
        out = self.protocol.data_to_send()
        if out:
            self._outbox.extend(out)

    def _flush(self, block: bool = True) -> None:
        """Write the outbox, unless (``block=False``) another thread is writing.

        Whoever holds the write lock writes everything queued, in order, also
        what other threads queued meanwhile. The reader thread never waits
        for the write lock: a thread blocked writing to a peer that does not
        read must not stop us from reading that peer.
        """
        outbox = self._outbox
        # (len() of a deque is atomic: a chunk queued after this check is
        # written by the thread that queued it.)
        while outbox and self._write_lock.acquire(block):
            try:
                while outbox:
                    with self._lock:
                        chunks = list(outbox)
                        outbox.clear()
                    self._write(chunks)
            finally:
                self._write_lock.release()
            block = False  # queued after we looked: write it unless someone else does

    def _write(self, chunks: list[bytes]) -> None:
        sock = self.socket
        try:
            if len(chunks) == 1 and chunks[0]:
                sock.sendall(chunks[0])  # the usual case
                return
            data = [c for c in chunks if c]
            if data:
                sock.sendall(b"".join(data))
            if len(data) != len(chunks):  # b"": end our side of the TCP connection
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            # The peer is gone: the reader sees it and tells the state machine.
            self._abort()

    def _run(self) -> None:
        sock = self.socket
        assert self._wake is not None
        wake = self._wake[0]
        waiter = _Waiter(sock, wake)
        # A TLS socket may hold decrypted bytes that polling does not show.
        tls = isinstance(sock, (ssl_module.SSLSocket, TLSInTLS))
        close_deadline: float | None = None
        try:
            while True:
                if not self._room_to_read():
                    break
                timeout = self._timeout(close_deadline)
                if not (tls and sock.pending() > 0):  # type: ignore[attr-defined]
                    ready = waiter.wait(timeout)
                    if ready & 2:  # woken by _abort()
                        break
                    if not ready & 1:
                        if close_deadline is not None and time.monotonic() >= close_deadline:
                            break
                        if self._hold and time.monotonic() >= self._hold_deadline:
                            self._release_hold()
                        self._keepalive()
                        if close_deadline is None and self.protocol.close_expected():
                            close_deadline = time.monotonic() + self._close_timeout
                        continue
                try:
                    data = sock.recv(_READ_SIZE)
                except (ssl_module.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    data = b""
                with self._lock:
                    if data:
                        # A violation in these bytes lets the answers to
                        # messages recv() returned go out first.
                        self.protocol.answers_pending = self._queued > self._answered
                        self.protocol.receive_data(data)
                    else:
                        self.protocol.receive_eof()
                    self._after_receive()
                    if close_deadline is None and self.protocol.close_expected():
                        close_deadline = time.monotonic() + self._close_timeout
                self._flush(block=False)
                if not data:
                    break
        except Exception:  # pragma: no cover - bug guard: never die silently
            self.logger.error("the connection's reader failed", exc_info=True)
        finally:
            waiter.close()
            self._finish()

    def _timeout(self, close_deadline: float | None) -> float | None:
        if self._ping_interval is None and close_deadline is None and not self._hold:
            return None  # the usual case without keepalive: wait for data
        now = time.monotonic()
        hold = self._hold_deadline if self._hold else None
        deadlines = [d for d in (close_deadline, hold, self._keepalive_deadline()) if d is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _keepalive_deadline(self) -> float | None:
        if self._ping_interval is None or self.protocol.state is not State.OPEN:
            return None
        if self._keepalive_payload is not None and self._ping_timeout is not None:
            sent = self._pings.get(self._keepalive_payload)
            if sent is not None:
                return sent[1] + self._ping_timeout
        return self._next_ping

    def _keepalive(self) -> None:
        """Send a keepalive ping when due; fail with 1011 when its pong is late."""
        if self._ping_interval is None:
            return
        now = time.monotonic()
        with self._lock:
            if self.protocol.state is not State.OPEN:
                return
            payload = self._keepalive_payload
            if payload is not None and payload in self._pings:
                if self._ping_timeout is None or now < self._pings[payload][1] + self._ping_timeout:
                    return
                self.logger.debug("keepalive ping timed out")
                self._sent_reason = "keepalive ping timeout"
                self.protocol.fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
            elif now >= self._next_ping:
                payload = os.urandom(4)
                self.protocol.send_ping(payload)
                self._pings[payload] = (threading.Event(), now)
                self._keepalive_payload = payload
                self._next_ping = now + self._ping_interval
            else:
                return
            self._collect()
        self._flush(block=False)

    def _events(self) -> None:
        """Act on the state machine's events (the lock is held)."""
        for event in self.protocol.events_received():
            if type(event) is Pong:
                self._pong(event.data)
            elif type(event) is CloseReceived:
                pass  # the state machine answered it; the queue ends when the reader does

    def _pong(self, payload: bytes) -> None:
        # A pong answers its ping and every earlier one (RFC 6455 5.5.3).
        if payload not in self._pings:
            return
        now = time.monotonic()
        for key in list(self._pings):
            event, sent = self._pings.pop(key)
            event.set()
            if key == self._keepalive_payload:
                self.latency = now - sent
                self._keepalive_payload = None
            if key == payload:
                break

    def _after_receive(self) -> None:
        """Act on what the last bytes received produced (the lock is held)."""
        self._events()
        proto = self.protocol
        if (
            proto.close_exc is not None
            and self._queued > self._answered
            and proto.state is State.OPEN
        ):
            # The peer broke the protocol after messages the application has
            # not answered yet: let it answer them first (RFC 6455 allows the
            # close frame to follow them), for at most _HOLD_FAILURE.
            if not self._hold:
                self._hold = True
                self._hold_deadline = time.monotonic() + _HOLD_FAILURE
        else:
            self._hold = False
            self._collect()

    def _release_hold(self) -> None:
        """Let a held protocol failure's close frame go out."""
        with self._lock:
            if not self._hold:
                return
            self._hold = False
            self._collect()
        self._flush(block=False)

    def _room_to_read(self) -> bool:
        """Wait while the queue is full; ``False`` if the connection is being aborted."""
        while self.protocol.receiving_paused:
            if not self._wait_for_room():
                return False
        return True

    def _wait_for_room(self) -> bool:
        """The queue is full: wait until recv() made room, then parse what was kept."""
        self._reader_waiting = True
        try:
            while self._items.qsize() > self._max_queue // 4 and not self._dropping:
                if self._aborted:
                    return False
                self._room.wait()
                self._room.clear()
        finally:
            self._reader_waiting = False
        with self._lock:
            self.protocol.resume_receiving()
            self._events()
            self._collect()
        self._flush(block=False)
        return True

    def _finish(self) -> None:
        """The connection is over: close the socket, wake every waiter."""
        with self._lock:
            if self.protocol.state is not State.CLOSED:
                self.protocol.receive_eof()
            self.protocol.data_to_send()
            self._outbox.clear()
            for event, _ in self._pings.values():
                event.set()
            self._pings.clear()
        sockets = [self.socket, *(self._wake or ())]
        try:  # a thread blocked writing to the socket gets an error now
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._write_lock:  # not while another thread writes to it
            for s in sockets:
                try:
                    s.close()
                except OSError:
                    pass
        self._ended = True
        self._items.put(None)  # wakes recv(), which raises ConnectionClosed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.state.name} id={self.id}>"


class _Waiter:
    """Waits until the socket (1) or the wake-up socket (2) is readable.

    ``select.poll`` where it exists (one C call per wait), else a selector.
    """

    def __init__(self, sock: socket.socket, wake: socket.socket) -> None:
        self._sock_fd = sock.fileno()
        self._wake_fd = wake.fileno()
        self._poll: Any = None
        self._selector: selectors.BaseSelector | None = None
        if hasattr(select, "poll"):
            self._poll = select.poll()
            self._poll.register(self._sock_fd, select.POLLIN)
            self._poll.register(self._wake_fd, select.POLLIN)
        else:  # pragma: no cover - Windows
            self._selector = selectors.DefaultSelector()
            self._selector.register(sock, selectors.EVENT_READ, 1)
            self._selector.register(wake, selectors.EVENT_READ, 2)

    def wait(self, timeout: float | None) -> int:
        """Bit 1: the socket is readable (or closed); bit 2: the wake-up socket is."""
        ready = 0
        if self._poll is not None:
            ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
            for fd, _ in self._poll.poll(ms):
                ready |= 1 if fd == self._sock_fd else 2
            return ready
        assert self._selector is not None  # pragma: no cover - Windows
        for key, _ in self._selector.select(timeout):  # pragma: no cover
            ready |= key.data
        return ready  # pragma: no cover

    def close(self) -> None:
        if self._selector is not None:  # pragma: no cover - Windows
            self._selector.close()
