"""Sync (threaded) WebSocket clients and servers, measured against their peers.

Usage::

    python bench/sync/run.py [--suites client,server]
                             [--clients fastws,websockets,websocket-client,...]
                             [--servers fastws,websockets] [--scenarios ...]
                             [--duration 3] [--repeat 3] [--no-write]

Two suites, both by default.

``client``: the server is fastws's asyncio echo server on uvloop (``python
-m fastws echo --uvloop``), pinned to CPU 0; each client runs in a process of
its own pinned to CPU 1. Scenarios:

* ``rr-16B``: request/response, 16 B text messages, one at a time;
* ``stream-16KiB``: the client asks for a burst of 64 messages of 16 KiB
  (binary) and receives them (the server echoes 64 requests sent at once);
* ``rr-1MiB-text`` and ``rr-1MiB-binary``: request/response with 1 MiB messages.

For each: messages per second and the client's CPU time per message (user +
system of the whole client process: its reader thread included), the median
over ``--repeat`` runs. Clients: fastws.sync, websockets.sync and
websocket-client (without and, when installed, with its optional wsaccel).

``server``: an echo server (``for message in ws: ws.send(message)``; no
compression, no pings, no message size limit) of ``fastws.sync.serve`` or of
``websockets.sync.server.serve`` (a thread per connection in both), each in
a process of its own pinned to CPU 0, under the echo benchmark's load
generator (``bench/echo/loadgen.py``: picows clients on uvloop, binary
messages) pinned to CPU 1. Scenarios:

* ``rr-64``: 64 connections, request/response, 16 B
* ``pipe-16x64-16B``: 16 connections x 64 messages in flight, 16 B
* ``pipe-16x64-16KiB``: 16 connections x 64 in flight, 16 KiB

For each: messages per second and the server's CPU time per message (user +
system of the server process, all its threads, from /proc), the median over
``--repeat`` runs with the servers in rotating order.

Results go to ``bench/results/sync.json`` and the "Sync clients and servers"
section of ``bench/RESULTS.md`` (a run of one suite keeps the other suite's
results from ``sync.json``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import _sections  # noqa: E402
from echo import run as echo  # noqa: E402

START, END = _sections.markers("sync")
SUITES = ["client", "server"]
CLIENTS = ["fastws", "websockets", "websocket-client", "websocket-client+wsaccel", "floor"]
SCENARIOS: dict[str, dict[str, Any]] = {
    "rr-16B": {"size": 16, "text": True, "burst": 1},
    "stream-16KiB": {"size": 16 << 10, "text": False, "burst": 64},
    "rr-1MiB-text": {"size": 1 << 20, "text": True, "burst": 1},
    "rr-1MiB-binary": {"size": 1 << 20, "text": False, "burst": 1},
}
SERVERS = ["fastws", "websockets", "floor"]
SERVER_SCENARIOS: dict[str, dict[str, int]] = {
    "rr-64": {"connections": 64, "inflight": 1, "size": 16},
    "pipe-16x64-16B": {"connections": 16, "inflight": 64, "size": 16},
    "pipe-16x64-16KiB": {"connections": 16, "inflight": 64, "size": 16 << 10},
}
#: The goals: fastws needs at least this many times less CPU per message
#: than each peer (clients: websockets.sync and websocket-client; servers:
#: websockets.sync).
CLIENT_GOALS = {"websockets": 2.0, "websocket-client": 3.0, "websocket-client+wsaccel": 3.0}
SERVER_GOALS = {"websockets": 2.0}
LABELS = {
    "fastws": "fastws.sync",
    "websockets": "websockets.sync",
    "floor": "floor: threads + queue only (floor.py)",
}


# ---------------------------------------------------------------- one client


def _client(name: str, url: str, scenario: str, duration: float) -> dict[str, float]:
    """Run one scenario in this process; messages and CPU seconds."""
    spec = SCENARIOS[scenario]
    payload: str | bytes = "x" * spec["size"] if spec["text"] else os.urandom(spec["size"])
    burst = int(spec["burst"])
    send: Callable[..., Any]
    recv: Callable[..., Any]
    close: Callable[..., Any]
    if name == "fastws":
        from fastws.sync import connect

        ws = connect(url, max_size=None, compression=None, ping_interval=None)
        send, recv, close = ws.send, ws.recv, ws.close
    elif name == "websockets":
        from websockets.sync.client import connect as wconnect

        wsw = wconnect(url, max_size=None, compression=None)
        send, recv, close = wsw.send, wsw.recv, wsw.close
    elif name == "floor":
        import floor

        send, recv, close = floor.connect(url)
    else:
        import websocket

        if name == "websocket-client+wsaccel":
            import wsaccel  # type: ignore[import-untyped]  # noqa: F401 - used when importable
        wsc = websocket.create_connection(url, enable_multithread=False)
        if isinstance(payload, str):
            send = wsc.send
        else:
            send = cast("Callable[..., Any]", wsc.send_binary)
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


# ---------------------------------------------------------------- one server


def _serve(name: str, port: int) -> None:
    """Run an echo server in this process until SIGTERM."""
    server: Any
    if name in ("fastws", "websockets"):
        # The same handler and options: the two libraries share their sync API.
        module = "fastws.sync" if name == "fastws" else "websockets.sync.server"
        serve = importlib.import_module(module).serve

        def handler(ws: Any) -> None:
            for message in ws:
                ws.send(message)

        server = serve(
            handler, "127.0.0.1", port, compression=None, max_size=None, ping_interval=None
        )
    elif name == "floor":
        import floor

        print("READY", flush=True)
        floor.serve_forever(port)
        return
    else:
        raise SystemExit(f"unknown server {name!r}")
    # SIGTERM ends the process (its default action), connection threads and all.
    print("READY", flush=True)
    server.serve_forever()


# ---------------------------------------------------------------- the runners


def _run_client(name: str, url: str, scenario: str, duration: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if name == "websocket-client":
        env["FASTWS_BENCH_NO_WSACCEL"] = "1"
    cmd = [*echo._pin(1), PY, __file__, "--child", name, url, scenario, str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _wait_listening(port: int, proc: subprocess.Popen[str] | None = None) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"no server listening on port {port}")


def run_clients(
    clients: list[str], scenarios: list[str], duration: float, repeat: int
) -> dict[str, dict[str, Any]]:
    """The client suite: every client in every scenario against one asyncio echo server."""
    port = echo._free_port()
    server = subprocess.Popen(
        [
            *echo._pin(0),
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
        text=True,
    )
    url = f"ws://127.0.0.1:{port}/"
    results: dict[str, dict[str, Any]] = {}
    try:
        _wait_listening(port, server)
        for scenario in scenarios:
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
            for _ in range(repeat):
                for client in clients:  # rotating: a burst of other work hits all alike
                    runs[client].append(_run_client(client, url, scenario, duration))
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
                    f"client {scenario:16} {client:26} {rate:12.0f} msgs/s {cpu:10.2f} us CPU/msg",
                    flush=True,
                )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    return results


def _run_server(name: str, scenarios: list[str], duration: float) -> dict[str, dict[str, Any]]:
    """Start one sync echo server, run the load scenarios against it, stop it."""
    port = echo._free_port()
    proc = subprocess.Popen(
        [*echo._pin(0), PY, __file__, "--serve", name, str(port)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    per: dict[str, dict[str, Any]] = {}
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"the {name} sync server did not start: {line!r}")
        _wait_listening(port, proc)
        for scenario in scenarios:
            params = SERVER_SCENARIOS[scenario]
            extra = [f"--{k}={v}" for k, v in params.items()] + [f"--duration={duration}"]
            res = echo._loadgen(port, proc.pid, extra, timeout=duration * 4 + 60)
            per[scenario] = res
            rate, cpu = res.get("msgs_per_s"), res.get("server_cpu_us_per_msg")
            print(
                f"server {scenario:16} {name:26} "
                + (f"{rate:12.0f} msgs/s {cpu:10.2f} us CPU/msg" if rate and cpu else str(res)),
                flush=True,
            )
    finally:
        echo._stop_server(proc)
    time.sleep(0.5)
    return per


def run_servers(
    servers: list[str], scenarios: list[str], duration: float, repeat: int
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list[dict[str, Any]]]]]:
    """The server suite: scenario -> server -> medians, and every run."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in servers}
    for round_ in range(repeat):
        shift = round_ % len(servers)
        for name in servers[shift:] + servers[:shift]:
            for scenario, res in _run_server(name, scenarios, duration).items():
                runs[name].setdefault(scenario, []).append(res)
    results: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        for name in servers:
            med = echo._median(runs[name].get(scenario, []))
            results.setdefault(scenario, {})[name] = (
                {"error": med["error"]}
                if "error" in med
                else {
                    "msgs_per_s": med.get("msgs_per_s"),
                    "cpu_us_per_msg": med.get("server_cpu_us_per_msg"),
                    "p50_us": med.get("p50_us"),
                    "p99_us": med.get("p99_us"),
                    "samples": med.get("samples"),
                }
            )
    return results, runs


