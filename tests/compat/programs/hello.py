"""The "hello" server and client of websockets' tutorial."""

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosedOK


async def hello(websocket):
    name = await websocket.recv()
    greeting = f"Hello {name}!"
    await websocket.send(greeting)


async def main(port):
    results = {}
    async with serve(hello, "127.0.0.1", port):
        async with connect(f"ws://127.0.0.1:{port}") as websocket:
            await websocket.send("World")
            results["greeting"] = await websocket.recv()
            try:
                await websocket.recv()
            except ConnectionClosedOK as exc:
                results["after"] = type(exc).__name__
            results["close_code"] = websocket.close_code
    return results
