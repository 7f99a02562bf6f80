"""Instructions per echoed message of a uvicorn worker, and how many of them are zlib's.

Usage::

    python bench/uvicorn/callgrind.py [--ws fastws,websockets-sansio] [--apps starlette]
                                      [--scenarios rr-16B,...] [--no-write]

Why. On a shared machine the CPU time per message of ``run.py`` moves by tens
of percent from one minute to the next, and the deflate scenarios spend much
of it in zlib, which every implementation calls. Instruction counts do not
move with the machine's load, and callgrind tells which shared object ran
each instruction: this splits the cost of a message into zlib's part and the
rest, for fastws and for the implementation it is measured against.

Method. The benchmark's uvicorn worker (``run.py``: the same application,
httptools, uvloop, ``--ws-per-message-deflate true``) runs under
``valgrind --tool=callgrind``; the client runs in this process on a blocking
socket and checks every echo. One connection:

* ``rr-16B`` and ``pipe64-16B``: no compression offered, binary messages of
  16 bytes, one at a time or 64 per write;
* ``text-rr-1KiB`` and ``text-pipe64-1KiB``: no compression offered, the text
  messages of the deflate scenarios sent as they are;
* ``deflate-rr-1KiB``, ``deflate-pipe64-1KiB``, ``deflate-pipe16-16KiB``:
  permessage-deflate offered as the benchmark's Go clients offer it (no
  context takeover either way), text messages of the JSON-like records of
  ``zlib_floor.py`` compressed by the client at level 1; the server's answers
  are inflated and compared with what was sent.

Each scenario runs with N1 and N2 messages; startup, handshake and shutdown
are the same in both, so ``(I2 - I1) / (N2 - N1)`` is the cost of one echoed
message. The same difference is taken for the instructions whose function
lies in zlib's shared object (``libz``), and in the interpreter. Instructions
in the kernel (system calls) are not counted by callgrind.

The table goes to stdout, and with the deflate scenarios to the "uvicorn"
section of ``bench/RESULTS.md`` (through ``run.py``'s report, from
``bench/results/uvicorn_callgrind.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the fastws of this checkout
for path in (HERE, HERE.parent):  # worker.py, zlib_floor.py; echo/callgrind.py
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import worker  # noqa: E402
import zlib_floor  # noqa: E402
from echo import callgrind as echo_callgrind  # noqa: E402

import fastws  # noqa: E402

OUT = ROOT / "bench" / "results" / "uvicorn_callgrind.json"
START_TIMEOUT = 300.0  # seconds for the worker to listen under valgrind
OFFER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@dataclass(frozen=True)
class Scenario:
    """``batch`` messages of ``size`` bytes per write; ``runs``: message counts N1 < N2."""

    name: str
    size: int
    batch: int
    text: bool
    deflate: bool
    runs: tuple[int, int]


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("rr-16B", 16, 1, False, False, (500, 2_500)),
        Scenario("pipe64-16B", 16, 64, False, False, (64 * 20, 64 * 80)),
        Scenario("text-rr-1KiB", 1 << 10, 1, True, False, (300, 1_500)),
        Scenario("text-pipe64-1KiB", 1 << 10, 64, True, False, (64 * 5, 64 * 25)),
        Scenario("deflate-rr-1KiB", 1 << 10, 1, True, True, (300, 1_500)),
        Scenario("deflate-pipe64-1KiB", 1 << 10, 64, True, True, (64 * 5, 64 * 25)),
        Scenario("deflate-pipe16-16KiB", 16 << 10, 16, True, True, (16 * 5, 16 * 25)),
    )
}


# -- client (outside valgrind) -----------------------------------------------------------


def _frame(sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
    """The server's next frame (unmasked, unfragmented): (first byte, payload)."""
    b0, b1 = echo_callgrind.recv_exact(sock, 2, buf)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(echo_callgrind.recv_exact(sock, 2, buf), "big")
    elif n == 127:
        n = int.from_bytes(echo_callgrind.recv_exact(sock, 8, buf), "big")
    return b0, echo_callgrind.recv_exact(sock, n, buf)


