# cython: boundscheck=False, wraparound=False, language_level=3
"""Compiled per-socket input path of the gateway (the twins are in ``starhold.kernels.wsinput``,
which documents the behaviour; both give the same results)."""

import time

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from msgspec import DecodeError, ValidationError

cdef tuple _EMPTY = (False, b"")
cdef tuple _ERROR = (True, b"")
cdef Py_ssize_t TAIL_LIMIT = 512


cdef class TokenBucket:
    """See ``starhold.kernels.wsinput.TokenBucket``."""

    cdef public double rate
    cdef public double burst
    cdef public double tokens
    cdef public double stamp
    cdef public object now

    def __init__(self, double rate, double burst, now=time.monotonic):
        self.rate, self.burst, self.now = rate, burst, now
        self.tokens = burst
        self.stamp = now()

    cpdef bint take(self) except -1:
        """Whether a token was available (one is then taken)."""
        cdef double t = self.now()
        cdef double tokens = self.tokens + (t - self.stamp) * self.rate
        self.tokens = tokens if tokens < self.burst else self.burst
        self.stamp = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


cdef class InputGate:
    """See ``starhold.kernels.wsinput.InputGate``."""

    cdef public object close_code
    cdef public bint joined
    cdef public object link
    cdef public int _errors
    cdef public object schemas
    cdef public TokenBucket bucket
    cdef public str conn_id
    cdef public object traffic
    cdef object _envelope
    cdef object _client_message
    cdef object _message
    cdef Py_ssize_t _max_bytes
    cdef object _max_seq

    def __init__(self, envelope, client_message, message, Py_ssize_t max_bytes, max_seq):
        self._envelope, self._client_message, self._message = envelope, client_message, message
        self._max_bytes, self._max_seq = max_bytes, max_seq

    def __call__(self, data):
        self._deliver(data)

    def on_data(self, data):
        """One data message (bytes or str) from the socket's parser."""
        self._deliver(data)

    cdef _deliver(self, object data):
        if self.close_code is not None:
            return
        try:
            if not self._fast(data):
                self.receive(data)
        except Exception as exc:
            self.failed(exc)

    cdef bint _fast(self, object data) except -1:
        if type(data) is not bytes or not self.joined or self.link is None or self.schemas is None \
                or self.bucket is None:
            return False
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        if n > self._max_bytes:
            return False
        fast = self.schemas[1]
        if not fast:
            return False
        try:
            type_, seq, raw = self._envelope.decode(data)
        except (DecodeError, ValidationError):
            return False
        entry = (<dict?>fast).get(type_)
        if entry is None or not (0 <= seq <= self._max_seq):
            return False
        cdef unsigned char header = <unsigned char>PyBytes_AS_STRING(data)[n - len(raw)]
        if header < 0x80 or header > <int>(<tuple>entry)[1]:
            return False
        try:
            payload = (<tuple>entry)[0].decode(raw)
        except (DecodeError, ValidationError):
            return False
        traffic = self.traffic
        traffic.messages_in += 1
        traffic.bytes_in += n
        if not self.bucket.take():
            self._rate_limited(0)
            return True
        self._errors = 0
        if not self.link.submit(self._message(self.conn_id, self._client_message(type_, seq, payload))):
            self.room_busy(seq)
        return True


cdef class FrameReader:
    """See ``starhold.kernels.wsinput.FrameReader``."""

    cdef object inner
    cdef object queue
    cdef object _handler
    cdef InputGate _gate
    cdef bytes _tail
    cdef bint _delegate
    cdef bint _failed
    cdef Py_ssize_t max_msg_size
    cdef public unsigned long long received

    def __init__(self, inner, queue, Py_ssize_t max_msg_size):
        self.inner, self.queue, self.max_msg_size = inner, queue, max_msg_size
        self._handler = None
        self._gate = None
        self._tail = None
        self._delegate = False
        self._failed = False
        self.received = 0

    @property
    def handler(self):
        return self._handler

    @handler.setter
    def handler(self, value):
        self._handler = value
        self._gate = value if isinstance(value, InputGate) else None

    @property
    def delegating(self):
        """Whether every byte now goes to the inner reader (see the twin)."""
        return self._delegate

    def feed_eof(self):
        self.inner.feed_eof()

    def feed_data(self, data):
        if self._delegate:
            return self.inner.feed_data(data)
        if self._failed:
            return True, data
        if type(data) is not bytes:
            data = bytes(data)
        if self._tail is not None:
            data = self._tail + data
            self._tail = None
        queue = self.queue
        if queue._stalled_reader is not None or queue._size > queue._limit:
            return self._hand_over(data, 0)
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data), pos = 0, hdr, length, end, i
        cdef unsigned char b0, b1, op
        cdef const unsigned char* mask
        cdef char* out
        while n - pos >= 2:
            b0, b1 = p[pos], p[pos + 1]
            op = b0 & 0x0F
            if (b0 & 0xF0) != 0x80 or not (op == 1 or op == 2 or op == 8 or op == 9 or op == 10):
                return self._hand_over(data, pos)  # fragments, reserved bits, bad opcodes: aiohttp's
            length = b1 & 0x7F
            hdr = 2
            if length == 126:
                if op >= 8:
                    return self._hand_over(data, pos)
                if n - pos < 4:
                    break
                length = (<Py_ssize_t>p[pos + 2] << 8) | p[pos + 3]
                hdr = 4
            elif length == 127:
                return self._hand_over(data, pos)
            if op < 8 and self.max_msg_size and length >= self.max_msg_size:
                return self._hand_over(data, pos)
            if b1 & 0x80:
                hdr += 4
            end = pos + hdr + length
            if end > n:
                if end - pos > TAIL_LIMIT:
                    return self._hand_over(data, pos)
                break
            if op == 2 and self._handler is not None:
                out_obj = PyBytes_FromStringAndSize(NULL, length)
                out = PyBytes_AS_STRING(out_obj)
                if b1 & 0x80:
                    mask = p + pos + hdr - 4
                    for i in range(length):
                        out[i] = <char>(p[pos + hdr + i] ^ mask[i & 3])
                else:
                    for i in range(length):
                        out[i] = <char>p[pos + hdr + i]
                pos = end
                self.received += 1
                try:
                    if self._gate is not None:
                        self._gate._deliver(out_obj)
                    else:
                        self._handler(out_obj)
                except Exception as exc:
                    self._failed = True
                    queue.set_exception(exc)
                    return _ERROR
                continue
            result = self.inner.feed_data(data[pos:end])
            pos = end
            if result[0]:
                self._delegate = True
                return result
            if queue._stalled_reader is not None or queue._size > queue._limit:
                return self._hand_over(data, pos)
        if pos < n:
            self._tail = data[pos:]
        return _EMPTY

    cdef _hand_over(self, bytes data, Py_ssize_t pos):
        self._delegate = True
        if pos >= PyBytes_GET_SIZE(data):
            return _EMPTY
        return self.inner.feed_data(data[pos:] if pos else data)
