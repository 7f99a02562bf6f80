"""The sans-IO WebSocket connection state machine (RFC 6455 + RFC 7692), both roles.

No sockets, no asyncio, no clocks: feed bytes read from the transport to
:meth:`receive_data` (and :meth:`receive_eof`), collect :mod:`events
<fastws.events>` with :meth:`events_received`, and write what
:meth:`data_to_send` returns.

State machine::

    CONNECTING --(server: send_response(101) / client: valid 101 received)--> OPEN
    CONNECTING --(invalid handshake, rejected, EOF)--------------------------> CLOSED
    OPEN       --(send_close / fail: our close frame sent)-------------------> CLOSING
    OPEN       --(close frame received: ours is echoed at once)--------------> CLOSED
    CLOSING    --(peer's close frame received, or EOF)------------------------> CLOSED
    any        --(receive_eof)-------------------------------------------------> CLOSED

Rules enforced on received frames (close code sent on violation):

- a server fails unmasked frames, a client fails masked frames (1002);
- RSV bits without a negotiated extension, RSV2/RSV3 ever, RSV1 other than on
  the first frame of a data message with permessage-deflate (1002);
- reserved opcodes 0x3-0x7 and 0xB-0xF (1002);
- control frames longer than 125 bytes or fragmented (1002);
- a continuation frame with no message started, or a new data message inside a
  fragmented one (1002);
- invalid UTF-8 in a text message, checked fail-fast per frame and even while a
  frame is still arriving (1007); in a close reason (1007);
- a close payload of 1 byte, or an invalid close code (1002);
- a frame above ``max_frame_size``, a message above ``max_message_size``
  (decompressed size with permessage-deflate), more than ``max_fragments``
  frames in one message (1009).

Closing: the code of a received close frame is echoed (an empty close frame
answers an empty one); once both close frames were exchanged a server asks
for the TCP connection to be closed (``b""`` in :meth:`data_to_send`), a client
waits for the server to do it (:meth:`close_expected`). Failing the connection
sends a close frame with the error's code and, on the server, closes at once.
"""

from __future__ import annotations

import enum
import os
import struct
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeGuard

from fastws import __version__, _check, limits
from fastws._impl import MessageQueue, Reader, encode_frame, encode_header, frame_message
from fastws.events import (
    CloseReceived,
    Event,
    Headers,
    Ping,
    Pong,
    Request,
    Response,
)
from fastws.exceptions import (
    FastWSError,
    InvalidHandshake,
    InvalidMessage,
    InvalidState,
    InvalidStatus,
    PayloadTooBig,
    ProtocolError,
)
from fastws.extensions.permessage_deflate import (
    EXTENSION_NAME,
    DeflateOptions,
    PerMessageDeflate,
    client_accept,
    client_offer,
    server_accept,
)
from fastws.frames import (
    CLOSE_ABNORMAL,
    CLOSE_NO_STATUS,
    CLOSE_NORMAL,
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    build_close_payload,
    parse_close_payload,
)
from fastws.handshake import (
    HttpHeadParser,
    accept_key,
    build_extension_header,
    build_request,
    build_response,
    check_request,
    check_response,
    generate_key,
    header_pairs,
    header_value,
    is_token,
    parse_extension_header,
    parse_request_line,
    parse_status_line,
    parse_uri,
    same_origin,
    serialize_request,
    serialize_response,
)

#: ``handler(data, final)``, given to :meth:`Protocol.set_message_handler`:
#: called with each received message (``str`` for text, ``bytes`` for
#: binary; ``final`` true) or, with ``stream_messages``, each frame of a
#: fragmented message; returns whether the consumer is full, which pauses
#: receiving until :meth:`Protocol.resume_receiving`.
MessageHandler = Callable[[str | bytes, bool], object]


__all__ = [
    "ClientProtocol",
    "MessageHandler",
    "MessageQueue",
    "Protocol",
    "Role",
    "ServerProtocol",
    "State",
]

_DEFAULT_DEFLATE = DeflateOptions()

#: Pongs that may wait unsent at once; past this, a ping flood gets its most
#: recent ping answered in place of the previous one.
MAX_UNSENT_PONGS = 64

