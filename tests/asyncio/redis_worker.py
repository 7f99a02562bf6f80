"""A worker process for the Redis tests: ``python redis_worker.py REDIS_URL LOOP``.

Serves on a free port with a RedisBroker on ``LOOP`` (``asyncio`` or
``uvloop``) and prints, once ready, the port, the loop's class and
``fastws.implementation`` (the kernels in use).
Clients send ``+topic`` to subscribe (answered ``subscribed``) or
``pub topic message`` to publish (answered ``published D X``).
"""

from __future__ import annotations

import asyncio
import sys

import fastws
from fastws.asyncio import ServerConnection, serve
from fastws.pubsub import RedisBroker


async def handler(ws: ServerConnection) -> None:
    async for message in ws:
        assert isinstance(message, str)
        if message.startswith("+"):
            ws.subscribe(message[1:])
            await ws.send("subscribed")
        else:
            _, topic, text = message.split(" ", 2)
            result = ws.server.publish(topic, text)
            await ws.send(f"published {result.delivered} {result.dropped}")


async def main(url: str) -> None:
    broker = RedisBroker(url, max_backoff=0.5)
    async with serve(handler, "127.0.0.1", 0, broker=broker) as server:
        await broker.wait_connected()
        loop = type(asyncio.get_running_loop())
        print(server.port, f"{loop.__module__}.{loop.__name__}", fastws.implementation, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    if sys.argv[2] == "uvloop":
        import uvloop

        uvloop.run(main(sys.argv[1]))
    else:
        asyncio.run(main(sys.argv[1]))
