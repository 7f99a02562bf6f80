"""Run every benchmark, then write ``bench/RESULTS.md`` and the charts.

Usage::

    python bench/report.py             # everything (several minutes)
    python bench/report.py --quick     # shorter runs, for a first look
    python bench/report.py --from-json # only rebuild RESULTS.md and charts

Steps:

1. each ``bench/bench_*.py`` file that exists (kernels, parse, patch, ...) runs
   under pytest-benchmark, pinned to one CPU when ``taskset`` exists, and
   writes ``bench/results/<name>.json``;
2. the interleaved masking benchmark (``bench/bench_kernels_interleaved.py``)
   writes ``bench/results/kernels_interleaved.json`` and, when valgrind is
   installed, ``bench/results/kernels_interleaved_callgrind.json``;
3. the echo benchmark (``bench/echo/run.py``), when present, writes
   ``bench/results/echo.json`` and, with compression, ``echo_deflate.json``;
4. ``bench/RESULTS.md`` is rebuilt from whatever JSON files exist (a missing
   or broken one is reported in the file, never fatal), with the date, the
   CPU and its SIMD flags, Python and every library version, one table of
   medians per benchmark group with the ratio "fastws is N.Nx faster than
   X", and PNG charts in ``bench/charts/``.

Conventions the benchmark files follow: pytest-benchmark ``group`` = the
scenario; ``extra_info["lib"]`` = the library; ``extra_info["size"]`` = bytes
(an int, or a label such as ``"64KiB"``); ``extra_info["patched"]`` marks the
fastws-patched run of another library; ``extra_info["messages"]`` = messages
per round when a round handles more than one.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import _sections

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CHARTS = HERE / "charts"
RESULTS_MD = HERE / "RESULTS.md"
ECHO_RUN = HERE / "echo" / "run.py"
INTERLEAVED = HERE / "bench_kernels_interleaved.py"
INTERLEAVED_JSON = ("kernels_interleaved", "kernels_interleaved_callgrind")

# Known benchmark files first, in this order; any other bench_*.py follows.
KNOWN_FILES = ["kernels", "parse", "patch"]
TITLES = {
    "kernels": "Kernels: masking and UTF-8 validation",
    "parse": "Frame parsing",
    "patch": "fastws.patch: other libraries, as installed and patched",
}
LIBRARIES = [
    "websockets",
    "aiohttp",
    "wsproto",
    "tornado",
    "websocket-client",
    "autobahn",
    "picows",
    "wsaccel",
    "uvloop",
    "h11",
    "pytest-benchmark",
    "matplotlib",
]
SIMD_FLAGS = ["sse2", "ssse3", "sse4_2", "avx", "avx2", "avx512f", "avx512bw", "avx512vl",
              "avx512vbmi", "avx512_vbmi2", "neon", "asimd", "sve"]  # fmt: skip


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def _has_tests(path: Path) -> bool:
    """True when a file defines pytest tests (a stand-alone script does not)."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return False
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
        for node in tree.body
    )


def bench_files() -> list[tuple[str, Path]]:
    """Return ``(name, path)`` of every pytest-benchmark ``bench/bench_*.py``, known ones first."""
    found = {
        p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py")) if _has_tests(p)
    }
    ordered = [name for name in KNOWN_FILES if name in found]
    ordered += [name for name in found if name not in KNOWN_FILES]
    return [(name, found[name]) for name in ordered]


def _pin() -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", "1"]
    return []


def run_pytest_benchmark(name: str, path: Path, quick: bool) -> tuple[bool, str]:
    """Run one benchmark file; return (ok, message)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    tmp = RESULTS / f".{name}.json.tmp"
    cmd = [
        *_pin(),
        sys.executable,
        "-m",
        "pytest",
        str(path.relative_to(ROOT)),
        "--benchmark-only",
        f"--benchmark-json={tmp}",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-W",
        "ignore::DeprecationWarning",
    ]
    env = dict(os.environ)
    if quick:
        cmd += ["--benchmark-max-time=0.05", "--benchmark-min-rounds=3"]
        env["FASTWS_BENCH_QUICK"] = "1"
    print(f"== {name}: {' '.join(cmd[cmd.index(sys.executable) :])}", flush=True)
    load_before = _loadavg()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False, timeout=3600)
    if not tmp.exists():
        return False, f"`{path.name}` produced no results (pytest exit code {proc.returncode})"
    conditions = {
        "pinned": " ".join(_pin()) or None,
        "quick": quick,
        "load_before": load_before,
        "load_after": _loadavg(),
    }
    _finish_json(tmp, conditions)
    tmp.replace(out)
    if proc.returncode != 0:
        return True, f"`{path.name}`: some benchmarks failed (pytest exit code {proc.returncode})"
    return True, ""


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _finish_json(path: Path, conditions: dict[str, Any]) -> None:
    """Record the run conditions; drop every round's raw timing (keep the statistics)."""
    try:
        data = json.loads(path.read_text())
        for bench in data.get("benchmarks", []):
            bench.get("stats", {}).pop("data", None)
        data["run_conditions"] = conditions
        path.write_text(json.dumps(data, indent=1) + "\n")
    except (OSError, ValueError, AttributeError):
        pass


