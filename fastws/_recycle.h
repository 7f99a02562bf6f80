/* Recycling of large bytes objects for fastws._speedups (C11, Python C API).
 *
 * This is the one piece of the binding written in C rather than Cython,
 * because it writes a field of the bytes object (its cached hash) and
 * relies on the reference count; both are documented in docs/kernels.md
 * ("Large results are recycled") and checked by tests/test_recycle.py,
 * which fails on a build where they would not hold.
 *
 * A new bytes object of a megabyte, freed soon after, makes malloc give its
 * pages back to the system and fault fresh zeroed ones in for the next: for
 * an echo of 1 MiB messages that was 18 to 125 page faults per message, 40%
 * or more of its CPU time. So the bytes objects of 128 KiB and more that the
 * kernels create are also kept here (at most FWS_RECYCLE_SLOTS,
 * FWS_RECYCLE_BYTES in all), and one that nothing but this cache references
 * any more (its reference count is 1) is handed out again instead of a new
 * one, for a payload of between half its capacity and all of it. Nobody can
 * see the change: no other reference exists, and bytes objects are not
 * tracked by the garbage collector, so none can be found. Its cached hash is
 * reset, and a smaller payload gets a smaller size and a new terminating NUL,
 * as CPython's own in-place resizing does. Free-threaded builds, where the
 * count is not a plain field, always allocate.
 */
#ifndef FASTWS_RECYCLE_H
#define FASTWS_RECYCLE_H

#include <Python.h>

#define FWS_RECYCLE_MIN ((Py_ssize_t)1 << 17)
#define FWS_RECYCLE_SLOTS 8
#define FWS_RECYCLE_BYTES ((Py_ssize_t)8 << 20)

#if defined(Py_GIL_DISABLED) || defined(PYPY_VERSION) || defined(GRAALVM_PYTHON)
#define FWS_RECYCLE 0
#else
#define FWS_RECYCLE 1
static struct { PyObject *obj; Py_ssize_t capacity; } fws_recycled[FWS_RECYCLE_SLOTS];
static Py_ssize_t fws_recycled_bytes;
#endif

/* A new (or recycled) bytes object of n bytes, contents undefined; NULL
 * with an exception set. Only for the caller to fill and return. */
static PyObject *fws_new_bytes(Py_ssize_t n)
{
#if FWS_RECYCLE
    if (n >= FWS_RECYCLE_MIN) {
        int empty = -1;
        for (int i = 0; i < FWS_RECYCLE_SLOTS; i++) {
            PyObject *b = fws_recycled[i].obj;
            if (b == NULL) {
                if (empty < 0)
                    empty = i;
                continue;
            }
            Py_ssize_t cap = fws_recycled[i].capacity;
            if (Py_REFCNT(b) == 1 && n <= cap && n >= cap / 2) {
                Py_SET_SIZE(b, n);
                PyBytes_AS_STRING(b)[n] = 0;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
                ((PyBytesObject *)b)->ob_shash = -1;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
                Py_INCREF(b);
                return b;
            }
        }
        PyObject *b = PyBytes_FromStringAndSize(NULL, n);
        if (b == NULL || n > FWS_RECYCLE_BYTES)
            return b;
        /* Keep the new one, in place of idle ones of other sizes if there
         * is no room otherwise. */
        for (int i = 0; i < FWS_RECYCLE_SLOTS
                && (empty < 0 || fws_recycled_bytes + n > FWS_RECYCLE_BYTES); i++) {
            PyObject *old = fws_recycled[i].obj;
            if (old != NULL && Py_REFCNT(old) == 1) {
                fws_recycled_bytes -= fws_recycled[i].capacity;
                fws_recycled[i].obj = NULL;
                Py_DECREF(old);
                if (empty < 0)
                    empty = i;
            }
        }
        if (empty >= 0 && fws_recycled_bytes + n <= FWS_RECYCLE_BYTES) {
            Py_INCREF(b);
            fws_recycled[empty].obj = b;
            fws_recycled[empty].capacity = n;
            fws_recycled_bytes += n;
        }
        return b;
    }
#endif
    return PyBytes_FromStringAndSize(NULL, n);
}

/* How many objects the cache holds, and their capacity in bytes. */
static void fws_recycled_stats(Py_ssize_t *count, Py_ssize_t *nbytes)
{
    *count = 0;
    *nbytes = 0;
#if FWS_RECYCLE
    for (int i = 0; i < FWS_RECYCLE_SLOTS; i++)
        *count += fws_recycled[i].obj != NULL;
    *nbytes = fws_recycled_bytes;
#endif
}

/* Drop every object the cache holds (tests only: a known starting point). */
static void fws_recycled_clear(void)
{
#if FWS_RECYCLE
    for (int i = 0; i < FWS_RECYCLE_SLOTS; i++) {
        PyObject *b = fws_recycled[i].obj;
        fws_recycled[i].obj = NULL;
        Py_XDECREF(b);
    }
    fws_recycled_bytes = 0;
#endif
}

#endif
