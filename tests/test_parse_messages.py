"""parse_messages and deliver_messages, the single-frame fast paths, on both implementations.

Random frame streams mix the frames they must consume (complete, unfragmented,
uncompressed text and binary messages with the expected MASK bit) with every
kind they must stop at: control frames, fragments, RSV bits, reserved opcodes,
the wrong MASK bit, payloads over the limit, invalid UTF-8, 64-bit lengths
with the top bit set, and streams cut at any byte. Each implementation is
checked against a reference written out here, and the two against each other.
"""

from __future__ import annotations

import array
import gc
import importlib
import struct
import sys
from dataclasses import FrozenInstanceError, dataclass
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastws.events import BinaryMessage, TextMessage

PURE = importlib.import_module("fastws._kernels_py")
try:
    SPEEDUPS: ModuleType | None = importlib.import_module("fastws._speedups")
except ImportError:
    SPEEDUPS = None

KEY = b"\x37\xfa\x21\x3d"
MAX_LENGTH = 2**63 - 1


# -- reference ------------------------------------------------------------------------


def xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    key: bytes | None = KEY,
    width: int | None = None,
) -> bytes:
    """One frame; ``width`` forces the length encoding (7, 16 or 64 bits)."""
    n = len(payload)
    if width is None:
        width = 7 if n < 126 else 16 if n < 65536 else 64
    first = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if key is not None else 0
    if width == 7:
        head = first + bytes([mask_bit | n])
    elif width == 16:
        head = first + bytes([mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head = first + bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    if key is None:
        return head + payload
    return head + key + xor(payload, key)


def reference(
    buf: bytes, pos: int, is_server: bool, max_size: int
) -> tuple[int, list[tuple[str, str | bytes]]]:
    """What parse_messages must do, straight from its definition."""
    out: list[tuple[str, str | bytes]] = []
    while True:
        rest = buf[pos:]
        if len(rest) < 2:
            break
        fin, rsv, opcode = rest[0] >> 7, (rest[0] >> 4) & 7, rest[0] & 15
        masked, length = rest[1] >> 7, rest[1] & 127
        if not fin or rsv or opcode not in (1, 2) or bool(masked) != is_server:
            break
        size = 2
        if length == 126:
            if len(rest) < 4:
                break
            length, size = int.from_bytes(rest[2:4], "big"), 4
        elif length == 127:
            if len(rest) < 10:
                break
            length, size = int.from_bytes(rest[2:10], "big"), 10
            if length > MAX_LENGTH:
                break
        key = rest[size : size + 4] if masked else None
        size += 4 if masked else 0
        if len(rest) < size + length or (max_size >= 0 and length > max_size):
            break
        payload = rest[size : size + length]
        if key is not None:
            payload = xor(payload, key)
        if opcode == 1:
            try:
                out.append(("text", payload.decode("utf-8")))
            except UnicodeDecodeError:
                break
        else:
            out.append(("binary", payload))
        pos += size + length
    return pos, out


def as_pairs(events: list[Any]) -> list[tuple[str, str | bytes]]:
    pairs: list[tuple[str, str | bytes]] = []
    for event in events:
        if type(event) is TextMessage:
            assert type(event.data) is str
            assert event == TextMessage(event.data)
            pairs.append(("text", event.data))
        else:
            assert type(event) is BinaryMessage
            assert type(event.data) is bytes
            assert event == BinaryMessage(event.data)
            pairs.append(("binary", event.data))
    return pairs


def run(
    kernels: ModuleType, buf: Any, pos: int, is_server: bool, max_size: int
) -> tuple[int, list[tuple[str, str | bytes]]]:
    events: list[Any] = ["sentinel"]
    end = kernels.parse_messages(buf, pos, is_server, max_size, events, TextMessage, BinaryMessage)
    assert events[0] == "sentinel"  # appended to, never replaced
    return end, as_pairs(events[1:])


def implementations() -> list[ModuleType]:
    return [PURE] if SPEEDUPS is None else [PURE, SPEEDUPS]


def check(buf: bytes, pos: int, is_server: bool, max_size: int) -> None:
    """Every implementation, on bytes and bytearray, agrees with the reference."""
    expected = reference(buf, pos, is_server, max_size)
    for kernels in implementations():
        assert run(kernels, buf, pos, is_server, max_size) == expected, kernels.__name__
        assert run(kernels, bytearray(buf), pos, is_server, max_size) == expected


# -- random streams -------------------------------------------------------------------

TEXTS = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40),
    st.text(max_size=40),
)
INVALID_UTF8 = st.sampled_from(
    [b"\xff", b"abc\x80", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"caf\xc3\xa9\xc3"]
)


