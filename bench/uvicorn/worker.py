"""The uvicorn worker of the benchmarks (run.py, callgrind.py): one command line for both.

``fastws-isal`` is fastws.uvicorn with ISA-L compressing
(``FASTWS_DEFLATE_BACKEND=isal`` in the worker's environment); it differs from
``fastws`` only when permessage-deflate is negotiated.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

WS = {
    "fastws": "fastws.uvicorn:FastWSProtocol",
    "fastws-isal": "fastws.uvicorn:FastWSProtocol",
    "websockets-sansio": "websockets-sansio",
    "websockets": "websockets",
    "wsproto": "wsproto",
}
#: Implementations that differ from another only with compression.
DEFLATE_ONLY = {"fastws-isal"}
APPS = {"starlette": "app:starlette_app", "raw": "app:raw_app"}
#: What fastws is measured against, and the issue's goals: REFERENCE's CPU
#: per message over fastws's, at least GOAL in every scenario and SMALL_GOAL in
#: the small-message streams (pipelined, messages of at most 1 KiB); idle
#: memory per connection at most REFERENCE's.
REFERENCE = "websockets-sansio"
GOAL = 1.5
SMALL_GOAL = 2.0
SMALL_STREAMS = ["pipe-16x64-16B", "deflate-pipe-16x64-1KiB"]


def goal(scenario: str) -> float:
    """The goal of one of run.py's load scenarios."""
    return SMALL_GOAL if scenario in SMALL_STREAMS else GOAL


def command(python: str, ws: str, app: str, port: int, loop: str) -> list[str]:
    """The uvicorn command line serving ``app`` with ``--ws ws`` on 127.0.0.1:``port``."""
    return [
        python, "-m", "uvicorn", APPS[app], "--app-dir", str(HERE),
        "--ws", WS[ws], "--ws-per-message-deflate", "true", "--http", "httptools",
        "--loop", loop, "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--lifespan", "off",
    ]  # fmt: skip


def environment(ws: str, **extra: str) -> dict[str, str]:
    """The worker's environment: this checkout's fastws first, the deflate backend chosen."""
    # PYTHONWARNINGS: uvicorn warns that --ws websockets is deprecated.
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore", **extra)
    env["FASTWS_DEFLATE_BACKEND"] = "isal" if ws == "fastws-isal" else "zlib"
    return env
