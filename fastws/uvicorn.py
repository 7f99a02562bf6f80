"""A uvicorn WebSocket protocol on fastws: FastAPI and Starlette WebSockets on the C core.

Select it like uvicorn's own implementations::

    uvicorn app:app --ws fastws.uvicorn:FastWSProtocol

or ``uvicorn.run(app, ws="fastws.uvicorn:FastWSProtocol")``, or
``uvicorn.Config(app, ws=FastWSProtocol)``. The application sees the same
ASGI ``websocket`` scope and messages as with uvicorn's ``websockets-sansio``
and ``wsproto`` implementations (ASGI spec version 2.4, with the
``websocket.http.response`` extension for denial responses).

How a connection runs: the transport reads into a receive buffer shared by
the connections of the thread (a buffered protocol: no ``bytes`` per read);
the sans-IO :class:`fastws.protocol.ServerProtocol` parses the upgrade
request and every frame; received messages go straight
from the frame reader into a bounded :class:`fastws.protocol.MessageQueue`
(``config.ws_max_queue`` messages), which the application's ``receive()``
drains. Reading from the socket is paused while messages wait that the
application is not waiting for (or while the queue is full), and resumed when
it has taken them all. The application's ``send()`` waits while the transport
is paused for writing.

This module imports nothing from uvicorn at run time; it relies only on
uvicorn's plug-in contract for ``--ws`` classes:

- the HTTP protocol builds the class as ``cls(config=..., server_state=...,
  app_state=..., _loop=None)``, calls ``connection_made(transport)``,
  ``transport.set_protocol(...)`` and then ``data_received()`` with the
  upgrade request serialized again;
- ``config``: ``loaded``, ``load()``, ``loaded_app``, ``root_path``,
  ``asgi_version``, ``ws_max_size``, ``ws_max_queue``, ``ws_ping_interval``,
  ``ws_ping_timeout`` and ``ws_per_message_deflate``;
- ``server_state``: ``connections`` (a set of protocols; ``Server.shutdown()``
  calls their ``shutdown()``), ``tasks`` (a set of the application tasks) and
  ``default_headers`` (``(name, value)`` byte pairs such as ``server`` and
  ``date``);
- the ``uvicorn.error`` logger.

The attributes ``transport``, ``close_timeout``, ``close_timer``,
``ping_timer`` and ``ping_sent_at`` have the meaning they have in uvicorn's
implementations (its test suite reads them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from fastws.events import CloseReceived, Pong, Request
from fastws.exceptions import ProtocolError
from fastws.extensions.permessage_deflate import DeflateOptions
from fastws.protocol import MessageQueue, ServerProtocol, State

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

__all__ = ["ClientDisconnected", "FastWSProtocol"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OPEN = State.OPEN
_CONNECTING = State.CONNECTING

# Where the ASGI conversation is.
_HANDSHAKE = 0  # waiting for websocket.accept, websocket.close or a denial response
_DENYING = 1  # a denial response was started (websocket.http.response.start)
_ACCEPTED = 2  # the connection is open for the application
_DONE = 3  # the application closed, or the handshake ended without opening

# Received messages make the queue full above this many bytes (it also has
# ``config.ws_max_queue`` as its item limit).
_QUEUE_BYTES = 1 << 20
# How long a protocol failure may wait for the application to answer the
# messages that came just before it, before the close frame goes out anyway.
_HOLD_FAILURE = 0.5
_INTERNAL_ERROR_BODY = "Internal Server Error"
_MIN_FRAGMENTS = 1 << 16
# At most this many answers wait for one write (see send()).
_MAX_DEFERRED = 64

_READ_BUFFER_SIZE = 256 << 10
_thread_state = threading.local()
_uvicorn_checked = False


def _require_uvicorn() -> None:
    """Fail with a clear message when uvicorn is missing (checked once)."""
    global _uvicorn_checked
    if _uvicorn_checked:
        return
    try:
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "fastws.uvicorn.FastWSProtocol runs under uvicorn, which is not installed: "
            "pip install 'pyfastws[uvicorn]'"
        ) from exc
    _uvicorn_checked = True


class ClientDisconnected(OSError):
    """Raised by the application's ``send()`` once the client is gone.

    ASGI asks for an ``OSError`` subclass: the connection was lost, or the
    client's close frame was received, so nothing more can be sent.
    """


def _address(info: object) -> tuple[str, int] | None:
    """``(host, port)`` from a socket address; ``None`` for anything else (a UNIX socket)."""
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


def _str_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI header pairs (bytes) as ``str`` pairs; Latin-1 maps every byte to itself."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]


class _Subprotocol:
    """The subprotocol the application chose, as the core's ``select_subprotocol``.

    A separate object rather than a method, so that the core holds no
    reference back to the connection.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: str | None = None

    def __call__(self, request: Request, offered: list[str]) -> str | None:
        return self.value


