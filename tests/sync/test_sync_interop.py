"""fastws.sync against other libraries, both directions, over 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fastws.sync import ServerConnection, connect, serve

MESSAGES: list[str | bytes] = ["hello", "é" * 3000, b"\x00\xff" * 40_000, b""]


def _echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@pytest.fixture
def fastws_server() -> Iterator[str]:
    server = serve(_echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.port}/"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.mark.parametrize("compression", ["deflate", None])
@pytest.mark.usefixtures("backend_module")  # compressed by zlib, then by ISA-L
def test_websockets_sync_client(fastws_server: str, compression: str | None) -> None:
    sync_client = pytest.importorskip("websockets.sync.client")
    with sync_client.connect(fastws_server, compression=compression) as ws:
        for message in MESSAGES:
            ws.send(message)
            assert ws.recv() == message
        ws.send(["frag", "ments"])
        assert ws.recv() == "fragments"


def test_websocket_client(fastws_server: str) -> None:
    websocket = pytest.importorskip("websocket")
    ws = websocket.create_connection(fastws_server)
    try:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send_binary(b"\x01" * 70_000)
        assert ws.recv() == b"\x01" * 70_000
    finally:
        ws.close()


@pytest.mark.parametrize("library", ["websockets", "aiohttp"])
def test_asyncio_clients(fastws_server: str, library: str) -> None:
    # The other direction of test_fastws_sync_client_against_asyncio_servers.
    big = os.urandom(900_000)

    async def websockets_client() -> None:
        ws_client = pytest.importorskip("websockets.asyncio.client")
        async with ws_client.connect(fastws_server, max_size=None) as ws:
            for message in [*MESSAGES, big]:
                await ws.send(message)
                assert await ws.recv() == message

    async def aiohttp_client() -> None:
        aiohttp = pytest.importorskip("aiohttp")
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(fastws_server, max_msg_size=0) as ws:
                for message in [*MESSAGES, big]:
                    if isinstance(message, str):
                        await ws.send_str(message)
                        assert await ws.receive_str() == message
                    else:
                        await ws.send_bytes(message)
                        assert await ws.receive_bytes() == message

    main = websockets_client if library == "websockets" else aiohttp_client
    asyncio.run(asyncio.wait_for(main(), 20))


@pytest.mark.parametrize("compression", ["deflate", None])
def test_fastws_sync_client_against_websockets_sync_server(compression: str | None) -> None:
    sync_server = pytest.importorskip("websockets.sync.server")

    def echo(ws: Any) -> None:
        for message in ws:
            ws.send(message)

    with sync_server.serve(echo, "127.0.0.1", 0, compression=compression) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            port = server.socket.getsockname()[1]
            with connect(f"ws://127.0.0.1:{port}/", compression=compression) as ws:
                for message in MESSAGES:
                    ws.send(message)
                    assert ws.recv() == message
                assert ws.response is not None
                offered = ws.response.headers.get("Sec-WebSocket-Extensions")
                assert (offered is not None) == (compression is not None)
        finally:
            server.shutdown()
            thread.join(10)


@pytest.mark.parametrize("library", ["fastws", "websockets", "aiohttp"])
def test_fastws_sync_client_against_asyncio_servers(library: str) -> None:
    ready = threading.Event()
    stop: list[Any] = []
    port: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        stop.append((loop, done))
        if library == "fastws":
            from fastws.asyncio import serve as aserve

            async def handler(ws: Any) -> None:
                async for message in ws:
                    await ws.send(message)

            async with aserve(handler, "127.0.0.1", 0) as server:
                port.append(server.port)
                ready.set()
                await done
        elif library == "websockets":
            ws_server = pytest.importorskip("websockets.asyncio.server")

            async def handler2(ws: Any) -> None:
                async for message in ws:
                    await ws.send(message)

            async with ws_server.serve(handler2, "127.0.0.1", 0) as server:
                port.append(server.sockets[0].getsockname()[1])
                ready.set()
                await done
        else:
            web = pytest.importorskip("aiohttp.web")

            async def route(request: Any) -> Any:
                ws = web.WebSocketResponse(max_msg_size=0)
                await ws.prepare(request)
                async for msg in ws:
                    if msg.type == web.WSMsgType.TEXT:
                        await ws.send_str(msg.data)
                    elif msg.type == web.WSMsgType.BINARY:
                        await ws.send_bytes(msg.data)
                return ws

            app = web.Application()
            app.router.add_get("/", route)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port.append(runner.addresses[0][1])
            ready.set()
            await done
            await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    try:
        assert ready.wait(10)
        with connect(f"ws://127.0.0.1:{port[0]}/") as ws:
            for message in MESSAGES:
                ws.send(message)
                assert ws.recv() == message
            big = os.urandom(900_000)
            ws.send(big)
            assert ws.recv() == big
    finally:
        if stop:
            loop, done = stop[0]
            loop.call_soon_threadsafe(done.set_result, None)
        thread.join(10)
