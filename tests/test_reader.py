"""The frame reader: one rulebook for every frame, on both builds, with bounded memory.

The reader is one source (``fastws/_reader_py.py``), compiled by Cython in
the C build (``fastws._reader_c``). These tests run every check on both, and
compare them on random streams cut at random places.
"""

from __future__ import annotations

import importlib
import os
import tracemalloc
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastws import encode_frame
from fastws.exceptions import ProtocolError


def _readers() -> list[Any]:
    params: list[Any] = [pytest.param("fastws._reader_py", id="python")]
    try:
        importlib.import_module("fastws._speedups")
        importlib.import_module("fastws._reader_c")
    except ImportError:
        required = os.environ.get("FASTWS_REQUIRE_EXTENSION", "") not in ("", "0")
        mark = pytest.mark.xfail(reason="C build required", strict=True) if required else None
        params.append(
            pytest.param(
                "fastws._reader_c",
                id="c",
                marks=mark or pytest.mark.skip(reason="the C build is not available"),
            )
        )
    else:
        params.append(pytest.param("fastws._reader_c", id="c"))
    return params


@pytest.fixture(params=_readers())
def reader_mod(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


KEY = b"\x01\x02\x03\x04"


def cframe(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    return encode_frame(fin, opcode, payload, KEY, rsv)


class Recorder:
    """Control frames seen by a reader; a close stops it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bytes]] = []

    def __call__(self, opcode: int, payload: bytes) -> bool:
        self.seen.append((opcode, payload))
        return opcode == 8


def make(mod: ModuleType, **kw: Any) -> tuple[Any, Recorder]:
    control = Recorder()
    args = {
        "is_server": True,
        "max_frame_size": -1,
        "max_message_size": 1 << 20,
        "max_fragments": -1,
        "stream_messages": False,
    }
    args.update(kw)
    reader = mod.Reader(
        args["is_server"],
        args["max_frame_size"],
        args["max_message_size"],
        args["max_fragments"],
        args["stream_messages"],
        control,
    )
    return reader, control


def run(reader: Any, data: bytes, cuts: list[int] | None = None) -> tuple[list[Any], int | None]:
    """Feed ``data`` cut at ``cuts``; return (messages as (kind, data, final), error code)."""
    points = sorted({c for c in (cuts or []) if 0 < c < len(data)})
    error = None
    for a, b in zip([0, *points], [*points, len(data)], strict=True):
        exc = reader.feed(data[a:b])
        if exc is not None and error is None:
            error = exc.code
    out = []
    for event in reader.events:
        name = type(event).__name__
        final = getattr(event, "final", True)
        out.append((name, event.data, final))
    return out, error


# ------------------------------------------------------------ one rulebook


@pytest.mark.parametrize("handler", [False, True])
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (cframe(3, b"reserved opcode in a single frame"), 1002),
        (cframe(0xB, b""), 1002),
        (cframe(1, b"rsv without extension", rsv=4), 1002),
        (cframe(2, b"rsv2", rsv=2), 1002),
        (cframe(0, b"continuation without a message"), 1002),
        (cframe(1, b"\xff not utf-8"), 1007),
        (cframe(2, b"x" * 101), 1009),  # above max_message_size=100
        (encode_frame(True, 2, b"unmasked from a client"), 1002),
        (b"\x82\xff\x80" + b"\0" * 7 + KEY, 1002),  # 64-bit length with the MSB set
    ],
)
def test_every_rule_applies_to_single_frame_messages(
    reader_mod: ModuleType, frame: bytes, code: int, handler: bool
) -> None:
    # The most common frame (a whole message in one frame) goes through the
    # same rules as every other, also when messages go to a handler.
    reader, _ = make(reader_mod, max_message_size=100)
    got: list[object] = []
    if handler:
        reader.handler = lambda data, final: got.append(data)
    exc = reader.feed(cframe(2, b"before") + frame + cframe(2, b"after"))
    assert isinstance(exc, ProtocolError) and exc.code == code
    messages = got if handler else [e.data for e in reader.events]
    assert messages == [b"before"]
    assert reader.stopped and reader.buffered() == 0
    assert reader.feed(cframe(2, b"ignored")) is None
    assert reader.events == [] or not handler


def test_control_frames_go_to_the_state_machine(reader_mod: ModuleType) -> None:
    reader, control = make(reader_mod)
    data = cframe(9, b"ping") + cframe(1, b"a", fin=False) + cframe(10, b"pong") + cframe(0, b"b")
    assert run(reader, data + cframe(8, b"\x03\xe8") + cframe(2, b"late"))[0] == [
        ("TextMessage", "ab", True)
    ]
    assert control.seen == [(9, b"ping"), (10, b"pong"), (8, b"\x03\xe8")]
    assert reader.stopped  # nothing after the close frame


def test_events_compare_hash_and_print_by_value(reader_mod: ModuleType) -> None:
    text, binary, chunk = reader_mod.TextMessage, reader_mod.BinaryMessage, reader_mod.MessageChunk
    assert text("x") == text("x") and hash(text("x")) == hash(text("x"))
    assert text("x") != text("y") and text("x") != binary(b"x") and text("x") != "x"
    assert binary(b"x") == binary(b"x") and len({binary(b"x"), binary(b"x"), text("x")}) == 2
    assert chunk("a", True, False) == chunk("a", True, False)
    assert chunk("a", True, False) != chunk("a", True, True) != chunk(b"a", False, True)
    assert hash(chunk("a", True, False)) == hash(chunk("a", True, False))
    assert repr(text("x")) == "TextMessage(data='x')"
    assert repr(binary(b"\x00")) == "BinaryMessage(data=b'\\x00')"
    assert repr(chunk("a", True, False)) == "MessageChunk(data='a', text=True, final=False)"
    match chunk(b"z", False, True):
        case reader_mod.MessageChunk(data, text_flag, final):
            assert (data, text_flag, final) == (b"z", False, True)


def test_events_are_immutable_on_the_compiled_build() -> None:
    mod = pytest.importorskip("fastws._reader_c")
    pytest.importorskip("fastws._speedups")
    event = mod.TextMessage("x")
    with pytest.raises(AttributeError):
        event.data = "y"
    assert mod.TextMessage("x") == event and hash(mod.TextMessage("x")) == hash(event)
    assert mod.TextMessage("x") != mod.BinaryMessage(b"x")


# ------------------------------------------------- both builds, same answers

_FRAMES = st.one_of(
    st.builds(lambda p: cframe(1, p.encode()), st.text(max_size=40)),
    st.builds(lambda p: cframe(2, p), st.binary(max_size=300)),
    st.builds(lambda p: cframe(1, p), st.binary(max_size=8)),  # often invalid UTF-8
    st.builds(
        lambda a, b: cframe(1, a.encode(), fin=False) + cframe(9, b"") + cframe(0, b.encode()),
        st.text(max_size=10),
        st.text(max_size=10),
    ),
    st.builds(lambda p: cframe(2, p, fin=False) + cframe(0, p), st.binary(max_size=70_000)),
    st.builds(lambda n: cframe(2, b"z" * n), st.integers(60_000, 300_000)),
    st.builds(lambda op: cframe(op, b"r"), st.sampled_from([3, 7, 0xB, 0xF, 0])),
    st.just(cframe(9, b"p" * 126)),
)


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(_FRAMES, max_size=8),
    cuts=st.lists(st.integers(0, 400_000), max_size=6),
    stream=st.booleans(),
)
def test_compiled_reader_matches_its_source(
    frames: list[bytes], cuts: list[int], stream: bool
) -> None:
    try:
        compiled = importlib.import_module("fastws._reader_c")
        importlib.import_module("fastws._speedups")
    except ImportError:
        pytest.skip("the C build is not available")
    source = importlib.import_module("fastws._reader_py")
    data = b"".join(frames)
    results = []
    for mod in (source, compiled):
        reader, control = make(mod, stream_messages=stream, max_message_size=200_000)
        results.append((run(reader, data, cuts), control.seen, reader.buffered()))
    assert results[0] == results[1]


@pytest.mark.parametrize("below", [1, 2, 3, 5])
def test_a_64_bit_length_near_the_maximum_is_an_incomplete_frame(
    reader_mod: ModuleType, below: int
) -> None:
    # Without limits, a frame announcing nearly 2**63 bytes waits for them:
    # its end and a quarter of it (when to assemble it) are computed without
    # overflowing a C integer in the compiled build.
    reader, _ = make(reader_mod, max_message_size=-1)
    header = b"\x82\xff" + ((1 << 63) - below).to_bytes(8, "big") + KEY
    assert reader.feed(header + b"x" * 100) is None
    assert reader.feed(b"y" * 100) is None
    assert not reader.stopped and reader.events == []
    assert reader.buffered() == len(header) + 200


# ------------------------------------------------------------ bounded memory


def test_a_large_frame_is_allocated_in_proportion_to_what_arrived(reader_mod: ModuleType) -> None:
    # 200 peers each send 64 KiB of a 1 MiB frame: what is held stays near
    # what they sent (12.5 MiB), far from 200 MiB of announced payloads.
    frame = cframe(2, b"q" * (1 << 20))
    readers = []
    tracemalloc.start()
    try:
        for _ in range(200):
            reader, _ = make(reader_mod, max_message_size=16 << 20)
            for i in range(0, 65536, 16384):
                assert reader.feed(frame[i : i + 16384]) is None
            readers.append(reader)
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 48 << 20, held
    assert all(r.buffered() == 65536 for r in readers)


def test_paused_reader_holds_at_most_what_was_fed(reader_mod: ModuleType) -> None:
    # 1 MiB of empty frames in one read, a consumer full after 16 messages:
    # 16 messages taken, the rest kept as bytes, not as messages.
    data = cframe(2, b"") * ((1 << 20) // 6)
    reader, _ = make(reader_mod)
    got: list[object] = []

    def handler(data: object, final: bool) -> bool:
        got.append(data)
        return len(got) % 16 == 0

    reader.handler = handler
    assert reader.feed(data) is None
    assert len(got) == 16 and reader.paused
    assert reader.buffered() == len(data) - 16 * 6
    while reader.paused:
        reader.resume()
    assert len(got) == len(data) // 6 and reader.buffered() == 0


def test_compressed_messages_pause_after_each_full_one(reader_mod: ModuleType) -> None:
    # Small frames that inflate towards max_size: a consumer that is full
    # after one message makes the reader stop inflating the others.
    import zlib

    from fastws.extensions.permessage_deflate import DeflateOptions, server_accept

    accepted = server_accept([], DeflateOptions())
    assert accepted is not None
    deflate = accepted[1]
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = comp.compress(b"\0" * ((1 << 20) - 10)) + comp.flush(zlib.Z_SYNC_FLUSH)
    bomb = cframe(2, body[:-4], rsv=4)
    reader, _ = make(reader_mod)
    reader.deflate = deflate
    got: list[int] = []
    reader.handler = lambda data, final: got.append(len(data)) or True
    assert reader.feed(bomb * 1000) is None
    assert got == [(1 << 20) - 10] and reader.paused
    assert reader.buffered() == len(bomb) * 999


# ------------------------------------------------------------ the message queue


@settings(max_examples=80, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.binary(max_size=5), st.booleans()),
            st.tuples(st.just("get")),
            st.tuples(st.just("get_message")),
            st.tuples(st.just("unget"), st.lists(st.binary(max_size=3), max_size=3)),
            st.tuples(st.just("take_all")),
        ),
        max_size=60,
    ),
    max_items=st.integers(1, 6),
    max_bytes=st.integers(1, 20),
)
def test_message_queue_behaves_like_a_deque(
    ops: list[tuple[Any, ...]], max_items: int, max_bytes: int
) -> None:
    # Against a model, on both builds: order, sizes, fullness, errors.
    from collections import deque

    for name in [p.values[0] for p in _readers() if not p.marks]:
        queue = importlib.import_module(name).MessageQueue(max_items, max_bytes)
        model: deque[tuple[bytes, bool]] = deque()
        for op in ops:
            if op[0] == "put":
                full = queue.put(op[1], op[2])
                model.append((op[1], op[2]))
                assert full == (
                    len(model) >= max_items or sum(len(d) for d, _ in model) >= max_bytes
                )
            elif op[0] == "get":
                if model:
                    assert queue.get() == model.popleft()
                else:
                    with pytest.raises(IndexError):
                        queue.get()
            elif op[0] == "get_message":
                expected = model.popleft()[0] if model and model[0][1] else None
                assert queue.get_message() == expected
            elif op[0] == "unget":
                queue.unget(op[1])
                model.extendleft((d, False) for d in reversed(op[1]))
            else:
                assert queue.take_all() == list(model)
                model.clear()
            assert len(queue) == len(model)
            assert queue.nbytes == sum(len(d) for d, _ in model)
            assert queue.full == (len(model) >= max_items or queue.nbytes >= max_bytes)


# --------------------------------------- the short path and the rulebook agree


@settings(max_examples=300, deadline=None)
@given(
    is_server=st.booleans(),
    max_frame=st.sampled_from([-1, 0, 1, 125, 126, 65_535, 65_536, 1 << 20]),
    max_message=st.sampled_from([-1, 0, 1, 125, 126, 65_535, 65_536, 1 << 20]),
    deflate=st.booleans(),
    opcode=st.sampled_from([1, 2]),
    length=st.integers(0, 1 << 21),
)
def test_the_short_path_admits_only_frames_the_rules_accept(
    is_server: bool, max_frame: int, max_message: int, deflate: bool, opcode: int, length: int
) -> None:
    # Reader._parse takes a whole uncompressed text or binary frame (FIN, no
    # RSV bit) that fits the limits, outside a fragmented message, without
    # calling _check_frame. This fails if a rule added to _check_frame
    # refuses such a frame: the short path must then check it too.
    import fastws._reader_py as pure

    reader, _ = make(
        pure, is_server=is_server, max_frame_size=max_frame, max_message_size=max_message
    )
    if deflate:
        reader.deflate = object()  # only its presence matters to the rules
    single = max_frame
    if single < 0 or 0 <= max_message < single:
        single = max_message
    if single >= 0 and length > single:
        return  # the short path does not take it
    assert not reader.msg_opcode
    reader._check_frame(True, 0, opcode, length)  # must not raise
