# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: freethreading_compatible=True, binding=False
"""C kernels of fastws: XOR masking, UTF-8 validation, frame headers, and
the two payload kernels of the frame reader (``frame_header`` and
``frame_payload``, C functions declared in ``_speedups.pxd``).

The API (names, behaviour, errors) is the one in docs/kernels.md and is
identical to the pure-Python twin ``fastws._kernels_py``. Arguments named
"buffer" accept any C-contiguous buffer-protocol object. The GIL is released
for buffers of 256 KiB and more.
"""

import os

__all__ = [
    "Utf8Validator",
    "apply_mask",
    "decode_header",
    "encode_frame",
    "encode_header",
    "frame_message",
    "mask_inplace",
    "simd_level",
    "utf8_simd_level",
    "validate_utf8",
]

from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from fastws.exceptions import Utf8Error

cdef extern from "Python.h":
    # Declared without Cython's automatic error handling: the callers check
    # the result themselves (to turn BufferError into TypeError and to avoid
    # try/finally on the hot paths).
    int PyBUF_SIMPLE
    int PyObject_GetBuffer(object obj, Py_buffer *view, int flags)
    void PyBuffer_Release(Py_buffer *view)
    bint PyBytes_CheckExact(object o)
    char *PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)
    bint PyByteArray_CheckExact(object o)
    char *PyByteArray_AS_STRING(object o)
    Py_ssize_t PyByteArray_GET_SIZE(object o)
    PyObject *PyBytes_FromStringAndSize(const char *v, Py_ssize_t n)
    Py_ssize_t PyNumber_AsSsize_t(object o, PyObject *exc) except? -1
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1
    object PyNumber_Index(object o)
    bint PyUnicode_Check(object o)
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    bytes PyUnicode_AsUTF8String(object o)
    bint PyBytes_Check(object o)
    bint PyByteArray_Check(object o)
    bint PyMemoryView_Check(object o)
    int PyErr_ExceptionMatches(PyObject *exc)
    void PyErr_Clear()
    PyObject *PyExc_BufferError
    bint PyList_CheckExact(object o)
    PyObject *PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    uint8_t *PyUnicode_1BYTE_DATA(PyObject *o)
    PyObject *PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)

cdef extern from "fastws_cpu.h" nogil:
    unsigned fws_cpu_features()
    int fws_mask_set_isa(const char *name)
    int fws_utf8_set_isa(const char *name)

cdef extern from "fastws_mask.h" nogil:
    void fws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key, unsigned phase)
    const char *fws_mask_isa()

cdef extern from "fastws_utf8.h" nogil:
    ctypedef struct fws_utf8_state:
        pass
    void fws_utf8_init(fws_utf8_state *st)
    int fws_utf8_feed(fws_utf8_state *st, const uint8_t *p, size_t n, uint64_t *err_pos)
    int fws_utf8_finish(const fws_utf8_state *st, uint64_t *err_pos)
    int fws_utf8_validate(const uint8_t *p, size_t n, size_t *err_pos)
    const char *fws_utf8_isa()

cdef extern from "fastws_frame.h" nogil:
    ctypedef struct fws_header:
        int fin
        unsigned rsv
        unsigned opcode
        int masked
        uint8_t mask[4]
        uint64_t length
        size_t header_len
    int fws_header_decode(const uint8_t *buf, size_t n, fws_header *h)
    size_t fws_header_encode(uint8_t *out, int fin, unsigned rsv, unsigned opcode,
                             uint64_t length, const uint8_t *mask)

cdef extern from "_recycle.h":
    # Large bytes objects are recycled; what this relies on is written in
    # that file and in docs/kernels.md.
    PyObject *fws_new_bytes(Py_ssize_t n)
    void fws_recycled_stats(Py_ssize_t *count, Py_ssize_t *nbytes)
    void fws_recycled_clear()
    enum:
        FWS_RECYCLE
        FWS_RECYCLE_MIN
        FWS_RECYCLE_SLOTS
        FWS_RECYCLE_BYTES