def run_interleaved(quick: bool, callgrind: bool) -> tuple[bool, str]:
    """Run the interleaved masking benchmark (and its instruction counts)."""
    if not INTERLEAVED.exists():
        return False, ""
    messages = []
    runs = [([*_pin(), sys.executable, str(INTERLEAVED.relative_to(ROOT))]
             + (["--quick"] if quick else []), "timings")]  # fmt: skip
    if callgrind and shutil.which("valgrind"):
        cmd = [sys.executable, str(INTERLEAVED.relative_to(ROOT)), "--callgrind"]
        runs.append((cmd, "instruction counts"))
    for cmd, what in runs:
        print(f"== kernels_interleaved ({what}): {' '.join(cmd[cmd.index(sys.executable) :])}",
              flush=True)  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, check=False, timeout=3600)
        if proc.returncode != 0:
            messages.append(f"`{INTERLEAVED.name}` ({what}) failed (exit code {proc.returncode})")
    return not messages, "; ".join(messages)


def run_echo(quick: bool) -> tuple[bool, str]:
    """Run the echo benchmark when it exists; it writes ``results/echo.json``."""
    if not ECHO_RUN.exists():
        return False, ""
    cmd = [sys.executable, str(ECHO_RUN.relative_to(ROOT))]
    if quick:
        cmd += ["--duration", "1", "--idle", "500"]
    print(f"== echo: {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, check=False, timeout=3600, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        return False, f"the echo benchmark failed (exit code {proc.returncode})"
    return True, ""


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
          "kb": 1000, "mb": 1000**2, "gb": 1000**3}  # fmt: skip


