"""The HTTP/1.1 upgrade handshake: parsing, limits, validation, negotiation."""

from __future__ import annotations

import base64

import pytest

from fastws.events import Headers, Request, Response
from fastws.exceptions import InvalidHandshake, InvalidState
from fastws.handshake import (
    HttpHeadParser,
    accept_key,
    build_extension_header,
    build_request,
    check_response,
    generate_key,
    parse_extension_header,
    parse_tokens,
    parse_uri,
)
from fastws.protocol import ClientProtocol, ServerProtocol, State

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.mark.parametrize(
    ("key", "accept"),
    [
        ("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ("f7cb4ezEAl6C3wRaU6JORA==", "rE91AJhfC+6JdVcVXOGJEADEJdQ="),
        ("sN9cRrP/n9NdMgdcy2VJFQ==", "fFBooB7FAkLlXgRSz0BT3v4hq5s="),
    ],
)
def test_accept_vectors(key: str, accept: str) -> None:
    assert accept_key(key) == accept


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(base64.b64decode(k)) == 16 for k in keys)


def request_bytes(
    *extra: str, drop: tuple[str, ...] = (), line: str = "GET /chat?a=1 HTTP/1.1"
) -> bytes:
    headers = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    lines = [line] + [f"{k}: {v}" for k, v in headers.items() if k not in drop] + list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def handshake(server: ServerProtocol, data: bytes) -> Response:
    server.receive_data(data)
    (req,) = server.events_received()
    assert isinstance(req, Request)
    resp = server.accept(req)
    server.send_response(resp)
    return resp


def status_of(server: ServerProtocol) -> int:
    out = b"".join(server.data_to_send())
    return int(out.split(b" ", 2)[1])


def test_server_handshake_byte_by_byte() -> None:
    server = ServerProtocol()
    data = (
        request_bytes()
        + b"\x81\x85\x01\x02\x03\x04"
        + bytes(c ^ k for c, k in zip(b"hello", b"\x01\x02\x03\x04\x01", strict=False))
    )
    for i in range(len(data)):
        server.receive_data(data[i : i + 1])
    (req,) = server.events_received()
    assert req.path == "/chat?a=1"
    assert req.headers["sec-websocket-key"] == KEY
    server.send_response(server.accept(req))
    out = b"".join(server.data_to_send())
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in out
    assert server.state is State.OPEN
    # The frame that arrived with the request is not lost.
    assert [e.data for e in server.events_received()] == ["hello"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request_bytes(line="POST / HTTP/1.1"), 405),
        (request_bytes(line="GET / HTTP/1.0"), 400),
        (request_bytes(line="GET /"), 400),
        (request_bytes(drop=("Host",)), 400),
        (request_bytes("Host: other"), 400),
        (request_bytes(drop=("Upgrade",)), 400),
        (request_bytes(drop=("Connection",)), 400),
        (request_bytes(drop=("Sec-WebSocket-Key",)), 400),
        (request_bytes(drop=("Sec-WebSocket-Version",)), 426),
        (request_bytes("Sec-WebSocket-Version: 8", drop=("Sec-WebSocket-Version",)), 426),
        (request_bytes("Sec-WebSocket-Key: c2hvcnQ=", drop=("Sec-WebSocket-Key",)), 400),
        (
            request_bytes(
                "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==", drop=("Sec-WebSocket-Key",)
            ),
            400,
        ),
        (request_bytes("Bad Header: x"), 400),
        (request_bytes("NoColon"), 400),
        (request_bytes(" folded"), 400),
    ],
)
def test_invalid_requests(data: bytes, status: int) -> None:
    server = ServerProtocol()
    server.receive_data(data)
    assert server.events_received() == []
    out = server.data_to_send()
    assert int(out[0].split(b" ", 2)[1]) == status
    assert out[-1] == b""
    assert isinstance(server.close_exc, InvalidHandshake)
    assert server.close_exc.status == status
    assert server.state is State.CLOSED
    if status == 426:
        assert b"Sec-WebSocket-Version: 13\r\n" in out[0]


def test_token_lists_are_case_insensitive() -> None:
    server = ServerProtocol()
    data = request_bytes(
        "Upgrade: foo, WebSocket", "Connection: keep-alive, UPGRADE", drop=("Upgrade", "Connection")
    )
    handshake(server, data)
    assert server.state is State.OPEN


