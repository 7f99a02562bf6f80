# The C functions of fastws._speedups that the compiled frame reader
# (fastws/_reader_c.pxd) calls directly; their pure-Python twins have the
# same names in fastws/_kernels_py.py.

cdef extern from "Python.h":
    ctypedef struct Py_buffer:
        void *buf
        Py_ssize_t len
        int readonly


cdef class ByteView:
    cdef Py_buffer view
    cdef const unsigned char *buf
    cdef Py_ssize_t length


cdef (Py_ssize_t, Py_ssize_t, int) frame_header(ByteView buf, Py_ssize_t pos) noexcept
cdef object frame_payload(ByteView buf, Py_ssize_t start, Py_ssize_t length,
                          Py_ssize_t mask_at, bint text)
