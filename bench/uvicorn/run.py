"""Benchmark uvicorn's WebSocket implementations against fastws.uvicorn.

Usage::

    python bench/uvicorn/run.py [--ws fastws,websockets-sansio,...] [--apps starlette,raw]
                                [--duration 4] [--repeat 3] [--loop uvloop]

For each application (the Starlette echo endpoint of ``app.py`` and the same
echo as a bare ASGI callable) and each ``--ws`` implementation, one uvicorn
worker (httptools, uvloop by default) runs pinned to CPU 0 and the load
generator of the echo benchmark (``bench/echo/loadgen.py``: picows clients,
binary messages) runs pinned to CPU 1. Scenarios:

* ``rr-64``: 64 connections, request/response, 16 B
* ``pipe-16x64-16B``: 16 connections x 64 messages in flight, 16 B
* ``pipe-16x64-16KiB``: 16 connections x 64 in flight, 16 KiB

Reported per scenario: messages per second and the server's CPU time per
message (user + system, from /proc). The runs rotate between servers and the
medians are kept. Results go to ``bench/results/uvicorn.json`` and to
``bench/uvicorn/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
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
sys.path.insert(0, str(ROOT / "bench" / "echo"))

from run import _cpu_model, _free_port, _loadgen, _pin, _stop_server  # noqa: E402

SCENARIOS: list[tuple[str, dict[str, int]]] = [
    ("rr-64", {"connections": 64, "inflight": 1, "size": 16}),
    ("pipe-16x64-16B", {"connections": 16, "inflight": 64, "size": 16}),
    ("pipe-16x64-16KiB", {"connections": 16, "inflight": 64, "size": 16 << 10}),
]
WS = {
    "fastws": "fastws.uvicorn:FastWSProtocol",
    "websockets-sansio": "websockets-sansio",
    "websockets": "websockets",
    "wsproto": "wsproto",
}
APPS = {"starlette": "app:starlette_app", "raw": "app:raw_app"}


def _start(ws: str, app: str, port: int, loop: str) -> subprocess.Popen[bytes]:
    cmd = [
        *_pin(0),
        PY,
        "-m",
        "uvicorn",
        APPS[app],
        "--app-dir",
        str(HERE),
        "--ws",
        WS[ws],
        "--http",
        "httptools",
        "--loop",
        loop,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--lifespan",
        "off",
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn --ws {ws} did not start") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"uvicorn --ws {ws} did not listen")


def _run_one(ws: str, app: str, duration: float, loop: str) -> dict[str, Any]:
    port = _free_port()
    proc = _start(ws, app, port, loop)
    per: dict[str, Any] = {}
    try:
        for name, params in SCENARIOS:
            extra = [f"--{k}={v}" for k, v in params.items()] + [f"--duration={duration}"]
            res = _loadgen(port, proc.pid, extra, timeout=duration * 4 + 60)
            per[name] = res
            print(f"   {app:9} {ws:18} {name:18} {res}", file=sys.stderr, flush=True)
    finally:
        _stop_server(proc)  # type: ignore[arg-type]
    time.sleep(0.5)
    return per


def _median(samples: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in samples if "error" not in r]
    if not good:
        return samples[0] if samples else {"error": "not run"}
    out: dict[str, Any] = {}
    for key in ("msgs_per_s", "server_cpu_us_per_msg", "p50_us", "p99_us"):
        values = [r[key] for r in good if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    out["samples"] = len(good)
    out["spread_cpu_us_per_msg"] = [r.get("server_cpu_us_per_msg") for r in good]
    return out


def _table(results: dict[str, Any]) -> str:
    lines = []
    for app in results["apps"]:
        lines += [
            f"### {app} application",
            "",
            "| scenario | --ws | msgs/s | server CPU us/msg | CPU vs websockets-sansio |",
            "|---|---|---:|---:|---:|",
        ]
        cells = results["servers"][app]
        for name, _ in SCENARIOS:
            base = cells.get("websockets-sansio", {}).get(name, {}).get("server_cpu_us_per_msg")
            for ws in results["ws"]:
                res = cells.get(ws, {}).get(name, {})
                cpu = res.get("server_cpu_us_per_msg")
                ratio = f"{base / cpu:.2f}x" if base and cpu else "-"
                rate = res.get("msgs_per_s")
                lines.append(
                    f"| {name} | {ws} | {rate:,.0f} | {cpu:.2f} | {ratio} |"
                    if rate and cpu
                    else f"| {name} | {ws} | {res.get('error', '-')} | - | - |"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ws", default=",".join(WS))
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    ws_list = args.ws.split(",")
    apps = args.apps.split(",")
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "loop": args.loop,
        "duration_s": args.duration,
        "repeat": args.repeat,
        "load_average_start": round(os.getloadavg()[0], 2),
        "ws": ws_list,
        "apps": apps,
        "servers": {},
    }
    runs: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    order = [(app, ws) for app in apps for ws in ws_list]
    for round_ in range(args.repeat):
        shift = round_ % len(order)
        for app, ws in order[shift:] + order[:shift]:
            for name, res in _run_one(ws, app, args.duration, args.loop).items():
                runs.setdefault((app, ws), {}).setdefault(name, []).append(res)
    for (app, ws), per in runs.items():
        results["servers"].setdefault(app, {})[ws] = {n: _median(s) for n, s in per.items()}
    results["load_average_end"] = round(os.getloadavg()[0], 2)
    table = _table(results)
    print(table)
    if not args.no_write:
        out = ROOT / "bench" / "results" / "uvicorn.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        header = (
            "# uvicorn WebSocket implementations\n\n"
            f"{results['date']}, {results['cpu']}, Python {results['python']}, "
            f"{args.loop}, httptools; one uvicorn worker on CPU 0, the load generator "
            f"on CPU 1; median of {args.repeat} runs of {args.duration} s; load average "
            f"{results['load_average_start']} at the start, {results['load_average_end']} "
            "at the end. Produced by `bench/uvicorn/run.py`.\n\n"
            "Compare the server CPU time per message: msgs/s is bounded by the load "
            "generator's core and moves with whatever else the machine runs (every "
            "run's CPU per message is in `bench/results/uvicorn.json`).\n\n"
        )
        (HERE / "RESULTS.md").write_text(header + table)


if __name__ == "__main__":
    main()
