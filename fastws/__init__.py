"""fastws: fast, correct WebSockets for Python.

The hot paths (masking, UTF-8 validation, frame headers) are C kernels with a
pure-Python twin; :data:`implementation` says which one is live. The asyncio
server and client (:func:`serve`, :func:`connect`) are imported on first use,
so ``import fastws`` stays cheap for code that only needs the kernels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fastws._impl import (
    Utf8Validator,
    apply_mask,
    decode_header,
    encode_frame,
    encode_header,
    implementation,
    mask_inplace,
    validate_utf8,
)
from fastws.exceptions import (
    FastWSError,
    InvalidHandshake,
    InvalidState,
    PayloadTooBig,
    ProtocolError,
    Utf8Error,
)

if TYPE_CHECKING:
    from fastws.asyncio import (
        ConnectionClosed,
        ConnectionClosedError,
        ConnectionClosedOK,
        connect,
        serve,
        unix_connect,
        unix_serve,
    )

__version__ = "0.1.0"

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "FastWSError",
    "InvalidHandshake",
    "InvalidState",
    "PayloadTooBig",
    "ProtocolError",
    "Utf8Error",
    "Utf8Validator",
    "__version__",
    "apply_mask",
    "connect",
    "decode_header",
    "encode_frame",
    "encode_header",
    "implementation",
    "mask_inplace",
    "serve",
    "unix_connect",
    "unix_serve",
    "validate_utf8",
]

_LAZY = frozenset(
    {
        "ConnectionClosed",
        "ConnectionClosedError",
        "ConnectionClosedOK",
        "connect",
        "serve",
        "unix_connect",
        "unix_serve",
    }
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module("fastws.asyncio"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastws' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
