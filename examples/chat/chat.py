"""A chat with rooms, served by several worker processes that share Redis.

Run it from this folder::

    python chat.py --workers 2 --redis redis://127.0.0.1:6379
    # then open http://127.0.0.1:8765/?room=kitchen in two browser tabs

Each tab connects to ``ws://HOST:PORT/ws/<room>``. The handler subscribes
the connection to its room; what a client sends is published to the room,
the sender included. The kernel spreads the connections among the workers
(SO_REUSEPORT); with ``--redis``, a message published in one worker reaches
the room's members in every worker. The page shows the worker (process id)
that serves it. Without ``--redis``, rooms are per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fastws.asyncio import ServerConnection
from fastws.events import Request, Response

PAGE = Path(__file__).with_name("chat.html").read_bytes()


async def handler(ws: ServerConnection) -> None:
    """Join the room named by the path, then publish every message to it."""
    assert ws.request is not None
    room = ws.request.path.rpartition("/")[2] or "lobby"
    ws.subscribe(room)
    await ws.send(json.dumps({"type": "welcome", "room": room, "worker": os.getpid()}))
    async for message in ws:
        text = message if isinstance(message, str) else message.decode(errors="replace")
        event = {"type": "message", "text": text[:2000], "worker": os.getpid()}
        ws.server.publish(room, json.dumps(event))


def process_request(ws: ServerConnection, request: Request) -> Response | None:
    """Serve the page on ``GET /``; upgrade ``/ws/<room>``; 404 for the rest."""
    path = request.path.partition("?")[0]
    if path.startswith("/ws/"):
        return None
    if path == "/":
        return ws.respond(200, PAGE, {"Content-Type": "text/html; charset=utf-8"})
    return ws.respond(404, "Not found\n")


def main() -> int:
    """Parse the command line and run the workers until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="A chat with rooms on fastws workers.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--redis", default=None, metavar="URL")
    args = parser.parse_args()

    import chat  # this file as a module: the workers import it by name

    from fastws import workers

    return workers.run(
        "chat:handler",
        args.host,
        args.port,
        workers=args.workers,
        redis=args.redis,
        process_request=chat.process_request,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.exit(main())
