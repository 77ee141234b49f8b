# cython: boundscheck=False, wraparound=False, language_level=3
"""Compiled frame encoding of the ship rooms (the twins are in ``starhold.kernels.frames``).

msgpack is written by hand here, with msgpack-python's own choices (the smallest integer form,
``use_single_float``: float32 for a Python float), so the bytes equal ``msgpack.Packer(
use_bin_type=True, use_single_float=True).pack`` of the same lists. Values of another type
than the exact ``int``/``float``/3-tuple the rows hold make a function return None: the
caller then takes the twin (which packs anything msgpack packs).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next, PyDict_GetItem, PyDict_DelItem
from cpython.object cimport PyObject, PyObject_RichCompareBool, Py_EQ
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.set cimport PySet_Contains, PySet_Add
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

cdef extern from "Python.h":
    bint PyFloat_CheckExact(object)
    bint PyLong_CheckExact(object)
    bint PyTuple_CheckExact(object)
    Py_ssize_t PyTuple_GET_SIZE(object)
    PyObject* PyTuple_GET_ITEM(object, Py_ssize_t)

DEF ROW_MAX = 1 + 9 + 5 + 5 + 9  # fixarray(4), int64, float32, float32, int64
DEF INT_MAX_BYTES = 9


cdef inline int _pack_int(unsigned char* out, object value) except -2:
    """msgpack-python's encoding of an exact int in out; its length, or -1 if out of int64."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    cdef unsigned long long u = <unsigned long long>v
    if overflow != 0:
        return -1
    if v >= 0:
        if u < 0x80:  # positive fixint, then uint 8 / 16 / 32 / 64
            out[0] = <unsigned char>u
            return 1
        if u < 0x100:
            out[0] = 0xcc
            return 1 + _be(out + 1, u, 1)
        if u < 0x10000:
            out[0] = 0xcd
            return 1 + _be(out + 1, u, 2)
        if u < 0x100000000:
            out[0] = 0xce
            return 1 + _be(out + 1, u, 4)
        out[0] = 0xcf
        return 1 + _be(out + 1, u, 8)
    if v >= -32:  # negative fixint, then int 8 / 16 / 32 / 64
        out[0] = <unsigned char>u
        return 1
    if v >= -128:
        out[0] = 0xd0
        return 1 + _be(out + 1, u, 1)
    if v >= -32768:
        out[0] = 0xd1
        return 1 + _be(out + 1, u, 2)
    if v >= -2147483648:
        out[0] = 0xd2
        return 1 + _be(out + 1, u, 4)
    out[0] = 0xd3
    return 1 + _be(out + 1, u, 8)


cdef inline int _be(unsigned char* out, unsigned long long u, int size) noexcept:
    """The low ``size`` bytes of u in out, big-endian (msgpack's order); returns size."""
    cdef int k
    for k in range(size):
        out[k] = <unsigned char>(u >> (8 * (size - 1 - k)))
    return size


cdef inline int _pack_f32(unsigned char* out, double value) noexcept:
    cdef float f = <float>value
    cdef unsigned int bits
    memcpy(&bits, &f, 4)
    out[0] = 0xca
    return 1 + _be(out + 1, bits, 4)


cdef inline int _array_header(unsigned char* out, Py_ssize_t n) noexcept:
    if n < 16:
        out[0] = 0x90 | <unsigned char>n
        return 1
    if n < 0x10000:
        out[0] = 0xdc
        return 1 + _be(out + 1, n, 2)
    out[0] = 0xdd
    return 1 + _be(out + 1, n, 4)


cdef int _pack_row(unsigned char* out, object ship_id, object row) except -2:
    """``[id, x, y, flags]`` of one row (a 3-tuple) into out: its length, or -1 (other types)."""
    cdef int n = 1, k
    cdef object x, y, flags
    if not PyLong_CheckExact(ship_id) or not PyTuple_CheckExact(row) or PyTuple_GET_SIZE(row) != 3:
        return -1
    x = <object>PyTuple_GET_ITEM(row, 0)
    y = <object>PyTuple_GET_ITEM(row, 1)
    flags = <object>PyTuple_GET_ITEM(row, 2)
    if not PyFloat_CheckExact(x) or not PyFloat_CheckExact(y) or not PyLong_CheckExact(flags):
        return -1
    out[0] = 0x94
    k = _pack_int(out + n, ship_id)
    if k < 0:
        return -1
    n += k
    n += _pack_f32(out + n, PyFloat_AS_DOUBLE(x))
    n += _pack_f32(out + n, PyFloat_AS_DOUBLE(y))
    k = _pack_int(out + n, flags)
    if k < 0:
        return -1
    return n + k


def pack_rows(dict rows, dict prev=None):
    """See ``starhold.kernels.frames.pack_rows``."""
    cdef Py_ssize_t pos = 0, count = 0, size = 0, n = len(rows)
    cdef PyObject* key
    cdef PyObject* value
    cdef PyObject* old
    cdef int k, head
    cdef unsigned char header[5]
    cdef unsigned char* buf = <unsigned char*>malloc(5 + n * ROW_MAX)
    cdef list removed = []
    if buf == NULL:
        raise MemoryError()
    try:
        size = 5  # room for the array header, written last
        while PyDict_Next(rows, &pos, &key, &value):
            if prev is not None:
                old = PyDict_GetItem(prev, <object>key)
                if old != NULL and PyObject_RichCompareBool(<object>old, <object>value, Py_EQ):
                    continue
            k = _pack_row(buf + size, <object>key, <object>value)
            if k < 0:
                return None
            size += k
            count += 1
        head = _array_header(header, count)
        memcpy(buf + 5 - head, header, head)
        packed = PyBytes_FromStringAndSize(<char*>buf + 5 - head, size - 5 + head)
    finally:
        free(buf)
    if prev is not None:
        pos = 0
        while PyDict_Next(prev, &pos, &key, &value):
            if PyDict_GetItem(rows, <object>key) == NULL:
                removed.append(<object>key)
    return packed, count, removed


def frame_heads(bytes prefix, list conns, dict by_conn, dict acks, dict welcome, durable, set keyframe):
    """See ``starhold.kernels.frames.frame_heads``."""
    cdef list heads = [], key_heads = []
    cdef set waiting = set()
    cdef Py_ssize_t plen = PyBytes_GET_SIZE(prefix), i, n = len(conns)
    cdef unsigned char ack_buf[INT_MAX_BYTES]
    cdef PyObject* found
    cdef int k
    cdef object conn, conn_id, player, ack, joined, head
    for i in range(n):
        conn = conns[i]
        conn_id = conn.id
        found = PyDict_GetItem(by_conn, conn_id)
        if found == NULL:
            continue
        player = <object>found
        if welcome:
            found = PyDict_GetItem(welcome, conn_id)
            if found != NULL and <object>found is not None:
                joined = <object>found
                if joined > durable:
                    PySet_Add(waiting, conn_id)
                    continue
                PyDict_DelItem(welcome, conn_id)
        found = PyDict_GetItem(acks, player)
        ack = 0 if found == NULL else <object>found
        if not PyLong_CheckExact(ack):
            return None
        k = _pack_int(ack_buf, ack)
        if k < 0:
            return None
        head = PyBytes_FromStringAndSize(NULL, plen + k)
        memcpy(PyBytes_AS_STRING(head), PyBytes_AS_STRING(prefix), plen)
        memcpy(PyBytes_AS_STRING(head) + plen, ack_buf, k)
        if PySet_Contains(keyframe, conn_id):
            key_heads.append((conn, head))
        else:
            heads.append((conn, head))
    return heads, key_heads, waiting
