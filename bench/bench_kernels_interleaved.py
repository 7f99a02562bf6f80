"""Masking benchmark, interleaved: every library timed round-robin, ratios paired by round.

Run (pinned to one core when ``taskset`` exists)::

    taskset -c 1 python bench/bench_kernels_interleaved.py          # about 2 minutes
    taskset -c 1 python bench/bench_kernels_interleaved.py --quick  # a first look
    python bench/bench_kernels_interleaved.py --callgrind           # instruction counts

On a shared machine, timing one library after another (as pytest-benchmark
does in ``bench_kernels.py``) lets a burst of other work, a frequency change
or a lucky heap layout land on one library only: one kernel's 1 KiB median
moved by 2x between runs. Here, for each scenario (copying or in-place mask,
one size), every round times a short batch (about 100 µs) of every library,
in a freshly shuffled order, all libraries cycling through the same
separately allocated inputs. A library's time is its median over rounds;
its ratios to the fastest peer and to the copy floor are computed within
each round, then their median is taken: a disturbance that slows one round
slows every library of that round, so these paired ratios hardly move.

The rows are those of ``bench_kernels.py`` (imported from it): the copy
floor, fastws with the automatically chosen kernel (``fastws-c``) and with
each forced instruction set, and the compiled peers. Each library is called
directly in the timed loop, with no wrapper function. The copy floor is
``bytes(bytearray)`` on bytearray copies of the same inputs (``bytes(bytes)``
would not copy), or ``view[:] = source`` in place. ``--callgrind`` counts
the instructions of one call of each library under valgrind (loop minus an
identical empty loop, divided by the number of calls): exact and repeatable,
but valgrind does not emulate AVX-512, so fastws runs its AVX2 kernel there.

Results go to ``bench/results/kernels_interleaved.json`` (timings) and
``bench/results/kernels_interleaved_callgrind.json`` (instruction counts);
``bench/report.py`` renders both in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_kernels as bk  # noqa: E402  (after the path fix above)

RESULTS = HERE / "results"
OUT = RESULTS / "kernels_interleaved.json"
OUT_CALLGRIND = RESULTS / "kernels_interleaved_callgrind.json"

SIZES = dict(bk.MASK_SIZES)
SIZES.setdefault("16MiB", 16 << 20)  # the quick mode of bench_kernels drops it; we keep it
COPY_PEERS = ("websockets", "tornado", "wsaccel")
INPLACE_PEERS = ("aiohttp",)
TARGET_BATCH_NS = 100_000  # each library's timed batch: about 100 µs
MAX_BATCH = 20_000

Loop = Callable[[Callable[..., object], list[Any]], int]


# -- the timed loops ---------------------------------------------------------------------
# One loop per calling convention, so no library pays for a wrapper the others do not.


def _loop_data(func: Callable[..., object], args: list[Any]) -> int:
    clock = time.perf_counter_ns
    t0 = clock()
    for d in args:
        func(d)
    return clock() - t0


def _loop_data_key(func: Callable[..., object], args: list[Any]) -> int:
    key = bk.KEY
    clock = time.perf_counter_ns
    t0 = clock()
    for d in args:
        func(d, key)
    return clock() - t0


def _loop_key_data(func: Callable[..., object], args: list[Any]) -> int:
    key = bk.KEY
    clock = time.perf_counter_ns
    t0 = clock()
    for d in args:
        func(key, d)
    return clock() - t0


def _loop_assign(func: Callable[..., object], args: list[Any]) -> int:
    """The in-place copy floor: ``view[:] = source`` (one copy, no allocation)."""
    clock = time.perf_counter_ns
    t0 = clock()
    for view, source in args:
        view[:] = source
    return clock() - t0


_LOOPS: dict[str, Loop] = {
    "data": _loop_data,
    "data,key": _loop_data_key,
    "buffer,key": _loop_data_key,
    "key,data": _loop_key_data,
    "key,buffer": _loop_key_data,
    "assign": _loop_assign,
}


# -- scenarios ---------------------------------------------------------------------------


@dataclass
class Row:
    lib: str
    func: Callable[..., object]
    loop: Loop
    inputs: list[Any]  # what one call gets, cycled through
    isa: str | None  # kernels to select before each batch (fastws rows only)
    batch: int = 1
    times: list[float] = field(default_factory=list)  # ns per call, one per round


def rotation(n: int) -> int:
    """How many separately allocated inputs a scenario cycles through."""
    return max(4, min(bk.ROTATE, (64 << 20) // max(n, 1)))


def _fastws_rows() -> list[str]:
    if bk._speedups is None:
        return []
    return ["fastws-c", *(f"fastws-c/{isa}" for isa in bk.ISAS)]


def copy_rows(n: int) -> list[Row]:
    data = bk._random_bytes(n)
    expected = _reference(data, bk.KEY)
    r = rotation(n)
    as_bytes = [bytes(bytearray(data)) for _ in range(r)]  # separate allocations
    as_bytearray = [bytearray(data) for _ in range(r)]
    rows = []
    for lib in ["copy-floor", *_fastws_rows(), *COPY_PEERS]:
        base, _, isa = lib.partition("/")
        func, order = bk.mask_copy_call(base)
        inputs = as_bytearray if lib == "copy-floor" else as_bytes
        row = Row(lib, func, _LOOPS[order], inputs, (isa or "auto") if base == "fastws-c" else None)
        _select(row)
        if lib != "copy-floor":
            if order == "data":
                out = func(data)
            elif order == "data,key":
                out = func(data, bk.KEY)
            else:
                out = func(bk.KEY, data)
            if out != expected:
                raise AssertionError(f"{lib} masks {n} bytes wrongly")
        rows.append(row)
    return rows


def inplace_rows(n: int) -> list[Row]:
    data = bk._random_bytes(n)
    expected = _reference(data, bk.KEY)
    r = rotation(n)
    buffers = [bytearray(data) for _ in range(r)]
    pairs = [(memoryview(b), bytes(bytearray(data))) for b in buffers]
    rows = []
    for lib in ["copy-floor", *_fastws_rows(), *INPLACE_PEERS]:
        base, _, isa = lib.partition("/")
        if lib == "copy-floor":
            rows.append(Row(lib, bytes, _loop_assign, pairs, None))
            continue
        func, order = bk.mask_inplace_call(base)
        row = Row(
            lib, func, _LOOPS[order], buffers, (isa or "auto") if base == "fastws-c" else None
        )
        _select(row)
        check = bytearray(data)
        if order == "buffer,key":
            func(check, bk.KEY)
        else:
            func(bk.KEY, check)
        if check != expected:
            raise AssertionError(f"{lib} masks {n} bytes in place wrongly")
        rows.append(row)
    return rows


def _reference(data: bytes, key: bytes) -> bytes:
    """The pure-Python twin's mask: what every row must produce."""
    from fastws import _kernels_py

    return _kernels_py.apply_mask(data, key)


