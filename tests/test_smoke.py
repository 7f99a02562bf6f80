"""A short echo over 127.0.0.1: what every built wheel is checked with."""

from __future__ import annotations

import asyncio
from typing import Any

import fastws


def test_an_echo_round_trip_on_the_installed_package() -> None:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> list[str | bytes]:
        async with fastws.serve(echo, "127.0.0.1", 0) as server:
            async with fastws.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                replies = []
                for message in ("hello", b"\x00\xff" * 1000, "é" * 70_000):
                    await ws.send(message)
                    replies.append(await ws.recv())
                return replies

    assert asyncio.run(main()) == ["hello", b"\x00\xff" * 1000, "é" * 70_000]
