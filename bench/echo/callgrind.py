"""Instructions per echoed message of an echo server, counted by callgrind.

Usage::

    python bench/echo/callgrind.py [--servers fastws-uvloop,fastws-cb-uvloop]
                                   [--scenarios rr,pipe64] [--repeat 2]
                                   [--out bench/results/callgrind_echo.json] [--label TEXT]

Method. A server of ``servers.py`` (``KIND PORT``, ``READY <pid>`` when
listening) runs under ``valgrind --tool=callgrind`` (Python unbuffered, with
``PYTHONHASHSEED=0``); the client runs in this process, outside valgrind, on a
plain blocking socket. It opens one connection, sends masked binary frames of
16 bytes (built with ``fastws.encode_frame``) and checks every echoed byte:

* ``rr``: request/response: one message, wait for its echo, repeat;
* ``pipe64``: 64 messages written with one ``sendall`` (the server gets them in
  one read), wait for the 64 echoes, repeat.

Then the client does the closing handshake, the server gets SIGTERM, and
callgrind writes its counts on exit. The instructions (``Ir``) of every output
file of the run are summed (all threads, and any child process).

Each scenario runs twice, with N1 and N2 messages; startup, handshake and
shutdown are the same in both runs, so ``(I2 - I1) / (N2 - N1)`` is the cost of
one echoed message (receive, parse, unmask, deliver to the handler, frame and
send the echo, event-loop turns). The whole measure is repeated (``--repeat``,
default 2) to show that it is repeatable: callgrind counts do not depend on
the machine's load, so repeats agree within about 0.1%.

The table goes to stdout and the numbers to ``--out`` (JSON): date, commit of
this checkout, Python, valgrind, ``fastws.implementation`` (here and inside
valgrind, where the SIMD level may differ) and, per server and scenario, the
instructions per message of each repeat with the raw totals.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import platform
import random
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the fastws of this checkout

import fastws  # noqa: E402

SIZE = 16
DEFAULT_SERVERS = ["fastws-uvloop", "fastws-cb-uvloop"]
DEFAULT_OUT = ROOT / "bench" / "results" / "callgrind_echo.json"
START_TIMEOUT = 180.0  # seconds for the server to print READY under valgrind
IO_TIMEOUT = 120.0  # seconds for any echo


@dataclass(frozen=True)
class Scenario:
    """``batch`` messages per write; ``runs`` are the two message counts N1 < N2."""

    name: str
    batch: int
    runs: tuple[int, int]
    doc: str


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("rr", 1, (2_000, 6_000), "1 connection, request/response, 16 B"),
        Scenario("pipe64", 64, (64 * 100, 64 * 400), "1 connection, 64 x 16 B per write"),
    )
}


# -- client (outside valgrind) -----------------------------------------------------------


def recv_exact(sock: socket.socket, n: int, buf: bytearray) -> bytes:
    """Return the next ``n`` bytes, keeping any excess in ``buf``."""
    while len(buf) < n:
        chunk = sock.recv(max(65536, n - len(buf)))
        if not chunk:
            raise ConnectionError(f"connection closed with {len(buf)} of {n} bytes")
        buf += chunk
    out = bytes(buf[:n])
    del buf[:n]
    return out


def handshake(port: int, headers: str = "") -> tuple[socket.socket, bytearray, bytes]:
    """Open a WebSocket connection (``headers``: more request lines, each ending in CRLF).

    Returns the socket, the bytes read past the response, and the response head.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
        ).encode()
    )
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed during the handshake")
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    status = bytes(buf[: buf.index(b"\r\n")])
    if b" 101 " not in status + b" ":
        raise ConnectionError(f"handshake refused: {status!r}")
    del buf[:end]
    return sock, buf, head


def drive(port: int, scenario: Scenario, messages: int) -> None:
    """One connection: echo ``messages`` messages in batches, then close cleanly."""
    rnd = random.Random(1)  # the same frames in every run
    payload = bytes(rnd.randrange(256) for _ in range(SIZE))
    batch = scenario.batch
    if messages % batch:
        raise ValueError(f"{messages} is not a multiple of {batch}")
    masks = [rnd.randbytes(4) for _ in range(batch)]
    burst = b"".join(fastws.encode_frame(True, 2, payload, m) for m in masks)
    echo = fastws.encode_frame(True, 2, payload) * batch  # server frames: unmasked
    sock, buf, _ = handshake(port)
    with sock:
        for _ in range(messages // batch):
            sock.sendall(burst)
            got = recv_exact(sock, len(echo), buf)
            if got != echo:
                raise AssertionError(f"bad echo: {got[:40]!r}")
        sock.sendall(fastws.encode_frame(True, 8, (1000).to_bytes(2, "big"), b"\x01\x02\x03\x04"))
        # The server's close frame (2 + 2 bytes), then EOF.
        head = recv_exact(sock, 2, buf)
        if head[0] != 0x88:
            raise AssertionError(f"expected a close frame, got {head!r}")
        recv_exact(sock, head[1] & 0x7F, buf)
        while sock.recv(4096):
            pass


# -- server under callgrind --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0", PYTHONUNBUFFERED="1")


def total_ir(path: Path) -> int:
    """The ``Ir`` total of one callgrind output file."""
    events: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("totals:", "summary:")):
            index = events.index("Ir") if "Ir" in events else 0
            return int(line.split()[1 + index])
    raise ValueError(f"no totals in {path}")