def _select(row: Row) -> None:
    if row.isa is not None and bk._speedups is not None:
        if not bk._speedups._force_isa(row.isa):
            raise RuntimeError(f"cannot select {row.isa}")


def _args(row: Row, start: int, count: int) -> list[Any]:
    r = len(row.inputs)
    reps = (start % r + count) // r + 1
    cycled = row.inputs * reps
    return cycled[start % r : start % r + count]


def calibrate(row: Row) -> None:
    """Warm up, then size the batch to about TARGET_BATCH_NS (best of three estimates)."""
    _select(row)
    count = 1
    while True:
        elapsed = row.loop(row.func, _args(row, 0, count))
        if elapsed >= 20_000 or count >= MAX_BATCH:
            break
        count *= 2
    per_call = min(row.loop(row.func, _args(row, k, count)) for k in range(3)) / count
    row.batch = max(1, min(MAX_BATCH, round(TARGET_BATCH_NS / max(per_call, 1.0))))
    row.loop(row.func, _args(row, 0, row.batch))  # one full batch of warm-up


@dataclass
class Scenario:
    group: str
    mode: str
    label: str
    size: int
    rows: list[Row]
    rounds: int = 0
    seconds: float = 0.0


def run_scenario(
    sc: Scenario, budget_s: float, min_rounds: int, max_rounds: int, seed: int
) -> None:
    rng = random.Random(seed)
    for row in sc.rows:
        calibrate(row)
    order = list(sc.rows)
    start = time.perf_counter()
    k = 0
    while k < max_rounds and (k < min_rounds or time.perf_counter() - start < budget_s):
        rng.shuffle(order)
        offset = rng.randrange(1 << 30)  # the same inputs, in the same order, for everyone
        for row in order:
            args = _args(row, offset, row.batch)
            _select(row)
            row.times.append(row.loop(row.func, args) / row.batch)
        k += 1
    sc.rounds = k
    sc.seconds = time.perf_counter() - start
    if bk._speedups is not None:
        bk._speedups._force_isa("auto")


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(sc: Scenario, peers: Sequence[str]) -> dict[str, Any]:
    by_lib = {row.lib: row for row in sc.rows}
    peer_rows = [by_lib[p] for p in peers if p in by_lib]
    floor = by_lib.get("copy-floor")
    rounds = sc.rounds
    best_peer = [min(p.times[i] for p in peer_rows) for i in range(rounds)] if peer_rows else []
    libs: dict[str, Any] = {}
    for row in sc.rows:
        t = row.times
        entry: dict[str, Any] = {
            "median_ns": statistics.median(t),
            "p25_ns": _quantile(t, 0.25),
            "p75_ns": _quantile(t, 0.75),
            "min_ns": min(t),
            "batch": row.batch,
        }
        if best_peer and row.lib not in peers:
            ratios = [t[i] / best_peer[i] for i in range(rounds)]
            entry["vs_best_peer"] = statistics.median(ratios)
            entry["vs_best_peer_p25"] = _quantile(ratios, 0.25)
            entry["vs_best_peer_p75"] = _quantile(ratios, 0.75)
            entry["wins_vs_best_peer"] = sum(r < 1 for r in ratios) / rounds
        if floor is not None and row is not floor:
            ratios = [t[i] / floor.times[i] for i in range(rounds)]
            entry["vs_copy_floor"] = statistics.median(ratios)
            entry["vs_copy_floor_p25"] = _quantile(ratios, 0.25)
            entry["vs_copy_floor_p75"] = _quantile(ratios, 0.75)
        libs[row.lib] = entry
    fastest_peer = (
        min(peer_rows, key=lambda p: statistics.median(p.times)).lib if peer_rows else None
    )
    return {
        "group": sc.group,
        "mode": sc.mode,
        "size": sc.label,
        "bytes": sc.size,
        "rounds": rounds,
        "seconds": round(sc.seconds, 2),
        "inputs": len(sc.rows[0].inputs),
        "peers": list(peers),
        "fastest_peer": fastest_peer,
        "libs": libs,
    }


