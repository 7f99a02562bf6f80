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
