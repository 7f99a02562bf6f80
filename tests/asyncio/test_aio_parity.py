"""The connection API that websockets' users know: decode=, text=, ping waiters, id, logger."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aio_helpers import awaitable, close_writer, echo_handler, raw_open

from fastws.asyncio import (
    ClientConnection,
    ConcurrencyError,
    ConnectionClosedError,
    ServerConnection,
    basic_auth,
    broadcast,
    connect,
    serve,
)
from fastws.asyncio import connection as connection_module
from fastws.events import Headers, Request, Response
from fastws.exceptions import InvalidStatus
from fastws.extensions.permessage_deflate import DeflateOptions
from fastws.protocol import ServerProtocol


def test_recv_decode(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("café")
        await ws.send("café".encode())
        await ws.send("text")
        await ws.send(b"bytes")
        await ws.recv()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert await ws.recv(decode=False) == "café".encode()
                assert await ws.recv(decode=True) == "café"
                assert await ws.recv(decode=True) == "text"
                assert await ws.recv(decode=False) == b"bytes"
                with pytest.raises(TypeError, match="decode"):
                    await ws.recv(decode="yes")  # type: ignore[call-overload]
                await ws.send("done")

    run(main())


def test_recv_decode_true_fails_with_1007_on_invalid_utf8(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\xff\xfe")
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv(decode=True)
                assert info.value.code == 1007
                await ws.wait_closed()
                assert ws.close_code == 1007

    run(main())


def test_recv_streaming_decode(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        # "é" split across two frames: decoded as a whole.
        data = "aé".encode()
        await ws.send([data[:2], data[2:]])
        await ws.send(["x", "y"])
        await ws.recv()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                pieces = [p async for p in ws.recv_streaming(decode=True)]
                assert "".join(pieces) == "aé"
                assert all(isinstance(p, str) for p in pieces)
                raw = [p async for p in ws.recv_streaming(decode=False)]
                assert raw == [b"x", b"y"]
                await ws.send("done")

    run(main())


def test_send_text_override(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(repr(message))

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send(b"as text", text=True)
                assert await ws.recv() == "'as text'"
                await ws.send("as binary", text=False)
                assert await ws.recv() == "b'as binary'"
                await ws.send(bytearray(b"ba"), text=True)
                assert await ws.recv() == "'ba'"
                await ws.send(["a", "b"], text=False)
                assert await ws.recv() == "b'ab'"
                await ws.send([b"c", b"d"], text=True)
                assert await ws.recv() == "'cd'"
                await ws.send("plain", text=None)
                assert await ws.recv() == "'plain'"
                with pytest.raises(TypeError, match="text"):
                    await ws.send("x", text=1)  # type: ignore[arg-type]

    run(main())


def test_id_logger_and_latency(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        seen["id"] = ws.id
        seen["same"] = ws.id is ws.id
        ws.logger.info("hello from the handler")
        await echo_handler(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, ping_interval=0.05) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert isinstance(ws.id, uuid.UUID) and ws.id.version == 4
                assert ws.latency == 0.0
                await ws.send("x")
                await ws.recv()
                # The server's keepalive pings measure its latency.
                conn = next(iter(server.connections))
                for _ in range(100):
                    if conn.latency > 0:
                        break
                    await asyncio.sleep(0.02)
                assert conn.latency > 0

    with caplog.at_level(logging.DEBUG, logger="fastws"):
        run(main())
    assert seen["same"] and seen["id"] != uuid.UUID(int=0)
    records = [r for r in caplog.records if r.getMessage() == "hello from the handler"]
    assert records and records[0].name == "fastws.server"
    assert records[0].websocket.id == seen["id"]  # type: ignore[attr-defined]
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("server listening on ") for m in messages)
    assert "connection open" in messages
    assert any(m.startswith("connection closed") for m in messages)


def test_custom_logger(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    mine = logging.getLogger("my.app.ws")

    async def handler(ws: ServerConnection) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, logger=mine) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", logger=mine) as ws:
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
                assert ws.logger.logger is mine

    with caplog.at_level(logging.ERROR, logger="my.app.ws"):
        run(main())
    failed = [r for r in caplog.records if r.getMessage() == "connection handler failed"]
    assert failed and failed[0].name == "my.app.ws" and failed[0].exc_info is not None


def test_connection_as_context_manager(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            async with ws:
                await ws.send("x")
                assert await ws.recv() == "x"
            assert ws.close_code == 1000

    run(main())


# -- the server ----------------------------------------------------------------


async def _status(port: int, path: str = "/", **options: Any) -> Response:
    """The response of a refused handshake."""
    with pytest.raises(InvalidStatus) as info:
        await connect(f"ws://127.0.0.1:{port}{path}", **options)
    response = info.value.response
    assert response is not None
    return response


@pytest.mark.parametrize("is_async", [False, True])
def test_process_response(run: Any, is_async: bool) -> None:
    def process(ws: ServerConnection, request: Request, response: Response) -> Any:
        result: Response | None = None
        if request.path == "/edit":
            response.headers["X-Blessing"] = "may the network be with you"
            del response.headers["Server"]
        elif request.path == "/refuse":
            result = ws.respond(403, "no\n")
        elif request.path == "/replace":
            headers = [(k, v) for k, v in response.headers.items() if k != "Server"]
            result = Response(101, "Switching Protocols", Headers([*headers, ("X-New", "1")]))
        elif request.path == "/bad101":
            result = Response(101, "Switching Protocols", Headers([("Upgrade", "websocket")]))
        elif request.path == "/raise":
            raise RuntimeError("boom")
        elif request.path == "/wrong":
            result = "not a response"
        return awaitable(result) if is_async else result

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, process_response=process) as server:
            port = server.port
            assert port is not None
            async with connect(f"ws://127.0.0.1:{port}/edit") as ws:
                assert ws.response is not None
                assert ws.response.headers["X-Blessing"] == "may the network be with you"
                assert "Server" not in ws.response.headers
                await ws.send("x")
                assert await ws.recv() == "x"
            async with connect(f"ws://127.0.0.1:{port}/replace") as ws:
                assert ws.response is not None and ws.response.headers["X-New"] == "1"
                await ws.send("y")
                assert await ws.recv() == "y"
            assert (await _status(port, "/refuse")).status_code == 403
            for path in ("/bad101", "/raise", "/wrong"):
                response = await _status(port, path)
                assert response.status == 500, path
                assert b"server log" in response.body

    run(main())


def test_process_request_sees_the_response_of_a_refusal(run: Any) -> None:
    seen: list[int] = []

    def process_request(ws: ServerConnection, request: Request) -> Response | None:
        return ws.respond(401, "token?\n") if "token=" not in request.path else None

    def process_response(ws: ServerConnection, request: Request, response: Response) -> None:
        seen.append(response.status_code)

    async def main() -> None:
        async with serve(
            echo_handler,
            "127.0.0.1",
            0,
            process_request=process_request,
            process_response=process_response,
        ) as server:
            assert (await _status(server.port or 0, "/")).status == 401
            async with connect(f"ws://127.0.0.1:{server.port}/?token=t"):
                pass

    run(main())
    assert seen == [401, 101]


def test_server_header(run: Any) -> None:
    async def main() -> None:
        for value, expected in ((None, None), ("my-server/1", "my-server/1")):
            async with serve(echo_handler, "127.0.0.1", 0, server_header=value) as server:
                async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    assert ws.response is not None
                    assert ws.response.headers.get("Server") == expected

    run(main())


def test_select_subprotocol_takes_the_connection(run: Any) -> None:
    def select(ws: ServerConnection, offered: Sequence[str]) -> str | None:
        assert ws.request is not None
        if "wrong" in ws.request.path:
            return "not-offered"
        return offered[-1] if offered else None

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, select_subprotocol=select) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            async with connect(uri, subprotocols=["a", "b"]) as ws:
                assert ws.subprotocol == "b"
            assert (await _status(server.port or 0, "/wrong", subprotocols=["a"])).status == 500

    run(main())


def test_basic_auth(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(ws.username)

    async def check(username: str, password: str) -> bool:
        return password == f"{username}!"

    def header(user: str, password: str) -> list[tuple[str, str]]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return [("Authorization", f"Basic {token}")]

    async def main() -> None:
        for auth in (
            basic_auth(realm="dev", credentials=("alice", "s3cret")),
            basic_auth(realm="dev", credentials=[("bob", "x"), ("alice", "s3cret")]),
            basic_auth(realm="dev", check_credentials=lambda u, p: (u, p) == ("alice", "s3cret")),
        ):
            async with serve(handler, "127.0.0.1", 0, process_request=auth) as server:
                port = server.port or 0
                uri = f"ws://127.0.0.1:{port}/"
                async with connect(uri, additional_headers=header("alice", "s3cret")) as ws:
                    assert await ws.recv() == "alice"
                for options in (
                    {},
                    {"additional_headers": header("alice", "wrong")},
                    {"additional_headers": header("mallory", "s3cret")},
                    {"additional_headers": [("Authorization", "Bearer x")]},
                    {"additional_headers": [("Authorization", "Basic !!!")]},
                ):
                    response = await _status(port, **options)
                    assert response.status == 401
                    assert (
                        response.headers["WWW-Authenticate"] == 'Basic realm="dev", charset="UTF-8"'
                    )
        auth = basic_auth(check_credentials=check)
        async with serve(handler, "127.0.0.1", 0, process_request=auth) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            async with connect(uri, additional_headers=header("é", "é!")) as ws:
                assert await ws.recv() == "é"
            assert (await _status(server.port or 0)).status == 401

    run(main())


def test_basic_auth_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="credentials"):
        basic_auth()
    with pytest.raises(ValueError, match="credentials"):
        basic_auth(credentials=("a", "b"), check_credentials=lambda u, p: True)
    for bad in ("ab", ("a", 1), [("a", "b"), "c"], [], 42):
        with pytest.raises(TypeError, match="credentials"):
            basic_auth(credentials=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="check_credentials"):
        basic_auth(check_credentials=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="realm"):
        basic_auth(realm=1, credentials=("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="realm"):
        basic_auth(realm="a\r\nb", credentials=("a", "b"))


def test_create_connection(run: Any) -> None:
    class MyServerConnection(ServerConnection):
        def greeting(self) -> str:
            return f"hello {self.remote_address[0]}"

    class MyClientConnection(ClientConnection):
        pass

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, MyServerConnection)
        await ws.send(ws.greeting())

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, create_connection=MyServerConnection) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            async with connect(uri, create_connection=MyClientConnection) as ws:
                assert isinstance(ws, MyClientConnection)
                assert await ws.recv() == "hello 127.0.0.1"

    run(main())
    with pytest.raises(TypeError, match="create_connection"):
        serve(handler, "127.0.0.1", 0, create_connection=ClientConnection)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="create_connection"):
        connect("ws://127.0.0.1/", create_connection=ServerConnection)  # type: ignore[arg-type]


def test_start_serving_close_code_and_connections(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def main() -> None:
        server = await serve(handler, "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving() and server.get_loop() is asyncio.get_running_loop()
        await server.start_serving()
        assert server.is_serving()
        ws = await connect(f"ws://127.0.0.1:{server.port}/")
        assert len(server.connections) == 1
        assert isinstance(server.connections, set)
        server.close(code=1012, reason="restart")
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert ws.close_code == 1012 and ws.close_reason == "restart"
        await server.wait_closed()
        assert not server.connections

    run(main())


# -- broadcast -----------------------------------------------------------------


@pytest.mark.parametrize(
    "compression",
    [None, "deflate", DeflateOptions(server_no_context_takeover=True, threshold=0)],
    ids=["plain", "deflate-takeover", "deflate-no-takeover"],
)
def test_broadcast(run: Any, compression: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=compression) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            clients = [await connect(uri) for _ in range(5)]
            while len(server.connections) < 5:
                await asyncio.sleep(0.01)
            assert broadcast(server.connections, "hello " * 50) == 0
            assert broadcast(server.connections, b"bytes") == 0
            assert broadcast(server.connections, "as binary", text=False) == 0
            assert broadcast(server.connections, b"as text", text=True) == 0
            for ws in clients:
                assert await ws.recv() == "hello " * 50
                assert await ws.recv() == b"bytes"
                assert await ws.recv() == b"as binary"
                assert await ws.recv() == "as text"
            # Clients can broadcast too (each frames, and masks, its own).
            assert broadcast(clients, "from clients") == 0
            for ws in clients:
                await ws.close()
            # Closed connections are skipped silently.
            assert broadcast(clients, "nobody") == 0
            with pytest.raises(TypeError):
                broadcast(clients, 42)  # type: ignore[arg-type]

    run(main())


def test_broadcast_skips_connections_whose_write_buffer_is_full(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, write_limit=1024, compression=None) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            reader = await connect(uri)
            # A peer that does not read: its server connection fills up.
            _, stalled_writer = await raw_open(server.port or 0)
            while len(server.connections) < 2:
                await asyncio.sleep(0.01)
            skipped = 0
            for _ in range(2000):
                skipped += broadcast(server.connections, b"x" * 4096)
                if skipped:
                    break
                await reader.recv()
                await asyncio.sleep(0)
            assert skipped == 1
            await reader.close()
            await close_writer(stalled_writer)

    connection_module._skipped.next = 0.0  # the warning comes at most every 10 s
    with caplog.at_level(logging.WARNING, logger="fastws.server"):
        run(main())
    assert any("broadcast skipped 1 message" in r.getMessage() for r in caplog.records)


def test_broadcast_raise_exceptions_during_a_fragmented_send(run: Any) -> None:
    release = asyncio.Event()

    async def fragments() -> AsyncIterator[str]:
        yield "a"
        await release.wait()
        yield "b"

    async def handler(ws: ServerConnection) -> None:
        sending = asyncio.ensure_future(ws.send(fragments()))
        await asyncio.sleep(0.05)
        with pytest.raises(Exception) as info:  # an ExceptionGroup (3.11+)
            broadcast([ws], "x", raise_exceptions=True)
        assert isinstance(info.value.exceptions[0], ConcurrencyError)  # type: ignore[attr-defined]
        assert broadcast([ws], "x") == 0  # logged, not raised
        release.set()
        await sending

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert await ws.recv() == "ab"

    run(main())


def test_shared_frames_follow_the_negotiated_settings() -> None:
    """Connections share a broadcast frame only when they frame every message alike."""
    from fastws.protocol import ClientProtocol

    def opened(options: DeflateOptions | None, offer: bool = True) -> ServerProtocol:
        server = ServerProtocol(compression=options)
        client = ClientProtocol("ws://h/", compression=DeflateOptions() if offer else None)
        client.send_request(client.connect())
        server.receive_data(b"".join(client.data_to_send()))
        request = server.events_received()[0]
        assert isinstance(request, Request)
        server.send_response(server.accept(request))
        server.data_to_send()
        return server

    plain = opened(None)
    no_offer = opened(DeflateOptions(server_no_context_takeover=True), offer=False)
    assert plain.broadcast_key() == () == no_offer.broadcast_key()
    assert opened(DeflateOptions()).broadcast_key() is None  # context takeover
    fresh = DeflateOptions(server_no_context_takeover=True)
    a, b = opened(fresh), opened(fresh)
    assert a.broadcast_key() == b.broadcast_key() is not None
    assert opened(DeflateOptions(server_no_context_takeover=True, mem_level=9)).broadcast_key() != (
        a.broadcast_key()
    )
    # The shared frame is what the connection itself would have sent.
    message = b"hello " * 100
    frame = a.encode_message(message, text=False)
    b.send_binary(message)
    assert b"".join(b.data_to_send()) == frame
    a.send_encoded(frame)
    assert b"".join(a.data_to_send()) == frame


@pytest.mark.parametrize(
    ("compression", "encodings"),
    [
        (None, 1),
        (DeflateOptions(server_no_context_takeover=True, threshold=0), 1),
        ("deflate", 0),  # context takeover: each connection compresses its own
    ],
    ids=["plain", "deflate-no-takeover", "deflate-takeover"],
)
def test_broadcast_frames_once_where_it_can(
    run: Any, monkeypatch: pytest.MonkeyPatch, compression: Any, encodings: int
) -> None:
    calls: list[int] = []
    original = ServerProtocol.encode_message

    def counting(self: ServerProtocol, data: Any, *, text: bool) -> bytes:
        calls.append(len(data))
        return original(self, data, text=text)

    monkeypatch.setattr(ServerProtocol, "encode_message", counting)

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=compression) as server:
            clients = [await connect(f"ws://127.0.0.1:{server.port}/") for _ in range(4)]
            while len(server.connections) < 4:
                await asyncio.sleep(0.01)
            broadcast(server.connections, "news " * 100)
            for ws in clients:
                assert await ws.recv() == "news " * 100
                await ws.close()

    run(main())
    assert len(calls) == encodings