@st.composite
def frames(draw: st.DrawFn, is_server: bool) -> bytes:
    """One frame: mostly ones parse_messages takes, and every kind it refuses."""
    key = draw(st.binary(min_size=4, max_size=4)) if is_server else None
    kind = draw(
        st.sampled_from(
            ["text"] * 4
            + ["binary"] * 3
            + ["long", "control", "fragment", "rsv", "opcode", "mask", "utf8", "msb"]
        )
    )
    if kind == "text":
        return frame(1, draw(TEXTS).encode(), key=key, width=draw(st.sampled_from([None, 16, 64])))
    if kind == "binary":
        return frame(2, draw(st.binary(max_size=40)), key=key)
    if kind == "long":  # 16- and 64-bit lengths, and the stack/heap text boundary
        size = draw(st.sampled_from([125, 126, 1023, 1024, 1025, 3000, 65536]))
        opcode = draw(st.sampled_from([1, 2]))
        char = draw(st.sampled_from(["a", "\u00e9"])) if opcode == 1 else "b"
        payload = (char * size).encode()[:size]
        payload = payload.decode("utf-8", "ignore").encode()
        return frame(opcode, payload, key=key)
    if kind == "control":
        opcode = draw(st.sampled_from([8, 9, 10]))
        return frame(opcode, draw(st.binary(max_size=10)), key=key)
    if kind == "fragment":
        if draw(st.booleans()):
            return frame(draw(st.sampled_from([1, 2])), b"part", fin=False, key=key)
        return frame(0, b"cont", key=key)
    if kind == "rsv":
        return frame(1, b"deflated?", rsv=draw(st.integers(1, 7)), key=key)
    if kind == "opcode":
        return frame(draw(st.sampled_from([3, 7, 11, 15])), b"x", key=key)
    if kind == "mask":  # the MASK bit this role must not receive
        return frame(1, b"wrong", key=None if is_server else KEY)
    if kind == "utf8":
        return frame(1, draw(INVALID_UTF8), key=key)
    # 64-bit length with the most significant bit set (no payload follows)
    return bytes([0x82, (0x80 if is_server else 0) | 127]) + b"\x80" + bytes(7) + (key or b"")


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, bool, int, int]:
    is_server = draw(st.booleans())
    buf = b"".join(draw(st.lists(frames(is_server), max_size=12)))
    cut = draw(st.integers(0, len(buf)))
    buf = buf[:cut] if draw(st.booleans()) else buf
    pos = draw(st.integers(0, min(len(buf), 4))) if draw(st.booleans()) else 0
    max_size = draw(st.sampled_from([-1, -5, 0, 3, 40, 1024, 1 << 20, sys.maxsize]))
    return buf, is_server, max_size, pos


@given(streams())
def test_random_streams(sample: tuple[bytes, bool, int, int]) -> None:
    buf, is_server, max_size, pos = sample
    check(buf, pos, is_server, max_size)


@given(st.lists(st.one_of(TEXTS.map(str.encode), st.binary(max_size=30)), max_size=6))
def test_every_cut(payloads: list[bytes]) -> None:
    # A stream cut anywhere: the frames before the cut are consumed, the
    # incomplete one is not.
    buf = b"".join(frame(1 if i % 2 else 2, p) for i, p in enumerate(payloads))
    for cut in range(len(buf) + 1):
        check(buf[:cut], 0, True, -1)


def test_every_cut_of_each_length_encoding(kernels: ModuleType) -> None:
    for payload, width in [(b"x" * 5, 7), (b"y" * 5, 16), (b"z" * 300, 16), (b"w" * 5, 64)]:
        for key in (KEY, None):
            one = frame(1, payload, key=key, width=width)
            for cut in range(len(one)):
                assert run(kernels, one[:cut], 0, key is not None, -1) == (0, [])
            assert run(kernels, one, 0, key is not None, -1) == (
                len(one),
                [("text", payload.decode())],
            )