def drive(port: int, scenario: Scenario, messages: int) -> None:
    """One connection: echo ``messages`` messages in batches, check them, close cleanly."""
    rnd = random.Random(1)  # the same frames in every run
    batch = scenario.batch
    if messages % batch:
        raise ValueError(f"{messages} is not a multiple of {batch}")
    masks = [rnd.randbytes(4) for _ in range(batch)]
    opcode = 1 if scenario.text else 2
    data = zlib_floor.payload(scenario.size) if scenario.text else rnd.randbytes(scenario.size)
    if scenario.deflate:
        c = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
        sent = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        # rsv=4: RSV1, the message is compressed
        burst = b"".join(fastws.encode_frame(True, opcode, sent, m, rsv=4) for m in masks)
    else:
        burst = b"".join(fastws.encode_frame(True, opcode, data, m) for m in masks)
    offer = f"Sec-WebSocket-Extensions: {OFFER}\r\n" if scenario.deflate else ""
    sock, buf, head = echo_callgrind.handshake(port, offer)
    with sock:
        if scenario.deflate and b"permessage-deflate" not in head.lower():
            raise ConnectionError("the server did not accept permessage-deflate")
        for _ in range(messages // batch):
            sock.sendall(burst)
            for _ in range(batch):
                b0, payload = _frame(sock, buf)
                if b0 & 0x40:
                    payload = zlib.decompressobj(-zlib.MAX_WBITS).decompress(
                        payload + b"\x00\x00\xff\xff"
                    )
                if b0 & 0x0F != opcode or payload != data:
                    raise AssertionError(f"bad echo: {b0:#x} {payload[:40]!r}")
        close = fastws.encode_frame(True, 8, (1000).to_bytes(2, "big"), b"\x01\x02\x03\x04")
        sock.sendall(close)
        b0, _ = _frame(sock, buf)
        if b0 != 0x88:
            raise AssertionError(f"expected a close frame, got {b0:#x}")


# -- the worker under callgrind ----------------------------------------------------------


def costs_by_object(path: Path) -> Counter[str]:
    """Self instructions per shared object of one callgrind output file.

    Reads the callgrind format: ``ob=`` names the object of the functions
    that follow (names are compressed to ``(id)`` after their first use, in
    one namespace with ``cob=``); a cost line right after ``calls=`` is the
    inclusive cost of a call, not the caller's own, and is skipped.
    """
    names: dict[str, str] = {}
    by_object: Counter[str] = Counter()
    current = "?"
    after_call = False
    for line in path.read_text(errors="replace").splitlines():
        if not line:
            continue
        first = line[0]
        if first.isdigit() or first in "+-*":
            if after_call:
                after_call = False
            else:
                parts = line.split()
                if len(parts) > 1:
                    by_object[current] += int(parts[1])
            continue
        if line.startswith(("ob=", "cob=")):
            spec = line.split("=", 1)[1]
            if spec.startswith("("):
                ident, _, name = spec.partition(")")
                name = name.strip()
                if name:
                    names[ident] = name
                else:
                    name = names.get(ident, ident)
            else:
                name = spec
            if line.startswith("ob="):
                current = name
        elif line.startswith("calls="):
            after_call = True
    return by_object


def _group(obj: str) -> str:
    base = os.path.basename(obj)
    if base.startswith("libz.") or (os.sep + "isal" + os.sep) in obj:
        return "deflate_lib"  # zlib, or ISA-L (linked into the isal package's modules)
    if base.startswith("libpython") or base.startswith("python"):
        return "interpreter"
    return "other"


def measure_run(ws: str, app: str, scenario: Scenario, messages: int) -> Counter[str]:
    """One worker under callgrind echoing ``messages``: instructions per group."""
    with tempfile.TemporaryDirectory(prefix="cg-uvicorn-") as tmp:
        out = Path(tmp) / "cg.out"
        log = Path(tmp) / "valgrind.log"
        port = echo_callgrind.free_port()
        cmd = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", f"--log-file={log}",
            *worker.command(sys.executable, ws, app, port, "uvloop"),
        ]  # fmt: skip
        env = worker.environment(ws, PYTHONHASHSEED="0")
        proc = subprocess.Popen(cmd, env=env)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{ws} did not start\n{echo_callgrind.tail(log)}"
                        ) from None
                    time.sleep(0.2)
            drive(port, scenario, messages)
        finally:
            # uvicorn shuts down on SIGTERM, then raises the signal again to exit by it.
            files = echo_callgrind.stop(proc, Path(tmp), log, ws, ok=(0, -signal.SIGTERM))
        groups: Counter[str] = Counter()
        for f in files:
            for obj, n in costs_by_object(f).items():
                groups[_group(obj)] += n
        groups["total"] = sum(v for k, v in groups.items() if k != "total")
        return groups


