"""The consumer and producer patterns of websockets' guide, in one handler."""

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

consumed = []


async def consume(message):
    consumed.append(message)


async def consumer_handler(websocket):
    async for message in websocket:
        await consume(message)


async def producer_handler(websocket):
    for i in range(5):
        try:
            await websocket.send(f"tick {i}")
            await asyncio.sleep(0.01)
        except ConnectionClosed:
            break
    await websocket.wait_closed()


async def handler(websocket):
    consumer_task = asyncio.create_task(consumer_handler(websocket))
    producer_task = asyncio.create_task(producer_handler(websocket))
    _, pending = await asyncio.wait(
        [consumer_task, producer_task],
        return_when=asyncio.FIRST_COMPLETED,
    )
    for task in pending:
        task.cancel()


async def main(port):
    consumed.clear()
    async with serve(handler, "127.0.0.1", port):
        async with connect(f"ws://127.0.0.1:{port}") as websocket:
            ticks = [await websocket.recv() for _ in range(5)]
            for i in range(3):
                await websocket.send(f"event {i}")
        # The client closed: the consumer ends, the handler returns.
        await asyncio.sleep(0.05)
    return {"ticks": ticks, "consumed": consumed, "close_code": websocket.close_code}
