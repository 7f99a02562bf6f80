"""Echo applications for the uvicorn benchmark (bench/uvicorn/run.py).

``starlette_app``: a Starlette WebSocket endpoint that receives a message and
sends it back (text as text, bytes as bytes), the way FastAPI and Starlette
applications are written. ``raw_app``: the same echo as a bare ASGI
callable, to show how much of the cost is the framework's.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    """Receive, then send the message back, until the client leaves."""
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


starlette_app = Starlette(routes=[WebSocketRoute("/", echo)])


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same echo as a bare ASGI application."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send(
            {"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")}
        )
