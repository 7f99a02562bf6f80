"""The one place that decides which kernels and which frame reader are live.

The C extension (``fastws._speedups``) is used when it imports; the
pure-Python twin (``fastws._kernels_py``) is used when the extension is
missing or when the environment variable ``FASTWS_NO_EXTENSIONS`` is set to a
non-empty value other than ``0``. Both export exactly the same names with the
same behaviour; :data:`implementation` says which one is live, e.g.
``"c/avx512"`` or ``"python"``. The frame reader follows: its compiled build
(``fastws._reader_c``) with the C kernels, its source (``fastws._reader_py``)
with the pure-Python ones.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastws._reader_py import (
        BinaryMessage,
        MessageChunk,
        MessageQueue,
        Reader,
        TextMessage,
    )

__all__ = [
    "BinaryMessage",
    "MessageChunk",
    "MessageQueue",
    "PayloadBuilder",
    "Reader",
    "TextMessage",
    "Utf8Validator",
    "apply_mask",
    "decode_header",
    "encode_frame",
    "encode_header",
    "frame_message",
    "implementation",
    "mask_inplace",
    "validate_utf8",
]


def _forced_pure() -> bool:
    value = os.environ.get("FASTWS_NO_EXTENSIONS", "")
    return value not in ("", "0")


def _load() -> tuple[ModuleType, str]:
    if not _forced_pure():
        try:
            _speedups = importlib.import_module("fastws._speedups")
        except ImportError as exc:
            # A missing extension is expected for a pure-Python install; one
            # that exists but cannot load is a broken install: say so.
            if getattr(exc, "name", None) != "fastws._speedups":
                warnings.warn(
                    f"fastws C extension failed to load ({exc}); "
                    "using the much slower pure-Python kernels",
                    RuntimeWarning,
                    stacklevel=3,
                )
        else:
            return _speedups, "c/" + _speedups.simd_level()
    from fastws import _kernels_py

    return _kernels_py, "python"


if TYPE_CHECKING:
    # Type checkers see the pure-Python twin, whose functions are fully
    # annotated; the extension has the same signatures (fastws/_speedups.pyi,
    # which stubtest checks against the built module).
    from fastws import _kernels_py as _kernels

    implementation: str
else:
    _kernels, implementation = _load()

apply_mask = _kernels.apply_mask
mask_inplace = _kernels.mask_inplace
validate_utf8 = _kernels.validate_utf8
Utf8Validator = _kernels.Utf8Validator
decode_header = _kernels.decode_header
encode_header = _kernels.encode_header
encode_frame = _kernels.encode_frame
frame_message = _kernels.frame_message
PayloadBuilder = _kernels.PayloadBuilder


def _load_reader() -> ModuleType:
    if implementation != "python":
        try:
            return importlib.import_module("fastws._reader_c")
        except ImportError as exc:
            # Built together with the kernels: one without the other is a
            # broken install.
            raise ImportError(
                f"fastws: the C kernels are built but the compiled frame reader is not ({exc})"
            ) from exc
    return importlib.import_module("fastws._reader_py")


_reader = _load_reader()
if not TYPE_CHECKING:
    Reader = _reader.Reader
    TextMessage = _reader.TextMessage
    BinaryMessage = _reader.BinaryMessage
    MessageChunk = _reader.MessageChunk
    MessageQueue = _reader.MessageQueue