# The headers of a 101 response that say what was negotiated.
_NEGOTIATED = ("Sec-WebSocket-Accept", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol")


def _is_origin(value: str) -> bool:
    # An Origin is "null" or scheme://host[:port], without path or spaces.
    return is_token(value.replace(":", "").replace("/", "").replace("[", "").replace("]", ""))


_USER_AGENT = f"fastws/{__version__}"
_pack_code = struct.Struct("!H").pack
_Bytes = bytes | bytearray | memoryview

# A server sends an immutable ``bytes`` payload of at least this size after its
# header as a separate item, without copying it into the frame.
_ZERO_COPY_AT = 2048


class State(enum.IntEnum):
    """Connection state."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


# Module constants: faster to load than class attributes on the hot paths.
_OPEN = State.OPEN
_CONNECTING = State.CONNECTING


class Role(enum.IntEnum):
    """Which end of the connection this is."""

    SERVER = 0
    CLIENT = 1


def _drop_message(data: str | bytes, final: bool) -> bool:
    """The message handler of :meth:`Protocol.drop_messages`."""
    return False


class Protocol:
    """State shared by both roles: framing, messages, the closing handshake.

    Not instantiated directly: use :class:`ServerProtocol` or :class:`ClientProtocol`.
    """

    # Slots: a connection's state machine is about 1.2 KB smaller than with a __dict__.
    __slots__ = (
        "__weakref__",
        "_close_received",
        "_compression",
        "_deflate",
        "_discard",
        "_eof_received",
        "_eof_sent",
        "_events",
        "_http",
        "_is_server",
        "_last_ping",
        "_last_pong",
        "_out",
        "_pending_fail",
        "_pong_at",
        "_pong_frame",
        "_pongs_unsent",
        "_rand",
        "_rand_pos",
        "_reader",
        "_send_compressed",
        "_send_opcode",
        "answers_pending",
        "auto_pong",
        "close_code",
        "close_code_sent",
        "close_exc",
        "close_reason",
        "extensions",
        "max_fragments",
        "max_frame_size",
        "max_message_size",
        "request",
        "response",
        "role",
        "state",
        "stream_messages",
        "subprotocol",
    )

    def __init__(
        self,
        role: Role,
        *,
        compression: DeflateOptions | None,
        max_message_size: int | None,
        max_frame_size: int | None,
        max_fragments: int | None,
        max_request_line: int,
        max_header_line: int,
        max_headers: int,
        max_handshake_size: int,
        auto_pong: bool,
        stream_messages: bool,
    ) -> None:
        for name, value in (
            ("max_message_size", max_message_size),
            ("max_frame_size", max_frame_size),
            ("max_fragments", max_fragments),
        ):
            _check.integer(name, value, minimum=1, none=True)
        for name, value in (
            ("max_request_line", max_request_line),
            ("max_header_line", max_header_line),
            ("max_headers", max_headers),
            ("max_handshake_size", max_handshake_size),
        ):
            _check.integer(name, value, minimum=1)
        _check.boolean("auto_pong", auto_pong)
        _check.boolean("stream_messages", stream_messages)
        if compression is not None and not isinstance(compression, DeflateOptions):
            raise TypeError(f"compression must be a DeflateOptions or None, not {compression!r}")
        self.role = role
        self.state = _CONNECTING
        self._is_server = role is Role.SERVER
        self._compression = compression
        self.max_message_size = max_message_size
        self.max_frame_size = max_frame_size if max_frame_size is not None else max_message_size
        self.max_fragments = max_fragments
        self.auto_pong = auto_pong
        self.stream_messages = stream_messages
        self._http: HttpHeadParser | None = HttpHeadParser(
            max_start_line=max_request_line,
            max_header_line=max_header_line,
            max_headers=max_headers,
            max_size=max_handshake_size,
            is_request=self._is_server,
        )

        self.subprotocol: str | None = None
        self.extensions: list[str] = []
        self.request: Request | None = None
        self.response: Response | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.close_code_sent: int | None = None
        self.close_exc: FastWSError | None = None
        #: Set by a front-end whose application may still be answering
        #: messages that earlier :meth:`receive_data` calls delivered: a
        #: protocol violation found meanwhile then waits for the answers,
        #: as one found right after messages in the same call does (the
        #: close frame is queued by the next :meth:`data_to_send`).
        self.answers_pending = False

        # Every received frame goes through the reader, which applies every
        # rule and limit; its events list is this state machine's too. It
        # reaches _control() through a weak reference: no reference cycle, so
        # a connection's buffers are freed as soon as it is dropped.
        control = weakref.WeakMethod(self._control)

        def on_control(opcode: int, payload: bytes) -> bool:
            method = control()
            return True if method is None else method(opcode, payload)

        self._reader = Reader(
            self._is_server,
            -1 if self.max_frame_size is None else self.max_frame_size,
            -1 if max_message_size is None else max_message_size,
            -1 if max_fragments is None else max_fragments,
            stream_messages,
            on_control,
        )
        self._events: list[Event] = self._reader.events
        self._out: list[bytes] = []
        self._eof_sent = False
        self._eof_received = False
        self._close_received = False
        self._discard = False  # stop parsing frames (after close received / failure)
        self._deflate: PerMessageDeflate | None = None
        self._pending_fail: ProtocolError | None = None
        # A flood of pings costs one event object per distinct payload in a
        # row and one unsent pong (see _control).
        self._last_ping: Ping | None = None
        self._last_pong: Pong | None = None
        self._pong_frame = b""
        self._pong_at = -1
        self._pongs_unsent = 0

        # send side
        self._send_opcode = 0  # opcode of the fragmented message being sent, 0 if none
        self._send_compressed = False
        self._rand = b""
        self._rand_pos = 0

    # ------------------------------------------------------------------ I/O verbs

    def events_received(self) -> list[Event]:
        """Return the events parsed since the last call, and forget them."""
        events = self._events
        if events:
            self._events = self._reader.events = []
        return events

    def set_message_handler(self, handler: MessageHandler | None) -> None:
        """Deliver received messages to ``handler`` instead of as events.

        ``handler(data, final)`` is called from :meth:`receive_data` (or
        :meth:`resume_receiving`) with each message as soon as it is complete:
        ``str`` for text, ``bytes`` for binary, ``final`` true. With
        ``stream_messages``, each frame of a fragmented message comes as it
        arrives, ``final`` true on the last. Other events (pings, pongs, the
        close frame, handshake events) still go to :meth:`events_received`.

        If the handler returns a true value (its consumer is full), receiving
        pauses after that message: the bytes not parsed yet are kept, and
        more data is only buffered, until :meth:`resume_receiving`. An
        exception raised by the handler propagates out of
        :meth:`receive_data` after the message was taken; the rest is kept
        as if receiving had paused (see :attr:`receiving_paused`).

        Args:
            handler: the callable, or ``None`` to go back to events.
        """
        self._reader.handler = handler

    def set_message_callback(self, callback: Callable[[str | bytes], object] | None) -> None:
        """Call ``callback(data)`` with each whole received message.

        The message is ``str`` for text and ``bytes`` for binary; a
        fragmented message that starts while the callback is set is joined
        first, whatever ``stream_messages`` says (one that started before
        goes on to the handler, queue or events it started with). The
        callback takes precedence over :meth:`set_message_handler` and events,
        but not over :meth:`set_message_queue`. Its return value is ignored;
        an exception it raises propagates out of :meth:`receive_data` (or
        :meth:`resume_receiving`) after its message was taken, and the rest
        of the bytes is kept for :meth:`resume_receiving`.

        Args:
            callback: the callable, or ``None``.
        """
        self._reader.callback = callback

    def set_message_queue(self, queue: MessageQueue | None) -> None:
        """Put received messages in ``queue`` instead of delivering them as events.

        The cheapest way for a front-end to receive: the reader appends each
        message as ``(data, final)`` to the :class:`MessageQueue` without a
        Python call, and pauses receiving when the queue is full, exactly as
        a handler that returns true (see :meth:`set_message_handler`, which
        it takes precedence over). The front-end takes items with
        :meth:`MessageQueue.get` or :meth:`MessageQueue.get_message` and calls
        :meth:`resume_receiving` when there is room again.

        Args:
            queue: the queue, or ``None`` to go back to the handler or events.
        """
        self._reader.queue = queue

    def drop_messages(self) -> None:
        """Drop every data message received from now on (control frames still count).

        For a front-end whose application is done receiving, typically once
        it sent a close frame: the messages the peer sends before its own
        close frame then cost nothing and cannot fill a queue that keeps the
        close frame unread. Replaces the message queue, callback and handler;
        receiving stays paused if it was, until :meth:`resume_receiving`.
        """
        reader = self._reader
        reader.queue = None
        reader.callback = None
        reader.handler = _drop_message

    @property
    def receiving_paused(self) -> bool:
        """Whether the message handler paused receiving (see :meth:`set_message_handler`)."""
        return bool(self._reader.paused)

    def resume_receiving(self) -> None:
        """Parse what was kept while receiving was paused (it may pause again).

        Never raises for bad input from the peer (see :meth:`receive_data`).
        """
        if self._discard:
            return
        reader = self._reader
        error = reader.resume()
        if error is not None:
            self._fail_with(error, reader.error_after_messages)

    def buffered_size(self) -> int:
        """How many received bytes the state machine holds, not yet delivered."""
        return int(self._reader.buffered())

    def data_to_send(self) -> list[bytes]:
        """Return the bytes to write, in order, and forget them.

        An empty ``bytes`` item means: write EOF / close the TCP connection now.

        When the last :meth:`receive_data` found a protocol violation after
        messages that the application has not answered yet, the close frame is
        queued here, after the answers (:attr:`close_exc` was set at once).
        """
        if self._pending_fail is not None:
            self._apply_pending_fail()
        out = self._out
        if out:
            self._out = []
        else:
            out = []
        return out

    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` has something to return (cheap to ask)."""
        return bool(self._out) or self._pending_fail is not None

    def close_expected(self) -> bool:
        """Whether the TCP connection should be expected to close soon.

        True once a close frame was sent or received, after a failed handshake
        or a rejection; the caller then applies its own close timeout.
        """
        return (
            self.state >= State.CLOSING
            or self._close_received
            or self._eof_sent
            or self._pending_fail is not None
        )

    def receive_data(self, data: _Bytes) -> None:
        """Feed bytes read from the transport.

        Never raises for bad input from the peer: a violation fails the
        connection (see :meth:`fail`) and sets :attr:`close_exc`. Nothing
        references ``data`` after the call. With a message handler, what the
        handler raises propagates (see :meth:`set_message_handler`).
        """
        if self._eof_received or not data:
            return
        if self.state is _CONNECTING:
            self._receive_handshake(data)
            return
        if self._discard:
            return
        reader = self._reader
        error = reader.feed(data)
        if error is not None:
            self._fail_with(error, reader.error_after_messages)

    def receive_eof(self) -> None:
        """The transport reached EOF (the peer closed its side)."""
        if self._eof_received:
            return
        self._eof_received = True
        self._apply_pending_fail()
        if self.state is _CONNECTING:
            self._handshake_eof()
        if self.close_code is None:
            self.close_code = CLOSE_ABNORMAL
            self.close_reason = ""
        self.state = State.CLOSED
        self._discard = True
        self._reader.stop()
        self._send_eof()

    # ---------------------------------------------------------------- sending

    def send_text(
        self, data: str | _Bytes, fin: bool = True, *, compress: bool | None = None
    ) -> None:
        """Send a text frame.

        Args:
            data: the text; bytes must already be UTF-8.
            fin: ``False`` starts or continues a fragmented message; the
                following calls produce continuation frames until ``fin=True``.
            compress: with permessage-deflate, force (``True``) or skip
                (``False``) compression; ``None`` compresses messages of at
                least ``DeflateOptions.threshold`` bytes.

        Raises:
            InvalidState: the connection is not open, or a fragmented binary
                message is in progress.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._send_data(OP_TEXT, data, fin, compress)

    def send_binary(self, data: _Bytes, fin: bool = True, *, compress: bool | None = None) -> None:
        """Send a binary frame; see :meth:`send_text` for the arguments.

        Raises:
            InvalidState: the connection is not open, or a fragmented text
                message is in progress.
        """
        self._send_data(OP_BINARY, data, fin, compress)

    def send_ping(self, data: _Bytes = b"") -> None:
        """Send a ping.

        Raises:
            ValueError: more than 125 bytes.
            InvalidState: the connection is not open.
        """
        self._send_control(OP_PING, data)

    def send_pong(self, data: _Bytes = b"") -> None:
        """Send a pong (unsolicited, or as the answer with ``auto_pong=False``).

        Raises:
            ValueError: more than 125 bytes.
            InvalidState: the connection is not open.
        """
        self._send_control(OP_PONG, data)

    def send_close(self, code: int | None = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the closing handshake.

        Args:
            code: the close code; ``None`` sends an empty close payload.
            reason: the reason (needs a code; 123 bytes of UTF-8 at most).

        Raises:
            ValueError: invalid code or reason.
            InvalidState: the connection is not open.
        """
        if self.state is not _OPEN:
            raise InvalidState(f"cannot send a close frame in state {self.state.name}")
        payload = build_close_payload(code, reason)
        self._send_frame(OP_CLOSE, payload, True, 0)
        self.close_code_sent = code if code is not None else CLOSE_NO_STATUS
        self.state = State.CLOSING

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection: send a close frame with ``code``, then expect the close.

        A server also closes the TCP connection at once. Further input is ignored.
        """
        if self.state is _OPEN:
            try:
                payload = build_close_payload(code, reason[:100])
            except ValueError:
                payload = build_close_payload(code)
            self._send_frame(OP_CLOSE, payload, True, 0)
            self.close_code_sent = code
            self.state = State.CLOSED if self._close_received else State.CLOSING
        self._discard = True
        self._reader.stop()
        if self._is_server:
            self._send_eof()

    # ------------------------------------------------------------- internals

    def _send_eof(self) -> None:
        if not self._eof_sent:
            self._eof_sent = True
            self._out.append(b"")

    def _mask_key(self) -> bytes:
        pos = self._rand_pos
        if pos >= len(self._rand):
            self._rand = os.urandom(1024)
            pos = 0
        self._rand_pos = pos + 4
        return self._rand[pos : pos + 4]

    def _send_frame(self, opcode: int, payload: _Bytes, fin: bool, rsv: int) -> None:
        if self._is_server:
            if type(payload) is bytes and len(payload) >= _ZERO_COPY_AT:
                # Immutable: the transport may hold it without a copy.
                self._out.append(encode_header(fin, opcode, len(payload), None, rsv))
                self._out.append(payload)
            else:
                self._out.append(encode_frame(fin, opcode, payload, None, rsv))
        else:
            self._out.append(encode_frame(fin, opcode, payload, self._mask_key(), rsv))

    def _send_control(self, opcode: int, data: _Bytes) -> None:
        if self.state is not _OPEN:
            raise InvalidState(f"cannot send a control frame in state {self.state.name}")
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payloads are limited to 125 bytes")
        self._send_frame(opcode, data, True, 0)

    def _send_data(self, opcode: int, data: _Bytes, fin: bool, compress: bool | None) -> None:
        if self.state is not _OPEN:
            raise InvalidState(f"cannot send data in state {self.state.name}")
        deflate = self._deflate
        if deflate is None and not self._send_opcode:
            # The usual case: no compression, no fragmented message in progress.
            self._send_frame(opcode, data, fin, 0)
            if not fin:
                self._send_opcode = opcode
            return
        rsv = 0
        if self._send_opcode:
            if self._send_opcode != opcode:
                raise InvalidState("a fragmented message of the other type is in progress")
            wire_opcode = OP_CONTINUATION
        else:
            wire_opcode = opcode
            if deflate is not None:
                if compress is None:
                    compress = not fin or len(data) >= deflate.threshold
                self._send_compressed = compress
                if compress:
                    rsv = RSV1
            else:
                self._send_compressed = False
        if self._send_compressed:
            assert deflate is not None
            data = deflate.compress(data, fin)
        self._send_frame(wire_opcode, data, fin, rsv)
        self._send_opcode = 0 if fin else opcode

    def send_message(self, message: object) -> TypeGuard[str | _Bytes]:
        """Send a whole message: ``str`` as text, ``bytes``/``bytearray``/``memoryview`` as binary.

        The cheapest way to send a message: uncompressed, it is framed in one
        call. Returns ``False``, sending nothing, for any other type (the
        caller decides whether that is an error).

        Raises:
            InvalidState: the connection is not open, or a fragmented message
                is in progress.
        """
        if self.state is not _OPEN:
            raise InvalidState(f"cannot send data in state {self.state.name}")
        if self._send_opcode:
            raise InvalidState("a fragmented message is in progress")
        if self._deflate is None:
            # The usual case, framed in one call: see _send_frame() for the split.
            mask = None if self._is_server else self._mask_key()
            framed: bool = frame_message(self._out, message, mask, _ZERO_COPY_AT)
            return framed
        if isinstance(message, str):
            self._send_data(OP_TEXT, str.encode(message), True, None)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._send_data(OP_BINARY, message, True, None)
        else:
            return False
        return True

    def broadcast_key(self) -> tuple[object, ...] | None:
        """What connections must share to send any message as the same bytes; ``None`` if none can.

        A server's frames are not masked, so two open server connections
        frame a message alike, unless permessage-deflate was negotiated: then
        only those whose compressor starts afresh with every message
        (``server_no_context_takeover``) and that compress with the same
        settings do. A client's frames are masked: ``None``, as for a
        compressor that keeps its context from message to message.
        """
        if not self._is_server:
            return None
        deflate = self._deflate
        if deflate is None:
            return ()
        if not deflate.local_no_context_takeover:
            return None
        return (
            deflate.local_max_window_bits,
            deflate.compress_level,
            deflate.mem_level,
            deflate.threshold,
        )

    def encode_message(self, data: _Bytes, *, text: bool) -> bytes:
        """Frame a whole message as this connection sends it, without sending it.

        For :meth:`send_encoded` on the connections whose
        :meth:`broadcast_key` equals this one's (a broadcast frames its
        message once). Compressed as :meth:`send_text` would compress it.

        Args:
            data: the payload (UTF-8 for a text message).
            text: a text message, else binary.

        Raises:
            InvalidState: the connection is not open, a fragmented message is
                in progress, or :meth:`broadcast_key` is ``None``.
        """
        if self.state is not _OPEN or self._send_opcode:
            raise InvalidState("cannot encode a message now: not open, or a message is in progress")
        if self.broadcast_key() is None:
            raise InvalidState("this connection's frames cannot be shared")
        opcode = OP_TEXT if text else OP_BINARY
        deflate = self._deflate
        if deflate is not None and len(data) >= deflate.threshold:
            # The compressor restarts after the message: no state carries over.
            return encode_frame(True, opcode, deflate.compress(data, True), None, RSV1)
        return encode_frame(True, opcode, data, None, 0)

    def send_encoded(self, frame: bytes) -> None:
        """Send a message framed by :meth:`encode_message` of a connection with the same key.

        Raises:
            InvalidState: the connection is not open, or a fragmented message
                is in progress.
        """
        if self.state is not _OPEN:
            raise InvalidState(f"cannot send data in state {self.state.name}")
        if self._send_opcode:
            raise InvalidState("a fragmented message is in progress")
        self._out.append(frame)

    # ------------------------------------------------------------ received frames

    def _control(self, opcode: int, payload: bytes) -> bool:
        """A control frame from the reader; returns whether to stop reading (a close)."""
        if opcode == OP_PING:
            ping = self._last_ping
            if ping is None or ping.data != payload:
                ping = self._last_ping = Ping(payload)  # immutable: shared while equal
            self._events.append(ping)
            if self.auto_pong and self.state is _OPEN:
                key = None if self._is_server else self._mask_key()
                pong = encode_frame(True, OP_PONG, payload, key, 0)
                out = self._out
                at = self._pong_at
                if 0 <= at < len(out) and out[at] is self._pong_frame:
                    # The last pong is still unsent (the list was not drained).
                    self._pongs_unsent += 1
                else:
                    self._pongs_unsent = 1
                if self._pongs_unsent > MAX_UNSENT_PONGS:
                    # A flood: the newest pong takes the place of the last
                    # one, answering only the most recent ping (RFC 6455,
                    # section 5.5.3) instead of holding a pong per ping.
                    out[at] = pong
                else:
                    self._pong_at = len(out)
                    out.append(pong)
                self._pong_frame = pong
        elif opcode == OP_PONG:
            pong_event = self._last_pong
            if pong_event is None or pong_event.data != payload:
                pong_event = self._last_pong = Pong(payload)
            self._events.append(pong_event)
        else:
            code, reason = parse_close_payload(payload)
            self._close_received = True
            self.close_code = code
            self.close_reason = reason
            self._events.append(CloseReceived(code, reason))
            if self.state is _OPEN:
                self._send_frame(
                    OP_CLOSE, b"" if code == CLOSE_NO_STATUS else _pack_code(code), True, 0
                )
                self.close_code_sent = code
            self.state = State.CLOSED
            self._discard = True
            if self._is_server:
                self._send_eof()
            return True
        return False

    def _fail_with(self, exc: ProtocolError, after_messages: bool = False) -> None:
        # Drop the traceback: its frames reference views of the receive buffer,
        # which could then never be resized.
        exc.__traceback__ = None
        exc.__context__ = None
        if self.close_exc is None:
            self.close_exc = exc
        self._discard = True
        self._reader.stop()
        if (after_messages or self._events or self.answers_pending) and self.state is _OPEN:
            # Messages parsed before the violation are still delivered and the
            # application may answer them: the close frame is queued by the
            # next data_to_send(), after those answers.
            self._pending_fail = exc
        else:
            self.fail(exc.code, exc.message)

    def _apply_pending_fail(self) -> None:
        exc = self._pending_fail
        if exc is not None:
            self._pending_fail = None
            self.fail(exc.code, exc.message)

    # ---------------------------------------------------------- handshake hooks

    def _receive_handshake(self, data: _Bytes) -> None:
        raise NotImplementedError

    def _handshake_eof(self) -> None:
        raise NotImplementedError

    def _open(self, leftover: bytes) -> None:
        self.state = _OPEN
        if leftover:
            self.receive_data(leftover)


SelectSubprotocol = Callable[[Request, list[str]], "str | None"]


class ServerProtocol(Protocol):
    """The server end of a WebSocket connection.

    Args:
        subprotocols: supported subprotocols in order of preference.
        select_subprotocol: ``(request, offered) -> chosen or None``; overrides
            ``subprotocols``.
        origins: acceptable ``Origin`` values (``None`` in the list accepts a
            request without Origin, ``"*"`` accepts any). ``None`` (the
            default) accepts requests without Origin (clients that are not
            browsers) and those whose Origin is the server's own (same host
            and port as the ``Host`` header): a page of another site cannot
            open a connection with its visitor's cookies. A mismatch is
            answered with 403.
        compression: permessage-deflate settings, ``None`` to disable.
        max_message_size: largest message in bytes (after decompression); 1009 above.
        max_frame_size: largest frame payload; defaults to ``max_message_size``.
        max_fragments: most frames in one message.
        max_request_line: longest request line (400 above).
        max_header_line: longest header line (431 above).
        max_headers: most header lines (431 above).
        max_handshake_size: largest request head (431 above).
        auto_pong: answer pings automatically.
        stream_messages: deliver each frame of a fragmented message as a
            :class:`~fastws.events.MessageChunk` event as it arrives, instead
            of joining the frames; a message sent in one frame still comes
            whole (``TextMessage`` / ``BinaryMessage``).
        server_header: the ``Server`` header of responses, ``None`` for none.
    """

    # Server-only state (see Protocol.__slots__).
    __slots__ = (
        "_accepted",
        "_early_overflow",
        "_key",
        "_leftover",
        "_max_early",
        "origins",
        "select_subprotocol",
        "server_header",
        "subprotocols",
    )

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SelectSubprotocol | None = None,
        origins: Sequence[str | None] | None = None,
        compression: DeflateOptions | None = _DEFAULT_DEFLATE,
        max_message_size: int | None = limits.MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        max_fragments: int | None = limits.MAX_FRAGMENTS,
        max_request_line: int = limits.MAX_REQUEST_LINE,
        max_header_line: int = limits.MAX_HEADER_LINE,
        max_headers: int = limits.MAX_HEADERS,
        max_handshake_size: int = limits.MAX_HANDSHAKE_SIZE,
        auto_pong: bool = True,
        stream_messages: bool = False,
        server_header: str | None = _USER_AGENT,
    ) -> None:
        super().__init__(
            Role.SERVER,
            compression=compression,
            max_message_size=max_message_size,
            max_frame_size=max_frame_size,
            max_fragments=max_fragments,
            max_request_line=max_request_line,
            max_header_line=max_header_line,
            max_headers=max_headers,
            max_handshake_size=max_handshake_size,
            auto_pong=auto_pong,
            stream_messages=stream_messages,
        )
        self.subprotocols: list[str] = (
            _check.strings("subprotocols", subprotocols, check=is_token, what="subprotocol") or []
        )
        self.select_subprotocol = _check.callable_or_none("select_subprotocol", select_subprotocol)
        self.origins = _check.strings(
            "origins", origins, check=_is_origin, what="origin", none_item=True
        )
        self.server_header = header_value("server_header", server_header)
        self._key: str | None = None
        self._leftover = bytearray()
        self._max_early = max_handshake_size
        self._early_overflow = False
        self._accepted: tuple[Response, PerMessageDeflate | None, str | None] | None = None

    def _receive_handshake(self, data: _Bytes) -> None:
        if self._eof_sent or self.request is not None:
            # Waiting for accept()/reject(): keep the bytes for later. A client
            # may not send frames before the 101, so keep a bounded amount:
            # beyond max_handshake_size the connection fails (1009) once open.
            if len(self._leftover) + len(data) > self._max_early:
                self._early_overflow = True
            else:
                self._leftover += data
            return
        request: Request | None = None
        try:
            http = self._http
            assert http is not None  # fed only until the head is complete
            if not http.feed(data):
                return
            self._http = None  # not needed any more: keep connections small
            method, target = parse_request_line(http.start_line)
            request = Request(method, target, http.headers)
            self._leftover = bytearray(http.rest())
            self._key = check_request(request)
            origin = request.headers.get("Origin")
            if self.origins is None:
                # Cross-site WebSocket hijacking: a page of another site may
                # not use the visitor's cookies here unless origins says so.
                if origin is not None and not same_origin(origin, request.headers.get("Host")):
                    raise InvalidHandshake(
                        f"origin {origin!r} is not this server's (pass origins= to allow it)",
                        status=403,
                    )
            elif origin not in self.origins and "*" not in self.origins:
                raise InvalidHandshake(f"origin {origin!r} is not allowed", status=403)
        except InvalidHandshake as exc:
            if exc.request is None:
                exc.request = request
            self.close_exc = exc
            status = exc.status or 400
            headers = [("Sec-WebSocket-Version", "13")] if status == 426 else []
            self.send_response(self.reject(status, f"{exc.message}\n", headers))
            return
        self.request = request
        self._events.append(request)

    def _handshake_eof(self) -> None:
        if self.close_exc is None and self.request is None:
            self.close_exc = InvalidHandshake("connection closed during the handshake", status=None)

    def _select_subprotocol(self, request: Request) -> str | None:
        offered = [
            p.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in value.split(",")
            if p.strip()
        ]
        if self.select_subprotocol is not None:
            chosen = self.select_subprotocol(request, offered)
            if chosen is not None and chosen not in offered:
                raise InvalidHandshake(
                    f"selected subprotocol {chosen!r} was not offered", status=500
                )
            return chosen
        for proto in self.subprotocols:
            if proto in offered:
                return proto
        return None

    def accept(
        self, request: Request, extra_headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()
    ) -> Response:
        """Negotiate subprotocol and extensions and build the 101 response.

        Args:
            request: the request received (the :class:`~fastws.events.Request` event).
            extra_headers: additional response headers.

        Returns:
            The response; pass it to :meth:`send_response`. When negotiation fails
            (a malformed extension header) a 400 response is returned instead.
        """
        key = self._key if request is self.request and self._key else check_request(request)
        try:
            subprotocol = self._select_subprotocol(request)
        except InvalidHandshake as exc:
            self.close_exc = exc
            return self.reject(500, f"{exc.message}\n")
        headers: list[tuple[str, str]] = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(key)),
        ]
        deflate: PerMessageDeflate | None = None
        if self._compression is not None:
            try:
                offers = parse_extension_header(request.headers.get_all("Sec-WebSocket-Extensions"))
            except ValueError as exc:
                self.close_exc = InvalidHandshake(
                    f"invalid Sec-WebSocket-Extensions: {exc}", status=400
                )
                return self.reject(400, f"invalid Sec-WebSocket-Extensions: {exc}\n")
            for name, params in offers:
                if name != EXTENSION_NAME:
                    continue
                accepted = server_accept(params, self._compression)
                if accepted is not None:
                    response_params, deflate = accepted
                    headers.append(
                        (
                            "Sec-WebSocket-Extensions",
                            build_extension_header([(name, response_params)]),
                        )
                    )
                    break
        if subprotocol is not None:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        if self.server_header:
            headers.append(("Server", self.server_header))
        headers.extend(header_pairs("extra_headers", extra_headers))
        response = build_response(101, headers)
        self._accepted = (response, deflate, subprotocol)
        return response

    def reject(
        self,
        status: int,
        body: bytes | str = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Build an HTTP error response; :meth:`send_response` sends it, then closes.

        Args:
            status: the HTTP status (not 101).
            body: the body.
            headers: extra headers.
        """
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code (100-599), got {status!r}")
        if status == 101:
            raise ValueError("status 101 is for accept(), not reject()")
        if not isinstance(body, (bytes, str)):
            raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
        pairs = header_pairs("headers", headers)
        if self.server_header:
            pairs.append(("Server", self.server_header))
        return build_response(status, pairs, body)

    def send_response(self, response: Response) -> None:
        """Queue the response; a 101 from :meth:`accept` opens the connection.

        A 101 response must come from :meth:`accept`, or replace the one it
        built with the same ``Sec-WebSocket-Accept``, ``-Extensions`` and
        ``-Protocol`` headers (what was negotiated); other headers may differ.

        Raises:
            InvalidState: not in the handshake, or a 101 response that does
                not carry what :meth:`accept` negotiated.
        """
        if self.state is not _CONNECTING or self.response is not None:
            raise InvalidState("the handshake response was already sent")
        if response.status == 101:
            if self._accepted is None:
                raise InvalidState("a 101 response must come from accept()")
            accepted = self._accepted[0]
            if response is not accepted and any(
                response.headers.get_all(name) != accepted.headers.get_all(name)
                for name in _NEGOTIATED
            ):
                raise InvalidState(
                    "a 101 response must keep the Sec-WebSocket-* headers of accept()"
                )
            _, self._deflate, self.subprotocol = self._accepted
            self._reader.deflate = self._deflate
            if self._deflate is not None:
                self.extensions = [EXTENSION_NAME]
            self.response = response
            self._out.append(serialize_response(response))
            leftover = bytes(self._leftover)
            self._leftover = bytearray()
            self._open(leftover)
            if self._early_overflow and self.state is _OPEN:
                self._fail_with(
                    PayloadTooBig("too much data received before the handshake response")
                )
            return
        self.response = response
        self._out.append(serialize_response(response))
        if self.close_exc is None:
            self.close_exc = InvalidHandshake(
                f"rejected with status {response.status}", status=response.status
            )
        self.state = State.CLOSED
        self._discard = True
        self._send_eof()


