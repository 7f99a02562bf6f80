# Type stub for the C extension fastws._speedups (see docs/kernels.md).
import sys

if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:
    from typing import Protocol

    class Buffer(Protocol):
        # Anything that supports the buffer protocol (bytes, bytearray, ...).
        def __buffer__(self, flags: int, /) -> memoryview: ...

__all__ = [
    "Utf8Validator",
    "apply_mask",
    "decode_header",
    "deliver_messages",
    "encode_frame",
    "encode_header",
    "frame_message",
    "mask_inplace",
    "parse_messages",
    "simd_level",
    "utf8_simd_level",
    "validate_utf8",
]

def simd_level() -> str: ...
def utf8_simd_level() -> str: ...
def apply_mask(data: Buffer, mask: Buffer) -> bytes: ...
def mask_inplace(buffer: Buffer, mask: Buffer, phase: int = 0) -> None: ...
def validate_utf8(data: Buffer) -> bool: ...

class Utf8Validator:
    def __init__(self) -> None: ...
    def feed(self, data: Buffer, final: bool = False) -> None: ...
    def reset(self) -> None: ...
    @property
    def position(self) -> int: ...
    @property
    def complete(self) -> bool: ...

def decode_header(
    data: Buffer, offset: int = 0
) -> tuple[bool, int, int, int, bytes | None, int] | None: ...
def encode_header(
    fin: bool,
    opcode: int,
    payload_length: int,
    mask: Buffer | None = None,
    rsv: int = 0,
) -> bytes: ...
def encode_frame(
    fin: bool,
    opcode: int,
    payload: Buffer,
    mask: Buffer | None = None,
    rsv: int = 0,
) -> bytes: ...
def parse_messages(
    buf: Buffer,
    pos: int,
    is_server: bool,
    max_size: int,
    events: list[object],
    text_cls: type,
    binary_cls: type,
) -> int: ...
def deliver_messages(
    buf: Buffer,
    pos: int,
    is_server: bool,
    max_size: int,
    target: object,
    attr: str,
    failures: list[Exception],
) -> int: ...
def frame_message(
    out: list[bytes], message: object, mask: Buffer | None, split_at: int
) -> bool: ...

class PayloadBuilder:
    def __init__(self, size: int, mask: Buffer | None = None) -> None: ...
    @property
    def size(self) -> int: ...
    @property
    def filled(self) -> int: ...
    def feed(self, data: Buffer, start: int = 0) -> int: ...
    def view(self, start: int = 0) -> memoryview: ...
    def result(self) -> bytes: ...

def _recycled() -> tuple[int, int, int, int, int]: ...
def _force_isa(name: str) -> bool: ...