def parse_size(value: Any) -> int | None:
    """Bytes from an int or a label such as ``"64KiB"``; None when unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*", value, re.IGNORECASE)
        if match:
            return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])
    return None


@dataclass
class Row:
    """One benchmark result."""

    group: str
    lib: str
    median: float  # seconds per round
    rounds: int
    size: int | None
    messages: int
    patched: bool | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.patched:
            return f"{self.lib} + fastws.patch"
        if self.patched is False:
            return f"{self.lib} (as installed)"
        return self.lib

    @property
    def is_fastws(self) -> bool:
        return bool(self.patched) or self.lib.startswith("fastws")

    def rate(self) -> float | None:
        """Messages (or frames) per second when a round handles more than one."""
        if self.messages <= 1 or self.median <= 0:
            return None
        return self.messages / self.median

    def throughput(self) -> float | None:
        """Bytes per second, when the size is known."""
        if self.size is None or self.median <= 0:
            return None
        return self.size * self.messages / self.median


@dataclass
class Suite:
    """One pytest-benchmark JSON file."""

    name: str
    path: Path
    data: dict[str, Any] | None
    error: str = ""
    groups: dict[str, list[Row]] = field(default_factory=dict)


def load_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    """Load a JSON file; return (data, error message)."""
    if not path.exists():
        return None, "not run yet (no results file)"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"unreadable results file ({exc})"
    if not isinstance(data, dict):
        return None, "unexpected results format"
    return data, ""


def load_suite(name: str) -> Suite:
    path = RESULTS / f"{name}.json"
    data, error = load_json(path)
    suite = Suite(name, path, data, error)
    if data is None:
        return suite
    for bench in data.get("benchmarks", []):
        try:
            extra = dict(bench.get("extra_info") or {})
            group = bench.get("group") or bench.get("name", "?")
            lib = str(extra.get("lib") or bench.get("param") or bench.get("name", "?"))
            patched = extra.get("patched")
            count = int(extra.get("messages") or extra.get("frames") or 1)
            size = parse_size(extra.get("size"))
            total = parse_size(extra.get("bytes"))
            if size is None and total is not None:
                size = total // count
            row = Row(
                group=group,
                lib=lib,
                median=float(bench["stats"]["median"]),
                rounds=int(bench["stats"].get("rounds", 0)),
                size=size,
                messages=count,
                patched=bool(patched) if patched is not None else None,
                extra=extra,
            )
        except (KeyError, TypeError, ValueError):
            continue
        suite.groups.setdefault(group, []).append(row)
    if not suite.groups and not suite.error:
        suite.error = "no benchmark results in the file"
    return suite


# --------------------------------------------------------------------------
# Ratios
# --------------------------------------------------------------------------


def reference(rows: Sequence[Row]) -> Row | None:
    """The fastws row a group is compared against."""
    patched = [r for r in rows if r.patched]
    if patched:
        return patched[0]
    by_lib = {r.lib: r for r in rows}
    for lib in ("fastws-c", "fastws"):
        if lib in by_lib:
            return by_lib[lib]
    for prefix in ("fastws-c", "fastws"):
        for r in rows:
            if r.lib.startswith(prefix) and "/" not in r.lib and "python" not in r.lib:
                return r
    for r in rows:
        if r.is_fastws:
            return r
    return None


def is_peer(row: Row) -> bool:
    """A library fastws is compared with (not fastws itself, not a floor)."""
    return not row.is_fastws and "floor" not in row.lib


def ratio_text(ref: Row, other: Row, ref_name: str = "fastws") -> str:
    ratio = other.median / ref.median
    if 0.97 <= ratio <= 1.03:
        return f"{ref_name} is on par with {other.label} ({ratio:.2f}x)"
    if ratio >= 1:
        return f"{ref_name} is {_x(ratio)} faster than {other.label}"
    return f"{ref_name} is {_x(1 / ratio)} slower than {other.label}"


def _x(ratio: float) -> str:
    if ratio >= 100:
        return f"{ratio:.0f}x"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def _fmt_rate(bps: float | None) -> str:
    if bps is None:
        return "-"
    if bps >= 1e9:
        return f"{bps / 1e9:.2f} GB/s"
    if bps >= 1e6:
        return f"{bps / 1e6:.1f} MB/s"
    return f"{bps / 1e3:.1f} kB/s"


def _fmt_count(rate: float | None) -> str:
    if rate is None:
        return "-"
    if rate >= 1e6:
        return f"{rate / 1e6:.2f} M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f} k"
    return f"{rate:.0f}"


def _group_key(group: str, rows: Sequence[Row]) -> tuple[str, str, int, str]:
    family = group.split(" ")[0].split(":")[0]
    words = group.split(" ")
    kind = " ".join(w for w in words[1:] if parse_size(w) is None)
    size = rows[0].size if rows and rows[0].size is not None else -1
    return (family, kind, size, group)


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------


def _cpu() -> tuple[str, list[str]]:
    model = platform.processor() or "?"
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "CPU part") and model in ("?", "", "x86_64"):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = value.split()
    except OSError:
        pass
    return model, [f for f in SIMD_FLAGS if f in flags]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    model, flags = _cpu()
    env: dict[str, Any] = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cpus": os.cpu_count(),
        "simd": flags,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": {name: _version(name) for name in LIBRARIES},
    }
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        import fastws

        env["fastws"] = f"{fastws.__version__} ({fastws.implementation})"
        speedups = sys.modules.get("fastws._speedups")
        if speedups is not None and hasattr(speedups, "utf8_simd_level"):
            env["fastws"] += f", UTF-8 validator: {speedups.utf8_simd_level()}"
    except Exception as exc:  # report, never fail
        env["fastws"] = f"cannot import ({exc})"
    return env


def _run_date(suite: Suite) -> str:
    if suite.data is None:
        return "-"
    value = str(suite.data.get("datetime", ""))
    return value[:16].replace("T", " ") + " UTC" if value else "-"


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------


def describe(name: str) -> list[str]:
    """The opening paragraphs of a benchmark file's docstring, as Markdown."""
    path = HERE / f"bench_{name}.py"
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError, ValueError):
        return []
    lines: list[str] = []
    for para in doc.split("\n\n")[1:]:  # the first line is the title
        if (
            "::" in para
            or "extra_info" in para
            or para[:1].isspace()
            or para.startswith(("Run", "Usage", "python "))
        ):
            continue  # how to run, code, metadata: not for the results page
        lines += [para.replace("``", "`"), ""]
    return lines


def suite_markdown(suite: Suite, chart_paths: Sequence[Path]) -> list[str]:
    title = TITLES.get(suite.name, f"bench_{suite.name}.py")
    lines = [f"## {title}", ""]
    if suite.error:
        return [*lines, f"_`bench/results/{suite.name}.json`: {suite.error}._", ""]
    lines += describe(suite.name)
    lines += [*conditions(suite), ""]
    lines += [
        "Median time per round; throughput is bytes of payload per second; "
        + (
            "the speedup divides the library's time as installed by its time once patched."
            if suite.name == "patch"
            else "`vs fastest peer` divides a row's median by the fastest other library's "
            "(below 1.00x beats every peer), `vs copy floor` by a plain copy of the same "
            "bytes, and the last column compares the fastws reference (`fastws-c`, the C "
            "kernels, when built) with each row."
            + (
                " Each row here runs after the other, so a burst of other work on the "
                "machine can move a whole row: for fastws against its peers on masking, "
                "the interleaved section below (every library in every round) is the "
                "like-for-like comparison."
                if suite.name == "kernels"
                else ""
            )
        ),
        "",
        *SUITE_NOTES.get(suite.name, []),
    ]
    for chart in chart_paths:
        lines += [f"![{chart.stem}](charts/{chart.name})", ""]
    summary = []
    for group, rows in sorted(suite.groups.items(), key=lambda kv: _group_key(*kv)):
        ref = reference(rows)
        peers = [r for r in rows if is_peer(r)]
        if ref is not None and peers:
            best = min(peers, key=lambda r: r.median)
            summary.append((group, ref, best))
    if summary and suite.name == "patch":
        lines += [
            "| workload | as installed | with fastws.patch | speedup |",
            "|---|---:|---:|---:|",
        ]
        for group, ref, best in summary:
            lines.append(
                f"| {group} | {_fmt_time(best.median)} | {_fmt_time(ref.median)} "
                f"| **{_x(best.median / ref.median)}** |"
            )
        lines.append("")
    elif summary:
        lines += ["| scenario | fastws | fastest other | |", "|---|---:|---:|---|"]
        for group, ref, best in summary:
            lines.append(
                f"| {group} | {_fmt_time(ref.median)} | {_fmt_time(best.median)} ({best.label}) "
                f"| **{ratio_text(ref, best)}** |"
            )
        ratios = [best.median / ref.median for _, ref, best in summary]
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        lines += [
            "",
            f"Against the fastest other library, over {len(ratios)} scenarios: geometric "
            f"mean {geo:.2f}x (fastws faster when above 1; min {min(ratios):.2f}x, "
            f"max {max(ratios):.2f}x).",
        ]
        lines.append("")
    lines += ["<details><summary>All results</summary>", ""]
    for group, rows in sorted(suite.groups.items(), key=lambda kv: _group_key(*kv)):
        lines += [f"#### {group}", "", *group_table(rows), ""]
    lines += ["</details>", ""]
    return lines


