"""decode_header, encode_header and encode_frame on both implementations."""

from __future__ import annotations

import array
import itertools
import random
import struct
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

KEY = b"\x37\xfa\x21\x3d"
MAX_LENGTH = 2**63 - 1
LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 2**32, MAX_LENGTH]


def expected_header(
    fin: bool, opcode: int, length: int, mask: bytes | None = None, rsv: int = 0
) -> bytes:
    """RFC 6455 section 5.2, written out independently of the kernels."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if length <= 125:
        out = bytes([first, mask_bit | length])
    elif length <= 0xFFFF:
        out = bytes([first, mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        out = bytes([first, mask_bit | 127]) + length.to_bytes(8, "big")
    return out + (mask or b"")


def xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


# -- RFC 6455 section 5.7 examples -------------------------------------------------


def test_rfc_examples(kernels: ModuleType) -> None:
    assert kernels.encode_frame(True, 1, b"Hello") == bytes.fromhex("810548656c6c6f")
    assert kernels.encode_frame(True, 1, b"Hello", KEY) == bytes.fromhex("818537fa213d7f9f4d5158")
    assert kernels.encode_frame(False, 1, b"Hel") == bytes.fromhex("010348656c")
    assert kernels.encode_frame(True, 0, b"lo") == bytes.fromhex("80026c6f")
    assert kernels.encode_frame(True, 9, b"Hello") == bytes.fromhex("890548656c6c6f")
    assert kernels.encode_header(True, 2, 256) == bytes.fromhex("827e0100")
    assert kernels.encode_header(True, 2, 65536) == bytes.fromhex("827f0000000000010000")
    assert kernels.decode_header(bytes.fromhex("818537fa213d7f9f4d5158")) == (
        True,
        0,
        1,
        5,
        KEY,
        6,
    )
    assert kernels.decode_header(bytes.fromhex("827f0000000000010000")) == (
        True,
        0,
        2,
        65536,
        None,
        10,
    )


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("mask", [None, KEY], ids=["unmasked", "masked"])
def test_round_trip_every_field(kernels: ModuleType, length: int, mask: bytes | None) -> None:
    for fin, opcode, rsv in itertools.product((True, False), range(16), range(8)):
        header = kernels.encode_header(fin, opcode, length, mask, rsv)
        assert type(header) is bytes
        assert header == expected_header(fin, opcode, length, mask, rsv)
        decoded = kernels.decode_header(header + b"payload")
        assert decoded == (fin, rsv, opcode, length, mask, len(header))
        assert type(decoded[0]) is bool


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("mask", [None, KEY], ids=["unmasked", "masked"])
def test_header_lengths(kernels: ModuleType, length: int, mask: bytes | None) -> None:
    size = 2 if length < 126 else 4 if length < 65536 else 10
    if mask is not None:
        size += 4
    header = kernels.encode_header(True, 2, length, mask)
    assert len(header) == size
    assert kernels.decode_header(header)[-1] == size


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("mask", [None, KEY], ids=["unmasked", "masked"])
def test_need_more_bytes_at_every_truncation(
    kernels: ModuleType, length: int, mask: bytes | None
) -> None:
    header = expected_header(True, 1, length, mask)
    for cut in range(len(header)):
        assert kernels.decode_header(header[:cut]) is None, cut
        assert kernels.decode_header(b"xyz" + header[:cut], 3) is None, cut
    assert kernels.decode_header(header) is not None


def test_keyword_arguments(kernels: ModuleType) -> None:
    header = kernels.encode_header(fin=True, opcode=2, payload_length=3, mask=KEY, rsv=4)
    assert header == expected_header(True, 2, 3, KEY, 4)
    assert kernels.decode_header(data=b"  " + header, offset=2) == (True, 4, 2, 3, KEY, 6)
    assert kernels.encode_frame(
        fin=False, opcode=0, payload=b"abc", mask=None, rsv=1
    ) == expected_header(False, 0, 3, None, 1) + (b"abc")


def test_non_minimal_lengths_are_decoded_as_is(kernels: ModuleType) -> None:
    # Rejecting them is the protocol's job, not the kernel's.
    assert kernels.decode_header(b"\x81\x7e\x00\x05") == (True, 0, 1, 5, None, 4)
    assert kernels.decode_header(b"\x81\x7f" + (5).to_bytes(8, "big")) == (
        True,
        0,
        1,
        5,
        None,
        10,
    )


def test_reserved_opcodes_and_rsv_are_decoded(kernels: ModuleType) -> None:
    assert kernels.decode_header(b"\x73\x00") == (False, 7, 3, 0, None, 2)
    assert kernels.decode_header(b"\x8f\xfd" + KEY) == (True, 0, 15, 125, KEY, 6)


# -- offset ----------------------------------------------------------------------------


def test_offset(kernels: ModuleType) -> None:
    frames = [
        expected_header(True, 1, 3, KEY) + xor(b"abc", KEY),
        expected_header(False, 2, 300) + bytes(300),
        expected_header(True, 0, 70000, KEY, 4) + bytes(70000),
        expected_header(True, 9, 0),
    ]
    stream = b"".join(frames)
    for buf in (stream, bytearray(stream), memoryview(stream)):
        offset = 0
        seen = []
        while offset < len(stream):
            fin, rsv, opcode, length, mask, size = kernels.decode_header(buf, offset)
            seen.append((fin, rsv, opcode, length, mask))
            offset += size + length
        assert offset == len(stream)
        assert seen == [
            (True, 0, 1, 3, KEY),
            (False, 0, 2, 300, None),
            (True, 4, 0, 70000, KEY),
            (True, 0, 9, 0, None),
        ]
        assert kernels.decode_header(buf, len(stream)) is None
        assert kernels.decode_header(buf, len(stream) - 1) is None


@pytest.mark.parametrize("offset", [-1, -100, 5, 6, 2**40])
def test_offset_out_of_range(kernels: ModuleType, offset: int) -> None:
    with pytest.raises(ValueError, match="offset"):
        kernels.decode_header(b"\x81\x00\x00\x00", offset)


@pytest.mark.parametrize("offset", ["1", 1.0, None])
def test_offset_of_wrong_type(kernels: ModuleType, offset: object) -> None:
    with pytest.raises(TypeError):
        kernels.decode_header(b"\x81\x00\x00\x00", offset)


# -- 64-bit length with the most significant bit set ------------------------------------


@pytest.mark.parametrize("mask", [None, KEY], ids=["unmasked", "masked"])
@pytest.mark.parametrize("length", [2**63, 2**64 - 1, 2**63 + 5])
def test_length_msb_set(kernels: ModuleType, mask: bytes | None, length: int) -> None:
    header = b"\x82" + bytes([(0x80 if mask else 0) | 127]) + length.to_bytes(8, "big")
    header += mask or b""
    with pytest.raises(ValueError):
        kernels.decode_header(header)
    with pytest.raises(ValueError):
        kernels.decode_header(b"\x00\x00" + header + b"more", 2)
    # Until the length is there, the answer is "need more bytes"; once it
    # is, the error does not wait for the masking key.
    for cut in range(10):
        assert kernels.decode_header(header[:cut]) is None
    for cut in range(10, len(header)):
        with pytest.raises(ValueError):
            kernels.decode_header(header[:cut])


# -- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((True, -1, 0), {}),
        ((True, 16, 0), {}),
        ((True, 1, -1), {}),
        ((True, 1, 2**63), {}),
        ((True, 1, 2**64), {}),
        ((True, 1, 0), {"rsv": 8}),
        ((True, 1, 0), {"rsv": -1}),
        ((True, 1, 0), {"mask": b"abc"}),
        ((True, 1, 0), {"mask": b"abcde"}),
        ((True, 1, 0), {"mask": b""}),
    ],
)
def test_encode_header_bad_values(
    kernels: ModuleType, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        kernels.encode_header(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((True, -1, b""), {}),
        ((True, 16, b""), {}),
        ((True, 1, b""), {"rsv": 8}),
        ((True, 1, b""), {"rsv": -1}),
        ((True, 1, b"abc"), {"mask": b"abc"}),
        ((True, 1, b"abc"), {"mask": bytearray(5)}),
    ],
)
def test_encode_frame_bad_values(
    kernels: ModuleType, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        kernels.encode_frame(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((True, "1", 0), {}),
        ((True, 1.0, 0), {}),
        ((True, 1, "5"), {}),
        ((True, 1, 5.0), {}),
        ((True, 1, None), {}),
        ((True, 1, 0), {"mask": "abcd"}),
        ((True, 1, 0), {"mask": 1234}),
        ((True, 1, 0), {"rsv": "1"}),
    ],
)
def test_encode_header_bad_types(
    kernels: ModuleType, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        kernels.encode_header(*args, **kwargs)


@pytest.mark.parametrize("bad", ["text", None, 42, [1, 2]])
def test_non_buffers(kernels: ModuleType, bad: object) -> None:
    with pytest.raises(TypeError):
        kernels.decode_header(bad)
    with pytest.raises(TypeError):
        kernels.encode_frame(True, 1, bad)
    with pytest.raises(TypeError):
        kernels.encode_frame(True, 1, b"abc", "abcd")


def test_non_contiguous_buffers(kernels: ModuleType) -> None:
    strided = memoryview(bytearray(b"\x81\x00\x81\x00"))[::2]
    with pytest.raises(TypeError, match="contiguous"):
        kernels.decode_header(strided)
    with pytest.raises(TypeError, match="contiguous"):
        kernels.encode_frame(True, 2, strided)


# -- encode_frame ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 3, 125, 126, 127, 1000, 65535, 65536, 70001])
@pytest.mark.parametrize("mask", [None, KEY], ids=["unmasked", "masked"])
def test_encode_frame_is_header_plus_masked_payload(
    kernels: ModuleType, length: int, mask: bytes | None
) -> None:
    payload = random.Random(length).randbytes(length)
    masked = kernels.apply_mask(payload, mask) if mask else payload
    expected = expected_header(True, 2, length, mask, 1) + masked
    for buf in (payload, bytearray(payload), memoryview(payload), array.array("B", payload)):
        frame = kernels.encode_frame(True, 2, buf, mask, 1)
        assert type(frame) is bytes
        assert frame == expected
        assert frame == kernels.encode_header(True, 2, length, mask, 1) + masked


def test_encode_frame_mask_buffer_types(kernels: ModuleType) -> None:
    expected = kernels.encode_frame(True, 1, b"Hello", KEY)
    for key in (bytearray(KEY), memoryview(KEY), array.array("B", KEY)):
        assert kernels.encode_frame(True, 1, b"Hello", key) == expected
        assert kernels.encode_header(True, 1, 5, key) == expected[:6]


def test_encode_frame_does_not_modify_payload(kernels: ModuleType) -> None:
    payload = bytearray(b"payload bytes")
    kernels.encode_frame(True, 2, payload, KEY)
    assert payload == b"payload bytes"


# -- C and pure Python agree -------------------------------------------------------------------

header_args = st.tuples(
    st.booleans(),
    st.integers(0, 15),
    st.one_of(st.integers(0, 130), st.integers(0, 70_000), st.integers(0, MAX_LENGTH)),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    st.integers(0, 7),
)


@given(args=header_args, prefix=st.binary(max_size=5), extra=st.binary(max_size=5))
def test_round_trip_property(
    kernels: ModuleType,
    args: tuple[bool, int, int, bytes | None, int],
    prefix: bytes,
    extra: bytes,
) -> None:
    fin, opcode, length, mask, rsv = args
    header = kernels.encode_header(fin, opcode, length, mask, rsv)
    assert header == expected_header(fin, opcode, length, mask, rsv)
    data = prefix + header + extra
    assert kernels.decode_header(data, len(prefix)) == (fin, rsv, opcode, length, mask, len(header))


def _outcome(func: object, *args: object) -> object:
    try:
        return ("ok", func(*args))  # type: ignore[operator]
    except (TypeError, ValueError) as exc:
        return ("error", type(exc))


@given(data=st.binary(max_size=20), offset=st.integers(-2, 22))
def test_c_and_python_decode_agree(
    speedups: ModuleType, pure_kernels: ModuleType, data: bytes, offset: int
) -> None:
    assert _outcome(speedups.decode_header, data, offset) == _outcome(
        pure_kernels.decode_header, data, offset
    )


@given(
    first=st.integers(0, 255),
    length=st.integers(0, 2**64 - 1),
    masked=st.booleans(),
    cut=st.integers(0, 14),
)
def test_c_and_python_decode_agree_on_long_headers(
    speedups: ModuleType, pure_kernels: ModuleType, first: int, length: int, masked: bool, cut: int
) -> None:
    code = 127 if length > 0xFFFF else 126 if length > 125 else length
    second = (0x80 if masked else 0) | code
    data = bytes([first, second])
    if code == 126:
        data += struct.pack("!H", length)
    elif code == 127:
        data += struct.pack("!Q", length)
    data = (data + (KEY if masked else b""))[: max(cut, 2)]
    assert _outcome(speedups.decode_header, data) == _outcome(pure_kernels.decode_header, data)


@given(
    args=header_args,
    payload=st.binary(max_size=300),
)
def test_c_and_python_encode_agree(
    speedups: ModuleType,
    pure_kernels: ModuleType,
    args: tuple[bool, int, int, bytes | None, int],
    payload: bytes,
) -> None:
    fin, opcode, length, mask, rsv = args
    assert speedups.encode_header(fin, opcode, length, mask, rsv) == pure_kernels.encode_header(
        fin, opcode, length, mask, rsv
    )
    assert speedups.encode_frame(fin, opcode, payload, mask, rsv) == pure_kernels.encode_frame(
        fin, opcode, payload, mask, rsv
    )


@given(
    opcode=st.integers(-3, 20),
    length=st.integers(-3, 2**64 + 3),
    rsv=st.integers(-3, 10),
    mask_size=st.integers(0, 6),
)
def test_c_and_python_reject_the_same_arguments(
    speedups: ModuleType,
    pure_kernels: ModuleType,
    opcode: int,
    length: int,
    rsv: int,
    mask_size: int,
) -> None:
    mask = bytes(range(mask_size))
    assert _outcome(speedups.encode_header, True, opcode, length, mask, rsv) == _outcome(
        pure_kernels.encode_header, True, opcode, length, mask, rsv
    )
