"""Load generator for the echo benchmark: picows (compiled) clients on uvloop.

Two modes, one JSON line on stdout:

``echo``: ``--connections N --inflight K --size S --duration D``. Each of N
connections keeps K binary messages of S bytes in flight: it sends K, then one
more for each echo received. After ``--warmup`` seconds, counts the echoes for
D seconds, records each message's round-trip time, and reads the server's CPU
time (``/proc/PID/stat`` utime+stime) at both ends of the window.

``idle``: ``--idle N``. Reads the server's RSS, opens N connections (a few
hundred at a time), waits a second, reads the RSS again, closes them. With
``--offer-deflate`` the connections offer permessage-deflate in their
handshake as a browser does (the server then sets up its compression state
for each; no message is sent, so picows never has to inflate one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import deque
from typing import Any

import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class _Client(WSListener):  # type: ignore[misc]
    def __init__(self, state: _Run) -> None:
        self.state = state
        self.transport: WSTransport | None = None
        self.sent: deque[int] = deque()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def start(self, inflight: int) -> None:
        for _ in range(inflight):
            self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent.append(time.perf_counter_ns())
        self.transport.send(WSMsgType.BINARY, self.state.payload)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()
            return
        if not frame.fin or frame.msg_type == WSMsgType.PONG:
            return
        now = time.perf_counter_ns()
        started = self.sent.popleft()
        state = self.state
        if state.measuring:
            state.count += 1
            state.latencies.append(now - started)
        if state.running:
            self._send()


class _Run:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.running = True
        self.measuring = False
        self.count = 0
        self.latencies: list[int] = []


#: The permessage-deflate offer of a browser, for ``--offer-deflate``.
BROWSER_DEFLATE_OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}


def _connect(url: str, factory: Any, offer_deflate: bool) -> Any:
    if offer_deflate:
        headers = BROWSER_DEFLATE_OFFER
        return ws_connect(factory, url, max_frame_size=64 << 20, extra_headers=headers)
    return ws_connect(factory, url, max_frame_size=64 << 20)


async def _open(
    url: str, n: int, factory: Any, batch: int = 200, offer_deflate: bool = False
) -> list[tuple[Any, Any]]:
    # Only idle connections offer compression: picows cannot compress, and
    # an idle connection sends no message for the server to inflate.
    pairs: list[tuple[Any, Any]] = []
    for start in range(0, n, batch):
        batch_n = min(batch, n - start)
        pairs.extend(
            await asyncio.gather(*(_connect(url, factory, offer_deflate) for _ in range(batch_n)))
        )
    return pairs


async def _close(transports: list[WSTransport]) -> None:
    for t in transports:
        # picows's default close code is 0, which is not a valid code on the wire.
        t.send_close(WSCloseCode.OK)
    await asyncio.wait_for(
        asyncio.gather(*(t.wait_disconnected() for t in transports), return_exceptions=True), 10
    )


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index] / 1000.0  # ns -> us


async def echo(args: argparse.Namespace) -> dict[str, Any]:
    """Run an echo scenario and return its numbers."""
    state = _Run(os.urandom(args.size))
    pairs = await _open(args.url, args.connections, lambda: _Client(state))
    transports = [t for t, _ in pairs]
    for _, listener in pairs:
        listener.start(args.inflight)
    await asyncio.sleep(args.warmup)
    state.measuring = True
    cpu0 = cpu_seconds(args.server_pid)
    t0 = time.perf_counter()
    await asyncio.sleep(args.duration)
    state.measuring = False
    elapsed = time.perf_counter() - t0
    cpu1 = cpu_seconds(args.server_pid)
    state.running = False
    await asyncio.sleep(0.2 if args.size < (1 << 20) else 1.0)
    await _close(transports)
    lat = sorted(state.latencies)
    msgs = state.count
    return {
        "connections": args.connections,
        "inflight": args.inflight,
        "size": args.size,
        "seconds": round(elapsed, 3),
        "messages": msgs,
        "msgs_per_s": round(msgs / elapsed, 1),
        "mbytes_per_s": round(msgs * args.size / elapsed / 1e6, 2),
        "p50_us": round(_percentile(lat, 0.50), 1),
        "p99_us": round(_percentile(lat, 0.99), 1),
        "server_cpu_s": round(cpu1 - cpu0, 3),
        "server_cpu_us_per_msg": round((cpu1 - cpu0) / msgs * 1e6, 2) if msgs else None,
    }


async def idle(args: argparse.Namespace) -> dict[str, Any]:
    """Open N idle connections and report the server's RSS growth."""
    before = rss_bytes(args.server_pid)
    t0 = time.perf_counter()
    pairs = await _open(args.url, args.idle, WSListener, offer_deflate=args.offer_deflate)
    transports = [t for t, _ in pairs]
    opened = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    after = rss_bytes(args.server_pid)
    await _close(transports)
    return {
        "connections": args.idle,
        "rss_before": before,
        "rss_after": after,
        "rss_delta_bytes": after - before,
        "bytes_per_connection": round((after - before) / args.idle),
        "open_seconds": round(opened, 2),
        "offer_deflate": args.offer_deflate,
    }


def main() -> None:
    """Parse arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument(
        "--offer-deflate",
        action="store_true",
        help="idle connections offer permessage-deflate as browsers do",
    )
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        return await (idle(args) if args.idle else echo(args))

    result = uvloop.run(run())
    json.dump(result, sys.stdout)
    print(flush=True)


if __name__ == "__main__":
    main()
