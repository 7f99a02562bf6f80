"""apply_mask and mask_inplace, on every implementation and instruction set."""

from __future__ import annotations

import array
import mmap
import random
from itertools import pairwise
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

KEY = b"\x12\x34\x56\x78"

# One translation table per key byte: bytes.translate applies ``b ^ k`` to
# every byte, so the reference below is obviously right and still fast.
_XOR_TABLES = [bytes(i ^ k for i in range(256)) for k in range(256)]


def reference_mask(data: bytes, key: bytes, phase: int = 0) -> bytes:
    """``data[i] ^ key[(phase + i) % 4]``, written the obvious way."""
    out = bytearray(data)
    for j in range(4):
        out[j::4] = bytes(data[j::4]).translate(_XOR_TABLES[key[(phase + j) % 4]])
    return bytes(out)


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


lengths = st.one_of(st.integers(0, 300), st.integers(0, 70_000))
seeds = st.integers(0, 2**32 - 1)
keys = st.binary(min_size=4, max_size=4)
phases = st.integers(0, 3)
offsets = st.integers(0, 63)


def test_reference_is_right() -> None:
    data = bytes(range(256)) * 3
    for phase in range(4):
        expected = bytes(b ^ KEY[(phase + i) % 4] for i, b in enumerate(data))
        assert reference_mask(data, KEY, phase) == expected


def test_forced_isa_is_reported(simd_kernels: ModuleType, request: pytest.FixtureRequest) -> None:
    name = request.node.callspec.params["simd_kernels"]
    if name.startswith("c-") and name != "c-auto":
        assert simd_kernels.simd_level() == name[2:]


# -- differential tests against the reference --------------------------------


@given(n=lengths, seed=seeds, key=keys)
def test_apply_mask_matches_reference(
    simd_kernels: ModuleType, n: int, seed: int, key: bytes
) -> None:
    data = random_bytes(n, seed)
    expected = reference_mask(data, key)
    result = simd_kernels.apply_mask(data, key)
    assert type(result) is bytes
    assert result == expected
    assert simd_kernels.apply_mask(bytearray(data), bytearray(key)) == expected
    assert simd_kernels.apply_mask(memoryview(data), memoryview(key)) == expected


@given(n=lengths, seed=seeds, key=keys, phase=phases, offset=offsets)
def test_mask_inplace_matches_reference(
    simd_kernels: ModuleType, n: int, seed: int, key: bytes, phase: int, offset: int
) -> None:
    data = random_bytes(n, seed)
    guard = b"\xa5" * 64
    buf = bytearray(guard[:offset] + data + guard)
    assert simd_kernels.mask_inplace(memoryview(buf)[offset : offset + n], key, phase) is None
    assert buf[offset : offset + n] == reference_mask(data, key, phase)
    assert buf[:offset] == guard[:offset]
    assert buf[offset + n :] == guard


@given(n=lengths, seed=seeds, key=keys, offset=offsets)
def test_apply_mask_any_alignment(
    simd_kernels: ModuleType, n: int, seed: int, key: bytes, offset: int
) -> None:
    data = random_bytes(n + offset, seed)
    view = memoryview(data)[offset:]
    assert simd_kernels.apply_mask(view, key) == reference_mask(data[offset:], key)


@given(
    n=lengths,
    seed=seeds,
    key=keys,
    cuts=st.lists(st.integers(0, 70_000), max_size=8),
)
def test_split_unmasking_equals_one_shot(
    simd_kernels: ModuleType, n: int, seed: int, key: bytes, cuts: list[int]
) -> None:
    data = random_bytes(n, seed)
    masked = reference_mask(data, key)
    points = sorted({0, n, *(c % (n + 1) for c in cuts)})
    buf = bytearray(masked)
    view = memoryview(buf)
    phase = 0
    for lo, hi in pairwise(points):
        simd_kernels.mask_inplace(view[lo:hi], key, phase)
        phase = (phase + hi - lo) % 4
    assert buf == data
    # The copying form gives the same pieces when the key is rotated by hand.
    pieces = []
    phase = 0
    for lo, hi in pairwise(points):
        rotated = key[phase:] + key[:phase]
        pieces.append(simd_kernels.apply_mask(masked[lo:hi], rotated))
        phase = (phase + hi - lo) % 4
    assert b"".join(pieces) == data