# ---------------------------------------------------------------- the report


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for module in ("fastws", "websockets", "websocket", "wsaccel", "picows"):
        try:
            versions[module] = str(getattr(__import__(module), "__version__", "?"))
        except ImportError:
            versions[module] = "missing"
    import fastws

    versions["fastws_implementation"] = fastws.implementation
    return versions


def _table(
    results: dict[str, dict[str, Any]], what: str, goals: dict[str, float]
) -> tuple[list[str], list[str]]:
    """The rows of one suite's table, and its verdicts against the goals."""
    lines = [
        f"| scenario | {what} | msgs/s | {what} CPU us/msg | this / fastws |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    verdicts = []
    for scenario, by_name in results.items():
        base = by_name.get("fastws", {}).get("cpu_us_per_msg")
        for name, r in by_name.items():
            label = LABELS.get(name, name)
            if "error" in r or not r.get("cpu_us_per_msg"):
                lines.append(f"| {scenario} | {label} | error: {r.get('error', '-')} | | |")
                continue
            ratio = r["cpu_us_per_msg"] / base if base else None
            rate, cpu = r["msgs_per_s"], r["cpu_us_per_msg"]
            lines.append(
                f"| {scenario} | {label} | {rate:,.0f} | {cpu:.2f} | "
                f"{f'{ratio:.2f}x' if ratio else ''} |"
            )
            if name in goals and ratio:
                met = "met" if ratio >= goals[name] else "**not met**"
                verdicts.append(f"`{scenario}` vs {label}: {ratio:.2f}x ({met})")
    return lines, verdicts


def _run_line(suite: dict[str, Any]) -> str:
    """When and how one suite ran: its date, versions, runs and their length."""
    versions = suite.get("versions")
    return (
        f"Run {suite['date']}"
        + (f"; {json.dumps(versions)}" if versions else "")
        + (
            f". Median of {suite['repeat']} runs of {suite['duration']:g} s. "
            if "repeat" in suite
            else ". "
        )
    )


def markdown(report: dict[str, Any]) -> str:
    """Render the sync section of RESULTS.md (whichever suites the report has)."""
    lines = [
        START,
        "## Sync clients and servers",
        "",
        f"{report['cpu']}. "
        "`this / fastws` divides a row's CPU time per message by fastws's: above 1, fastws "
        "needs less CPU. **Goals**: fastws needs at least 2x less CPU per message than "
        "websockets.sync (clients and servers) and at least 3x less than websocket-client "
        "(clients). Regenerate with `python bench/sync/run.py`.",
        "",
    ]
    client = report.get("client")
    if client:
        table, verdicts = _table(client["results"], "client", CLIENT_GOALS)
        lines += [
            "### Clients",
            "",
            _run_line(client) + "Server: `python -m fastws echo --uvloop` on CPU 0; each "
            "client in a process of its own on CPU 1, the clients rotating. CPU per message "
            "is the client process's (its reader thread included). The floor row is a "
            "reader thread, a queue and one `sendall()` per message with a parser that knows "
            "only data frames (`bench/sync/floor.py`): what the threaded model costs before "
            "any WebSocket work, for small messages (its parser copies large ones naively: "
            "there it is no floor).",
            "",
            *table,
            "",
        ]
        if verdicts:
            lines += ["Against the goals: " + "; ".join(verdicts) + ".", ""]
    server = report.get("server")
    if server:
        table, verdicts = _table(server["results"], "server", SERVER_GOALS)
        lines += [
            "### Servers",
            "",
            _run_line(server) + "Echo servers (`for message in ws: ws.send(message)`; "
            "compression off, pings off, no size limit) of `fastws.sync.serve` and "
            "`websockets.sync.server.serve`, each alone in a process pinned to CPU 0, under "
            "the echo benchmark's load generator (picows clients on uvloop, binary messages) "
            "on CPU 1, the servers in rotating order. CPU per message is the server "
            "process's (user + system, every thread, from /proc). The floor row is the same "
            "echo with a reader thread, a queue and one `sendall()` per message and no "
            "WebSocket work beyond parsing data frames (`bench/sync/floor.py`).",
            "",
            *table,
            "",
        ]
        if verdicts:
            lines += ["Against the goal: " + "; ".join(verdicts) + ".", ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _earlier() -> dict[str, Any]:
    """The sync.json of an earlier run, in this script's format (``{}`` when none)."""
    path = ROOT / "bench/results/sync.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    if "results" in data and "client" not in data:  # the first runs: clients only
        client = {k: data[k] for k in ("date", "versions", "duration", "repeat") if k in data}
        return {"client": {**client, "results": data["results"]}}
    return data


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default=",".join(SUITES), help="client, server or both")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--scenarios", default="", help="a subset of either suite's scenarios (default: all)"
    )
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, url, scenario, duration = args.child
        if os.environ.get("FASTWS_BENCH_NO_WSACCEL"):
            sys.modules["wsaccel"] = None  # type: ignore[assignment]
            sys.modules["wsaccel.xormask"] = None  # type: ignore[assignment]
        print(json.dumps(_client(name, url, scenario, float(duration))))
        return 0
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return 0

    suites = [s for s in args.suites.split(",") if s]
    if not suites or not set(suites) <= set(SUITES):
        parser.error("--suites takes client, server or both")
    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS) - set(SERVER_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    repeat = max(args.repeat, 1)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report: dict[str, Any] = {"date": now, "cpu": echo._cpu_model()}
    how = {"date": now, "versions": _versions(), "duration": args.duration, "repeat": repeat}
    if "client" in suites:
        scenarios = [s for s in SCENARIOS if not chosen or s in chosen]
        clients = [c for c in args.clients.split(",") if c]
        report["client"] = {
            **how,
            "results": run_clients(clients, scenarios, args.duration, repeat),
        }
    if "server" in suites:
        scenarios = [s for s in SERVER_SCENARIOS if not chosen or s in chosen]
        servers = [s for s in args.servers.split(",") if s]
        results, runs = run_servers(servers, scenarios, args.duration, repeat)
        report["server"] = {**how, "results": results, "runs": runs}
    if not args.no_write:
        # A run of one suite keeps the other suite's results of an earlier run.
        for suite, data in _earlier().items():
            if suite in SUITES and suite not in report:
                report[suite] = data
        (ROOT / "bench/results").mkdir(exist_ok=True)
        (ROOT / "bench/results/sync.json").write_text(json.dumps(report, indent=2) + "\n")
        _sections.write("sync", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
