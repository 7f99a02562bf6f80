"""Pure-Python twin of the C kernels in ``fastws._speedups``.

Same names, same behaviour, same exceptions as the extension (see
``docs/kernels.md``); only the speed differs. Each function leans on the
fastest primitive CPython offers for the job:

* masking turns the whole buffer into one big integer and XORs it with the
  key repeated to the same length, so the loop runs in C inside ``int``;
* UTF-8 validation runs CPython's own UTF-8 decoder, which stops at the first
  byte that cannot continue a valid sequence; the one case it leaves open
  (a surrogate prefix ``ED A0..BF`` waiting for more input) is checked here;
* frame headers are packed and unpacked with :mod:`struct`;
* ``frame_header`` and ``frame_payload`` are the two kernels of the frame
  reader (:mod:`fastws._reader_py`); the compiled reader calls their C
  twins directly.
"""

from __future__ import annotations

import codecs
import operator
import struct
from typing import TYPE_CHECKING, Any

from fastws.exceptions import Utf8Error

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "Utf8Validator",
    "apply_mask",
    "decode_header",
    "encode_frame",
    "encode_header",
    "frame_message",
    "mask_inplace",
    "validate_utf8",
]

_utf8_decode = codecs.utf_8_decode
_from_bytes = int.from_bytes
_pack_short = struct.Struct("!BB").pack
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_unpack_medium = struct.Struct("!H").unpack_from
_unpack_long = struct.Struct("!Q").unpack_from