# -- specific frames ------------------------------------------------------------------


def test_consumes_messages(kernels: ModuleType) -> None:
    buf = frame(1, b"Hello") + frame(2, b"\x00\xff") + frame(1, "h\u00e9\u20ac\U0001f600".encode())
    assert run(kernels, buf, 0, True, -1) == (
        len(buf),
        [("text", "Hello"), ("binary", b"\x00\xff"), ("text", "h\u00e9\u20ac\U0001f600")],
    )
    # the client side: unmasked frames
    buf = frame(1, b"Hello", key=None) + frame(2, b"", key=None) + frame(1, b"", key=None)
    assert run(kernels, buf, 0, False, -1) == (
        len(buf),
        [("text", "Hello"), ("binary", b""), ("text", "")],
    )


@pytest.mark.parametrize(
    "stopper",
    [
        frame(9, b"ping"),
        frame(10, b""),
        frame(8, b"\x03\xe8"),
        frame(1, b"frag", fin=False),
        frame(0, b"cont"),
        frame(1, b"x", rsv=4),
        frame(2, b"x", rsv=1),
        frame(3, b"x"),
        frame(1, b"unmasked", key=None),
        frame(1, b"\xc3\x28"),
        frame(1, b"\xed\xa0\x80"),  # surrogate
        frame(1, b"\xc3"),  # truncated sequence
        b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" + KEY,  # 64-bit length, MSB set
        b"\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff" + KEY,
        frame(2, b"y" * 101),  # over max_size
        frame(1, b"y" * 5)[:-1],  # incomplete payload
        b"\x81",  # incomplete header
        b"\x81\xfe\x00",
        b"\x81\xff\x00\x00\x00",
        b"\x81\x85\x37\xfa",  # incomplete masking key
    ],
)
def test_stops_without_consuming(kernels: ModuleType, stopper: bytes) -> None:
    head = frame(1, b"before")
    tail = frame(2, b"after")
    buf = head + stopper + tail
    assert run(kernels, buf, 0, True, 100) == (len(head), [("text", "before")])
    assert run(kernels, buf, len(head), True, 100) == (len(head), [])


def test_max_size(kernels: ModuleType) -> None:
    buf = frame(2, b"12345") + frame(1, b"123456")
    assert run(kernels, buf, 0, True, 5)[0] == len(frame(2, b"12345"))
    assert run(kernels, buf, 0, True, 6)[0] == len(buf)
    assert run(kernels, buf, 0, True, -1)[0] == len(buf)
    assert run(kernels, buf, 0, True, 0)[0] == 0
    assert run(kernels, frame(2, b"") * 3, 0, True, 0)[0] == 3 * len(frame(2, b""))


def test_large_payloads(kernels: ModuleType) -> None:
    text = ("\u00e9" * 40000 + "x" * 70000)[:90000]
    blob = bytes(range(256)) * 300
    buf = frame(1, text.encode()) + frame(2, blob) + frame(1, b"a" * 70000)
    assert run(kernels, buf, 0, True, -1) == (
        len(buf),
        [("text", text), ("binary", blob), ("text", "a" * 70000)],
    )
    bad = frame(1, b"a" * 5000 + b"\xff")
    assert run(kernels, bad + buf, 0, True, -1) == (0, [])


def test_non_minimal_lengths_are_accepted(kernels: ModuleType) -> None:
    # Minimal length encoding is not enforced (neither is it by the protocol).
    buf = frame(1, b"hi", width=16) + frame(2, b"yo", width=64)
    assert run(kernels, buf, 0, True, -1) == (len(buf), [("text", "hi"), ("binary", b"yo")])


@pytest.mark.parametrize(
    "wrap",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: memoryview(b"..." + b + b"...")[3:-3],
        lambda b: array.array("B", b),
        lambda b: memoryview(bytearray(b)).cast("c"),
    ],
)
def test_buffer_types(kernels: ModuleType, wrap: Any) -> None:
    buf = frame(1, b"one") + frame(2, b"two") + frame(9, b"")
    assert run(kernels, wrap(buf), 0, True, -1) == (
        len(buf) - 6,
        [("text", "one"), ("binary", b"two")],
    )


