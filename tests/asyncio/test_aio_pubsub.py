"""Topics in one process: subscribe, publish (framed once), backpressure policies, cleanup."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aio_helpers import SocketlessTransport, handshake_request

from fastws.asyncio import ClientConnection, ConnectionClosed, ServerConnection, connect, serve
from fastws.extensions.permessage_deflate import DeflateOptions
from fastws.protocol import ServerProtocol
from fastws.pubsub import LocalBroker, PublishResult


async def _subscriber(ws: ServerConnection) -> None:
    """Subscribe to what the client asks for ("+topic"), publish the rest to "chat"."""
    async for message in ws:
        assert isinstance(message, str)
        if message.startswith("+"):
            ws.subscribe(message[1:])
            await ws.send("subscribed")
        elif message.startswith("-"):
            ws.unsubscribe(message[1:])
            await ws.send("unsubscribed")
        else:
            result = ws.publish("chat", message)
            await ws.send(f"published {result.delivered} {result.dropped}")


async def _join(url: str, *topics: str, **options: Any) -> ClientConnection:
    ws = await connect(url, **options)
    for topic in topics:
        await ws.send(f"+{topic}")
        assert await ws.recv() == "subscribed"
    return ws


def test_publish_reaches_the_subscribers_of_a_topic(run: Any) -> None:
    async def main() -> None:
        async with serve(_subscriber, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            a = await _join(url, "chat", "news")
            b = await _join(url, "chat")
            c = await _join(url)
            assert server.topics() == {"chat": 2, "news": 1}
            assert server.publish("news", "n1") == PublishResult(1, 0)
            assert server.publish("chat", b"\x00bin") == (2, 0)
            assert server.publish("nobody", "x") == (0, 0)
            assert await a.recv() == "n1"
            assert await a.recv() == b"\x00bin"
            assert await b.recv() == b"\x00bin"
            # ws.publish() skips the sender.
            await a.send("hello")
            assert await b.recv() == "hello"
            assert await a.recv() == "published 1 0"
            await c.send("from c")
            assert await c.recv() == "published 2 0"
            assert [await a.recv(), await b.recv()] == ["from c", "from c"]
            # exclude=
            [conn_a] = [ws for ws in server.connections if "news" in ws.topics]
            assert conn_a.topics == {"chat", "news"}
            assert server.publish("chat", "not a", exclude=conn_a) == (1, 0)
            assert await b.recv() == "not a"
            await a.send("-chat")
            assert await a.recv() == "unsubscribed"
            assert conn_a.topics == {"news"}
            assert server.topics() == {"chat": 1, "news": 1}
            for ws in (a, b, c):
                await ws.close()
            while server.topics():
                await asyncio.sleep(0.01)

    run(main())


def test_publish_checks_its_arguments(run: Any) -> None:
    async def main() -> None:
        async with serve(_subscriber, "127.0.0.1", 0) as server:
            with pytest.raises(TypeError, match="topic"):
                server.publish(b"chat", "x")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="publish"):
                server.publish("chat", 42)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="exclude"):
                server.publish("chat", "x", exclude="me")  # type: ignore[arg-type]
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("+chat")
                assert await ws.recv() == "subscribed"
                [conn] = server.connections
                with pytest.raises(TypeError, match="topic"):
                    conn.subscribe(1)  # type: ignore[arg-type]
                with pytest.raises(TypeError, match="topic"):
                    conn.unsubscribe(None)  # type: ignore[arg-type]
            await conn.wait_closed()
            with pytest.raises(ConnectionClosed):
                conn.subscribe("late")
            assert server.topics() == {}

    run(main())


@pytest.mark.parametrize(
    "compression",
    [None, DeflateOptions(server_no_context_takeover=True), "deflate"],
    ids=["plain", "deflate-no-takeover", "deflate-takeover"],
)
def test_a_publish_is_framed_once_per_compression_setting(
    run: Any, compression: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    encode = ServerProtocol.encode_message

    def counting(self: ServerProtocol, data: Any, *, text: bool) -> bytes:
        calls.append(len(data))
        return encode(self, data, text=text)

    monkeypatch.setattr(ServerProtocol, "encode_message", counting)

    async def main() -> None:
        async with serve(_subscriber, "127.0.0.1", 0, compression=compression) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            clients = [await _join(url, "t") for _ in range(5)]
            message = "x" * 2000
            assert server.publish("t", message) == (5, 0)
            assert [await ws.recv() for ws in clients] == [message] * 5
            for ws in clients:
                await ws.close()

    run(main())
    # Without context takeover every connection frames alike: once. With it,
    # each connection compresses the message itself (no shared frame).
    assert len(calls) == (0 if compression == "deflate" else 1)


def test_publish_threadsafe(run: Any) -> None:
    async def main() -> None:
        async with serve(_subscriber, "127.0.0.1", 0) as server:
            ws = await _join(f"ws://127.0.0.1:{server.port}/", "t")
            results: list[Any] = []

            def other_thread() -> None:
                future = server.publish_threadsafe("t", bytearray(b"from a thread"))
                results.append(future.result(timeout=5))
                bad = server.publish_threadsafe("t", 1.5)  # type: ignore[arg-type]
                results.append(bad.exception(timeout=5))

            thread = threading.Thread(target=other_thread)
            thread.start()
            assert await ws.recv() == b"from a thread"
            await asyncio.get_running_loop().run_in_executor(None, thread.join)
            assert results[0] == (1, 0)
            assert isinstance(results[1], TypeError)
            await ws.close()

    run(main())


@pytest.mark.parametrize("policy", ["drop", "close"])
def test_a_slow_subscriber(run: Any, policy: str) -> None:
    async def main() -> None:
        async with serve(
            _subscriber,
            "127.0.0.1",
            0,
            max_backpressure=256 << 10,
            backpressure=policy,
            compression=None,  # else 64 KiB of "x" compress to a few bytes
        ) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            slow = await _join(url, "t", max_queue=1, max_size=None)
            fast = await _join(url, "t")
            [conn_slow] = [c for c in server.connections if c.remote_address == slow.local_address]
            sent = 0
            chunk = b"x" * 65536
            while True:
                result = server.publish("t", chunk)
                # The fast client keeps reading: it gets every message.
                assert await fast.recv() == chunk
                sent += 1
                if result.dropped:
                    assert result == (1, 1)
                    break
                assert result == (2, 0)
                assert sent < 20000
            if policy == "drop":
                # Still subscribed; reading again, it gets the next publishes.
                assert conn_slow.state.name == "OPEN"
                received = 0
                while received < sent - 1:
                    assert await slow.recv() == chunk
                    received += 1
                await asyncio.sleep(0.05)
                while conn_slow.transport.get_write_buffer_size():  # type: ignore[union-attr]
                    await asyncio.sleep(0.01)
                server.publish("t", "after")
                while (message := await slow.recv()) != "after":
                    assert message == chunk
            else:
                assert conn_slow.state.name != "OPEN"
                with pytest.raises(ConnectionClosed):
                    while True:
                        await slow.recv()
                assert slow.close_code == 1013
                assert slow.close_reason == "slow subscriber: too much data buffered"
                await conn_slow.wait_closed()
                assert server.topics() == {"t": 1}
            await slow.close()
            await fast.close()

    run(main(), timeout=60)


@pytest.mark.timeout(120)
def test_many_subscribers_and_unsubscribe_on_close(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.subscribe("all")
        ws.subscribe(f"own-{len(ws.server.topics())}")
        await ws.send("ready")
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            for _ in range(3):  # 3 x 100 real connections, open at once
                clients = await asyncio.gather(*(connect(url) for _ in range(100)))
                for ws in clients:
                    assert await ws.recv() == "ready"
                assert server.topics()["all"] == 100
                assert server.publish("all", "to all") == (100, 0)
                for ws in clients:
                    assert await ws.recv() == "to all"
                await asyncio.gather(*(ws.close() for ws in clients))
                while server.topics():
                    await asyncio.sleep(0.01)
                assert server._topics == {}

    run(main(), timeout=100)


@pytest.mark.timeout(120)
def test_ten_thousand_subscribe_disconnect_cycles(run: Any) -> None:
    """The real server code on socketless transports: the topic tables end empty."""

    async def handler(ws: ServerConnection) -> None:
        ws.subscribe("all")
        ws.subscribe(f"room-{len(ws.server._connections) % 7}")
        await ws.wait_closed()

    async def main() -> None:
        # Debug mode records a traceback per callback: too slow for 10,000 connections.
        asyncio.get_running_loop().set_debug(False)
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            request = handshake_request(server.port or 0)
            live: list[tuple[ServerConnection, SocketlessTransport]] = []
            for cycle in range(10_000):
                conn = server._make_connection()
                transport = SocketlessTransport()
                conn.connection_made(transport)
                conn.data_received(request)
                live.append((conn, transport))
                if len(live) == 50 or cycle == 9999:
                    while any(len(c.topics) < 2 for c, _ in live):
                        await asyncio.sleep(0)
                    assert server.publish("all", "x").delivered == len(live)
                    for conn, transport in live:
                        transport.closing = True
                        conn.connection_lost(None)
                    live = []
                    assert server.topics() == {}
            while server._tasks:
                await asyncio.sleep(0.01)
            assert server._topics == {}
            assert server._connections == set()

    run(main(), timeout=100)


def test_a_broker_serves_one_server(run: Any) -> None:
    async def main() -> None:
        broker = LocalBroker()
        async with serve(_subscriber, "127.0.0.1", 0, broker=broker) as server:
            assert server.broker is broker
            assert broker.lost == 0
            with pytest.raises(RuntimeError, match="already serves"):
                await serve(_subscriber, "127.0.0.1", 0, broker=broker)
        # Free again once the server closed.
        async with serve(_subscriber, "127.0.0.1", 0, broker=broker):
            pass

    run(main())
