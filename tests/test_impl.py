"""Which kernels are live, and the public names of the package.

The implementation is chosen once, at import, so each check runs in a fresh
interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import fastws
from fastws import _kernels_py

# The subprocesses import the same fastws as this process: the source tree or
# an installed wheel.
ROOT = Path(fastws.__file__).resolve().parent.parent

#: Kernels that ``fastws`` re-exports.
PUBLIC_KERNELS = {
    "apply_mask",
    "mask_inplace",
    "validate_utf8",
    "Utf8Validator",
    "decode_header",
    "encode_header",
    "encode_frame",
}

#: Everything both implementations export (docs/kernels.md).
KERNEL_NAMES = PUBLIC_KERNELS | {"frame_message"}

PUBLIC_NAMES = PUBLIC_KERNELS | {"implementation", "Utf8Error", "FastWSError", "__version__"}

ISA_NAMES = {"avx512", "avx2", "sse2", "neon", "scalar"}

# Makes ``fastws._speedups`` look absent, as in a pure-Python install.
HIDE_EXTENSION = """
import sys

class _NoExtension:
    def find_spec(self, name, path=None, target=None):
        if name == "fastws._speedups":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoExtension())
"""

REPORT = (
    f"NAMES = {sorted(KERNEL_NAMES)!r}\nPUBLIC = {sorted(PUBLIC_KERNELS)!r}\n"
    + """