def test_every_small_length_alignment_and_phase(simd_kernels: ModuleType) -> None:
    # Lengths across the 16/32/64-byte vector widths plus tails, at every
    # start alignment within a cache line, with every key phase.
    source = random_bytes(64 + 260, 1)
    for n in range(261):
        for offset in range(64):
            data = source[offset : offset + n]
            assert simd_kernels.apply_mask(memoryview(source)[offset : offset + n], KEY) == (
                reference_mask(data, KEY)
            ), (n, offset)
            for phase in range(4):
                buf = bytearray(source)
                simd_kernels.mask_inplace(memoryview(buf)[offset : offset + n], KEY, phase)
                assert buf[offset : offset + n] == reference_mask(data, KEY, phase), (
                    n,
                    offset,
                    phase,
                )
                assert buf[:offset] == source[:offset]
                assert buf[offset + n :] == source[offset + n :]


@pytest.mark.parametrize(
    "n", [65_535, 65_536, 65_537, 65_536 * 2 + 3, 1 << 20, (1 << 20) + 61, 3 * (1 << 20) + 1]
)
@pytest.mark.parametrize("offset", [0, 1, 7, 33])
def test_large_buffers(simd_kernels: ModuleType, n: int, offset: int) -> None:
    source = random_bytes(n + offset, n)
    data = source[offset:]
    assert simd_kernels.apply_mask(memoryview(source)[offset:], KEY) == reference_mask(data, KEY)
    for phase in (0, 3):
        buf = bytearray(source)
        simd_kernels.mask_inplace(memoryview(buf)[offset:], KEY, phase)
        assert buf[offset:] == reference_mask(data, KEY, phase)
        assert buf[:offset] == source[:offset]


def test_involution(simd_kernels: ModuleType) -> None:
    data = random_bytes(5000, 2)
    assert simd_kernels.apply_mask(simd_kernels.apply_mask(data, KEY), KEY) == data


def test_input_is_not_modified(simd_kernels: ModuleType) -> None:
    data = bytearray(random_bytes(1000, 3))
    before = bytes(data)
    simd_kernels.apply_mask(data, KEY)
    assert data == before


def test_empty(simd_kernels: ModuleType) -> None:
    assert simd_kernels.apply_mask(b"", KEY) == b""
    buf = bytearray()
    simd_kernels.mask_inplace(buf, KEY, 2)
    assert buf == b""


# -- buffer types --------------------------------------------------------------


def _data_buffers(data: bytes) -> list[object]:
    anon = mmap.mmap(-1, len(data))
    anon.write(data)
    return [
        data,
        bytearray(data),
        memoryview(data),
        memoryview(b"xx" + data + b"yy")[2:-2],
        array.array("B", data),
        array.array("i", data),  # 4-byte items: masked as raw bytes
        anon,
    ]


def test_apply_mask_buffer_types(simd_kernels: ModuleType) -> None:
    data = random_bytes(1024, 4)
    expected = reference_mask(data, KEY)
    for buf in _data_buffers(data):
        assert simd_kernels.apply_mask(buf, KEY) == expected, type(buf)
    for key in (KEY, bytearray(KEY), memoryview(KEY), array.array("B", KEY)):
        assert simd_kernels.apply_mask(data, key) == expected, type(key)


def test_mask_inplace_buffer_types(simd_kernels: ModuleType) -> None:
    data = random_bytes(1024, 5)
    expected = reference_mask(data, KEY, 1)
    targets: list[object] = [
        bytearray(data),
        memoryview(bytearray(data)),
        array.array("B", data),
        array.array("i", data),
    ]
    for target in targets:
        simd_kernels.mask_inplace(target, KEY, 1)
        assert bytes(target) == expected, type(target)  # type: ignore[call-overload]
    anon = mmap.mmap(-1, len(data))
    anon.write(data)
    simd_kernels.mask_inplace(anon, memoryview(KEY), 1)
    assert anon[:] == expected
    anon.close()