SUITE_NOTES = {
    "kernels": [
        "`fastws-c/<isa>` rows force one instruction set (through the extension's "
        "private `_force_isa`); `fastws-c` is the one chosen automatically for this CPU. "
        "`*-incremental` rows create a validator and feed it the whole input with "
        "`final=True`; `*-python` rows are pure-Python implementations.",
        "",
    ],
}


def conditions(suite: Suite) -> list[str]:
    """One line on how and when a benchmark file ran."""
    data = suite.data or {}
    parts = [f"`bench/bench_{suite.name}.py`, run {_run_date(suite)}"]
    commit = data.get("commit_info") or {}
    if commit.get("id"):
        parts.append(
            f"commit {str(commit['id'])[:7]}"
            + (" (uncommitted changes)" if commit.get("dirty") else "")
        )
    run = data.get("run_conditions") or {}
    if run.get("pinned"):
        parts.append(f"pinned with `{run['pinned']}`")
    if run.get("quick"):
        parts.append("quick mode (fewer rounds)")
    before, after = run.get("load_before"), run.get("load_after")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        cpus = os.cpu_count() or 1
        busy = max(before, after) > cpus
        parts.append(
            f"load average {before:.1f} before, {after:.1f} after"
            + (
                " (a busy machine: absolute numbers are noisy, compare within a scenario)"
                if busy
                else ""
            )
        )
    return ["- " + "; ".join(parts) + "."]


