"""Opcodes, close codes and close payloads (fastws.frames)."""

from __future__ import annotations

import pytest

from fastws.exceptions import ProtocolError
from fastws.frames import (
    CloseCode,
    Opcode,
    build_close_payload,
    is_control,
    is_data,
    is_valid_received_close_code,
    is_valid_sent_close_code,
    parse_close_payload,
)


def test_opcodes() -> None:
    assert [int(o) for o in Opcode] == [0, 1, 2, 8, 9, 10]
    assert all(is_control(o) for o in (8, 9, 10, 11, 15))
    assert not any(is_control(o) for o in range(8))
    assert all(is_data(o) for o in (0, 1, 2))
    assert not any(is_data(o) for o in range(3, 16))


@pytest.mark.parametrize(
    "code",
    [
        1000,
        1001,
        1002,
        1003,
        1007,
        1008,
        1009,
        1010,
        1011,
        1012,
        1013,
        1014,
        3000,
        3999,
        4000,
        4999,
    ],
)
def test_valid_close_codes(code: int) -> None:
    assert is_valid_received_close_code(code)
    assert is_valid_sent_close_code(code)
    assert parse_close_payload(code.to_bytes(2, "big") + b"ok") == (code, "ok")


@pytest.mark.parametrize(
    "code", [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
def test_invalid_close_codes(code: int) -> None:
    assert not is_valid_received_close_code(code)
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(code.to_bytes(2, "big"))
    assert info.value.code == 1002
    with pytest.raises(ValueError):
        build_close_payload(code if code != 1005 else 1004)


def test_close_payload_rules() -> None:
    assert parse_close_payload(b"") == (1005, "")
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03")
    assert info.value.code == 1002
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(b"\x03\xe8\xff\xfe")
    assert info.value.code == 1007
    assert parse_close_payload(memoryview(b"\x03\xe8h\xc3\xa9")) == (1000, "hé")


def test_build_close_payload() -> None:
    assert build_close_payload(None) == b""
    assert build_close_payload(1005) == b""
    assert build_close_payload(1000) == b"\x03\xe8"
    assert build_close_payload(4000, "bye") == b"\x0f\xa0bye"
    assert len(build_close_payload(1000, "x" * 123)) == 125
    with pytest.raises(ValueError):
        build_close_payload(1000, "x" * 124)
    with pytest.raises(ValueError):
        build_close_payload(None, "reason without code")
    assert CloseCode.MESSAGE_TOO_BIG == 1009
