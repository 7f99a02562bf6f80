"""One fan-out server for bench/pubsub/run.py: ``python server.py MODE WS_PORT CONTROL_PORT``.

Modes:

* ``fastws-publish``: ``ws.subscribe("t")`` in the handler, ``server.publish("t", msg)``.
* ``websockets-broadcast``: websockets' ``broadcast(connections, msg)``.
* ``picows-broadcast``: picows's websockets-compatible ``broadcast(connections, msg)``
  (``picows.websockets``).
* ``websockets-send-loop``: ``for ws in connections: await ws.send(msg)`` (websockets).
* ``fastws-send-loop``: the same loop on fastws connections.

Every mode runs on uvloop unless the mode ends with ``-asyncio``; compression
is off everywhere. The control connection (one line each way) drives the
runs: ``PUB size`` makes the server publish one message of ``size`` bytes
to every connection, ``DONE`` (sent by the load generator once the last
client got it) makes the server answer with the CPU time it spent since the
publish started (user, system), the ``time.monotonic()`` at which it started,
and the CPU time spent in the publish call itself.

``python server.py redis-worker WS_PORT CONTROL_PORT REDIS_URL`` is one of
the two workers of the Redis latency scenario: a fastws server with a
:class:`~fastws.pubsub.RedisBroker` whose handler subscribes every
connection to ``t``. On the control connection, ``RATE rate count size``
makes it publish ``count`` messages of ``size`` bytes at ``rate`` per
second, each starting with its ``time.monotonic_ns()`` and its number (8
bytes each, big-endian), then answer ``SENT count lost`` (``lost``: the
broker's :attr:`~fastws.pubsub.RedisBroker.lost`).
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from typing import Any

_TIMESTAMP = 16  # bytes: monotonic_ns and the message's number


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main(mode: str, ws_port: int, control_port: int) -> None:
    """Serve WebSocket clients on ``ws_port`` and the control line on ``control_port``."""
    connections: set[Any] = set()
    publish: Any

    if mode.startswith("fastws"):
        from fastws.asyncio import serve

        async def fastws_handler(ws: Any) -> None:
            ws.subscribe("t")
            connections.add(ws)
            try:
                await ws.wait_closed()
            finally:
                connections.discard(ws)

        ws_server: Any = await serve(
            fastws_handler,
            "127.0.0.1",
            ws_port,
            compression=None,
            backlog=4096,
            max_connections=None,
            ping_interval=None,
        )
        if mode.startswith("fastws-publish"):

            async def publish(message: bytes) -> None:
                ws_server.publish("t", message)

        else:

            async def publish(message: bytes) -> None:
                for ws in list(connections):
                    await ws.send(message)

    elif mode.startswith("picows"):
        from picows.websockets.asyncio.server import broadcast as picows_broadcast
        from picows.websockets.asyncio.server import serve as picows_serve

        async def picows_handler(ws: Any) -> None:
            connections.add(ws)
            try:
                await ws.wait_closed()
            finally:
                connections.discard(ws)

        ws_server = await picows_serve(
            picows_handler,
            "127.0.0.1",
            ws_port,
            compression=None,
            backlog=4096,
            ping_interval=None,
            max_queue=16,
        )

        async def publish(message: bytes) -> None:
            picows_broadcast(connections, message)

    else:
        from websockets.asyncio.server import broadcast
        from websockets.asyncio.server import serve as ws_serve

        async def websockets_handler(ws: Any) -> None:
            connections.add(ws)
            try:
                await ws.wait_closed()
            finally:
                connections.discard(ws)

        ws_server = await ws_serve(
            websockets_handler,
            "127.0.0.1",
            ws_port,
            compression=None,
            backlog=4096,
            ping_interval=None,
            max_queue=16,
        )
        if mode.startswith("websockets-broadcast"):

            async def publish(message: bytes) -> None:
                broadcast(connections, message)

        else:

            async def publish(message: bytes) -> None:
                for ws in list(connections):
                    await ws.send(message)

    def cpu() -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime, usage.ru_stime

    started: list[Any] = [(0.0, 0.0), 0.0, (0.0, 0.0)]

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            command, _, argument = line.decode().strip().partition(" ")
            if command == "COUNT":
                writer.write(f"{len(connections)}\n".encode())
            elif command == "PUB":
                message = b"x" * int(argument)
                started[:2] = [cpu(), time.monotonic()]
                await publish(message)
                started[2] = cpu()
            elif command == "DONE":
                (user0, sys0), began, (user1, sys1) = started
                user2, sys2 = cpu()
                in_call = user1 - user0 + sys1 - sys0
                writer.write(f"{user2 - user0} {sys2 - sys0} {began} {in_call}\n".encode())
            await writer.drain()
        writer.close()

    control_server = await asyncio.start_server(control, "127.0.0.1", control_port)
    print("ready", flush=True)
    async with control_server:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    ws_server.close()


async def redis_worker(ws_port: int, control_port: int, url: str) -> None:
    """One worker of the Redis latency scenario (see the module's docstring)."""
    from fastws.asyncio import ServerConnection, serve
    from fastws.pubsub import RedisBroker

    async def handler(ws: ServerConnection) -> None:
        ws.subscribe("t")
        await ws.wait_closed()

    broker = RedisBroker(url)
    loop = asyncio.get_running_loop()

    async def publish_at(server: Any, rate: int, count: int, size: int) -> None:
        padding = b"x" * max(size - _TIMESTAMP, 0)
        began = loop.time()
        sent = 0
        while sent < count:
            due = min(count, int((loop.time() - began) * rate) + 1)
            while sent < due:
                stamp = time.monotonic_ns().to_bytes(8, "big") + sent.to_bytes(8, "big")
                server.publish("t", stamp + padding)
                sent += 1
            await asyncio.sleep(0.0005)

    async with serve(
        handler, "127.0.0.1", ws_port, broker=broker, compression=None, ping_interval=None
    ) as server:
        await broker.wait_connected()

        async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                command, *arguments = line.decode().split()
                if command == "COUNT":
                    writer.write(f"{sum(server.topics().values())}\n".encode())
                elif command == "RATE":
                    rate, count, size = (int(a) for a in arguments)
                    await publish_at(server, rate, count, size)
                    writer.write(f"SENT {count} {broker.lost}\n".encode())
                await writer.drain()
            writer.close()

        control_server = await asyncio.start_server(control, "127.0.0.1", control_port)
        print("ready", flush=True)
        async with control_server:
            await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    _raise_fd_limit()
    MODE = sys.argv[1]
    if MODE == "redis-worker":
        import uvloop

        uvloop.run(redis_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
        sys.exit(0)
    coro = main(MODE, int(sys.argv[2]), int(sys.argv[3]))
    if MODE.endswith("-asyncio"):
        asyncio.run(coro)
    else:
        import uvloop

        uvloop.run(coro)
