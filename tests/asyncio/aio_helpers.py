"""Helpers for the asyncio front-end tests: raw sockets and small handlers."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar, cast

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
CMD = [sys.executable, "-m", "fastws"]


def handshake_request(port: int, path: str = "/", extra: str = "") -> bytes:
    """A valid upgrade request."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def raw_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TCP connection and complete a WebSocket handshake by hand."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(handshake_request(port))
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame (masked), built by hand."""
    from fastws import encode_frame

    return encode_frame(fin, opcode, payload, os.urandom(4))


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream writer, ignoring errors from a peer that is gone."""
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


def free_port() -> int:
    """A TCP port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def echo_handler(ws: Any) -> None:
    """Echo every message back."""
    async for message in ws:
        await ws.send(message)


async def callback_echo_handler(ws: Any) -> None:
    """Echo every message back with the on_message() callback and send_nowait()."""
    ws.on_message(ws.send_nowait)
    await ws.wait_closed()


def awaitable(value: T) -> Awaitable[T]:
    """Wrap a value in an awaitable (for async process_request tests)."""

    async def wrapper() -> T:
        return value

    return wrapper()


class EchoServer:
    """``python -m fastws echo`` in a subprocess, stopped with SIGINT."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [*CMD, "echo", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()
        assert "fastws echo server on" in self.banner, (
            self.proc.stderr.read() if self.proc.stderr else ""
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return int(self.proc.returncode)


def tolerate_sslproto_leak(test: T) -> T:
    """Python 3.10's asyncio.sslproto leaves unclosed the wrapper transport of
    some TLS connections (a failed handshake, a connection ended by the peer;
    rewritten in 3.11): ignore the warning that comes when it is collected
    (the test collects it itself)."""
    if sys.version_info >= (3, 11):
        return test
    import pytest

    mark = pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*_SSLProtocolTransport.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    )
    return cast(T, mark(test))


class SocketlessTransport(asyncio.Transport):
    """A transport with no socket: what the server writes is counted (and kept if ``keep``)."""

    def __init__(self, keep: bool = False) -> None:
        super().__init__()
        self.written = 0
        self.closing = False
        self.data: bytearray | None = bytearray() if keep else None

    def write(self, data: Any) -> None:
        self.written += len(data)
        if self.data is not None:
            self.data += data

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default
