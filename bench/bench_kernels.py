"""Kernel benchmarks: fastws against its peers on masking and UTF-8 validation.

Run (pinned to one core when ``taskset`` exists)::

    taskset -c 1 python -m pytest bench/bench_kernels.py --benchmark-only \\
        --benchmark-json=bench/results/kernels.json

Every benchmark sets ``group`` to its scenario (e.g. ``"mask-copy 1KiB"``)
and ``extra_info`` to ``{"lib", "size", "input"}``, so ratios are computed
within a group. Turn a JSON file into the Markdown tables of
``bench/RESULTS.md`` with::

    python bench/bench_kernels.py bench/results/kernels.json

Peers: ``websockets.speedups.apply_mask``, ``tornado.speedups.websocket_mask``,
``wsaccel`` (``XorMaskerSimple``, ``Utf8Validator``), aiohttp's compiled
in-place mask, CPython's UTF-8 codec; the pure-Python masks of websockets and
aiohttp (``*-python``) give the pure-Python twin something to compare with.
``copy-floor`` is a plain memory copy of the same size into a new object (or,
in place, into the same buffer): no masking kernel can beat it by much.
"""

from __future__ import annotations

import codecs
import importlib
import itertools
import json
import os
import random
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

try:
    from fastws import _kernels_py
except ImportError:  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from fastws import _kernels_py

_speedups: ModuleType | None
try:
    _speedups = importlib.import_module("fastws._speedups")
except ImportError:  # pragma: no cover - pure-Python install
    _speedups = None

KEY = b"\x9a\x3c\x51\xe7"

MASK_SIZES = {
    "8B": 8,
    "125B": 125,
    "1KiB": 1 << 10,
    "16KiB": 16 << 10,
    "64KiB": 64 << 10,
    "1MiB": 1 << 20,
    "16MiB": 16 << 20,
}
UTF8_SIZES = {"64KiB": 64 << 10, "1MiB": 1 << 20}
if os.environ.get("FASTWS_BENCH_QUICK", "") not in ("", "0"):  # a first look: skip the largest
    del MASK_SIZES["16MiB"]
UTF8_INPUTS = ("ascii", "mixed", "invalid")

# Sizes at which the pure-Python twin is still worth timing.
PURE_MAX = 16 << 20

# From 1 KiB up to 64 KiB, a copying mask's time depends on where its input
# lies relative to the output it allocates (store-to-load aliasing: at 1 KiB
# one kernel measured anywhere from 94 to 187 ns depending on the input's
# offset alone). So each call there takes the next of ROTATE separately
# allocated copies of the input, the same for every library, and no library
# gets a lucky or an unlucky address for the whole run. Smaller inputs are
# not affected; larger ones are memory bound.
ROTATE = 16
ROTATE_SIZES = range(1 << 10, (64 << 10) + 1)

pytestmark = pytest.mark.benchmark(max_time=0.25, min_rounds=5, warmup=True)


def _isas() -> list[str]:
    """The masking instruction sets the C extension can use on this CPU."""
    if _speedups is None:
        return []
    try:
        return [
            isa for isa in ("scalar", "sse2", "avx2", "avx512", "neon") if _speedups._force_isa(isa)
        ]
    finally:
        _speedups._force_isa("auto")


ISAS = _isas()