@pytest.mark.parametrize(
    ("kwargs", "data", "status"),
    [
        ({"max_request_line": 20}, request_bytes(line="GET /" + "a" * 30 + " HTTP/1.1"), 400),
        ({"max_request_line": 20}, b"GET /" + b"a" * 30, 400),
        ({"max_header_line": 40}, request_bytes("X-Long: " + "b" * 50), 431),
        ({"max_header_line": 40}, b"GET / HTTP/1.1\r\nX-Long: " + b"b" * 50, 431),
        ({"max_headers": 5}, request_bytes("X-A: 1"), 431),
        ({"max_headers": 5}, b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 7, 431),
        ({"max_handshake_size": 200}, request_bytes("X-Pad: " + "c" * 100), 431),
        ({"max_handshake_size": 200}, b"GET / HTTP/1.1\r\n" + b"X: 1234567\r\n" * 20, 431),
    ],
)
def test_handshake_limits(kwargs: dict[str, int], data: bytes, status: int) -> None:
    server = ServerProtocol(**kwargs)
    server.receive_data(data)
    assert status_of(server) == status
    assert isinstance(server.close_exc, InvalidHandshake)


def test_head_parser_rest() -> None:
    parser = HttpHeadParser(is_request=False)
    assert not parser.feed(b"HTTP/1.1 101 OK\r\nA: b\r\n\r")
    assert parser.feed(b"\nrest")
    assert parser.start_line == "HTTP/1.1 101 OK"
    assert parser.headers.items() == [("A", "b")]
    assert parser.rest() == b"rest"


def test_origin_check() -> None:
    server = ServerProtocol(origins=["https://good.example"])
    server.receive_data(request_bytes("Origin: https://evil.example"))
    assert status_of(server) == 403
    server = ServerProtocol(origins=["https://good.example"])
    server.receive_data(request_bytes())
    assert status_of(server) == 403
    server = ServerProtocol(origins=["https://good.example", None])
    handshake(server, request_bytes())
    assert server.state is State.OPEN
    server = ServerProtocol(origins=["https://good.example"])
    handshake(server, request_bytes("Origin: https://good.example"))
    assert server.state is State.OPEN


def test_subprotocol_preference() -> None:
    server = ServerProtocol(subprotocols=["v2", "v1"])
    resp = handshake(server, request_bytes("Sec-WebSocket-Protocol: v1, v2"))
    assert server.subprotocol == "v2"
    assert resp.headers["Sec-WebSocket-Protocol"] == "v2"
    server = ServerProtocol(subprotocols=["v3"])
    resp = handshake(server, request_bytes("Sec-WebSocket-Protocol: v1, v2"))
    assert server.subprotocol is None
    assert "Sec-WebSocket-Protocol" not in resp.headers


def test_subprotocol_callback() -> None:
    seen = []

    def select(request: Request, offered: list[str]) -> str | None:
        seen.append(offered)
        return offered[-1]

    server = ServerProtocol(select_subprotocol=select)
    handshake(server, request_bytes("Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b, c"))
    assert seen == [["a", "b", "c"]]
    assert server.subprotocol == "c"


def test_reject_and_extra_headers() -> None:
    server = ServerProtocol()
    server.receive_data(request_bytes() + b"\x81\x80\x00\x00\x00\x00")
    (req,) = server.events_received()
    resp = server.reject(401, "go away", [("WWW-Authenticate", "Basic")])
    server.send_response(resp)
    out = server.data_to_send()
    assert out[0].startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"WWW-Authenticate: Basic\r\n" in out[0]
    assert out[0].endswith(b"\r\n\r\ngo away")
    assert out[-1] == b""
    assert server.state is State.CLOSED
    assert server.events_received() == []

    server = ServerProtocol()
    server.receive_data(request_bytes())
    (req,) = server.events_received()
    resp = server.accept(req, [("Set-Cookie", "a=b")])
    assert resp.headers["set-cookie"] == "a=b"