import json
import fastws
from fastws import _impl
print(json.dumps({
    "implementation": fastws.implementation,
    "module": _impl._kernels.__name__,
    "same": all(getattr(_impl, n) is getattr(_impl._kernels, n) for n in NAMES)
    and all(getattr(fastws, n) is getattr(_impl._kernels, n) for n in PUBLIC),
}))
"""
)


def run_python(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter with warnings as errors; parse its JSON."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("FASTWS_NO_EXTENSIONS", "FASTWS_SIMD")
    }
    environ.update(env)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_no_extensions_gives_python() -> None:
    report = run_python(REPORT, FASTWS_NO_EXTENSIONS="1")
    assert report == {"implementation": "python", "module": "fastws._kernels_py", "same": True}


def test_missing_extension_gives_python_quietly() -> None:
    # No warning either: a missing extension is a normal pure-Python install.
    report = run_python(HIDE_EXTENSION + REPORT)
    assert report == {"implementation": "python", "module": "fastws._kernels_py", "same": True}


@pytest.mark.parametrize("value", ["", "0"])
def test_extension_is_used_when_built(speedups: ModuleType, value: str) -> None:
    report = run_python(REPORT, FASTWS_NO_EXTENSIONS=value)
    assert report["module"] == "fastws._speedups"
    assert report["same"] is True
    implementation = report["implementation"]
    assert isinstance(implementation, str)
    assert implementation.startswith("c/")
    assert implementation[2:] in ISA_NAMES


def test_implementation_names_the_masking_isa(speedups: ModuleType) -> None:
    report = run_python(
        "import json, fastws, fastws._speedups as s;"
        "print(json.dumps({'impl': fastws.implementation, 'mask': s.simd_level(),"
        " 'utf8': s.utf8_simd_level()}))"
    )
    assert report["impl"] == "c/" + str(report["mask"])
    assert report["mask"] in ISA_NAMES
    assert report["utf8"] in ISA_NAMES


@pytest.mark.parametrize("cap", ["scalar", "sse2", "avx2", "avx512"])
def test_simd_cap_from_environment(speedups: ModuleType, cap: str) -> None:
    try:
        if not speedups._force_isa(cap):
            pytest.skip(f"this CPU does not support {cap}")
    finally:
        speedups._force_isa("auto")
    report = run_python(REPORT, FASTWS_SIMD=cap)
    assert report["implementation"] == "c/" + cap


def test_public_names() -> None:
    assert set(fastws.__all__) >= PUBLIC_NAMES
    for name in fastws.__all__:
        assert hasattr(fastws, name), name
    assert len(fastws.__all__) == len(set(fastws.__all__))
    assert isinstance(fastws.__version__, str)
    assert fastws.implementation == "python" or fastws.implementation.startswith("c/")


def test_asyncio_names_are_lazy() -> None:
    """``import fastws`` does not import asyncio; the first use of serve() does."""
    report = run_python(
        "import json, sys, fastws\n"
        "before = 'fastws.asyncio' in sys.modules\n"
        "import fastws.asyncio as aio\n"
        "same = fastws.serve is aio.serve and fastws.connect is aio.connect\n"
        "same = same and fastws.ConnectionClosedOK is aio.ConnectionClosedOK\n"
        "print(json.dumps({'before': before, 'same': same}))"
    )
    assert report == {"before": False, "same": True}
    # Calling a forwarder imports the front-end and replaces the forwarder.
    report = run_python(
        "import json, sys, fastws\n"
        "forwarder = fastws.connect\n"
        "try:\n"
        "    forwarder('not a uri')\n"
        "except ValueError:\n"
        "    pass\n"
        "import fastws.asyncio as aio\n"
        "same = fastws.connect is aio.connect and forwarder is not aio.connect\n"
        "print(json.dumps({'imported': 'fastws.asyncio' in sys.modules, 'same': same}))"
    )
    assert report == {"imported": True, "same": True}


def test_no_module_getattr_on_the_package() -> None:
    # CPython does not specialize attribute lookups on a module that has a
    # __getattr__: fastws.apply_mask(...) would cost a slow lookup per call.
    assert "__getattr__" not in vars(fastws)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fastws.nope  # noqa: B018


def test_star_import() -> None:
    namespace: dict[str, object] = {}
    exec("from fastws import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(fastws.__all__)


def test_pure_module_exports_exactly_the_kernels() -> None:
    assert set(_kernels_py.__all__) == KERNEL_NAMES
    for name in KERNEL_NAMES:
        assert hasattr(_kernels_py, name)
    assert not hasattr(_kernels_py, "simd_level")
    assert not hasattr(_kernels_py, "utf8_simd_level")


def test_extension_exports_the_kernels(speedups: ModuleType) -> None:
    for name in KERNEL_NAMES | {"simd_level", "utf8_simd_level", "_force_isa"}:
        assert hasattr(speedups, name), name
    assert speedups.simd_level() in ISA_NAMES
    assert speedups.utf8_simd_level() in ISA_NAMES


def test_force_isa_rejects_unknown_names(speedups: ModuleType) -> None:
    before = speedups.simd_level()
    assert speedups._force_isa("mmx") is False
    assert speedups.simd_level() == before
    assert speedups._force_isa("auto") is True


def test_same_signatures(speedups: ModuleType) -> None:
    # Keyword names are part of the API: callers may use them.
    assert speedups.apply_mask(data=b"ab", mask=b"1234") == _kernels_py.apply_mask(
        data=b"ab", mask=b"1234"
    )
    buf = bytearray(b"abc")
    speedups.mask_inplace(buffer=buf, mask=b"1234", phase=1)
    assert buf == _kernels_py.apply_mask(b"abc", b"2341")
    assert speedups.validate_utf8(data=b"x") is _kernels_py.validate_utf8(data=b"x") is True
    assert speedups.decode_header(data=b"\x81\x00", offset=0) == _kernels_py.decode_header(
        data=b"\x81\x00", offset=0
    )
    validator = speedups.Utf8Validator()
    validator.feed(data=b"x", final=True)


BAD_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("apply_mask", (b"data", b"abc")),
    ("apply_mask", (b"data", b"abcde")),
    ("apply_mask", ("text", b"abcd")),
    ("apply_mask", (None, b"abcd")),
    ("apply_mask", (b"data", None)),
    ("apply_mask", (memoryview(bytearray(8))[::2], b"abcd")),
    ("apply_mask", (b"data", memoryview(bytearray(8))[::2])),
    ("mask_inplace", (b"read-only", b"abcd")),
    ("mask_inplace", (bytearray(4), b"abcd", 4)),
    ("mask_inplace", (bytearray(4), b"abcd", -1)),
    ("mask_inplace", (bytearray(4), b"ab")),
    ("mask_inplace", (memoryview(bytearray(8))[::2], b"abcd")),
    ("validate_utf8", ("text",)),
    ("validate_utf8", (memoryview(bytearray(8))[::2],)),
    ("decode_header", (b"\x81\x00", 3)),
    ("decode_header", (b"\x81\x00", -1)),
    ("decode_header", (b"\x81\x7f\x80\x00\x00\x00\x00\x00\x00\x00",)),
    ("decode_header", (memoryview(bytearray(8))[::2],)),
    ("encode_header", (True, 16, 0)),
    ("encode_header", (True, 1, -1)),
    ("encode_header", (True, 1, 2**63)),
    ("encode_header", (True, 1, 0, b"abc")),
    ("encode_header", (True, 1, 0, None, 8)),
    ("encode_frame", (True, -1, b"")),
    ("encode_frame", (True, 1, b"x", b"abcde")),
    ("encode_frame", (True, 1, memoryview(bytearray(8))[::2])),
]


@pytest.mark.parametrize(("name", "args"), BAD_CALLS, ids=lambda v: v if isinstance(v, str) else "")
def test_same_errors(speedups: ModuleType, name: str, args: tuple[object, ...]) -> None:
    # Same exception type and message from both implementations.
    with pytest.raises((TypeError, ValueError)) as from_c:
        getattr(speedups, name)(*args)
    with pytest.raises((TypeError, ValueError)) as from_python:
        getattr(_kernels_py, name)(*args)
    assert type(from_python.value) is type(from_c.value)
    assert str(from_python.value) == str(from_c.value)
