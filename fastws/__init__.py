"""fastws: fast, correct WebSockets for Python.

The hot paths (masking, UTF-8 validation, frame headers) are C kernels with a
pure-Python twin; :data:`implementation` says which one is live.
"""

from __future__ import annotations

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
from fastws.exceptions import FastWSError, Utf8Error

__version__ = "0.1.0"

__all__ = [
    "FastWSError",
    "Utf8Error",
    "Utf8Validator",
    "__version__",
    "apply_mask",
    "decode_header",
    "encode_frame",
    "encode_header",
    "implementation",
    "mask_inplace",
    "validate_utf8",
]
