"""Run the echo benchmark for every server and write the results.

Usage::

    python bench/echo/run.py [--servers a,b,...] [--duration 4] [--idle 5000]
                             [--repeat 3] [--no-write]

Each server runs alone, pinned to CPU 0 (``taskset -c 0``); the load generator
(``loadgen.py``, picows clients on uvloop) is pinned to CPU 1. The same
scenarios run against every server:

* ``rr-1``: 1 connection, request/response, 16 B (msgs/s, p50/p99 latency)
* ``rr-64``: 64 connections, request/response, 16 B
* ``pipe-16x64-16B``: 16 connections x 64 messages in flight, 16 B
* ``pipe-16x64-16KiB``: 16 connections x 64 in flight, 16 KiB
* ``pipe-1x4-1MiB``: 1 connection x 4 in flight, 1 MiB
* ``idle``: RSS growth of the server for N idle connections

Results go to ``bench/results/echo.json`` and to the "Echo" section of
``bench/RESULTS.md`` (between its markers; the rest of the file is kept).
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # report the version of this checkout

SCENARIOS: list[tuple[str, dict[str, int]]] = [
    ("rr-1", {"connections": 1, "inflight": 1, "size": 16}),
    ("rr-64", {"connections": 64, "inflight": 1, "size": 16}),
    ("pipe-16x64-16B", {"connections": 16, "inflight": 64, "size": 16}),
    ("pipe-16x64-16KiB", {"connections": 16, "inflight": 64, "size": 16 << 10}),
    ("pipe-1x4-1MiB", {"connections": 1, "inflight": 4, "size": 1 << 20}),
]
SERVERS = [
    "raw-uvloop",
    "raw-asyncio",
    "fastws-uvloop",
    "fastws-asyncio",
    "fastws-cb-uvloop",
    "fastws-cb-asyncio",
    "picows",
    "websockets",
    "aiohttp",
]
START = "<!-- echo-results:start -->"
END = "<!-- echo-results:end -->"


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(kind: str, port: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [*_pin(0), PY, str(HERE / "servers.py"), kind, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"{kind} did not start: {line!r}")
    return proc


def _stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _loadgen(port: int, pid: int, extra: list[str], timeout: float) -> dict[str, Any]:
    cmd = [
        *_pin(1),
        PY,
        str(HERE / "loadgen.py"),
        "--url",
        f"ws://127.0.0.1:{port}/",
        "--server-pid",
        str(pid),
        *extra,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("fastws", "websockets", "aiohttp", "picows", "uvloop"):
        try:
            module = __import__(name)
            versions[name] = str(getattr(module, "__version__", "?"))
        except ImportError:
            versions[name] = "missing"
    try:
        import fastws

        versions["fastws_implementation"] = fastws.implementation
    except ImportError:
        pass
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _run_server(kind: str, duration: float, idle: int) -> dict[str, Any]:
    """Start one server, run every scenario (and the idle test) against it."""
    port = _free_port()
    print(f"== {kind}", file=sys.stderr, flush=True)
    proc = _start_server(kind, port)
    per: dict[str, Any] = {}
    try:
        for name, params in SCENARIOS:
            extra = [f"--{k}={v}" for k, v in params.items()] + [f"--duration={duration}"]
            res = _loadgen(port, proc.pid, extra, timeout=duration * 4 + 60)
            per[name] = res
            print(f"   {name:18} {res}", file=sys.stderr, flush=True)
        if idle:
            res = _loadgen(port, proc.pid, [f"--idle={idle}"], timeout=180)
            per["idle"] = res
            print(f"   {'idle':18} {res}", file=sys.stderr, flush=True)
    finally:
        _stop_server(proc)
    time.sleep(0.5)
    return per


def _median(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs: the median of every number; errors if all failed."""
    good = [r for r in samples if "error" not in r]
    if not good:
        return samples[0] if samples else {"error": "not run"}
    out: dict[str, Any] = {}
    for key, value in good[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in good if key in r)
        else:
            out[key] = value
    out["samples"] = len(good)
    return out


def run(servers: list[str], duration: float, idle: int, repeat: int = 1) -> dict[str, Any]:
    """Run every scenario for every server, ``repeat`` times; keep the medians.

    The servers take turns in a rotating order, so that slow drifts of the
    machine (other work, frequency) do not always favour the same one. The
    idle-memory test runs once per server (in the first round).
    """
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "versions": _versions(),
        "duration_s": duration,
        "repeat": repeat,
        "idle_connections": idle,
        "load_average_start": round(os.getloadavg()[0], 2),
        "servers": {},
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in servers}
    for round_ in range(repeat):
        shift = round_ % max(len(servers), 1)
        for kind in servers[shift:] + servers[:shift]:
            per = _run_server(kind, duration, idle if round_ == 0 else 0)
            for name, res in per.items():
                runs[kind].setdefault(name, []).append(res)
    for kind in servers:
        results["servers"][kind] = {name: _median(lst) for name, lst in runs[kind].items()}
    results["runs"] = runs
    results["load_average_end"] = round(os.getloadavg()[0], 2)
    return results


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None or value != value:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}"


