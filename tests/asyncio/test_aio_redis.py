"""RedisBroker against a real redis-server: several processes, a restart, lost counts."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aio_helpers import ENV, SocketlessTransport, handshake_request
from redis_server import RedisServer

import fastws
from fastws.asyncio import ConnectionClosed, ServerConnection, connect, serve
from fastws.pubsub import RedisBroker

WORKER = Path(__file__).with_name("redis_worker.py")


def _subscribers(redis: RedisServer, channel: str) -> int:
    """How many Redis connections listen to ``channel`` (sharded or plain)."""
    total = 0
    for command in ("PUBSUB SHARDNUMSUB", "PUBSUB NUMSUB"):
        reply = redis.command(command, channel).split(b"\r\n")
        # *2 $len channel :count
        total += int(reply[3][1:]) if len(reply) > 3 and reply[3].startswith(b":") else 0
    return total


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_redis_broker_needs_a_url() -> None:
    with pytest.raises(TypeError, match="url"):
        RedisBroker(b"redis://127.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pending"):
        RedisBroker("redis://127.0.0.1", max_pending=0)


def test_fastws_imports_without_redis() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import fastws.pubsub, fastws.asyncio\n"
        "try:\n    fastws.pubsub.RedisBroker('redis://127.0.0.1')\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    ).stdout
    assert "pip install 'pyfastws[redis]'" in out


@pytest.mark.timeout(60)
def test_a_publish_reaches_subscribers_in_two_worker_processes(
    run: Any, loop_name: str, redis_server: RedisServer
) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), redis_server.url, loop_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for _ in range(2)
    ]
    try:
        banners = [w.stdout.readline().split() for w in workers]  # type: ignore[union-attr]
        ports = [int(port) for port, _, _ in banners]
        # The workers run on the loop under test, with the kernels of this run
        # (FASTWS_NO_EXTENSIONS=1 reaches them through the environment).
        for _, loop_class, implementation in banners:
            assert loop_class.startswith(loop_name), loop_class
            assert implementation == fastws.implementation

        async def main() -> None:
            # Two subscribers on each worker, and one client that does not subscribe.
            clients = [await connect(f"ws://127.0.0.1:{port}/") for port in ports for _ in (0, 1)]
            for ws in clients:
                await ws.send("+room")
                assert await ws.recv() == "subscribed"
            await _until(lambda: _subscribers(redis_server, "fastws:room") == 2)
            async with connect(f"ws://127.0.0.1:{ports[0]}/") as publisher:
                await publisher.send("pub room hello from 0")
                assert await publisher.recv() == "published 2 0"  # local subscribers
                assert [await ws.recv() for ws in clients] == ["hello from 0"] * 4
            async with connect(f"ws://127.0.0.1:{ports[1]}/") as publisher:
                await publisher.send("pub room and from 1")
                assert await publisher.recv() == "published 2 0"
                assert [await ws.recv() for ws in clients] == ["and from 1"] * 4
            # The last subscriber of a worker leaving unsubscribes it from Redis.
            for ws in clients[2:]:
                await ws.close()
            await _until(lambda: _subscribers(redis_server, "fastws:room") == 1)
            for ws in clients[:2]:
                await ws.close()
            await _until(lambda: _subscribers(redis_server, "fastws:room") == 0)

        run(main(), timeout=40)
    finally:
        for w in workers:
            assert w.stdin is not None
            w.stdin.close()
            try:
                w.wait(10)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
            assert w.stdout is not None
            w.stdout.close()
    assert [w.returncode for w in workers] == [0, 0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sharded", [None, False], ids=["sharded", "plain"])
def test_redis_restart_reconnects_and_counts_the_lost(
    run: Any, redis_server: RedisServer, sharded: bool | None, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.subscribe("t")
        await ws.send("subscribed")
        await ws.wait_closed()

    async def main() -> None:
        broker = RedisBroker(redis_server.url, sharded=sharded, max_backoff=0.3)
        # Another process, as far as Redis can tell: a second broker.
        other = RedisBroker(redis_server.url, sharded=sharded, max_backoff=0.3)
        received: list[tuple[str, bytes, bool]] = []
        await other.start(lambda *args: received.append(args))
        other.subscribe("t")
        try:
            async with serve(handler, "127.0.0.1", 0, broker=broker) as server:
                await broker.wait_connected()
                await other.wait_connected()
                assert broker.sharded is (sharded is None)
                async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    assert await ws.recv() == "subscribed"
                    await _until(lambda: _subscribers(redis_server, "fastws:t") == 2)
                    other.publish("t", b"before", True)
                    assert await ws.recv() == "before"

                    redis_server.stop()
                    await _until(lambda: not broker.connected and not other.connected)
                    # Local subscribers still get local publishes; Redis misses them.
                    for n in range(3):
                        assert server.publish("t", f"during {n}") == (1, 0)
                        assert await ws.recv() == f"during {n}"
                    assert broker.lost == 3
                    other.publish("t", b"lost too", True)
                    assert other.lost == 1

                    redis_server.start()
                    await asyncio.wait_for(broker.wait_connected(), 10)
                    await asyncio.wait_for(other.wait_connected(), 10)
                    await _until(lambda: _subscribers(redis_server, "fastws:t") == 2)
                    other.publish("t", b"after", False)
                    assert await ws.recv() == b"after"
                    assert (broker.lost, other.lost) == (3, 1)
                    # The other side receives what the server publishes again.
                    server.publish("t", "to the other")
                    assert await ws.recv() == "to the other"
                    await _until(lambda: received == [("t", b"to the other", True)])
        finally:
            await other.close()

    caplog.set_level("INFO", "fastws.pubsub")
    run(main(), timeout=40)
    messages = [r.getMessage() for r in caplog.records if r.name == "fastws.pubsub"]
    assert any("reconnecting in" in m for m in messages)
    assert any("lost 1 publish(es)" in m for m in messages)
    assert sum("connected to Redis" in m for m in messages) >= 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ["drop", "close"])
def test_publishes_from_redis_reach_many_subscribers_and_skip_a_slow_one(
    run: Any, redis_server: RedisServer, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path == "/slow":
            # Small kernel buffers: the transport's own buffer fills after a few messages.
            sock = ws.transport.get_extra_info("socket")  # type: ignore[union-attr]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        ws.subscribe("t")
        await ws.send("subscribed")
        await ws.wait_closed()

    async def main() -> None:
        broker = RedisBroker(redis_server.url, max_backoff=0.3)
        other = RedisBroker(redis_server.url, max_backoff=0.3)
        await other.start(lambda *args: None)
        try:
            async with serve(
                handler,
                "127.0.0.1",
                0,
                broker=broker,
                compression=None,
                max_backpressure=32 << 10,
                backpressure=policy,
            ) as server:
                url = f"ws://127.0.0.1:{server.port}"
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setblocking(False)
                await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
                # It never reads again: its closing handshake cannot finish (the
                # server's close frame waits behind what it did not read), so
                # close() gives up after close_timeout instead of the default 10 s.
                slow = await connect(
                    f"{url}/slow", sock=sock, max_queue=1, max_size=None, close_timeout=0.5
                )
                fast = await asyncio.gather(*(connect(f"{url}/") for _ in range(50)))
                for ws in (slow, *fast):
                    assert await ws.recv() == "subscribed"
                await broker.wait_connected()
                await other.wait_connected()
                await _until(lambda: _subscribers(redis_server, "fastws:t") == 1)
                [conn_slow] = [c for c in server.connections if c.request.path == "/slow"]
                chunk = bytes(16 << 10)
                for _ in range(200):
                    other.publish("t", chunk, False)
                    # Every fast subscriber gets every message.
                    assert await asyncio.gather(*(ws.recv() for ws in fast)) == [chunk] * 50
                    if policy == "close" and conn_slow.state.name != "OPEN":
                        break
                    if policy == "drop" and any(
                        "skipped" in r.getMessage() for r in caplog.records
                    ):
                        break
                else:
                    raise AssertionError("the slow subscriber was never skipped")
                if policy == "close":
                    with pytest.raises(ConnectionClosed):
                        while True:
                            await slow.recv()
                    assert slow.close_code == 1013
                else:
                    assert conn_slow.state.name == "OPEN"
                    assert "t" in conn_slow.topics
                await asyncio.gather(slow.close(), *(ws.close() for ws in fast))
                await _until(lambda: _subscribers(redis_server, "fastws:t") == 0)
                assert server.topics() == {}
        finally:
            await other.close()

    caplog.set_level("INFO")
    run(main(), timeout=50)


@pytest.mark.timeout(60)
def test_ten_thousand_subscribers_on_one_topic(run: Any, redis_server: RedisServer) -> None:
    """Each of 10,000 subscribers gets a local publish and one from Redis, once each, in order.

    The server's own connection code on socketless transports (10,000 pairs
    of loopback sockets would exhaust the file descriptors of a test run).
    """
    count = 10_000

    async def handler(ws: ServerConnection) -> None:
        ws.subscribe("all")
        await ws.wait_closed()

    async def main() -> None:
        # Debug mode records a traceback per callback: too slow for 10,000 connections.
        asyncio.get_running_loop().set_debug(False)
        broker = RedisBroker(redis_server.url, max_backoff=0.3)
        other = RedisBroker(redis_server.url, max_backoff=0.3)
        await other.start(lambda *args: None)
        try:
            async with serve(
                handler, "127.0.0.1", 0, broker=broker, compression=None, ping_interval=None
            ) as server:
                request = handshake_request(server.port or 0)
                subscribers: list[tuple[ServerConnection, SocketlessTransport]] = []
                for _ in range(count):
                    conn = server._make_connection()
                    transport = SocketlessTransport(keep=True)
                    conn.connection_made(transport)
                    conn.data_received(request)
                    subscribers.append((conn, transport))
                await _until(lambda: server.topics() == {"all": count})
                await broker.wait_connected()
                await other.wait_connected()
                await _until(lambda: _subscribers(redis_server, "fastws:all") == 1)
                for _, transport in subscribers:
                    assert transport.data is not None
                    assert transport.data.startswith(b"HTTP/1.1 101 ")
                    transport.data.clear()

                local = os.urandom(1024)
                assert server.publish("all", local) == (count, 0)
                remote = "\u00e9" * 600  # 1,200 bytes of UTF-8
                other.publish("all", remote.encode(), True)
                # Framed by hand: FIN + opcode, 126, the 16-bit length, no mask.
                expected = b"\x82\x7e\x04\x00" + local + b"\x81\x7e\x04\xb0" + remote.encode()
                last = subscribers[-1][1]
                await _until(lambda: last.written >= len(expected))
                assert all(transport.data == expected for _, transport in subscribers)
                assert (broker.lost, other.lost) == (0, 0)

                for conn, transport in subscribers:
                    transport.closing = True
                    conn.connection_lost(None)
                assert server.topics() == {}
                await _until(lambda: _subscribers(redis_server, "fastws:all") == 0)
                await _until(lambda: not server._tasks)
                assert server._connections == set()
        finally:
            await other.close()

    run(main(), timeout=50)
