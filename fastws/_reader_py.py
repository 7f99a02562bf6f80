"""The frame reader: every received frame goes through :class:`Reader`.

One source for both builds. As plain Python this module is the reader of the
pure-Python package; compiled by Cython together with ``_reader_c.pxd``
(which types its locals and turns :class:`Reader` and the message classes
into extension types) it is the reader of the C build. Where this file calls
``_k.frame_header`` and ``_k.frame_payload``, the pure build calls the
twins in :mod:`fastws._kernels_py` and the compiled build the C functions of
``fastws._speedups`` directly (the ``.pxd`` binds ``_k`` to that module).

The reader applies every rule of RFC 6455 and RFC 7692 that a received frame
is subject to (see :meth:`Reader._check_frame`; the state machine in
:mod:`fastws.protocol` lists them) and every receive limit, to every frame:
whole in one read, split across reads, or large and assembled in place.

Messages go either to the list :attr:`Reader.events` (as
:class:`TextMessage`, :class:`BinaryMessage` and :class:`MessageChunk`), or,
when a handler is set, to ``handler(data, final)``. A handler that returns a
true value pauses the reader: the bytes not parsed yet are kept until
:meth:`Reader.resume`. Control frames go to the ``on_control`` callback of
the state machine.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import fastws._kernels_py as _k
from fastws._impl import PayloadBuilder, Utf8Validator, apply_mask
from fastws.exceptions import PayloadTooBig, ProtocolError, Utf8Error
from fastws.frames import (
    CLOSE_INVALID_DATA,
    CLOSE_PROTOCOL_ERROR,
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CONTINUATION,
    OP_PONG,
    OP_TEXT,
    RSV1,
)

if TYPE_CHECKING:
    from fastws._kernels_py import PayloadBuilder as _Builder
    from fastws.extensions.permessage_deflate import PerMessageDeflate

__all__ = ["BinaryMessage", "MessageChunk", "MessageQueue", "Reader", "TextMessage"]

# A frame at least this large may be assembled in its final bytes object as
# it arrives (see PayloadBuilder) instead of in the receive buffer, once a
# quarter of it is there: the memory a peer makes us hold stays within four
# times what it sent.
ASSEMBLE_AT = 1 << 16
# Consumed bytes at the front of the receive buffer are dropped once they
# are both this many and the larger part of it.
COMPACT_AT = 1 << 16


class _Event:
    """Equality, hash and repr of the event classes, from their ``__match_args__``."""

    __slots__ = ()
    __match_args__ = ()  # type: tuple[str, ...]

    def _fields(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__match_args__])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Event)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), *self._fields()))

    def __repr__(self) -> str:
        fields = ", ".join([f"{name}={getattr(self, name)!r}" for name in self.__match_args__])
        return f"{type(self).__name__}({fields})"


class TextMessage(_Event):
    """A complete text message.

    Attributes:
        data: the text.
    """

    __slots__ = ("data",)
    __match_args__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data


class BinaryMessage(_Event):
    """A complete binary message.

    Attributes:
        data: the bytes.
    """

    __slots__ = ("data",)
    __match_args__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class MessageChunk(_Event):
    """One frame of a fragmented message, with ``stream_messages=True``.

    A message sent in a single frame is delivered whole instead.

    Attributes:
        data: the payload of one data frame (decompressed, and for text
            decoded; a code point split across frames is held back until it is
            complete).
        text: whether the message is text.
        final: whether this is the last chunk of the message.
    """

    __slots__ = ("data", "final", "text")
    __match_args__ = ("data", "text", "final")

    def __init__(self, data: str | bytes, text: bool, final: bool) -> None:
        self.data = data
        self.text = text
        self.final = final


def _text_message(data: str) -> TextMessage:
    event = TextMessage.__new__(TextMessage)
    event.data = data
    return event


def _binary_message(data: bytes) -> BinaryMessage:
    event = BinaryMessage.__new__(BinaryMessage)
    event.data = data
    return event


class MessageQueue:
    """A bounded first-in, first-out queue of received messages, filled by the reader.

    Items are ``(data, final)``: a whole message (``str`` for text, ``bytes``
    for binary) with ``final`` true, or, when streaming, one frame of a
    fragmented message (``final`` true on its last). The reader appends
    without a Python call per message and pauses once the queue is full:
    ``max_items`` items, or ``max_bytes`` bytes of data.

    The items live in a ring of two lists (data and final flags) that
    doubles when it is full: every operation is O(1) (amortized when it
    grows), no object is made per item, and the compiled build reads and
    writes the slots directly.

    Args:
        max_items: how many items make the queue full (at least 1).
        max_bytes: how many bytes of data make the queue full.
    """

    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("max_items and max_bytes must be at least 1")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.full = False
        self.head = 0
        self.count = 0
        self.capacity = 4
        self.data: list[Any] = [None] * self.capacity
        self.finals: list[bool] = [False] * self.capacity

    def __len__(self) -> int:
        return self.count

    def put(self, data: Any, final: bool) -> bool:
        """Append an item; return whether the queue is now full."""
        if self.count == self.capacity:
            self._grow()
        i = (self.head + self.count) % self.capacity
        self.data[i] = data
        self.finals[i] = final
        self.count += 1
        self.nbytes += len(data)
        self.full = self.count >= self.max_items or self.nbytes >= self.max_bytes
        return self.full

    def get(self) -> tuple[Any, bool]:
        """Remove and return the first item.

        Raises:
            IndexError: the queue is empty.
        """
        if not self.count:
            raise IndexError("get from an empty MessageQueue")
        final = self.finals[self.head]
        return self._take(), final

    def get_message(self) -> Any:
        """Remove and return the first item's data if it is final, else ``None``."""
        if not self.count or not self.finals[self.head]:
            return None
        return self._take()

    def _take(self) -> Any:
        """Remove the first item and return its data."""
        head = self.head
        data = self.data[head]
        self.data[head] = None
        self.head = (head + 1) % self.capacity
        self.count -= 1
        self.nbytes -= len(data)
        self.full = self.count >= self.max_items or self.nbytes >= self.max_bytes
        return data

    def _grow(self) -> None:
        """Double the capacity, keeping the items in order from slot 0."""
        items = self.take_all()
        self.capacity *= 2
        self.data = [None] * self.capacity
        self.finals = [False] * self.capacity
        for data, final in items:
            self.put(data, final)

    def unget(self, parts: list[Any]) -> None:
        """Put the first frames of a fragmented message back at the front."""
        items = [(data, False) for data in parts] + self.take_all()
        for data, final in items:
            self.put(data, final)

    def take_all(self) -> list[tuple[Any, bool]]:
        """Remove and return every item."""
        items = []
        while self.count:
            final = self.finals[self.head]
            items.append((self._take(), final))
        self.head = 0
        return items


