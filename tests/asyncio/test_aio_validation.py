"""Every option of serve() and connect() is checked at the call.

A wrong type raises ``TypeError`` and a wrong value ``ValueError``, both
naming the option, when ``serve()`` / ``connect()`` is called: never later,
inside a protocol callback, as a dropped connection or a timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from typing import Any

import pytest
from aio_helpers import close_writer, echo_handler, handshake_request

from fastws.asyncio import ServerConnection, connect, serve
from fastws.events import Headers, Request
from fastws.exceptions import InvalidHandshake
from fastws.protocol import ClientProtocol, ServerProtocol


async def _handler(ws: ServerConnection) -> None:
    await ws.close()


#: option -> (a value of the wrong type, a value of the right type out of range or None)
SERVE_BAD: dict[str, tuple[Any, Any]] = {
    "path": (12, None),
    "sock": ("sock", None),
    "ssl": (True, None),
    "reuse_port": ("yes", None),
    "backlog": ("100", 0),
    "max_connections": (1.5, 0),
    "max_size": ("1", -1),
    "max_fragments": (1.5, 0),
    "max_queue": (None, 0),
    "write_limit": ("64k", (10, 100)),
    "ping_interval": ("20", 0),
    "ping_timeout": ("20", -1),
    "open_timeout": ("10", float("inf")),
    "close_timeout": (None, -1),
    "compression": (1, "gzip"),
    "origins": ("https://app.example.com", ["https://a.example/x y"]),
    "subprotocols": ("chat", ["two words"]),
    "select_subprotocol": ("chat", None),
    "process_request": (42, None),
    "process_response": ("no", None),
    "extra_headers": ("X-A: b", {"X-A": "b\r\nInjected: 1"}),
    "server_header": (1, "fastws\r\nX-Injected: 1"),
    "stream_messages": ("yes", None),
    "start_serving": (1, None),
    "logger": ("fastws.server", None),
    "create_connection": (int, None),
    "broker": ("redis://127.0.0.1", None),
    "max_backpressure": ("1M", -1),
    "backpressure": (1, "block"),
}

CONNECT_BAD: dict[str, tuple[Any, Any]] = {
    "path": (12, None),
    "sock": ("sock", None),
    "ssl": (True, None),
    "server_hostname": (1, "bad\nname"),
    "origin": (1, "https://a.example\r\nX: y"),
    "additional_headers": ("X-A: b", {"Bad Name": "b"}),
    "user_agent": (1, "agent\x00"),
    "user_agent_header": (1, "agent\r\nX: y"),
    "subprotocols": ("chat", ["a,b"]),
    "compression": (1, "gzip"),
    "proxy": (1, "ftp://proxy.example:21"),
    "proxy_ssl": (True, None),
    "proxy_server_hostname": (1, "bad\nname"),
    "proxy_headers": ("X-A: b", {"X-A": "b\r\nInjected: 1"}),
    "process_exception": ("retry", None),
    "reconnect_delays": ([1, 2], None),
    "max_size": ("1", 0),
    "max_fragments": (1.5, -3),
    "max_queue": ("16", 0),
    "write_limit": ("64k", (100, 200)),
    "ping_interval": ("20", -5),
    "ping_timeout": ("20", float("nan")),
    "open_timeout": ("10", -1),
    "close_timeout": ("10", -1),
    "stream_messages": (1, None),
    "logger": ("fastws.client", None),
    "create_connection": (42, None),
}


def _options(cls: Any) -> set[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_the_tables_cover_every_option() -> None:
    assert _options(serve) == set(SERVE_BAD)
    assert _options(connect) == set(CONNECT_BAD)


def _cases(table: dict[str, tuple[Any, Any]]) -> list[tuple[str, int]]:
    # kind 0: a wrong type; kind 1: a wrong value (where the option has one)
    return [(n, k) for n, values in table.items() for k in (0, 1) if values[k] is not None]


@pytest.mark.parametrize(("name", "kind"), _cases(SERVE_BAD))
def test_serve_rejects_a_bad_option_at_the_call(name: str, kind: int) -> None:
    value = SERVE_BAD[name][kind]
    with pytest.raises(TypeError if kind == 0 else ValueError, match=name.split("_")[0]):
        serve(_handler, "127.0.0.1", 0, **{name: value})


@pytest.mark.parametrize(("name", "kind"), _cases(CONNECT_BAD))
def test_connect_rejects_a_bad_option_at_the_call(name: str, kind: int) -> None:
    value = CONNECT_BAD[name][kind]
    with pytest.raises(TypeError if kind == 0 else ValueError, match=name.split("_")[0]):
        connect("ws://127.0.0.1:9/", **{name: value})


def test_positional_arguments_of_serve_and_connect() -> None:
    with pytest.raises(TypeError, match="handler"):
        serve("not a handler", "127.0.0.1", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="port"):
        serve(_handler, "127.0.0.1", "8765")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        serve(_handler, "127.0.0.1", 70000)
    with pytest.raises(TypeError, match="host"):
        serve(_handler, 127001, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="uri"):
        connect(b"ws://127.0.0.1/")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ws://"):
        connect("http://127.0.0.1/")


def test_a_single_string_is_never_matched_by_substring() -> None:
    with pytest.raises(TypeError, match=r"origins must be a list of origin.*\['https"):
        ServerProtocol(origins="https://app.example.com")  # a str is a Sequence[str]
    with pytest.raises(TypeError, match="subprotocols"):
        ServerProtocol(subprotocols="chat")
    with pytest.raises(TypeError, match="subprotocols"):
        ClientProtocol("ws://h/", subprotocols="chat")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Token": "abc", "Authorization": "Bearer x"},
        [("X-Token", "abc"), ("Authorization", "Bearer x")],
        Headers([("X-Token", "abc"), ("Authorization", "Bearer x")]),
    ],
    ids=["dict", "pairs", "Headers"],
)
def test_header_collections_are_sent_as_given(run: Any, headers: Any) -> None:
    seen: list[Request] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append(ws.request)
        await ws.send("ok")

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, extra_headers=headers) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with connect(url, additional_headers=headers) as ws:
                assert await ws.recv() == "ok"
                assert ws.response is not None
                assert ws.response.headers["X-Token"] == "abc"
                assert ws.response.headers["Authorization"] == "Bearer x"
        assert seen[0].headers["X-Token"] == "abc"
        assert seen[0].headers["Authorization"] == "Bearer x"
        assert "X" not in seen[0].headers  # not split into characters

    run(main())


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "b\r\nInjected: 1"},
        {"X-A": "b\nc"},
        {"X-A": "nul\x00"},
        {"Bad Name": "v"},
        {"X-A": "\u20ac"},  # not Latin-1
        [("X-A",)],
        [("X-A", 1)],
    ],
)
def test_unsendable_headers_fail_at_the_call(headers: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="additional_headers"):
        connect("ws://127.0.0.1:9/", additional_headers=headers)
    with pytest.raises((TypeError, ValueError), match="extra_headers"):
        serve(_handler, "127.0.0.1", 0, extra_headers=headers)
    with pytest.raises((TypeError, ValueError), match="headers"):
        ServerProtocol().reject(403, "no", headers)


def test_respond_takes_a_dict_of_headers(run: Any) -> None:
    async def process_request(ws: ServerConnection, request: Request) -> Any:
        return ws.respond(401, "who are you?\n", {"WWW-Authenticate": 'Bearer realm="x"'})

    async def main() -> None:
        async with serve(_handler, "127.0.0.1", 0, process_request=process_request) as server:
            with pytest.raises(InvalidHandshake) as info:
                await connect(f"ws://127.0.0.1:{server.port}/", open_timeout=5)
            response = info.value.response
            assert response is not None and response.status == 401
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="x"'

    run(main())


def test_a_failing_extra_headers_callable_is_a_logged_500(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def extra(request: Request) -> Any:
        return {"X-A": "line\r\nbreak"}

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, extra_headers=extra) as server:
            with pytest.raises(InvalidHandshake) as info:
                await connect(f"ws://127.0.0.1:{server.port}/", open_timeout=5)
            assert info.value.response is not None and info.value.response.status == 500

    with caplog.at_level(logging.ERROR, logger="fastws"):
        run(main())
    assert any("extra_headers" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("origin_header", [None, "https://app.example.com", "https://evil.example"])
def test_origins_match_whole_values_and_a_missing_origin(
    run: Any, origin_header: str | None
) -> None:
    async def main() -> None:
        async with serve(
            echo_handler, "127.0.0.1", 0, origins=["https://app.example.com"]
        ) as server:
            port = server.port
            assert port is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            extra = f"Origin: {origin_header}\r\n" if origin_header else ""
            writer.write(handshake_request(port, extra=extra))
            status = await asyncio.wait_for(reader.readline(), 5)
            await close_writer(writer)
            expected = b"101" if origin_header == "https://app.example.com" else b"403"
            assert status.split()[1] == expected

    run(main())


def test_the_server_starts_no_listener_for_bad_options() -> None:
    # Nothing is bound before the options are checked: the port stays free.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match="max_queue"):
        serve(_handler, "127.0.0.1", port, max_queue=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# ---------------------------------------------------------- what is not HTTP

TLS_CLIENT_HELLO = bytes.fromhex("160301020001") + b"\x00" * 64
SSH_BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (TLS_CLIENT_HELLO, b"400"),
        (SSH_BANNER, b"400"),
        (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"505"),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"505"),
    ],
    ids=["tls", "ssh", "http9.9", "http2.0"],
)
def test_what_is_not_http11_is_refused_at_once(
    run: Any, caplog: pytest.LogCaptureFixture, data: bytes, status: bytes
) -> None:
    async def main() -> None:
        # open_timeout is long: an answer within a second is not a timeout.
        async with serve(echo_handler, "127.0.0.1", 0, open_timeout=30) as server:
            port = server.port
            assert port is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(data)
            answer = await asyncio.wait_for(reader.read(), 1.0)
            await close_writer(writer)
            assert answer.split(b" ")[1] == status, answer

    with caplog.at_level(logging.INFO, logger="fastws"):
        run(main())
    assert any("refused a connection" in r.getMessage() for r in caplog.records)


def test_a_wss_client_on_a_plain_port_is_told_so_at_once(run: Any) -> None:
    import ssl

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, open_timeout=30) as server:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            started = asyncio.get_running_loop().time()
            with pytest.raises(InvalidHandshake, match="does not seem to speak TLS"):
                await connect(f"wss://127.0.0.1:{server.port}/", ssl=context, open_timeout=20)
            assert asyncio.get_running_loop().time() - started < 2

    run(main())


def test_a_ws_client_on_a_server_that_is_not_http_is_told_so_at_once(run: Any) -> None:
    async def main() -> None:
        # The peer's handler ends when told to, closing its side: a handler
        # task cancelled instead leaves its transport open on uvloop, which
        # then cannot close the loop.
        stop = asyncio.Event()

        async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"\x15\x03\x03\x00\x02\x02\x46")  # a TLS alert
                await writer.drain()
                await stop.wait()
            finally:
                writer.close()

        server = await asyncio.start_server(not_http, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(InvalidHandshake, match="did not answer with HTTP"):
                await connect(f"ws://127.0.0.1:{port}/", open_timeout=20)
            assert asyncio.get_running_loop().time() - started < 2
        finally:
            stop.set()
            server.close()
            await server.wait_closed()
            await asyncio.sleep(0.05)  # the handler closes its side

    run(main())


@pytest.mark.parametrize(
    ("origins", "origin", "status"),
    [
        (None, None, b"101"),  # not a browser
        (None, "http://127.0.0.1:{port}", b"101"),  # the server's own page
        (None, "http://localhost:{port}", b"403"),  # another host name
        (None, "http://127.0.0.1:1", b"403"),  # another port
        (None, "https://evil.example", b"403"),  # cross-site hijacking
        (None, "null", b"403"),
        (["*"], "https://evil.example", b"101"),
        (["*"], None, b"101"),
        (["https://evil.example"], "https://evil.example", b"101"),
    ],
)
def test_by_default_only_the_servers_own_origin_is_accepted(
    run: Any, origins: Any, origin: str | None, status: bytes
) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, origins=origins) as server:
            port = server.port
            assert port is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            extra = f"Origin: {origin.format(port=port)}\r\n" if origin else ""
            writer.write(handshake_request(port, extra=extra))
            line = await asyncio.wait_for(reader.readline(), 5)
            await close_writer(writer)
            assert line.split()[1] == status

    run(main())


# ------------------------------------------------------------ overload


def test_max_connections_refuses_with_503_and_logs_once(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from fastws.exceptions import InvalidStatus

    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def main() -> None:
        async with serve(hold, "127.0.0.1", 0, max_connections=2) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            first = await connect(uri)
            second = await connect(uri)
            for _ in range(3):
                with pytest.raises(InvalidStatus) as info:
                    await connect(uri, open_timeout=5)
                assert info.value.response is not None
                assert info.value.response.status == 503
            await first.close()
            await asyncio.sleep(0.05)
            third = await connect(uri)  # room again
            await third.close()
            await second.close()

    with caplog.at_level(logging.WARNING, logger="fastws"):
        run(main())
    refusals = [r for r in caplog.records if "max_connections" in r.getMessage()]
    assert len(refusals) == 1  # three refusals, one line


def test_failed_accepts_are_counted_not_logged_each(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: seen.append(context))
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            error = OSError(24, "Too many open files")
            for _ in range(1000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": error,
                        "socket": server.sockets[0],
                    }
                )
            loop.call_exception_handler({"message": "something else"})
        # Closed: the loop's own handler is back.
        loop.call_exception_handler({"message": "after"})
        loop.set_exception_handler(None)

    with caplog.at_level(logging.ERROR, logger="fastws"):
        run(main())
    assert [c["message"] for c in seen] == ["something else", "after"]
    lines = [r for r in caplog.records if "accepting connections failed" in r.getMessage()]
    assert len(lines) == 1 and "1 times" in lines[0].getMessage()


def test_the_automatic_connection_limit_stays_below_the_descriptor_limit() -> None:
    resource = pytest.importorskip("resource")
    from fastws.asyncio._options import connections_limit

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = connections_limit("auto")
    if soft == resource.RLIM_INFINITY:
        assert limit is None
    else:
        assert limit is not None and 1 <= limit <= soft - 32
    assert connections_limit(None) is None and connections_limit(5) == 5
    with pytest.raises(ValueError, match="max_connections"):
        connections_limit("many")