def measure_run(kind: str, scenario: Scenario, messages: int) -> int:
    """Start ``kind`` under callgrind, echo ``messages``, stop it; total instructions."""
    with tempfile.TemporaryDirectory(prefix="cg-echo-") as tmp:
        out = Path(tmp) / "cg.out"
        log = Path(tmp) / "valgrind.log"
        port = free_port()
        cmd = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
            f"--log-file={log}", "--trace-children=yes",
            sys.executable, "-u", str(HERE / "servers.py"), kind, str(port),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_server_env())
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
            line = proc.stdout.readline() if ready else "(timeout)"
            if not line.startswith("READY"):
                raise RuntimeError(f"{kind} did not start: {line!r}\n{tail(log)}")
            drive(port, scenario, messages)
        finally:
            files = stop(proc, Path(tmp), log, kind)
        return sum(total_ir(p) for p in files)


def stop(
    proc: subprocess.Popen[Any], tmp: Path, log: Path, what: str, ok: tuple[int, ...] = (0,)
) -> list[Path]:
    """Stop a server under callgrind (SIGTERM, then SIGKILL); its output files (``cg.out.*``).

    ``ok``: the exit statuses of a clean stop.
    """
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(START_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    if proc.returncode not in ok:
        raise RuntimeError(f"{what} exited with {proc.returncode}\n{tail(log)}")
    files = sorted(tmp.glob("cg.out.*"))
    if not files:
        raise RuntimeError(f"no callgrind output\n{tail(log)}")
    return files


def tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return ""


def measure(kind: str, scenario: Scenario) -> dict[str, Any]:
    """Instructions per message from two runs (N1 and N2 messages)."""
    n1, n2 = scenario.runs
    i1 = measure_run(kind, scenario, n1)
    i2 = measure_run(kind, scenario, n2)
    per = (i2 - i1) / (n2 - n1)
    return {"per_message": per, "totals": [i1, i2], "fixed": i1 - per * n1}


# -- environment -------------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "?"
    return proc.stdout.strip() if proc.returncode == 0 else "?"


def _implementation_under_valgrind() -> str | None:
    code = "import fastws; print(fastws.implementation)"
    proc = subprocess.run(
        ["valgrind", "--tool=none", "-q", sys.executable, "-c", code],
        capture_output=True, text=True, env=_server_env(), check=False,
    )  # fmt: skip
    return proc.stdout.strip() or None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS), help="kinds of servers.py")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="rr and/or pipe64")
    parser.add_argument("--repeat", type=int, default=2, help="whole measures to compare")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--label", default="", help="free text stored in the JSON")
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for name in scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r} (choose from {', '.join(SCENARIOS)})")
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=True)

    results: list[dict[str, Any]] = []
    for kind in servers:
        for name in scenarios:
            scenario = SCENARIOS[name]
            runs = []
            for r in range(args.repeat):
                started = time.monotonic()
                run = measure(kind, scenario)
                runs.append(run)
                print(
                    f"  {kind} {name} repeat {r + 1}: {run['per_message']:,.1f} instr/msg "
                    f"({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            values = [round(run["per_message"], 1) for run in runs]
            spread = max(values) - min(values)
            results.append(
                {
                    "server": kind,
                    "scenario": name,
                    "instructions_per_message": values,
                    "median": statistics.median(values),
                    "spread": round(spread, 1),
                    "spread_pct": round(100 * spread / statistics.median(values), 3),
                    "fixed_instructions": [round(run["fixed"]) for run in runs],
                    "totals": [run["totals"] for run in runs],
                }
            )

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "label": args.label,
        "commit": _git("rev-parse", "HEAD"),
        "commit_subject": _git("log", "-1", "--format=%s"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "valgrind": version.stdout.strip(),
        "cpu": _cpu_model(),
        "fastws_implementation": fastws.implementation,
        "fastws_implementation_under_valgrind": _implementation_under_valgrind(),
        "message_size": SIZE,
        "repeats": args.repeat,
        "scenarios": {
            name: {
                "doc": SCENARIOS[name].doc,
                "batch": SCENARIOS[name].batch,
                "messages": list(SCENARIOS[name].runs),
            }
            for name in scenarios
        },
        "method": "(I2 - I1) / (N2 - N1): callgrind Ir of the server process, all threads",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")

    width = max(len(s) for s in servers) if servers else 6
    cols = " ".join(f"{'repeat ' + str(i + 1):>12}" for i in range(args.repeat))
    print(f"\ninstructions per echoed message ({report['commit'][:10]}, "
          f"{report['fastws_implementation_under_valgrind']} under valgrind)\n")  # fmt: skip
    print(f"{'server':{width}} {'scenario':8} {cols} {'diff':>8} {'diff %':>7}")
    for row in results:
        vals = " ".join(f"{v:>12,.1f}" for v in row["instructions_per_message"])
        print(
            f"{row['server']:{width}} {row['scenario']:8} {vals} "
            f"{row['spread']:>8,.1f} {row['spread_pct']:>7.3f}"
        )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