def measure(ws: str, app: str, scenario: Scenario) -> dict[str, float]:
    """Instructions per message, in total and per group, from two runs."""
    n1, n2 = scenario.runs
    first = measure_run(ws, app, scenario, n1)
    second = measure_run(ws, app, scenario, n2)
    return {k: (second[k] - first[k]) / (n2 - n1) for k in ("total", "deflate_lib", "interpreter")}


#: The uncompressed scenario of the same shape as each deflate scenario.
SAME_SHAPE = {"deflate-rr-1KiB": "text-rr-1KiB", "deflate-pipe64-1KiB": "text-pipe64-1KiB"}
REFERENCE = worker.REFERENCE
#: run.py's load scenario that each deflate scenario here counts.
LOAD_NAMES = {
    "deflate-rr-64-1KiB": "deflate-rr-1KiB",
    "deflate-pipe-16x64-1KiB": "deflate-pipe64-1KiB",
    "deflate-pipe-16x16-16KiB": "deflate-pipe16-16KiB",
}
#: Each deflate scenario here, and run.py's load scenario it counts.
COUNTED = {counted: load for load, counted in LOAD_NAMES.items()}


def why(report: dict[str, Any], load_name: str, goal: float, isal_ratio: float | None) -> str:
    """Why a deflate load scenario misses ``goal``, from the counts (markdown); "" if unknown."""
    name = LOAD_NAMES.get(load_name, "")
    per_ws = report["results"].get("starlette", {})
    ours, isal, ref = (per_ws.get(ws, {}).get(name) for ws in ("fastws", "fastws-isal", REFERENCE))
    same = per_ws.get("fastws", {}).get(SAME_SHAPE.get(name, ""))
    if not ours or not ref:
        return ""
    lib = ours["deflate_lib"]
    text = (
        f"**Why `{load_name}` misses {goal:g}x.** Counted by callgrind on the same worker "
        f"(below), fastws runs {ours['total']:,.0f} instructions per message, {lib:,.0f} of "
        f"them ({lib / ours['total']:.0%}) inside zlib, and websockets-sansio "
        f"{ref['total']:,.0f} ({ref['total'] / ours['total']:.2f}x)."
    )
    if same:
        bound = ref["total"] / (lib + same["total"])
        text += (
            f" If compressing cost fastws nothing but zlib's own work on top of its cost for the "
            f"same messages uncompressed ({same['total']:,.0f}), the ratio would be "
            f"{bound:.2f}x at most"
            + (": zlib is the layer that costs it." if bound < goal else ".")
        )
    if isal:
        text += (
            f" With ISA-L compressing (`fastws-isal`): {isal['total']:,.0f} instructions, "
            f"{ref['total'] / isal['total']:.2f}x fewer than websockets-sansio"
            + (f", {isal_ratio:.2f}x in CPU time above." if isal_ratio else ".")
        )
    return text


def _cell(row: dict[str, float] | None) -> str:
    if not row:
        return "- | -"
    return f"{row['total']:,.0f} | {row['deflate_lib']:,.0f}"