def _environment() -> dict[str, Any]:
    try:
        import report

        env: dict[str, Any] = report.environment()
    except Exception as exc:  # report, never fail
        env = {"error": repr(exc)}
    if bk._speedups is not None:
        env["mask_isa"] = bk._speedups.simd_level()
    try:
        env["affinity"] = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    return env


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [s for s in SIZES if not args.sizes or s in args.sizes.split(",")]
    modes = [m for m in ("copy", "inplace") if not args.modes or m in args.modes.split(",")]
    left = len(sizes) * len(modes)
    budget_left = args.budget
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.time()
    gc_was_enabled = gc.isenabled()
    scenarios = []
    for mode in modes:
        for label in sizes:
            n = SIZES[label]
            rows = copy_rows(n) if mode == "copy" else inplace_rows(n)
            group = f"mask-{'copy' if mode == 'copy' else 'inplace'} {label}"
            sc = Scenario(group, mode, label, n, rows)
            gc.collect()
            gc.disable()
            # Time that the small sizes leave unused (they stop at max_rounds)
            # goes to the large ones, which have the fewest rounds.
            budget = max(budget_left, 0.0) / left
            try:
                run_scenario(sc, budget, args.min_rounds, args.max_rounds, seed=args.seed + n)
            finally:
                if gc_was_enabled:
                    gc.enable()
            budget_left -= sc.seconds
            left -= 1
            summary = summarize(sc, COPY_PEERS if mode == "copy" else INPLACE_PEERS)
            scenarios.append(summary)
            print(_line(summary), flush=True)
            del rows, sc
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "environment": _environment(),
        "settings": {
            "budget_s": args.budget,
            "target_batch_ns": TARGET_BATCH_NS,
            "min_rounds": args.min_rounds,
            "max_rounds": args.max_rounds,
            "seed": args.seed,
            "quick": args.quick,
        },
        "commit": _commit(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "wall_s": round(time.time() - started, 1),
        "scenarios": scenarios,
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _line(s: dict[str, Any]) -> str:
    libs = s["libs"]
    ours = libs.get("fastws-c", {})
    peer = s["fastest_peer"]
    parts = [f"{s['group']:<20} rounds {s['rounds']:>5}"]
    for lib in ("copy-floor", "fastws-c", peer):
        if lib in libs:
            parts.append(f"{lib} {libs[lib]['median_ns']:,.0f} ns")
    if "vs_best_peer" in ours:
        parts.append(f"fastws/peer {ours['vs_best_peer']:.2f}x")
    if "vs_copy_floor" in ours:
        parts.append(f"fastws/floor {ours['vs_copy_floor']:.2f}x")
    return "  ".join(parts)


# -- instruction counts (callgrind) ------------------------------------------------------

CALLGRIND_CALLS = {
    "8B": 400, "125B": 400, "1KiB": 200, "16KiB": 50, "64KiB": 20, "1MiB": 3, "16MiB": 2,
}  # fmt: skip
_MARKER = "getppid"  # every os.getppid() makes callgrind dump and reset its counters


def _driver(labels_path: str, sizes: Sequence[str]) -> None:
    """Inside valgrind: for each row, a loop of calls and the same loop empty."""
    labels: list[list[Any]] = []
    gc.disable()
    for mode in ("copy", "inplace"):
        for label in sizes:
            n = SIZES[label]
            rows = copy_rows(n) if mode == "copy" else inplace_rows(n)
            calls = CALLGRIND_CALLS[label]
            for row in rows:
                _select(row)
                args = _args(row, 0, calls)
                row.loop(row.func, args[:2])  # warm up
                os.getppid()
                row.loop(row.func, args)
                os.getppid()
                _empty(args)
                os.getppid()
                labels.append([mode, label, row.lib, calls])
            del rows
    Path(labels_path).write_text(json.dumps(labels))


def _empty(args: list[Any]) -> int:
    clock = time.perf_counter_ns
    t0 = clock()
    for _d in args:
        pass
    return clock() - t0


def _dump_total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def callgrind_once(sizes: Sequence[str]) -> dict[tuple[str, str, str], float]:
    with tempfile.TemporaryDirectory() as tmp:
        labels_path = Path(tmp) / "labels.json"
        out = Path(tmp) / "cg.out"
        cmd = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            f"--dump-before={_MARKER}", "--dump-instr=no", "--compress-strings=no",
            sys.executable, str(Path(__file__).resolve()), "--callgrind-driver",
            str(labels_path), "--sizes", ",".join(sizes),
        ]  # fmt: skip
        env = dict(os.environ, PYTHONHASHSEED="0")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not labels_path.exists():
            raise RuntimeError(f"valgrind failed: {proc.stderr[-2000:]}")
        labels = json.loads(labels_path.read_text())
        dumps = sorted(
            (p for p in Path(tmp).glob("cg.out.*") if p.suffix[1:].isdigit()),
            key=lambda p: int(p.suffix[1:]),
        )
        # Dump k (1-based) holds what ran before the k-th marker. Per row:
        # [warm-up] marker [loop] marker [empty loop] marker.
        totals = [_dump_total(p) for p in dumps]
        if len(totals) != 3 * len(labels):
            raise RuntimeError(f"expected {3 * len(labels)} dumps, got {len(totals)}")
        counts = {}
        for i, (mode, label, lib, calls) in enumerate(labels):
            loop, empty = totals[3 * i + 1], totals[3 * i + 2]
            counts[(mode, label, lib)] = (loop - empty) / calls
        return counts