# At and above this size the GIL is released around a kernel call. Releasing
# and taking it back costs a single-threaded call 27-47 ns, and buys nothing
# unless another thread is waiting, so it is done only where that is at most
# about 1% of the call. Measured (CPython 3.11, x86-64 with AVX-512, timeit
# medians of 21 rounds; the same build with the GIL always released vs never):
#   mask_inplace  16 KiB 140.9 vs 104.3 ns; 32 KiB 240.8 vs 194.1 ns;
#                 64 KiB 1.17 vs 1.15 us (1.7%); 128 KiB 2.29 vs 2.27 us (0.9%);
#                 256 KiB 4.55 vs 4.52 us (0.7%); 1 MiB 18.1 vs 18.1 us
#   apply_mask    16 KiB 256 vs 229 ns; 64 KiB 1.52 vs 1.49 us (2.0%);
#                 128 KiB 2.91 vs 2.86 us (1.7%); 256 KiB 5.74 vs 5.70 us (0.7%)
#   validate_utf8 (ASCII) 64 KiB 457 vs 432 ns (5.8%); 256 KiB 2.90 vs 2.88 us (1.0%)
# From 64 KiB (the old threshold) up, masking runs at the speed of the L2
# cache or memory, as websockets' and aiohttp's kernels do (within 2-5% of
# fastws): there the release alone could make fastws the slower one.
cdef enum:
    NOGIL_THRESHOLD = 262144


# ---- payloads of received frames ----------------------------------------------

cdef inline bint _is_ascii(const uint8_t *p, size_t n) noexcept:
    """Whether the n bytes at p are all below 0x80 (a word at a time)."""
    cdef uint64_t acc = 0, a, b, c, d
    cdef size_t i = 0
    while i + 32 <= n:
        memcpy(&a, p + i, 8)
        memcpy(&b, p + i + 8, 8)
        memcpy(&c, p + i + 16, 8)
        memcpy(&d, p + i + 24, 8)
        acc |= a | b | c | d
        i += 32
    while i + 8 <= n:
        memcpy(&a, p + i, 8)
        acc |= a
        i += 8
    while i < n:
        acc |= p[i]
        i += 1
    return (acc & 0x8080808080808080ULL) == 0


cdef enum:
    TEXT_ON_STACK = 1024  # masked text payloads up to this size are unmasked on the stack


cdef PyObject *_text(const uint8_t *src, size_t n, const uint8_t *key) noexcept:
    """Decoded text of the n payload bytes at src (masked with key unless
    NULL). NULL with an exception set; a UnicodeDecodeError means invalid
    UTF-8."""
    cdef uint8_t tmp[TEXT_ON_STACK]
    cdef PyObject *s
    cdef PyObject *r
    cdef uint8_t *data
    if key is not NULL:
        if n > TEXT_ON_STACK:
            # Unmask straight into an ASCII str; decode from it if the
            # payload turns out not to be ASCII.
            s = PyUnicode_New(<Py_ssize_t>n, 127)
            if s is NULL:
                return NULL
            data = PyUnicode_1BYTE_DATA(s)
            fws_mask(data, src, n, key, 0)
            if _is_ascii(data, n):
                return s
            r = PyUnicode_DecodeUTF8(<const char *>data, <Py_ssize_t>n, NULL)
            Py_DECREF(<object>s)
            return r
        fws_mask(tmp, src, n, key, 0)
        src = tmp
    if not _is_ascii(src, n):
        return PyUnicode_DecodeUTF8(<const char *>src, <Py_ssize_t>n, NULL)
    s = PyUnicode_New(<Py_ssize_t>n, 127)
    if s is not NULL:
        memcpy(PyUnicode_1BYTE_DATA(s), src, n)
    return s


cdef PyObject *_binary(const uint8_t *src, size_t n, const uint8_t *key) noexcept:
    """The n payload bytes at src as bytes (unmasked with key unless NULL);
    NULL with an exception set."""
    cdef PyObject *b = fws_new_bytes(<Py_ssize_t>n)
    if b is NULL or n == 0:
        return b
    cdef uint8_t *dst = <uint8_t *>PyBytes_AS_STRING(<object>b)
    if key is not NULL:
        fws_mask(dst, src, n, key, 0)
    else:
        memcpy(dst, src, n)
    return b


cdef inline object _steal(PyObject *o):
    """Turn a new reference into an object without an extra incref."""
    res = <object>o
    Py_DECREF(res)
    return res


# ---- buffer helpers ---------------------------------------------------------

cdef int _get_buffer(object obj, Py_buffer *view) except -1:
    """Acquire a C-contiguous byte view; TypeError for anything else."""
    if PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0:
        return 0
    if PyErr_ExceptionMatches(PyExc_BufferError):
        # e.g. a non-contiguous memoryview
        PyErr_Clear()
        raise TypeError("buffer must be C-contiguous")
    return -1


