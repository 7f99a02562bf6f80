"""Build script for fastws.

The C extension ``fastws._speedups`` is built from ``fastws/_speedups.pyx``
plus the kernels in ``csrc/``. Every ``csrc/*_<isa>.c`` file is compiled on
its own with only that instruction set's flags and linked in as an extra
object; the kernels pick one at run time from the CPU, so the build never
uses ``-march=native``.

Environment switches:

``FASTWS_BUILD_EXTENSION=no``
    Build a pure-Python package on purpose. Otherwise a failed compile fails
    the build (there is no silent fallback).
``FASTWS_SANITIZE=1``
    Build with AddressSanitizer and UndefinedBehaviorSanitizer (``-O1 -g``).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
CSRC = "csrc"
ISAS = ("sse2", "avx2", "avx512", "neon")

_AVX2_GCC = ["-mavx2", "-mbmi", "-mbmi2", "-mlzcnt", "-mpopcnt"]
# Flags per ISA; the matching FWS_CPU_* bit in csrc/fastws_cpu.h promises
# every feature listed here.
GCC_ISA_FLAGS: dict[str, list[str]] = {
    "sse2": ["-msse2"],
    "avx2": _AVX2_GCC,
    "avx512": [
        *_AVX2_GCC,
        "-mavx512f",
        "-mavx512bw",
        "-mavx512vl",
    ],
    "neon": [],  # baseline on AArch64
}
# Files that need more than their ISA's base set; their dispatcher checks
# the extra bit (FWS_CPU_AVX512VBMI).
GCC_FILE_EXTRA: dict[str, list[str]] = {
    "utf8_avx512.c": ["-mavx512vbmi"],
}
MSVC_ISA_FLAGS: dict[str, list[str]] = {
    "sse2": [],
    "avx2": ["/arch:AVX2"],
    "avx512": ["/arch:AVX512"],
    "neon": [],
}


def _truthy(name: str, default: str = "") -> bool:
    return os.environ.get(name, default).strip().lower() not in ("", "0", "no", "false", "off")


def _want_extension() -> bool:
    return _truthy("FASTWS_BUILD_EXTENSION", "yes")


def _sanitize() -> bool:
    return _truthy("FASTWS_SANITIZE")


def _target_is_x86() -> bool:
    if sys.platform == "darwin" and os.environ.get("ARCHFLAGS"):
        # macOS cross builds (cibuildwheel) name the target in ARCHFLAGS.
        archs = set(os.environ["ARCHFLAGS"].split()) - {"-arch"}
        if len(archs) > 1:
            raise RuntimeError(
                "fastws: build one architecture at a time (per-ISA files need "
                f"per-architecture flags), got ARCHFLAGS={os.environ['ARCHFLAGS']!r}"
            )
        return archs <= {"x86_64", "i386"}
    machine = platform.machine().lower()
    return machine in ("x86_64", "amd64", "i386", "i486", "i586", "i686", "x86")


def _isa_of(path: str) -> str | None:
    stem = Path(path).stem
    for isa in ISAS:
        if stem.endswith("_" + isa):
            return isa
    return None


def _kernel_sources() -> tuple[list[str], list[str]]:
    """(C sources, include dirs), paths relative to this file."""
    sources = sorted(
        str(p.relative_to(HERE)).replace(os.sep, "/") for p in (HERE / CSRC).glob("*.c")
    )
    return sources, [CSRC]


# Extension name -> kernel C files compiled by BuildExt (cythonize may copy
# the Extension objects, so this is kept outside them).
_KERNELS: dict[str, list[str]] = {}


class BuildExt(build_ext):
    """Compiles csrc/*.c separately (each ISA file with its own flags)."""

    def build_extension(self, ext: Extension) -> None:
        kernel_sources = _KERNELS.get(ext.name, [])
        if kernel_sources:
            ext.extra_objects = list(ext.extra_objects or []) + self._compile_kernels(
                ext, kernel_sources
            )
        super().build_extension(ext)

    def _flags(self, src: str) -> list[str]:
        msvc = self.compiler.compiler_type == "msvc"
        isa = _isa_of(src)
        if msvc:
            flags = ["/O2", "/std:c11", "/W3"]
            if isa:
                flags += MSVC_ISA_FLAGS[isa] if _target_is_x86() else []
            return flags
        opt = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
        flags = ["-std=c11", "-Wall", "-Wextra", *(opt if _sanitize() else ["-O3"])]
        if isa in ("sse2", "avx2", "avx512") and _target_is_x86():
            flags += GCC_ISA_FLAGS[isa] + GCC_FILE_EXTRA.get(Path(src).name, [])
        return flags

    def _compile_kernels(self, ext: Extension, sources: list[str]) -> list[str]:
        objects: list[str] = []
        for src in sources:
            objects += self.compiler.compile(
                [src],
                output_dir=self.build_temp,
                include_dirs=ext.include_dirs,
                extra_postargs=self._flags(src),
                debug=self.debug,
                depends=ext.depends,
            )
        return objects


def _extensions() -> list[Extension]:
    if not _want_extension():
        return []
    from Cython.Build import cythonize  # required: fail loudly when missing

    kernels, include_dirs = _kernel_sources()
    headers = sorted(
        str(p.relative_to(HERE)).replace(os.sep, "/") for p in (HERE / CSRC).glob("*.h")
    )
    msvc_like = sys.platform == "win32"
    if msvc_like:
        compile_args: list[str] = ["/O2"]
        link_args: list[str] = []
    elif _sanitize():
        compile_args = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
        link_args = ["-fsanitize=address,undefined"]
    else:
        compile_args = ["-O3"]
        link_args = []
    ext = Extension(
        "fastws._speedups",
        sources=["fastws/_speedups.pyx"],
        include_dirs=include_dirs,
        depends=[*kernels, *headers, "fastws/_recycle.h"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    _KERNELS[ext.name] = kernels
    # The frame reader: fastws/_reader_py.py compiled (through the link
    # _reader_c.py) with the declarations of _reader_c.pxd.
    reader = Extension(
        "fastws._reader_c",
        sources=["fastws/_reader_c.py"],
        include_dirs=include_dirs,
        depends=["fastws/_reader_c.pxd", "fastws/_speedups.pxd"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    directives = {
        "language_level": 3,
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "embedsignature": True,
        "embedsignature.format": "clinic",  # inspect.signature() works
        "binding": False,  # plain builtin functions: cheaper calls
    }
    extensions: list[Extension] = cythonize(  # type: ignore[no-untyped-call]
        [ext], compiler_directives={**directives, "freethreading_compatible": True}
    )
    # The reader's types come from its .pxd alone, not from its annotations.
    extensions += cythonize(  # type: ignore[no-untyped-call]
        [reader], compiler_directives={**directives, "annotation_typing": False}
    )
    return extensions


def _setup_kwargs() -> dict[str, Any]:
    exts = _extensions()
    kwargs: dict[str, Any] = {"ext_modules": exts}
    if exts:
        kwargs["cmdclass"] = {"build_ext": BuildExt}
    return kwargs


setup(**_setup_kwargs())
