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
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    FastWSError,
    InvalidHandshake,
    InvalidMessage,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    SecurityError,
    Utf8Error,
)

if TYPE_CHECKING:
    from fastws.asyncio import connect, serve, unix_connect, unix_serve
else:
    # The asyncio front-end is imported on first use, so that ``import
    # fastws`` stays cheap for code that only needs the kernels. These
    # forwarders replace themselves with the real functions on their first
    # call. (Not a module __getattr__: CPython does not specialize attribute
    # lookups on a module that has one, which made ``fastws.apply_mask(...)``
    # cost about 18 ns more per call.)

    def _forwarder(name: str) -> Any:
        def forward(*args: Any, **kwargs: Any) -> Any:
            function = getattr(importlib.import_module("fastws.asyncio"), name)
            globals()[name] = function
            return function(*args, **kwargs)

        forward.__name__ = forward.__qualname__ = name
        forward.__doc__ = f"fastws.asyncio.{name} (imported on first use)."
        return forward

    connect = _forwarder("connect")
    serve = _forwarder("serve")
    unix_connect = _forwarder("unix_connect")
    unix_serve = _forwarder("unix_serve")

__version__ = "0.1.0"

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "FastWSError",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "SecurityError",
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
