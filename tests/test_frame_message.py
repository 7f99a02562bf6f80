"""frame_message (how a whole message is framed for sending) on both implementations.

Every message type it takes, with and without a mask and on both sides of
the split size, must give the bytes of ``encode_frame`` for the same payload,
as one item or as header and payload; both implementations must append the
same items, and refuse the same inputs with the same errors.
"""

from __future__ import annotations

import array
import sys
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastws._kernels_py import encode_frame as pure_encode_frame

KEY = b"\x37\xfa\x21\x3d"


def expected(message: object, mask: bytes | None, split_at: int) -> list[bytes]:
    """The items frame_message must append, from its definition (via the pure encode_frame)."""
    if isinstance(message, str):
        opcode, payload = 1, str.encode(message)
    else:
        opcode, payload = 2, message  # type: ignore[assignment]
    frame = pure_encode_frame(True, opcode, payload, mask)
    if mask is None and (isinstance(message, str) or type(message) is bytes):
        if len(payload) >= split_at:
            return [frame[: len(frame) - len(payload)], bytes(payload)]
    return [frame]


class Str(str):
    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # never called
        raise AssertionError("frame_message must not call an override")


class Bytes(bytes):
    pass


WRAPS = [
    ("str", lambda b: b.decode("utf-8", "replace")),
    ("bytes", bytes),
    ("bytearray", bytearray),
    ("memoryview", memoryview),
    ("sliced memoryview", lambda b: memoryview(b"ab" + b + b"cd")[2:-2]),
    ("bytes subclass", Bytes),
    ("str subclass", lambda b: Str(b.decode("utf-8", "replace"))),
]

PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.sampled_from([b"a" * 125, b"a" * 126, b"\xc3\xa9" * 40000, b"x" * 70000]),
)


@given(
    PAYLOADS,
    st.sampled_from(WRAPS),
    st.sampled_from([None, KEY]),
    st.sampled_from([0, 1, 126, 2048, sys.maxsize]),
)
def test_matches_definition(
    kernels: ModuleType, payload: bytes, wrap: Any, mask: bytes | None, split_at: int
) -> None:
    # Each implementation against the definition, so also against each other.
    message = wrap[1](payload)
    out: list[bytes] = [b"before"]
    assert kernels.frame_message(out, message, mask, split_at) is True
    assert out[0] == b"before"
    assert out[1:] == expected(message, mask, split_at), wrap[0]
    assert all(type(item) is bytes for item in out)
    if len(out) == 3 and type(message) is bytes:
        assert out[2] is message  # not copied


@pytest.mark.parametrize(
    "message", [None, 1, 1.5, ["a"], ("a",), {"a": 1}, array.array("B", b"ab"), object()]
)
def test_other_types_are_refused(kernels: ModuleType, message: object) -> None:
    out: list[bytes] = []
    assert kernels.frame_message(out, message, None, 0) is False
    assert kernels.frame_message(out, message, KEY, 0) is False
    assert out == []


def test_errors(kernels: ModuleType) -> None:
    out: list[bytes] = []
    with pytest.raises(UnicodeEncodeError):
        kernels.frame_message(out, "lone \ud800", None, 10)
    with pytest.raises(UnicodeEncodeError):
        kernels.frame_message(out, "lone \ud800", KEY, 0)
    with pytest.raises(TypeError, match="C-contiguous"):
        kernels.frame_message(out, memoryview(b"abcdef")[::2], None, 10)
    with pytest.raises(ValueError, match="mask must be 4 bytes"):
        kernels.frame_message(out, b"x", b"abc", 10)
    with pytest.raises(TypeError, match="out must be a list"):
        kernels.frame_message((), b"x", None, 10)
    with pytest.raises(TypeError):
        kernels.frame_message(out, b"x", None, "10")
    assert out == []


def test_text_is_utf8(kernels: ModuleType) -> None:
    out: list[bytes] = []
    kernels.frame_message(out, "h\u00e9\u20ac\U0001f600", None, 2048)
    assert out == [b"\x81\x0a" + "h\u00e9\u20ac\U0001f600".encode()]
    out.clear()
    kernels.frame_message(out, "", KEY, 2048)
    kernels.frame_message(out, b"", KEY, 2048)
    assert out == [b"\x81\x80" + KEY, b"\x82\x80" + KEY]
