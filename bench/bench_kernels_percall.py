"""Masking kernels per call, timed with ``timeit`` exactly as a user calls them.

Run::

    python bench/bench_kernels_percall.py            # about a minute; pins itself to CPU 1
    python bench/bench_kernels_percall.py --quick    # a first look
    python bench/bench_kernels_percall.py --compare old=path/to/_speedups.so

Each measurement is what ``python -m timeit -s SETUP STMT`` measures: one
plain call per loop iteration, on the same input every time, the names
bound in the setup (so they are local variables of the timed loop), the
best of ``--repeat`` repeats divided by the number of loops. Compared:

* ``fastws.mask_inplace(buffer, mask)`` on a ``bytearray`` against aiohttp's
  compiled in-place mask, ``_websocket_mask_cython(mask, buffer)``;
* ``fastws.apply_mask(data, mask)`` on ``bytes`` against
  ``websockets.speedups.apply_mask(data, mask)``.

``fastws`` is the function bound to a name (``from fastws import
apply_mask``), the same form as the peer; ``fastws.X`` is the attribute
form ``fastws.apply_mask(...)`` after ``import fastws``, which also pays
for the attribute lookup on the package. ``--compare NAME=PATH`` adds another
build of the extension module (e.g. one of an older commit), loaded from
``PATH`` under another name and called by name like ``fastws``.

The machine may be shared, so every round times every library of every
scenario once, in a freshly shuffled order: a burst of other work slows all
the libraries of that round alike. A library's time is its median over the
rounds, and each ratio is the median of the ratios taken within each round.

The process pins itself to one CPU with ``taskset`` when it exists (``--cpu``
chooses it, ``--no-pin`` does not pin). The table is printed as Markdown;
the results go to ``bench/results/kernels_percall.json``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results" / "kernels_percall.json"
PINNED_ENV = "FASTWS_BENCH_PINNED"

INPLACE_SIZES = {
    "8B": 8, "125B": 125, "1KiB": 1 << 10, "16KiB": 16 << 10, "64KiB": 64 << 10,
    "1MiB": 1 << 20,
}  # fmt: skip
COPY_SIZES = {**INPLACE_SIZES, "16MiB": 16 << 20}
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


@dataclass
class Contender:
    """One library in one scenario: a timeit statement and its setup."""

    name: str
    setup: str
    stmt: str
    is_peer: bool = False
    number: int = 1
    times: list[float] = field(default_factory=list)  # ns per call, one per round


@dataclass
class Scenario:
    kernel: str  # "mask_inplace" or "apply_mask"
    size: str
    n: int
    namespace: dict[str, Any]
    contenders: list[Contender]


def parse_size(label: str) -> int:
    """``"8B"``, ``"125B"``, ``"64KiB"`` or ``"16MiB"`` in bytes."""
    m = re.fullmatch(r"(\d+)(B|KiB|MiB)", label)
    if m is None:
        raise SystemExit(f"not a size: {label!r} (e.g. 125B, 64KiB, 16MiB)")
    return int(m[1]) << {"B": 0, "KiB": 10, "MiB": 20}[m[2]]


def _load_extension(name: str, path: str) -> ModuleType:
    """Another build of ``fastws._speedups``, as the module ``<name>._speedups``."""
    import fastws  # noqa: F401  (the build imports fastws.exceptions while it loads)

    spec = importlib.util.spec_from_file_location(f"{name}._speedups", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scenarios(
    kernels: list[str], sizes: list[str], extras: dict[str, ModuleType]
) -> list[Scenario]:
    rng = random.Random(6455)
    out = []
    for kernel in kernels:
        table = INPLACE_SIZES if kernel == "mask_inplace" else COPY_SIZES
        if sizes:
            table = {label: parse_size(label) for label in sizes}
        for size, n in table.items():
            data = rng.randbytes(n)
            ns: dict[str, Any] = {
                "_data": data,
                "_key": KEY,
                **{f"_x_{k}": m for k, m in extras.items()},
            }
            if kernel == "mask_inplace":
                prep = "b = bytearray(_data); m = _key"
                contenders = [
                    Contender("fastws", f"from fastws import mask_inplace as f; {prep}", "f(b, m)"),
                    Contender("fastws.X", f"import fastws; {prep}", "fastws.mask_inplace(b, m)"),
                    *(Contender(k, f"f = _x_{k}.mask_inplace; {prep}", "f(b, m)") for k in extras),
                    Contender(
                        "aiohttp",
                        "from aiohttp._websocket.mask import _websocket_mask_cython as f; " + prep,
                        "f(m, b)",
                        is_peer=True,
                    ),
                ]
            else:
                prep = "b = _data; m = _key"
                contenders = [
                    Contender("fastws", f"from fastws import apply_mask as f; {prep}", "f(b, m)"),
                    Contender("fastws.X", f"import fastws; {prep}", "fastws.apply_mask(b, m)"),
                    *(Contender(k, f"f = _x_{k}.apply_mask; {prep}", "f(b, m)") for k in extras),
                    Contender(
                        "websockets",
                        f"from websockets.speedups import apply_mask as f; {prep}",
                        "f(b, m)",
                        is_peer=True,
                    ),
                ]
            out.append(Scenario(kernel, size, n, ns, contenders))
    return out


def check(sc: Scenario) -> None:
    """Every contender computes what the pure-Python twin computes on this input."""
    from fastws import _kernels_py

    expected = _kernels_py.apply_mask(sc.namespace["_data"], KEY)
    for c in sc.contenders:
        ns = dict(sc.namespace)
        exec(c.setup, ns)
        result = eval(c.stmt, ns)
        got = bytes(ns["b"]) if sc.kernel == "mask_inplace" else result
        if got != expected:
            raise AssertionError(f"{c.name} computes {sc.kernel} of {sc.size} wrongly")


def calibrate(sc: Scenario, c: Contender, target_s: float) -> None:
    """Loops per repeat so that one repeat takes about ``target_s``."""
    timer = timeit.Timer(c.stmt, c.setup, globals=sc.namespace)
    number = 1
    while True:
        t = min(timer.repeat(repeat=3, number=number))
        if t >= target_s / 10 or number >= 1 << 24:
            break
        number *= 10
    c.number = max(1, round(number * target_s / max(t, 1e-9)))


def time_once(sc: Scenario, c: Contender, repeat: int) -> float:
    timer = timeit.Timer(c.stmt, c.setup, globals=sc.namespace)
    best = min(timer.repeat(repeat=repeat, number=c.number))
    return best / c.number * 1e9


def _median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def summarize(sc: Scenario) -> dict[str, Any]:
    peer = next(c for c in sc.contenders if c.is_peer)
    libs: dict[str, Any] = {}
    for c in sc.contenders:
        entry: dict[str, Any] = {
            "median_ns": statistics.median(c.times),
            "min_ns": min(c.times),
            "max_ns": max(c.times),
            "loops": c.number,
        }
        if c is not peer:
            entry["ratio_to_peer"] = _median_ratio(c.times, peer.times)
        libs[c.name] = entry
    return {
        "kernel": sc.kernel,
        "size": sc.size,
        "bytes": sc.n,
        "peer": peer.name,
        "rounds": len(peer.times),
        "libs": libs,
    }


def _fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} µs"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def markdown(results: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for kernel in dict.fromkeys(r["kernel"] for r in results):
        rows = [r for r in results if r["kernel"] == kernel]
        names = list(rows[0]["libs"])
        peer = rows[0]["peer"]
        ours = [n for n in names if n != peer]
        lines.append(f"`{kernel}` against {peer} (median over rounds of the best of the repeats)")
        lines.append("")
        head = ["size", *(f"{n} per call" for n in ours), f"{peer} per call"]
        head += [f"{n} / {peer}" for n in ours]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for r in rows:
            libs = r["libs"]
            cells = [r["size"], *(_fmt_ns(libs[n]["median_ns"]) for n in [*ours, peer])]
            cells += [f"{libs[n]['ratio_to_peer']:.2f}" for n in ours]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(extras: dict[str, str]) -> dict[str, Any]:
    import fastws

    env: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "fastws": f"{fastws.__version__} ({fastws.implementation})",
        "versions": {d: _version(d) for d in ("aiohttp", "websockets", "Cython")},
        "compared_builds": {name: Path(path).name for name, path in extras.items()},
    }
    try:
        env["affinity"] = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    if hasattr(os, "getloadavg"):
        env["load_before"] = os.getloadavg()[0]
    return env


def pin(args: argparse.Namespace) -> None:
    """Re-run this script under ``taskset -c CPU`` unless pinned already."""
    if args.no_pin or os.environ.get(PINNED_ENV) or shutil.which("taskset") is None:
        return
    try:
        if os.sched_getaffinity(0) == {args.cpu}:
            return
        if args.cpu not in range(os.cpu_count() or 1):
            print(f"no CPU {args.cpu}: not pinning", file=sys.stderr)
            return
    except (AttributeError, OSError):
        return
    os.environ[PINNED_ENV] = "1"
    cmd = ["taskset", "-c", str(args.cpu), sys.executable, *sys.argv]
    os.execvp(cmd[0], cmd)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=21, help="rounds (default 21)")
    p.add_argument("--repeat", type=int, default=5, help="timeit repeats per round (default 5)")
    p.add_argument("--target-ms", type=float, default=2.0, help="time of one repeat (default 2 ms)")
    p.add_argument("--quick", action="store_true", help="5 rounds of 3 repeats")
    p.add_argument("--kernels", default="mask_inplace,apply_mask")
    p.add_argument(
        "--sizes", default="", help="comma-separated, any of B, KiB, MiB, e.g. 8B,256KiB"
    )
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also time another build of fastws/_speedups*.so",
    )
    p.add_argument("--cpu", type=int, default=1, help="CPU to pin to (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT.name})")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.repeat = 5, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin(args)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    extra_paths = dict(item.split("=", 1) for item in args.compare)
    extras = {name: _load_extension(f"fastws_{name}", path) for name, path in extra_paths.items()}
    sizes = [s for s in args.sizes.split(",") if s]
    scs = scenarios(args.kernels.split(","), sizes, extras)
    started = time.time()
    env = environment(extra_paths)
    for sc in scs:
        check(sc)
        for c in sc.contenders:
            calibrate(sc, c, args.target_ms / 1e3)
    rng = random.Random(1)
    for r in range(args.rounds):
        for sc in scs:
            order = list(sc.contenders)
            rng.shuffle(order)
            for c in order:
                c.times.append(time_once(sc, c, args.repeat))
        gc.collect()
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    results = [summarize(sc) for sc in scs]
    if hasattr(os, "getloadavg"):
        env["load_after"] = os.getloadavg()[0]
    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "environment": env,
        "settings": {
            "rounds": args.rounds,
            "repeat": args.repeat,
            "target_ms": args.target_ms,
            "key": KEY.hex(),
            "inputs": {"mask_inplace": "bytearray", "apply_mask": "bytes"},
        },
        "wall_s": round(time.time() - started, 1),
        "results": results,
    }
    table = markdown(results)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
