"""permessage-deflate (RFC 7692): negotiation, round trips, bounded decompression."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import tracemalloc
import zlib
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastws import limits
from fastws.events import BinaryMessage, Request, TextMessage
from fastws.exceptions import InvalidHandshake, PayloadTooBig
from fastws.extensions.permessage_deflate import (
    DeflateOptions,
    PerMessageDeflate,
    client_accept,
    client_offer,
    deflate_backend,
    server_accept,
    set_deflate_backend,
)
from fastws.protocol import ClientProtocol, ServerProtocol, State

# Every test compresses with zlib, then with ISA-L (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("backend_module")


def connect(
    client_opts: DeflateOptions | None, server_opts: DeflateOptions | None, **kwargs: object
) -> tuple[ClientProtocol, ServerProtocol]:
    client = ClientProtocol("ws://localhost/", compression=client_opts, **kwargs)  # type: ignore[arg-type]
    server = ServerProtocol(compression=server_opts, **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    (req,) = server.events_received()
    assert isinstance(req, Request)
    server.send_response(server.accept(req))
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()
    assert client.state is State.OPEN and server.state is State.OPEN
    return client, server


def pump(
    src: ClientProtocol | ServerProtocol, dst: ClientProtocol | ServerProtocol
) -> list[object]:
    dst.receive_data(b"".join(src.data_to_send()))
    return list(dst.events_received())


BITS = [None, 8, 9, 12, 15]
COMBOS = list(itertools.product([False, True], [False, True], BITS, BITS))


@pytest.mark.parametrize(("snct", "cnct", "sbits", "cbits"), COMBOS)
def test_round_trip_every_parameter_combination(
    snct: bool, cnct: bool, sbits: int | None, cbits: int | None
) -> None:
    opts = DeflateOptions(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=sbits,
        client_max_window_bits=cbits,
        threshold=0,
    )
    client, server = connect(opts, opts)
    assert client.extensions == server.extensions == ["permessage-deflate"]
    rnd = os.urandom(3000)
    messages: list[str | bytes] = ["hello " * 200, "é" * 1000, b"", rnd, rnd, b"abc" * 5000, ""]
    for msg in messages:
        for a, b in ((client, server), (server, client)):
            if isinstance(msg, str):
                a.send_text(msg)
            else:
                a.send_binary(msg)
            (event,) = pump(a, b)
            assert event.data == msg  # type: ignore[attr-defined]
    # Fragmented compressed message.
    client.send_text("part1 " * 100, fin=False)
    client.send_text("part2 " * 100, fin=False)
    client.send_text("end")
    (event,) = pump(client, server)
    assert event == TextMessage("part1 " * 100 + "part2 " * 100 + "end")


def test_window_bits_8_compress_with_9_decodes_with_8() -> None:
    ext = PerMessageDeflate(local_max_window_bits=8)
    data = os.urandom(200) * 50 + bytes(range(256)) * 20
    stream = ext.compress(data) + b"\x00\x00\xff\xff"
    assert zlib.decompressobj(-8).decompress(stream) == data


def test_threshold_and_opt_out() -> None:
    client, server = connect(DeflateOptions(threshold=100), DeflateOptions(threshold=100))
    server.send_text("x" * 99)
    server.send_text("x" * 100)
    server.send_text("x" * 100, compress=False)
    server.send_text("x", compress=True)
    frames = server.data_to_send()
    assert [f[0] & 0x40 for f in frames] == [0, 0x40, 0, 0x40]
    client.receive_data(b"".join(frames))
    assert [e.data for e in client.events_received()] == [  # type: ignore[attr-defined]
        "x" * 99,
        "x" * 100,
        "x" * 100,
        "x",
    ]


def test_negotiation_declined_or_disabled() -> None:
    client, server = connect(None, DeflateOptions())
    assert client.extensions == server.extensions == []
    client, server = connect(DeflateOptions(), None)
    assert client.extensions == server.extensions == []
    # RSV1 without the extension is a protocol error.
    client.send_binary(b"x")
    frame = bytearray(b"".join(client.data_to_send()))
    frame[0] |= 0x40
    server.receive_data(bytes(frame))
    assert server.close_code_sent == 1002


@pytest.mark.parametrize(
    "params",
    [
        [("foo", None)],
        [("server_no_context_takeover", "1")],
        [("server_max_window_bits", None)],
        [("server_max_window_bits", "7")],
        [("server_max_window_bits", "16")],
        [("server_max_window_bits", "010")],
        [("client_max_window_bits", "x")],
        [("client_no_context_takeover", None), ("client_no_context_takeover", None)],
    ],
)
def test_server_declines_invalid_offers(params: list[tuple[str, str | None]]) -> None:
    assert server_accept(params, DeflateOptions()) is None


def test_server_accept_parameters() -> None:
    opts = DeflateOptions(server_max_window_bits=12, client_max_window_bits=10)
    resp, ext = server_accept(
        [("server_max_window_bits", "9"), ("client_max_window_bits", None)], opts
    )  # type: ignore[misc]
    assert resp == [("server_max_window_bits", "9"), ("client_max_window_bits", "10")]
    assert ext.local_max_window_bits == 9
    resp, ext = server_accept([("server_no_context_takeover", None)], opts)  # type: ignore[misc]
    assert resp == [("server_no_context_takeover", None), ("server_max_window_bits", "12")]
    assert ext.local_no_context_takeover
    # client_no_context_takeover offered is repeated (gorilla/websocket
    # refuses a response without it); the decompressor keeps its context.
    offer = [("server_no_context_takeover", None), ("client_no_context_takeover", None)]
    resp, ext = server_accept(offer, DeflateOptions())  # type: ignore[misc]
    assert resp == [("server_no_context_takeover", None), ("client_no_context_takeover", None)]
    assert ext.local_no_context_takeover and not ext.remote_no_context_takeover
    resp, _ = server_accept([("client_no_context_takeover", None)], DeflateOptions())  # type: ignore[misc]
    assert ("client_no_context_takeover", None) in resp
    # client_max_window_bits only constrains a client that offered it.
    resp, _ = server_accept([], opts)  # type: ignore[misc]
    assert ("client_max_window_bits", "10") not in resp


def test_client_offer_and_accept() -> None:
    opts = DeflateOptions(
        server_no_context_takeover=True, client_no_context_takeover=True, server_max_window_bits=10
    )
    assert client_offer(opts) == [
        ("server_no_context_takeover", None),
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "10"),
        ("client_max_window_bits", None),
    ]
    ext = client_accept([("server_max_window_bits", "9"), ("client_max_window_bits", "8")], opts)
    assert ext.remote_max_window_bits == 9 and ext.local_max_window_bits == 8
    assert ext.local_no_context_takeover
    with pytest.raises(InvalidHandshake):
        client_accept([("server_max_window_bits", "11")], opts)
    with pytest.raises(InvalidHandshake):
        client_accept([("client_max_window_bits", None)], opts)
    with pytest.raises(InvalidHandshake):
        client_accept([("x", None)], opts)
    with pytest.raises(ValueError):
        DeflateOptions(server_max_window_bits=16)


def test_decompression_bomb_is_bounded() -> None:
    """100 MB of zeros compressed fails with 1009 without allocating the 100 MB."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    bomb = b"".join(comp.compress(chunk) for _ in range(100)) + comp.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]
    assert len(bomb) < 200_000
    _client, server = connect(DeflateOptions(), DeflateOptions(), max_message_size=1 << 20)
    # The client compresses nothing itself: forge the frame with RSV1 set.
    from fastws import encode_frame

    frame = encode_frame(True, 2, bomb, b"\x01\x02\x03\x04", 4)
    tracemalloc.start()
    try:
        server.receive_data(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert server.close_code_sent == 1009
    assert isinstance(server.close_exc, PayloadTooBig)
    assert peak < 8 << 20, peak


def test_compressed_message_limit_exact() -> None:
    client, server = connect(DeflateOptions(), DeflateOptions(), max_message_size=1000)
    client.send_binary(b"a" * 1000)
    assert pump(client, server) == [BinaryMessage(b"a" * 1000)]
    client.send_binary(b"a" * 1001)
    assert pump(client, server) == []
    assert server.close_code_sent == 1009


def test_corrupt_compressed_data_is_1007() -> None:
    from fastws import encode_frame

    _client, server = connect(DeflateOptions(), DeflateOptions())
    server.receive_data(encode_frame(True, 2, b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", 4))
    assert server.close_code_sent == 1007


def test_rsv1_on_continuation_is_1002() -> None:
    from fastws import encode_frame

    _client, server = connect(DeflateOptions(), DeflateOptions())
    m = b"\x00\x00\x00\x00"
    server.receive_data(encode_frame(False, 1, b"a", m) + encode_frame(True, 0, b"b", m, 4))
    assert server.close_code_sent == 1002


@pytest.mark.parametrize("read_size", [4096, 65536, 1 << 20])
def test_large_compressed_text_fragments_arriving_in_pieces(read_size: int) -> None:
    """Continuation frames of 64 KiB and more of a compressed text message.

    Such a frame is assembled as it arrives; its bytes are compressed data, not
    UTF-8 (only the first frame of the message has RSV1), so they must not be
    validated as text on arrival. gorilla/websocket sends a large compressed
    message in frames of its write buffer's size.
    """
    client, server = connect(DeflateOptions(), DeflateOptions(), max_message_size=4 << 20)
    rnd = random.Random(7)
    parts = ["".join(rnd.choice("abcdefghé€ \n{}") for _ in range(150_000)) for _ in range(3)]
    for i, part in enumerate(parts):
        client.send_text(part, fin=i == len(parts) - 1)
    data = b"".join(client.data_to_send())
    assert len(data) > 3 * (64 << 10)  # the continuation frames are assembled
    events = []
    for at in range(0, len(data), read_size):
        server.receive_data(data[at : at + read_size])
        events += server.events_received()
    assert server.close_code_sent is None
    assert events == [TextMessage("".join(parts))]


def test_defaults_come_from_limits() -> None:
    opts = DeflateOptions()
    assert opts.compress_level == limits.DEFLATE_LEVEL == 1
    assert opts.mem_level == limits.DEFLATE_MEM_LEVEL
    assert opts.threshold == limits.DEFLATE_THRESHOLD
    assert opts.server_max_window_bits is None
    ext = PerMessageDeflate()
    assert (ext.compress_level, ext.mem_level) == (opts.compress_level, opts.mem_level)


def test_server_window_small_when_kept_full_when_shared() -> None:
    # A compressor kept for the connection's life: 2^12, announced.
    resp, ext = server_accept([("client_max_window_bits", None)], DeflateOptions())  # type: ignore[misc]
    assert ("server_max_window_bits", "12") in resp
    assert ext.local_max_window_bits == limits.DEFLATE_KEPT_WINDOW_BITS == 12
    # Without context takeover the compressor is shared: the full window.
    resp, ext = server_accept([("server_no_context_takeover", None)], DeflateOptions())  # type: ignore[misc]
    assert resp == [("server_no_context_takeover", None)]
    assert ext.local_max_window_bits == 15
    # What the client asks for still bounds it; an explicit setting wins.
    offer = [("server_no_context_takeover", None), ("server_max_window_bits", "10")]
    resp, ext = server_accept(offer, DeflateOptions())  # type: ignore[misc]
    assert ("server_max_window_bits", "10") in resp and ext.local_max_window_bits == 10
    resp, ext = server_accept(offer[:1], DeflateOptions(server_max_window_bits=11))  # type: ignore[misc]
    assert ("server_max_window_bits", "11") in resp and ext.local_max_window_bits == 11
    # The client role asks for no limit unless told to.
    assert all(name != "server_max_window_bits" for name, _ in client_offer(DeflateOptions()))


def test_no_context_takeover_compressors_are_shared_and_forget(
    backend_module: ModuleType,
) -> None:
    """Without context takeover a connection holds no compressor between
    messages; the pooled streams are reset, so every message inflates alone."""
    a = PerMessageDeflate(local_no_context_takeover=True)
    b = PerMessageDeflate(local_no_context_takeover=True)
    text = b'{"id": 1, "name": "a fairly repetitive record"}, ' * 100
    outputs = []
    for ext in (a, b, a, b):
        outputs.append(ext.compress(text))
        assert ext._compressor is None
    # A fragmented message holds its stream until its last frame.
    parts = [a.compress(text, fin=False), a.compress(text, fin=True)]
    assert a._compressor is None
    for out in outputs:
        assert zlib.decompressobj(-15).decompress(out + b"\x00\x00\xff\xff") == text
    assert zlib.decompressobj(-15).decompress(b"".join(parts) + b"\x00\x00\xff\xff") == text * 2
    # The same message compresses the same every time: nothing carried over.
    assert len(set(outputs)) == 1
    # The stream a ended with is the one b takes next (none created per message).
    from fastws.extensions.permessage_deflate import _POOLS

    pool = _POOLS[(backend_module.__name__, a.compress_level, 15, a.mem_level)]
    last = pool[-1]
    b.compress(text, fin=False)
    assert b._compressor is last
    b.compress(b"", fin=True)
    assert pool[-1] is last
    # With context takeover the second message refers to the first.
    kept = PerMessageDeflate()
    first, second = kept.compress(text), kept.compress(text)
    assert len(second) < len(first)


@pytest.mark.parametrize("limit", [None, 1000])
def test_small_compressed_frame_inflating_large_is_bounded(limit: int | None) -> None:
    """A final frame under 4 KiB is inflated in one call with its tail: still bounded."""
    data = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = data.compress(bytes(1 << 20)) + data.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]
    assert len(bomb) < 4096
    ext = PerMessageDeflate()
    if limit is None:
        assert ext.decompress(bomb, True, None) == bytes(1 << 20)
    else:
        with pytest.raises(PayloadTooBig):
            ext.decompress(bomb, True, limit)
        assert ext.decompress(b"\x4a\x04\x00", True, limit) == b"a"  # a fresh stream


# -- the compressor's backend (set_deflate_backend) ---------------------------------------


def test_set_deflate_backend_refuses_a_module_without_zlibs_api() -> None:
    fake = ModuleType("fake_zlib")
    fake.compressobj = zlib.compressobj  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="DEFLATED, Z_SYNC_FLUSH, Z_FULL_FLUSH"):
        set_deflate_backend(fake)
    with pytest.raises(TypeError, match="compressobj"):
        set_deflate_backend(ModuleType("empty"))
    assert deflate_backend() is not fake


def test_set_deflate_backend_refuses_a_module_that_takes_no_level() -> None:
    fake = ModuleType("fake_zlib")
    for name in ("DEFLATED", "Z_SYNC_FLUSH", "Z_FULL_FLUSH"):
        setattr(fake, name, getattr(zlib, name))

    def compressobj(*args: object) -> object:
        raise ValueError("no")

    fake.compressobj = compressobj  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="refuses every compression level"):
        set_deflate_backend(fake)


