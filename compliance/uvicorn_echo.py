"""A Starlette echo endpoint for the Autobahn TestSuite, served by uvicorn on fastws.

compliance/run.sh (STACK=uvicorn) starts it as::

    python -m uvicorn uvicorn_echo:app --app-dir compliance \\
        --ws fastws.uvicorn:FastWSProtocol --port PORT

Every message is sent back as it came (text as text, bytes as bytes), until
the client closes.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    """Echo every message until the connection ends."""
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


app = Starlette(routes=[WebSocketRoute("/", echo)])