cdef int _get_key(object mask, uint8_t *key) except -1:
    """Copy a 4-byte mask into key; TypeError / ValueError otherwise."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    if PyBytes_CheckExact(mask):
        n = PyBytes_GET_SIZE(mask)
        if n == 4:
            memcpy(key, PyBytes_AS_STRING(mask), 4)
            return 0
    else:
        _get_buffer(mask, &view)
        n = view.len
        if n == 4:
            memcpy(key, view.buf, 4)
        PyBuffer_Release(&view)
        if n == 4:
            return 0
    raise ValueError(f"mask must be 4 bytes long, got {n}")


cdef inline int _check_phase(object phase) except -1:
    cdef Py_ssize_t p = PyNumber_AsSsize_t(phase, NULL)  # clamps huge values
    if p < 0 or p > 3:
        raise ValueError(f"phase must be in 0..3, got {PyNumber_Index(phase)}")
    return <int>p


# ---- masking ------------------------------------------------------------------

def apply_mask(data, mask):
    """Return ``data`` XOR-ed with the 4-byte ``mask`` as new bytes.

    Args:
        data: the bytes to mask (any buffer).
        mask: the 4-byte masking key (any buffer).

    Raises:
        TypeError: ``data`` or ``mask`` is not a buffer.
        ValueError: ``mask`` is not 4 bytes long.
    """
    cdef uint8_t key[4]
    cdef Py_buffer view
    cdef const uint8_t *src
    cdef Py_ssize_t n
    cdef PyObject *out
    cdef uint8_t *dst
    if PyBytes_CheckExact(mask) and PyBytes_GET_SIZE(mask) == 4:
        memcpy(key, PyBytes_AS_STRING(mask), 4)  # the usual key: no buffer export
    else:
        _get_key(mask, key)
    if PyByteArray_CheckExact(data):
        out = _apply_mask_bytearray(data, key)
        if out is not NULL:
            return _steal(out)
    if PyBytes_CheckExact(data):
        n = PyBytes_GET_SIZE(data)
        out = fws_new_bytes(n)
        if out is NULL:
            raise MemoryError()
        dst = <uint8_t *>PyBytes_AS_STRING(<object>out)
        src = <const uint8_t *>PyBytes_AS_STRING(data)
        if n >= NOGIL_THRESHOLD:
            with nogil:
                fws_mask(dst, src, <size_t>n, key, 0)
        else:
            fws_mask(dst, src, <size_t>n, key, 0)
    else:
        _get_buffer(data, &view)
        n = view.len
        out = fws_new_bytes(n)
        if out is NULL:
            PyBuffer_Release(&view)
            raise MemoryError()
        dst = <uint8_t *>PyBytes_AS_STRING(<object>out)
        src = <const uint8_t *>view.buf
        if n >= NOGIL_THRESHOLD:
            with nogil:
                fws_mask(dst, src, <size_t>n, key, 0)
        else:
            fws_mask(dst, src, <size_t>n, key, 0)
        PyBuffer_Release(&view)
    return _steal(out)


cdef inline PyObject *_apply_mask_bytearray(object data, const uint8_t *key):
    """Small bytearray without a buffer export (no Python code runs while
    its pointer is in use); NULL if it does not apply (error not set)."""
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(data)
    if n >= NOGIL_THRESHOLD:
        return NULL
    cdef PyObject *out = fws_new_bytes(n)
    if out is NULL:
        PyErr_Clear()  # the caller retries on the general path
        return NULL
    if PyByteArray_GET_SIZE(data) != n:  # resized meanwhile: never mind
        Py_DECREF(<object>out)
        return NULL
    fws_mask(<uint8_t *>PyBytes_AS_STRING(<object>out),
             <const uint8_t *>PyByteArray_AS_STRING(data), <size_t>n, key, 0)
    return out


def mask_inplace(buffer, mask, phase=0):
    """XOR a writable ``buffer`` in place: ``buffer[i] ^= mask[(phase + i) % 4]``.

    To continue a frame across chunks, pass ``(phase + len(chunk)) % 4`` with
    the next chunk.

    Args:
        buffer: a writable buffer (bytearray, memoryview, array, mmap...).
        mask: the 4-byte masking key.
        phase: position in the key of ``buffer[0]``, 0..3.

    Raises:
        TypeError: not a buffer, or ``buffer`` is read-only.
        ValueError: ``mask`` is not 4 bytes long or ``phase`` is not in 0..3.
    """
    cdef uint8_t key[4]
    cdef Py_buffer view
    cdef unsigned ph = 0
    cdef uint8_t *p
    cdef size_t n
    if PyByteArray_CheckExact(buffer):
        # Small bytearray: no buffer export needed, nothing runs between
        # reading its pointer and masking.
        if PyBytes_CheckExact(mask) and PyBytes_GET_SIZE(mask) == 4:
            memcpy(key, PyBytes_AS_STRING(mask), 4)
        else:
            _get_key(mask, key)
        if phase is not 0:
            ph = <unsigned>_check_phase(phase)
        n = <size_t>PyByteArray_GET_SIZE(buffer)
        if n < NOGIL_THRESHOLD:
            p = <uint8_t *>PyByteArray_AS_STRING(buffer)
            fws_mask(p, p, n, key, ph)
            return
    _get_buffer(buffer, &view)
    try:
        if view.readonly:
            raise TypeError(
                f"buffer must be writable, got a read-only {type(buffer).__name__!r}"
            )
        _get_key(mask, key)
        if phase is not 0:
            ph = <unsigned>_check_phase(phase)
        p = <uint8_t *>view.buf
        n = <size_t>view.len
        if n >= NOGIL_THRESHOLD:
            with nogil:
                fws_mask(p, p, n, key, ph)
        else:
            fws_mask(p, p, n, key, ph)
    finally:
        PyBuffer_Release(&view)


# ---- UTF-8 --------------------------------------------------------------------

def validate_utf8(data):
    """Return True iff ``data`` is complete, valid UTF-8.

    Raises:
        TypeError: ``data`` is not a buffer.
    """
    cdef Py_buffer view
    cdef size_t err = 0
    cdef int r
    cdef const uint8_t *p
    cdef size_t n
    if PyBytes_CheckExact(data):
        p = <const uint8_t *>PyBytes_AS_STRING(data)
        n = <size_t>PyBytes_GET_SIZE(data)
        if n >= NOGIL_THRESHOLD:
            with nogil:
                r = fws_utf8_validate(p, n, &err)
        else:
            r = fws_utf8_validate(p, n, &err)
        return r == 0
    _get_buffer(data, &view)
    p = <const uint8_t *>view.buf
    n = <size_t>view.len
    if n >= NOGIL_THRESHOLD:
        with nogil:
            r = fws_utf8_validate(p, n, &err)
    else:
        r = fws_utf8_validate(p, n, &err)
    PyBuffer_Release(&view)
    return r == 0


cdef class Utf8Validator:
    """Incremental UTF-8 validator that fails as early as possible.

    ``feed`` raises :class:`fastws.exceptions.Utf8Error` as soon as the bytes
    fed so far cannot begin valid UTF-8; with ``final=True`` it also raises
    (``incomplete=True``) when the input stops inside a multi-byte sequence.
    After an error every ``feed`` raises the same error until ``reset()``.
    Not safe to share between threads without a lock.
    """

    cdef fws_utf8_state _st
    cdef uint64_t _accepted
    cdef uint64_t _err_pos
    cdef bint _failed
    cdef bint _err_incomplete
    cdef bint _busy

    def __cinit__(self):
        fws_utf8_init(&self._st)

    def reset(self) -> None:
        """Forget everything fed so far."""
        if self._busy:
            raise RuntimeError("Utf8Validator is in use by another thread")
        fws_utf8_init(&self._st)
        self._accepted = 0
        self._err_pos = 0
        self._failed = False
        self._err_incomplete = False

    def feed(self, data, bint final=False) -> None:
        """Validate the next chunk.

        Args:
            data: the next bytes (any buffer).
            final: the input ends after ``data``.

        Raises:
            Utf8Error: the input so far is not (the prefix of) valid UTF-8.
            TypeError: ``data`` is not a buffer.
        """
        cdef Py_buffer view
        cdef uint64_t err = 0
        cdef int r
        cdef const uint8_t *p
        cdef size_t n
        if self._failed:
            raise Utf8Error(self._err_pos, bool(self._err_incomplete))
        if self._busy:
            raise RuntimeError("Utf8Validator is in use by another thread")
        _get_buffer(data, &view)
        p = <const uint8_t *>view.buf
        n = <size_t>view.len
        if n >= NOGIL_THRESHOLD:
            self._busy = True
            with nogil:
                r = fws_utf8_feed(&self._st, p, n, &err)
            self._busy = False
        else:
            r = fws_utf8_feed(&self._st, p, n, &err)
        PyBuffer_Release(&view)
        if r:
            self._failed = True
            self._err_pos = err
            self._accepted = err
            raise Utf8Error(err, False)
        self._accepted += n
        if final and fws_utf8_finish(&self._st, &err):
            self._failed = True
            self._err_incomplete = True
            self._err_pos = err
            self._accepted = err
            raise Utf8Error(err, True)

    @property
    def position(self) -> int:
        """Bytes accepted so far (after an error: the valid prefix length)."""
        return self._accepted

    @property
    def complete(self) -> bool:
        """True when not inside a multi-byte sequence (False after an error)."""
        cdef uint64_t err
        if self._failed:
            return False
        return fws_utf8_finish(&self._st, &err) == 0


# ---- frame headers --------------------------------------------------------------

def decode_header(data, offset=0):
    """Decode the frame header at ``data[offset]``.

    Returns:
        ``(fin, rsv, opcode, payload_length, mask, header_length)`` with
        ``mask`` the 4-byte key or None, or None if the header is incomplete.
        A 64-bit length with its most significant bit set is an error as soon
        as its 8 bytes are available.

    Raises:
        TypeError: ``data`` is not a buffer or ``offset`` not an integer.
        ValueError: ``offset`` out of range, or the 64-bit length has its
            most significant bit set.
    """
    cdef Py_buffer view
    cdef const uint8_t *p
    cdef Py_ssize_t n
    cdef Py_ssize_t off = 0
    cdef fws_header h
    cdef int r
    cdef bint have_view = False
    if PyBytes_CheckExact(data) or PyByteArray_CheckExact(data):
        # No buffer export: convert offset (which may run Python code)
        # before reading the pointer; nothing runs after that.
        if offset is not 0:
            off = PyNumber_AsSsize_t(offset, NULL)  # clamps huge values
        if PyBytes_CheckExact(data):
            p = <const uint8_t *>PyBytes_AS_STRING(data)
            n = PyBytes_GET_SIZE(data)
        else:
            p = <const uint8_t *>PyByteArray_AS_STRING(data)
            n = PyByteArray_GET_SIZE(data)
        if off < 0 or off > n:
            raise ValueError(f"offset must be in 0..{n}, got {PyNumber_Index(offset)}")
        r = fws_header_decode(p + off, <size_t>(n - off), &h)
        return _header_tuple(r, &h)
    _get_buffer(data, &view)
    have_view = True
    p = <const uint8_t *>view.buf
    n = view.len
    try:
        if offset is not 0:
            off = PyNumber_AsSsize_t(offset, NULL)  # clamps huge values
        if off < 0 or off > n:
            raise ValueError(f"offset must be in 0..{n}, got {PyNumber_Index(offset)}")
        r = fws_header_decode(p + off, <size_t>(n - off), &h)
    finally:
        if have_view:
            PyBuffer_Release(&view)
    return _header_tuple(r, &h)


cdef inline object _header_tuple(int r, const fws_header *h):
    if r == 0:
        return None
    if r < 0:
        raise ValueError("invalid frame length: most significant bit of the 64-bit length is set")
    mask = (<const char *>h.mask)[:4] if h.masked else None
    return (h.fin != 0, h.rsv, h.opcode, h.length, mask, h.header_len)


cdef int _header_args(object opcode, object payload_length, object rsv,
                      unsigned *op, uint64_t *length, unsigned *rs) except -1:
    """Check the integer arguments of encode_header (same order as the twin)."""
    cdef Py_ssize_t o = PyNumber_AsSsize_t(opcode, NULL)  # clamps huge values
    cdef Py_ssize_t r = 0
    if rsv is not 0:
        r = PyNumber_AsSsize_t(rsv, NULL)
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(PyNumber_Index(payload_length), &overflow)
    if o < 0 or o > 15:
        raise ValueError(f"opcode must be in 0..15, got {PyNumber_Index(opcode)}")
    if r < 0 or r > 7:
        raise ValueError(f"rsv must be in 0..7, got {PyNumber_Index(rsv)}")
    if overflow or v < 0:
        raise ValueError(
            f"payload_length must be in 0..2**63-1, got {PyNumber_Index(payload_length)}"
        )
    op[0] = <unsigned>o
    rs[0] = <unsigned>r
    length[0] = <uint64_t>v
    return 0


# ---- the frame reader's kernels (C functions: see _speedups.pxd) ----------------

cdef class ByteView:
    """The bytes of a buffer, held (a buffer export) while the view lives.

    The frame reader reads a received buffer through one of these: cheaper
    to make than a typed memoryview, and the buffer cannot be resized or
    released under it.
    """

    def __cinit__(self, data):
        _get_buffer(data, &self.view)
        self.buf = <const unsigned char *>self.view.buf
        self.length = self.view.len

    def __dealloc__(self):
        if self.buf is not NULL:
            PyBuffer_Release(&self.view)

    def __len__(self):
        return self.length


cdef (Py_ssize_t, Py_ssize_t, int) frame_header(ByteView buf, Py_ssize_t pos) noexcept:
    """The frame header at ``buf[pos]``: ``(header_length, payload_length, first_two_bytes)``.

    ``(0, 0, 0)`` while the header is incomplete; ``(-1, 0, 0)`` for a 64-bit
    length with its most significant bit set. ``first_two_bytes`` is
    ``byte0 << 8 | byte1``.
    """
    cdef fws_header h
    cdef Py_ssize_t n = buf.length - pos
    if n < 2:
        return 0, 0, 0
    cdef const unsigned char *p = buf.buf + pos
    cdef int r = fws_header_decode(p, <size_t>n, &h)
    if r <= 0:
        return r, 0, 0
    return r, <Py_ssize_t>h.length, (p[0] << 8) | p[1]


cdef object frame_payload(ByteView buf, Py_ssize_t start, Py_ssize_t length,
                          Py_ssize_t mask_at, bint text):
    """The payload ``buf[start:start + length]``, unmasked with the key at
    ``buf[mask_at]`` unless ``mask_at`` is negative: decoded ``str`` with
    ``text`` (``None`` if it is not valid UTF-8), else ``bytes``."""
    cdef const uint8_t *key = NULL
    cdef const uint8_t *src
    cdef PyObject *out
    if length == 0:
        return "" if text else b""
    src = buf.buf + start
    if mask_at >= 0:
        key = buf.buf + mask_at
    if text:
        out = _text(src, <size_t>length, key)
        if out is NULL:
            if PyErr_ExceptionMatches(<PyObject *>UnicodeDecodeError):
                PyErr_Clear()
                return None
            raise MemoryError()
        return _steal(out)
    out = _binary(src, <size_t>length, key)
    if out is NULL:
        raise MemoryError()
    return _steal(out)


def encode_header(fin, opcode, payload_length, mask=None, rsv=0):
    """Encode a 2..14 byte frame header with minimal length encoding.

    Raises:
        TypeError: an integer argument is not an integer or ``mask`` is not
            a buffer.
        ValueError: ``opcode`` not in 0..15, ``rsv`` not in 0..7,
            ``payload_length`` not in 0..2**63-1, ``mask`` not 4 bytes.
    """
    cdef uint8_t out[14]
    cdef uint8_t key[4]
    cdef unsigned op, rs
    cdef uint64_t length
    cdef const uint8_t *kp = NULL
    _header_args(opcode, payload_length, rsv, &op, &length, &rs)
    cdef bint f = fin
    if mask is not None:
        _get_key(mask, key)
        kp = key
    cdef size_t hl = fws_header_encode(out, f, rs, op, length, kp)
    return (<char *>out)[:hl]


cdef object _frame_bytes(bint fin, unsigned rs, unsigned op, const uint8_t *src, Py_ssize_t n,
                         const uint8_t *kp):
    """Header + payload (masked with ``kp`` unless NULL) as one new bytes."""
    cdef uint8_t hdr[14]
    cdef size_t hl = fws_header_encode(hdr, fin, rs, op, <uint64_t>n, kp)
    cdef PyObject *out = fws_new_bytes(<Py_ssize_t>hl + n)
    if out is NULL:
        raise MemoryError()
    cdef uint8_t *dst = <uint8_t *>PyBytes_AS_STRING(<object>out)
    memcpy(dst, hdr, hl)
    dst += hl
    if n >= NOGIL_THRESHOLD:
        with nogil:
            if kp is not NULL:
                fws_mask(dst, src, <size_t>n, kp, 0)
            else:
                memcpy(dst, src, <size_t>n)
    elif kp is not NULL:
        fws_mask(dst, src, <size_t>n, kp, 0)
    else:
        memcpy(dst, src, <size_t>n)
    return _steal(out)


def encode_frame(fin, opcode, payload, mask=None, rsv=0):
    """Return header + payload (masked with ``mask`` if given) as one bytes.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: as for :func:`encode_header`.
    """
    cdef uint8_t key[4]
    cdef Py_buffer view
    cdef unsigned op, rs
    cdef uint64_t length
    cdef const uint8_t *kp = NULL
    cdef const uint8_t *src
    cdef Py_ssize_t n
    cdef bint have_view = False
    if PyBytes_CheckExact(payload):
        src = <const uint8_t *>PyBytes_AS_STRING(payload)
        n = PyBytes_GET_SIZE(payload)
    else:
        _get_buffer(payload, &view)
        have_view = True
        src = <const uint8_t *>view.buf
        n = view.len
    try:
        _header_args(opcode, n, rsv, &op, &length, &rs)
        if mask is not None:
            _get_key(mask, key)
            kp = key
        return _frame_bytes(fin, rs, op, src, n, kp)
    finally:
        if have_view:
            PyBuffer_Release(&view)


def frame_message(out, message, mask, split_at):
    """Append the frame of one whole uncompressed message to the list ``out``.

    A ``str`` is sent as a text frame (UTF-8) and a ``bytes``, ``bytearray``
    or ``memoryview`` (or a subclass) as a binary frame, with FIN set, masked
    with the 4-byte ``mask`` unless it is ``None``. An unmasked payload of
    at least ``split_at`` bytes that is a ``bytes`` object, or a ``str``
    (encoded into one), is appended after its header as a second item
    instead of being copied into the frame.

    Returns:
        ``True``; ``False``, appending nothing, for any other type of message.

    Raises:
        TypeError: ``out`` is not a list, ``split_at`` not an integer, or
            ``message`` a non-contiguous memoryview.
        ValueError: ``mask`` is not 4 bytes.
        UnicodeEncodeError: ``message`` is a ``str`` with a lone surrogate.
    """
    cdef uint8_t key[4]
    cdef uint8_t hdr[14]
    cdef Py_buffer view
    cdef const uint8_t *kp = NULL
    cdef const uint8_t *src
    cdef Py_ssize_t n
    cdef unsigned op
    cdef size_t hl
    cdef Py_ssize_t split = PyNumber_AsSsize_t(split_at, NULL)  # clamps huge values
    if not PyList_CheckExact(out):
        raise TypeError(f"out must be a list, not {type(out).__name__!r}")
    if PyUnicode_Check(message):
        op = 1
    elif PyBytes_Check(message) or PyByteArray_Check(message) or PyMemoryView_Check(message):
        op = 2
    else:
        return False
    if mask is not None:
        _get_key(mask, key)
        kp = key
    if op == 1:
        if PyUnicode_IS_COMPACT_ASCII(message) and (kp is not NULL or PyUnicode_GET_LENGTH(message) < split):
            # ASCII is its own UTF-8: frame it without encoding it first.
            return _append(out, _frame_bytes(True, 0, 1, <const uint8_t *>PyUnicode_DATA(message),
                                             PyUnicode_GET_LENGTH(message), kp))
        message = _utf8_bytes(message)
    if PyBytes_CheckExact(message):
        src = <const uint8_t *>PyBytes_AS_STRING(message)
        n = PyBytes_GET_SIZE(message)
        if kp is NULL and n >= split:
            hl = fws_header_encode(hdr, True, 0, op, <uint64_t>n, NULL)
            _append(out, (<char *>hdr)[:hl])
            return _append(out, message)
        return _append(out, _frame_bytes(True, 0, op, src, n, kp))
    _get_buffer(message, &view)
    try:
        return _append(out, _frame_bytes(True, 0, op, <const uint8_t *>view.buf, view.len, kp))
    finally:
        PyBuffer_Release(&view)


cdef object _utf8_bytes(object text):
    """``text`` encoded as UTF-8: a large ASCII text is copied into a recycled bytes object."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef PyObject *out
    if not PyUnicode_IS_COMPACT_ASCII(text) or n < FWS_RECYCLE_MIN:
        return PyUnicode_AsUTF8String(text)
    out = fws_new_bytes(n)
    if out is NULL:
        raise MemoryError()
    memcpy(PyBytes_AS_STRING(<object>out), PyUnicode_DATA(text), <size_t>n)
    return _steal(out)


