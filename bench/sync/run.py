"""Sync (threaded) WebSocket clients, measured against one echo server.

Usage::

    python bench/sync/run.py [--clients fastws,websockets,websocket-client,...]
                             [--duration 3] [--repeat 3] [--no-write]

The server is fastws's asyncio echo server on uvloop (``python -m fastws echo
--uvloop``), pinned to CPU 0; each client runs in a process of its own pinned
to CPU 1. Scenarios:

* ``rr-16B``: request/response, 16 B text messages, one at a time;
* ``stream-16KiB``: the client asks for a burst of 64 messages of 16 KiB
  (binary) and receives them (the server echoes 64 requests sent at once);
* ``rr-1MiB-text`` and ``rr-1MiB-binary``: request/response with 1 MiB messages.

For each: messages per second and the client's CPU time per message (user +
system of the whole client process: its reader thread included), the median
over ``--repeat`` runs. Clients: fastws.sync, websockets.sync and
websocket-client (without and, when installed, with its optional wsaccel).
Results go to ``bench/results/sync.json`` and the "Sync clients" section of
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
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
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import _sections  # noqa: E402

START, END = _sections.markers("sync")
CLIENTS = ["fastws", "websockets", "websocket-client", "websocket-client+wsaccel"]
SCENARIOS: dict[str, dict[str, Any]] = {
    "rr-16B": {"size": 16, "text": True, "burst": 1},
    "stream-16KiB": {"size": 16 << 10, "text": False, "burst": 64},
    "rr-1MiB-text": {"size": 1 << 20, "text": True, "burst": 1},
    "rr-1MiB-binary": {"size": 1 << 20, "text": False, "burst": 1},
}


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- one client


def _client(name: str, url: str, scenario: str, duration: float) -> dict[str, float]:
    """Run one scenario in this process; messages and CPU seconds."""
    spec = SCENARIOS[scenario]
    payload: str | bytes = "x" * spec["size"] if spec["text"] else os.urandom(spec["size"])
    burst = int(spec["burst"])
    if name == "fastws":
        from fastws.sync import connect

        ws = connect(url, max_size=None, compression=None, ping_interval=None)
        send, recv, close = ws.send, ws.recv, ws.close
    elif name == "websockets":
        from websockets.sync.client import connect as wconnect

        wsw = wconnect(url, max_size=None, compression=None)
        send, recv, close = wsw.send, wsw.recv, wsw.close
    else:
        import websocket

        if name == "websocket-client+wsaccel":
            import wsaccel  # noqa: F401 - websocket-client uses it when importable
        wsc = websocket.create_connection(url, enable_multithread=False)
        if isinstance(payload, str):
            send = wsc.send
        else:
            send = wsc.send_binary
        recv, close = wsc.recv, wsc.close
    messages = 0
    cpu0 = time.process_time()
    end = time.monotonic() + duration
    while time.monotonic() < end:
        for _ in range(burst):
            send(payload)
        for _ in range(burst):
            recv()
        messages += burst
    cpu = time.process_time() - cpu0
    close()
    return {"messages": messages, "seconds": duration, "cpu": cpu}


# ---------------------------------------------------------------- the runner


def _run_client(name: str, url: str, scenario: str, duration: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if name == "websocket-client":
        env["FASTWS_BENCH_NO_WSACCEL"] = "1"
    cmd = [*_pin(1), PY, __file__, "--child", name, url, scenario, str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for module in ("fastws", "websockets", "websocket", "wsaccel"):
        try:
            versions[module] = str(getattr(__import__(module), "__version__", "?"))
        except ImportError:
            versions[module] = "missing"
    import fastws

    versions["fastws_implementation"] = fastws.implementation
    return versions


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, url, scenario, duration = args.child
        if os.environ.get("FASTWS_BENCH_NO_WSACCEL"):
            sys.modules["wsaccel"] = None  # type: ignore[assignment]
            sys.modules["wsaccel.xormask"] = None  # type: ignore[assignment]
        print(json.dumps(_client(name, url, scenario, float(duration))))
        return 0

    port = _free_port()
    server = subprocess.Popen(
        [
            *_pin(0),
            PY,
            "-m",
            "fastws",
            "echo",
            "--uvloop",
            "--port",
            str(port),
            "--max-size",
            str(4 << 20),
            "--no-compression",
        ],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"ws://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    results: dict[str, dict[str, Any]] = {}
    try:
        clients = [c for c in args.clients.split(",") if c]
        for scenario in args.scenarios.split(","):
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
            for _ in range(args.repeat):
                for client in clients:  # rotating: a burst of other work hits all alike
                    runs[client].append(_run_client(client, url, scenario, args.duration))
            for client, items in runs.items():
                ok = [r for r in items if "error" not in r]
                if not ok:
                    results.setdefault(scenario, {})[client] = {"error": items[0]["error"]}
                    continue
                rate = statistics.median(r["messages"] / r["seconds"] for r in ok)
                cpu = statistics.median(r["cpu"] / r["messages"] * 1e6 for r in ok)
                results.setdefault(scenario, {})[client] = {
                    "msgs_per_s": rate,
                    "cpu_us_per_msg": cpu,
                }
                print(
                    f"{scenario:16} {client:26} {rate:12.0f} msgs/s {cpu:10.2f} us CPU/msg",
                    flush=True,
                )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_name(),
        "versions": _versions(),
        "duration": args.duration,
        "repeat": args.repeat,
        "results": results,
    }
    if not args.no_write:
        (ROOT / "bench/results").mkdir(exist_ok=True)
        (ROOT / "bench/results/sync.json").write_text(json.dumps(report, indent=2) + "\n")
        _write_markdown(report)
    return 0


def _write_markdown(report: dict[str, Any]) -> None:
    lines = [
        START,
        "## Sync clients",
        "",
        f"{report['date']}, {report['cpu']}; {json.dumps(report['versions'])}. "
        f"Median of {report['repeat']} runs of {report['duration']:g} s, clients rotating; "
        "server: `python -m fastws echo --uvloop` on CPU 0, client on CPU 1. CPU per message is "
        "the client process's (its reader thread included). `bench/sync/run.py`.",
        "",
        "| scenario | client | msgs/s | client CPU us/msg | CPU vs fastws |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for scenario, by_client in report["results"].items():
        base = by_client.get("fastws", {}).get("cpu_us_per_msg")
        for client, r in by_client.items():
            if "error" in r:
                lines.append(f"| {scenario} | {client} | error: {r['error']} | | |")
                continue
            ratio = f"{r['cpu_us_per_msg'] / base:.2f}x" if base else ""
            rate, cpu = r["msgs_per_s"], r["cpu_us_per_msg"]
            lines.append(f"| {scenario} | {client} | {rate:,.0f} | {cpu:.2f} | {ratio} |")
    lines.append(END)
    _sections.write("sync", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