def callgrind(args: argparse.Namespace) -> dict[str, Any]:
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed")
    sizes = [s for s in SIZES if not args.sizes or s in args.sizes.split(",")]
    runs = [callgrind_once(sizes) for _ in range(args.repeat)]
    isa = None
    results = []
    for key in runs[0]:
        values = [r[key] for r in runs]
        mode, label, lib = key
        spread = (max(values) - min(values)) / max(min(values), 1.0)
        results.append({
            "mode": mode, "size": label, "bytes": SIZES[label], "lib": lib,
            "instructions_per_call": statistics.median(values), "runs": values,
            "spread": spread,
        })  # fmt: skip
    try:
        probe = subprocess.run(
            ["valgrind", "--tool=none", "-q", sys.executable, "-c",
             "import fastws._speedups as s; print(s.simd_level())"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        isa = probe.stdout.strip() or None
    except OSError:
        pass
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "valgrind": version.strip(),
        "fastws_isa_under_valgrind": isa,
        "repeats": args.repeat,
        "calls": {s: CALLGRIND_CALLS[s] for s in sizes},
        "commit": _commit(),
        "results": results,
    }


# -- Markdown ----------------------------------------------------------------------------


def _ns(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} ms"
    if value >= 1e3:
        return f"{value / 1e3:.2f} µs"
    return f"{value:.0f} ns"


def _count(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e4:
        return f"{value / 1e3:.1f} k"
    return f"{value:,.0f}"


def markdown(
    timings: dict[str, Any] | None, counts: dict[str, Any] | None, chart: str | None = None
) -> list[str]:
    """The RESULTS.md section for both JSON files (either may be None); ``chart``: image link."""
    lines = ["## Kernels, interleaved: masking timed round-robin", ""]
    lines += [
        "`bench/bench_kernels_interleaved.py` times the masking rows of the kernel "
        "benchmark again, round-robin: in every round each library runs a batch of about "
        "100 µs, in a freshly shuffled order, all cycling through the same separately "
        "allocated inputs. `median` is the library's median time per call over rounds; "
        "`÷ peer` and `÷ floor` divide fastws's time by the fastest peer's and by the "
        "copy floor's *within each round*, then take the median (the interquartile range "
        "of the per-round ratio in brackets; below 1.00 fastws is faster). `wins` is the "
        "share of rounds in which fastws beat every peer. Paired ratios move much less "
        "than medians from one run to the next on a busy machine.",
        "",
    ]
    if timings is None:
        lines += ["_`bench/results/kernels_interleaved.json`: not run yet._", ""]
    else:
        env = timings.get("environment") or {}
        pinned = env.get("affinity")
        lines += [
            f"- Run {timings.get('date', '-')}"
            + (f"; commit {timings['commit']}" if timings.get("commit") else "")
            + (f"; CPUs allowed: {','.join(map(str, pinned))}" if pinned else "")
            + f"; kernel chosen: {env.get('mask_isa') or '-'}"
            + f"; {timings.get('wall_s', '-')} s in all"
            + (
                f"; load average {timings['load_before']:.1f} before, "
                f"{timings['load_after']:.1f} after"
                if isinstance(timings.get("load_before"), (int, float))
                and isinstance(timings.get("load_after"), (int, float))
                else ""
            )
            + (" (quick mode)" if (timings.get("settings") or {}).get("quick") else "")
            + ".",
            "",
            "| scenario | rounds | copy floor | fastws | fastest peer | ÷ peer | wins | ÷ floor |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in timings.get("scenarios", []):
            libs = s["libs"]
            ours = libs.get("fastws-c")
            if ours is None:
                continue
            peer = s.get("fastest_peer")
            floor = libs.get("copy-floor")
            lines.append(
                f"| {s['group']} | {s['rounds']} "
                f"| {_ns(floor['median_ns']) if floor else '-'} "
                f"| {_ns(ours['median_ns'])} "
                f"| {_ns(libs[peer]['median_ns']) + f' ({peer})' if peer else '-'} "
                f"| {_ratio(ours, 'vs_best_peer')} "
                f"| {ours.get('wins_vs_best_peer', 0) * 100:.0f}% "
                f"| {_ratio(ours, 'vs_copy_floor')} |"
            )
        if chart:
            lines += ["", f"![paired ratios]({chart})"]
        lines += ["", "<details><summary>Every row (forced instruction sets too)</summary>", ""]
        for s in timings.get("scenarios", []):
            lines += [
                f"#### {s['group']} ({s['rounds']} rounds, {s['inputs']} inputs)",
                "",
                "| library | median | p25-p75 | ÷ fastest peer | ÷ copy floor |",
                "|---|---:|---:|---:|---:|",
            ]
            for lib, e in sorted(s["libs"].items(), key=lambda kv: kv[1]["median_ns"]):
                lines.append(
                    f"| {lib} | {_ns(e['median_ns'])} | {_ns(e['p25_ns'])}-{_ns(e['p75_ns'])} "
                    f"| {_ratio(e, 'vs_best_peer')} | {_ratio(e, 'vs_copy_floor')} |"
                )
            lines.append("")
        lines += ["</details>", ""]
    lines += counts_markdown(counts)
    return lines


def _ratio(entry: dict[str, Any], key: str) -> str:
    if key not in entry:
        return "-"
    return f"{entry[key]:.2f} ({entry[key + '_p25']:.2f}-{entry[key + '_p75']:.2f})"


def counts_markdown(counts: dict[str, Any] | None) -> list[str]:
    lines = ["### Instructions per call (callgrind)", ""]
    if counts is None:
        return [*lines, "_`bench/results/kernels_interleaved_callgrind.json`: not run yet._", ""]
    isa = counts.get("fastws_isa_under_valgrind") or "?"
    spread = max((r["spread"] for r in counts.get("results", [])), default=0.0)
    lines += [
        f"Run {counts.get('date', '-')} with {counts.get('valgrind', 'valgrind')} "
        f"(`python bench/bench_kernels_interleaved.py --callgrind`): instructions of a "
        f"loop of calls minus those of the same loop empty, per call, so the interpreter's "
        f"call overhead and the allocation of the result are included (above 512 bytes "
        f"that is glibc's malloc, whose path can differ by about a hundred instructions "
        f"between runs started from different environments, for every library alike). "
        f"Valgrind does not emulate AVX-512: fastws runs its "
        f"`{isa}` kernel there. {counts.get('repeats', 1)} runs, largest difference "
        f"between runs {spread * 100:.2f}%.",
        "",
    ]
    table: dict[tuple[str, str], dict[str, float]] = {}
    libs: dict[str, list[str]] = {"copy": [], "inplace": []}
    for r in counts.get("results", []):
        table.setdefault((r["mode"], r["size"]), {})[r["lib"]] = r["instructions_per_call"]
        if r["lib"] not in libs[r["mode"]] and "/" not in r["lib"]:
            libs[r["mode"]].append(r["lib"])
    for mode, title in (("copy", "mask-copy"), ("inplace", "mask-inplace")):
        names = libs[mode]
        if not names:
            continue
        lines += [
            f"| {title} | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for (m, size), per in table.items():
            if m != mode:
                continue
            cells = [_count(per[name]) if name in per else "-" for name in names]
            lines.append(f"| {size} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def chart(timings: dict[str, Any], path: Path) -> Path | None:
    """fastws's paired ratios by size, copying and in place; needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    modes = [("copy", "into a new bytes object"), ("inplace", "in place")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    drawn = False
    for ax, (mode, title) in zip(axes, modes, strict=True):
        rows = [s for s in timings.get("scenarios", []) if s["mode"] == mode]
        rows = [s for s in rows if "fastws-c" in s["libs"]]
        labels = [s["size"] for s in rows]
        xs = list(range(len(rows)))
        for key, name, color in (
            ("vs_best_peer", "fastws ÷ fastest peer", "#d62728"),
            ("vs_copy_floor", "fastws ÷ copy floor", "#7f7f7f"),
        ):
            mids = [s["libs"]["fastws-c"].get(key) for s in rows]
            if any(m is None for m in mids) or not mids:
                continue
            lo = [m - s["libs"]["fastws-c"][key + "_p25"] for m, s in zip(mids, rows, strict=True)]
            hi = [s["libs"]["fastws-c"][key + "_p75"] - m for m, s in zip(mids, rows, strict=True)]
            ax.errorbar(xs, mids, yerr=[lo, hi], marker="o", capsize=3, label=name, color=color)
            drawn = True
        ax.axhline(1.0, color="#333333", linewidth=0.8)
        ax.set_xticks(xs)
        ax.set_xticklabels(labels)
        ax.set_yscale("log")
        ax.set_title(f"Masking {title}", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.25)
        ax.yaxis.set_major_locator(FixedLocator([0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.legend(fontsize=8, frameon=False)
    if not drawn:
        plt.close(fig)
        return None
    axes[0].set_ylabel("time ratio, median over rounds\n(below 1x: fastws is faster)")
    fig.suptitle("Interleaved masking benchmark: per-round paired ratios (bars: p25-p75)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- main --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 20 s in all")
    parser.add_argument("--budget", type=float, default=None, help="seconds of rounds in all")
    parser.add_argument("--min-rounds", type=int, default=30)
    parser.add_argument("--max-rounds", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=6455)
    parser.add_argument("--sizes", default="", help="comma-separated subset, e.g. 1KiB,64KiB")
    parser.add_argument("--modes", default="", help="copy, inplace or both (default)")
    parser.add_argument("--output", default=None, help="JSON file to write")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument("--repeat", type=int, default=2, help="callgrind runs to compare")
    parser.add_argument("--callgrind-driver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.callgrind_driver:
        _driver(args.callgrind_driver, [s for s in SIZES if s in args.sizes.split(",")])
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.callgrind:
        data = callgrind(args)
        out = Path(args.output) if args.output else OUT_CALLGRIND
        out.write_text(json.dumps(data, indent=1) + "\n")
        print("\n".join(counts_markdown(data)))
        return 0
    if args.budget is None:
        args.budget = 14.0 if args.quick else 120.0
    if args.quick:
        args.min_rounds = min(args.min_rounds, 10)
    data = run(args)
    out = Path(args.output) if args.output else OUT
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out} in {data['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
