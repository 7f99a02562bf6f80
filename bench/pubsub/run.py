"""Fan-out benchmark: one message to N subscribers; server CPU and time to the last delivery.

Usage::

    python bench/pubsub/run.py [--subscribers 1000,10000] [--size 1024]
                               [--publishes 30] [--modes a,b,...] [--no-write]

Each server (``server.py``) runs alone, pinned to CPU 0 (``taskset -c 0``);
this load generator, pinned to CPU 1, opens N WebSocket connections with
plain asyncio protocols on uvloop (a hand-written handshake, then it only
counts bytes). For each publish it asks the server to send one message to
every connection, waits until every connection received it, and tells the
server, which answers with the CPU time (user + system) it spent since the
publish began. Reported: the median over ``--publishes`` runs of that CPU
time and of the time from the start of the publish to the last delivery.
Compression is off for every server.

Results go to ``bench/results/pubsub.json`` and to the "Fan-out" section of
``bench/RESULTS.md`` (between its markers; the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
MODES = [
    "fastws-publish",
    "fastws-publish-asyncio",
    "fastws-send-loop",
    "websockets-broadcast",
    "websockets-send-loop",
]
START = "<!-- pubsub-results:start -->"
END = "<!-- pubsub-results:end -->"


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Subscriber(asyncio.Protocol):
    """A WebSocket client that completes the handshake and then counts bytes."""

    def __init__(self, request: bytes, opened: asyncio.Future[None]) -> None:
        self.request = request
        self.opened = opened
        self.head = b""
        self.received = 0
        self.target = 0
        self.reached: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, _, data = self.head.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self.opened.set_result(None)
        self.received += len(data)
        if self.reached is not None and self.received >= self.target:
            self.reached.set_result(None)
            self.reached = None

    def expect(self, total: int) -> asyncio.Future[None] | None:
        if self.received >= total:
            return None
        self.target = total
        self.reached = asyncio.get_running_loop().create_future()
        return self.reached


async def _load(port: int, control_port: int, count: int, size: int, publishes: int) -> Any:
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    clients: list[tuple[asyncio.Transport, _Subscriber]] = []

    async def open_one() -> None:
        opened = loop.create_future()
        transport, protocol = await loop.create_connection(
            lambda: _Subscriber(request, opened), "127.0.0.1", port
        )
        await opened
        clients.append((transport, protocol))

    for start in range(0, count, 200):
        await asyncio.gather(*(open_one() for _ in range(start, min(count, start + 200))))
    reader, writer = await asyncio.open_connection("127.0.0.1", control_port)
    while True:  # every handler registered its connection
        writer.write(b"COUNT\n")
        if int(await reader.readline()) == count:
            break
        await asyncio.sleep(0.05)
    frame = 2 + (2 if size >= 126 else 0) + (6 if size >= 65536 else 0) + size
    cpu: list[float] = []
    call: list[float] = []
    last: list[float] = []
    for run in range(publishes + 2):
        waits = [f for _, p in clients if (f := p.expect((run + 1) * frame)) is not None]
        writer.write(f"PUB {size}\n".encode())
        await asyncio.gather(*waits)
        done = time.monotonic()
        writer.write(b"DONE\n")
        user, system, began, in_call = (float(x) for x in (await reader.readline()).split())
        if run >= 2:  # two warm-up runs
            cpu.append(user + system)
            call.append(in_call)
            last.append(done - began)
    writer.close()
    for transport, _ in clients:
        transport.close()
    await asyncio.sleep(0.2)
    return {
        "cpu_ms": statistics.median(cpu) * 1e3,
        "call_ms": statistics.median(call) * 1e3,
        "last_delivery_ms": statistics.median(last) * 1e3,
        "cpu_ms_all": [round(c * 1e3, 3) for c in cpu],
    }


def send_floor(size: int, count: int = 1000, repeat: int = 10) -> float:
    """CPU microseconds of one bare ``sock.send()`` of a ``size``-byte frame on loopback TCP.

    The floor of any fan-out that writes each subscriber's socket: the same
    frame sent to ``count`` connected sockets in a plain loop (median of
    ``repeat`` loops), the receiving ends drained after each loop.
    """
    frame = b"\x82\x7e" + size.to_bytes(2, "big") + b"x" * size if size < 65536 else b""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(count)
        pairs = []
        for _ in range(count):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            server.setblocking(False)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pairs.append((client, server))
        loops = []
        for _ in range(repeat):
            began = time.process_time()
            for _, server in pairs:
                server.send(frame)
            loops.append(time.process_time() - began)
            for client, _ in pairs:
                client.recv(len(frame) + 64)
        for client, server in pairs:
            client.close()
            server.close()
    return statistics.median(loops) / count * 1e6


def run_one(mode: str, count: int, size: int, publishes: int) -> dict[str, Any]:
    """Start ``mode``'s server, measure, stop it."""
    port, control_port = _free_port(), _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [*_pin(0), PY, str(HERE / "server.py"), mode, str(port), str(control_port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready", f"{mode} did not start"
        import uvloop

        result: dict[str, Any] = uvloop.run(_load(port, control_port, count, size, publishes))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return result


def markdown(results: dict[str, Any]) -> str:
    """Render the results as the Fan-out section of RESULTS.md."""
    lines = [
        START,
        "## Fan-out: one message to N subscribers",
        "",
        f"`python bench/pubsub/run.py` on {results['machine']}, {results['date']}: "
        f"one {results['size']}-byte binary message to every subscriber, server pinned to "
        "one CPU, clients (byte-counting asyncio protocols on uvloop) on the other; "
        "compression off; median of "
        f"{results['publishes']} publishes after 2 warm-up ones. **CPU** is the server's "
        "user + system time from the start of the publish to the last delivery; **last** "
        "is the time from the start of the publish until the last subscriber received it.",
        "",
        "| server | subscribers | CPU per publish (ms) | last delivery (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['mode']} | {row['subscribers']:,} | {row['cpu_ms']:.2f} | "
            f"{row['last_delivery_ms']:.2f} |"
        )
    lines += [
        "",
        f"The floor: a bare loop of `sock.send(frame)` over 1,000 loopback TCP sockets "
        f"costs {results['send_floor_us']:.1f} µs of CPU per socket here "
        f"({results['send_floor_us'] * 10:.0f} ms for 10,000), most of it the kernel "
        "delivering to the receiving socket (on loopback the sender's CPU does the "
        "receiver's network work too). It is a lower bound: there the receiving sockets "
        "are read after the loop, so no reader is woken during it, unlike in the runs "
        "above. The publish itself (encoding once, then a state, buffer and order check "
        "per subscriber) costs about 0.35 µs per subscriber in Python on top of the write "
        "(10,000 subscribers on socketless transports: about 3.5 ms).",
        "",
        '- `fastws-publish`: `ws.subscribe("t")` then `server.publish("t", message)` '
        "(uvloop; `-asyncio`: the default loop).",
        "- `fastws-send-loop` / `websockets-send-loop`: `for ws in connections: "
        "await ws.send(message)`.",
        "- `websockets-broadcast`: websockets' `broadcast(connections, message)` "
        f"(websockets {results['websockets']}, uvloop).",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any]) -> None:
    """Write pubsub.json and replace (or append) the Fan-out section of RESULTS.md."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pubsub.json").write_text(json.dumps(results, indent=2) + "\n")
    md = ROOT / "bench" / "RESULTS.md"
    section = markdown(results)
    text = md.read_text() if md.exists() else "# Benchmark results\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + section.rstrip("\n") + tail
    else:
        kept = "<!-- kept:start -->"
        if kept in text:  # before the kept section, which stays last
            head, tail = text.split(kept, 1)
            text = head.rstrip("\n") + "\n\n" + section + "\n" + kept + tail
        else:
            text = text.rstrip("\n") + "\n\n" + section
    md.write_text(text)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="1000,10000")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--publishes", type=int, default=30)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if _pin(1):
        os.sched_setaffinity(0, {1})
    from importlib.metadata import version

    rows = []
    for count in (int(n) for n in args.subscribers.split(",")):
        for mode in (m for m in args.modes.split(",") if m):
            row = {"mode": mode, "subscribers": count}
            row.update(run_one(mode, count, args.size, args.publishes))
            print(
                f"{mode:24} {count:>6} cpu {row['cpu_ms']:8.2f} ms  call {row['call_ms']:8.2f} ms  "
                f"last {row['last_delivery_ms']:8.2f} ms",
                flush=True,
            )
            rows.append(row)
    results = {
        "send_floor_us": send_floor(args.size),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {platform.system()}",
        "size": args.size,
        "publishes": args.publishes,
        "websockets": version("websockets"),
        "rows": rows,
    }
    if args.no_write:
        print(markdown(results))
    else:
        write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
