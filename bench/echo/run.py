"""Run the echo benchmark for every server and write the results.

Usage::

    python bench/echo/run.py [--suites plain,deflate] [--servers a,b,...]
                             [--duration 4] [--idle 5000] [--repeat 3]
                             [--baseline CHECKOUT] [--no-write]

Each server runs alone, pinned to CPU 0 (``taskset -c 0``); the load generator
is pinned to CPU 1. Two suites:

``plain``, no compression: the load generator is ``loadgen.py`` (picows
clients on uvloop, binary messages). The same scenarios run against every
server:

* ``rr-1``: 1 connection, request/response, 16 B (msgs/s, p50/p99 latency)
* ``rr-64``: 64 connections, request/response, 16 B
* ``pipe-16x64-16B``: 16 connections x 64 messages in flight, 16 B
* ``pipe-16x64-16KiB``: 16 connections x 64 in flight, 16 KiB
* ``pipe-1x4-1MiB``: 1 connection x 4 in flight, 1 MiB
* ``idle``: RSS growth of the server for N idle connections

``deflate``, permessage-deflate negotiated (each server with its library's
default compression settings): the load generator is ``goclient/`` (Go,
gorilla/websocket clients with compression, which offer no context takeover
both ways and compress at level 1), built by this script on first use with
``tools/gobuild.py`` (needs ``go`` and the gorilla/websocket sources:
``apt-get install golang-go golang-github-gorilla-websocket-dev``). Text
messages of JSON-like records (about 4.5x compressible at level 1), against
the servers that support permessage-deflate (picows has none):

* ``deflate-rr-64-1KiB``: 64 connections, request/response, 1 KiB
* ``deflate-pipe-16x64-1KiB``: 16 connections x 64 in flight (streamed), 1 KiB
* ``deflate-pipe-16x16-16KiB``: 16 connections x 16 in flight, 16 KiB
* ``deflate-rr-4-64KiB``: 4 connections, request/response, 64 KiB
* ``deflate-pipe-1x4-1MiB``: 1 connection x 4 in flight, 1 MiB

Results go to ``bench/results/echo.json`` (``echo_deflate.json``) and to the
"Echo" ("Echo with permessage-deflate") section of ``bench/RESULTS.md``
(between its markers; the rest of the file is kept).

``--baseline CHECKOUT`` also runs every fastws server from another checkout
of fastws (built in place), as ``KIND@base``, in the same rotation: a
before/after comparison in one run.
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
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import _sections  # noqa: E402

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
START, END = _sections.markers("echo")

DEFLATE_SCENARIOS: list[tuple[str, dict[str, int]]] = [
    ("deflate-rr-64-1KiB", {"connections": 64, "inflight": 1, "size": 1 << 10}),
    ("deflate-pipe-16x64-1KiB", {"connections": 16, "inflight": 64, "size": 1 << 10}),
    ("deflate-pipe-16x16-16KiB", {"connections": 16, "inflight": 16, "size": 16 << 10}),
    ("deflate-rr-4-64KiB", {"connections": 4, "inflight": 1, "size": 64 << 10}),
    ("deflate-pipe-1x4-1MiB", {"connections": 1, "inflight": 4, "size": 1 << 20}),
]
DEFLATE_SERVERS = [
    "fastws-uvloop",
    "fastws-asyncio",
    "fastws-cb-uvloop",
    "fastws-cb-asyncio",
    "websockets",
    "aiohttp",
]
DEFLATE_START, DEFLATE_END = _sections.markers("echo-deflate")
#: Extra arguments of the Go client per server: aiohttp does not repeat
#: client_no_context_takeover, which gorilla requires (see goclient/main.go).
GOCLIENT_ARGS = {"aiohttp": ["--add-client-nct"]}
GOCLIENT_SRC = HERE / "goclient"
GOCLIENT = GOCLIENT_SRC / "echoclient"
BASE = "@base"


def goclient() -> Path:
    """The compressing load client, built when missing or older than its source."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gobuild
    finally:
        sys.path.pop(0)
    try:
        path: Path = gobuild.build(GOCLIENT_SRC, GOCLIENT)
    except gobuild.GoUnavailable as exc:
        raise SystemExit(f"the permessage-deflate suite needs a Go load client: {exc}") from None
    return path


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(
    kind: str, port: int, deflate: bool, baseline: Path | None
) -> subprocess.Popen[str]:
    root = ROOT
    if kind.endswith(BASE):
        assert baseline is not None
        kind, root = kind[: -len(BASE)], baseline
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(
        [*_pin(0), PY, str(HERE / "servers.py"), kind, str(port)]
        + (["--deflate"] if deflate else []),
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


def _loadgen(
    port: int, pid: int, extra: list[str], timeout: float, deflate: bool = False
) -> dict[str, Any]:
    client = [str(GOCLIENT)] if deflate else [PY, str(HERE / "loadgen.py")]
    cmd = [
        *_pin(1),
        *client,
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


def _run_server(
    kind: str, duration: float, idle: int, deflate: bool = False, baseline: Path | None = None
) -> dict[str, Any]:
    """Start one server, run every scenario (and the idle test) against it."""
    port = _free_port()
    print(f"== {kind}{' (deflate)' if deflate else ''}", file=sys.stderr, flush=True)
    proc = _start_server(kind, port, deflate, baseline)
    per: dict[str, Any] = {}
    try:
        for name, params in DEFLATE_SCENARIOS if deflate else SCENARIOS:
            extra = [f"--{k}={v}" for k, v in params.items()] + [f"--duration={duration}"]
            if deflate:
                extra += GOCLIENT_ARGS.get(kind, [])
            res = _loadgen(port, proc.pid, extra, timeout=duration * 4 + 60, deflate=deflate)
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


def run(
    servers: list[str],
    duration: float,
    idle: int,
    repeat: int = 1,
    deflate: bool = False,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Run every scenario for every server, ``repeat`` times; keep the medians.

    The servers take turns in a rotating order, so that slow drifts of the
    machine (other work, frequency) do not always favour the same one. The
    idle-memory test runs once per server (in the first round; not with
    ``deflate``, where it would measure the same as without).
    """
    if deflate:
        idle = 0
    results: dict[str, Any] = {
        "suite": "deflate" if deflate else "plain",
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
            per = _run_server(kind, duration, idle if round_ == 0 else 0, deflate, baseline)
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


def _is_deflate(results: dict[str, Any]) -> bool:
    return results.get("suite") == "deflate"


def _scenarios(results: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
    return DEFLATE_SCENARIOS if _is_deflate(results) else SCENARIOS


def _targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets: the best fastws server against two peers.

    The peers are picows and websockets, or websockets and aiohttp with
    compression. Two ratios per peer: throughput (msgs/s, which the load
    generator can cap) and the server's CPU time per message (peer's /
    fastws's: above 1 means fastws does the same work with less CPU).
    """
    ours = [k for k in results["servers"] if k.startswith("fastws") and not k.endswith(BASE)]
    if not ours:
        return []
    plain = [k for k in ours if "-cb-" not in k]  # async for handlers, no on_message
    peers = ("websockets", "aiohttp") if _is_deflate(results) else ("picows", "websockets")
    lines = [
        "### Against the targets",
        "",
        f"Best fastws server per scenario (by msgs/s) against {peers[0]} and {peers[1]}: "
        "throughput ratio, and CPU ratio (the peer's server CPU time per message "
        "divided by fastws's; above 1 means fastws needs less CPU). When the best is "
        "an `on_message` server, a second row gives the best `async for` one.",
        "",
        f"| scenario | fastws | msgs/s vs {peers[0]} | CPU vs {peers[0]} "
        f"| msgs/s vs {peers[1]} | CPU vs {peers[1]} |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, _ in _scenarios(results):
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
            for peer in peers:
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


def _before_after(results: dict[str, Any]) -> list[str]:
    """Server CPU per message of each fastws server against its ``@base`` twin."""
    pairs = [k for k in results["servers"] if k + BASE in results["servers"]]
    if not pairs:
        return []
    label = results.get("baseline_label")
    lines = [
        "### Before and after",
        "",
        "Server CPU time per message (us), the baseline checkout (`@base`"
        + (f": {label}" if label else "")
        + ") and this one, measured in the same run (`after / before`: below 1 is faster).",
        "",
        "| scenario | server | before | after | after / before |",
        "|---|---|---:|---:|---:|",
    ]
    for name, _ in _scenarios(results):
        for kind in pairs:
            old = _cell(results, kind + BASE, name).get("server_cpu_us_per_msg")
            new = _cell(results, kind, name).get("server_cpu_us_per_msg")
            ratio = f"{new / old:.2f}" if old and new else "-"
            lines.append(f"| {name} | {kind} | {_fmt(old, 2)} | {_fmt(new, 2)} | {ratio} |")
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """Render the results as the Echo (or Echo with permessage-deflate) section."""
    v = results["versions"]
    deflate = _is_deflate(results)
    if deflate:
        setup = (
            "Server pinned to CPU 0, load generator (Go, gorilla/websocket clients "
            "with compression at level 1, no context takeover both ways) to CPU 1, "
            f"{results['duration_s']:g} s per scenario after 0.5 s of warm-up, text "
            "messages of JSON-like records, permessage-deflate with each library's "
            "default settings, "
            f"median of {results.get('repeat', 1)} run(s) with the servers in rotating "
            "order. picows is absent: it has no permessage-deflate. `us/msg` is the "
            "server's CPU time (user+system) per echoed message: lower is better and "
            "less sensitive to the load generator than msgs/s. "
            "Regenerate with `python bench/echo/run.py --suites deflate`."
        )
    else:
        setup = (
            "Server pinned to CPU 0, load generator (picows clients on uvloop) to CPU 1, "
            f"{results['duration_s']:g} s per scenario after 0.5 s of warm-up, binary "
            f"messages, median of {results.get('repeat', 1)} run(s) with the servers in "
            "rotating order, no compression. `us/msg` is the server's CPU time "
            "(user+system) per echoed message: lower is better and less sensitive to "
            "the load generator than msgs/s. `raw-*` is the ceiling: a bare asyncio "
            "Protocol that only strips the mask of each frame. Regenerate with "
            "`python bench/echo/run.py`."
        )
    lines = [
        DEFLATE_START if deflate else START,
        "## Echo with permessage-deflate" if deflate else "## Echo",
        "",
        f"Run {results['date']} on {results['cpu']} ({results['cpus']} CPUs, Linux "
        f"{results['kernel']}), Python {v['python']}; fastws {v.get('fastws')} "
        f"({v.get('fastws_implementation')}), websockets {v.get('websockets')}, "
        f"aiohttp {v.get('aiohttp')}, picows {v.get('picows')}, uvloop {v.get('uvloop')}.",
        "",
        setup,
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
    lines += _before_after(results)
    names = [n for n, _ in _scenarios(results)]
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
    lines.append(DEFLATE_END if deflate else END)
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any]) -> None:
    """Write echo.json (echo_deflate.json) and replace (or add) its section of RESULTS.md.

    The deflate section goes right after the Echo section when it is new.
    """
    deflate = _is_deflate(results)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = "echo_deflate.json" if deflate else "echo.json"
    (out / name).write_text(json.dumps(results, indent=2) + "\n")
    if deflate:
        _sections.write("echo-deflate", markdown(results), after="echo")
    else:
        _sections.write("echo", markdown(results))


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suites", default="plain,deflate", help="plain (no compression), deflate, or both"
    )
    parser.add_argument("--servers", default="", help="default: every server of the suite")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another fastws checkout (built in place): its fastws servers run too, as KIND@base",
    )
    parser.add_argument("--baseline-label", default="", help="what the baseline is (for reports)")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median kept)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    suites = [s for s in args.suites.split(",") if s]
    if not set(suites) <= {"plain", "deflate"}:
        parser.error("--suites takes plain, deflate or both")
    baseline = args.baseline.resolve() if args.baseline else None
    if "deflate" in suites:
        goclient()
    for suite in suites:
        deflate = suite == "deflate"
        default = DEFLATE_SERVERS if deflate else SERVERS
        servers = [s for s in args.servers.split(",") if s] or default
        if deflate:
            servers = [s for s in servers if s in DEFLATE_SERVERS]  # picows cannot compress
        if baseline is not None:
            servers += [s + BASE for s in servers if s.startswith("fastws")]
        results = run(servers, args.duration, args.idle, max(args.repeat, 1), deflate, baseline)
        if baseline is not None and args.baseline_label:
            results["baseline_label"] = args.baseline_label
        if not args.no_write:
            write_results(results)
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
