"""What zlib alone costs per echoed message in the uvicorn deflate scenarios.

An echo server with permessage-deflate, no context takeover (what the
benchmark's Go clients negotiate), must inflate each message and deflate
the answer. This measures those zlib calls alone, in this process, for the
benchmark's messages (JSON-like records, compressed by the client at level
1), as each implementation makes them: fastws compresses at
:data:`fastws.limits.DEFLATE_LEVEL` with memory level
:data:`fastws.limits.DEFLATE_MEM_LEVEL` on a compressor it keeps and resets
with a full flush; websockets, as uvicorn sets it up, makes a compressor
with zlib's defaults (level 6, memory level 8) for each message. Both inflate
with a new decompressor per message. With the ``isal`` package installed,
also ISA-L compressing at the same level (fastws with
``FASTWS_DEFLATE_BACKEND=isal``). No library code runs: it is the floor under
an implementation that makes these calls.
"""

from __future__ import annotations

import random
import statistics
import time
import zlib
from typing import Any

from fastws import limits

try:
    from isal import isal_zlib
except ImportError:  # the bench extra installs it
    isal_zlib = None  # type: ignore[assignment]

#: message sizes of the deflate scenarios
SIZES = {"1KiB": 1 << 10, "16KiB": 16 << 10}


def payload(size: int) -> bytes:
    """JSON-like records as the Go client sends them (same format, another generator)."""
    rng = random.Random(1)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    parts = ["["]
    length, i = 1, 0
    while length < size:
        record = (
            f'{{"id":{i},"user":"user-{rng.randrange(100000)}","score":{rng.random() * 100:.4f},'
            f'"tag":"{rng.choice(words)}","active":{"true" if rng.randrange(2) else "false"}}},'
        )
        parts.append(record)
        length += len(record)
        i += 1
    return ("".join(parts)[: size - 1] + "]").encode()


def _compressor(level: int, mem_level: int) -> Any:
    return zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, mem_level)


def _per_call(fn: Any, count: int, repeat: int = 5) -> float:
    """Median microseconds per call of ``fn`` over ``repeat`` rounds of ``count`` calls."""
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(count):
            fn()
        rounds.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(rounds)


def measure() -> dict[str, Any]:
    """Microseconds per message: inflate, deflate at fastws's and at websockets' settings."""
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "fastws_settings": f"level {limits.DEFLATE_LEVEL}, memory level {limits.DEFLATE_MEM_LEVEL}",
        "websockets_settings": "level 6, memory level 8 (zlib's defaults)",
        "sizes": {},
    }
    for name, size in SIZES.items():
        data = payload(size)
        client = _compressor(1, 8)
        sent = client.compress(data) + client.flush(zlib.Z_SYNC_FLUSH)  # with its tail
        count = max(200, 2_000_000 // size)
        kept = _compressor(limits.DEFLATE_LEVEL, limits.DEFLATE_MEM_LEVEL)

        def inflate(sent: bytes = sent) -> None:
            zlib.decompressobj(-zlib.MAX_WBITS).decompress(sent)

        def deflate_fastws(data: bytes = data, kept: Any = kept) -> None:
            kept.compress(data)
            kept.flush(zlib.Z_FULL_FLUSH)

        def deflate_websockets(data: bytes = data) -> None:
            fresh = _compressor(6, 8)
            fresh.compress(data)
            fresh.flush(zlib.Z_SYNC_FLUSH)

        inflate_us = _per_call(inflate, count)
        fastws_us = _per_call(deflate_fastws, count)
        websockets_us = _per_call(deflate_websockets, count)
        out["sizes"][name] = row = {
            "inflate_us": inflate_us,
            "deflate_fastws_us": fastws_us,
            "deflate_websockets_us": websockets_us,
            "floor_fastws_us": inflate_us + fastws_us,
            "floor_websockets_us": inflate_us + websockets_us,
        }
        if isal_zlib is not None:
            isal = isal_zlib.compressobj(
                limits.DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, limits.DEFLATE_MEM_LEVEL
            )

            def deflate_isal(data: bytes = data, kept: Any = isal) -> None:
                kept.compress(data)
                kept.flush(zlib.Z_FULL_FLUSH)

            row["deflate_isal_us"] = _per_call(deflate_isal, count)
            row["floor_isal_us"] = inflate_us + row["deflate_isal_us"]
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=1))
