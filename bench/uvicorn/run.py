"""Benchmark uvicorn's WebSocket implementations against fastws.uvicorn.

Usage::

    python bench/uvicorn/run.py [--suites plain,deflate,idle]
                                [--ws fastws,websockets-sansio,...] [--apps starlette,raw]
                                [--duration 3] [--repeat 3] [--idle 1000]
                                [--loop uvloop] [--no-write] [--from-json FILE]

For each application (the Starlette echo endpoint of ``app.py`` and the same
echo as a bare ASGI callable) and each ``--ws`` implementation, one uvicorn
worker (httptools, uvloop by default, ``--ws-per-message-deflate true``, which
is uvicorn's default, for every implementation) runs pinned to CPU 0 and the
load generator runs pinned to CPU 1. Three suites:

``plain``, no compression: the load generator of the echo benchmark
(``bench/echo/loadgen.py``: picows clients, binary messages, no
permessage-deflate offer):

* ``rr-64``: 64 connections, request/response, 16 B
* ``pipe-16x64-16B``: 16 connections x 64 messages in flight, 16 B
* ``pipe-16x64-16KiB``: 16 connections x 64 in flight, 16 KiB

``deflate``, permessage-deflate negotiated (browsers always offer it): the
Go gorilla/websocket compressing client of the echo benchmark's deflate
suite, built and driven by ``bench/echo/run.py``'s own functions (text
messages of JSON-like records, compression level 1, no context takeover
both ways; the client fails when the server does not accept the offer):

* ``deflate-rr-64-1KiB``: 64 connections, request/response, 1 KiB
* ``deflate-pipe-16x64-1KiB``: 16 connections x 64 in flight, 1 KiB
* ``deflate-pipe-16x16-16KiB``: 16 connections x 16 in flight, 16 KiB

``idle``: the RSS growth of the uvicorn worker (``/proc/PID/status``) per
idle open WebSocket connection, with the echo benchmark's idle measurement
(``loadgen.py --idle``): ``--idle`` connections opened and held, RSS read
before and after. Two rows: ``idle`` (no compression offered) and
``idle-deflate`` (each connection offers permessage-deflate as a browser
does). Each runs once, on a fresh worker, after 20 connections opened and
closed (lazy imports and first-use allocations do not count).

Reported per scenario: messages per second and the worker's CPU time per
message (user + system, from /proc); the runs rotate between servers and the
medians are kept. Results go to ``bench/results/uvicorn.json`` and to the
"uvicorn" section of ``bench/RESULTS.md`` (between its markers).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import socket
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
import callgrind  # noqa: E402
import worker  # noqa: E402
import zlib_floor  # noqa: E402
from echo import run as echo  # noqa: E402

PLAIN_SCENARIOS: list[tuple[str, dict[str, int]]] = [
    ("rr-64", {"connections": 64, "inflight": 1, "size": 16}),
    ("pipe-16x64-16B", {"connections": 16, "inflight": 64, "size": 16}),
    ("pipe-16x64-16KiB", {"connections": 16, "inflight": 64, "size": 16 << 10}),
]
#: The echo benchmark's deflate scenarios that run here (same parameters).
DEFLATE_NAMES = ["deflate-rr-64-1KiB", "deflate-pipe-16x64-1KiB", "deflate-pipe-16x16-16KiB"]
DEFLATE_SCENARIOS = [(n, p) for n, p in echo.DEFLATE_SCENARIOS if n in DEFLATE_NAMES]
IDLE_SCENARIOS = ["idle", "idle-deflate"]
SUITES = ["plain", "deflate", "idle"]
WS = worker.WS
APPS = worker.APPS
APP_TITLES = {"starlette": "Starlette endpoint", "raw": "bare ASGI application"}
REFERENCE = worker.REFERENCE
WARMUP_CONNECTIONS = 20
RESULTS_JSON = ROOT / "bench" / "results" / "uvicorn.json"


def _start(ws: str, app: str, port: int, loop: str) -> subprocess.Popen[str]:
    cmd = [*echo._pin(0), *worker.command(PY, ws, app, port, loop)]
    env = worker.environment(ws)
    proc = subprocess.Popen(cmd, env=env, text=True)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn --ws {ws} did not start") from None
            time.sleep(0.05)
    echo._stop_server(proc)
    raise RuntimeError(f"uvicorn --ws {ws} did not listen")


def _log(app: str, ws: str, name: str, res: dict[str, Any]) -> None:
    print(f"   {app:9} {ws:18} {name:24} {res}", file=sys.stderr, flush=True)


def _run_load(
    ws: str, app: str, suites: list[str], duration: float, loop: str
) -> dict[str, dict[str, Any]]:
    """One worker, every load scenario of ``suites`` against it."""
    port = echo._free_port()
    proc = _start(ws, app, port, loop)
    per: dict[str, dict[str, Any]] = {}
    try:
        for suite, scenarios in (("plain", PLAIN_SCENARIOS), ("deflate", DEFLATE_SCENARIOS)):
            if suite not in suites or (suite != "deflate" and ws in worker.DEFLATE_ONLY):
                continue
            for name, params in scenarios:
                extra = [f"--{k}={v}" for k, v in params.items()] + [f"--duration={duration}"]
                res = echo._loadgen(
                    port, proc.pid, extra, timeout=duration * 4 + 60, deflate=suite == "deflate"
                )
                per[name] = res
                _log(app, ws, name, res)
    finally:
        echo._stop_server(proc)
    time.sleep(0.5)
    return per


def _run_idle(ws: str, app: str, count: int, offer_deflate: bool, loop: str) -> dict[str, Any]:
    """RSS growth of a fresh worker for ``count`` idle connections."""
    port = echo._free_port()
    proc = _start(ws, app, port, loop)
    offer = ["--offer-deflate"] if offer_deflate else []
    try:
        warm = echo._loadgen(port, proc.pid, [f"--idle={WARMUP_CONNECTIONS}", *offer], 60)
        if "error" in warm:
            res = warm
        else:
            time.sleep(0.5)
            res = echo._loadgen(port, proc.pid, [f"--idle={count}", *offer], timeout=180)
    finally:
        echo._stop_server(proc)
    time.sleep(0.5)
    _log(app, ws, "idle-deflate" if offer_deflate else "idle", res)
    return res


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("uvicorn", "starlette", "websockets", "wsproto", "httptools", "uvloop", "picows"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    try:
        import fastws  # this checkout: bench/echo/run.py put it first on sys.path

        versions["fastws"] = f"{fastws.__version__} ({fastws.implementation})"
    except ImportError:
        versions["fastws"] = "missing"
    return versions


def run(
    suites: list[str],
    ws_list: list[str],
    apps: list[str],
    duration: float,
    repeat: int,
    idle: int,
    loop: str,
) -> dict[str, Any]:
    """Every scenario of ``suites`` for every (application, --ws) pair; medians kept."""
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": echo._cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "versions": _versions(),
        "loop": loop,
        "suites": suites,
        "duration_s": duration,
        "repeat": repeat,
        "idle_connections": idle if "idle" in suites else 0,
        "load_average_start": round(os.getloadavg()[0], 2),
        "ws": ws_list,
        "apps": apps,
        "servers": {},
    }
    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {
        app: {ws: {} for ws in ws_list} for app in apps
    }
    order = [(app, ws) for app in apps for ws in ws_list]
    if "plain" in suites or "deflate" in suites:
        # The servers take turns in a rotating order, so that slow drifts of
        # the machine do not always favour the same one.
        for round_ in range(repeat):
            shift = round_ % len(order)
            for app, ws in order[shift:] + order[:shift]:
                if ws in worker.DEFLATE_ONLY and "deflate" not in suites:
                    continue
                for name, res in _run_load(ws, app, suites, duration, loop).items():
                    runs[app][ws].setdefault(name, []).append(res)
    if "idle" in suites:
        for app, ws in order:
            if ws in worker.DEFLATE_ONLY:
                continue  # a compressor is used only once a message is sent
            for offer_deflate, name in zip((False, True), IDLE_SCENARIOS, strict=True):
                runs[app][ws][name] = [_run_idle(ws, app, idle, offer_deflate, loop)]
    for app in apps:
        results["servers"][app] = {
            ws: {name: echo._median(samples) for name, samples in runs[app][ws].items()}
            for ws in ws_list
        }
    results["runs"] = runs
    results["load_average_end"] = round(os.getloadavg()[0], 2)
    if "deflate" in suites:
        results["zlib_floor"] = zlib_floor.measure()
    return results


# ---------------------------------------------------------------- the report


def _cell(results: dict[str, Any], app: str, ws: str, name: str) -> dict[str, Any]:
    res = results["servers"].get(app, {}).get(ws, {}).get(name, {})
    return res if isinstance(res, dict) and "error" not in res else {}


def _cpu(results: dict[str, Any], app: str, ws: str, name: str) -> float | None:
    value = _cell(results, app, ws, name).get("server_cpu_us_per_msg")
    return float(value) if value else None


def _kib(results: dict[str, Any], app: str, ws: str, name: str) -> float | None:
    value = _cell(results, app, ws, name).get("bytes_per_connection")
    return float(value) / 1024 if isinstance(value, (int, float)) else None


def _scenarios(results: dict[str, Any]) -> list[str]:
    """The load scenarios that have results, in the order of the suites."""
    measured = {
        name
        for per_app in results["servers"].values()
        for per_ws in per_app.values()
        for name in per_ws
    }
    return [n for n, _ in PLAIN_SCENARIOS + DEFLATE_SCENARIOS if n in measured]


def _goals(results: dict[str, Any], counts: dict[str, Any] | None) -> list[str]:
    """The issue's goals, checked on the Starlette endpoint (fastws against websockets-sansio).

    Below the table, for each deflate goal missed, why: from the instruction ``counts``.
    """
    app = "starlette" if "starlette" in results["servers"] else next(iter(results["servers"]))
    lines = [
        "### Against the goals",
        "",
        f"The issue's goals, on the {APP_TITLES.get(app, app)}: websockets-sansio's server "
        f"CPU time per message divided by fastws's at least {worker.GOAL:g}x in every scenario "
        f"and at least {worker.SMALL_GOAL:g}x in the small-message streams ("
        + ", ".join(f"`{n}`" for n in worker.SMALL_STREAMS)
        + "); memory per idle connection at most websockets-sansio's.",
        "",
        "| scenario | fastws us/msg | websockets-sansio us/msg | sansio / fastws | goal | met "
        "| fastws-isal us/msg | sansio / fastws-isal | met |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    reasons = []
    for name in _scenarios(results):
        ours, ref = _cpu(results, app, "fastws", name), _cpu(results, app, REFERENCE, name)
        isal = _cpu(results, app, "fastws-isal", name)
        goal = worker.goal(name)
        lines.append(
            f"| {name} | {_num(ours)} | {_num(ref)} | {_against(ours, ref, goal, show_goal=True)} "
            f"| {_num(isal)} | {_against(isal, ref, goal, show_goal=False)} |"
        )
        if counts and ours and ref and ref / ours < goal:
            reason = callgrind.why(counts, name, goal, ref / isal if isal else None)
            if reason:
                reasons += [reason, ""]
    for name in IDLE_SCENARIOS:
        ours, ref = _kib(results, app, "fastws", name), _kib(results, app, REFERENCE, name)
        if ours is None and ref is None:
            continue
        met = "-" if ours is None or ref is None else "yes" if ours <= ref else "**no**"
        lines.append(
            f"| {name} (KiB per connection) | {_num(ours, 1)} | {_num(ref, 1)} | "
            f"{f'{ref / ours:.2f}x' if ours and ref else '-'} | ≤ sansio | {met} | - | - | - |"
        )
    return [*lines, "", *reasons]


def _against(ours: float | None, ref: float | None, goal: float, *, show_goal: bool) -> str:
    """The ``sansio / this | goal | met`` cells (without ``goal`` unless ``show_goal``)."""
    goal_cell = f" | {goal:g}x" if show_goal else ""
    if not ours or not ref:
        return f"-{goal_cell} | -"
    return f"{ref / ours:.2f}x{goal_cell} | {'yes' if ref / ours >= goal else '**no**'}"


def _zlib_table(results: dict[str, Any]) -> list[str]:
    """zlib's own cost per message beside the deflate scenarios' totals."""
    floor = results.get("zlib_floor")
    if not floor:
        return []
    app = "starlette" if "starlette" in results["servers"] else next(iter(results["servers"]))
    lines = [
        "### zlib alone (bench/uvicorn/zlib_floor.py)",
        "",
        f"Measured {floor['date']}: microseconds per message for inflating the client's "
        "message and deflating the answer, no context takeover, as each implementation calls "
        f"zlib (fastws: {floor['fastws_settings']}, a kept compressor reset by a full flush; "
        f"websockets under uvicorn: {floor['websockets_settings']}, a new compressor per "
        "message), no library code. `plain` is fastws's CPU per message in the plain "
        "scenario of the same shape (16 B binary), `bound` is websockets-sansio's "
        "measured total divided by zlib-for-fastws + plain: about the best ratio fastws "
        "could reach without any other cost for the 1 KiB or 16 KiB text messages. The last "
        "column: inflating with zlib and deflating with ISA-L, as fastws-isal does.",
        "",
        "| scenario | zlib for fastws | zlib for websockets | fastws total | sansio total "
        "| plain | bound | goal | zlib + ISA-L for fastws-isal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    shapes = {
        "deflate-rr-64-1KiB": ("1KiB", "rr-64"),
        "deflate-pipe-16x64-1KiB": ("1KiB", "pipe-16x64-16B"),
        "deflate-pipe-16x16-16KiB": ("16KiB", "pipe-16x64-16B"),
    }
    for name, (size, plain_name) in shapes.items():
        cost = floor["sizes"].get(size)
        ours, ref = _cpu(results, app, "fastws", name), _cpu(results, app, REFERENCE, name)
        plain = _cpu(results, app, "fastws", plain_name)
        if not cost or not ours or not ref or not plain:
            continue
        bound = ref / (cost["floor_fastws_us"] + plain)
        goal = worker.goal(name)
        lines.append(
            f"| {name} | {cost['floor_fastws_us']:.1f} | {cost['floor_websockets_us']:.1f} "
            f"| {ours:.1f} | {ref:.1f} | {plain:.1f} | {bound:.2f}x | {goal:g}x "
            f"| {_num(cost.get('floor_isal_us'), 1)} |"
        )
    return [*lines, ""]


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _load_tables(results: dict[str, Any], app: str) -> list[str]:
    lines = [
        f"### {APP_TITLES.get(app, app)} ({app})",
        "",
        "| scenario | --ws | msgs/s (min-max of runs) | server CPU us/msg | sansio / this |",
        "|---|---|---:|---:|---:|",
    ]
    for name in _scenarios(results):
        ref = _cpu(results, app, REFERENCE, name)
        for ws in results["ws"]:
            if ws in worker.DEFLATE_ONLY and not name.startswith("deflate-"):
                continue  # the same as its plain twin without compression
            res = results["servers"].get(app, {}).get(ws, {}).get(name, {})
            cpu, rate = res.get("server_cpu_us_per_msg"), res.get("msgs_per_s")
            if "error" in res or not cpu or not rate:
                lines.append(f"| {name} | {ws} | error: {res.get('error', 'not run')} | - | - |")
                continue
            samples = [
                r["msgs_per_s"]
                for r in results.get("runs", {}).get(app, {}).get(ws, {}).get(name, [])
                if r.get("msgs_per_s")
            ]
            spread = f" ({min(samples):,.0f}-{max(samples):,.0f})" if len(samples) > 1 else ""
            ratio = f"{ref / cpu:.2f}x" if ref else "-"
            lines.append(f"| {name} | {ws} | {rate:,.0f}{spread} | {cpu:.2f} | {ratio} |")
    return [*lines, ""]


def _idle_table(results: dict[str, Any]) -> list[str]:
    if not results.get("idle_connections"):
        return []
    lines = [
        f"### Memory per idle connection ({results['idle_connections']:,} connections)",
        "",
        "RSS growth of the worker divided by the connections, in KiB (`idle`: the "
        "clients offer no compression; `idle-deflate`: they offer permessage-deflate "
        "as browsers do). One run each, on a fresh worker.",
        "",
        "| app | --ws | idle KiB/conn | idle-deflate KiB/conn |",
        "|---|---|---:|---:|",
    ]
    for app in results["apps"]:
        for ws in results["ws"]:
            if ws in worker.DEFLATE_ONLY:
                continue
            cells = []
            for name in IDLE_SCENARIOS:
                res = results["servers"].get(app, {}).get(ws, {}).get(name, {})
                kib = _kib(results, app, ws, name)
                cells.append(f"error: {res['error']}" if "error" in res else _num(kib, 1))
            lines.append(f"| {app} | {ws} | {cells[0]} | {cells[1]} |")
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """Render the results as the uvicorn section of RESULTS.md."""
    start, end = _sections.markers("uvicorn")
    v = results.get("versions", {})
    load = (
        f" Load average (1 min) at start/end: {results['load_average_start']:g} / "
        f"{results['load_average_end']:g}."
        if "load_average_end" in results
        else ""
    )
    suites = results.get("suites", ["plain"])  # the first runs had no other suite
    names = ("uvicorn", "starlette", "websockets", "wsproto", "fastws", "httptools")
    known = [f"{name} {v[name]}" for name in names if name in v]
    described = {
        "plain": "Plain scenarios: picows clients, binary messages, no compression offered.",
        "deflate": "`deflate-*` scenarios: the echo benchmark's Go gorilla/websocket clients, "
        "permessage-deflate negotiated with every implementation (wsproto included: uvicorn "
        "gives it `wsproto.extensions.PerMessageDeflate`), text messages of JSON-like records "
        "compressed at level 1, no context takeover.",
    }
    lines = [
        start,
        "## uvicorn: fastws.uvicorn against uvicorn's WebSocket implementations",
        "",
        f"Run {results['date']} on {results['cpu']}"
        + (f" ({results['cpus']} CPUs)" if results.get("cpus") else "")
        + f", Python {v.get('python', results.get('python', '?'))}"
        + "".join(f", {item}" for item in known)
        + f", {results['loop']}"
        + (f" {v['uvloop']}" if results["loop"] == "uvloop" and "uvloop" in v else "")
        + f". Suites: {', '.join(suites)}.",
        "",
        "One uvicorn worker (`--http httptools`, `--ws-per-message-deflate true` for every "
        "`--ws`, uvicorn's default) pinned to CPU 0, the load generator to CPU 1, "
        f"{results['duration_s']:g} s per scenario after 0.5 s of warm-up, median of "
        f"{results['repeat']} run(s) with the servers in rotating order. `--ws fastws` is "
        "`fastws.uvicorn:FastWSProtocol`. "
        + "".join(described[s] + " " for s in suites if s in described)
        + "`us/msg` is the worker's CPU time (user+system) per echoed message: compare that; "
        "msgs/s is bounded by the load generator's core and moves with whatever else the "
        "machine runs." + load + " Regenerate with `python bench/uvicorn/run.py`.",
        "",
    ]
    counts = callgrind.load()
    lines += _goals(results, counts)
    lines += _zlib_table(results)
    if counts:
        lines += callgrind.table(counts)
    for app in results["apps"]:
        if _scenarios(results):
            lines += _load_tables(results, app)
    lines += _idle_table(results)
    lines.append(end)
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any]) -> None:
    """Write uvicorn.json and replace (or add) the uvicorn section of RESULTS.md."""
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    _sections.write("uvicorn", markdown(results))


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default=",".join(SUITES), help="plain, deflate, idle")
    parser.add_argument("--ws", default=",".join(WS))
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median kept)")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--from-json", type=Path, help="measure nothing: render a uvicorn.json again"
    )
    args = parser.parse_args()
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        if "deflate" in results.get("suites", []) and "zlib_floor" not in results:
            results["zlib_floor"] = zlib_floor.measure()  # measured now, dated
    else:
        suites = [s for s in args.suites.split(",") if s]
        if not suites or not set(suites) <= set(SUITES):
            parser.error(f"--suites takes some of {','.join(SUITES)}")
        ws_list = [w for w in args.ws.split(",") if w]
        apps = [a for a in args.apps.split(",") if a]
        if not set(ws_list) <= set(WS) or not set(apps) <= set(APPS):
            parser.error(f"--ws takes some of {','.join(WS)}, --apps some of {','.join(APPS)}")
        if "deflate" in suites:
            echo.goclient()
        results = run(
            suites, ws_list, apps, args.duration, max(args.repeat, 1), args.idle, args.loop
        )
    print(markdown(results))
    if not args.no_write:
        write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