def group_table(rows: Sequence[Row]) -> list[str]:
    """All rows of one group, fastest first, with their ratios."""
    ref = reference(rows)
    peers = [r for r in rows if is_peer(r)]
    best = min(peers, key=lambda r: r.median) if peers else None
    floor = next((r for r in rows if r.lib == "copy-floor"), None)
    has_rate = any(r.rate() is not None for r in rows)
    unit = "frames/s" if any("frames" in r.extra for r in rows) else "messages/s"
    head = ["library", "median", "throughput"]
    head += [unit] if has_rate else []
    head += ["vs fastest peer"] if best is not None else []
    head += ["vs copy floor"] if floor is not None else []
    head += ["vs fastws"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for row in sorted(rows, key=lambda r: r.median):
        cells = [row.label, _fmt_time(row.median), _fmt_rate(row.throughput())]
        if has_rate:
            cells.append(_fmt_count(row.rate()))
        if best is not None:
            cells.append(f"{row.median / best.median:.2f}x")
        if floor is not None:
            cells.append(f"{row.median / floor.median:.2f}x")
        if ref is None:
            cells.append("-")
        elif row is ref:
            cells.append("reference")
        elif is_peer(row):
            cells.append(ratio_text(ref, row))
        else:  # another fastws variant (forced ISA, pure Python) or a floor
            cells.append(f"{row.median / ref.median:.2f}x the reference's time")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _interleaved_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_fastws_interleaved", INTERLEAVED)
    if spec is None or spec.loader is None:
        raise ImportError(str(INTERLEAVED))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def interleaved_markdown(charts: dict[str, Path]) -> list[str]:
    """The interleaved masking section, rendered by its own script from its JSON files."""
    data = [load_json(RESULTS / f"{name}.json")[0] for name in INTERLEAVED_JSON]
    if all(d is None for d in data):
        return []
    chart = charts.get("mask-interleaved")
    try:
        lines: list[str] = _interleaved_module().markdown(
            *data, chart=f"charts/{chart.name}" if chart else None
        )
    except Exception as exc:  # report, never fail
        return [
            "## Kernels, interleaved",
            "",
            f"_cannot render `bench/results/kernels_interleaved*.json`: {exc!r}._",
            "",
        ]
    return lines


def interleaved_chart() -> Path | None:
    """Paired ratios of the interleaved masking benchmark, by size."""
    data, _ = load_json(RESULTS / "kernels_interleaved.json")
    if data is None:
        return None
    result: Path | None = _interleaved_module().chart(data, CHARTS / "mask_interleaved.png")
    return result


def _interleaved_date() -> str | None:
    data, _ = load_json(RESULTS / "kernels_interleaved.json")
    return str(data.get("date")) if data and data.get("date") else None


def _load_echo_module() -> ModuleType | None:
    if not ECHO_RUN.exists():
        return None
    try:
        spec = importlib.util.spec_from_file_location("_fastws_echo_run", ECHO_RUN)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception:
        return None


def echo_markdown(echo: dict[str, Any] | None, error: str) -> list[str]:
    """The Echo section: headline ratios, then the echo benchmark's own tables."""
    if echo is None:
        if not error or not ECHO_RUN.exists():
            return []
        return ["## Echo", "", f"_`bench/results/echo.json`: {error}._", ""]
    body: list[str] | None = None
    module = _load_echo_module()
    if module is not None and hasattr(module, "markdown"):
        try:
            body = str(module.markdown(echo)).rstrip("\n").split("\n")
        except Exception:
            body = None
    if body is None:
        body = _echo_table(echo)
    headline = echo_summary(echo)
    heading = next((k for k, line in enumerate(body) if line.startswith("## ")), None)
    if heading is None:
        return ["## Echo", "", *headline, "", *body, ""]
    # The headline goes under the section's heading, before its tables.
    return [*body[: heading + 1], "", *headline, *body[heading + 1 :], ""]


def echo_deflate_markdown() -> list[str]:
    """The Echo with permessage-deflate section, as the echo benchmark renders it."""
    data, _error = load_json(RESULTS / "echo_deflate.json")
    module = _load_echo_module()
    if data is None or module is None or not hasattr(module, "markdown"):
        return []
    try:
        return [*str(module.markdown(data)).rstrip("\n").split("\n"), ""]
    except Exception:
        return []


def _echo_rates(echo: dict[str, Any]) -> dict[str, dict[str, float]]:
    """scenario -> server -> msgs/s."""
    out: dict[str, dict[str, float]] = {}
    for server, per in (echo.get("servers") or {}).items():
        for scenario, res in (per or {}).items():
            if isinstance(res, dict) and isinstance(res.get("msgs_per_s"), (int, float)):
                out.setdefault(scenario, {})[server] = float(res["msgs_per_s"])
    return out


def echo_summary(echo: dict[str, Any]) -> list[str]:
    lines = []
    for scenario, rates in _echo_rates(echo).items():
        ours = {s: v for s, v in rates.items() if s.startswith("fastws")}
        peers = {s: v for s, v in rates.items() if not s.startswith(("fastws", "raw"))}
        if not ours or not peers:
            continue
        best_ours = max(ours, key=lambda s: ours[s])
        best_peer = max(peers, key=lambda s: peers[s])
        ratio = ours[best_ours] / peers[best_peer] if peers[best_peer] else math.inf
        if 0.97 <= ratio <= 1.03:
            verdict = f"fastws is on par with {best_peer}"
        elif ratio > 1:
            verdict = f"**fastws is {_x(ratio)} faster than {best_peer}**"
        else:
            verdict = f"**fastws is {_x(1 / ratio)} slower than {best_peer}**"
        lines.append(
            f"- `{scenario}`: {verdict} ({best_ours} {ours[best_ours]:,.0f} msgs/s, "
            f"{best_peer} {peers[best_peer]:,.0f} msgs/s)"
        )
    if not lines:
        return []
    return ["Fastest fastws server against the fastest other library:", "", *lines, ""]


def _echo_table(echo: dict[str, Any]) -> list[str]:
    lines = ["## Echo", ""]
    rates = _echo_rates(echo)
    servers = sorted({s for r in rates.values() for s in r})
    lines += ["| scenario | " + " | ".join(servers) + " |",
              "|---|" + "---:|" * len(servers)]  # fmt: skip
    for scenario, per in rates.items():
        cells = [f"{per[s]:,.0f}" if s in per else "-" for s in servers]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render(
    env: dict[str, Any],
    suites: list[Suite],
    echo: tuple[dict[str, Any] | None, str],
    charts: dict[str, Path],
    notes: Iterable[str],
) -> str:
    versions = env["versions"]
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python bench/report.py` (rerun it to refresh everything, or "
        "`python bench/report.py --from-json` to rebuild this page from "
        "`bench/results/*.json`). Times are medians; lower is better. "
        "\"fastws is N.Nx faster than X\" divides X's median by fastws's.",
        "",
        "## Machine",
        "",
        f"- Page generated: {env['generated']}",
        f"- CPU: {env['cpu']} ({env['cpus']} logical CPUs); SIMD: "
        + (", ".join(env["simd"]) or "none detected"),
        f"- OS: {env['os']}; {env['python']}",
        f"- fastws {env['fastws']}",
        "- Libraries: " + ", ".join(f"{name} {versions[name]}" for name in versions),
        "- Runs: "
        + ", ".join(f"{s.name} {_run_date(s)}" for s in suites if s.data is not None)
        + (f", kernels interleaved {_interleaved_date()}" if _interleaved_date() else "")
        + (f", echo {echo[0].get('date', '-')}" if echo[0] else ""),
        "",
    ]
    notes = list(notes)
    if notes:
        lines += ["Notes from this run:", "", *(f"- {n}" for n in notes), ""]
    if charts:
        lines += ["## At a glance", ""]
        for key in GLANCE_CHARTS:
            if key in charts:
                lines += [f"![{key}](charts/{charts[key].name})", ""]
    for suite in suites:
        keys = SECTION_CHARTS.get(suite.name, [])
        if suite.name not in GLANCE_CHARTS:
            keys = [*keys, suite.name]
        lines += suite_markdown(suite, [charts[k] for k in keys if k in charts])
        if suite.name == "kernels":
            lines += interleaved_markdown(charts)
    if not any(suite.name == "kernels" for suite in suites):
        lines += interleaved_markdown(charts)
    lines += echo_markdown(echo[0], echo[1])
    lines += echo_deflate_markdown()
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------

# Charts shown in each section (the "at a glance" ones are shown at the top).
GLANCE_CHARTS = ["mask-copy", "utf8", "parse", "echo", "patch"]
SECTION_CHARTS = {"kernels": ["mask-inplace", "mask-isa"]}

_COLORS = {
    "fastws-c": "#d62728",
    "fastws": "#d62728",
    "fastws-python": "#ff9896",
    "fastws-c-incremental": "#e3702a",
    "fastws-python-incremental": "#f7b6a0",
    "websockets": "#1f77b4",
    "tornado": "#2ca02c",
    "wsaccel": "#9467bd",
    "aiohttp": "#8c564b",
    "picows": "#17becf",
    "copy-floor": "#bbbbbb",
    "bytes.decode": "#1f77b4",
    "codecs-incremental": "#aec7e8",
    "wsproto": "#7f7f7f",
    "autobahn": "#bcbd22",
}
_FALLBACK = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
             "#17becf", "#aec7e8", "#98df8a"]  # fmt: skip


def _color(lib: str, index: int) -> str:
    if lib in _COLORS:
        return _COLORS[lib]
    if lib.startswith("fastws"):
        return "#d62728"
    return _FALLBACK[index % len(_FALLBACK)]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _size_label(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def throughput_chart(
    groups: dict[str, list[Row]],
    prefix: str,
    title: str,
    path: Path,
    skip: Callable[[str], bool] = lambda lib: False,
) -> Path | None:
    """Grouped bars: one cluster per group (size/input), one bar per library, GB/s."""
    selected = {g: rows for g, rows in groups.items() if g.split(" ")[0] == prefix}
    if not selected:
        return None
    order = sorted(selected, key=lambda g: _group_key(g, selected[g]))
    libs: list[str] = []
    for g in order:
        for r in sorted(selected[g], key=lambda r: (not r.is_fastws, r.lib)):
            if r.lib not in libs and not skip(r.lib) and r.throughput() is not None:
                libs.append(r.lib)
    if not libs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(order) + 2), 4.2))
    width = 0.8 / len(libs)
    for i, lib in enumerate(libs):
        xs, ys = [], []
        for j, g in enumerate(order):
            row = next((r for r in selected[g] if r.lib == lib), None)
            rate = row.throughput() if row else None
            if rate:
                xs.append(j + (i - (len(libs) - 1) / 2) * width)
                ys.append(rate / 1e9)
        hatch = "//" if "floor" in lib else None
        ax.bar(xs, ys, width, label=lib, color=_color(lib, i), hatch=hatch,
               edgecolor="white" if hatch is None else "#666666", linewidth=0.3)  # fmt: skip
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([" ".join(g.split(" ")[1:]) for g in order], rotation=0)
    ax.set_yscale("log")
    ax.set_ylabel("GB/s (log scale, higher is better)")
    ax.set_title(title)
    ax.grid(axis="y", which="both", alpha=0.25)
    ax.legend(fontsize=7, ncol=min(4, len(libs)), loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def isa_chart(groups: dict[str, list[Row]], path: Path) -> Path | None:
    """fastws masking throughput by instruction set (mask-copy groups)."""
    selected = {g: rows for g, rows in groups.items() if g.startswith("mask-copy")}
    if not any(r.lib.startswith("fastws-c/") for rows in selected.values() for r in rows):
        return None
    return throughput_chart(
        selected,
        "mask-copy",
        "fastws masking by instruction set (new bytes object)",
        path,
        skip=lambda lib: not (lib.startswith("fastws-c/") or lib == "copy-floor"),
    )


def relative_chart(groups: dict[str, list[Row]], title: str, path: Path) -> Path | None:
    """One panel per group: each library's time relative to fastws (> 1x: fastws is faster)."""
    panels = []
    for g, rows in sorted(groups.items(), key=lambda kv: _group_key(*kv)):
        ref = reference(rows)
        if ref is None:
            continue
        bars = [("fastws" if r is ref else r.label, r.median / ref.median)
                for r in rows if r is ref or is_peer(r)]  # fmt: skip
        if len(bars) > 1:
            panels.append((g, sorted(bars, key=lambda b: b[1])))
    if not panels:
        return None
    plt = _pyplot()
    cols = min(2, len(panels))
    nrows = math.ceil(len(panels) / cols)
    height = max(len(b) for _, b in panels) * 0.32 + 1.0
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, height * nrows), squeeze=False)
    for k, (g, bars) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        values = [v for _, v in bars]
        ax.barh(range(len(bars)), values, color=[_color(lib, i) for i, (lib, _) in
                                                 enumerate(bars)])  # fmt: skip
        ax.set_yticks(range(len(bars)))
        ax.set_yticklabels([lib for lib, _ in bars], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(min(0.8, min(values) / 1.5), max(values) * 2.5)
        ax.axvline(1, color="#333333", linewidth=0.8)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_title(g, fontsize=9)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.2g}x", va="center", fontsize=7)
    for k in range(len(panels), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"{title}: time relative to fastws (log scale; > 1x means fastws is faster)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def patch_chart(groups: dict[str, list[Row]], path: Path) -> Path | None:
    """Speedup of each library's workload once patched."""
    items = []
    for g, rows in groups.items():
        before = next((r for r in rows if r.patched is False), None)
        after = next((r for r in rows if r.patched), None)
        if before and after and after.median > 0:
            items.append((g, before.median / after.median))
    if not items:
        return None
    items.sort(key=lambda kv: -kv[1])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.36 * len(items) + 1.3))
    values = [v for _, v in items]
    colors = ["#d62728" if v >= 2 else "#e3702a" if v >= 1.1 else "#999999" for v in values]
    ax.barh(range(len(items)), values, color=colors)
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels([g for g, _ in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1, color="#333333", linewidth=0.8)
    ax.set_xlim(0.8, max(values) * 2.2)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_xlabel(
        "speedup from fastws.patch: time as installed / time patched\n"
        "(log scale; red: 2x or more, grey: within 10%)"
    )
    ax.set_title("fastws.patch: each library's own code, as installed vs patched")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.1f}x", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def echo_chart(echo: dict[str, Any], path: Path) -> Path | None:
    """One panel per scenario: messages per second for every server."""
    rates = _echo_rates(echo)
    if not rates:
        return None
    plt = _pyplot()
    memory = {
        server: float(per["idle"]["bytes_per_connection"])
        for server, per in (echo.get("servers") or {}).items()
        if isinstance((per or {}).get("idle"), dict)
        and isinstance(per["idle"].get("bytes_per_connection"), (int, float))
    }
    scenarios = list(rates) + (["idle"] if memory else [])
    cols = min(3, len(scenarios))
    nrows = math.ceil(len(scenarios) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.9 * nrows), squeeze=False)
    for k, scenario in enumerate(scenarios):
        ax = axes[k // cols][k % cols]
        if scenario == "idle":
            # Lower is better here: the smallest first.
            per = sorted(((s, v / 1e3) for s, v in memory.items()), key=lambda kv: kv[1])
            scenario = f"memory per idle connection, KB ({echo.get('idle_connections', '?')} idle)"
        else:
            per = sorted(rates[scenario].items(), key=lambda kv: -kv[1])
        names = [s for s, _ in per]
        colors = [
            "#d62728" if s.startswith("fastws") else "#bbbbbb" if s.startswith("raw") else
            _color(s.split("-")[0], i)
            for i, s in enumerate(names)
        ]  # fmt: skip
        ax.barh(range(len(per)), [v for _, v in per], color=colors)
        ax.set_yticks(range(len(per)))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(scenario, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_formatter(
            plt.FuncFormatter(lambda v, _: f"{v / 1e3:g}k" if v >= 1e3 else f"{v:g}")
        )
    for k in range(len(scenarios), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(
        "Echo: messages per second (higher is better; raw-* = bare-socket ceiling)"
        + ("; last panel: memory (lower is better)" if memory else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_charts(
    suites: list[Suite], echo: dict[str, Any] | None
) -> tuple[dict[str, Path], list[str]]:
    """Write the PNG charts; return (key -> path, problems)."""
    charts: dict[str, Path] = {}
    problems: list[str] = []
    try:
        _pyplot()
    except ImportError:
        return charts, ["matplotlib is not installed: no charts"]
    CHARTS.mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in suites}

    def attempt(key: str, build: Callable[[], Path | None]) -> None:
        try:
            result = build()
        except Exception as exc:  # a chart must never stop the report
            problems.append(f"chart {key} failed: {exc!r}")
            return
        if result is not None:
            charts[key] = result

    kernels = by_name.get("kernels")
    if kernels is not None and kernels.groups:
        g = kernels.groups
        no_isa = lambda lib: "/" in lib  # noqa: E731
        attempt("mask-copy", lambda: throughput_chart(
            g, "mask-copy", "Masking into a new bytes object (by payload size)",
            CHARTS / "mask_copy.png", skip=no_isa))  # fmt: skip
        attempt("mask-inplace", lambda: throughput_chart(
            g, "mask-inplace", "Masking in place (by payload size)",
            CHARTS / "mask_inplace.png", skip=no_isa))  # fmt: skip
        attempt("utf8", lambda: throughput_chart(
            g, "utf8", "UTF-8 validation (by input and size)", CHARTS / "utf8.png",
            skip=no_isa))  # fmt: skip
        attempt("mask-isa", lambda: isa_chart(g, CHARTS / "mask_isa.png"))
    for suite in suites:
        if suite.name in ("kernels", "patch") or not suite.groups:
            continue
        title = TITLES.get(suite.name, suite.name)
        path = CHARTS / f"{suite.name}.png"
        groups = suite.groups
        attempt(suite.name, functools.partial(relative_chart, groups, title, path))
    patch = by_name.get("patch")
    if patch is not None and patch.groups:
        attempt("patch", lambda: patch_chart(patch.groups, CHARTS / "patch.png"))
    if echo is not None:
        attempt("echo", lambda: echo_chart(echo, CHARTS / "echo.png"))
    if (RESULTS / "kernels_interleaved.json").exists():
        attempt("mask-interleaved", interleaved_chart)
    return charts, problems


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def build_report(notes: list[str]) -> Path:
    """Write RESULTS.md and the charts from the JSON files in ``bench/results``."""
    names = [name for name, _ in bench_files()]
    # Those have sections of their own (rendered here, or by their scripts and
    # carried over: see _carried_sections); callgrind_echo and kernels_percall
    # are summarized by hand in the kept sections (see _kept_sections).
    skip = [*names, "echo", "echo_deflate", *SCRIPT_SECTIONS, *INTERLEAVED_JSON]
    skip += ["callgrind_echo", "kernels_percall"]
    names += [p.stem for p in sorted(RESULTS.glob("*.json")) if p.stem not in skip]
    suites = [load_suite(name) for name in names]
    echo_data, echo_error = load_json(RESULTS / "echo.json")
    charts, problems = make_charts(suites, echo_data)
    text = render(environment(), suites, (echo_data, echo_error), charts, [*notes, *problems])
    text += _carried_sections(text) + _kept_sections()
    RESULTS_MD.write_text(text)
    return RESULTS_MD


#: Results files of the benchmark scripts that write their own section of
#: RESULTS.md (bench/pubsub, bench/sync, bench/uvicorn): not pytest-benchmark
#: files, never rendered here.
SCRIPT_SECTIONS = ["pubsub", "sync", "sync_parallel", "uvicorn"]
KEPT_START = _sections.KEPT_START
KEPT_END = "<!-- kept:end -->"


def _carried_sections(text: str) -> str:
    """The ``*-results`` sections of the old RESULTS.md that ``text`` lacks, in their order.

    The benchmark scripts (pubsub, sync, uvicorn...) write their sections
    themselves; the echo ones are carried over too when there is no JSON file
    to render them from.
    """
    if not RESULTS_MD.exists():
        return ""
    rendered = {name for name, _ in _sections.find(text)}
    carried = [s for name, s in _sections.find(RESULTS_MD.read_text()) if name not in rendered]
    return "".join(f"\n{section}\n" for section in carried)


def _kept_sections() -> str:
    """The hand-written block of RESULTS.md between the kept markers, carried over."""
    if not RESULTS_MD.exists():
        return ""
    old = RESULTS_MD.read_text()
    if KEPT_START not in old or KEPT_END not in old:
        return ""
    block = old.split(KEPT_START, 1)[1].split(KEPT_END, 1)[0]
    return f"\n{KEPT_START}{block}{KEPT_END}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark and write bench/RESULTS.md.")
    parser.add_argument("--quick", action="store_true", help="shorter runs (less precise)")
    parser.add_argument(
        "--from-json", action="store_true", help="do not run anything: rebuild from bench/results"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset to run, e.g. 'kernels,kernels_interleaved,patch,echo' "
        "(default: all; 'callgrind' adds the interleaved benchmark's instruction counts)",
    )
    args = parser.parse_args(argv)
    notes: list[str] = []
    if not args.from_json:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        for name, path in bench_files():
            if only and name not in only:
                continue
            _ok, message = run_pytest_benchmark(name, path, args.quick)
            if message:
                notes.append(message)
        if not only or "kernels_interleaved" in only or "callgrind" in only:
            with_counts = (not only and not args.quick) or "callgrind" in only
            _ok, message = run_interleaved(args.quick, with_counts)
            if message:
                notes.append(message)
        if not only or "echo" in only:
            _ok, message = run_echo(args.quick)
            if message:
                notes.append(message)
        if args.quick:
            notes.append("`--quick` run: fewer rounds, expect more noise than usual")
    path = build_report(notes)
    print(f"wrote {path.relative_to(ROOT)} and {CHARTS.relative_to(ROOT)}/*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
