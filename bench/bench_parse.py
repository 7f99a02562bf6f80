"""Frame parsing benchmarks: fastws's sans-IO server against other parsers.

Each scenario feeds the same stream of masked client frames (as a server
receives them) in 64 KiB reads, and every parser parses, unmasks and, for
text, validates UTF-8:

- ``small``: 100,000 text frames of 16 bytes (about 2.2 MB on the wire);
- ``large``: 1,000 text frames of 64 KiB (about 64 MiB on the wire).

Peers: aiohttp's compiled ``WebSocketReader`` (``aiohttp._websocket.reader_c``),
picows (its Cython ``WSProtocol`` driven through a stand-in transport; it
does not validate UTF-8), websockets' sans-IO ``Protocol``, and wsproto.

Run (one core when ``taskset`` exists)::

    taskset -c 1 python -m pytest bench/bench_parse.py --benchmark-only \\
        --benchmark-json=bench/results/parse.json
    python bench/bench_parse.py bench/results/parse.json   # frames/s and GB/s table

Every benchmark sets ``group`` to its scenario and ``extra_info`` to
``{"lib", "frames", "bytes"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import string
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastws
from fastws import encode_frame
from fastws.events import Request
from fastws.protocol import ClientProtocol, ServerProtocol

__all__ = ["SCENARIOS", "make_stream"]

CHUNK = 64 << 10


def make_stream(count: int, size: int) -> bytes:
    """``count`` masked text frames of ``size`` ASCII bytes, each with its own key."""
    rnd = random.Random(size)
    letters = (string.ascii_letters + string.digits).encode()
    frames = []
    payload = bytes(rnd.choice(letters) for _ in range(size))
    for _ in range(count):
        frames.append(encode_frame(True, 1, payload, os.urandom(4)))
    return b"".join(frames)


SCENARIOS = {"small": (100_000, 16), "large": (1_000, 64 << 10)}
_streams: dict[str, list[bytes]] = {}
_closers: list[Callable[[], None]] = []


@pytest.fixture(autouse=True)
def _cleanup() -> Any:
    yield
    while _closers:
        _closers.pop()()


def chunks(scenario: str) -> list[bytes]:
    """The scenario's stream cut in 64 KiB reads (built once)."""
    if scenario not in _streams:
        data = make_stream(*SCENARIOS[scenario])
        _streams[scenario] = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    return _streams[scenario]


# ---------------------------------------------------------------- parsers
# Each factory returns ``feed(chunks) -> number of messages``.


def fastws_parser() -> Callable[[list[bytes]], int]:
    server = ServerProtocol(compression=None, max_message_size=1 << 20)
    client = ClientProtocol("ws://localhost/", compression=None)
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    (request,) = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    server.data_to_send()
    receive = server.receive_data
    events = server.events_received

    def feed(data: list[bytes]) -> int:
        n = 0
        for chunk in data:
            receive(chunk)
            n += len(events())
        return n

    return feed


def aiohttp_parser() -> Callable[[list[bytes]], int]:
    reader_c = pytest.importorskip("aiohttp._websocket.reader_c")

    class _Protocol:
        _reading_paused = False

        def pause_reading(self) -> None:
            pass

        def resume_reading(self) -> None:
            pass

    loop = asyncio.new_event_loop()
    _closers.append(loop.close)
    queue = reader_c.WebSocketDataQueue(_Protocol(), 1 << 30, loop=loop)
    reader = reader_c.WebSocketReader(queue, 1 << 20, compress=False, decode_text=True)
    buffer = queue._buffer

    def feed(data: list[bytes]) -> int:
        for chunk in data:
            reader.feed_data(chunk)
        n = len(buffer)
        buffer.clear()
        return n

    return feed


def websockets_parser() -> Callable[[list[bytes]], int]:
    protocol_mod = pytest.importorskip("websockets.protocol")
    proto = protocol_mod.Protocol(protocol_mod.SERVER, state=protocol_mod.OPEN, max_size=1 << 20)

    def feed(data: list[bytes]) -> int:
        n = 0
        for chunk in data:
            proto.receive_data(chunk)
            n += len(proto.events_received())
        return n

    return feed