def test_non_contiguous_buffer_is_rejected(simd_kernels: ModuleType) -> None:
    strided = memoryview(bytearray(100))[::2]
    with pytest.raises(TypeError, match="contiguous"):
        simd_kernels.apply_mask(strided, KEY)
    with pytest.raises(TypeError, match="contiguous"):
        simd_kernels.mask_inplace(strided, KEY)
    with pytest.raises(TypeError, match="contiguous"):
        simd_kernels.apply_mask(b"data", memoryview(bytearray(8))[::2])


# -- bad arguments -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 3, 5, 8])
def test_mask_of_wrong_length(simd_kernels: ModuleType, size: int) -> None:
    message = f"mask must be 4 bytes long, got {size}"
    with pytest.raises(ValueError, match=message):
        simd_kernels.apply_mask(b"abcdef", bytes(size))
    with pytest.raises(ValueError, match=message):
        simd_kernels.mask_inplace(bytearray(b"abcdef"), bytearray(size))


@pytest.mark.parametrize("bad", ["abcd", None, 1234, 1.5, [1, 2, 3, 4]])
def test_non_buffer_arguments(simd_kernels: ModuleType, bad: object) -> None:
    with pytest.raises(TypeError):
        simd_kernels.apply_mask(bad, KEY)
    with pytest.raises(TypeError):
        simd_kernels.apply_mask(b"abcd", bad)
    with pytest.raises(TypeError):
        simd_kernels.mask_inplace(bad, KEY)
    with pytest.raises(TypeError):
        simd_kernels.mask_inplace(bytearray(b"abcd"), bad)


@pytest.mark.parametrize(
    "readonly",
    [b"abcdef", memoryview(b"abcdef"), memoryview(bytearray(b"abcdef")).toreadonly()],
    ids=["bytes", "memoryview-bytes", "readonly-view"],
)
def test_mask_inplace_needs_writable_buffer(simd_kernels: ModuleType, readonly: object) -> None:
    with pytest.raises(TypeError, match="buffer must be writable"):
        simd_kernels.mask_inplace(readonly, KEY)


def test_read_only_empty_buffer_is_rejected_too(simd_kernels: ModuleType) -> None:
    with pytest.raises(TypeError, match="buffer must be writable"):
        simd_kernels.mask_inplace(b"", KEY)


@pytest.mark.parametrize("phase", [4, -1, 5, 2**40])
def test_phase_out_of_range(simd_kernels: ModuleType, phase: int) -> None:
    with pytest.raises(ValueError):
        simd_kernels.mask_inplace(bytearray(b"abcdef"), KEY, phase)


@pytest.mark.parametrize("phase", ["1", None, 1.0])
def test_phase_of_wrong_type(simd_kernels: ModuleType, phase: object) -> None:
    with pytest.raises(TypeError):
        simd_kernels.mask_inplace(bytearray(b"abcdef"), KEY, phase)


def test_keyword_arguments(simd_kernels: ModuleType) -> None:
    buf = bytearray(b"abcdef")
    simd_kernels.mask_inplace(buf, KEY, phase=2)
    assert buf == reference_mask(b"abcdef", KEY, 2)


def test_multi_dimensional_contiguous_buffer(simd_kernels: ModuleType) -> None:
    data = random_bytes(64, 6)
    grid = memoryview(bytearray(data)).cast("B", (8, 8))
    assert simd_kernels.apply_mask(grid, KEY) == reference_mask(data, KEY)
    simd_kernels.mask_inplace(grid, KEY, 3)
    assert grid.tobytes() == reference_mask(data, KEY, 3)


def test_concurrent_threads(simd_kernels: ModuleType) -> None:
    # The C kernels release the GIL for large buffers: threads must not mix up.
    from concurrent.futures import ThreadPoolExecutor

    def work(seed: int) -> bool:
        # Above the GIL threshold (256 KiB), and large enough that the results
        # the C kernels keep for reuse cannot serve the payloads that
        # test_recycle.py expects to get back from that cache.
        data = random_bytes((1 << 20) + seed, seed)
        key = bytes([seed, seed + 1, seed + 2, seed + 3])
        buf = bytearray(data)
        simd_kernels.mask_inplace(buf, key, seed % 4)
        return simd_kernels.apply_mask(data, key) == reference_mask(
            data, key
        ) and buf == reference_mask(data, key, seed % 4)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(16)))
