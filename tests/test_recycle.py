"""Large payloads made by the kernels: the C ones recycle them, which nobody may notice.

Every kernel that creates a payload or a frame of 128 KiB or more (or the
UTF-8 of a server's large ASCII text message) hands out a bytes object from a
small cache when one there is referenced by nothing else (see
``fws_new_bytes`` in the extension). These tests hold some results
and drop others while more are made, and check that a result that is still
referenced never changes, on both implementations; and, on the C one, that
dropped ones are reused, that the cache stays within its limits, and that a
reused object behaves like a new one (length, equality, hash).
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastws import _kernels_py

KEY = b"\x9a\x3c\x51\xe7"
BIG = 1 << 17  # the smallest payload the C kernels recycle


def _xor(data: bytes) -> bytes:
    n = len(data)
    key = int.from_bytes((KEY * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


def _masked_frame(payload: bytes) -> bytes:
    """A masked binary frame (as a client sends) with a 64-bit length."""
    return b"\x82\xff" + len(payload).to_bytes(8, "big") + KEY + _xor(payload)


def _no_control(opcode: int, payload: bytes) -> bool:
    raise AssertionError("no control frame expected")


def _producers(kernels: ModuleType) -> dict[str, Callable[[bytes], tuple[bytes, bytes]]]:
    """Ways to make a payload: each returns (result, what it must equal)."""

    def builder(payload: bytes) -> tuple[bytes, bytes]:
        b = kernels.PayloadBuilder(len(payload), KEY)
        wire = _xor(payload)
        half = len(wire) // 2
        b.feed(wire[:half])
        b.feed(memoryview(wire)[half:])
        return b.result(), payload

    def mask_bytes(payload: bytes) -> tuple[bytes, bytes]:
        return kernels.apply_mask(_xor(payload), KEY), payload

    def mask_buffer(payload: bytes) -> tuple[bytes, bytes]:
        return kernels.apply_mask(bytearray(_xor(payload)), KEY), payload

    def read(payload: bytes) -> tuple[bytes, bytes]:
        # The frame reader of the same build, on a whole frame in one read.
        module = "fastws._reader_py" if kernels is _kernels_py else "fastws._reader_c"
        reader = importlib.import_module(module).Reader(True, -1, -1, -1, False, _no_control)
        assert reader.feed(_masked_frame(payload)) is None
        (event,) = reader.events
        assert type(event).__name__ == "BinaryMessage"
        return event.data, payload

    def encode(payload: bytes) -> tuple[bytes, bytes]:
        frame: bytes = kernels.encode_frame(True, 2, payload, KEY)
        return frame, _masked_frame(payload)

    def frame(payload: bytes) -> tuple[bytes, bytes]:
        out: list[bytes] = []
        assert kernels.frame_message(out, payload, KEY, 1 << 30)
        return out[0], _masked_frame(payload)

    def frame_text(payload: bytes) -> tuple[bytes, bytes]:
        # A server's text frame: header, then the UTF-8 payload as its own item
        # (a large ASCII text is copied into a recycled object).
        text = payload.decode("latin-1")
        out: list[bytes] = []
        assert kernels.frame_message(out, text, None, 2048)
        assert len(out) == 2
        return out[1], text.encode()

    return {
        "builder": builder,
        "mask_bytes": mask_bytes,
        "mask_buffer": mask_buffer,
        "read": read,
        "encode": encode,
        "frame": frame,
        "frame_text": frame_text,
    }


PRODUCERS = list(_producers(_kernels_py))


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(PRODUCERS),
            st.integers(BIG // 2, 3 * BIG),  # across the threshold, and half/whole capacity
            st.integers(0, 255),
            st.booleans(),  # keep it
            st.booleans(),  # hash it (a reused object must not keep the old hash)
        ),
        min_size=1,
        max_size=14,
    )
)
def test_held_results_never_change(
    kernels: ModuleType, steps: list[tuple[str, int, int, bool, bool]]
) -> None:
    producers = _producers(kernels)
    held: list[tuple[bytes, bytes, int]] = []
    views: list[tuple[memoryview, bytes]] = []
    for i, (name, size, fill, keep, hash_it) in enumerate(steps):
        payload = bytes([fill]) * size
        result, expected = producers[name](payload)
        assert result == expected
        assert len(result) == len(expected)
        if hash_it:
            assert hash(result) == hash(bytes(expected))
        if keep:
            held.append((result, expected, hash(expected)))
        elif i % 3 == 0:
            views.append((memoryview(result), expected))  # a view keeps it too
        del result
        for old, want, want_hash in held:
            assert old == want
            assert hash(old) == want_hash
        for view, want in views:
            assert view == want


@pytest.fixture
def recycled(speedups: ModuleType) -> ModuleType:
    if speedups._recycled()[2] == 0:
        pytest.skip("this build does not recycle payloads (free-threaded)")
    # Earlier tests (or their garbage) may still hold cached payloads, which
    # leaves no room in the cache: start from an empty one.
    gc.collect()
    speedups._recycled_clear()
    assert speedups._recycled()[:2] == (0, 0)
    return speedups


@pytest.mark.parametrize("name", PRODUCERS)
def test_a_dropped_result_is_reused(recycled: ModuleType, name: str) -> None:
    produce = _producers(recycled)[name]
    first, _ = produce(b"a" * BIG * 2)
    first_id = id(first)
    hash(first)
    del first
    again, expected = produce(b"b" * (BIG * 2 - 7))  # fits: at least half of the capacity
    assert id(again) == first_id
    assert again == expected
    assert len(again) == len(expected)
    assert hash(again) == hash(bytes(expected))
    assert again + b"!" == expected + b"!"


def test_a_held_result_is_not_reused(recycled: ModuleType) -> None:
    produce = _producers(recycled)["builder"]
    held, _ = produce(b"x" * BIG)
    view = memoryview(produce(b"y" * BIG)[0])
    ids = {id(held), id(view.obj)}
    for fill in b"pq":
        other, _ = produce(bytes([fill]) * BIG)
        assert id(other) not in ids
        del other
    assert held == b"x" * BIG
    assert view == b"y" * BIG


def test_small_and_much_smaller_payloads_are_new_objects(recycled: ModuleType) -> None:
    produce = _producers(recycled)["mask_bytes"]
    first, _ = produce(b"a" * BIG * 4)
    first_id = id(first)
    del first
    small, _ = produce(b"b" * (BIG - 1))  # below the threshold
    assert id(small) != first_id
    smaller, _ = produce(b"c" * BIG)  # less than half of the capacity
    assert id(smaller) != first_id
    assert smaller == b"c" * BIG


def test_the_cache_stays_within_its_limits(recycled: ModuleType) -> None:
    _, _, smallest, most, limit = recycled._recycled()
    produce = _producers(recycled)["mask_bytes"]

    def check(sizes: list[int], keep: bool) -> None:
        held = []
        for i, size in enumerate(sizes):
            result, _ = produce(bytes(size))
            if keep or i % 2:
                held.append(result)
            count, nbytes = recycled._recycled()[:2]
            assert count <= most
            assert nbytes <= limit

    # More objects than slots, some dropped; then more bytes than the
    # budget, all held so that none can make room.
    check([smallest + i * 4099 for i in range(most * 2)], keep=False)
    check([limit // 3 + i * 4099 for i in range(4)], keep=True)
    # One larger than the whole budget is never kept.
    before = recycled._recycled()
    huge, _ = produce(bytes(limit + 1))
    assert len(huge) == limit + 1
    assert recycled._recycled() == before