def wsproto_parser() -> Callable[[list[bytes]], int]:
    connection = pytest.importorskip("wsproto.connection")
    conn = connection.Connection(connection.ConnectionType.SERVER)

    def feed(data: list[bytes]) -> int:
        n = 0
        for chunk in data:
            conn.receive_data(chunk)
            n += sum(1 for e in conn.events() if getattr(e, "message_finished", False))
        return n

    return feed


def picows_parser() -> Callable[[list[bytes]], int]:
    picows = pytest.importorskip("picows")
    from picows.picows import WSProtocol

    count = [0]

    class Listener(picows.WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            count[0] += 1

    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self._sock = socket.socket()
            _closers.append(self._sock.close)

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return {
                "socket": self._sock,
                "peername": ("127.0.0.1", 1),
                "sockname": ("127.0.0.1", 2),
            }.get(name, default)

        def write(self, data: Any) -> None:
            pass

        def is_closing(self) -> bool:
            return False

    loop = asyncio.new_event_loop()
    _closers.append(loop.close)

    async def make() -> Any:
        return WSProtocol(
            None,  # host_port
            "/",  # ws_path
            False,  # is_client_side
            lambda request: Listener(),
            logging.getLogger("picows-bench"),
            True,  # disconnect_on_exception
            None,  # websocket_handshake_timeout
            False,  # enable_auto_ping
            10,
            10,
            picows.WSAutoPingStrategy.PING_WHEN_IDLE,
            True,  # enable_auto_pong
            1 << 20,  # max_frame_size
            None,  # extra_headers
            1 << 17,  # read_buffer_init_size
        )

    proto = loop.run_until_complete(make())
    proto.connection_made(Transport())

    def push(data: bytes) -> None:
        view = memoryview(data)
        while view:
            buf = proto.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            proto.buffer_updated(n)
            view = view[n:]

    client = ClientProtocol("ws://localhost/", compression=None)
    push(fastws.handshake.serialize_request(client.connect()))
    if proto.listener is None:
        pytest.skip("picows did not complete the stand-in handshake")

    def feed(data: list[bytes]) -> int:
        count[0] = 0
        for chunk in data:
            push(chunk)
        return count[0]

    return feed


PARSERS: dict[str, Callable[[], Callable[[list[bytes]], int]]] = {
    "fastws": fastws_parser,
    "aiohttp": aiohttp_parser,
    "picows": picows_parser,
    "websockets": websockets_parser,
    "wsproto": wsproto_parser,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("lib", list(PARSERS))
def test_parse(benchmark: Any, lib: str, scenario: str) -> None:
    if lib == "wsproto" and scenario == "small" and os.environ.get("BENCH_QUICK"):
        pytest.skip("slow")
    data = chunks(scenario)
    feed = PARSERS[lib]()
    count, size = SCENARIOS[scenario]
    assert feed(data) == count  # warm up, and check every frame was parsed
    benchmark.group = f"parse {scenario}: {count} x {size} B"
    label = lib if lib != "fastws" else f"fastws ({fastws.implementation})"
    benchmark.extra_info.update({"lib": label, "frames": count, "bytes": sum(map(len, data))})
    rounds = 3 if scenario == "large" or lib in ("wsproto", "websockets") else 5
    result = benchmark.pedantic(feed, args=(data,), rounds=rounds, iterations=1, warmup_rounds=0)
    assert result == count


def _table(path: str) -> None:
    report = json.loads(Path(path).read_text())
    rows: dict[str, list[tuple[str, float, float]]] = {}
    for bench in report["benchmarks"]:
        info = bench["extra_info"]
        best = bench["stats"]["min"]
        rows.setdefault(bench["group"], []).append(
            (info["lib"], info["frames"] / best, info["bytes"] / best / 1e9)
        )
    for group, entries in rows.items():
        print(f"\n{group}\n\n| lib | frames/s | GB/s |\n|---|---:|---:|")
        for lib, fps, gbs in sorted(entries, key=lambda e: -e[1]):
            print(f"| {lib} | {fps:,.0f} | {gbs:.3f} |")


if __name__ == "__main__":
    _table(sys.argv[1])