def test_events_are_like_constructed_ones(kernels: ModuleType) -> None:
    events: list[Any] = []
    buf = frame(1, b"text") + frame(2, b"bin")
    kernels.parse_messages(buf, 0, True, -1, events, TextMessage, BinaryMessage)
    text, binary = events
    assert text == TextMessage("text") and binary == BinaryMessage(b"bin")
    assert hash(text) == hash(TextMessage("text"))
    assert hash(binary) == hash(BinaryMessage(b"bin"))
    assert repr(text) == "TextMessage(data='text')"
    assert repr(binary) == "BinaryMessage(data=b'bin')"
    assert {text, binary} == {TextMessage("text"), BinaryMessage(b"bin")}
    with pytest.raises(FrozenInstanceError):
        text.data = "other"
    with pytest.raises(FrozenInstanceError):
        del binary.data


def test_events_are_freed(kernels: ModuleType) -> None:
    buf = (frame(1, b"x" * 20) + frame(2, b"y" * 20)) * 50
    before = sys.getrefcount(TextMessage), sys.getrefcount(BinaryMessage)
    for _ in range(20):
        events: list[Any] = []
        kernels.parse_messages(buf, 0, True, -1, events, TextMessage, BinaryMessage)
        assert len(events) == 100
        del events
    gc.collect()
    assert (sys.getrefcount(TextMessage), sys.getrefcount(BinaryMessage)) == before


def test_subclasses_and_other_classes(kernels: ModuleType) -> None:
    @dataclass(frozen=True, slots=True)
    class Text(TextMessage):
        pass

    class Plain:
        # a property: set through its __set__
        def __init__(self) -> None:
            self._data: object = None

        @property
        def data(self) -> object:
            return self._data

        @data.setter
        def data(self, value: object) -> None:
            self._data = value

    class Slotted:
        __slots__ = ("data", "extra")

    events: list[Any] = []
    buf = frame(1, b"t") + frame(2, b"b")
    assert kernels.parse_messages(buf, 0, True, -1, events, Text, Plain) == len(buf)
    assert type(events[0]) is Text and events[0].data == "t"
    assert type(events[1]) is Plain and events[1].data == b"b"
    slotted: list[Any] = []
    assert kernels.parse_messages(buf, 0, True, -1, slotted, Slotted, Slotted) == len(buf)
    assert [e.data for e in slotted] == ["t", b"b"]
    slotted[0].extra = slotted[0]  # an ordinary class: its instances can be in cycles
    assert gc.is_tracked(slotted[0])


def test_same_setter_errors() -> None:
    # A descriptor whose __set__ refuses the instance: the error propagates.
    class Other:
        __slots__ = ("data",)

    class Borrower:
        data = Other.__dict__["data"]

    buf = frame(1, b"t")
    errors = []
    for kernels in implementations():
        events: list[Any] = []
        with pytest.raises(TypeError) as info:
            kernels.parse_messages(buf, 0, True, -1, events, Borrower, BinaryMessage)
        errors.append(str(info.value))
        assert kernels.parse_messages(buf[:3], 0, True, -1, events, Borrower, Borrower) == 0
    assert len(set(errors)) == 1


def test_buffer_is_held_for_the_whole_call() -> None:
    # A bytearray cannot be resized while parse_messages runs.
    buf = bytearray(frame(1, b"a") + frame(1, b"b"))
    seen = []

    class Resizer:
        @property
        def data(self) -> object:
            return None

        @data.setter
        def data(self, value: object) -> None:
            try:
                buf.extend(b"!")
            except BufferError:
                seen.append(value)

    for kernels in implementations():
        seen.clear()
        events: list[Any] = []
        assert kernels.parse_messages(buf, 0, True, -1, events, Resizer, Resizer) == len(buf)
        assert seen == ["a", "b"]


# -- arguments ------------------------------------------------------------------------


class Abstract:
    __slots__ = ("data",)


Abstract.__abstractmethods__ = frozenset({"f"})  # type: ignore[attr-defined]  # sets Py_TPFLAGS_IS_ABSTRACT


class OwnNew:
    __slots__ = ("data",)

    def __new__(cls) -> Any:
        return object.__new__(cls)


class NoData:
    __slots__ = ("other",)


class ReadOnly:
    data = 3


GOOD: tuple[object, ...] = (frame(1, b"x"), 0, True, -1, [], TextMessage, BinaryMessage)