def test_extension_header_parsing() -> None:
    assert parse_extension_header(
        ['permessage-deflate; client_max_window_bits; server_max_window_bits="10"', "x-foo"]
    ) == [
        (
            "permessage-deflate",
            [("client_max_window_bits", None), ("server_max_window_bits", "10")],
        ),
        ("x-foo", []),
    ]
    for bad in ["a;", "a; b=", "a b", 'a; b="unterminated', "a; =1"]:
        with pytest.raises(ValueError):
            parse_extension_header([bad])
    assert build_extension_header([("e", [("a", None), ("b", "1")])]) == "e; a; b=1"
    assert parse_tokens(["a, B", " ,c"]) == ["a", "b", "c"]


def test_uri() -> None:
    assert parse_uri("ws://h/p?q") == (False, "h", 80, "/p?q")
    assert parse_uri("wss://h:8443") == (True, "h", 8443, "/")
    for bad in ["http://h/", "ws://h/#frag", "ws://u:p@h/", "ws:///x"]:
        with pytest.raises(ValueError):
            parse_uri(bad)


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("ws://example.com/", "example.com"),
        ("ws://example.com:80/", "example.com"),
        ("ws://example.com:8080/", "example.com:8080"),
        ("wss://example.com:443/", "example.com"),
        ("wss://example.com:80/", "example.com:80"),
        ("ws://[::1]:9000/", "[::1]:9000"),
    ],
)
def test_client_request_host(uri: str, host: str) -> None:
    req = build_request(uri, key=KEY)
    assert req.headers["Host"] == host