def _random_bytes(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def _mixed_text(n: int) -> bytes:
    """About 30% non-ASCII characters (2-, 3- and 4-byte), at least ``n`` bytes."""
    rng = random.Random(n)
    ascii_part = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ.,0123456789"
    other = "éüßñçøåäö" + "€世界中文日本語한국" + "😀🎉🚀"
    chars = []
    size = 0
    while size < n:
        ch = rng.choice(other) if rng.random() < 0.3 else rng.choice(ascii_part)
        chars.append(ch)
        size += len(ch.encode())
    return "".join(chars).encode()[:n].decode("utf-8", "ignore").encode()


def _utf8_input(kind: str, n: int) -> bytes:
    if kind == "ascii":
        return bytes(random.Random(n).choices(range(32, 127), k=n))
    text = _mixed_text(n)
    if kind == "invalid":
        pos = len(text) - 16
        while text[pos] & 0xC0 == 0x80:  # land on a character boundary
            pos -= 1
        text = text[:pos] + b"\xff" + text[pos + 1 :]
    return text


def _check(benchmark: Any, group: str, lib: str, size: str, kind: str = "random") -> None:
    benchmark.group = group
    benchmark.extra_info.update({"lib": lib, "size": size, "input": kind})


@pytest.fixture
def isa() -> Iterator[Callable[[str], None]]:
    """Force a masking/UTF-8 instruction set for one benchmark."""

    def force(name: str) -> None:
        assert _speedups is not None
        if not _speedups._force_isa(name):
            pytest.skip(f"{name} is not supported here")

    yield force
    if _speedups is not None:
        _speedups._force_isa("auto")


# -- masking into a new bytes object ---------------------------------------------------


def _mask_copy_libs() -> list[str]:
    libs = ["copy-floor", "fastws-c", "fastws-python", "websockets", "tornado", "wsaccel"]
    libs += ["websockets-python"]
    libs += [f"fastws-c/{isa}" for isa in ISAS]
    return libs


def mask_copy_call(lib: str) -> tuple[Callable[..., object], str]:
    """The function a copying-mask row calls and its arguments' order.

    ``lib`` is a row name without a forced ISA (``"fastws-c"``, not
    ``"fastws-c/avx2"``). The order is ``"data"`` (one argument),
    ``"data,key"`` or ``"key,data"``; the key is :data:`KEY`. Callers that
    time these functions call them directly, with no wrapper in between.
    """
    if lib == "copy-floor":
        return bytes, "data"  # called with a bytearray: one allocation and one copy
    if lib == "fastws-c":
        if _speedups is None:
            raise LookupError("the C extension is not built")
        return _speedups.apply_mask, "data,key"
    if lib == "fastws-python":
        return _kernels_py.apply_mask, "data,key"
    if lib == "websockets":
        from websockets.speedups import apply_mask as ws_apply_mask

        return ws_apply_mask, "data,key"
    if lib == "websockets-python":
        from websockets.utils import apply_mask as ws_apply_mask_py

        return ws_apply_mask_py, "data,key"
    if lib == "tornado":
        from tornado.speedups import websocket_mask

        return websocket_mask, "key,data"
    if lib == "wsaccel":
        from wsaccel.xormask import XorMaskerSimple  # type: ignore[import-untyped]

        # A masker keeps its position in the key: a fresh one per frame.
        return lambda data: XorMaskerSimple(KEY).process(data), "data"
    raise AssertionError(lib)


def _select_isa(lib: str, force_isa: Callable[[str], None]) -> None:
    """For a ``fastws-c[/isa]`` row: skip without the extension, force the ISA."""
    if lib.startswith("fastws-c"):
        if _speedups is None:
            pytest.skip("the C extension is not built")
        if "/" in lib:
            force_isa(lib.split("/", 1)[1])


def _mask_copy_func(lib: str, force_isa: Callable[[str], None]) -> Callable[[bytes], object]:
    _select_isa(lib, force_isa)
    func, order = mask_copy_call(lib.split("/", 1)[0])
    if order == "data":
        return func
    if order == "data,key":
        return lambda data: func(data, KEY)
    return lambda data: func(KEY, data)


@pytest.mark.parametrize("lib", _mask_copy_libs())
@pytest.mark.parametrize("size", list(MASK_SIZES))
def test_mask_copy(benchmark: Any, isa: Callable[[str], None], size: str, lib: str) -> None:
    n = MASK_SIZES[size]
    if lib.endswith("python") and n > PURE_MAX:
        pytest.skip("too slow to be worth timing")
    data = _random_bytes(n)
    func = _mask_copy_func(lib, isa)
    arg: bytes | bytearray = bytearray(data) if lib == "copy-floor" else data
    if lib != "copy-floor":
        assert func(data) == _kernels_py.apply_mask(data, KEY)
    _check(benchmark, f"mask-copy {size}", lib, size)
    if n in ROTATE_SIZES:
        # Separate allocations, kept alive, at different addresses.
        inputs: list[Any] = [type(arg)(bytearray(arg)) for _ in range(ROTATE)]
        benchmark.extra_info["rotated_inputs"] = ROTATE
        next_input = itertools.cycle(inputs).__next__
        benchmark(lambda: func(next_input()))
    else:
        benchmark(func, arg)


# -- masking in place --------------------------------------------------------------------


def _aiohttp_mask() -> Callable[[bytes, bytearray], None]:
    from aiohttp._websocket import helpers

    mask = importlib.import_module("aiohttp._websocket.mask")
    func: Callable[[bytes, bytearray], None] = mask._websocket_mask_cython
    # It must be the compiled function, and the one aiohttp's reader uses.
    assert Path(mask.__file__ or "").suffix in (".so", ".pyd"), mask.__file__
    assert helpers.websocket_mask is func
    return func


def _mask_inplace_libs() -> list[str]:
    return ["copy-floor", "fastws-c", "fastws-python", "aiohttp", "aiohttp-python"] + [
        f"fastws-c/{isa}" for isa in ISAS
    ]


def mask_inplace_call(lib: str) -> tuple[Callable[..., object], str]:
    """The function an in-place row calls and its arguments' order.

    ``"buffer,key"`` or ``"key,buffer"``; ``lib`` without a forced ISA. The
    ``copy-floor`` row is not a function call (``view[:] = source``).
    """
    if lib == "fastws-c":
        if _speedups is None:
            raise LookupError("the C extension is not built")
        return _speedups.mask_inplace, "buffer,key"
    if lib == "fastws-python":
        return _kernels_py.mask_inplace, "buffer,key"
    if lib == "aiohttp":
        return _aiohttp_mask(), "key,buffer"
    if lib == "aiohttp-python":
        from aiohttp._websocket.helpers import _websocket_mask_python

        return _websocket_mask_python, "key,buffer"
    raise AssertionError(lib)


@pytest.mark.parametrize("lib", _mask_inplace_libs())
@pytest.mark.parametrize("size", list(MASK_SIZES))
def test_mask_inplace(benchmark: Any, isa: Callable[[str], None], size: str, lib: str) -> None:
    n = MASK_SIZES[size]
    if lib.endswith("python") and n > PURE_MAX:
        pytest.skip("too slow to be worth timing")
    buf = bytearray(_random_bytes(n))
    func: Callable[[], object]
    if lib == "copy-floor":
        source = bytes(buf)
        view = memoryview(buf)

        def func() -> None:
            view[:] = source  # one copy of n bytes, no allocation

    else:
        _select_isa(lib, isa)
        inplace, order = mask_inplace_call(lib.split("/", 1)[0])
        if order == "buffer,key":

            def func() -> None:
                inplace(buf, KEY)

        else:

            def func() -> None:
                inplace(KEY, buf)

    _check(benchmark, f"mask-inplace {size}", lib, size)
    benchmark(func)


# -- UTF-8 validation ---------------------------------------------------------------------


def _decode_check(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


def _incremental_check(data: bytes) -> bool:
    try:
        _IncrementalDecoder().decode(data, final=True)
    except UnicodeDecodeError:
        return False
    return True


def _wsaccel_check(data: bytes) -> bool:
    from wsaccel.utf8validator import Utf8Validator  # type: ignore[import-untyped]

    valid, ends_on_code_point, _, _ = Utf8Validator().validate(data)
    return bool(valid and ends_on_code_point)


def _fastws_feed(module: ModuleType) -> Callable[[bytes], bool]:
    validator_class = module.Utf8Validator

    def check(data: bytes) -> bool:
        try:
            validator_class().feed(data, final=True)
        except ValueError:
            return False
        return True

    return check


def _utf8_libs() -> list[str]:
    libs = [
        "fastws-c",
        "fastws-c-incremental",
        "fastws-python",
        "fastws-python-incremental",
        "bytes.decode",
        "codecs-incremental",
        "wsaccel",
    ]
    return libs + [f"fastws-c/{isa}" for isa in ISAS]


@pytest.mark.parametrize("lib", _utf8_libs())
@pytest.mark.parametrize("kind", UTF8_INPUTS)
@pytest.mark.parametrize("size", list(UTF8_SIZES))
def test_utf8(benchmark: Any, isa: Callable[[str], None], size: str, kind: str, lib: str) -> None:
    data = _utf8_input(kind, UTF8_SIZES[size])
    func: Callable[[bytes], bool]
    if lib.startswith("fastws-c"):
        if _speedups is None:
            pytest.skip("the C extension is not built")
        if "/" in lib:
            isa(lib.split("/", 1)[1])
        func = _fastws_feed(_speedups) if lib.endswith("incremental") else _speedups.validate_utf8
    elif lib == "fastws-python":
        func = _kernels_py.validate_utf8
    elif lib == "fastws-python-incremental":
        func = _fastws_feed(_kernels_py)
    elif lib == "bytes.decode":
        func = _decode_check
    elif lib == "codecs-incremental":
        func = _incremental_check
    elif lib == "wsaccel":
        func = _wsaccel_check
    else:
        raise AssertionError(lib)
    assert func(data) is (kind != "invalid"), (lib, kind)
    _check(benchmark, f"utf8 {kind} {size}", lib, size, kind)
    benchmark(func, data)


# -- report -------------------------------------------------------------------------------


_SIZE_BYTES = {**MASK_SIZES, **UTF8_SIZES}
_PEERS = {
    "websockets",
    "websockets-python",
    "tornado",
    "wsaccel",
    "aiohttp",
    "aiohttp-python",
    "bytes.decode",
    "codecs-incremental",
}


def _fmt_ns(seconds: float) -> str:
    return f"{seconds * 1e9:,.0f}"


def report(path: str) -> str:
    """Markdown tables (median per group) from a pytest-benchmark JSON file."""
    doc = json.loads(Path(path).read_text())
    groups: dict[str, list[dict[str, Any]]] = {}
    for bench in doc["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench)
    lines = [
        "| scenario | lib | median ns/op | GB/s | vs fastest peer | vs copy floor |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for group in sorted(groups, key=_group_order):
        rows = groups[group]
        medians = {row["extra_info"]["lib"]: row["stats"]["median"] for row in rows}
        peers = [t for lib, t in medians.items() if lib in _PEERS]
        best_peer = min(peers) if peers else None
        floor = medians.get("copy-floor")
        for lib in sorted(medians, key=lambda name: medians[name]):
            t = medians[lib]
            size = _SIZE_BYTES[rows[0]["extra_info"]["size"]]
            gbps = size / t / 1e9
            vs_peer = f"{t / best_peer:.2f}x" if best_peer else "-"
            vs_floor = f"{t / floor:.2f}x" if floor else "-"
            lines.append(
                f"| {group} | {lib} | {_fmt_ns(t)} | {gbps:.2f} | {vs_peer} | {vs_floor} |"
            )
    return "\n".join(lines)


def _group_order(group: str) -> tuple[int, int, str]:
    kind, _, rest = group.partition(" ")
    size = rest.split()[-1]
    order = ["mask-copy", "mask-inplace", "utf8"]
    return (order.index(kind) if kind in order else 9, _SIZE_BYTES.get(size, 0), rest)


def speedup_summary(path: str) -> str:
    """fastws-c median over the fastest peer's, one line per group."""
    doc = json.loads(Path(path).read_text())
    groups: dict[str, dict[str, float]] = {}
    for bench in doc["benchmarks"]:
        groups.setdefault(bench["group"], {})[bench["extra_info"]["lib"]] = bench["stats"]["median"]
    ratios = []
    for medians in groups.values():
        peers = [t for lib, t in medians.items() if lib in _PEERS]
        if "fastws-c" in medians and peers:
            ratios.append(min(peers) / medians["fastws-c"])
    if not ratios:
        return "no fastws-c results"
    return (
        f"fastws-c vs fastest peer: geometric mean speed-up "
        f"{statistics.geometric_mean(ratios):.2f}x over {len(ratios)} scenarios "
        f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)"
    )


if __name__ == "__main__":
    source = sys.argv[1] if len(sys.argv) > 1 else "bench/results/kernels.json"
    print(report(source))
    print()
    print(speedup_summary(source))
