"""Routing by path with connection.request.path, as websockets' FAQ shows."""

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosedError
from websockets.frames import CloseCode
from websockets.protocol import State


async def chat(websocket):
    await websocket.send("chat room")


async def news(websocket):
    await websocket.send("news feed")


async def handler(websocket):
    if websocket.request.path == "/chat":
        await chat(websocket)
    elif websocket.request.path.startswith("/news"):
        await news(websocket)
    else:
        await websocket.close(CloseCode.POLICY_VIOLATION, "unknown path")


async def main(port):
    results = {}
    async with serve(handler, "127.0.0.1", port):
        for path in ["/chat", "/news?x=1", "/other"]:
            async with connect(f"ws://127.0.0.1:{port}{path}") as websocket:
                try:
                    results[path] = await websocket.recv()
                except ConnectionClosedError:
                    results[path] = (websocket.close_code, websocket.close_reason)
            results[f"{path} closed"] = websocket.state is State.CLOSED
    return results
