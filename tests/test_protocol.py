"""The sans-IO state machine: every RFC 6455 rule with its close code, both roles."""

from __future__ import annotations

import struct

import pytest

from fastws import encode_frame
from fastws.events import (
    BinaryMessage,
    CloseReceived,
    MessageChunk,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from fastws.exceptions import InvalidState, PayloadTooBig, ProtocolError
from fastws.protocol import ClientProtocol, Role, ServerProtocol, State

MASK = b"\x37\xfa\x21\x3d"


def open_pair(**kwargs: object) -> tuple[ClientProtocol, ServerProtocol]:
    client = ClientProtocol("ws://localhost/", compression=None, **kwargs)  # type: ignore[arg-type]
    server = ServerProtocol(compression=None, **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    (req,) = server.events_received()
    assert isinstance(req, Request)
    server.send_response(server.accept(req))
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()
    return client, server


def server(**kwargs: object) -> ServerProtocol:
    return open_pair(**kwargs)[1]


def client(**kwargs: object) -> ClientProtocol:
    return open_pair(**kwargs)[0]


def cframe(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    """A frame as a client sends it (masked)."""
    return encode_frame(fin, opcode, payload, MASK, rsv)


def sframe(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    """A frame as a server sends it (unmasked)."""
    return encode_frame(fin, opcode, payload, None, rsv)


def close_code_on_wire(out: list[bytes]) -> int | None:
    for chunk in out:
        if chunk and chunk[0] & 0x0F == 8:
            n = chunk[1] & 0x7F
            off = 6 if chunk[1] & 0x80 else 2
            if n == 0:
                return 1005
            payload = chunk[off : off + n]
            if chunk[1] & 0x80:
                mask = chunk[2:6]
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            return int(struct.unpack("!H", payload[:2])[0])
    return None


def expect_fail(proto: ClientProtocol | ServerProtocol, data: bytes, code: int) -> None:
    proto.receive_data(data)
    out = proto.data_to_send()
    assert close_code_on_wire(out) == code
    assert proto.close_code_sent == code
    assert isinstance(proto.close_exc, ProtocolError)
    assert proto.close_exc.code == code
    assert proto.state is State.CLOSING
    if proto.role is Role.SERVER:
        assert out[-1] == b""
    # Everything after a failure is ignored.
    proto.receive_data(cframe(1, b"ignored"))
    assert not any(
        isinstance(e, TextMessage) and e.data == "ignored" for e in proto.events_received()
    )


# ----------------------------------------------------------------- masking


def test_server_fails_unmasked_frame() -> None:
    expect_fail(server(), sframe(1, b"hi"), 1002)


def test_client_fails_masked_frame() -> None:
    expect_fail(client(), cframe(1, b"hi"), 1002)


def test_client_frames_are_masked_with_fresh_keys() -> None:
    c = client()
    for _ in range(50):
        c.send_binary(b"abcd")
    frames = c.data_to_send()
    assert all(f[1] & 0x80 for f in frames)
    assert len({f[2:6] for f in frames}) > 40


def test_server_frames_are_not_masked() -> None:
    s = server()
    s.send_text("hi")
    assert s.data_to_send() == [b"\x81\x02hi"]


# ------------------------------------------------------------ RSV / opcodes


@pytest.mark.parametrize("rsv", [1, 2, 3, 4, 5, 6, 7])
def test_rsv_without_extension(rsv: int) -> None:
    expect_fail(server(), cframe(1, b"x", rsv=rsv), 1002)


@pytest.mark.parametrize("rsv", [4, 2])
def test_rsv_on_control_frame(rsv: int) -> None:
    expect_fail(server(), cframe(9, b"x", rsv=rsv), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes(opcode: int) -> None:
    expect_fail(server(), cframe(opcode, b"x"), 1002)
    expect_fail(client(), sframe(opcode), 1002)


# ---------------------------------------------------------- control frames


def test_control_frame_too_long() -> None:
    # Failed as soon as the header is known, before the payload arrives.
    s = server()
    frame = cframe(9, b"x" * 126)
    expect_fail(s, frame[:8], 1002)


def test_control_frame_125_ok() -> None:
    s = server()
    s.receive_data(cframe(9, b"x" * 125))
    assert s.events_received() == [Ping(b"x" * 125)]
    assert s.data_to_send() == [sframe(10, b"x" * 125)]


def test_fragmented_control_frame() -> None:
    expect_fail(server(), cframe(9, b"x", fin=False), 1002)


def test_ping_pong() -> None:
    c, s = open_pair()
    c.receive_data(sframe(9, b"are you there"))
    assert c.events_received() == [Ping(b"are you there")]
    (pong,) = c.data_to_send()
    s.receive_data(pong)
    assert s.events_received() == [Pong(b"are you there")]


def test_auto_pong_off() -> None:
    s = server(auto_pong=False)
    s.receive_data(cframe(9, b"p"))
    assert s.events_received() == [Ping(b"p")]
    assert s.data_to_send() == []
    s.send_pong(b"p")
    assert s.data_to_send() == [sframe(10, b"p")]


def test_control_payload_limit_on_send() -> None:
    s = server()
    with pytest.raises(ValueError):
        s.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        s.send_pong(b"x" * 126)


def test_control_frames_inside_fragmented_message() -> None:
    s = server()
    s.receive_data(cframe(1, b"he", fin=False) + cframe(9, b"p") + cframe(0, b"llo"))
    assert s.events_received() == [Ping(b"p"), TextMessage("hello")]


# ----------------------------------------------------------- fragmentation


def test_continuation_without_message() -> None:
    expect_fail(server(), cframe(0, b"x"), 1002)
    expect_fail(server(), cframe(0, b"x", fin=False), 1002)


@pytest.mark.parametrize("opcode", [1, 2])
def test_new_message_inside_fragmented(opcode: int) -> None:
    expect_fail(server(), cframe(2, b"a", fin=False) + cframe(opcode, b"b"), 1002)


def test_fragmented_binary_and_empty_fragments() -> None:
    s = server()
    s.receive_data(cframe(2, b"", fin=False) + cframe(0, b"ab", fin=False) + cframe(0, b""))
    assert s.events_received() == [BinaryMessage(b"ab")]
    s.receive_data(cframe(1, b""))
    assert s.events_received() == [TextMessage("")]


def test_max_fragments() -> None:
    s = server(max_fragments=3)
    s.receive_data(cframe(2, b"a", fin=False) + cframe(0, b"b", fin=False) + cframe(0, b"c"))
    assert s.events_received() == [BinaryMessage(b"abc")]
    data = cframe(2, b"a", fin=False) + cframe(0, b"b", fin=False) + cframe(0, b"c", fin=False)
    expect_fail(s, data + cframe(0, b"d"), 1009)
    assert isinstance(s.close_exc, PayloadTooBig)


# -------------------------------------------------------------------- UTF-8


def test_invalid_utf8_single_frame() -> None:
    expect_fail(
        server(), cframe(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007
    )


def test_code_point_split_across_frames() -> None:
    s = server()
    euro = "€".encode()
    s.receive_data(
        cframe(1, euro[:1], fin=False) + cframe(0, euro[1:2], fin=False) + cframe(0, euro[2:])
    )
    assert s.events_received() == [TextMessage("€")]


def test_invalid_utf8_fails_fast_in_first_fragment() -> None:
    s = server()
    # The message is not finished, but \xff can never be valid.
    expect_fail(s, cframe(1, b"ok\xff", fin=False), 1007)


def test_truncated_utf8_at_end_of_message() -> None:
    expect_fail(server(), cframe(1, b"\xe2\x82", fin=False) + cframe(0, b""), 1007)


def test_invalid_utf8_fails_before_the_frame_is_complete() -> None:
    s = server()
    frame = cframe(1, b"valid" + b"\xf4\x90\x80\x80" + b"x" * 100)
    s.receive_data(frame[:12])
    assert s.close_code_sent is None
    s.receive_data(frame[12:18])
    assert s.close_code_sent == 1007


def test_invalid_utf8_partial_frame_client_side() -> None:
    c = client()
    frame = sframe(1, b"a" * 10 + b"\xc0\xaf" + b"z" * 50, fin=False)
    c.receive_data(frame[:8])
    c.receive_data(frame[8:14])
    assert c.close_code_sent == 1007


def test_partial_valid_then_complete() -> None:
    s = server()
    text = "κόσμε" * 30
    frame = cframe(1, text.encode())
    for i in range(0, len(frame), 7):
        s.receive_data(frame[i : i + 7])
    assert s.events_received() == [TextMessage(text)]
    frame = cframe(1, text.encode(), fin=False) + cframe(0, b"!")
    for i in range(0, len(frame), 5):
        s.receive_data(frame[i : i + 5])
    assert s.events_received() == [TextMessage(text + "!")]


# ------------------------------------------------------------------- close


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x03", 1002),
        (b"\x03\xe7", 1002),  # 999
        (b"\x03\xec", 1002),  # 1004
        (b"\x03\xed", 1002),  # 1005
        (b"\x03\xee", 1002),  # 1006
        (b"\x03\xf7", 1002),  # 1015
        (b"\x03\xf8", 1002),  # 1016
        (b"\x0b\xb7", 1002),  # 2999
        (b"\x13\x88", 1002),  # 5000
        (b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 1007),
    ],
)
def test_invalid_close_frames(payload: bytes, code: int) -> None:
    s = server()
    s.receive_data(cframe(8, payload))
    out = s.data_to_send()
    assert close_code_on_wire(out) == code
    assert s.close_code_sent == code
    assert out[-1] == b""


def test_close_handshake_initiated_by_client() -> None:
    c, s = open_pair()
    c.send_close(1000, "bye")
    assert c.state is State.CLOSING and c.close_expected()
    with pytest.raises(InvalidState):
        c.send_text("too late")
    s.receive_data(b"".join(c.data_to_send()))
    assert s.events_received() == [CloseReceived(1000, "bye")]
    assert s.state is State.CLOSED
    out = s.data_to_send()
    assert out == [sframe(8, b"\x03\xe8"), b""]  # echo the code, then close TCP
    c.receive_data(b"".join(out))
    assert c.events_received() == [CloseReceived(1000, "")]
    assert c.state is State.CLOSED
    assert c.data_to_send() == []  # the client waits for the server to close TCP
    c.receive_eof()
    assert c.data_to_send() == [b""]
    assert (c.close_code, c.close_code_sent) == (1000, 1000)


def test_close_handshake_initiated_by_server() -> None:
    c, s = open_pair()
    s.send_close(4001, "custom")
    out = s.data_to_send()
    assert out == [sframe(8, b"\x0f\xa1custom")]
    c.receive_data(out[0])
    assert c.events_received() == [CloseReceived(4001, "custom")]
    s.receive_data(b"".join(c.data_to_send()))
    assert s.events_received() == [CloseReceived(4001, "")]
    assert s.data_to_send() == [b""]
    assert s.state is State.CLOSED


def test_empty_close_is_answered_with_empty_close() -> None:
    s = server()
    s.receive_data(cframe(8))
    assert s.events_received() == [CloseReceived(1005, "")]
    assert s.data_to_send() == [sframe(8), b""]
    assert s.close_code == 1005


def test_send_close_without_code() -> None:
    s = server()
    s.send_close(None)
    assert s.data_to_send() == [sframe(8)]
    assert s.close_code_sent == 1005


def test_data_after_close_is_ignored() -> None:
    s = server()
    s.receive_data(cframe(8, b"\x03\xe8") + cframe(1, b"late"))
    assert s.events_received() == [CloseReceived(1000, "")]


def test_eof_without_close_is_1006() -> None:
    s = server()
    s.receive_eof()
    assert s.close_code == 1006
    assert s.state is State.CLOSED
    assert s.data_to_send() == [b""]
    with pytest.raises(InvalidState):
        s.send_text("x")


def test_messages_before_a_violation_can_be_answered_first() -> None:
    s = server()
    s.receive_data(cframe(1, b"echo me") + cframe(5, b"bad"))
    assert isinstance(s.close_exc, ProtocolError)
    (event,) = s.events_received()
    s.send_text(event.data)  # type: ignore[union-attr]
    out = s.data_to_send()
    assert out == [sframe(1, b"echo me"), sframe(8, b"\x03\xea" + b"reserved opcode 0x5"), b""]


def test_a_violation_in_a_later_read_waits_for_answers_pending() -> None:
    # The message came in one read; the application has not answered it when
    # the violation comes in the next: the front-end says so.
    s = server()
    s.receive_data(cframe(1, b"echo me"))
    (event,) = s.events_received()
    s.answers_pending = True
    s.receive_data(cframe(5, b"bad"))
    assert isinstance(s.close_exc, ProtocolError)
    assert s.state is State.OPEN and s.has_data_to_send()
    s.send_text(event.data)  # type: ignore[union-attr]
    out = s.data_to_send()
    assert out == [sframe(1, b"echo me"), sframe(8, b"\x03\xea" + b"reserved opcode 0x5"), b""]
    # Without it, the close frame goes out at once.
    s = server()
    s.receive_data(cframe(1, b"echo me"))
    s.events_received()
    s.receive_data(cframe(5, b"bad"))
    assert s.state is State.CLOSING
    with pytest.raises(InvalidState):
        s.send_text("echo me")


def test_drop_messages_keeps_control_frames() -> None:
    s = server()
    s.receive_data(cframe(1, b"kept"))
    s.send_close(1000)
    s.data_to_send()
    s.drop_messages()
    s.receive_data(cframe(2, b"dropped") + cframe(1, b"one", fin=False) + cframe(0, b"two"))
    s.receive_data(cframe(9, b"ping") + cframe(8, b"\x03\xe8"))
    kinds = [type(e).__name__ for e in s.events_received()]
    # Only the message from before drop_messages(); the control frames count.
    assert kinds == ["TextMessage", "Ping", "CloseReceived"], kinds
    assert s.close_code == 1000 and s.state is State.CLOSED


def test_fail_explicitly() -> None:
    c = client()
    c.fail(1011, "internal")
    out = c.data_to_send()
    assert close_code_on_wire(out) == 1011
    assert c.state is State.CLOSING


# ------------------------------------------------------------------- limits


def test_message_size_limit_single_frame() -> None:
    s = server(max_message_size=100)
    s.receive_data(cframe(2, b"x" * 100))
    assert s.events_received() == [BinaryMessage(b"x" * 100)]
    # Failed on the header alone.
    expect_fail(s, cframe(2, b"x" * 101)[:8], 1009)


def test_message_size_limit_fragmented() -> None:
    s = server(max_message_size=100)
    expect_fail(s, cframe(1, b"x" * 60, fin=False) + cframe(0, b"x" * 41), 1009)


def test_frame_size_limit() -> None:
    s = server(max_message_size=1000, max_frame_size=10)
    s.receive_data(cframe(2, b"x" * 10, fin=False) + cframe(0, b"y" * 10))
    assert s.events_received() == [BinaryMessage(b"x" * 10 + b"y" * 10)]
    expect_fail(s, cframe(2, b"x" * 11, fin=False), 1009)


def test_unlimited() -> None:
    s = server(max_message_size=None, max_fragments=None)
    s.receive_data(cframe(2, b"x" * 3_000_000))
    assert len(s.events_received()[0].data) == 3_000_000  # type: ignore[union-attr]


def test_64bit_length_with_msb_set() -> None:
    s = server()
    expect_fail(s, b"\x82\xff\x80" + b"\x00" * 7 + MASK, 1002)


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        ServerProtocol(max_message_size=0)


# ----------------------------------------------------------------- sending


def test_fragmented_send() -> None:
    c, s = open_pair()
    c.send_text("a", fin=False)
    with pytest.raises(InvalidState):
        c.send_binary(b"b")
    c.send_text("b", fin=False)
    c.send_text(b"c")
    frames = c.data_to_send()
    assert [f[0] for f in frames] == [0x01, 0x00, 0x80]
    s.receive_data(b"".join(frames))
    assert s.events_received() == [TextMessage("abc")]


def test_large_frames_length_encodings() -> None:
    c, s = open_pair(max_message_size=None)
    for n in (0, 125, 126, 65535, 65536, 200_000):
        c.send_binary(b"z" * n)
        s.receive_data(b"".join(c.data_to_send()))
        assert s.events_received() == [BinaryMessage(b"z" * n)]


def test_send_before_open_and_after_close() -> None:
    s = ServerProtocol()
    with pytest.raises(InvalidState):
        s.send_text("x")
    with pytest.raises(InvalidState):
        s.send_ping()
    s = server()
    s.send_close()
    for call in (lambda: s.send_binary(b"x"), lambda: s.send_ping(), lambda: s.send_close()):
        with pytest.raises(InvalidState):
            call()


# ----------------------------------------------------------------- streaming


def test_stream_messages() -> None:
    s = server(stream_messages=True)
    euro = "€".encode()
    s.receive_data(
        cframe(1, b"a" + euro[:1], fin=False) + cframe(0, euro[1:], fin=False) + cframe(0, b"b")
    )
    assert s.events_received() == [
        MessageChunk("a", True, False),
        MessageChunk("€", True, False),
        MessageChunk("b", True, True),
    ]
    s.receive_data(cframe(2, b"x", fin=False) + cframe(0, b"y") + cframe(1, b"one"))
    assert s.events_received() == [
        MessageChunk(b"x", False, False),
        MessageChunk(b"y", False, True),
        TextMessage("one"),  # a single-frame message comes whole
    ]


@pytest.mark.parametrize("split", [None, 3, 9])
def test_stream_messages_single_frame_whole(split: int | None) -> None:
    # Whether the frame arrives in one read or in pieces, a one-frame message
    # is one event (compressed frames: test_stream_messages_with_deflate).
    s = server(stream_messages=True)
    data = cframe(2, b"0123456789") + cframe(1, "é".encode())
    if split is None:
        s.receive_data(data)
    else:
        s.receive_data(data[:split])
        s.receive_data(data[split:])
    assert s.events_received() == [BinaryMessage(b"0123456789"), TextMessage("é")]


# ------------------------------------------------------------------ buffering


def test_many_frames_in_one_read_and_split_reads() -> None:
    s = server()
    data = b"".join(cframe(1, f"m{i}".encode()) for i in range(1000))
    s.receive_data(data)
    assert [e.data for e in s.events_received()] == [f"m{i}" for i in range(1000)]  # type: ignore[union-attr]
    for i in range(0, len(data), 333):
        s.receive_data(memoryview(data)[i : i + 333])
    assert len(s.events_received()) == 1000


def test_buffer_is_compacted() -> None:
    s = server(max_message_size=None)
    big = cframe(2, b"q" * 300_000)
    for _ in range(3):
        for i in range(0, len(big), 65536):
            s.receive_data(big[i : i + 65536])
        assert s.events_received() == [BinaryMessage(b"q" * 300_000)]
    assert _unparsed(s) == 0


# --------------------------------------------------------------- public surface


def test_public_names() -> None:
    import fastws.events
    import fastws.exceptions
    import fastws.extensions
    import fastws.extensions.permessage_deflate
    import fastws.frames
    import fastws.handshake
    import fastws.protocol

    for module in (
        fastws.events,
        fastws.exceptions,
        fastws.extensions,
        fastws.extensions.permessage_deflate,
        fastws.frames,
        fastws.handshake,
        fastws.protocol,
    ):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
    assert {"ServerProtocol", "ClientProtocol", "State", "Role"} <= set(fastws.protocol.__all__)
    assert {
        "FastWSError",
        "ProtocolError",
        "InvalidHandshake",
        "PayloadTooBig",
        "Utf8Error",
        "InvalidState",
    } <= set(fastws.exceptions.__all__)
    assert issubclass(PayloadTooBig, ProtocolError)
    assert PayloadTooBig("x").code == 1009


def test_exceptions_pickle() -> None:
    import pickle

    from fastws.exceptions import InvalidHandshake

    for exc in (ProtocolError(1002, "bad"), PayloadTooBig("big")):
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is type(exc) and (copy.code, copy.message) == (exc.code, exc.message)
    assert InvalidHandshake("no", status=400).status == 400


def test_stream_messages_with_deflate() -> None:
    from fastws.extensions.permessage_deflate import DeflateOptions

    c = ClientProtocol("ws://h/", compression=DeflateOptions(threshold=0))
    s = ServerProtocol(compression=DeflateOptions(), stream_messages=True)
    c.send_request(c.connect())
    s.receive_data(b"".join(c.data_to_send()))
    (req,) = s.events_received()
    s.send_response(s.accept(req))  # type: ignore[arg-type]
    c.receive_data(b"".join(s.data_to_send()))
    c.send_text("é" * 50, fin=False)
    c.send_text("ü" * 50)
    s.receive_data(b"".join(c.data_to_send()))
    chunks = s.events_received()
    assert "".join(e.data for e in chunks) == "é" * 50 + "ü" * 50  # type: ignore[union-attr, misc]
    assert [e.final for e in chunks] == [False, True]  # type: ignore[union-attr]
    c.send_text("ö" * 50)  # one compressed frame: the general path, still whole
    s.receive_data(b"".join(c.data_to_send()))
    assert s.events_received() == [TextMessage("ö" * 50)]


def test_server_header() -> None:
    s = ServerProtocol(server_header=None)
    c = ClientProtocol("ws://h/")
    c.send_request(c.connect())
    s.receive_data(b"".join(c.data_to_send()))
    (req,) = s.events_received()
    assert "Server" not in s.accept(req).headers  # type: ignore[arg-type]
    assert ServerProtocol().reject(404).headers["Server"].startswith("fastws/")


def test_data_before_accept_is_bounded() -> None:
    s = ServerProtocol(compression=None, max_handshake_size=1000)
    c = ClientProtocol("ws://h/", compression=None)
    c.send_request(c.connect())
    s.receive_data(b"".join(c.data_to_send()) + cframe(1, b"early"))
    (req,) = s.events_received()
    s.receive_data(cframe(2, b"x" * 500))
    s.send_response(s.accept(req))  # type: ignore[arg-type]
    assert s.events_received() == [TextMessage("early"), BinaryMessage(b"x" * 500)]
    assert s.close_code_sent is None

    s = ServerProtocol(compression=None, max_handshake_size=1000)
    s.receive_data(b"".join(c.data_to_send()) or _request(c))
    (req,) = s.events_received()
    for _ in range(5):
        s.receive_data(cframe(2, b"x" * 400))
    s.send_response(s.accept(req))  # type: ignore[arg-type]
    s.events_received()
    assert close_code_on_wire(s.data_to_send()[1:]) == 1009
    assert isinstance(s.close_exc, PayloadTooBig)


def _request(c: ClientProtocol) -> bytes:
    from fastws.handshake import serialize_request

    return serialize_request(c.connect())


def test_refused_request_is_kept_on_the_error() -> None:
    """A well-formed request that is not an upgrade is answered 400 and kept on
    the error, so a server can still answer it itself (health checks, pages)."""
    from fastws.exceptions import InvalidHandshake

    s = ServerProtocol(compression=None)
    s.receive_data(b"GET /health?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    exc = s.close_exc
    assert isinstance(exc, InvalidHandshake)
    assert exc.status == 400
    assert exc.request is not None
    assert exc.request.path == "/health?x=1"
    assert exc.request.headers["Host"] == "example.com"
    assert s.request is None
    assert s.data_to_send()[0].startswith(b"HTTP/1.1 400 ")

    garbage = ServerProtocol(compression=None)
    garbage.receive_data(b"\x16\x03\x01 not http\r\n\r\n")
    exc = garbage.close_exc
    assert isinstance(exc, InvalidHandshake)
    assert exc.request is None


# ------------------------------------------------------------ copies


def test_reads_that_split_frames_copy_only_the_incomplete_frame() -> None:
    # Frames of 20,000 bytes arriving in reads of 25,000: the receive buffer
    # only ever holds the start of the one frame that a read left incomplete
    # (the rest is parsed from the read itself), and the events are unchanged.
    payloads = [bytes([i]) * 20_000 for i in range(7)]
    stream = b"".join(cframe(2, p) for p in payloads)
    s = server()
    events = []
    for i in range(0, len(stream), 25_000):
        s.receive_data(stream[i : i + 25_000])
        events += s.events_received()
        assert _unparsed(s) < 20_008
    assert events == [BinaryMessage(p) for p in payloads]
    assert _unparsed(s) == 0


def test_server_sends_large_bytes_payloads_without_a_copy() -> None:
    s = server()
    payload = bytes(range(256)) * 16
    s.send_binary(payload)
    out = s.data_to_send()
    assert out[-1] is payload  # handed to the transport as is
    assert b"".join(out) == sframe(2, payload)
    # A mutable payload is copied: changing it after send() changes nothing.
    mutable = bytearray(payload)
    s.send_binary(mutable)
    mutable[:] = b"\0" * len(mutable)
    assert b"".join(s.data_to_send()) == sframe(2, payload)
    # Small payloads stay one item.
    s.send_text("hi")
    assert s.data_to_send() == [sframe(1, b"hi")]


# ------------------------------------------------------ large frames


def _unparsed(proto: ServerProtocol | ClientProtocol) -> int:
    """Bytes in the reader's receive buffer (not counting a frame assembled in place)."""
    reader = proto._reader
    return len(reader.buf) - reader.start


def _reads(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_large_frame_is_assembled_without_double_buffering() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    stream = cframe(2, big) + cframe(1, b"after") + cframe(2, big[:70_000])
    s = server(max_message_size=2 << 20)
    events = []
    for chunk in _reads(stream, 100_000):
        s.receive_data(chunk)
        events += s.events_received()
        # The buffer collects at most the first quarter of a large frame (so
        # the payload is allocated only in proportion to what arrived); then
        # the rest goes straight into the payload, never into both.
        assert _unparsed(s) < (1 << 18) + 100_000
        if s._reader.asm is not None:
            assert _unparsed(s) == 0
    assert events == [BinaryMessage(big), TextMessage("after"), BinaryMessage(big[:70_000])]
    assert s._reader.asm is None


@pytest.mark.parametrize("first", [10, 30_000, 262_143, 262_144, 300_000])
def test_large_frame_assembly_starts_at_a_quarter(first: int) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    frame = cframe(2, big)
    hlen = len(frame) - len(big)
    s = server(max_message_size=2 << 20)
    s.receive_data(frame[: hlen + first])
    if first < 262_144:
        # Not yet: the payload is not allocated on the strength of a header.
        assert s._reader.asm is None and _unparsed(s) == hlen + first
        assert s.buffered_size() == hlen + first
    else:
        assert s._reader.asm is not None and s._reader.asm.filled == first
        assert _unparsed(s) == 0 and s.buffered_size() == first
    # The next read copies into the buffer only what starts the assembly.
    s.receive_data(frame[hlen + first : hlen + first + 300_000])
    assert s._reader.asm is not None and _unparsed(s) == 0
    assert s._reader.asm.filled == first + 300_000
    s.receive_data(frame[hlen + first + 300_000 :] + cframe(1, b"next"))
    assert s.events_received() == [BinaryMessage(big), TextMessage("next")]
    assert s._reader.asm is None and _unparsed(s) == 0


def test_small_limit_frame_assembly_starts_at_a_quarter() -> None:
    # A frame under 256 KiB is assembled once a quarter of it is there.
    payload = b"q" * 100_000
    frame = cframe(2, payload)
    s = server()
    s.receive_data(frame[:20_000])
    assert s._reader.asm is None
    s.receive_data(frame[20_000:30_000])
    assert s._reader.asm is not None and s._reader.asm.filled == 30_000 - (
        len(frame) - len(payload)
    )
    s.receive_data(frame[30_000:])
    assert s.events_received() == [BinaryMessage(payload)]


def test_large_text_frame_split_inside_code_points() -> None:
    text = "aé€😀" * 30_000  # 300,000 characters, 1 to 4 bytes each
    stream = cframe(1, text.encode())
    s = server()
    events = []
    for chunk in _reads(stream, 65_537):
        s.receive_data(chunk)
        events += s.events_received()
    assert events == [TextMessage(text)]


def test_large_text_frame_fails_fast_on_invalid_utf8() -> None:
    payload = bytearray(b"a" * 1_000_000)
    payload[200_000] = 0xFF
    stream = cframe(1, bytes(payload))
    s = server()
    s.receive_data(stream[:300_000])  # a quarter is there: assembled and checked
    assert s.close_exc is not None and s.close_exc.code == 1007
    assert s._reader.asm is None  # the partial payload is released at once
    s.receive_data(stream[300_000:])
    assert s.events_received() == []


def test_large_fragmented_text_message_with_streaming() -> None:
    part = "ü" * 50_000  # 100,000 bytes per frame
    stream = cframe(1, part.encode(), fin=False) + cframe(0, part.encode())
    s = server(stream_messages=True)
    events = []
    for chunk in _reads(stream, 40_000):
        s.receive_data(chunk)
        events += s.events_received()
    assert events == [MessageChunk(part, True, False), MessageChunk(part, True, True)]


def test_eof_or_failure_during_assembly_releases_the_payload() -> None:
    stream = cframe(2, b"x" * 500_000)
    s = server()
    s.receive_data(stream[:1000])
    assert s._reader.asm is None  # a header alone does not allocate the payload
    s.receive_data(stream[1000:200_000])
    assert s._reader.asm is not None and s._reader.asm.filled == 200_000 - 14  # minus the header
    s.receive_eof()
    assert s._reader.asm is None and s.close_code == 1006
    s = server()
    s.receive_data(stream[:200_000])
    s.fail(1011, "going")
    assert s._reader.asm is None


def test_large_compressed_frame_is_assembled_then_inflated() -> None:
    import os

    from fastws.extensions.permessage_deflate import DeflateOptions

    c = ClientProtocol("ws://h/", compression=DeflateOptions(threshold=0))
    s = ServerProtocol(compression=DeflateOptions())
    c.send_request(c.connect())
    s.receive_data(b"".join(c.data_to_send()))
    (req,) = s.events_received()
    s.send_response(s.accept(req))  # type: ignore[arg-type]
    c.receive_data(b"".join(s.data_to_send()))
    payload = os.urandom(300_000)  # incompressible: the frame stays large
    c.send_binary(payload)
    events = []
    for chunk in _reads(b"".join(c.data_to_send()), 90_000):
        s.receive_data(chunk)
        events += s.events_received()
    assert events == [BinaryMessage(payload)]


# -- the fast paths the asyncio connection uses ---------------------------------------

WHOLE_MESSAGES: list[object] = [
    "hello",
    "h\u00e9\u20ac\U0001f600",
    "",
    "a" * 5000,
    "\u00e9" * 3000,
    b"\x00\xff",
    b"",
    b"b" * 70000,
    bytearray(b"array"),
    memoryview(b"..view..")[2:-2],
]


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("sender_is_server", [True, False])
def test_send_message_is_send_text_or_send_binary(
    compression: str | None, sender_is_server: bool
) -> None:
    from fastws.extensions.permessage_deflate import DeflateOptions

    opts = DeflateOptions() if compression else None

    def pair() -> tuple[ClientProtocol | ServerProtocol, ClientProtocol | ServerProtocol]:
        c = ClientProtocol("ws://localhost/", compression=opts)
        s = ServerProtocol(compression=opts)
        c.send_request(c.connect())
        s.receive_data(b"".join(c.data_to_send()))
        (req,) = s.events_received()
        s.send_response(s.accept(req))  # type: ignore[arg-type]
        c.receive_data(b"".join(s.data_to_send()))
        c.events_received()
        return (s, c) if sender_is_server else (c, s)

    sender, receiver = pair()
    other_sender, _ = pair()
    for message in WHOLE_MESSAGES:
        assert sender.send_message(message) is True
        if isinstance(message, str):
            other_sender.send_text(message)
        else:
            other_sender.send_binary(message)  # type: ignore[arg-type]
    wire = b"".join(sender.data_to_send())
    if sender_is_server:  # deterministic: unmasked
        assert wire == b"".join(other_sender.data_to_send())
    receiver.receive_data(wire)
    got = [e.data for e in receiver.events_received()]
    assert got == [m if isinstance(m, str) else bytes(m) for m in WHOLE_MESSAGES]  # type: ignore[arg-type]


def test_send_message_refusals() -> None:
    proto = server()
    assert proto.send_message(42) is False
    assert proto.send_message(["a"]) is False
    assert proto.data_to_send() == []
    proto.send_text("part", fin=False)
    with pytest.raises(InvalidState, match="fragmented message"):
        proto.send_message("whole")
    proto.send_text("end")
    proto.send_close()
    with pytest.raises(InvalidState, match="CLOSING"):
        proto.send_message(b"late")


def test_message_handler_gets_what_events_would_carry() -> None:
    # With a handler, the same messages in the same order; control frames
    # still come as events.
    data = (
        cframe(1, b"one")
        + cframe(2, b"two")
        + cframe(9, b"ping")
        + cframe(1, b"three")
        + cframe(2, b"frag", fin=False)
        + cframe(0, b"ment")
        + cframe(1, b"tail")[:-2]
    )
    plain = server()
    plain.receive_data(data)
    plain.receive_data(cframe(1, b"tail")[-2:])
    expected = plain.events_received()

    handled = server()
    got: list[object] = []
    handled.set_message_handler(lambda data, final: got.append((data, final)))
    handled.receive_data(data)
    handled.receive_data(cframe(1, b"tail")[-2:])
    messages = [e for e in expected if isinstance(e, (TextMessage, BinaryMessage))]
    assert got == [(m.data, True) for m in messages]
    assert handled.events_received() == [e for e in expected if isinstance(e, Ping)]
    # Back to events.
    handled.set_message_handler(None)
    handled.receive_data(cframe(1, b"again"))
    assert handled.events_received() == [TextMessage("again")]


def test_message_handler_pauses_and_resumes() -> None:
    s = server()
    got: list[object] = []

    def handler(data: object, final: bool) -> bool:
        got.append(data)
        return len(got) % 2 == 0  # full after every second message

    s.set_message_handler(handler)
    s.receive_data(b"".join(cframe(2, bytes([i])) for i in range(5)) + cframe(1, b"x")[:3])
    assert got == [b"\x00", b"\x01"] and s.receiving_paused
    s.receive_data(cframe(1, b"x")[3:])  # only kept while paused
    assert len(got) == 2
    s.resume_receiving()
    assert got == [b"\x00", b"\x01", b"\x02", b"\x03"] and s.receiving_paused
    s.resume_receiving()
    assert got[4:] == [b"\x04", "x"] and s.receiving_paused
    s.resume_receiving()
    assert not s.receiving_paused and s.buffered_size() == 0


def test_message_handler_exception_keeps_the_rest() -> None:
    s = server()
    got: list[object] = []

    def handler(data: object, final: bool) -> None:
        got.append(data)
        if data == b"boom":
            raise RuntimeError("consumer failed")

    s.set_message_handler(handler)
    with pytest.raises(RuntimeError):
        s.receive_data(cframe(2, b"a") + cframe(2, b"boom") + cframe(2, b"b"))
    assert got == [b"a", b"boom"]
    s.resume_receiving()
    assert got == [b"a", b"boom", b"b"]
    # The same when the message completes a frame buffered by an earlier read.
    frame = cframe(2, b"boom")
    s.receive_data(frame[:3])
    with pytest.raises(RuntimeError):
        s.receive_data(frame[3:] + cframe(2, b"c"))
    s.resume_receiving()
    assert got[-2:] == [b"boom", b"c"]


def test_violation_after_handled_messages_waits_for_their_answers() -> None:
    # As with events: messages delivered to the handler in the same read as a
    # violation may still be answered before the close frame goes out.
    s = server()
    got: list[object] = []
    s.set_message_handler(lambda data, final: got.append(data))
    s.receive_data(cframe(1, b"echo me") + cframe(3, b"reserved"))
    assert got == ["echo me"] and s.close_exc is not None and s.close_exc.code == 1002
    s.send_text("echo me")
    out = s.data_to_send()
    assert out[0] == sframe(1, b"echo me")
    assert out[1][0] == 0x88 and out[1][2:4] == (1002).to_bytes(2, "big")


def test_a_dropped_state_machine_is_freed_at_once() -> None:
    # No reference cycle between the state machine and its reader: buffers
    # are released when the last reference goes, without the cycle collector.
    import gc
    import weakref

    gc.disable()
    try:
        s = server()
        s.receive_data(cframe(2, b"x" * 100_000)[:50_000])
        ref = weakref.ref(s)
        del s
        assert ref() is None
    finally:
        gc.enable()


def test_message_callback_gets_whole_messages() -> None:
    # Whole messages, joined even when streaming; a message that started
    # before the callback was set goes on to the handler it started with.
    s = server(stream_messages=True)
    chunks: list[object] = []
    whole: list[object] = []
    s.set_message_handler(lambda data, final: chunks.append((data, final)))
    s.receive_data(cframe(1, b"he", fin=False))
    s.set_message_callback(whole.append)
    s.receive_data(cframe(0, b"llo") + cframe(2, b"a", fin=False) + cframe(0, b"b"))
    s.receive_data(cframe(1, b"one"))
    assert chunks == [("he", False), ("llo", True)]
    assert whole == [b"ab", "one"]

    # An exception propagates after its message; the rest is kept.
    def boom(data: object) -> None:
        whole.append(data)
        if data == b"x":
            raise ValueError("boom")

    s.set_message_callback(boom)
    with pytest.raises(ValueError):
        s.receive_data(cframe(2, b"x") + cframe(2, b"y"))
    s.resume_receiving()
    assert whole[-2:] == [b"x", b"y"]


# ------------------------------------------------------------- ping floods


@pytest.mark.parametrize("role", ["server", "client"])
def test_a_ping_flood_gets_one_pong_and_costs_little_memory(role: str) -> None:
    import tracemalloc

    client, srv = open_pair()
    receiver, sender = (srv, client) if role == "server" else (client, srv)
    for _ in range(100_000):
        sender.send_ping(b"")
    flood = b"".join(sender.data_to_send())
    tracemalloc.start()
    try:
        receiver.receive_data(flood)
        events = receiver.events_received()
        out = receiver.data_to_send()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(events) == 100_000 and all(e == Ping(b"") for e in events)
    assert peak < 2_000_000, peak  # was about 9.7 MB (an event and a pong per ping)
    # RFC 6455 5.5.3: past a few pongs, only the most recent ping is answered.
    from fastws.protocol import MAX_UNSENT_PONGS

    assert len(out) == MAX_UNSENT_PONGS
    sender.receive_data(b"".join(out))
    assert sender.events_received() == [Pong(b"")] * MAX_UNSENT_PONGS


def test_every_ping_is_answered_unless_pongs_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastws.protocol

    monkeypatch.setattr(fastws.protocol, "MAX_UNSENT_PONGS", 2)
    client, srv = open_pair()
    client.send_ping(b"1")
    client.send_text("a")
    client.send_ping(b"2")
    client.send_ping(b"3")
    client.send_ping(b"4")
    srv.receive_data(b"".join(client.data_to_send()))
    srv.send_text("b")  # after the pongs
    assert srv.events_received() == [
        Ping(b"1"),
        TextMessage("a"),
        Ping(b"2"),
        Ping(b"3"),
        Ping(b"4"),
    ]
    client.receive_data(b"".join(srv.data_to_send()))
    assert client.events_received() == [Pong(b"1"), Pong(b"4"), TextMessage("b")]
    # Once written, the next ping gets its own pong.
    client.send_ping(b"4")
    srv.receive_data(b"".join(client.data_to_send()))
    srv.events_received()
    client.receive_data(b"".join(srv.data_to_send()))
    assert client.events_received() == [Pong(b"4")]
