"""Frame layout, opcodes and close codes (RFC 6455 section 5 and 7.4).

Frame header layout (RFC 6455 section 5.2)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-------+-+-------------+-------------------------------+
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
    |N|V|V|V|       |S|             |   (if payload len==126/127)   |
    | |1|2|3|       |K|             |                               |
    +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
    |     Extended payload length continued, if payload len == 127  |
    + - - - - - - - - - - - - - - - +-------------------------------+
    |                               |Masking-key, if MASK set to 1  |
    +-------------------------------+-------------------------------+
    | Masking-key (continued)       |          Payload Data         |
    +-------------------------------- - - - - - - - - - - - - - - - +

Byte-level encoding and decoding live in the kernels
(:func:`fastws.decode_header`, :func:`fastws.encode_header`,
:func:`fastws.encode_frame`); this module holds the protocol-level rules.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

from fastws.exceptions import ProtocolError

__all__ = [
    "CLOSE_CODE_EXPLANATIONS",
    "MAX_CONTROL_PAYLOAD",
    "RSV1",
    "RSV2",
    "RSV3",
    "CloseCode",
    "Opcode",
    "build_close_payload",
    "is_control",
    "is_data",
    "is_valid_received_close_code",
    "is_valid_sent_close_code",
    "parse_close_payload",
]

#: RSV bit values as reported by :func:`fastws.decode_header` (``rsv`` field).
RSV1 = 4
RSV2 = 2
RSV3 = 1

#: Control frames carry at most 125 bytes of payload (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2). 0x3-0x7 and 0xB-0xF are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


def is_control(opcode: int) -> bool:
    """Return whether ``opcode`` denotes a control frame (high bit of the opcode set)."""
    return opcode >= 0x8


def is_data(opcode: int) -> bool:
    """Return whether ``opcode`` is a (non-reserved) data opcode: continuation, text, binary."""
    return opcode <= 0x2


class CloseCode(enum.IntEnum):
    """Close status codes registered by RFC 6455 section 7.4.1 and IANA."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire
    ABNORMAL_CLOSURE = 1006  # never on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


CLOSE_CODE_EXPLANATIONS: dict[int, str] = {
    CloseCode.NORMAL_CLOSURE: "OK",
    CloseCode.GOING_AWAY: "going away",
    CloseCode.PROTOCOL_ERROR: "protocol error",
    CloseCode.UNSUPPORTED_DATA: "unsupported data",
    CloseCode.NO_STATUS_RCVD: "no status received",
    CloseCode.ABNORMAL_CLOSURE: "connection closed abnormally",
    CloseCode.INVALID_DATA: "invalid frame payload data",
    CloseCode.POLICY_VIOLATION: "policy violation",
    CloseCode.MESSAGE_TOO_BIG: "message too big",
    CloseCode.MANDATORY_EXTENSION: "mandatory extension",
    CloseCode.INTERNAL_ERROR: "internal error",
    CloseCode.SERVICE_RESTART: "service restart",
    CloseCode.TRY_AGAIN_LATER: "try again later",
    CloseCode.BAD_GATEWAY: "bad gateway",
    CloseCode.TLS_HANDSHAKE: "TLS handshake failure",
}

# Plain ints of the opcodes and close codes, for the hot paths (an enum
# member costs an attribute lookup) and for the compiled frame reader (which
# types them as C ints). Each is its enum member's value.
OP_CONTINUATION: Final = int(Opcode.CONTINUATION)
OP_TEXT: Final = int(Opcode.TEXT)
OP_BINARY: Final = int(Opcode.BINARY)
OP_CLOSE: Final = int(Opcode.CLOSE)
OP_PING: Final = int(Opcode.PING)
OP_PONG: Final = int(Opcode.PONG)
CLOSE_NORMAL: Final = int(CloseCode.NORMAL_CLOSURE)
CLOSE_GOING_AWAY: Final = int(CloseCode.GOING_AWAY)
CLOSE_PROTOCOL_ERROR: Final = int(CloseCode.PROTOCOL_ERROR)
CLOSE_NO_STATUS: Final = int(CloseCode.NO_STATUS_RCVD)
CLOSE_ABNORMAL: Final = int(CloseCode.ABNORMAL_CLOSURE)
CLOSE_INVALID_DATA: Final = int(CloseCode.INVALID_DATA)
CLOSE_TOO_BIG: Final = int(CloseCode.MESSAGE_TOO_BIG)
CLOSE_INTERNAL_ERROR: Final = int(CloseCode.INTERNAL_ERROR)

# Codes that may appear in a close frame on the wire: the registered ones
# except 1004 (reserved), 1005, 1006 and 1015 (never sent), plus 3000-4999
# (libraries / frameworks / private use).
_WIRE_CODES = frozenset(CloseCode) - {
    CloseCode.NO_STATUS_RCVD,
    CloseCode.ABNORMAL_CLOSURE,
    CloseCode.TLS_HANDSHAKE,
}


def is_valid_received_close_code(code: int) -> bool:
    """Return whether a close code received in a close frame is acceptable.

    Codes below 1000, 1004-1006, 1015, the unassigned 1016-2999 and codes of
    5000 and above are invalid: receiving one fails the connection with 1002.
    """
    return code in _WIRE_CODES or 3000 <= code <= 4999


def is_valid_sent_close_code(code: int) -> bool:
    """Return whether ``code`` may be put in a close frame we send (same set as received)."""
    return is_valid_received_close_code(code)


_pack_code = struct.Struct("!H").pack
_unpack_code = struct.Struct("!H").unpack_from


def build_close_payload(code: int | None, reason: str = "") -> bytes:
    """Build the payload of a close frame.

    Args:
        code: the close code, or ``None`` (or 1005) for an empty payload.
        reason: UTF-8 reason; only allowed with a code.

    Returns:
        The payload (``b""`` or 2-byte code + UTF-8 reason), at most 125 bytes.

    Raises:
        ValueError: invalid code, reason without a code, or payload too long.
    """
    if code is None or code == 1005:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_sent_close_code(code):
        raise ValueError(f"invalid close code {code}")
    payload = _pack_code(code) + reason.encode("utf-8")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError("close reason too long (the close payload is limited to 125 bytes)")
    return payload


def parse_close_payload(payload: bytes | bytearray | memoryview) -> tuple[int, str]:
    """Parse and validate a received close frame's payload.

    Args:
        payload: the (unmasked) close frame payload.

    Returns:
        ``(code, reason)``; ``(1005, "")`` for an empty payload.

    Raises:
        ProtocolError: 1002 for a 1-byte payload or an invalid code, 1007 for
            a reason that is not UTF-8.
    """
    n = len(payload)
    if n == 0:
        return 1005, ""
    if n == 1:
        raise ProtocolError(1002, "close frame payload of 1 byte")
    (code,) = _unpack_code(payload)
    if not is_valid_received_close_code(code):
        raise ProtocolError(1002, f"invalid close code {code}")
    try:
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(1007, "close reason is not valid UTF-8") from None
    return code, reason