def table(report: dict[str, Any]) -> list[str]:
    """The instruction counts as a section of the uvicorn report (markdown lines)."""
    lines = [
        "### Instructions per message (bench/uvicorn/callgrind.py)",
        "",
        f"Counted {report['date']} by callgrind ({report['valgrind']}, zlib {report['zlib']}): "
        "the same worker and application under valgrind, one connection, the client checking "
        "every echo; `rr`: one message at a time, `pipe64`/`pipe16`: 64 or 16 per write; "
        "`text-*`: the deflate scenarios' text messages sent without compression. `lib` is the "
        "part of the instructions run inside the compression library itself (zlib; for "
        "`fastws-isal`, ISA-L compressing and zlib inflating). `bound` is websockets-sansio's "
        "total divided by fastws's zlib instructions plus fastws's whole cost for the same "
        "messages uncompressed: the ratio fastws with zlib would reach if compression cost it "
        "nothing but zlib's own work. Counts do not move with the machine's load; they leave "
        "out the kernel, and callgrind counts each byte cleared by `rep stosb` as one "
        "instruction (zlib's reset of its 8 KiB hash table, for fastws's memory level 5, adds "
        "about 8,300 that take well under a microsecond).",
        "",
    ]
    for app, per_ws in report["results"].items():
        ours, isal, ref = (per_ws.get(ws, {}) for ws in ("fastws", "fastws-isal", REFERENCE))
        lines += [
            f"{app}:",
            "",
            "| scenario | fastws | lib | fastws-isal | lib | websockets-sansio | lib "
            "| sansio / fastws | sansio / fastws-isal | bound | goal |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in SCENARIOS:
            a, b = ours.get(name), ref.get(name)
            if not a or not b:
                continue
            same = ours.get(SAME_SHAPE.get(name, ""))
            c = isal.get(name)
            bound = f"{b['total'] / (a['deflate_lib'] + same['total']):.2f}x" if same else "-"
            goal = f"{worker.goal(COUNTED[name]):g}x" if name in COUNTED else "-"
            with_isal = f"{b['total'] / c['total']:.2f}x" if c else "-"
            lines.append(
                f"| {name} | {_cell(a)} | {_cell(c)} | {_cell(b)} "
                f"| {b['total'] / a['total']:.2f}x | {with_isal} | {bound} | {goal} |"
            )
        lines.append("")
    return lines


def load() -> dict[str, Any] | None:
    """The last counts written, if any."""
    try:
        report: dict[str, Any] = json.loads(OUT.read_text())
    except FileNotFoundError:
        return None
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ws", default="fastws,websockets-sansio")
    parser.add_argument("--apps", default="starlette")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    ws_list = [w for w in args.ws.split(",") if w]
    apps = [a for a in args.apps.split(",") if a]
    names = [s for s in args.scenarios.split(",") if s]
    for name in names:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r} (choose from {', '.join(SCENARIOS)})")
    rows: dict[str, Any] = {}
    for app in apps:
        for ws in ws_list:
            for name in names:
                if ws in worker.DEFLATE_ONLY and not SCENARIOS[name].deflate:
                    continue
                started = time.monotonic()
                res = measure(ws, app, SCENARIOS[name])
                rows.setdefault(app, {}).setdefault(ws, {})[name] = res
                print(
                    f"  {app} {ws} {name}: {res['total']:,.0f} instr/msg, deflate library "
                    f"{res['deflate_lib']:,.0f}, interpreter {res['interpreter']:,.0f} "
                    f"({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "valgrind": version.stdout.strip(),
        "fastws": f"{fastws.__version__} ({fastws.implementation})",
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "scenarios": {n: SCENARIOS[n].__dict__ | {"runs": list(SCENARIOS[n].runs)} for n in names},
        "results": rows,
    }
    print("\n".join(table(report)))
    if not args.no_write:
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(report, indent=1) + "\n")
        import run  # the uvicorn section is rendered by run.py, from both result files

        run.write_results(json.loads(run.RESULTS_JSON.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
