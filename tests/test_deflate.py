"""permessage-deflate (RFC 7692): negotiation, round trips, bounded decompression."""

from __future__ import annotations

import itertools
import os
import random
import tracemalloc
import zlib

import pytest

from fastws import limits
from fastws.events import BinaryMessage, Request, TextMessage
from fastws.exceptions import InvalidHandshake, PayloadTooBig
from fastws.extensions.permessage_deflate import (
    DeflateOptions,
    PerMessageDeflate,
    client_accept,
    client_offer,
    server_accept,
)
from fastws.protocol import ClientProtocol, ServerProtocol, State


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


def test_no_context_takeover_compressors_are_shared_and_forget() -> None:
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

    pool = _POOLS[(a.compress_level, 15, a.mem_level)]
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