def bad(index: int, value: object) -> tuple[object, ...]:
    args = list(GOOD)
    args[index] = value
    return tuple(args)


@pytest.mark.parametrize(
    "args",
    [
        bad(0, "text"),
        bad(0, None),
        bad(0, memoryview(bytearray(8))[::2]),
        bad(1, -1),
        bad(1, 8),
        bad(1, 2**70),
        bad(1, -(2**70)),
        bad(1, 1.0),
        bad(1, None),
        bad(3, None),
        bad(3, 1.5),
        bad(4, ()),
        bad(4, None),
        bad(5, None),
        bad(5, int),
        bad(5, Abstract),
        bad(5, OwnNew),
        bad(5, NoData),
        bad(5, ReadOnly),
        bad(6, 3),
    ],
)
def test_same_errors(speedups: ModuleType, args: tuple[object, ...]) -> None:
    with pytest.raises((TypeError, ValueError)) as from_c:
        speedups.parse_messages(*args)
    with pytest.raises((TypeError, ValueError)) as from_python:
        PURE.parse_messages(*args)
    assert type(from_python.value) is type(from_c.value)
    assert str(from_python.value) == str(from_c.value)


def test_integer_like_arguments(kernels: ModuleType) -> None:
    class Index:
        def __init__(self, value: int) -> None:
            self.value = value

        def __index__(self) -> int:
            return self.value

    buf = frame(1, b"a") + frame(1, b"b")
    events: list[Any] = []
    assert kernels.parse_messages(buf, Index(0), 1, Index(-1), events, TextMessage, BinaryMessage)
    assert kernels.parse_messages(buf, 0, 0, 2**80, events, TextMessage, BinaryMessage) == 0
    assert kernels.parse_messages(buf, len(buf), True, -(2**80), events, TextMessage, BinaryMessage)
    assert len(events) == 2


def test_signature(kernels: ModuleType) -> None:
    events: list[Any] = []
    buf = struct.pack("!BB", 0x82, 0x80) + KEY
    assert (
        kernels.parse_messages(
            buf, 0, True, -1, events, text_cls=TextMessage, binary_cls=BinaryMessage
        )
        == 6
    )
    assert events == [BinaryMessage(b"")]


def test_c_events_are_not_tracked_by_the_cycle_collector(speedups: ModuleType) -> None:
    # An event made of its data slot alone holds a str or bytes: it cannot be
    # in a cycle, so the C version leaves it to reference counting.
    events: list[Any] = []
    buf = frame(1, b"t") + frame(2, b"b")
    speedups.parse_messages(buf, 0, True, -1, events, TextMessage, BinaryMessage)
    assert not any(gc.is_tracked(e) for e in events)
    assert events == [TextMessage("t"), BinaryMessage(b"b")]


# -- deliver_messages: the same loop, with a callback ---------------------------------


class Target:
    """Holds the callback that deliver_messages looks up before each message."""

    def __init__(self, callback: Any = None) -> None:
        self.received: list[tuple[str, str | bytes]] = []
        self.on_message: Any = self.record if callback is None else callback

    def record(self, data: str | bytes) -> None:
        self.received.append(("text" if type(data) is str else "binary", data))


def deliver(
    kernels: ModuleType, buf: Any, pos: int, is_server: bool, max_size: int
) -> tuple[int, list[tuple[str, str | bytes]]]:
    target = Target()
    failures: list[Exception] = []
    end = kernels.deliver_messages(buf, pos, is_server, max_size, target, "on_message", failures)
    assert failures == []
    return end, target.received


@given(streams())
def test_deliver_random_streams(sample: tuple[bytes, bool, int, int]) -> None:
    # Exactly the messages parse_messages takes, in order, to the callback.
    buf, is_server, max_size, pos = sample
    expected = reference(buf, pos, is_server, max_size)
    for kernels in implementations():
        assert deliver(kernels, buf, pos, is_server, max_size) == expected, kernels.__name__
        assert deliver(kernels, bytearray(buf), pos, is_server, max_size) == expected


