"""Interoperability: fastws with websockets and aiohttp, in both roles."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import websockets
from aio_helpers import echo_handler
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

from fastws.asyncio import ConnectionClosedError, ServerConnection, connect, serve

COMPRESSION = [pytest.param("deflate", id="deflate"), pytest.param(None, id="plain")]


def _ws_compression(value: str | None) -> Any:
    return "deflate" if value else None


# -- fastws client, websockets server ---------------------------------------


@pytest.mark.parametrize("compression", COMPRESSION)
def test_fastws_client_websockets_server(run: Any, compression: str | None) -> None:
    async def ws_echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(ws_echo, "127.0.0.1", 0, compression=_ws_compression(compression)) as s:
            port = s.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/", compression=compression) as ws:
                assert ws.extensions == (["permessage-deflate"] if compression else [])
                await ws.send("text ✓")
                assert await ws.recv() == "text ✓"
                await ws.send(b"\x00\x01binary")
                assert await ws.recv() == b"\x00\x01binary"
                await ws.send(["frag", "mented"])
                assert await ws.recv() == "fragmented"
                big = bytes(range(256)) * 2000
                await ws.send(big)
                assert await ws.recv() == big
                assert await (await ws.ping(b"hi")) >= 0
            assert ws.close_code == 1000

    run(main())


@pytest.mark.parametrize(
    ("code", "reason"), [(1000, ""), (1001, "going away"), (4321, "custom"), (1011, "error")]
)
def test_websockets_server_closes(run: Any, code: int, reason: str) -> None:
    async def closer(ws: Any) -> None:
        await ws.recv()
        await ws.close(code, reason)

    async def main() -> None:
        async with ws_serve(closer, "127.0.0.1", 0) as s:
            port = s.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("close please")
                await ws.wait_closed()
                assert ws.close_code == code
                assert ws.close_reason == reason

    run(main())


def test_fastws_client_closes_websockets_server(run: Any) -> None:
    seen: list[Any] = []

    async def waiter(ws: Any) -> None:
        try:
            await ws.recv()
        except websockets.ConnectionClosed as exc:
            seen.append((exc.rcvd.code, exc.rcvd.reason))

    async def main() -> None:
        async with ws_serve(waiter, "127.0.0.1", 0) as s:
            port = s.sockets[0].getsockname()[1]
            ws = await connect(f"ws://127.0.0.1:{port}/")
            await ws.close(4000, "client done")
            assert ws.close_code == 4000
            await asyncio.sleep(0.05)

    run(main())
    assert seen == [(4000, "client done")]


# -- websockets client, fastws server ---------------------------------------


@pytest.mark.parametrize("compression", COMPRESSION)
def test_websockets_client_fastws_server(run: Any, compression: str | None) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, compression=compression) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            async with ws_connect(uri, compression=_ws_compression(compression)) as ws:
                await ws.send("text ✓")
                assert await ws.recv() == "text ✓"
                await ws.send(b"\xffbinary")
                assert await ws.recv() == b"\xffbinary"
                await ws.send(["frag", "mented"])
                assert await ws.recv() == "fragmented"
                await ws.send([b"a", b"b"])
                assert await ws.recv() == b"ab"
                big = "é" * 300_000
                await ws.send(big)
                assert await ws.recv() == big
                pong = await ws.ping(b"ping!")
                await asyncio.wait_for(pong, 5)
            assert ws.close_code == 1000

    run(main())


@pytest.mark.parametrize(("code", "reason"), [(1000, "bye"), (1001, ""), (4000, "x")])
def test_fastws_server_closes_websockets_client(run: Any, code: int, reason: str) -> None:
    async def closer(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(code, reason)

    async def main() -> None:
        async with serve(closer, "127.0.0.1", 0) as server:
            async with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("close please")
                with pytest.raises(websockets.ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)

    run(main())


def test_websockets_client_closes_fastws_server(run: Any) -> None:
    seen: list[tuple[int | None, str | None]] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError:
            pass
        seen.append((ws.close_code, ws.close_reason))

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            ws = await ws_connect(f"ws://127.0.0.1:{server.port}/")
            await ws.close(4001, "client says bye")
            await asyncio.sleep(0.05)

    run(main())
    assert seen == [(4001, "client says bye")]


def test_websockets_client_too_big(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, max_size=100) as server:
            async with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("x" * 101)
                with pytest.raises(websockets.ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    run(main())


# -- aiohttp client, fastws server ------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSION)
def test_aiohttp_client_fastws_server(run: Any, compression: str | None) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, compression=compression) as server:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(
                    f"http://127.0.0.1:{server.port}/", compress=15 if compression else 0
                ) as ws:
                    await ws.send_str("text ✓")
                    assert await ws.receive_str() == "text ✓"
                    await ws.send_bytes(b"\x00binary")
                    assert await ws.receive_bytes() == b"\x00binary"
                    big = b"z" * 500_000
                    await ws.send_bytes(big)
                    assert await ws.receive_bytes() == big
                    await ws.ping(b"p")
                    await ws.send_str("after ping")
                    assert await ws.receive_str() == "after ping"
                    await ws.close(code=4002, message=b"aiohttp done")
                    assert ws.close_code == 4002

    run(main())


@pytest.mark.parametrize(("code", "reason"), [(1000, "bye"), (1001, "restart"), (4100, "")])
def test_fastws_server_closes_aiohttp_client(run: Any, code: int, reason: str) -> None:
    async def closer(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(code, reason)

    async def main() -> None:
        async with serve(closer, "127.0.0.1", 0) as server:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{server.port}/") as ws:
                    await ws.send_str("close please")
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.CLOSE
                    assert msg.data == code
                    assert msg.extra == reason

    run(main())


def test_aiohttp_fragmented_and_origin(run: Any) -> None:
    async def main() -> None:
        async with serve(
            echo_handler, "127.0.0.1", 0, origins=["http://ok.example"], compression=None
        ) as server:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{server.port}/"
                async with session.ws_connect(url, origin="http://ok.example") as ws:
                    await ws.send_str("ok")
                    assert await ws.receive_str() == "ok"
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await session.ws_connect(url, origin="http://bad.example")
                assert info.value.status == 403

    run(main())