_MAX_LENGTH = (1 << 63) - 1
# key * _REPEAT[n] is a 32-bit key repeated n times, for payloads of up to
# _REPEAT_MAX bytes (frame_payload).
_REPEAT_MAX = 256
_REPEAT = [((1 << (32 * n)) - 1) // 0xFFFFFFFF for n in range(_REPEAT_MAX // 4 + 1)]


def _byte_view(obj: Buffer) -> memoryview:
    """Return a flat, C-contiguous view of ``obj``'s bytes.

    Raises:
        TypeError: ``obj`` does not support the buffer protocol, or its
            memory is not C-contiguous.
    """
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not {type(obj).__name__!r}") from None
    if view.format != "B" or view.ndim != 1:
        if not view.c_contiguous:
            raise TypeError("buffer must be C-contiguous")
        view = view.cast("B")
    elif not view.c_contiguous:
        raise TypeError("buffer must be C-contiguous")
    return view


def _mask_key(mask: Buffer) -> bytes:
    """Return the masking key as 4 bytes, or raise ``TypeError``/``ValueError``."""
    if type(mask) is bytes:
        key = mask
    else:
        key = _byte_view(mask).tobytes()
    if len(key) != 4:
        raise ValueError(f"mask must be 4 bytes long, got {len(key)}")
    return key


def _xor(data: Buffer, key: bytes, n: int) -> bytes:
    """``data[i] ^ key[i % 4]`` for the first ``n`` bytes of ``data`` (``n`` > 0)."""
    reps, extra = divmod(n, 4)
    stream = key * reps + key[:extra] if extra else key * reps
    value = _from_bytes(data, "little") ^ _from_bytes(stream, "little")
    return value.to_bytes(n, "little")


def apply_mask(data: Buffer, mask: Buffer) -> bytes:
    """Return a new ``bytes`` with ``data[i] ^ mask[i % 4]``.

    Args:
        data: the bytes to mask or unmask.
        mask: the 4-byte masking key.

    Raises:
        TypeError: an argument is not a C-contiguous buffer.
        ValueError: ``mask`` is not exactly 4 bytes long.
    """
    key = _mask_key(mask)
    if type(data) is not bytes:
        data = _byte_view(data)
    n = len(data)
    if n == 0:
        return b""
    return _xor(data, key, n)


def mask_inplace(buffer: Buffer, mask: Buffer, phase: int = 0) -> None:
    """XOR ``buffer`` in place with ``mask``: ``buffer[i] ^= mask[(phase + i) % 4]``.

    To unmask a payload that arrives in several chunks, pass the phase of
    each chunk: the next chunk's phase is ``(phase + len(chunk)) % 4``.

    Args:
        buffer: a writable buffer.
        mask: the 4-byte masking key.
        phase: position in the key of ``buffer[0]``, 0..3.

    Raises:
        TypeError: an argument is not a C-contiguous buffer, ``buffer`` is
            read-only, or ``phase`` is not an integer.
        ValueError: ``mask`` is not 4 bytes long or ``phase`` is not in 0..3.
    """
    target: bytearray | memoryview
    if type(buffer) is bytearray:
        target = buffer
    else:
        target = _byte_view(buffer)
        if target.readonly:
            raise TypeError(f"buffer must be writable, got a read-only {type(buffer).__name__!r}")
    key = _mask_key(mask)
    if type(phase) is not int:
        phase = operator.index(phase)
    if not 0 <= phase <= 3:
        raise ValueError(f"phase must be in 0..3, got {phase}")
    n = len(target)
    if n == 0:
        return
    if phase:
        key = key[phase:] + key[:phase]
    target[:] = _xor(target, key, n)


def validate_utf8(data: Buffer) -> bool:
    """Return ``True`` iff ``data`` is complete, valid UTF-8.

    Raises:
        TypeError: ``data`` is not a C-contiguous buffer.
    """
    if type(data) is not bytes:
        data = _byte_view(data)
    try:
        _utf8_decode(data, "strict", True)
    except UnicodeDecodeError:
        return False
    return True


class Utf8Validator:
    """Incremental UTF-8 validator that fails as early as possible.

    Feed the fragments of a text message as they arrive; :meth:`feed`
    raises :class:`~fastws.exceptions.Utf8Error` as soon as the bytes fed so
    far cannot be the beginning of valid UTF-8. A code point may be split
    between fragments anywhere.
    """

    __slots__ = ("_error", "_pending", "_start")

    def __init__(self) -> None:
        # Bytes before ``_start`` are complete, valid code points; ``_pending``
        # holds the 0..3 bytes of a code point that is not complete yet.
        self._start = 0
        self._pending = b""
        self._error: Utf8Error | None = None

    @property
    def position(self) -> int:
        """Number of bytes accepted so far (after an error: the error position)."""
        if self._error is not None:
            return self._error.position
        return self._start + len(self._pending)

    @property
    def complete(self) -> bool:
        """``True`` when the input so far does not end inside a code point.

        ``False`` after an error.
        """
        return not self._pending and self._error is None

    def reset(self) -> None:
        """Forget everything fed so far, including an error."""
        self._start = 0
        self._pending = b""
        self._error = None

    def _fail(self, position: int, incomplete: bool = False) -> Utf8Error:
        self._error = Utf8Error(position, incomplete)
        return Utf8Error(position, incomplete)

    def feed(self, data: Buffer, final: bool = False) -> None:
        """Validate the next fragment.

        Args:
            data: the next bytes of the message.
            final: ``True`` for the last fragment: the input must then not
                end inside a code point.

        Raises:
            Utf8Error: the input so far cannot be the prefix of valid UTF-8
                (or, with ``final``, ends inside a code point). The error
                repeats on every later call until :meth:`reset`.
            TypeError: ``data`` is not a C-contiguous buffer.
        """
        error = self._error
        if error is not None:
            raise Utf8Error(error.position, error.incomplete)
        view = _byte_view(data)
        start = self._start
        pending = self._pending
        if pending:
            # Finish the pending code point on a small copy; 3 more bytes
            # always suffice to complete it or to prove it invalid.
            head = pending + view[:3].tobytes()
            try:
                _, used = _utf8_decode(head, "strict", False)
            except UnicodeDecodeError as exc:
                raise self._fail(start + exc.start) from None
            if used == 0:
                # Still inside the same code point: all of ``view`` is in head.
                self._pending = head
                self._check_tail(final)
                return
            start += used
            view = view[used - len(pending) :]
        try:
            _, used = _utf8_decode(view, "strict", False)
        except UnicodeDecodeError as exc:
            raise self._fail(start + exc.start) from None
        self._start = start + used
        self._pending = view[used:].tobytes() if used != len(view) else b""
        self._check_tail(final)

    def _check_tail(self, final: bool) -> None:
        pending = self._pending
        if not pending:
            return
        # CPython's decoder accepts ED A0..BF as a prefix (for the
        # "surrogatepass" handler); in strict UTF-8 it starts a surrogate.
        if len(pending) > 1 and pending[0] == 0xED and pending[1] > 0x9F:
            raise self._fail(self._start)
        if final:
            raise self._fail(self._start, incomplete=True)


def ByteView(data: Buffer) -> Any:
    """The bytes of a buffer, indexable: ``data`` itself for bytes and bytearray."""
    if type(data) is bytes or type(data) is bytearray:
        return data
    return _byte_view(data)


def frame_header(buf: Any, pos: int) -> tuple[int, int, int]:
    """The frame header at ``buf[pos]``: ``(header_length, payload_length, first_two_bytes)``.

    The twin of the C function of the same name (and of ``fws_header_decode``
    in ``csrc/frame.c``): ``(0, 0, 0)`` while the header is incomplete, and
    ``(-1, 0, 0)`` for a 64-bit length with its most significant bit set, as
    soon as its 8 bytes are there. ``buf`` is indexable bytes (bytes,
    bytearray or a byte memoryview, from :func:`ByteView`); ``pos`` is in
    ``0..len(buf)``. ``first_two_bytes`` is ``byte0 << 8 | byte1``.
    """
    available = len(buf) - pos
    if available < 2:
        return 0, 0, 0
    second = buf[pos + 1]
    length = second & 0x7F
    if length < 126:  # the usual case first: it runs once per received frame
        if second < 0x80:
            return 2, length, (buf[pos] << 8) | second
        if available < 6:
            return 0, 0, 0
        return 6, length, (buf[pos] << 8) | second
    if length == 126:
        if available < 4:
            return 0, 0, 0
        (length,) = _unpack_medium(buf, pos + 2)
        size = 4
    else:
        if available < 10:
            return 0, 0, 0
        (length,) = _unpack_long(buf, pos + 2)
        if length > _MAX_LENGTH:
            return -1, 0, 0
        size = 10
    if second & 0x80:
        size += 4
        if available < size:
            return 0, 0, 0
    return size, length, (buf[pos] << 8) | second


def frame_payload(buf: Any, start: int, length: int, mask_at: int, text: bool) -> Any:
    """The payload ``buf[start:start + length]``, unmasked with the key at ``buf[mask_at]``.

    No unmasking when ``mask_at`` is negative. Returns the decoded ``str``
    with ``text`` (``None`` if it is not valid UTF-8), else ``bytes``. The
    twin of the C function of the same name.
    """
    # This runs once per received frame: _xor is inlined, and no slice that
    # is already bytes is copied again.
    if length == 0:
        return "" if text else b""
    if mask_at < 0:
        payload = buf[start : start + length]
        if type(payload) is not bytes:
            payload = bytes(payload)
    elif mask_at + 4 == start and length <= _REPEAT_MAX:
        # A short payload right after its key, as in a frame: one integer
        # holds both (the key in its low 32 bits); the key is repeated by a
        # multiplication.
        words = (length + 3) >> 2
        value = _from_bytes(buf[mask_at : start + length], "little")
        stream = (value & 0xFFFFFFFF) * _REPEAT[words]
        payload = ((value >> 32) ^ stream).to_bytes(words << 2, "little")
        if length & 3:
            payload = payload[:length]
    else:
        key = buf[mask_at : mask_at + 4]
        if type(key) is memoryview:
            key = key.tobytes()
        extra = length & 3
        stream = key * (length >> 2) + key[:extra] if extra else key * (length >> 2)
        value = _from_bytes(buf[start : start + length], "little") ^ _from_bytes(stream, "little")
        payload = value.to_bytes(length, "little")
    if text:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return payload


def decode_header(
    data: Buffer, offset: int = 0
) -> tuple[bool, int, int, int, bytes | None, int] | None:
    """Decode the frame header that starts at ``data[offset]``.

    Returns:
        ``(fin, rsv, opcode, payload_length, mask, header_length)``, or
        ``None`` when the whole header is not available yet (a 64-bit length
        with its most significant bit set is an error as soon as its 8 bytes
        are available, even before the masking key). ``rsv`` holds
        the three RSV bits (RSV1 = 4); ``mask`` is ``None`` for an unmasked
        frame.

    Raises:
        TypeError: ``data`` is not a C-contiguous buffer.
        ValueError: ``offset`` is outside ``0..len(data)`` or the 64-bit
            payload length has its most significant bit set.
    """
    if type(data) is not bytes:
        data = _byte_view(data)
    offset = operator.index(offset)
    if offset < 0 or offset > len(data):
        raise ValueError(f"offset must be in 0..{len(data)}, got {offset}")
    size, length, _ = frame_header(data, offset)
    if size == 0:
        return None
    if size < 0:
        raise ValueError("invalid frame length: most significant bit of the 64-bit length is set")
    first = data[offset]
    masked = data[offset + 1] & 0x80
    mask = bytes(data[offset + size - 4 : offset + size]) if masked else None
    return (first > 0x7F, (first >> 4) & 7, first & 0x0F, length, mask, size)


def encode_header(
    fin: bool,
    opcode: int,
    payload_length: int,
    mask: Buffer | None = None,
    rsv: int = 0,
) -> bytes:
    """Return the 2..14 byte frame header, with the minimal length encoding.

    Raises:
        TypeError: an integer argument is not an integer, or ``mask`` is
            not a buffer.
        ValueError: ``opcode`` is not in 0..15, ``rsv`` not in 0..7,
            ``payload_length`` not in 0..2**63-1, or ``mask`` not 4 bytes.
    """
    opcode = operator.index(opcode)
    rsv = operator.index(rsv)
    payload_length = operator.index(payload_length)
    if not 0 <= opcode <= 15:
        raise ValueError(f"opcode must be in 0..15, got {opcode}")
    if not 0 <= rsv <= 7:
        raise ValueError(f"rsv must be in 0..7, got {rsv}")
    if not 0 <= payload_length <= _MAX_LENGTH:
        raise ValueError(f"payload_length must be in 0..2**63-1, got {payload_length}")
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    if mask is None:
        if payload_length < 126:
            return _pack_short(first, payload_length)
        if payload_length < 65536:
            return _pack_medium(first, 126, payload_length)
        return _pack_long(first, 127, payload_length)
    key = _mask_key(mask)
    if payload_length < 126:
        return _pack_short(first, 0x80 | payload_length) + key
    if payload_length < 65536:
        return _pack_medium(first, 0xFE, payload_length) + key
    return _pack_long(first, 0xFF, payload_length) + key


def encode_frame(
    fin: bool,
    opcode: int,
    payload: Buffer,
    mask: Buffer | None = None,
    rsv: int = 0,
) -> bytes:
    """Return a whole frame: the header, then ``payload`` masked with ``mask``.

    Raises:
        TypeError: ``payload`` or ``mask`` is not a buffer.
        ValueError: as :func:`encode_header`.
    """
    if type(payload) is not bytes:
        payload = _byte_view(payload)
    n = len(payload)
    header = encode_header(fin, opcode, n, mask, rsv)
    if mask is None:
        return header + payload
    if n == 0:
        return header
    return header + _xor(payload, header[-4:], n)


def frame_message(out: list[bytes], message: object, mask: Buffer | None, split_at: int) -> bool:
    """Append the frame of one whole uncompressed message to the list ``out``.

    A ``str`` is sent as a text frame (UTF-8) and a ``bytes``, ``bytearray``
    or ``memoryview`` (or a subclass) as a binary frame, with FIN set, masked
    with the 4-byte ``mask`` unless it is ``None``. An unmasked payload of
    at least ``split_at`` bytes that is a ``bytes`` object, or a ``str``
    (encoded into one), is appended after its header as a second item
    instead of being copied into the frame.

    Returns:
        ``True``; ``False``, appending nothing, for any other type of message.

    Raises:
        TypeError: ``out`` is not a list, ``split_at`` not an integer, or
            ``message`` a non-contiguous memoryview.
        ValueError: ``mask`` is not 4 bytes.
        UnicodeEncodeError: ``message`` is a ``str`` with a lone surrogate.
    """
    split_at = operator.index(split_at)
    if type(out) is not list:
        raise TypeError(f"out must be a list, not {type(out).__name__!r}")
    payload: Any
    if isinstance(message, str):
        opcode = 1
        payload = str.encode(message)
    elif isinstance(message, (bytes, bytearray, memoryview)):
        opcode = 2
        payload = message
    else:
        return False
    if mask is None and type(payload) is bytes and len(payload) >= split_at:
        out.append(encode_header(True, opcode, len(payload)))
        out.append(payload)
    else:
        out.append(encode_frame(True, opcode, payload, mask))
    return True


class PayloadBuilder:
    """Assemble one frame payload of known size from pieces, unmasking as it goes.

    Args:
        size: the payload length.
        mask: the 4-byte masking key, or ``None`` for an unmasked frame.

    Raises:
        ValueError: ``size`` is negative or ``mask`` is not 4 bytes long.
        TypeError: ``mask`` is not a buffer.
    """

    __slots__ = ("_buf", "_filled", "_key", "_size")

    def __init__(self, size: int, mask: Buffer | None = None) -> None:
        size = operator.index(size)
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        self._key = None if mask is None else _mask_key(mask)
        self._buf: bytearray | None = bytearray(size)
        self._size = size
        self._filled = 0

    @property
    def size(self) -> int:
        """The payload length."""
        return self._size

    @property
    def filled(self) -> int:
        """How many payload bytes were fed so far."""
        return self._filled

    def feed(self, data: Buffer, start: int = 0) -> int:
        """Take the bytes of ``data`` from ``start``, up to what is missing.

        Returns:
            How many bytes were taken.

        Raises:
            TypeError: ``data`` is not a C-contiguous buffer.
            ValueError: ``start`` is outside ``data``, or the payload is complete.
        """
        buf = self._buf
        if buf is None:
            raise ValueError("the payload was already taken")
        view = _byte_view(data)
        start = operator.index(start)
        if start < 0 or start > len(view):
            raise ValueError(f"start {start} is outside the {len(view)} bytes of data")
        filled = self._filled
        n = min(len(view) - start, self._size - filled)
        if n:
            chunk = view[start : start + n]
            key = self._key
            if key is not None:
                phase = filled & 3
                buf[filled : filled + n] = _xor(chunk, key[phase:] + key[:phase], n)
            else:
                buf[filled : filled + n] = chunk
        self._filled = filled + n
        return n

    def view(self, start: int = 0) -> memoryview:
        """A read-only view of the payload bytes fed so far, from ``start``.

        Raises:
            ValueError: the payload was already taken.
        """
        if self._buf is None:
            raise ValueError("the payload was already taken")
        start = min(max(start, 0), self._filled)
        return memoryview(self._buf)[start : self._filled].toreadonly()

    def result(self) -> bytes:
        """The complete payload (once); the builder is empty afterwards.

        Raises:
            ValueError: bytes are still missing, or it was already taken.
        """
        buf = self._buf
        if buf is None:
            raise ValueError("the payload was already taken")
        if self._filled != self._size:
            raise ValueError(f"payload incomplete: {self._filled} of {self._size} bytes")
        self._buf = None
        return bytes(buf)
