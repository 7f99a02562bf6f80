"""validate_utf8 and Utf8Validator, with CPython's UTF-8 decoder as the oracle.

For a complete input, CPython's strict decoder gives the verdict and, on
failure, ``UnicodeDecodeError.start`` = the length of the longest valid
prefix. Its ``reason`` is ``"unexpected end of data"`` exactly when the input
is a valid prefix that stops inside a code point, which tells an incomplete
input from an invalid one and lets every prefix be checked for fail-fast.
"""

from __future__ import annotations

import array
import mmap
import pickle
import random
from collections.abc import Sequence
from itertools import pairwise
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastws.exceptions import FastWSError, Utf8Error


def oracle(data: bytes) -> tuple[bool, int, bool]:
    """Return ``(valid, error_start, incomplete)`` for a complete input."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return False, exc.start, exc.reason == "unexpected end of data"
    return True, len(data), False


def check_feeds(kernels: ModuleType, chunks: Sequence[bytes], final: bool = True) -> None:
    """Feed ``chunks`` one by one and check every step against the oracle.

    The validator must raise on the first chunk after which the bytes fed so
    far cannot start valid UTF-8 (fail fast), at the oracle's position; with
    ``final`` the last chunk must also complete the last code point.
    """
    validator = kernels.Utf8Validator()
    fed = b""
    for index, chunk in enumerate(chunks):
        fed += chunk
        last = final and index == len(chunks) - 1
        valid, start, incomplete = oracle(fed)
        if valid or (incomplete and not last):
            validator.feed(chunk, final=last)
            assert validator.position == len(fed)
            assert validator.complete == valid
            continue
        with pytest.raises(Utf8Error) as info:
            validator.feed(chunk, final=last)
        assert type(info.value) is Utf8Error
        assert (info.value.position, info.value.incomplete) == (start, incomplete), fed
        # Sticky until reset(), whatever comes next.
        for more in (b"", b"a", chunk):
            with pytest.raises(Utf8Error) as again:
                validator.feed(more)
            assert (again.value.position, again.value.incomplete) == (start, incomplete)
        with pytest.raises(Utf8Error):
            validator.feed(b"a", final=True)
        validator.reset()
        assert validator.position == 0
        assert validator.complete
        validator.feed("ok ✓".encode(), final=True)
        assert validator.position == len("ok ✓".encode())
        return
    assert validator.position == len(fed)


def check_all(kernels: ModuleType, data: bytes, cuts: Sequence[int] = ()) -> None:
    """One-shot verdict, then incremental feeds split at ``cuts``."""
    valid, _, _ = oracle(data)
    assert kernels.validate_utf8(data) is valid, data
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    chunks = [data[lo:hi] for lo, hi in pairwise(points)] or [b""]
    check_feeds(kernels, chunks, final=True)
    check_feeds(kernels, chunks, final=False)


def split_everywhere(data: bytes) -> list[list[bytes]]:
    """Every way to cut ``data`` in two, and byte by byte."""
    ways = [[data[:i], data[i:]] for i in range(len(data) + 1)]
    ways.append([data[i : i + 1] for i in range(len(data))])
    return ways


# -- code points at the edges of the UTF-8 table (RFC 3629) ------------------

VALID_SEQUENCES = [
    b"\x00",
    b"\x7f",
    b"\xc2\x80",  # U+0080
    b"\xdf\xbf",  # U+07FF
    b"\xe0\xa0\x80",  # U+0800
    b"\xe1\x80\x80",
    b"\xec\xbf\xbf",
    b"\xed\x80\x80",  # U+D000
    b"\xed\x9f\xbf",  # U+D7FF, last before the surrogates
    b"\xee\x80\x80",  # U+E000, first after the surrogates
    b"\xef\xbf\xbf",  # U+FFFF
    b"\xf0\x90\x80\x80",  # U+10000
    b"\xf1\x80\x80\x80",
    b"\xf3\xbf\xbf\xbf",
    b"\xf4\x80\x80\x80",
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF
]

INVALID_SEQUENCES = [
    # overlong forms
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xe0\x80\x80",
    b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",
    # surrogates
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xed\xb0\x80",
    # beyond U+10FFFF
    b"\xf4\x90\x80\x80",
    b"\xf4\xbf\xbf\xbf",
    b"\xf7\xbf\xbf\xbf",
    # bytes that never appear in UTF-8
    *(bytes([b]) for b in range(0xF5, 0x100)),
    b"\xc0",
    b"\xc1",
    # stray continuation bytes
    b"\x80",
    b"\xbf",
    b"\x80\x80",
    # lead byte followed by a non-continuation
    b"\xc2\x41",
    b"\xe2\x82\x41",
    b"\xe2\x41\x82",
    b"\xf0\x9f\x98\x41",
    b"\xf0\x9f\x41",
    b"\xc2\xc2\x80",
    b"\xe2\x82\xe2\x82\xac",
    # five- and six-byte forms of the original UTF-8
    b"\xf8\x88\x80\x80\x80",
    b"\xfc\x84\x80\x80\x80\x80",
]

PREFIXES = [b"", b"a", b"abc", "é".encode(), b"x" * 15, b"y" * 31, "€".encode() * 21, b"z" * 64]


def test_oracle_agrees_with_the_table() -> None:
    for seq in VALID_SEQUENCES:
        assert oracle(seq) == (True, len(seq), False)
    for seq in INVALID_SEQUENCES:
        assert oracle(seq)[:2] == (False, 0)
        assert not oracle(seq)[2]


@pytest.mark.parametrize("seq", VALID_SEQUENCES, ids=lambda s: s.hex())
def test_valid_sequences(simd_kernels: ModuleType, seq: bytes) -> None:
    for prefix in PREFIXES:
        data = prefix + seq + b"tail"
        assert simd_kernels.validate_utf8(data)
        assert simd_kernels.validate_utf8(prefix + seq)
        for chunks in split_everywhere(prefix[-4:] + seq + seq):
            check_feeds(simd_kernels, chunks)


@pytest.mark.parametrize("seq", INVALID_SEQUENCES, ids=lambda s: s.hex())
def test_invalid_sequences(simd_kernels: ModuleType, seq: bytes) -> None:
    for prefix in PREFIXES:
        for suffix in (b"", b"tail", "€".encode()):
            data = prefix + seq + suffix
            assert not simd_kernels.validate_utf8(data), data
            validator = simd_kernels.Utf8Validator()
            with pytest.raises(Utf8Error) as info:
                validator.feed(data, final=True)
            assert info.value.position == len(prefix)
            assert not info.value.incomplete
        for chunks in split_everywhere(prefix[-4:] + seq):
            check_feeds(simd_kernels, chunks)


@pytest.mark.parametrize("seq", [s for s in VALID_SEQUENCES if len(s) > 1], ids=lambda s: s.hex())
def test_truncated_sequences(simd_kernels: ModuleType, seq: bytes) -> None:
    for prefix in PREFIXES:
        for cut in range(1, len(seq)):
            data = prefix + seq[:cut]
            assert not simd_kernels.validate_utf8(data)
            # Followed by anything that is not a continuation: invalid.
            assert not simd_kernels.validate_utf8(data + b"a")
            validator = simd_kernels.Utf8Validator()
            validator.feed(data)
            assert not validator.complete
            assert validator.position == len(data)
            with pytest.raises(Utf8Error) as info:
                validator.feed(b"", final=True)
            assert info.value.position == len(prefix)
            assert info.value.incomplete
            validator = simd_kernels.Utf8Validator()
            with pytest.raises(Utf8Error) as info:
                validator.feed(data, final=True)
            assert (info.value.position, info.value.incomplete) == (len(prefix), True)
            for chunks in split_everywhere(data):
                check_feeds(simd_kernels, chunks)
                check_feeds(simd_kernels, chunks, final=False)


# -- fail fast -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "chunk", "position"),
    [
        (b"", b"\xf4\x90", 0),
        (b"", b"\xf5", 0),
        (b"", b"\xe0\x80", 0),
        (b"", b"\xe0\x9f", 0),
        (b"", b"\xf0\x80", 0),
        (b"", b"\xf0\x8f", 0),
        (b"", b"\xed\xa0", 0),
        (b"", b"\xed\xbf", 0),
        (b"", b"\xc0", 0),
        (b"", b"\x80", 0),
        (b"abc", b"\xed\xa0", 3),
        (b"abc\xed", b"\xa0", 3),
        ("héllo".encode(), b"\xed\xa0", 6),
        (b"a" * 100 + b"\xf4", b"\x90", 100),
        (b"\xf0\x9f", b"\x98\x41", 0),
    ],
)
def test_fails_fast_without_final(
    simd_kernels: ModuleType, prefix: bytes, chunk: bytes, position: int
) -> None:
    validator = simd_kernels.Utf8Validator()
    validator.feed(prefix)
    with pytest.raises(Utf8Error) as info:
        validator.feed(chunk)
    assert info.value.position == position
    assert not info.value.incomplete


def test_incomplete_without_final_is_fine(simd_kernels: ModuleType) -> None:
    validator = simd_kernels.Utf8Validator()
    for byte in "a€😀".encode():
        assert validator.complete or validator.position > 0
        validator.feed(bytes([byte]))
    assert validator.complete
    validator.feed(b"\xf0\x9f\x98")
    assert not validator.complete
    assert validator.position == len("a€😀".encode()) + 3


# -- validator object -----------------------------------------------------------


def test_fresh_validator(simd_kernels: ModuleType) -> None:
    validator = simd_kernels.Utf8Validator()
    assert validator.position == 0
    assert validator.complete
    validator.feed(b"", final=True)
    assert validator.position == 0


def test_properties_are_read_only(simd_kernels: ModuleType) -> None:
    validator = simd_kernels.Utf8Validator()
    with pytest.raises(AttributeError):
        validator.position = 3
    with pytest.raises(AttributeError):
        validator.complete = False


def test_final_then_more(simd_kernels: ModuleType) -> None:
    validator = simd_kernels.Utf8Validator()
    validator.feed(b"abc", final=True)
    validator.feed("€".encode(), final=True)
    assert validator.position == 6


def test_error_is_sticky_and_reset_clears_it(simd_kernels: ModuleType) -> None:
    validator = simd_kernels.Utf8Validator()
    validator.feed(b"abc")
    with pytest.raises(Utf8Error) as first:
        validator.feed(b"de\xff")
    assert first.value.position == 5
    assert validator.position == 5
    assert not validator.complete
    for _ in range(3):
        with pytest.raises(Utf8Error) as again:
            validator.feed(b"valid")
        assert again.value.position == 5
        assert not again.value.incomplete
    validator.reset()
    validator.feed(b"\xff"[:0] + b"fine", final=True)
    assert validator.position == 4
    assert validator.complete


def test_incomplete_error_is_sticky(simd_kernels: ModuleType) -> None:
    validator = simd_kernels.Utf8Validator()
    with pytest.raises(Utf8Error) as first:
        validator.feed(b"ab\xe2\x82", final=True)
    assert (first.value.position, first.value.incomplete) == (2, True)
    with pytest.raises(Utf8Error) as again:
        validator.feed(b"\xac")
    assert (again.value.position, again.value.incomplete) == (2, True)


def test_reset_mid_sequence(simd_kernels: ModuleType) -> None:
    validator = simd_kernels.Utf8Validator()
    validator.feed(b"ab\xe2\x82")
    validator.reset()
    assert validator.complete
    assert validator.position == 0
    with pytest.raises(Utf8Error) as info:
        validator.feed(b"\xac")
    assert info.value.position == 0


def test_utf8_error_type() -> None:
    assert issubclass(Utf8Error, FastWSError)
    assert issubclass(Utf8Error, ValueError)


# -- buffers and arguments ----------------------------------------------------------


def test_buffer_types(simd_kernels: ModuleType) -> None:
    text = ("grüße, 世界 😀 " * 50).encode()
    anon = mmap.mmap(-1, len(text))
    anon.write(text)
    buffers: list[object] = [
        text,
        bytearray(text),
        memoryview(text),
        memoryview(b"\xff" + text + b"\xff")[1:-1],
        array.array("B", text),
        anon,
    ]
    for buf in buffers:
        assert simd_kernels.validate_utf8(buf), type(buf)
        validator = simd_kernels.Utf8Validator()
        validator.feed(buf, final=True)
        assert validator.position == len(text)
    assert not simd_kernels.validate_utf8(memoryview(b"a\xffb")[1:])
    assert simd_kernels.validate_utf8(memoryview(b"a\xffb")[2:])


@pytest.mark.parametrize("bad", ["text", None, 42, 1.5, ["a"]])
def test_non_buffer_arguments(simd_kernels: ModuleType, bad: object) -> None:
    with pytest.raises(TypeError):
        simd_kernels.validate_utf8(bad)
    with pytest.raises(TypeError):
        simd_kernels.Utf8Validator().feed(bad)


def test_non_contiguous_buffer_is_rejected(simd_kernels: ModuleType) -> None:
    strided = memoryview(bytearray(b"abcdefgh"))[::2]
    with pytest.raises(TypeError, match="contiguous"):
        simd_kernels.validate_utf8(strided)
    with pytest.raises(TypeError, match="contiguous"):
        simd_kernels.Utf8Validator().feed(strided)


# -- vector block edges -------------------------------------------------------------


def _mixed_text(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    alphabet = "abcdefgh ijklmnop" + "éüß" + "€世界" + "😀🎉"
    # Each character is at most 4 bytes: n // 2 characters overshoot n bytes.
    return (
        "".join(rng.choices(alphabet, k=n // 2 + 4)).encode()[:n].decode("utf-8", "ignore").encode()
    )


@pytest.mark.parametrize("length", [15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200])
def test_bad_byte_at_every_position(simd_kernels: ModuleType, length: int) -> None:
    ascii_text = bytes(random.Random(length).choices(range(32, 127), k=length))
    for pos in range(length):
        for bad in (b"\xff", b"\x80", b"\xc0", b"\xe2", b"\xed\xa0\x80"):
            data = ascii_text[:pos] + bad + ascii_text[pos + 1 :]
            assert not simd_kernels.validate_utf8(data), (pos, bad)
            validator = simd_kernels.Utf8Validator()
            with pytest.raises(Utf8Error) as info:
                validator.feed(data, final=True)
            assert info.value.position == pos


def test_multibyte_at_every_position(simd_kernels: ModuleType) -> None:
    base = b"a" * 200
    for seq in (b"\xc3\xa9", "€".encode(), "😀".encode(), b"\xf4\x8f\xbf\xbf"):
        for pos in range(200 - len(seq) + 1):
            data = base[:pos] + seq + base[pos + len(seq) :]
            assert simd_kernels.validate_utf8(data), (seq, pos)
            assert not simd_kernels.validate_utf8(data[: pos + 1] + base[pos + 1 :])
    mixed = _mixed_text(200, 7)
    for pos in range(len(mixed)):
        for bad in (0xFF, 0x80, 0xC1, 0xF5):
            data = mixed[:pos] + bytes([bad]) + mixed[pos + 1 :]
            valid, start, incomplete = oracle(data)
            assert simd_kernels.validate_utf8(data) is valid
            validator = simd_kernels.Utf8Validator()
            if valid:
                validator.feed(data, final=True)
                continue
            with pytest.raises(Utf8Error) as info:
                validator.feed(data, final=True)
            assert (info.value.position, info.value.incomplete) == (start, incomplete)


@pytest.mark.parametrize("size", [1 << 16, (1 << 16) + 5, (1 << 20) + 3])
def test_large_inputs(simd_kernels: ModuleType, size: int) -> None:
    text = _mixed_text(size, size)
    assert simd_kernels.validate_utf8(text)
    assert simd_kernels.validate_utf8(b"a" * size)
    for pos in (0, size // 2, len(text) - 1):
        bad = text[:pos] + b"\xff" + text[pos + 1 :]
        _, start, _ = oracle(bad)
        assert not simd_kernels.validate_utf8(bad)
        validator = simd_kernels.Utf8Validator()
        with pytest.raises(Utf8Error) as info:
            validator.feed(bad[:1000])
            validator.feed(bad[1000:], final=True)
        assert info.value.position == start
    validator = simd_kernels.Utf8Validator()
    step = 70_001
    for lo in range(0, len(text), step):
        validator.feed(memoryview(text)[lo : lo + step])
    assert validator.complete
    assert validator.position == len(text)


# -- property-based -------------------------------------------------------------------

cut_lists = st.lists(st.integers(0, 100_000), max_size=6)

PIECES = [
    *VALID_SEQUENCES,
    *INVALID_SEQUENCES[:14],
    b"\x80",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xed",
    b"\xf4",
]


@given(text=st.text(), cuts=cut_lists)
def test_text_is_valid(simd_kernels: ModuleType, text: str, cuts: list[int]) -> None:
    data = text.encode("utf-8")
    assert simd_kernels.validate_utf8(data)
    check_all(simd_kernels, data, cuts)


@given(data=st.binary(max_size=80), cuts=cut_lists)
def test_random_bytes(simd_kernels: ModuleType, data: bytes, cuts: list[int]) -> None:
    check_all(simd_kernels, data, cuts)


@given(
    text=st.text(min_size=1),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3),
    cuts=cut_lists,
)
def test_mutated_text(
    simd_kernels: ModuleType, text: str, edits: list[tuple[int, int]], cuts: list[int]
) -> None:
    data = bytearray(text.encode("utf-8"))
    for pos, value in edits:
        data[pos % len(data)] = value
    check_all(simd_kernels, bytes(data), cuts)


@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from(VALID_SEQUENCES),
            st.integers(0, 90).map(lambda n: b"q" * n),
            st.sampled_from(PIECES),
        ),
        max_size=20,
    ),
    cuts=cut_lists,
)
def test_edge_pieces(simd_kernels: ModuleType, pieces: list[bytes], cuts: list[int]) -> None:
    check_all(simd_kernels, b"".join(pieces), cuts)


def test_utf8_error_pickles() -> None:
    for error in (Utf8Error(7), Utf8Error(3, incomplete=True)):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is Utf8Error
        assert (copy.position, copy.incomplete) == (error.position, error.incomplete)
        assert str(copy) == str(error)


def test_multi_dimensional_contiguous_buffer(simd_kernels: ModuleType) -> None:
    grid = memoryview(bytearray("€uro".encode() * 8)).cast("B", (8, 6))
    assert simd_kernels.validate_utf8(grid)
    validator = simd_kernels.Utf8Validator()
    validator.feed(grid, final=True)
    assert validator.position == 48


def test_concurrent_threads(simd_kernels: ModuleType) -> None:
    # The C kernels release the GIL for large buffers: threads must not mix up.
    from concurrent.futures import ThreadPoolExecutor

    def work(seed: int) -> bool:
        text = _mixed_text((1 << 18) + seed, seed)
        bad = text[: len(text) // 2] + b"\xff" + text[len(text) // 2 + 1 :]
        _, start, _ = oracle(bad)
        validator = simd_kernels.Utf8Validator()
        validator.feed(text, final=True)
        try:
            simd_kernels.Utf8Validator().feed(bad, final=True)
        except Utf8Error as exc:
            failed_at = exc.position
        else:
            return False
        return (
            simd_kernels.validate_utf8(text)
            and not simd_kernels.validate_utf8(bad)
            and validator.position == len(text)
            and failed_at == start
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(16)))
