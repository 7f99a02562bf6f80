"""Broadcast to many clients with broadcast(), registering connections, as websockets shows."""

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast, serve

CONNECTIONS = set()


async def register(websocket):
    CONNECTIONS.add(websocket)
    try:
        await websocket.wait_closed()
    finally:
        CONNECTIONS.remove(websocket)


async def main(port):
    CONNECTIONS.clear()
    async with serve(register, "127.0.0.1", port) as server:
        clients = [await connect(f"ws://127.0.0.1:{port}") for _ in range(20)]
        while len(CONNECTIONS) < 20:
            await asyncio.sleep(0.01)
        broadcast(CONNECTIONS, "tick 1")
        broadcast(server.connections, b"tick 2")
        broadcast(CONNECTIONS, "x" * 1000)
        received = []
        for ws in clients:
            received.append([await ws.recv() for _ in range(3)])
        for ws in clients[:10]:
            await ws.close()
        await asyncio.sleep(0.05)
        count = len(CONNECTIONS)
        broadcast(CONNECTIONS, "to the others")
        later = [await ws.recv() for ws in clients[10:]]
        for ws in clients[10:]:
            await ws.close()
    return {
        "same": all(r == received[0] for r in received),
        "first": [m if len(m) < 100 else len(m) for m in received[0]],
        "registered_after_close": count,
        "later": later,
    }
