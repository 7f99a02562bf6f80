"""The Autobahn TestSuite client runner for ``fastws.sync.connect`` (threads).

Reads ``$AUTOBAHN_URL`` (default ``ws://127.0.0.1:9001``), asks for the case
count, runs every case as an echo client (offering permessage-deflate,
accepting messages up to 16 MiB), then asks the server to write its reports::

    AUTOBAHN_URL=ws://127.0.0.1:9001 python compliance/sync_client.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastws
from fastws.sync import ConnectionClosed, connect

__all__ = ["main"]

MAX_SIZE = 16 << 20


def _echo_case(uri: str) -> None:
    try:
        with connect(
            uri, max_size=MAX_SIZE, ping_interval=None, close_timeout=5, open_timeout=10
        ) as ws:
            for message in ws:
                ws.send(message)
    except ConnectionClosed:
        pass
    except (OSError, TimeoutError) as exc:
        print(f"{uri}: {exc!r}", file=sys.stderr)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default=f"fastws-sync/{fastws.__version__}")
    args = parser.parse_args()
    base = os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9001").rstrip("/")
    with connect(f"{base}/getCaseCount", compression=None) as ws:
        count = int(ws.recv())
    for case in range(1, count + 1):
        _echo_case(f"{base}/runCase?case={case}&agent={args.agent}")
    with connect(f"{base}/updateReports?agent={args.agent}", compression=None) as ws:
        for _ in ws:
            pass
    print(f"ran {count} cases as {args.agent} ({fastws.implementation})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
