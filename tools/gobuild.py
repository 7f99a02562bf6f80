"""Build a Go program that uses gorilla/websocket, offline, from system packages.

The benchmark's compressing load client (``bench/echo/goclient``) and the
interop test with a gorilla client (``tests/gorilla``) are Go programs. They
are built in GOPATH mode against the gorilla/websocket sources a Linux
distribution installs (Debian/Ubuntu: ``apt-get install golang-go
golang-github-gorilla-websocket-dev``), so no Go module is downloaded.

Usage: ``python tools/gobuild.py SRC_DIR OUT`` or :func:`build` (rebuilds
only when a ``.go`` file is newer than ``OUT``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["GOPATHS", "GoUnavailable", "build", "unavailable"]

#: Where distributions install Go library sources (GOPATH layout).
GOPATHS = ("/usr/share/gocode",)
_GORILLA = Path("src") / "github.com" / "gorilla" / "websocket"
INSTALL_HINT = "apt-get install golang-go golang-github-gorilla-websocket-dev"


class GoUnavailable(RuntimeError):
    """Go or the gorilla/websocket sources are not installed."""


def _gopath() -> str | None:
    for root in [os.environ.get("GOPATH", ""), *GOPATHS]:
        if root and (Path(root) / _GORILLA / "conn.go").exists():
            return root
    return None


def unavailable() -> str | None:
    """Why a gorilla program cannot be built here, or ``None`` when it can."""
    if shutil.which("go") is None:
        return f"the go compiler is not installed ({INSTALL_HINT})"
    if _gopath() is None:
        return f"the gorilla/websocket sources are not installed ({INSTALL_HINT})"
    return None


def build(src: Path, out: Path) -> Path:
    """Build the Go package in ``src`` into the executable ``out``; return ``out``.

    Raises:
        GoUnavailable: go or gorilla/websocket is missing.
        RuntimeError: the build failed (with go's output).
    """
    reason = unavailable()
    if reason is not None:
        raise GoUnavailable(reason)
    sources = list(src.glob("*.go"))
    if out.exists() and all(f.stat().st_mtime <= out.stat().st_mtime for f in sources):
        return out
    env = dict(
        os.environ,
        GO111MODULE="off",
        GOPATH=str(_gopath()),
        GOFLAGS="",
        CGO_ENABLED="0",
    )
    env.setdefault("GOCACHE", str(Path(tempfile.gettempdir()) / "fastws-gocache"))
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["go", "build", "-o", str(out.resolve()), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go build in {src} failed:\n{proc.stdout}{proc.stderr}")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        print(build(Path(sys.argv[1]), Path(sys.argv[2])))
    except (GoUnavailable, RuntimeError) as exc:
        sys.exit(str(exc))
