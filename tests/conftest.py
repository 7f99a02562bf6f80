"""Shared fixtures: run every kernel test against every implementation.

* ``kernels``: the C extension (``fastws._speedups``) and the pure-Python twin
  (``fastws._kernels_py``). The C variant is skipped when the extension is not
  built, unless ``FASTWS_REQUIRE_EXTENSION=1``: then a missing extension fails.
* ``simd_kernels``: the same, but the C extension once per instruction set
  this CPU supports, forced with ``_speedups._force_isa`` and restored to
  ``"auto"`` afterwards. Used by the masking and UTF-8 tests, whose C code
  has one path per instruction set.

Hypothesis profiles: ``ci`` (default, keeps the kernel suite to well under a
minute per implementation), ``thorough`` (many more examples) and ``dev``.
Choose one with ``HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterator
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Instruction sets the C extension may be forced to, in the contract's names.
ISAS = ("scalar", "sse2", "avx2", "avx512", "neon")


def _extension_required() -> bool:
    return os.environ.get("FASTWS_REQUIRE_EXTENSION", "") not in ("", "0")


def _import_speedups() -> ModuleType | None:
    # Import the package first with warnings allowed: whether importing it
    # warns is checked in test_impl.py, in a fresh interpreter.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        importlib.import_module("fastws")
    try:
        return importlib.import_module("fastws._speedups")
    except ImportError:
        return None


_speedups = _import_speedups()


def _speedups_or_skip() -> ModuleType:
    if _speedups is None:
        if _extension_required():
            pytest.fail("FASTWS_REQUIRE_EXTENSION is set but fastws._speedups is not built")
        pytest.skip("the C extension fastws._speedups is not built")
    return _speedups


@pytest.fixture(scope="session")
def speedups() -> ModuleType:
    """The C extension module (skipped when it is not built)."""
    return _speedups_or_skip()


@pytest.fixture(scope="session")
def pure_kernels() -> ModuleType:
    """The pure-Python kernels."""
    return importlib.import_module("fastws._kernels_py")


@pytest.fixture(params=["c", "python"])
def kernels(request: pytest.FixtureRequest) -> ModuleType:
    """Each kernel implementation in turn."""
    if request.param == "c":
        return _speedups_or_skip()
    return importlib.import_module("fastws._kernels_py")


def _supported_isas() -> list[str]:
    """The instruction sets this CPU can run, when the extension is built."""
    if _speedups is None:
        return []
    try:
        return [isa for isa in ISAS if _speedups._force_isa(isa)]
    finally:
        _speedups._force_isa("auto")


@pytest.fixture(params=["python", "c-auto", *(f"c-{isa}" for isa in _supported_isas())])
def simd_kernels(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """Each implementation, the C one once per instruction set the CPU has."""
    name: str = request.param
    if name == "python":
        yield importlib.import_module("fastws._kernels_py")
        return
    module = _speedups_or_skip()
    isa = name[2:]
    if isa == "auto":
        yield module
        return
    if not module._force_isa(isa):
        module._force_isa("auto")
        pytest.fail(f"_force_isa({isa!r}) worked at collection time but not now")
    try:
        yield module
    finally:
        module._force_isa("auto")


_PROXY_VARIABLES = ("http", "https", "ws", "wss", "socks", "all", "no")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients use the environment's proxy by default: the tests set their own."""
    for scheme in _PROXY_VARIABLES:
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)


@pytest.fixture(params=["zlib", "isal"])
def backend_module(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """Compress with zlib, then with ISA-L (``set_deflate_backend``), zlib again afterwards.

    ISA-L (the ``isal`` package) is in the test extra: where it is missing,
    its variant fails unless ``FASTWS_ALLOW_NO_ISAL=1`` (then it is skipped).
    """
    from fastws.extensions import deflate_backend, set_deflate_backend

    if request.param == "zlib":
        module: ModuleType = importlib.import_module("zlib")
    else:
        try:
            module = importlib.import_module("isal.isal_zlib")
        except ImportError:
            if os.environ.get("FASTWS_ALLOW_NO_ISAL") == "1":
                pytest.skip("isal is not installed (pip install isal)")
            raise
    set_deflate_backend(module)
    try:
        assert deflate_backend() is module
        yield module
    finally:
        set_deflate_backend(None)