@pytest.mark.parametrize("level", [-1, 0, 1, 3, 6, 9])
def test_levels_the_backend_lacks_are_mapped(backend_module: ModuleType, level: int) -> None:
    """zlib takes every level; ISA-L has 0-3: a higher one is its best, -1 its default."""
    text = b'{"id": 1, "name": "a fairly repetitive record"}, ' * 50
    if backend_module is zlib:
        expected_level = level
    else:
        expected_level = 2 if level == -1 else min(level, 3)
    reference = backend_module.compressobj(expected_level, zlib.DEFLATED, -15, 5)
    expected = reference.compress(text) + reference.flush(zlib.Z_SYNC_FLUSH)
    ext = PerMessageDeflate(compress_level=level, mem_level=5)
    assert ext.compress(text) == expected[:-4]


@given(
    bits=st.integers(min_value=8, max_value=15),
    chunk=st.binary(min_size=1, max_size=64),
    gap=st.integers(min_value=200, max_value=40_000),
    takeover=st.booleans(),
)
def test_the_backend_honours_the_window_bits(
    backend_module: ModuleType, bits: int, chunk: bytes, gap: int, takeover: bool
) -> None:
    """Streams inflate with the negotiated window: no match reaches further back."""
    filler = random.Random(gap).randbytes(gap)
    data = chunk + filler + chunk + filler[: gap // 2] + chunk
    ext = PerMessageDeflate(local_max_window_bits=bits, local_no_context_takeover=not takeover)
    d = zlib.decompressobj(-max(bits, 9))  # a window of 2^bits: farther matches fail
    for _ in range(2):  # with context takeover, the second message refers into the first
        if not takeover:
            d = zlib.decompressobj(-max(bits, 9))
        assert d.decompress(ext.compress(data) + b"\x00\x00\xff\xff") == data


def test_a_connection_keeps_the_backend_it_started_with() -> None:
    if os.environ.get("FASTWS_ALLOW_NO_ISAL") == "1":
        pytest.importorskip("isal.isal_zlib", reason="isal is not installed (pip install isal)")
    from isal import isal_zlib

    text = b'{"id": 1, "name": "a fairly repetitive record"}, ' * 100

    def made_by(module: ModuleType) -> bytes:
        c = module.compressobj(1, zlib.DEFLATED, -15, 5)
        out: bytes = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4]

    by_zlib, by_isal = made_by(zlib), made_by(isal_zlib)
    assert by_zlib != by_isal
    try:
        set_deflate_backend(None)
        before = PerMessageDeflate(local_no_context_takeover=True)
        assert before.compress(text) == by_zlib  # leaves a zlib stream in the pool
        set_deflate_backend(isal_zlib)
        assert deflate_backend() is isal_zlib
        after = PerMessageDeflate(local_no_context_takeover=True)
        assert after.compress(text) == by_isal  # not the pooled zlib stream
        assert before.compress(text) == by_zlib
    finally:
        set_deflate_backend(None)
    assert deflate_backend() is zlib
    assert PerMessageDeflate(local_no_context_takeover=True).compress(text) == by_zlib


@pytest.mark.parametrize(
    ("value", "prints"),
    [("", "zlib"), ("zlib", "zlib"), ("isal", "isal.isal_zlib")],
)
def test_the_environment_chooses_the_backend_at_import(value: str, prints: str) -> None:
    code = "from fastws.extensions import deflate_backend; print(deflate_backend().__name__)"
    env = dict(os.environ, FASTWS_DEFLATE_BACKEND=value)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, out.stdout.strip()) == (0, prints), out.stderr


@pytest.mark.parametrize(
    ("value", "setup", "error"),
    [
        ("isal.isal_zlib", "", "ValueError: FASTWS_DEFLATE_BACKEND must be 'zlib' or 'isal'"),
        ("isal", "import sys; sys.modules['isal'] = None; ", "pip install pyfastws[isal]"),
    ],
)
def test_a_wrong_backend_in_the_environment_fails_the_import(
    value: str, setup: str, error: str
) -> None:
    env = dict(os.environ, FASTWS_DEFLATE_BACKEND=value)
    out = subprocess.run(
        [sys.executable, "-c", setup + "import fastws.extensions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and error in out.stderr, out.stderr
