"""Peers for the client tests (asyncio and sync): proxies, certificates, redirects.

The proxy servers (HTTP CONNECT and SOCKS5) are small asyncio servers on
127.0.0.1 only. The asyncio tests start them on their own loop;
:func:`in_thread` runs one on a loop of its own in a thread, for the sync
client.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from typing_extensions import Self


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class Relay:
    """A proxy server: subclasses speak to the client, then bytes are relayed."""

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        self.seen: list[Any] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> Self:
        return self if self._server is not None else await self.start()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Self:
        self._server = await asyncio.start_server(self._run, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        _, pending = await asyncio.wait(self._tasks, timeout=2) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        await self._server.wait_closed()

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        self._writers.append(writer)
        try:
            target = await self.negotiate(reader, writer)
            if target is None:
                return
            up_reader, up_writer = await asyncio.open_connection(*target)
            self._writers.append(up_writer)
            await self.established(writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def negotiate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        raise NotImplementedError

    async def established(self, writer: asyncio.StreamWriter) -> None:
        pass


class HttpProxy(Relay):
    """Answers CONNECT; ``status`` refuses every request with it."""

    def __init__(self, auth: tuple[str, str] | None = None, status: int | None = None) -> None:
        super().__init__(auth)
        self.status = status

    async def negotiate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")
        method, target, _ = lines[0].split(" ")
        headers = dict(line.split(": ", 1) for line in lines[1:] if line)
        self.seen.append((lines[0], headers))
        status = self.status
        if self.auth is not None and status is None:
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            if headers.get("Proxy-Authorization") != f"Basic {token}":
                status = 407
        if method != "CONNECT":
            status = 405
        if status is not None:
            writer.write(
                f"HTTP/1.1 {status} No\r\nProxy-Authenticate: Basic\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
            await writer.drain()
            return None
        host, _, port = target.rpartition(":")
        return host.strip("[]"), int(port)

    async def established(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()


class Socks5Proxy(Relay):
    """RFC 1928 CONNECT, with RFC 1929 user/password when ``auth`` is set."""

    async def negotiate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        assert version == 5
        if self.auth is None:
            writer.write(b"\x05\x00")
        elif 2 not in methods:
            writer.write(b"\x05\xff")
            return None
        else:
            writer.write(b"\x05\x02")
            _, length = await reader.readexactly(2)
            user = (await reader.readexactly(length)).decode()
            length = (await reader.readexactly(1))[0]
            password = (await reader.readexactly(length)).decode()
            if (user, password) != self.auth:
                writer.write(b"\x01\x01")
                return None
            writer.write(b"\x01\x00")
        _, command, _, kind = await reader.readexactly(4)
        assert command == 1
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
        elif kind == 3:
            length = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(length)).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.seen.append((host, port))
        if host == "localhost":
            host = "127.0.0.1"
        if port == 9:  # the discard port: nothing listens there
            writer.write(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            return None
        return host, port

    async def established(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await writer.drain()


def certificates() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client TLS contexts for ``localhost`` and 127.0.0.1, from a test CA."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def moved(status: int, location: str) -> Any:
    """A ``process_request`` (asyncio or sync server) that redirects ``/old...`` there."""

    def process_request(ws: Any, request: Any) -> Any:
        if request.path.startswith("/old"):
            return ws.respond(status, headers={"Location": location})
        return None

    return process_request


R = TypeVar("R", bound=Relay)


@contextmanager
def in_thread(relay: R, ssl_context: ssl.SSLContext | None = None) -> Iterator[R]:
    """Run ``relay`` on an event loop in a thread of its own until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(relay.start(ssl_context), loop).result(10)
        try:
            yield relay
        finally:
            asyncio.run_coroutine_threadsafe(relay.__aexit__(None, None, None), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
