"""An echo server on ``fastws.sync.serve`` (threads), for the Autobahn TestSuite::

python compliance/sync_server.py --port 9001
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastws.sync import ServerConnection, serve

__all__ = ["main"]


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--max-size", type=int, default=16 << 20)
    args = parser.parse_args()
    server = serve(
        echo, "127.0.0.1", args.port, max_size=args.max_size, ping_interval=None, origins=["*"]
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