cdef inline bint _append(list out, object item) except -1:
    out.append(item)
    return True


# ---- ISA selection ----------------------------------------------------------------

# Weakest first. "neon" ranks with "sse2" (the 128-bit baseline).
_LEVELS = ("scalar", "sse2", "neon", "avx2", "avx512")


def simd_level() -> str:
    """The masking kernel in use: avx512, avx2, sse2, neon or scalar."""
    return fws_mask_isa().decode("ascii")


def utf8_simd_level() -> str:
    """The UTF-8 validator kernel in use: avx512, avx2, sse2, neon or scalar."""
    return fws_utf8_isa().decode("ascii")


cdef int _cap_utf8(bytes name):
    """Select the best UTF-8 kernel not above ``name``; 0 on success."""
    cdef Py_ssize_t i
    if name == b"auto":
        return fws_utf8_set_isa(b"auto")
    i = _LEVELS.index(name.decode("ascii"))
    while i >= 0:
        if fws_utf8_set_isa(_LEVELS[i].encode("ascii")) == 0:
            return 0
        i -= 1
    return -1


def _recycled() -> tuple[int, int, int, int, int]:
    """The cache of large payloads (tests only): objects held, their bytes, and
    the limits (smallest payload kept, most objects, most bytes; all 0 where
    payloads are not recycled)."""
    cdef Py_ssize_t count, nbytes
    fws_recycled_stats(&count, &nbytes)
    if not FWS_RECYCLE:
        return (0, 0, 0, 0, 0)
    return (count, nbytes, FWS_RECYCLE_MIN, FWS_RECYCLE_SLOTS, FWS_RECYCLE_BYTES)