class ClientProtocol(Protocol):
    """The client end of a WebSocket connection.

    Args:
        uri: ``ws://`` or ``wss://`` URI: host, port, path and query come from it.
        origin: the ``Origin`` header, if any.
        subprotocols: subprotocols to offer.
        compression: permessage-deflate settings to offer, ``None`` to disable.
        additional_headers: extra request headers.
        user_agent: the ``User-Agent`` header, ``None`` for none.
        max_message_size: largest message in bytes (after decompression); 1009 above.
        max_frame_size: largest frame payload; defaults to ``max_message_size``.
        max_fragments: most frames in one message.
        max_request_line: longest status line of the response.
        max_header_line: longest response header line.
        max_headers: most response header lines.
        max_handshake_size: largest response head (and error body).
        auto_pong: answer pings automatically.
        stream_messages: deliver fragmented messages as
            :class:`~fastws.events.MessageChunk` events (see ``ServerProtocol``).

    Raises:
        ValueError: ``uri`` is not a valid WebSocket URI.
    """

    # Client-only state (see Protocol.__slots__).
    __slots__ = (
        "_body",
        "_key",
        "_status",
        "additional_headers",
        "max_handshake_size",
        "origin",
        "subprotocols",
        "uri",
        "user_agent",
    )

    def __init__(
        self,
        uri: str,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        compression: DeflateOptions | None = _DEFAULT_DEFLATE,
        additional_headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        user_agent: str | None = _USER_AGENT,
        max_message_size: int | None = limits.MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        max_fragments: int | None = limits.MAX_FRAGMENTS,
        max_request_line: int = limits.MAX_REQUEST_LINE,
        max_header_line: int = limits.MAX_HEADER_LINE,
        max_headers: int = limits.MAX_HEADERS,
        max_handshake_size: int = limits.MAX_HANDSHAKE_SIZE,
        auto_pong: bool = True,
        stream_messages: bool = False,
    ) -> None:
        super().__init__(
            Role.CLIENT,
            compression=compression,
            max_message_size=max_message_size,
            max_frame_size=max_frame_size,
            max_fragments=max_fragments,
            max_request_line=max_request_line,
            max_header_line=max_header_line,
            max_headers=max_headers,
            max_handshake_size=max_handshake_size,
            auto_pong=auto_pong,
            stream_messages=stream_messages,
        )
        if not isinstance(uri, str):
            raise TypeError(f"uri must be a str, not {uri!r}")
        parse_uri(uri)
        self.uri = uri
        self.origin = header_value("origin", origin)
        self.subprotocols: list[str] = (
            _check.strings("subprotocols", subprotocols, check=is_token, what="subprotocol") or []
        )
        self.additional_headers = header_pairs("additional_headers", additional_headers)
        self.user_agent = header_value("user_agent", user_agent)
        self.max_handshake_size = max_handshake_size
        self._key = ""
        self._status: tuple[int, str, Headers] | None = None
        self._body = bytearray()

    def connect(self) -> Request:
        """Build the upgrade request (with a fresh random key)."""
        self._key = generate_key()
        offer = None
        if self._compression is not None:
            offer = build_extension_header([(EXTENSION_NAME, client_offer(self._compression))])
        return build_request(
            self.uri,
            key=self._key,
            origin=self.origin,
            subprotocols=self.subprotocols,
            extensions=offer,
            additional_headers=self.additional_headers,
            user_agent=self.user_agent,
        )

    def send_request(self, request: Request) -> None:
        """Queue the request built by :meth:`connect`.

        Raises:
            InvalidState: not in the handshake.
        """
        if self.state is not _CONNECTING or self.request is not None:
            raise InvalidState("the request was already sent")
        key = request.headers.get("Sec-WebSocket-Key")
        if key is not None:
            self._key = key
        self.request = request
        self._out.append(serialize_request(request))

    def _receive_handshake(self, data: _Bytes) -> None:
        if self.close_exc is not None:
            return
        if self._status is not None:
            self._collect_body(data)
            return
        try:
            http = self._http
            assert http is not None  # fed only until the head is complete
            if not http.feed(data):
                return
            self._http = None  # not needed any more: keep connections small
            status, reason = parse_status_line(http.start_line)
        except InvalidHandshake as exc:
            self._handshake_failed(InvalidMessage(exc.message))
            return
        headers = http.headers
        rest = http.rest()
        if status != 101:
            self._status = (status, reason, headers)
            self._collect_body(rest)
            return
        response = Response(status, reason, headers, b"")
        try:
            self.subprotocol = check_response(response, self._key, self.subprotocols)
            self._deflate = self._negotiate(response)
        except InvalidHandshake as exc:
            self._handshake_failed(exc)
            return
        self._reader.deflate = self._deflate
        if self._deflate is not None:
            self.extensions = [EXTENSION_NAME]
        self.response = response
        self._events.append(response)
        self._open(rest)

    def _negotiate(self, response: Response) -> PerMessageDeflate | None:
        try:
            exts = parse_extension_header(response.headers.get_all("Sec-WebSocket-Extensions"))
        except ValueError as exc:
            raise InvalidHandshake(f"invalid Sec-WebSocket-Extensions: {exc}", response) from None
        if not exts:
            return None
        if len(exts) > 1 or exts[0][0] != EXTENSION_NAME or self._compression is None:
            raise InvalidHandshake("server accepted an extension that was not offered", response)
        try:
            return client_accept(exts[0][1], self._compression)
        except InvalidHandshake as exc:
            raise InvalidHandshake(exc.message, response) from None

    def _collect_body(self, data: _Bytes) -> None:
        assert self._status is not None
        self._body += data
        length = self._status[2].get("Content-Length")
        if length is not None:
            text = length.strip(" \t")
            # ASCII digits only (str.isdigit() accepts "²"), and few enough
            # that int() takes them: any larger body is cut at the limit.
            if not (0 < len(text) <= 18 and text.isascii() and text.isdigit()):
                self._finish_error_response(b"", f"invalid Content-Length {length[:40]!r}")
                return
            if len(self._body) >= int(text):
                self._finish_error_response(bytes(self._body[: int(text)]))
                return
        if len(self._body) > self.max_handshake_size:
            self._finish_error_response(bytes(self._body[: self.max_handshake_size]))

    def _finish_error_response(self, body: bytes, problem: str = "") -> None:
        assert self._status is not None
        status, reason, headers = self._status
        response = Response(status, reason, headers, body)
        self.response = response
        message = f"server rejected the WebSocket connection: {status} {reason}"
        if problem:
            message += f" ({problem})"
        self._handshake_failed(InvalidStatus(message, response))

    def _handshake_failed(self, exc: InvalidHandshake) -> None:
        self.close_exc = exc
        self.state = State.CLOSED
        self._discard = True
        self._send_eof()

    def _handshake_eof(self) -> None:
        if self.close_exc is not None:
            return
        if self._status is not None:
            self._finish_error_response(bytes(self._body))
        else:
            exc = InvalidMessage("connection closed before the server's response was complete")
            # As a network error: a client that reconnects tries again.
            exc.__cause__ = EOFError("the server closed the connection")
            self._handshake_failed(exc)
