"""recv(decode=...) and send(text=...), as in websockets 13 and later."""

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


async def handler(websocket):
    await websocket.send("text frame")
    await websocket.send(b"binary frame")
    await websocket.send(b'{"json": "as text"}', text=True)
    await websocket.send("str as binary", text=False)
    async for message in websocket:
        await websocket.send(type(message).__name__)


async def main(port):
    async with serve(handler, "127.0.0.1", port):
        async with connect(f"ws://127.0.0.1:{port}") as websocket:
            received = [
                await websocket.recv(decode=False),
                await websocket.recv(decode=True),
                await websocket.recv(),
                await websocket.recv(),
            ]
            kinds = []
            for message, text in [(b"bytes", True), ("str", False), ("str", None)]:
                await websocket.send(message, text=text)
                kinds.append(await websocket.recv())
            await websocket.send(["a", "b"], text=False)
            kinds.append(await websocket.recv())
            streamed = []
            await websocket.send("stream")
            async for fragment in websocket.recv_streaming(decode=False):
                streamed.append(fragment)
    return {"received": [repr(m) for m in received], "kinds": kinds, "streamed": streamed}
