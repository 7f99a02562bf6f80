"""Receive bounds of the asyncio front-end: the queue, its drain time, fairness.

A peer that packs many messages into one read must not make a connection
hold more than ``max_queue`` messages, nor make draining them quadratic,
nor keep the event loop from serving other connections.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import zlib
from typing import Any

import pytest
from aio_helpers import EchoServer, close_writer, handshake_request, masked_frame, raw_open

import fastws
from fastws.asyncio import ServerConnection

EMPTY = masked_frame(2, b"")  # 6 bytes


def test_one_large_read_queues_at_most_max_queue(run: Any) -> None:
    async def main() -> None:
        # 100,000 messages: debug mode's bookkeeping per callback is too slow.
        asyncio.get_running_loop().set_debug(False)
        seen: list[tuple[int, int]] = []
        started = asyncio.Event()
        release = asyncio.Event()

        async def handler(ws: ServerConnection) -> None:
            started.set()
            await release.wait()
            count = 0
            async for _ in ws:
                count += 1
                seen.append((len(ws._queue), ws.protocol.buffered_size()))
                if count == 100_000:
                    break

        async with fastws.serve(handler, "127.0.0.1", 0, max_queue=16) as server:
            port = server.sockets[0].getsockname()[1]
            _, writer = await raw_open(port)
            await started.wait()
            writer.write(EMPTY * ((1 << 20) // len(EMPTY)))  # 174,762 messages
            await writer.drain()
            await asyncio.sleep(0.3)
            release.set()
            # Bounded by run()'s timeout (generous: coverage tracing makes
            # each message several times slower).
            while len(seen) < 100_000:
                await asyncio.sleep(0.05)
            await close_writer(writer)
        assert len(seen) == 100_000
        assert max(q for q, _ in seen) <= 16
        # The rest waits as bytes (at most about one read), not as messages.
        assert max(b for _, b in seen) <= (1 << 20) + (1 << 16)

    run(main(), timeout=90)


def _drain_time(run: Any, count: int) -> float:
    # The frames are all written while the server's loop is blocked, so that
    # it reads them in the largest reads it makes (1 MiB): the worst case.
    async def main() -> float:
        # Timed: debug mode's bookkeeping per callback would be most of it.
        asyncio.get_running_loop().set_debug(False)
        done = asyncio.get_running_loop().create_future()
        ready = threading.Event()

        async def handler(ws: ServerConnection) -> None:
            ready.wait(10)  # blocks the loop while the client writes
            time.sleep(0.2)
            n = 0
            start = time.perf_counter()
            async for _ in ws:
                n += 1
                if n == count:
                    done.set_result(time.perf_counter() - start)
                    return

        def client(port: int) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(handshake_request(port))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            writer = threading.Thread(target=sock.sendall, args=(EMPTY * count,))
            writer.start()
            time.sleep(0.1)
            ready.set()
            writer.join(10)
            return sock

        async with fastws.serve(handler, "127.0.0.1", 0, max_queue=16) as server:
            port = server.sockets[0].getsockname()[1]
            sock = await asyncio.to_thread(client, port)
            try:
                elapsed: float = await done
            finally:
                sock.close()
            return elapsed

    result: float = run(main(), timeout=60)
    return result


def test_draining_is_linear(run: Any) -> None:
    # 4x the messages take about 4x the time (a quadratic queue took 16x).
    small = min(_drain_time(run, 40_000) for _ in range(3))
    large = min(_drain_time(run, 160_000) for _ in range(3))
    assert large < small * 7, (small, large)


def test_close_with_a_full_queue_reads_on_to_the_peers_close_frame(run: Any) -> None:
    # The handler closes while its queue is full and more messages wait
    # unread: close() drops them to reach the client's close frame, instead
    # of leaving reading paused until close_timeout.
    async def main() -> None:
        sent = asyncio.Event()
        took: list[float] = []
        codes: list[int | None] = []

        async def handler(ws: ServerConnection) -> None:
            await sent.wait()
            start = time.perf_counter()
            await ws.close()
            took.append(time.perf_counter() - start)
            codes.append(ws.close_code)

        async with fastws.serve(handler, "127.0.0.1", 0, max_queue=4, close_timeout=5) as server:
            async with fastws.connect(f"ws://127.0.0.1:{server.port}/") as client:
                for _ in range(2000):
                    await client.send(b"x" * 1024)
                sent.set()
                await asyncio.wait_for(client.wait_closed(), 10)
        assert took and took[0] < 2, took
        assert codes == [1000]  # the client answered: no timeout

    run(main(), timeout=30)


def test_a_flood_does_not_starve_other_clients(run: Any) -> None:
    # One client floods an echo server with empty frames in 1 MiB writes;
    # another still gets each echo quickly.
    async def main() -> float:
        async def echo(ws: ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        async with fastws.serve(echo, "127.0.0.1", 0, max_queue=16) as server:
            port = server.sockets[0].getsockname()[1]
            flood_reader, flood_writer = await raw_open(port)
            stop = asyncio.Event()

            async def flood() -> None:
                chunk = EMPTY * ((1 << 20) // len(EMPTY))
                for _ in range(40):
                    if stop.is_set():
                        break
                    flood_writer.write(chunk)
                    await flood_writer.drain()

            async def swallow() -> None:
                while not stop.is_set():
                    if not await flood_reader.read(1 << 20):
                        break

            tasks = [asyncio.create_task(flood()), asyncio.create_task(swallow())]
            worst = 0.0
            async with fastws.connect(f"ws://127.0.0.1:{port}/") as ws:
                await asyncio.sleep(0.2)  # the flood is under way
                for _ in range(20):
                    start = time.perf_counter()
                    await ws.send(b"x" * 16)
                    assert await ws.recv() == b"x" * 16
                    worst = max(worst, time.perf_counter() - start)
            stop.set()
            await close_writer(flood_writer)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return worst

    worst = run(main(), timeout=30)
    assert worst < 0.25, worst


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer's own memory use makes the server's RSS meaningless",
)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_burst_of_deflate_bombs_is_bounded(loop: str) -> None:
    # 1,000 small compressed messages (about 1 MB on the wire), each
    # inflating to nearly max_size (1 MiB), sent in one burst by a client
    # that reads nothing: the server grows by at most 64 MB and still
    # serves a new client at once.
    comp = zlib.compressobj(9, zlib.DEFLATED, -9)
    body = comp.compress(b"\0" * ((1 << 20) - 64)) + comp.flush(zlib.Z_SYNC_FLUSH)
    frames = []
    for _ in range(1000):
        frame = bytearray(masked_frame(2, body[:-4]))
        frame[0] |= 0x40  # RSV1: compressed
        frames.append(bytes(frame))
    burst = b"".join(frames)
    assert len(burst) < 1_100_000

    server = EchoServer(*(["--uvloop"] if loop == "uvloop" else []))
    try:
        before = _rss(server.proc.pid)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                handshake_request(
                    server.port,
                    extra="Sec-WebSocket-Extensions: permessage-deflate; "
                    "client_max_window_bits=9; client_no_context_takeover\r\n",
                )
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101") and b"permessage-deflate" in head
            sock.setblocking(False)
            sent = 0
            deadline = time.monotonic() + 3.0
            while sent < len(burst) and time.monotonic() < deadline:
                try:
                    sent += sock.send(burst[sent : sent + 65536])
                except BlockingIOError:
                    time.sleep(0.01)
            time.sleep(1.0)
            peak = max(_rss(server.proc.pid) for _ in range(5) if time.sleep(0.1) is None)
            start = time.monotonic()
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as fresh:
                fresh.sendall(handshake_request(server.port))
                reply = fresh.recv(4096)
            elapsed = time.monotonic() - start
        assert reply.startswith(b"HTTP/1.1 101"), reply
        assert peak - before < 64 << 20, (before, peak)
        assert elapsed < 0.5, elapsed
    finally:
        server.stop()
