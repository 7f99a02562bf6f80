# Compiles fastws/_reader_py.py (through the link _reader_c.py) as the
# extension fastws._reader_c: the same source, with these declarations.
# `_k` is bound to the C kernels here and to their pure-Python twins in the
# source (see the module docstring there).

cimport cython

cimport fastws._speedups as _k

# Imported from fastws.frames (and typed here as C ints) or defined in the source.
cdef int OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_PONG, RSV1
cdef Py_ssize_t MAX_CONTROL_PAYLOAD, ASSEMBLE_AT, COMPACT_AT
cdef int CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA


# TextMessage and BinaryMessage hold only a str or a bytes: they cannot be
# part of a reference cycle, so Cython makes them types without cyclic
# garbage collection. (With many events alive, tracking them cost about as
# much as the rest of the reader.)
cdef class _Event:
    cpdef tuple _fields(self)


@cython.final
cdef class TextMessage(_Event):
    cdef readonly str data


@cython.final
cdef class BinaryMessage(_Event):
    cdef readonly bytes data


@cython.final
cdef class MessageChunk(_Event):
    cdef readonly object data
    cdef readonly bint text
    cdef readonly bint final


@cython.final
cdef class MessageQueue:
    cdef readonly Py_ssize_t max_items
    cdef readonly Py_ssize_t max_bytes
    cdef readonly Py_ssize_t nbytes
    cdef readonly bint full
    cdef Py_ssize_t head
    cdef Py_ssize_t count
    cdef Py_ssize_t capacity
    cdef list data
    cdef list finals

    @cython.locals(i=Py_ssize_t)
    cpdef bint put(self, object data, bint final) except -1

    @cython.locals(final=bint)
    cpdef tuple get(self)

    cpdef object get_message(self)

    @cython.locals(head=Py_ssize_t)
    cdef object _take(self)


@cython.locals(event=TextMessage)
cdef TextMessage _text_message(object data)

@cython.locals(event=BinaryMessage)
cdef BinaryMessage _binary_message(object data)


@cython.final
cdef class Reader:
    cdef readonly bint is_server
    cdef int want_mask
    cdef readonly Py_ssize_t max_frame
    cdef readonly Py_ssize_t max_message
    cdef readonly Py_ssize_t max_fragments
    cdef readonly bint stream_messages
    cdef object on_control
    cdef public list events
    cdef public object handler
    cdef public MessageQueue queue
    cdef public object callback
    cdef public object deflate
    cdef readonly bint paused
    cdef readonly bint stopped
    cdef readonly Py_ssize_t delivered
    cdef Py_ssize_t counted
    cdef readonly bint error_after_messages
    cdef object error
    cdef readonly bytearray buf
    cdef readonly Py_ssize_t start
    cdef Py_ssize_t scan
    cdef readonly object asm
    cdef bint asm_fin
    cdef int asm_rsv
    cdef int asm_opcode
    cdef int msg_opcode
    cdef bint msg_compressed
    cdef bint msg_streamed
    cdef list msg_parts
    cdef Py_ssize_t msg_size
    cdef Py_ssize_t msg_frames
    cdef object utf8
    cdef Py_ssize_t early
    cdef bint partial_seen
    cdef object decoder

    cdef object _result(self)
    cdef void _fail(self, object exc)

    @cython.locals(n=Py_ssize_t, need=Py_ssize_t)
    cdef Py_ssize_t _complete_buffered(self, object data, Py_ssize_t off) except? -2

    @cython.locals(hlen=Py_ssize_t, length=Py_ssize_t, arrived=Py_ssize_t, need=Py_ssize_t)
    cdef Py_ssize_t _missing(self)

    @cython.locals(buf=bytearray, pos=Py_ssize_t)
    cdef object _parse_buffer(self)

    @cython.locals(
        view=_k.ByteView,
        end=Py_ssize_t,
        want_mask=int,
        single=Py_ssize_t,
        text_head=int,
        binary_head=int,
        b01=int,
        head=int,
        hlen=Py_ssize_t,
        length=Py_ssize_t,
        text=bint,
        text_event=TextMessage,
        binary_event=BinaryMessage,
        b0=int,
        fin=bint,
        rsv=int,
        opcode=int,
        start=Py_ssize_t,
        mask_at=Py_ssize_t,
    )
    cdef object _parse(self, object data, Py_ssize_t pos)

    cdef object _partial(self, object view, bint fin, int rsv, int opcode, Py_ssize_t length,
                         Py_ssize_t start, Py_ssize_t end, Py_ssize_t mask_at)

    @cython.locals(taken=Py_ssize_t, opcode=int)
    cdef Py_ssize_t _feed_assembly(self, object data, Py_ssize_t start) except -1

    @cython.locals(done=Py_ssize_t, phase=Py_ssize_t)
    cdef object _validate_early(self, object view, Py_ssize_t start, Py_ssize_t end,
                             Py_ssize_t mask_at, bint first)

    cdef object _validate_arrived(self, object chunk, bint first)

    cdef object _check_frame(self, bint fin, int rsv, int opcode, Py_ssize_t length)

    @cython.locals(text=bint, early=Py_ssize_t)
    cdef object _data(self, bint fin, int rsv, int opcode, object payload)
