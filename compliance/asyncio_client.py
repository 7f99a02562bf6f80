"""The Autobahn TestSuite client runner for ``fastws.asyncio.connect``.

Reads ``$AUTOBAHN_URL`` (default ``ws://127.0.0.1:9001``), asks for the case
count, runs every case as an echo client (offering permessage-deflate,
accepting messages up to 16 MiB), then asks the server to write its reports::

    AUTOBAHN_URL=ws://127.0.0.1:9001 python compliance/asyncio_client.py [--uvloop] [--callback]

With ``--callback`` each case echoes with ``on_message(ws.send_nowait)``
instead of an ``async for`` loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastws
from fastws.asyncio import ConnectionClosed, connect

__all__ = ["main"]

MAX_SIZE = 16 << 20


async def _echo_case(uri: str, callback: bool) -> None:
    try:
        async with connect(
            uri, max_size=MAX_SIZE, ping_interval=None, close_timeout=5, open_timeout=10
        ) as ws:
            if callback:
                ws.on_message(ws.send_nowait)
                await ws.wait_closed()
                return
            async for message in ws:
                await ws.send(message)
    except ConnectionClosed:
        pass
    except (OSError, asyncio.TimeoutError) as exc:
        print(f"{uri}: {exc!r}", file=sys.stderr)


async def run(base: str, agent: str, callback: bool = False) -> int:
    """Run every case against ``base``; return the number of cases."""
    async with connect(f"{base}/getCaseCount", compression=None) as ws:
        count = int(await ws.recv())
    for case in range(1, count + 1):
        uri = f"{base}/runCase?case={case}&agent={agent}"
        await asyncio.wait_for(_echo_case(uri, callback), 120)
    async with connect(f"{base}/updateReports?agent={agent}", compression=None) as ws:
        await ws.wait_closed()
    return count


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default=f"fastws-asyncio/{fastws.__version__}")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--callback", action="store_true", help="echo with on_message()")
    args = parser.parse_args()
    base = os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9001").rstrip("/")
    coro = run(base, args.agent, args.callback)
    if args.uvloop:
        import uvloop

        count = uvloop.run(coro)
    else:
        count = asyncio.run(coro)
    print(f"ran {count} cases as {args.agent} ({fastws.implementation})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