#: ``handler(data, final)``: a message (``final`` true) or a chunk of one;
#: returns whether the reader must pause.
MessageHandler = Callable[[Any, bool], object]
#: ``on_control(opcode, payload)``: returns whether to stop reading (a close).
ControlHandler = Callable[[int, bytes], bool]


class Reader:
    """Parse received bytes into messages, applying every rule and limit.

    Args:
        is_server: frames must be masked (server) or unmasked (client).
        max_frame_size: largest frame payload, ``-1`` for no limit.
        max_message_size: largest message (decompressed), ``-1`` for no limit.
        max_fragments: most frames in one message, ``-1`` for no limit.
        stream_messages: deliver each frame of a fragmented message as it
            arrives instead of joining them.
        on_control: called with each control frame (see :data:`ControlHandler`).

    Violations raise nothing: :meth:`feed` and :meth:`resume` return the
    :class:`ProtocolError` (with its close code); the reader then ignores
    all further input.
    """

    def __init__(
        self,
        is_server: bool,
        max_frame_size: int,
        max_message_size: int,
        max_fragments: int,
        stream_messages: bool,
        on_control: ControlHandler,
    ) -> None:
        self.is_server = is_server
        self.want_mask = 0x80 if is_server else 0
        self.max_frame = max_frame_size
        self.max_message = max_message_size
        self.max_fragments = max_fragments
        self.stream_messages = stream_messages
        self.on_control = on_control
        self.events: list[Any] = []
        self.handler: MessageHandler | None = None
        self.queue: MessageQueue | None = None
        self.callback: Callable[[Any], object] | None = None
        self.deflate: PerMessageDeflate | None = None
        self.paused = False
        self.stopped = False  # after a close frame or a violation: ignore input
        self.delivered = 0  # messages and chunks delivered so far
        self.counted = 0  # ... when the current feed() or resume() started
        # Whether messages were delivered by the call that found the last
        # violation, before it (the state machine lets them be answered).
        self.error_after_messages = False
        self.error: ProtocolError | None = None
        # Bytes not parsed yet: the start of an incomplete frame, or what is
        # held back while paused; buf[start:] is unparsed.
        self.buf = bytearray()
        self.start = 0
        # Progress through the bytes being parsed (kept up to date so that an
        # exception from a handler leaves a consistent state).
        self.scan = 0
        # A large frame being assembled in place: its builder and header.
        self.asm: _Builder | None = None
        self.asm_fin = False
        self.asm_rsv = 0
        self.asm_opcode = 0
        # The message in progress (0: none, else its opcode).
        self.msg_opcode = 0
        self.msg_compressed = False
        self.msg_streamed = False
        self.msg_parts: list[bytes] = []
        self.msg_size = 0
        self.msg_frames = 0
        self.utf8 = Utf8Validator()
        self.early = 0  # bytes of the incomplete current text frame already validated
        self.partial_seen = False  # that frame was seen incomplete once already
        self.decoder: codecs.IncrementalDecoder | None = None

    # ------------------------------------------------------------ public verbs

    def feed(self, data: Any) -> ProtocolError | None:
        """Parse ``data`` (any buffer); keep what cannot be parsed yet.

        Nothing references ``data`` after the call. Returns the violation
        found, if any (once: then the reader stops).
        """
        if self.stopped or not len(data):
            return None
        self.counted = self.delivered
        if self.paused:
            self.buf += data
            return None
        off = 0
        if self.asm is not None:
            off = self._feed_assembly(data, 0)
            if self.asm is not None or self.stopped or off >= len(data):
                return self._result()
        if self.start < len(self.buf):
            off = self._complete_buffered(data, off)
            if off < 0:
                return self._result()
        # Parse straight from the caller's buffer; keep only the unparsed tail.
        self.scan = off
        try:
            self._parse(data, off)
        finally:
            if not self.stopped:
                pos = self.scan
                if self.asm is not None:
                    pos = self._feed_assembly(data, pos) + pos
                if pos < len(data) and not self.stopped:
                    with memoryview(data) as view:
                        self.buf += view[pos:]
        return self._result()

    def resume(self) -> ProtocolError | None:
        """Parse the bytes held back while paused (until paused again)."""
        self.paused = False
        if self.stopped or self.start >= len(self.buf):
            return None
        self.counted = self.delivered
        self._parse_buffer()
        return self._result()

    def stop(self) -> None:
        """Ignore all further input and drop what is buffered."""
        self.stopped = True
        self.asm = None
        self.buf = bytearray()
        self.start = 0

    def buffered(self) -> int:
        """How many received bytes are held, unparsed or partly assembled."""
        held = len(self.buf) - self.start
        if self.asm is not None:
            held += self.asm.filled
        return held

    # ------------------------------------------------------------- internals

    def _result(self) -> ProtocolError | None:
        error = self.error
        self.error = None
        return error

    def _fail(self, exc: ProtocolError) -> None:
        # Drop the traceback: its frames reference views of the buffers.
        exc.__traceback__ = None
        exc.__context__ = None
        if self.error is None:
            self.error = exc
            self.error_after_messages = self.delivered != self.counted
        self.stop()

    def _complete_buffered(self, data: Any, off: int) -> int:
        """Complete the frame at the front of the buffer with bytes of ``data``.

        Copies only what that frame misses (or, when it is large, what is
        needed to start assembling it), parses the buffer, and returns the
        offset in ``data`` of the first byte not taken, or -1 if ``data``
        was used up or parsing stopped.
        """
        n = len(data)
        with memoryview(data) as view:
            while off < n and self.start < len(self.buf):
                need = self._missing()
                if need <= 0 or need >= n - off:
                    self.buf += view[off:]
                    self._parse_buffer()
                    return -1
                self.buf += view[off : off + need]
                off += need
                try:
                    self._parse_buffer()
                except BaseException:
                    # A handler raised: keep the rest for later.
                    if not self.stopped:
                        self.buf += view[off:]
                    raise
                if self.paused and not self.stopped:
                    self.buf += view[off:]
                    return -1
                if self.stopped:
                    return -1
                if self.asm is not None:
                    off += self._feed_assembly(data, off)
                    if self.asm is not None or self.stopped:
                        return -1
        return off

    def _missing(self) -> int:
        """Bytes the frame at the front of the buffer misses, to be parsed or assembled.

        0 when unknown (its header is incomplete: the caller appends all).
        """
        hlen, length, _ = _k.frame_header(_k.ByteView(self.buf), self.start)
        if hlen <= 0:
            return 0
        arrived = len(self.buf) - self.start - hlen
        if length >= ASSEMBLE_AT:
            # A quarter of it, rounded up (without overflow for a 64-bit length).
            need = (length - 1) // 4 + 1 - arrived
            if need > 0:
                return need
            return 0
        return length - arrived

    def _parse_buffer(self) -> None:
        """Parse the buffered bytes from :attr:`start`; compact the buffer."""
        buf = self.buf
        self.scan = self.start
        try:
            self._parse(buf, self.start)
        finally:
            if not self.stopped:
                pos = self.scan
                if self.asm is not None:
                    pos += self._feed_assembly(buf, pos)
                if pos >= len(buf):
                    if len(buf) > COMPACT_AT:
                        # Freed, not shrunk in place: a large block is kept
                        # mapped by realloc, then faulted in again page by page.
                        self.buf = bytearray()
                    else:
                        buf.clear()
                    self.start = 0
                elif pos >= COMPACT_AT and pos * 2 >= len(buf):
                    del buf[:pos]
                    self.start = 0
                else:
                    self.start = pos

    def _parse(self, data: Any, pos: int) -> None:
        """Parse the frames of ``data`` from ``pos``; :attr:`scan` follows."""
        view = _k.ByteView(data)  # holds the buffer (an export) while parsing
        end = len(data)
        want_mask = self.want_mask
        # The largest whole message in one uncompressed frame that passes
        # every limit (see _check_frame); a frame that fits in ``data`` is no
        # longer than ``end``.
        single = self.max_frame
        if single < 0 or 0 <= self.max_message < single:
            single = self.max_message
        if single < 0:
            single = end
        # The first two bytes of a usual frame (see below), with the MASK bit
        # of the right kind and the length bits cleared.
        text_head = 0x8100 | want_mask
        binary_head = 0x8200 | want_mask
        try:
            while pos < end and not self.paused and not self.stopped:
                hlen, length, b01 = _k.frame_header(view, pos)
                head = b01 & 0xFF80  # 0 while the header is incomplete or invalid
                start = pos + hlen
                mask_at = start - 4 if want_mask else -1
                # (``length <= end - start``, not ``start + length <= end``:
                # a 64-bit length must not overflow a C integer.)
                if (
                    (head == text_head or head == binary_head)
                    and length <= end - start
                    and length <= single
                    and not self.msg_opcode
                ):
                    # The usual frame: a whole uncompressed text or binary
                    # message (FIN, no RSV bit, the right MASK bit), complete,
                    # within the limits, outside a fragmented message. Every
                    # rule of _check_frame holds for it; it is unmasked and
                    # (text) validated and decoded in one kernel call.
                    text = head == text_head
                    payload = _k.frame_payload(view, start, length, mask_at, text)
                    if payload is None:
                        raise ProtocolError(CLOSE_INVALID_DATA, "invalid UTF-8 in text message")
                    pos = start + length
                    self.scan = pos
                    if self.partial_seen:
                        # The frame was seen incomplete before (early is only
                        # ever nonzero then).
                        self.early = 0
                        self.partial_seen = False
                    self.delivered += 1
                    if self.queue is not None:
                        if self.queue.put(payload, True):
                            self.paused = True
                    elif self.callback is not None:
                        self.callback(payload)
                    elif self.handler is None:
                        if text:
                            text_event = TextMessage.__new__(TextMessage)
                            text_event.data = payload
                            self.events.append(text_event)
                        else:
                            binary_event = BinaryMessage.__new__(BinaryMessage)
                            binary_event.data = payload
                            self.events.append(binary_event)
                    elif self.handler(payload, True):
                        self.paused = True
                    continue
                if hlen <= 0:
                    if hlen == 0:
                        break
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "invalid frame length")
                if (b01 & 0x80) != want_mask:
                    raise ProtocolError(
                        CLOSE_PROTOCOL_ERROR,
                        "unmasked frame from client" if want_mask else "masked frame from server",
                    )
                b0 = b01 >> 8
                fin = b0 >= 0x80
                rsv = (b0 >> 4) & 7
                opcode = b0 & 0x0F
                self._check_frame(fin, rsv, opcode, length)
                if length > end - start:
                    self._partial(data, fin, rsv, opcode, length, start, end, mask_at)
                    break
                payload = _k.frame_payload(view, start, length, mask_at, False)
                pos = start + length
                self.scan = pos
                if opcode >= 8:
                    if self.on_control(opcode, payload):
                        self.stop()
                        break
                else:
                    # Fragments and compressed messages.
                    self._data(fin, rsv, opcode, payload)
        except ProtocolError as exc:
            self._fail(exc)

    def _partial(
        self,
        view: Any,
        fin: bool,
        rsv: int,
        opcode: int,
        length: int,
        start: int,
        end: int,
        mask_at: int,
    ) -> None:
        """The frame at ``start`` is incomplete: assemble it in place, or validate early."""
        # A quarter of it there, rounded up (without overflow for a 64-bit length).
        if length >= ASSEMBLE_AT and end - start >= (length - 1) // 4 + 1:
            mask = bytes(view[mask_at : mask_at + 4]) if mask_at >= 0 else None
            self.asm = PayloadBuilder(length, mask)
            self.asm_fin = fin
            self.asm_rsv = rsv
            self.asm_opcode = opcode
            self.scan = start  # the caller feeds the rest of the bytes to the builder
            return
        if (
            not rsv
            and not self.msg_compressed
            and (opcode == OP_TEXT or (opcode == OP_CONTINUATION and self.msg_opcode == OP_TEXT))
        ):
            self._validate_early(view, start, end, mask_at, opcode == OP_TEXT)

    def _feed_assembly(self, data: Any, start: int) -> int:
        """Feed the large frame being assembled; return how many bytes of ``data`` it took."""
        asm = self.asm
        assert asm is not None
        taken: int = asm.feed(data, start)
        opcode = self.asm_opcode
        try:
            if not self.asm_rsv and (
                opcode == OP_TEXT
                or (
                    opcode == OP_CONTINUATION
                    and self.msg_opcode == OP_TEXT
                    and not self.msg_compressed
                )
            ):
                # Uncompressed text: validate the bytes as they arrive (fail
                # fast). Only the first frame of a compressed message has RSV1.
                with asm.view(self.early) as chunk:
                    self._validate_arrived(chunk, opcode == OP_TEXT)
            if asm.filled == asm.size:
                self.asm = None
                self._data(self.asm_fin, self.asm_rsv, opcode, asm.result())
        except ProtocolError as exc:
            self._fail(exc)
        return taken

    def _validate_early(self, view: Any, start: int, end: int, mask_at: int, first: bool) -> None:
        """Validate the UTF-8 of a text frame that has only partly arrived (fail fast).

        A frame that completes on the read after the one that brought its
        header (the usual case for frames up to the read size) is validated
        once, when complete; a frame still incomplete after a further read is
        validated as its bytes arrive, so invalid data fails the connection
        before the rest of the frame comes in.
        """
        done = self.early
        if start + done >= end:
            return
        if not self.partial_seen:
            self.partial_seen = True
            return
        chunk = view[start + done : end]
        if mask_at >= 0:
            phase = done & 3
            mask = bytes(view[mask_at + phase : mask_at + 4]) + bytes(
                view[mask_at : mask_at + phase]
            )
            chunk = memoryview(apply_mask(chunk, mask))
        self._validate_arrived(chunk, first)

    def _validate_arrived(self, chunk: Any, first: bool) -> None:
        """Validate the next unmasked bytes of the text frame still arriving.

        ``first``: the frame starts a message (the validator starts afresh
        with its first bytes). :attr:`early` counts the bytes validated.
        """
        if first and not self.early:
            self.utf8.reset()
        try:
            self.utf8.feed(chunk)
        except Utf8Error:
            raise ProtocolError(CLOSE_INVALID_DATA, "invalid UTF-8 in text message") from None
        self.early += len(chunk)

    def _check_frame(self, fin: bool, rsv: int, opcode: int, length: int) -> None:
        """Every rule a frame header must satisfy (RFC 6455 5.2-5.5, RFC 7692 6, limits).

        The short path of :meth:`_parse` admits the usual frame without this
        call: a rule added here that could refuse a whole, uncompressed text
        or binary frame within the limits must be added there too
        (``tests/test_reader.py`` checks that the two agree).
        """
        if opcode >= 8:
            if opcode > OP_PONG:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
            if not fin:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(
                    CLOSE_PROTOCOL_ERROR, "control frame payload longer than 125 bytes"
                )
            if rsv:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "RSV bits set on a control frame")
            return
        if opcode > OP_BINARY:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
        if rsv and (rsv != RSV1 or self.deflate is None or opcode == OP_CONTINUATION):
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "RSV bits set without a negotiated extension")
        if opcode == OP_CONTINUATION:
            if not self.msg_opcode:
                raise ProtocolError(
                    CLOSE_PROTOCOL_ERROR, "continuation frame without a message in progress"
                )
        elif self.msg_opcode:
            raise ProtocolError(
                CLOSE_PROTOCOL_ERROR, "new data message inside a fragmented message"
            )
        if 0 <= self.max_frame < length:
            raise PayloadTooBig(f"frame of {length} bytes exceeds the limit")
        if (
            self.max_message >= 0
            and not rsv
            and not (opcode == OP_CONTINUATION and self.msg_compressed)
            and (self.msg_size if opcode == OP_CONTINUATION else 0) + length > self.max_message
        ):
            raise PayloadTooBig("message exceeds the size limit")

    def _data(self, fin: bool, rsv: int, opcode: int, payload: bytes) -> None:
        """A complete data frame (the general case: fragments, compression)."""
        if opcode:
            self.msg_opcode = opcode
            self.msg_compressed = bool(rsv)
            self.msg_size = 0
            self.msg_frames = 0
            self.msg_parts = []
            # Only a message that arrives in several frames is streamed, and
            # not to a callback (it takes whole messages).
            self.msg_streamed = self.stream_messages and not fin and self.callback is None
            if opcode == OP_TEXT:
                if not self.early:
                    self.utf8.reset()
                if self.msg_streamed:
                    self.decoder = codecs.getincrementaldecoder("utf-8")()
        text = self.msg_opcode == OP_TEXT
        self.msg_frames += 1
        if 0 <= self.max_fragments < self.msg_frames:
            raise PayloadTooBig("too many fragments in one message")
        if self.msg_compressed:
            deflate = self.deflate
            assert deflate is not None
            budget = None if self.max_message < 0 else self.max_message - self.msg_size
            payload = deflate.decompress(payload, fin, budget)
        self.msg_size += len(payload)
        if 0 <= self.max_message < self.msg_size:
            raise PayloadTooBig("message exceeds the size limit")
        if text:
            early = self.early
            self.early = 0
            self.partial_seen = False
            try:
                if early:
                    self.utf8.feed(memoryview(payload)[early:], fin)
                else:
                    self.utf8.feed(payload, fin)
            except Utf8Error:
                raise ProtocolError(CLOSE_INVALID_DATA, "invalid UTF-8 in text message") from None
        if fin:
            self.msg_opcode = 0
        data: Any
        if self.msg_streamed:
            if text:
                decoder = self.decoder
                assert decoder is not None
                data = decoder.decode(payload, fin)
            else:
                data = payload
            if fin:
                self.decoder = None
            self.delivered += 1
            if self.queue is not None:
                if self.queue.put(data, fin):
                    self.paused = True
            elif self.handler is None:
                self.events.append(MessageChunk(data, text, fin))
            elif self.handler(data, fin):
                self.paused = True
            return
        self.msg_parts.append(payload)
        if not fin:
            return
        parts = self.msg_parts
        self.msg_parts = []
        whole = parts[0] if len(parts) == 1 else b"".join(parts)
        if text:
            data = whole.decode("utf-8")
        else:
            data = whole
        self.delivered += 1
        if self.queue is not None:
            if self.queue.put(data, True):
                self.paused = True
        elif self.callback is not None:
            self.callback(data)
        elif self.handler is None:
            if text:
                self.events.append(_text_message(data))
            else:
                self.events.append(_binary_message(data))
        elif self.handler(data, True):
            self.paused = True
