"""Echo server and client, as in the quick start of websockets' documentation."""

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main(port):
    async with serve(echo, "127.0.0.1", port):
        async with connect(f"ws://127.0.0.1:{port}") as websocket:
            received = []
            for message in ["Hello world!", b"\x00\x01binary", "é" * 3000, b"x" * 70000]:
                await websocket.send(message)
                received.append(await websocket.recv())
            # A fragmented message, from an iterable.
            await websocket.send(["frag", "mented"])
            received.append(await websocket.recv())
        return {
            "received": [repr(m) if len(m) < 100 else (type(m).__name__, len(m)) for m in received],
            "close_code": websocket.close_code,
        }
