"""PayloadBuilder (a large frame assembled from reads) on both implementations."""

from __future__ import annotations

import array
import itertools
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

KEY = b"\x9a\x3c\x51\xe7"


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


@given(
    payload=st.binary(max_size=3000),
    masked=st.booleans(),
    cuts=st.lists(st.integers(0, 3000), max_size=8),
    junk=st.binary(max_size=9),
)
def test_pieces_give_the_unmasked_payload(
    kernels: ModuleType, payload: bytes, masked: bool, cuts: list[int], junk: bytes
) -> None:
    wire = _xor(payload, KEY) if masked else payload
    builder = kernels.PayloadBuilder(len(payload), KEY if masked else None)
    bounds = sorted({0, len(wire), *(c for c in cuts if c <= len(wire))})
    for lo, hi in itertools.pairwise(bounds):
        # Each piece sits after some other bytes, as in a read buffer.
        assert builder.feed(junk + wire[lo:hi], len(junk)) == hi - lo
        assert builder.filled == hi
        assert bytes(builder.view(lo)) == payload[lo:hi]
    if not payload:
        assert builder.feed(b"x") == 0
    assert bytes(builder.view()) == payload
    assert builder.result() == payload


def test_feed_stops_at_the_size_and_reports_what_it_took(kernels: ModuleType) -> None:
    builder = kernels.PayloadBuilder(5, KEY)
    assert builder.feed(_xor(b"hello world", KEY)) == 5
    assert builder.feed(b"more") == 0
    assert builder.result() == b"hello"


def test_many_buffer_types(kernels: ModuleType) -> None:
    builder = kernels.PayloadBuilder(12)
    builder.feed(bytearray(b"abcd"))
    builder.feed(memoryview(b"xxefgh"), 2)
    builder.feed(array.array("B", b"ijkl"))
    assert builder.result() == b"abcdefghijkl"


def test_large_payload_across_the_nogil_threshold(kernels: ModuleType) -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB, pieces of 100,000
    wire = bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))
    builder = kernels.PayloadBuilder(len(payload), KEY)
    for i in range(0, len(wire), 100_000):
        builder.feed(wire[i : i + 100_000])
    assert builder.result() == payload


def test_errors(kernels: ModuleType) -> None:
    with pytest.raises(ValueError, match="negative"):
        kernels.PayloadBuilder(-1)
    with pytest.raises(ValueError, match="4 bytes"):
        kernels.PayloadBuilder(3, b"abc")
    with pytest.raises(TypeError):
        kernels.PayloadBuilder(3, 1234)
    builder = kernels.PayloadBuilder(3)
    with pytest.raises(TypeError):
        builder.feed("text")
    with pytest.raises(ValueError, match="outside"):
        builder.feed(b"ab", 3)
    with pytest.raises(ValueError, match="outside"):
        builder.feed(b"ab", -1)
    builder.feed(b"ab")
    with pytest.raises(ValueError, match="incomplete: 2 of 3"):
        builder.result()
    builder.feed(b"c")
    view = builder.view()
    with pytest.raises(TypeError):
        view[0] = 0  # read-only
    assert builder.result() == b"abc"
    for call in (builder.result, builder.view, lambda: builder.feed(b"x")):
        with pytest.raises(ValueError, match="already taken"):
            call()
