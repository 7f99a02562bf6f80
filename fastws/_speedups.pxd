# The C functions of fastws._speedups that the compiled frame reader
# (fastws/_reader_c.pxd) calls directly; their pure-Python twins have the
# same names in fastws/_kernels_py.py.

cdef (Py_ssize_t, Py_ssize_t) frame_header(const unsigned char[::1] buf, Py_ssize_t pos) noexcept
cdef object frame_payload(const unsigned char[::1] buf, Py_ssize_t start, Py_ssize_t length,
                          Py_ssize_t mask_at, bint text)