def _recycled_clear() -> None:
    """Empty the cache of large payloads (tests only)."""
    fws_recycled_clear()


def _force_isa(name: str) -> bool:
    """Select the kernels for ``name`` (tests and benchmarks only).

    ``name`` is one of scalar, sse2, avx2, avx512, neon or auto. Returns False
    (and changes nothing) if the masking kernel for ``name`` is unknown or
    unsupported on this CPU. The UTF-8 validator gets the best kernel it has
    that is not above ``name`` (some levels have no UTF-8 kernel of their own).
    """
    if name != "auto" and name not in _LEVELS:
        return False
    cdef bytes b = name.encode("ascii")
    if fws_mask_set_isa(b) != 0:
        return False
    _cap_utf8(b)
    return True


def _apply_env_cap() -> None:
    cap = os.environ.get("FASTWS_SIMD", "").strip().lower()
    if cap not in _LEVELS:
        return
    cdef Py_ssize_t i = _LEVELS.index(cap)
    while i >= 0:
        if fws_mask_set_isa(_LEVELS[i].encode("ascii")) == 0:
            break
        i -= 1
    _cap_utf8(cap.encode("ascii"))



# ---- payload assembly -----------------------------------------------------------

cdef class PayloadBuilder:
    """Assemble one frame payload of known size from pieces, unmasking as it goes.

    The pieces are copied (and unmasked with ``mask``, continuing the key phase)
    straight into the final ``bytes`` object, so a large frame that arrives
    over many reads is copied once and needs no growing buffer.

    Args:
        size: the payload length.
        mask: the 4-byte masking key, or ``None`` for an unmasked frame.

    Raises:
        ValueError: ``size`` is negative or ``mask`` is not 4 bytes long.
        TypeError: ``mask`` is not a buffer.
    """

    cdef object _data  # bytes, not shared until result()
    cdef Py_ssize_t _size
    cdef Py_ssize_t _filled
    cdef uint8_t _key[4]
    cdef bint _masked

    def __cinit__(self, Py_ssize_t size, mask=None):
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        self._masked = mask is not None
        if self._masked:
            _get_key(mask, self._key)
        cdef PyObject *out = fws_new_bytes(size)
        if out is NULL:
            raise MemoryError()
        self._data = _steal(out)
        self._size = size
        self._filled = 0

    @property
    def size(self) -> int:
        """The payload length."""
        return self._size

    @property
    def filled(self) -> int:
        """How many payload bytes were fed so far."""
        return self._filled

    def feed(self, data, Py_ssize_t start=0) -> int:
        """Take the bytes of ``data`` from ``start``, up to what is missing.

        Returns:
            How many bytes were taken.

        Raises:
            TypeError: ``data`` is not a C-contiguous buffer.
            ValueError: ``start`` is outside ``data``, or the payload is complete.
        """
        cdef Py_buffer view
        cdef Py_ssize_t n
        cdef uint8_t *dst
        cdef const uint8_t *src
        if self._data is None:
            raise ValueError("the payload was already taken")
        _get_buffer(data, &view)
        try:
            if start < 0 or start > view.len:
                raise ValueError(f"start {start} is outside the {view.len} bytes of data")
            n = min(view.len - start, self._size - self._filled)
            dst = <uint8_t *>PyBytes_AS_STRING(self._data) + self._filled
            src = <const uint8_t *>view.buf + start
            if n >= NOGIL_THRESHOLD:
                with nogil:
                    if self._masked:
                        fws_mask(dst, src, <size_t>n, self._key, <unsigned>(self._filled & 3))
                    else:
                        memcpy(dst, src, <size_t>n)
            elif self._masked:
                fws_mask(dst, src, <size_t>n, self._key, <unsigned>(self._filled & 3))
            else:
                memcpy(dst, src, <size_t>n)
        finally:
            PyBuffer_Release(&view)
        self._filled += n
        return n

    def view(self, Py_ssize_t start=0) -> memoryview:
        """A read-only view of the payload bytes fed so far, from ``start``.

        Raises:
            ValueError: the payload was already taken.
        """
        if self._data is None:
            raise ValueError("the payload was already taken")
        start = min(max(start, 0), self._filled)
        return memoryview(self._data)[start:self._filled]

    def result(self) -> bytes:
        """The complete payload (once); the builder is empty afterwards.

        Raises:
            ValueError: bytes are still missing, or it was already taken.
        """
        if self._data is None:
            raise ValueError("the payload was already taken")
        if self._filled != self._size:
            raise ValueError(f"payload incomplete: {self._filled} of {self._size} bytes")
        data = self._data
        self._data = None
        return data


fws_mask_isa()  # resolve the dispatch now, not on the first call
_apply_env_cap()