def _read_buffer() -> memoryview:
    """This thread's receive buffer, shared by its connections.

    Each read is parsed before the next one starts, and the core keeps no
    reference to what it was given, so one buffer per event loop thread is
    enough: no ``bytes`` object is made (and copied into) per read.
    """
    view: memoryview | None = getattr(_thread_state, "read_buffer", None)
    if view is None:
        view = _thread_state.read_buffer = memoryview(bytearray(_READ_BUFFER_SIZE))
    return view


class FastWSProtocol(asyncio.BufferedProtocol):
    """One WebSocket connection under uvicorn, driven by fastws's sans-IO core.

    Built by uvicorn's HTTP protocol on an upgrade request (see the module
    docstring for the contract). Runs the ASGI application in a task with
    ``receive`` and ``send`` bound to this connection.

    Args:
        config: uvicorn's ``Config``.
        server_state: uvicorn's ``ServerState``.
        app_state: the lifespan state, copied into each scope.
        _loop: the event loop (default: the running one).
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        _require_uvicorn()
        if not config.loaded:
            config.load()
        self.config = config
        self.app: Callable[[Message, Receive, Send], Awaitable[object]] = config.loaded_app
        self.loop = _loop if _loop is not None else asyncio.get_running_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers

        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # connection_made
        self._writelines: Callable[[list[bytes]], None] | None = None
        self._read_view: memoryview | None = None
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: Message = {}

        #: Seconds to wait for the client's close frame after ours.
        self.close_timeout = 10.0
        #: Pending while waiting for the client to finish closing.
        self.close_timer: asyncio.TimerHandle | None = None
        #: The next keepalive ping.
        self.ping_timer: asyncio.TimerHandle | None = None
        #: When the last keepalive ping was sent (event loop time; 0.0 before).
        self.ping_sent_at = 0.0
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._last_rtt = 0.0

        self._subprotocol = _Subprotocol()
        max_size: int | None = config.ws_max_size
        self._core = ServerProtocol(
            # Like uvicorn's other implementations, no Origin check here:
            # the application decides (see docs/fastapi.md).
            origins=["*"],
            select_subprotocol=self._subprotocol,
            compression=DeflateOptions() if config.ws_per_message_deflate else None,
            max_message_size=max_size,
            # Fragments of 64 bytes up to ws_max_size (at least the core's
            # default), as fastws's own server does with max_fragments="auto".
            max_fragments=None if max_size is None else max(_MIN_FRAGMENTS, max_size // 64),
            server_header=None,  # server_state.default_headers has it
        )
        self._queue = MessageQueue(max(1, int(config.ws_max_queue)), _QUEUE_BYTES)
        self._core.set_message_queue(self._queue)
        self._request: Request | None = None
        self._phase = _HANDSHAKE
        self._ended_by_app = False  # with _DONE: by close, 403 or a response
        self._connect_delivered = False
        self._disconnect: dict[str, Any] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost = False
        self._eof_written = False
        self._hold = False
        self._hold_timer: asyncio.TimerHandle | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._deferred = 0  # frames sent since the last write
        # A denial response: status, headers and, when the application gave
        # no Content-Length, the body parts kept until the last one.
        self._deny_status = 0
        self._deny_headers: list[tuple[str, str]] = []
        self._deny_body: list[bytes] | None = None

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The HTTP protocol hands over its transport."""
        self.transport = cast(asyncio.Transport, transport)
        self._writelines = getattr(transport, "writelines", None)
        self.connections.add(self)
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self.scheme = "wss" if transport.get_extra_info("sslcontext") else "ws"

    def data_received(self, data: bytes) -> None:
        """Feed bytes to the core (uvicorn's HTTP protocol passes the upgrade request so)."""
        self._core.receive_data(data)
        self._after_receive(True)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the transport reads into (the thread's shared receive buffer)."""
        view = self._read_view
        if view is None:
            view = self._read_view = _read_buffer()
        return view

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` were read into the buffer of :meth:`get_buffer`: feed them to the core."""
        view = self._read_view
        assert view is not None
        self._core.receive_data(view[:nbytes])
        self._after_receive(True)

    def eof_received(self) -> bool | None:
        """The client closed its side: let the transport close ours."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: tell the application, wake every waiter."""
        self._lost = True
        self.connections.discard(self)
        for handle in (
            self.close_timer,
            self.ping_timer,
            self._pong_timer,
            self._hold_timer,
            self._flush_handle,
        ):
            if handle is not None:
                handle.cancel()
        self.close_timer = self.ping_timer = self._pong_timer = self._hold_timer = None
        self._flush_handle = None
        self._hold = False
        core = self._core
        core.receive_eof()
        core.events_received()
        core.data_to_send()
        if self._disconnect is None:
            # No close frame: 1006 (RFC 6455, section 7.1.5).
            self._disconnect = {"type": "websocket.disconnect", "code": 1006}
        self._wake_receiver()
        self._wake_sender()
        if exc is None:
            self.transport.close()

    def pause_writing(self) -> None:
        """The write buffer is above its high-water mark: ``send()`` waits."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The write buffer drained: ``send()`` goes on."""
        self._write_paused = False
        self._wake_sender()

    def shutdown(self) -> None:
        """The server is shutting down: close with 1012 (service restart)."""
        self._stop_keepalive()
        core = self._core
        if self.close_timer is not None:
            # Our close frame is out (or we are failing): stop waiting.
            self.close_timer.cancel()
            self.close_timer = None
        elif self._phase == _ACCEPTED and core.state is _OPEN:
            self._record_disconnect(1012)
            self._phase = _DONE
            self._release_hold()
            core.send_close(1012)
            self._flush()
        elif self._phase == _HANDSHAKE:
            self._send_500()
        self.transport.close()

    # ---------------------------------------------------------------- ASGI

    async def receive(self) -> Message:
        """The application's ``receive()``: connect, the messages, then disconnect."""
        if not self._connect_delivered:
            self._connect_delivered = True
            return {"type": "websocket.connect"}
        while True:
            queue = self._queue
            if queue:
                data = queue.get_message()
                if not queue:
                    self._queue_drained()
                if type(data) is str:
                    return {"type": "websocket.receive", "text": data}
                return {"type": "websocket.receive", "bytes": data}
            if self._disconnect is not None:
                if self._hold:
                    # Every message before the failure was taken: the close frame goes out.
                    self._release_hold()
                    self._flush()
                return dict(self._disconnect)
            waiter = self._waiter
            if waiter is None:  # (else another receive() is waiting too: share its future)
                waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    async def send(self, message: Message) -> None:
        """The application's ``send()``.

        Raises:
            ClientDisconnected: the client is gone (or closed the connection).
            RuntimeError: a message that is not valid at this point of the
                conversation, or not valid at all.
        """
        if self._write_paused:
            await self._drain()
        if self._lost:
            raise ClientDisconnected()
        kind = message["type"]
        phase = self._phase
        if phase == _ACCEPTED:
            if kind == "websocket.send":
                self._send_data(message)
            elif kind == "websocket.close":
                self._close(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.send' or 'websocket.close', "
                    f"but got '{kind}'."
                )
        elif phase == _HANDSHAKE:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._reject_403()
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got '{kind}'."
                )
        elif phase == _DENYING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'."
                )
            self._denial_body(message)
        elif self._ended_by_app:
            raise RuntimeError(
                f"Unexpected ASGI message '{kind}', after sending 'websocket.close' or a response."
            )
        else:
            raise ClientDisconnected()  # the handshake failed on the client's side

    # ------------------------------------------------------------ sending

    def _send_data(self, message: Message) -> None:
        data = message.get("bytes")
        if data is None:
            data = message.get("text")
            if type(data) is not str:
                raise RuntimeError(
                    f"'websocket.send' needs 'bytes' (bytes) or 'text' (str), got text={data!r}"
                )
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise RuntimeError(f"'websocket.send' needs 'bytes' as bytes, got {type(data)!r}")
        core = self._core
        if core.state is not _OPEN:
            raise ClientDisconnected()
        core.send_message(data)
        if self._hold:
            return  # sent with the close frame, once the application took every message
        if self._queue and self._deferred < _MAX_DEFERRED:
            # More messages wait for the application, which is answering a
            # batch: its answers go out together, in one write, after its
            # last answer or at the next turn of the event loop (or once
            # there are _MAX_DEFERRED of them: the transport's flow control
            # must see what an application that never yields sends).
            self._deferred += 1
            if self._flush_handle is None:
                self._flush_handle = self.loop.call_soon(self._scheduled_flush)
            return
        self._deferred = 0
        chunks = core.data_to_send()
        if len(chunks) == 1 and chunks[0] and not self._eof_written:
            self.transport.write(chunks[0])  # the usual message: one frame, one write
        elif chunks:
            self._write_out(chunks)  # a large message: its header and its payload

    def _close(self, message: Message) -> None:
        code = message.get("code")
        if code is None:
            code = 1000
        reason = message.get("reason") or ""
        core = self._core
        if core.state is _OPEN and not self._lost:
            try:
                core.send_close(code, reason)
            except (TypeError, ValueError) as exc:
                raise RuntimeError(f"Invalid 'websocket.close': {exc}") from exc
            self._record_disconnect(code, reason)
            self._phase = _DONE
            self._ended_by_app = True
            # Messages from now on are dropped: the client's close frame
            # must not wait behind messages that nobody will read.
            core.drop_messages()
            self._release_hold()
            self._flush()
            if self.close_timer is None and not self.transport.is_closing():
                self.close_timer = self.loop.call_later(self.close_timeout, self._give_up)
            if core.receiving_paused:
                core.resume_receiving()
                self._after_receive(False)
            self._resume_reading()
        else:
            # The client closed first (or failed the connection): nothing to send.
            self._phase = _DONE
            self._ended_by_app = True

    def _accept(self, message: Message) -> None:
        core = self._core
        request = self._request
        assert request is not None
        self._subprotocol.value = message.get("subprotocol")
        headers = _str_pairs(self.default_headers)
        try:
            headers += _str_pairs(message.get("headers") or ())
            response = core.accept(request, headers)
        except (TypeError, ValueError, AttributeError) as exc:
            raise RuntimeError(f"Invalid 'websocket.accept': {exc}") from exc
        if core.state is not _CONNECTING or self.transport.is_closing():
            self._phase = _DONE
            return
        core.send_response(response)
        if response.status != 101:
            # The client's offer could not be negotiated (a malformed
            # extension header: 400), or the application chose a
            # subprotocol the client did not offer (500).
            self._phase = _DONE
            self._record_disconnect(1006)
            self._flush()
            if response.status == 500:
                raise RuntimeError(
                    f"Invalid 'websocket.accept': subprotocol {self._subprotocol.value!r} "
                    "was not offered by the client"
                )
            return
        self._phase = _ACCEPTED
        self.logger.info('%s - "WebSocket %s" [accepted]', self._client_text(), self._path_text())
        # Frames that came with the request are parsed now.
        self._after_receive(False)
        self._start_keepalive()

    def _reject_403(self) -> None:
        self._record_disconnect(1006)
        self.logger.info('%s - "WebSocket %s" 403', self._client_text(), self._path_text())
        self._phase = _DONE
        self._ended_by_app = True
        core = self._core
        if core.state is _CONNECTING:
            core.send_response(core.reject(403, b"", _str_pairs(self.default_headers)))
            self._flush()

    def _start_denial(self, message: Message) -> None:
        status = message.get("status")
        if type(status) is not int or not 100 <= status < 600 or status == 101:
            raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
        core = self._core
        try:
            headers = _str_pairs(self.default_headers) + _str_pairs(message.get("headers") or ())
            response = core.reject(status, b"", headers)  # checks the headers now
        except (TypeError, ValueError, AttributeError) as exc:
            raise RuntimeError(f"Invalid 'websocket.http.response.start': {exc}") from exc
        self.logger.info('%s - "WebSocket %s" %d', self._client_text(), self._path_text(), status)
        self._phase = _DENYING
        self._deny_status = status
        self._deny_headers = headers
        if any(name.lower() == "content-length" for name, _ in headers):
            # The application framed the body: send the head now, the body as it comes.
            if core.state is _CONNECTING:
                core.send_response(response)
                self._write_out([chunk for chunk in core.data_to_send() if chunk])
        else:
            # Kept until the last part, to send it with its Content-Length.
            self._deny_body = []

    def _denial_body(self, message: Message) -> None:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise RuntimeError(f"'websocket.http.response.body' needs bytes, got {type(body)!r}")
        if self._deny_body is None:
            if body:
                self._write_out([bytes(body)])
        else:
            self._deny_body.append(bytes(body))
        if not message.get("more_body", False):
            self._finish_denial()

    def _finish_denial(self) -> None:
        self._phase = _DONE
        self._ended_by_app = True
        self._record_disconnect(1006)
        core = self._core
        if self._deny_body is not None and core.state is _CONNECTING:
            body = b"".join(self._deny_body)
            self._deny_body = None
            core.send_response(core.reject(self._deny_status, body, self._deny_headers))
            self._flush()
        elif not self.transport.is_closing():
            self.transport.close()

    def _send_500(self) -> None:
        """Answer 500 if nothing was answered yet."""
        core = self._core
        self._phase = _DONE
        if core.state is _CONNECTING and not self._lost and not self.transport.is_closing():
            core.send_response(
                core.reject(500, _INTERNAL_ERROR_BODY, _str_pairs(self.default_headers))
            )
            self._flush()

    # ------------------------------------------------------------ running the app

    async def _run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            self.logger.exception("Exception in ASGI application (WebSocket)")
            if self._phase == _HANDSHAKE:
                self._send_500()
        else:
            if self._phase == _HANDSHAKE:
                self.logger.error(
                    "The ASGI application returned without accepting or denying the "
                    "WebSocket connection."
                )
                self._send_500()
            elif self._phase == _DENYING and self._deny_body is not None:
                self._finish_denial()  # what the application gave of its body
            elif result is not None:
                self.logger.error(
                    "The ASGI application should return None, it returned %r.", result
                )
        if self.close_timer is None:
            # Not waiting for the client's close frame: the connection is over.
            self.transport.close()

    def _on_request(self, request: Request) -> None:
        headers = request.headers
        if headers.get("Transfer-Encoding") is not None or headers.get(
            "Content-Length", "0"
        ).strip() not in ("", "0"):
            # An upgrade request has no body.
            self._phase = _DONE
            core = self._core
            core.send_response(
                core.reject(400, "Failed to open a WebSocket connection: the request has a body.\n")
            )
            self._flush()
            return
        self._request = request
        raw_path, _, query = request.path.partition("?")
        root_path = self.config.root_path
        subprotocols = [
            token.strip()
            for value in headers.get_all("Sec-WebSocket-Protocol")
            for token in value.split(",")
            if token.strip()
        ]
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": root_path,
            "path": root_path + unquote(raw_path),
            "raw_path": (root_path + raw_path).encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ],
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        task = self.loop.create_task(self._run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    # ------------------------------------------------------------ receiving

    def _after_receive(self, reading: bool) -> None:
        """Act on what the core did with received bytes (after a read or a resume).

        ``reading``: called for a read (not from the application's ``receive()``).
        """
        core = self._core
        if self._queue:
            waiter = self._waiter
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(None)
            elif reading:
                # Messages wait that the application is not waiting for.
                self._pause_reading()
        if core.receiving_paused:
            self._pause_reading()  # the queue is full
        events = core.events_received()
        if events:
            for event in events:
                if isinstance(event, Pong):
                    self._on_pong(event.data)
                elif isinstance(event, CloseReceived):
                    self._on_close_received(event)
                elif isinstance(event, Request):
                    self._on_request(event)
                # Ping: the core answers. Messages after our close: dropped.
        exc = core.close_exc
        if exc is not None:
            if isinstance(exc, ProtocolError):
                self._on_failure(exc)
            elif self._request is None:
                self._phase = _DONE  # an invalid request: the core answered it
        if self._hold:
            return
        if core.has_data_to_send():
            self._flush()

    def _on_close_received(self, event: CloseReceived) -> None:
        if self._phase == _ACCEPTED:
            self._record_disconnect(event.code, event.reason)
            self._wake_receiver()
        elif self.close_timer is not None:
            # The client answered our close frame: the handshake is complete.
            self.close_timer.cancel()
            self.close_timer = None

    def _on_failure(self, exc: ProtocolError) -> None:
        """The client broke the protocol: the core fails the connection with ``exc.code``."""
        if self._phase == _ACCEPTED:
            self._record_disconnect(exc.code, exc.message[:100])
            self._wake_receiver()
            if self._queue and self._core.state is _OPEN and not self._hold:
                # Messages came before the violation: let the application
                # answer them before the close frame goes out.
                self._hold = True
                self._hold_timer = self.loop.call_later(_HOLD_FAILURE, self._hold_expired)

    def _hold_expired(self) -> None:
        self._hold_timer = None
        if self._hold:
            self._hold = False
            self._flush()

    def _release_hold(self) -> None:
        self._hold = False
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    def _queue_drained(self) -> None:
        """The application took the last queued message: read on."""
        core = self._core
        if core.receiving_paused:
            core.resume_receiving()
            self._after_receive(False)
        if not self._queue and not core.receiving_paused:
            self._resume_reading()

    def _record_disconnect(self, code: int, reason: str | None = None) -> None:
        """Remember the ``websocket.disconnect`` message (the first reason wins)."""
        if self._disconnect is None:
            message: dict[str, Any] = {"type": "websocket.disconnect", "code": code}
            if reason is not None:
                message["reason"] = reason
            self._disconnect = message

    def _wake_receiver(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_reading(self) -> None:
        if not self._read_paused and not self._lost:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and not self._lost:
            self._read_paused = False
            self.transport.resume_reading()

    # ------------------------------------------------------------ writing

    def _scheduled_flush(self) -> None:
        self._flush_handle = None
        if not self._hold:
            self._flush()

    def _flush(self) -> None:
        """Write what the core has queued."""
        self._deferred = 0
        chunks = self._core.data_to_send()
        if chunks:
            self._write_out(chunks)

    def _write_out(self, chunks: list[bytes]) -> None:
        """Write ``chunks`` from the core; ``b""`` ends the connection."""
        if self._lost or self._eof_written:
            return
        pending: list[bytes] = []
        for chunk in chunks:
            if chunk:
                pending.append(chunk)
                continue
            if pending:
                self._write(pending)
                pending = []
            self._end()
            return
        if pending:
            self._write(pending)

    def _write(self, chunks: list[bytes]) -> None:
        """Write ``chunks`` (non-empty), without joining them where the transport can."""
        if len(chunks) == 1:
            self.transport.write(chunks[0])
        elif self._writelines is not None:
            # A large payload goes out as it is (uvloop: one writev; asyncio
            # 3.12+: one sendmsg), not copied into a joined bytes.
            self._writelines(chunks)
        else:
            self.transport.write(b"".join(chunks))

    def _end(self) -> None:
        """The core is done with the connection: close TCP.

        Also after a protocol failure, as uvicorn's implementations do, rather
        than half-closing and reading on until the client closes: a client
        whose asyncio transport is closed while its write buffer drains cannot
        be aborted afterwards (the transport has lost its event loop), and
        websockets' client does exactly that after a 1009 in the middle of a
        large message.
        """
        self._eof_written = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self.transport.close()

    def _give_up(self) -> None:
        """The client did not finish closing in time."""
        self.close_timer = None
        self.transport.close()

    async def _drain(self) -> None:
        while self._write_paused and not self._lost:
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = self.loop.create_future()
            await asyncio.shield(waiter)

    def _wake_sender(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------ keepalive

    def _start_keepalive(self) -> None:
        interval = self.config.ws_ping_interval
        if interval is not None and interval > 0:
            delay = max(0.0, interval - self._last_rtt)
            self.ping_timer = self.loop.call_later(delay, self._send_ping)

    def _stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self._pong_timer = None
        self._ping_payload = None

    def _send_ping(self) -> None:
        self.ping_timer = None
        core = self._core
        if self._lost or core.state is not _OPEN or self._phase != _ACCEPTED:
            return
        # A random payload tells our pong from stale or unsolicited ones.
        self._ping_payload = os.urandom(4)
        self.ping_sent_at = self.loop.time()
        core.send_ping(self._ping_payload)
        if not self._hold:
            self._flush()
        timeout = self.config.ws_ping_timeout
        if timeout is not None:
            self._pong_timer = self.loop.call_later(timeout, self._ping_timed_out)
        else:
            self._start_keepalive()

    def _on_pong(self, data: bytes) -> None:
        if self._ping_payload is None or data != self._ping_payload:
            return
        self._ping_payload = None
        self._last_rtt = self.loop.time() - self.ping_sent_at
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._start_keepalive()

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        self._ping_payload = None
        core = self._core
        if self._lost or core.state is not _OPEN:
            return
        self.logger.debug("%s - WebSocket keepalive ping timed out", self._client_text())
        core.fail(1011, "keepalive ping timeout")
        self._release_hold()
        self._flush()

    # ------------------------------------------------------------ logging

    def _client_text(self) -> str:
        client = self.client
        return f"{client[0]}:{client[1]}" if client else ""

    def _path_text(self) -> str:
        scope = self.scope
        query = scope.get("query_string", b"")
        path: str = scope.get("path", "")
        return path + ("?" + query.decode("latin-1") if query else "")
