"""Micro-benchmark of the ``parse_messages`` kernel (the protocol's fast path).

The stream of ``bench_parse.py`` (masked client text frames, as a server
receives them) is cut in 64 KiB reads; each read is parsed into a fresh event
list, as the protocol does between two ``events_received()`` calls, and an
incomplete frame at its end is carried over to the next read. Scenarios:
``small`` (100,000 frames of 16 bytes) and ``large`` (1,000 frames of
64 KiB). Prints the best of several runs per implementation.

Run (one core when ``taskset`` exists)::

    taskset -c 1 python bench/bench_parse_messages.py [--repeat N] [c|python ...]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_parse import CHUNK, SCENARIOS, make_stream

from fastws.events import BinaryMessage, TextMessage


def parse_all(kernels: ModuleType, chunks: list[bytes]) -> int:
    """Parse the reads in order; return the number of events."""
    parse = kernels.parse_messages
    count = 0
    carry = bytearray()
    for chunk in chunks:
        events: list[object] = []
        if carry:
            carry += chunk
            pos = parse(carry, 0, True, -1, events, TextMessage, BinaryMessage)
            del carry[:pos]
        else:
            pos = parse(chunk, 0, True, -1, events, TextMessage, BinaryMessage)
            if pos < len(chunk):
                carry += memoryview(chunk)[pos:]
        count += len(events)
    return count


def best_time(kernels: ModuleType, chunks: list[bytes], frames: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        got = parse_all(kernels, chunks)
        best = min(best, time.perf_counter() - start)
        if got != frames:
            raise AssertionError(f"{kernels.__name__}: {got} events, expected {frames}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("impl", nargs="*", help="c and/or python (default: both)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per case (best is kept)")
    args = parser.parse_args()
    modules = {"c": "fastws._speedups", "python": "fastws._kernels_py"}
    impls = args.impl or list(modules)
    for impl in impls:
        if impl not in modules:
            parser.error(f"unknown implementation {impl!r} (choose c or python)")
    print(f"{'scenario':8} {'impl':7} {'ns/frame':>10} {'frames/s':>12} {'GB/s':>7}")
    for scenario, (frames, size) in SCENARIOS.items():
        data = make_stream(frames, size)
        chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        for impl in impls:
            kernels = importlib.import_module(modules[impl])
            # The pure twin is ~20x slower: fewer runs keep it short.
            repeat = args.repeat if impl == "c" else max(1, args.repeat // 3)
            seconds = best_time(kernels, chunks, frames, repeat)
            print(
                f"{scenario:8} {impl:7} {seconds * 1e9 / frames:10.1f} "
                f"{frames / seconds:12,.0f} {len(data) / seconds / 1e9:7.2f}"
            )


if __name__ == "__main__":
    main()