def _cell(results: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    res = results["servers"].get(kind, {}).get(name, {})
    return res if isinstance(res, dict) and "error" not in res else {}


def _targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets: the best fastws server against picows and websockets.

    Two ratios per peer: throughput (msgs/s, which the load generator can cap)
    and the server's CPU time per message (peer's / fastws's: above 1 means
    fastws does the same work with less CPU).
    """
    ours = [k for k in results["servers"] if k.startswith("fastws")]
    if not ours:
        return []
    plain = [k for k in ours if "-cb-" not in k]  # async for handlers, no on_message
    lines = [
        "### Against the targets",
        "",
        "Best fastws server per scenario (by msgs/s) against picows and websockets: "
        "throughput ratio, and CPU ratio (the peer's server CPU time per message "
        "divided by fastws's; above 1 means fastws needs less CPU). When the best is "
        "an `on_message` server, a second row gives the best `async for` one.",
        "",
        "| scenario | fastws | msgs/s vs picows | CPU vs picows | msgs/s vs websockets "
        "| CPU vs websockets |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, _ in SCENARIOS:
        cells = {k: _cell(results, k, name) for k in ours}
        cells = {k: c for k, c in cells.items() if c.get("msgs_per_s")}
        if not cells:
            continue

        by_rate = sorted(cells, key=lambda k: cells[k]["msgs_per_s"], reverse=True)
        best = by_rate[0]
        best_plain = next((k for k in by_rate if k in plain), best)
        for kind in dict.fromkeys((best, best_plain)):
            mine = cells[kind]
            row = [name if kind == best else "", kind]
            for peer in ("picows", "websockets"):
                other = _cell(results, peer, name)
                if other.get("msgs_per_s") and mine.get("server_cpu_us_per_msg"):
                    row.append(f"{mine['msgs_per_s'] / other['msgs_per_s']:.2f}x")
                    cpu = other.get("server_cpu_us_per_msg") or 0
                    row.append(f"{cpu / mine['server_cpu_us_per_msg']:.2f}x")
                else:
                    row += ["-", "-"]
            lines.append("| " + " | ".join(row) + " |")
    mem = {k: _cell(results, k, "idle").get("bytes_per_connection") for k in results["servers"]}
    best_mem = min((k for k in ours if mem.get(k)), key=lambda k: mem[k] or 0, default=None)
    if best_mem and mem.get("websockets"):
        lines += [
            "",
            f"Idle memory: {best_mem} {mem[best_mem]:,} bytes per connection, "
            f"websockets {mem['websockets']:,}: "
            f"{(mem[best_mem] or 0) / (mem['websockets'] or 1):.2f} of websockets'.",
        ]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """Render the results as the Echo section of RESULTS.md."""
    v = results["versions"]
    lines = [
        START,
        "## Echo",
        "",
        f"Run {results['date']} on {results['cpu']} ({results['cpus']} CPUs, Linux "
        f"{results['kernel']}), Python {v['python']}; fastws {v.get('fastws')} "
        f"({v.get('fastws_implementation')}), websockets {v.get('websockets')}, "
        f"aiohttp {v.get('aiohttp')}, picows {v.get('picows')}, uvloop {v.get('uvloop')}.",
        "",
        "Server pinned to CPU 0, load generator (picows clients on uvloop) to CPU 1, "
        f"{results['duration_s']:g} s per scenario after 0.5 s of warm-up, binary messages, "
        f"median of {results.get('repeat', 1)} run(s) with the servers in rotating order, "
        "no compression. `us/msg` is the server's CPU time (user+system) per echoed "
        "message: lower is better and less sensitive to the load generator than msgs/s. "
        "`raw-*` is the ceiling: a bare asyncio Protocol that only strips the mask of "
        "each frame. Regenerate with `python bench/echo/run.py`.",
        "",
        "Other work on the machine shows up as noise: msgs/s and latencies of "
        "back-to-back runs can differ by tens of percent; server us/msg varies less. "
        + (
            f"Load average (1 min) at start/end: {results['load_average_start']:g} / "
            f"{results['load_average_end']:g}."
            if "load_average_end" in results
            else ""
        ),
        "",
    ]
    lines += _targets(results)
    names = [n for n, _ in SCENARIOS]
    for name in names:
        lines += [
            f"### {name}",
            "",
            "| server | msgs/s (min-max of runs) | MB/s | p50 us | p99 us | server us/msg |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind, per in results["servers"].items():
            r = per.get(name, {})
            if "error" in r:
                lines.append(f"| {kind} | error: {r['error']} | | | | |")
                continue
            samples = [
                x["msgs_per_s"]
                for x in results.get("runs", {}).get(kind, {}).get(name, [])
                if "msgs_per_s" in x
            ]
            spread = f" ({_fmt(min(samples))}-{_fmt(max(samples))})" if len(samples) > 1 else ""
            lines.append(
                f"| {kind} | {_fmt(r.get('msgs_per_s'))}{spread} | "
                f"{_fmt(r.get('mbytes_per_s'), 1)} | "
                f"{_fmt(r.get('p50_us'), 1)} | {_fmt(r.get('p99_us'), 1)} | "
                f"{_fmt(r.get('server_cpu_us_per_msg'), 2)} |"
            )
        lines.append("")
    if results.get("idle_connections"):
        lines += [
            f"### Memory: {results['idle_connections']:,} idle connections",
            "",
            "| server | RSS growth (MB) | bytes per connection |",
            "|---|---:|---:|",
        ]
        for kind, per in results["servers"].items():
            r = per.get("idle", {})
            if "error" in r or not r:
                lines.append(f"| {kind} | error: {r.get('error', '-')} | |")
                continue
            lines.append(
                f"| {kind} | {r['rss_delta_bytes'] / 1e6:,.1f} | {r['bytes_per_connection']:,} |"
            )
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any]) -> None:
    """Write echo.json and replace (or append) the Echo section of RESULTS.md."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "echo.json").write_text(json.dumps(results, indent=2) + "\n")
    md = ROOT / "bench" / "RESULTS.md"
    section = markdown(results)
    text = md.read_text() if md.exists() else "# Benchmark results\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    md.write_text(text)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median kept)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    results = run(servers, args.duration, args.idle, max(args.repeat, 1))
    if args.no_write:
        print(markdown(results))
    else:
        write_results(results)
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
