"""Keepalive and latency: ping() returns the pong waiter, latency is measured by pings."""

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


async def handler(websocket):
    # Keepalive pings measure the latency (uvloop's clock counts milliseconds:
    # there, websockets may measure 0 on a loopback connection).
    for _ in range(50):
        if websocket.latency:
            break
        await asyncio.sleep(0.01)
    await websocket.send(f"measured {websocket.latency >= 0}")
    await websocket.wait_closed()


async def main(port):
    results = {}
    async with serve(handler, "127.0.0.1", port, ping_interval=0.05, ping_timeout=5):
        async with connect(f"ws://127.0.0.1:{port}", ping_interval=None) as websocket:
            results["initial"] = websocket.latency
            pong_waiter = await websocket.ping()
            latency = await pong_waiter
            results["latency"] = 0 <= latency < 5
            results["stored"] = websocket.latency == latency
            pong_waiter = await websocket.ping("custom")
            results["custom"] = (await pong_waiter) >= 0
            await websocket.pong(b"unsolicited")
            results["server"] = await websocket.recv()
    return results