def test_deliver_looks_the_callback_up_before_each_message(kernels: ModuleType) -> None:
    buf = frame(1, b"one") + frame(2, b"two") + frame(1, b"three") + frame(2, b"four")
    other = Target()
    target = Target()

    def switch(data: str | bytes) -> None:
        target.record(data)
        if data == b"two":
            target.on_message = other.record  # the next message goes to the new callback

    target.on_message = switch
    failures: list[Exception] = []
    assert kernels.deliver_messages(buf, 0, True, -1, target, "on_message", failures) == len(buf)
    assert target.received == [("text", "one"), ("binary", b"two")]
    assert other.received == [("text", "three"), ("binary", b"four")]

    # None stops the loop before the next frame, which stays unconsumed.
    def stop(data: str | bytes) -> None:
        target.received.append(("text", data))  # type: ignore[arg-type]
        target.on_message = None

    target = Target(stop)
    end = kernels.deliver_messages(buf, 0, True, -1, target, "on_message", failures)
    assert end == len(frame(1, b"one"))
    assert target.received == [("text", "one")]
    assert kernels.deliver_messages(buf, end, True, -1, target, "on_message", failures) == end
    assert failures == []


def test_deliver_collects_the_callback_error(kernels: ModuleType) -> None:
    buf = frame(1, b"ok") + frame(2, b"boom") + frame(1, b"later")
    target = Target()
    error = ValueError("callback failed")

    def fail_on_boom(data: str | bytes) -> None:
        target.record(data)
        if data == b"boom":
            raise error

    target.on_message = fail_on_boom
    failures: list[Exception] = ["earlier"]  # type: ignore[list-item]
    end = kernels.deliver_messages(buf, 0, True, -1, target, "on_message", failures)
    # The failing message counts as consumed; the loop stops after it.
    assert end == len(frame(1, b"ok") + frame(2, b"boom"))
    assert failures == ["earlier", error]
    assert failures[1].__traceback__ is not None
    assert target.received == [("text", "ok"), ("binary", b"boom")]
    # Called again, it goes on from there.
    failures.clear()
    assert kernels.deliver_messages(buf, end, True, -1, target, "on_message", failures) == len(buf)
    assert target.received[-1] == ("text", "later") and failures == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_deliver_lets_base_exceptions_through(kernels: ModuleType, exc: type) -> None:
    def callback(data: object) -> None:
        raise exc()

    failures: list[Exception] = []
    with pytest.raises(exc):
        kernels.deliver_messages(
            frame(1, b"x") * 2, 0, True, -1, Target(callback), "on_message", failures
        )
    assert failures == []


def test_deliver_holds_the_buffer_and_frees_everything(kernels: ModuleType) -> None:
    buf = bytearray(frame(1, b"a") + frame(2, b"b"))
    seen: list[object] = []

    def resize(data: object) -> None:
        try:
            buf.extend(b"!")
        except BufferError:
            seen.append(data)

    target = Target(resize)
    before = sys.getrefcount(resize)
    for _ in range(50):
        kernels.deliver_messages(buf, 0, True, -1, target, "on_message", [])
    assert seen == ["a", b"b"] * 50
    del seen[:]
    gc.collect()
    assert sys.getrefcount(resize) == before


def test_deliver_argument_errors(kernels: ModuleType) -> None:
    buf = frame(1, b"x")
    target = Target()
    with pytest.raises(TypeError, match="attr must be a str"):
        kernels.deliver_messages(buf, 0, True, -1, target, b"on_message", [])
    with pytest.raises(TypeError, match="failures must be a list"):
        kernels.deliver_messages(buf, 0, True, -1, target, "on_message", ())
    with pytest.raises(ValueError, match=r"pos must be in 0\.\.7"):
        kernels.deliver_messages(buf, 8, True, -1, target, "on_message", [])
    with pytest.raises(ValueError, match="pos must be in"):
        kernels.deliver_messages(buf, -1, True, -1, target, "on_message", [])
    with pytest.raises(TypeError):
        kernels.deliver_messages(buf, "0", True, -1, target, "on_message", [])
    with pytest.raises(TypeError):
        kernels.deliver_messages(object(), 0, True, -1, target, "on_message", [])
    with pytest.raises(AttributeError):
        kernels.deliver_messages(buf, 0, True, -1, target, "missing", [])
    # Nothing to deliver: the attribute is not even looked up.
    assert kernels.deliver_messages(b"\x81", 0, True, -1, target, "missing", []) == 0
    assert target.received == []