def client_and_request(**kwargs: object) -> tuple[ClientProtocol, bytes]:
    client = ClientProtocol("ws://example.com:8080/path?x=y", **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    return client, b"".join(client.data_to_send())


def test_client_request() -> None:
    _client, data = client_and_request(
        origin="https://o.example",
        subprotocols=["chat", "superchat"],
        additional_headers=[("Authorization", "Bearer x")],
    )
    head = data.decode()
    assert head.startswith("GET /path?x=y HTTP/1.1\r\n")
    for line in [
        "Host: example.com:8080",
        "Origin: https://o.example",
        "Sec-WebSocket-Protocol: chat, superchat",
        "Authorization: Bearer x",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Extensions: permessage-deflate",
    ]:
        assert line in head
    # A fresh key each time.
    assert client_and_request()[1] != client_and_request()[1]


def respond(client: ClientProtocol, request: bytes, server: ServerProtocol | None = None) -> bytes:
    server = server or ServerProtocol(subprotocols=["chat"])
    server.receive_data(request)
    (req,) = server.events_received()
    server.send_response(server.accept(req))
    return b"".join(server.data_to_send())


def test_client_success_and_trailing_frames() -> None:
    client, data = client_and_request(subprotocols=["chat"])
    out = respond(client, data)
    client.receive_data(out + b"\x81\x02hi")
    events = client.events_received()
    assert isinstance(events[0], Response) and events[0].status == 101
    assert events[1].data == "hi"  # type: ignore[union-attr]
    assert client.state is State.OPEN
    assert client.subprotocol == "chat"
    assert client.extensions == ["permessage-deflate"]


def accept_for(data: bytes) -> str:
    key = next(ln for ln in data.split(b"\r\n") if ln.startswith(b"Sec-WebSocket-Key"))
    return accept_key(key.split(b": ")[1].decode())


@pytest.mark.parametrize(
    "headers",
    [
        ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: wrong"],
        ["Connection: Upgrade", "Sec-WebSocket-Accept: {accept}"],
        ["Upgrade: websocket", "Sec-WebSocket-Accept: {accept}"],
        ["Upgrade: websocket", "Connection: Upgrade"],
        [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: {accept}",
            "Sec-WebSocket-Protocol: other",
        ],
        [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: {accept}",
            "Sec-WebSocket-Extensions: x-unknown",
        ],
        [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: {accept}",
            "Sec-WebSocket-Extensions: permessage-deflate; foo=1",
        ],
        [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: {accept}",
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16",
        ],
        [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: {accept}",
            "Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate",
        ],
    ],
)
def test_client_rejects_bad_101(headers: list[str]) -> None:
    client, data = client_and_request(subprotocols=["chat"])
    lines = ["HTTP/1.1 101 Switching Protocols"] + [
        h.format(accept=accept_for(data)) for h in headers
    ]
    client.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert client.events_received() == []
    assert isinstance(client.close_exc, InvalidHandshake)
    assert client.close_exc.response is not None
    assert client.close_exc.status == 101
    assert client.state is State.CLOSED
    assert client.data_to_send() == [b""]


def test_client_error_response_with_body() -> None:
    client, _ = client_and_request()
    client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nnot")
    assert client.close_exc is None
    client.receive_data(b" for you")
    exc = client.close_exc
    assert isinstance(exc, InvalidHandshake)
    assert exc.response is not None
    assert (exc.status, exc.response.body) == (403, b"not for y")
    assert exc.response.headers["content-length"] == "9"

    client, _ = client_and_request()
    client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\nbody until eof")
    client.receive_eof()
    assert isinstance(client.close_exc, InvalidHandshake)
    assert client.close_exc.response is not None
    assert client.close_exc.response.body == b"body until eof"


def test_client_eof_during_handshake() -> None:
    client, _ = client_and_request()
    client.receive_data(b"HTTP/1.1 101 Switching")
    client.receive_eof()
    assert isinstance(client.close_exc, InvalidHandshake)
    assert client.state is State.CLOSED


def test_check_response_subprotocols() -> None:
    headers = Headers(
        [
            ("Upgrade", "websocket"),
            ("Connection", "upgrade"),
            ("Sec-WebSocket-Accept", accept_key(KEY)),
        ]
    )
    assert check_response(Response(101, "", headers), KEY, None) is None
    with_proto = Headers([*headers.items(), ("Sec-WebSocket-Protocol", "a, b")])
    with pytest.raises(InvalidHandshake):
        check_response(Response(101, "", with_proto), KEY, ["a", "b"])


def test_invalid_extension_offer_is_400() -> None:
    server = ServerProtocol()
    server.receive_data(request_bytes('Sec-WebSocket-Extensions: permessage-deflate; x="'))
    (req,) = server.events_received()
    resp = server.accept(req)
    assert resp.status == 400


def test_header_strings_are_shared_between_connections_within_a_bound() -> None:
    from fastws import handshake

    def parse(extra: str = "") -> Headers:
        p = HttpHeadParser(is_request=True)
        key = generate_key()
        head = (
            "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
            f"Sec-WebSocket-Key: {key}\r\n{extra}\r\n"
        )
        assert p.feed(head.encode())
        return p.headers

    a, b = parse(), parse()
    assert a == Headers(a.items()) and a.items()[0] == ("Host", "example.com")
    for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
        assert ka is kb  # one string for every connection
        if ka != "Sec-WebSocket-Key":
            assert va is vb
        else:
            assert va != vb and va not in handshake._SHARED  # unique values stay out
    # Many made-up header names fill the cache up to its bound, not beyond.
    for i in range(0, 3000, 60):
        parse("".join(f"X-{i + j}: v\r\n" for j in range(60)))
    assert len(handshake._SHARED) <= handshake._SHARED_MAX


@pytest.mark.parametrize("length", ["\u00b2", "9" * 5000, "-1", "abc", "1e3", ""])
def test_client_refuses_an_invalid_content_length_without_raising(length: str) -> None:
    from fastws.exceptions import InvalidHandshake
    from fastws.protocol import ClientProtocol

    client = ClientProtocol("ws://h/")
    client.send_request(client.connect())
    head = f"HTTP/1.1 403 Forbidden\r\nContent-Length: {length}\r\n\r\nbody"
    client.receive_data(head.encode("utf-8"))  # never raises on peer input
    assert isinstance(client.close_exc, InvalidHandshake)
    assert client.response is not None and client.response.status == 403


@pytest.mark.parametrize(
    "garbage",
    [b"\x15\x03\x03\x00\x02\x02\x46", b"SSH-2.0-x\r\n", b"HTTP/2 101\r\n", b"<html>\r\n"],
)
def test_client_refuses_a_response_that_is_not_http11_at_once(garbage: bytes) -> None:
    from fastws.exceptions import InvalidHandshake
    from fastws.protocol import ClientProtocol

    client = ClientProtocol("ws://h/")
    client.send_request(client.connect())
    client.data_to_send()
    client.receive_data(garbage)  # no head end: still refused at once
    assert isinstance(client.close_exc, InvalidHandshake)


def test_client_errors_have_the_names_websockets_users_catch() -> None:
    from fastws.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus
    from fastws.protocol import ClientProtocol

    client = ClientProtocol("ws://h/")
    client.send_request(client.connect())
    client.receive_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno")
    assert type(client.close_exc) is InvalidStatus
    assert client.close_exc.response is not None and client.close_exc.response.body == b"no"

    client = ClientProtocol("ws://h/")
    client.send_request(client.connect())
    client.receive_data(b"HTTP/1.1 101 Switching")
    client.receive_eof()
    assert type(client.close_exc) is InvalidMessage
    assert isinstance(client.close_exc, InvalidHandshake)


@pytest.mark.parametrize(
    ("uri", "target"),
    [
        ("ws://h/a b/\u00e9?x=1 2&y=\u00e9", "/a%20b/%C3%A9?x=1%202&y=%C3%A9"),
        ("ws://h/%20kept?q=%41&r=a/b?c", "/%20kept?q=%41&r=a/b?c"),
        ("ws://h", "/"),
        ("ws://h/chat;v=1:@$!*'(),+~", "/chat;v=1:@$!*'(),+~"),
    ],
)
def test_the_request_target_is_percent_encoded(uri: str, target: str) -> None:
    from fastws.handshake import build_request, parse_uri

    assert parse_uri(uri)[3] == target
    request = build_request(uri, key="dGhlIHNhbXBsZSBub25jZQ==")
    assert request.path == target and request.path.isascii()


@pytest.mark.parametrize(
    "uri",
    ["http://h/", "ws://h/\nGET", "ws://h/\x00", "ws://h:99999/", "ws:///path", "ws://u:p@h/"],
)
def test_invalid_uris_raise_invalid_uri(uri: str) -> None:
    from fastws.exceptions import InvalidURI
    from fastws.handshake import parse_uri

    with pytest.raises(InvalidURI) as info:
        parse_uri(uri)
    assert isinstance(info.value, ValueError) and info.value.uri == uri


def test_idna_host() -> None:
    from fastws.handshake import build_request

    request = build_request("ws://b\u00fccher.example/", key="dGhlIHNhbXBsZSBub25jZQ==")
    assert request.headers["Host"] == "xn--bcher-kva.example"


def test_headers_can_be_edited_as_in_websockets() -> None:
    headers = Headers([("Server", "a"), ("X-One", "1")])
    headers["x-one"] = "2"  # adds: a multi-dict
    assert headers.get_all("X-One") == ["1", "2"]
    del headers["X-ONE"]
    assert "X-One" not in headers and headers.items() == [("Server", "a")]
    with pytest.raises(KeyError):
        del headers["X-One"]
    with pytest.raises(ValueError, match="value"):
        headers["X-Bad"] = "a\r\nInjected: 1"
    with pytest.raises(ValueError, match="name"):
        headers["Bad Name"] = "x"
    with pytest.raises(TypeError):
        headers["X-Int"] = 1  # type: ignore[assignment]
    response = Response(404, "Not Found", headers)
    assert (response.status_code, response.reason_phrase) == (404, "Not Found")


def test_a_replacement_101_must_keep_what_was_negotiated() -> None:
    extra = ("Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Extensions: permessage-deflate")
    for keep in (True, False):
        server = ServerProtocol(subprotocols=["chat"])
        server.receive_data(request_bytes(*extra))
        (request,) = server.events_received()
        assert isinstance(request, Request)
        accepted = server.accept(request)
        pairs = [(k, v) for k, v in accepted.headers.items() if k.lower() != "server"]
        if not keep:
            pairs = [(k, v) for k, v in pairs if k != "Sec-WebSocket-Protocol"]
        replacement = Response(101, "Switching Protocols", Headers([*pairs, ("X-New", "1")]))
        if keep:
            server.send_response(replacement)
            assert server.state is State.OPEN and server.subprotocol == "chat"
            assert b"X-New: 1\r\n" in b"".join(server.data_to_send())
        else:
            with pytest.raises(InvalidState, match="Sec-WebSocket"):
                server.send_response(replacement)
            assert server.state is State.CONNECTING
