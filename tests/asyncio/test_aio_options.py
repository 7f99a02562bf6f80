"""Every option of serve() and connect()."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import pytest
from aio_helpers import (
    awaitable,
    close_writer,
    echo_handler,
    handshake_request,
    masked_frame,
    raw_open,
    tolerate_sslproto_leak,
)
from proxy_servers import certificates

from fastws.asyncio import (
    ConnectionClosedError,
    ServerConnection,
    connect,
    serve,
    unix_connect,
    unix_serve,
)
from fastws.events import Request, Response
from fastws.exceptions import InvalidHandshake
from fastws.extensions.permessage_deflate import DeflateOptions


def test_max_size(run: Any) -> None:
    errors: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            errors.append(exc)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, max_size=1000) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1009
            # Exactly the limit is fine.
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send(b"x" * 1000)
                await ws.wait_closed()
                assert ws.close_code == 1000

    run(main())
    assert len(errors) == 1 and getattr(errors[0], "code", None) == 1009


def test_client_max_size(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("y" * 100)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", max_size=50) as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1009

    run(main())


def test_max_queue_pauses_reading(run: Any) -> None:
    async def main() -> None:
        gate = asyncio.Event()
        conns: list[ServerConnection] = []

        async def handler(ws: ServerConnection) -> None:
            conns.append(ws)
            await gate.wait()
            got = [await ws.recv() for _ in range(50)]
            assert got == [f"m{i}" for i in range(50)]
            await ws.send("done")

        async with serve(handler, "127.0.0.1", 0, max_queue=4) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                for i in range(50):
                    await ws.send(f"m{i}")
                await asyncio.sleep(0.1)
                conn = conns[0]
                assert conn._reading_paused
                assert len(conn._queue) < 50
                gate.set()
                assert await ws.recv() == "done"
                assert not conn._reading_paused

    run(main())


def test_write_limit_bounds_memory_of_a_peer_that_never_reads(run: Any) -> None:
    sizes: list[int] = []
    blocked = asyncio.Event

    async def main() -> None:
        stuck = blocked()

        async def handler(ws: ServerConnection) -> None:
            chunk = b"x" * 16384
            try:
                for _ in range(2000):  # 32 MiB if nothing pushed back
                    sending = asyncio.ensure_future(ws.send(chunk))
                    done, _ = await asyncio.wait({sending}, timeout=0.5)
                    assert ws.transport is not None
                    sizes.append(ws.transport.get_write_buffer_size())
                    if not done:
                        stuck.set()
                        sending.cancel()
                        return
            finally:
                ws.abort()

        async with serve(handler, "127.0.0.1", 0, write_limit=65536, compression=None) as server:
            _reader, writer = await raw_open(server.port or 0)
            await asyncio.wait_for(stuck.wait(), 10)
            await close_writer(writer)

    run(main())
    # The buffer never grew much above the high-water mark.
    assert max(sizes) <= 65536 + 16384 + 64


def test_keepalive_ping_timeout_closes_1011(run: Any) -> None:
    errors: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            errors.append(exc)

    async def main() -> None:
        async with serve(
            handler, "127.0.0.1", 0, ping_interval=0.05, ping_timeout=0.1, close_timeout=0.2
        ) as server:
            # A peer that completes the handshake and then never answers.
            reader, writer = await raw_open(server.port or 0)
            data = await asyncio.wait_for(reader.read(), 5)  # until the server hangs up
            await close_writer(writer)
            assert b"\x88" in data  # a close frame was sent
            assert (1011).to_bytes(2, "big") in data

    run(main())
    assert errors and getattr(errors[0], "code", None) == 1011


def test_keepalive_with_healthy_peer(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, ping_interval=0.02, ping_timeout=0.5) as s:
            async with connect(
                f"ws://127.0.0.1:{s.port}/", ping_interval=0.02, ping_timeout=0.5
            ) as ws:
                await asyncio.sleep(0.3)
                await ws.send("alive")
                assert await ws.recv() == "alive"

    run(main())


def test_open_timeout_closes_slow_handshake(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, open_timeout=0.2) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
            start = time.monotonic()
            data = await asyncio.wait_for(reader.read(), 5)
            elapsed = time.monotonic() - start
            await close_writer(writer)
            assert data == b""
            assert 0.1 < elapsed < 3

    run(main())


def test_client_open_timeout(run: Any) -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(TimeoutError):
                await connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_close_timeout_aborts_unresponsive_peer(run: Any) -> None:
    async def main() -> None:
        closed = asyncio.Event()

        async def handler(ws: ServerConnection) -> None:
            start = time.monotonic()
            await ws.close(1000)
            assert time.monotonic() - start < 3
            assert ws.close_code in (1000, 1006)
            closed.set()

        async with serve(handler, "127.0.0.1", 0, close_timeout=0.2) as server:
            _reader, writer = await raw_open(server.port or 0)
            await asyncio.wait_for(closed.wait(), 5)
            await close_writer(writer)

    run(main())


@pytest.mark.parametrize(
    ("server_c", "client_c", "expected"),
    [
        ("deflate", "deflate", ["permessage-deflate"]),
        (None, "deflate", []),
        ("deflate", None, []),
        (DeflateOptions(server_no_context_takeover=True), "deflate", ["permessage-deflate"]),
    ],
)
def test_compression(run: Any, server_c: Any, client_c: Any, expected: list[str]) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, compression=server_c) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", compression=client_c) as ws:
                assert ws.extensions == expected
                text = "compress me " * 1000
                await ws.send(text)
                assert await ws.recv() == text

    run(main())


def test_bad_compression_option() -> None:
    with pytest.raises(ValueError):
        serve(echo_handler, "127.0.0.1", 0, compression="gzip")


def test_origins(run: Any) -> None:
    async def main() -> None:
        origins = ["https://good.example", None]
        async with serve(echo_handler, "127.0.0.1", 0, origins=origins) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            async with connect(uri, origin="https://good.example") as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
            async with connect(uri) as ws:  # no Origin: allowed by None
                await ws.send("ok")
                assert await ws.recv() == "ok"
            with pytest.raises(InvalidHandshake) as info:
                await connect(uri, origin="https://evil.example")
            assert info.value.status == 403

    run(main())


def test_subprotocols(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(ws.subprotocol or "none")

    def select(ws: ServerConnection, offered: Sequence[str]) -> str | None:
        # websockets' signature: the connection (its request is known), then the offer.
        assert isinstance(ws, ServerConnection) and ws.request is not None
        return "b" if "b" in offered else None

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, subprotocols=["chat", "superchat"]) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            async with connect(uri, subprotocols=["superchat", "chat"]) as ws:
                assert ws.subprotocol == "chat"  # the server's preference wins
                assert await ws.recv() == "chat"
            async with connect(uri, subprotocols=["other"]) as ws:
                assert ws.subprotocol is None
                assert await ws.recv() == "none"
        async with serve(handler, "127.0.0.1", 0, select_subprotocol=select) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["a", "b"]) as ws:
                assert ws.subprotocol == "b"

    run(main())


@pytest.mark.parametrize("is_async", [False, True])
def test_process_request(run: Any, is_async: bool) -> None:
    def process(ws: ServerConnection, request: Request) -> Any:
        result: Response | None = None
        if request.path == "/health":
            result = ws.respond(200, "OK\n")
        elif request.headers.get("Authorization") != "Bearer t":
            result = ws.respond(401, "who are you?\n", [("WWW-Authenticate", "Bearer")])
        return awaitable(result) if is_async else result

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, process_request=process) as server:
            port = server.port
            # Plain HTTP (no upgrade) to the health check.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            await close_writer(writer)
            assert data.startswith(b"HTTP/1.1 200 ")
            assert data.endswith(b"OK\n")
            # A WebSocket client asking the health check gets the 200 as a failure.
            with pytest.raises(InvalidHandshake) as info:
                await connect(f"ws://127.0.0.1:{port}/health")
            assert info.value.status == 200
            with pytest.raises(InvalidHandshake) as info:
                await connect(f"ws://127.0.0.1:{port}/")
            assert info.value.status == 401
            assert info.value.response is not None
            assert info.value.response.headers.get("WWW-Authenticate") == "Bearer"
            uri = f"ws://127.0.0.1:{port}/"
            async with connect(uri, additional_headers=[("Authorization", "Bearer t")]) as ws:
                await ws.send("in")
                assert await ws.recv() == "in"

    run(main())


def test_process_request_error_is_500(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    def process(ws: ServerConnection, request: Request) -> Response | None:
        raise RuntimeError("oops")

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, process_request=process) as server:
            with pytest.raises(InvalidHandshake) as info:
                await connect(f"ws://127.0.0.1:{server.port}/")
            assert info.value.status == 500

    run(main())
    assert "process_request failed" in caplog.text


@pytest.mark.parametrize("callable_headers", [False, True])
def test_extra_headers(run: Any, callable_headers: bool) -> None:
    pairs = [("X-Served-By", "fastws"), ("X-Thing", "1")]
    headers: Any = (
        (lambda request: [*pairs, ("X-Path", request.path)]) if callable_headers else pairs
    )

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, extra_headers=headers) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/p") as ws:
                assert ws.response is not None
                assert ws.response.headers.get("X-Served-By") == "fastws"
                if callable_headers:
                    assert ws.response.headers.get("X-Path") == "/p"

    run(main())


def test_no_user_agent(run: Any) -> None:
    seen: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append(ws.request.headers.get("User-Agent"))

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", user_agent=None) as ws:
                await ws.wait_closed()

    run(main())
    assert seen == [None]


def test_client_headers_values(run: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        headers = ws.request.headers
        seen.append({k: headers.get(k) for k in ("Origin", "User-Agent", "X-Extra")})

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, origins=["https://me.example"]) as server:
            async with connect(
                f"ws://127.0.0.1:{server.port}/",
                origin="https://me.example",
                user_agent="tester/1.0",
                additional_headers=[("X-Extra", "yes")],
            ) as ws:
                await ws.wait_closed()

    run(main())
    assert seen == [{"Origin": "https://me.example", "User-Agent": "tester/1.0", "X-Extra": "yes"}]


@tolerate_sslproto_leak
def test_tls(run: Any) -> None:
    server_ctx, client_ctx = certificates()

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, ssl=server_ctx) as server:
            async with connect(f"wss://localhost:{server.port}/", ssl=client_ctx) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"
                await ws.send(b"x" * 100_000)
                assert await ws.recv() == b"x" * 100_000
            assert ws.close_code == 1000
            # An untrusting client fails the TLS handshake.
            with pytest.raises(ssl.SSLError):
                await connect(f"wss://localhost:{server.port}/", ssl=ssl.create_default_context())

    run(main())
    gc.collect()  # see tolerate_sslproto_leak()


def test_ssl_with_ws_uri_is_an_error() -> None:
    with pytest.raises(ValueError):
        connect("ws://localhost/", ssl=ssl.create_default_context())
    with pytest.raises(ValueError):
        connect("http://localhost/")


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, reuse_port=True) as first:
            async with serve(echo_handler, "127.0.0.1", first.port, reuse_port=True) as second:
                assert second.port == first.port
                async with connect(f"ws://127.0.0.1:{first.port}/") as ws:
                    await ws.send("x")
                    assert await ws.recv() == "x"

    run(main())


def test_prebound_socket(run: Any) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def main() -> None:
        async with serve(echo_handler, sock=sock) as server:
            assert server.port == port
            client_sock = socket.create_connection(("127.0.0.1", port))
            async with connect(f"ws://127.0.0.1:{port}/", sock=client_sock) as ws:
                await ws.send("pre-bound")
                assert await ws.recv() == "pre-bound"

    run(main())


@pytest.mark.skipif(sys.platform == "win32", reason="unix sockets")
def test_unix_socket(run: Any) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ws.sock")
            async with unix_serve(echo_handler, path) as server:
                assert server.port is None
                async with unix_connect(path) as ws:
                    await ws.send("over unix")
                    assert await ws.recv() == "over unix"
                async with unix_connect(path, "ws://localhost/x") as ws:
                    assert ws.request is not None and ws.request.path == "/x"

    run(main())


def test_graceful_shutdown(run: Any) -> None:
    cancelled: list[bool] = []

    async def stubborn(ws: ServerConnection) -> None:
        try:
            await asyncio.sleep(60)  # ignores the connection entirely
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        server = await serve(stubborn, "127.0.0.1", 0, close_timeout=0.3)
        clients = [await connect(f"ws://127.0.0.1:{server.port}/") for _ in range(3)]
        # One half-open handshake too.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\n")
        await asyncio.sleep(0.05)
        start = time.monotonic()
        server.close()
        for ws in clients:
            await ws.wait_closed()
            assert ws.close_code == 1001
        await server.wait_closed()
        assert time.monotonic() - start < 5
        assert await asyncio.wait_for(reader.read(), 5) == b""
        await close_writer(writer)
        assert not server.connections

    run(main())
    assert cancelled == [True, True, True]


def test_write_limit_validation() -> None:
    with pytest.raises(ValueError):
        from fastws.asyncio.connection import _write_limits

        _write_limits((10, 20))


def test_raw_frames_after_request(run: Any) -> None:
    """Frames sent in the same packet as the request are not lost."""

    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, compression=None) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(handshake_request(server.port or 0) + masked_frame(1, b"early"))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            frame = await reader.readexactly(7)
            assert frame == b"\x81\x05early"
            await close_writer(writer)

    run(main())


def test_max_fragments(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, max_fragments=3) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send(["a", "b", "c"])
                assert await ws.recv() == "abc"
                await ws.send(["a", "b", "c", "d"])
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1009

    run(main())


def test_fragments_limit_auto() -> None:
    from fastws.asyncio._options import fragments_limit

    assert fragments_limit(1 << 20, "auto") == 1 << 16
    assert fragments_limit(16 << 20, "auto") == 1 << 18
    assert fragments_limit(None, "auto") is None
    assert fragments_limit(1 << 20, None) is None
    assert fragments_limit(1 << 20, 10) == 10
    with pytest.raises(ValueError):
        fragments_limit(1 << 20, 0)
