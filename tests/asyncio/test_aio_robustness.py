"""Robustness: many connections, bad and vanishing peers, limits."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import sys
import time
from typing import Any

import pytest
from aio_helpers import (
    EchoServer,
    callback_echo_handler,
    close_writer,
    echo_handler,
    handshake_request,
    masked_frame,
    raw_open,
)

from fastws.asyncio import ConnectionClosedError, ServerConnection, connect, serve


@pytest.mark.timeout(120)
def test_many_concurrent_connections(run: Any, loop_name: str) -> None:
    # 1,000 connections open at the same time, all echoing at once.
    count = 1000
    peak: list[int] = []

    async def main() -> None:
        # 1,000 connections: debug mode's bookkeeping per callback is too slow.
        asyncio.get_running_loop().set_debug(False)
        async with serve(echo_handler, "127.0.0.1", 0, backlog=2048) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            opening = asyncio.Semaphore(200)  # handshakes in progress at once
            all_open = asyncio.Event()
            opened = 0

            async def client(i: int) -> None:
                nonlocal opened
                async with opening:
                    ws = await connect(uri, compression=None)
                try:
                    opened += 1
                    if opened == count:
                        peak.append(len(server.connections))
                        all_open.set()
                    await asyncio.wait_for(all_open.wait(), 60)
                    for j in range(5):
                        await ws.send(f"{i}-{j}")
                        assert await ws.recv() == f"{i}-{j}"
                    await ws.send(b"b" * 1000)
                    assert await ws.recv() == b"b" * 1000
                finally:
                    await ws.close()

            await asyncio.gather(*(client(i) for i in range(count)))
            assert len(server.connections) < count  # they are closing or gone

    run(main(), timeout=100)
    assert peak == [count]


def test_abrupt_disconnect_mid_frame(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            errors.append(exc)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            _, writer = await raw_open(server.port or 0)
            frame = masked_frame(2, b"x" * 1000)
            writer.write(frame[:300])  # half a frame...
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.transport.abort()  # ... then the peer vanishes
            await asyncio.sleep(0.1)

    with caplog.at_level(logging.ERROR):
        run(main())
    assert len(errors) == 1
    assert getattr(errors[0], "code", None) == 1006
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_oversized_message_1009(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, max_size=1 << 16, compression=None) as s:
            reader, writer = await raw_open(s.port or 0)
            writer.write(masked_frame(2, b"x" * ((1 << 16) + 1)))
            data = await asyncio.wait_for(reader.read(), 5)
            await close_writer(writer)
            assert data[:2] == b"\x88\x02" or data[0] == 0x88
            assert int.from_bytes(data[2:4], "big") == 1009

    run(main())


def test_oversized_fragmented_message_1009(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0, max_size=1000, compression=None) as s:
            reader, writer = await raw_open(s.port or 0)
            for _ in range(3):
                writer.write(masked_frame(2 if _ == 0 else 0, b"y" * 400, fin=False))
            data = await asyncio.wait_for(reader.read(), 5)
            await close_writer(writer)
            assert data[0] == 0x88
            assert int.from_bytes(data[2:4], "big") == 1009

    run(main())


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",  # TLS hello
        b"HELLO WORLD\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # no upgrade
        b"GET / HTTP/1.1\r\nbroken header line\r\n\r\n",
    ],
)
def test_garbage_handshake_is_400(run: Any, garbage: bytes) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(garbage)
            data = await asyncio.wait_for(reader.read(), 5)
            await close_writer(writer)
            assert data.startswith(b"HTTP/1.1 400 "), data[:80]

    run(main())


def test_wrong_version_is_426(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            request = handshake_request(server.port or 0).replace(b"Version: 13", b"Version: 8")
            writer.write(request)
            data = await asyncio.wait_for(reader.read(), 5)
            await close_writer(writer)
            assert data.startswith(b"HTTP/1.1 426 ")
            assert b"Sec-WebSocket-Version: 13" in data

    run(main())


def test_protocol_error_1002(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            reader, writer = await raw_open(server.port or 0)
            writer.write(b"\x81\x02hi")  # unmasked client frame
            data = await asyncio.wait_for(reader.read(), 5)
            await close_writer(writer)
            assert data[0] == 0x88
            assert int.from_bytes(data[2:4], "big") == 1002

    run(main())


def test_invalid_utf8_1007(run: Any) -> None:
    async def main() -> None:
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            reader, writer = await raw_open(server.port or 0)
            writer.write(masked_frame(1, b"\xff\xfe"))
            data = await asyncio.wait_for(reader.read(), 5)
            await close_writer(writer)
            assert int.from_bytes(data[2:4], "big") == 1007

    run(main())


def test_client_gone_during_send(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def handler(ws: ServerConnection) -> None:
        for _ in range(10_000):
            await ws.send(b"x" * 65536)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            reader, writer = await raw_open(server.port or 0)
            await reader.readexactly(10_000)
            writer.transport.abort()
            await asyncio.sleep(0.2)

    with caplog.at_level(logging.ERROR):
        run(main())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_server_side_eof_without_close(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("hi")
        ws.abort()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert await ws.recv() == "hi"
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1006

    run(main())


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    "loop_flag",
    [[], ["--uvloop"], ["--callback"], ["--uvloop", "--callback"]],
    ids=["asyncio", "uvloop", "asyncio-callback", "uvloop-callback"],
)
@pytest.mark.timeout(60)
def test_echo_server_memory_stays_bounded_for_a_client_that_never_reads(
    loop_flag: list[str],
) -> None:
    # A client floods the echo server with 64 KiB messages and never reads the
    # echoes. The server must stop reading from it (its write buffer is full,
    # then its receive queue; with the on_message callback there is no queue,
    # only the write buffer) instead of buffering: the client ends up blocked
    # by TCP flow control, and the server's RSS stays small.
    server = EchoServer(*loop_flag)
    try:
        pid = server.proc.pid
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(handshake_request(server.port))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101"), head
            time.sleep(0.2)
            before = _rss(pid)
            frame = masked_frame(2, os.urandom(65536))
            sock.settimeout(2.0)
            sent, cap = 0, 1 << 30
            try:
                while sent < cap:
                    sock.sendall(frame)
                    sent += len(frame)
            except TimeoutError:
                pass
            growth = _rss(pid) - before
            assert sent < cap, "the server kept reading from a peer that never reads"
            # Measured: about 1.4 MB after 8-11 MB sent; the write limit and
            # max_queue x 64 KiB bound it. (Not under AddressSanitizer, whose
            # allocator keeps freed memory in quarantine.)
            if "libasan" not in os.environ.get("LD_PRELOAD", ""):
                assert growth < 8 << 20, f"RSS grew by {growth} bytes after {sent} bytes sent"
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    "handler", [echo_handler, callback_echo_handler], ids=["recv", "on_message"]
)
def test_frames_split_across_reads_of_interleaved_connections(run: Any, handler: Any) -> None:
    """Connections share one receive buffer per thread: each keeps its own partial frames.

    Every connection sends each frame in pieces, one piece per connection in
    turn, so the server (and the clients, on the same loop) read the pieces
    of different connections in between. Sizes cover the buffered path, the
    large-frame assembly and the fail-fast UTF-8 validation of a text frame
    still arriving.
    """

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=1 << 20) as server:
            clients = [
                await connect(f"ws://127.0.0.1:{server.port}/", compression=None, max_size=1 << 20)
                for _ in range(4)
            ]
            try:
                for size in (100, 5000, 70_000, 300_000):
                    messages: list[str | bytes] = []
                    for i in range(len(clients)):
                        if i % 2:
                            messages.append(os.urandom(size))
                        else:
                            messages.append("".join(chr(0x41 + (i + k) % 26) for k in range(size)))
                    frames = [
                        masked_frame(1, m.encode()) if isinstance(m, str) else masked_frame(2, m)
                        for m in messages
                    ]
                    cuts = [0, 1, 3, len(frames[0]) // 3, len(frames[0]) - 2, len(frames[0])]
                    for a, b in itertools.pairwise(cuts):
                        for ws, frame in zip(clients, frames, strict=True):
                            assert ws.transport is not None
                            ws.transport.write(frame[a:b])
                        await asyncio.sleep(0.01)
                    for ws, message in zip(clients, messages, strict=True):
                        assert await asyncio.wait_for(ws.recv(), 10) == message
            finally:
                for ws in clients:
                    await ws.close()

    run(main(), timeout=60)
