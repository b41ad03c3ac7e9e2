# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""CRC-16/CCITT-FALSE, slice-by-16 (twin: cython_ext/pure/crc.py).

Sixteen 256-entry tables: table k advances a byte through k further zero
bytes, so 16 input bytes cost 16 independent lookups and one dependency on the
running CRC instead of 16 chained ones.  Many short records (packets, frames)
are processed four at a time so their independent chains overlap in the CPU.
"""
from libc.stdint cimport uint8_t, uint16_t, int64_t

import numpy as np

CRC16_INIT = 0xFFFF

from cython_ext._crc16 cimport crc16_tables, crc16_update, crc16_update4

cdef uint16_t _TABLE[16 * 256]
crc16_tables(_TABLE)


cdef inline uint16_t _update(uint16_t crc, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    return crc16_update(_TABLE, crc, p, n)


cdef inline void _update4(uint16_t *c, const uint8_t **p, Py_ssize_t n) noexcept nogil:
    crc16_update4(_TABLE, c, p, n)


from cython_ext.buffers import KernelArgumentError
from cython_ext.buffers import as_u8 as _u8


def crc16(data, init: int = CRC16_INIT) -> int:
    """CRC-16/CCITT-FALSE of a bytes-like object."""
    cdef const uint8_t[::1] view = _u8(data)
    cdef Py_ssize_t n = view.shape[0]
    cdef uint16_t crc = <uint16_t>init
    if n:
        with nogil:
            crc = _update(crc, &view[0], n)
    return crc


def crc16_many(buffer, offsets, lengths, init: int = CRC16_INIT):
    """CRC of ``buffer[offsets[i] : offsets[i] + lengths[i]]`` for every i (uint16 array).

    Raises KernelArgumentError if any slice runs outside the buffer.
    """
    cdef const uint8_t[::1] view = _u8(buffer)
    offs_a = np.ascontiguousarray(offsets, dtype=np.int64)
    lens_a = np.ascontiguousarray(lengths, dtype=np.int64)
    if offs_a.shape != lens_a.shape:
        raise KernelArgumentError("crc16_many", "lengths", "offsets and lengths differ in shape")
    offs_a = offs_a.reshape(-1)
    lens_a = lens_a.reshape(-1)
    if offs_a.size and (offs_a.min() < 0 or lens_a.min() < 0 or (offs_a + lens_a).max() > view.shape[0]):
        raise KernelArgumentError("crc16_many", "offsets", "a CRC slice runs outside the buffer")
    cdef const int64_t[::1] offs = offs_a
    cdef const int64_t[::1] lens = lens_a
    out = np.empty(offs_a.size, dtype=np.uint16)
    cdef uint16_t[::1] res = out
    cdef Py_ssize_t i, n = offs_a.size
    cdef const uint8_t *base = &view[0] if view.shape[0] else NULL
    cdef uint16_t cinit = init
    cdef const uint8_t *ptrs[4]
    cdef uint16_t c4[4]
    cdef Py_ssize_t j
    with nogil:
        i = 0
        while i < n:
            # Four slices of the same length (the usual case: one packet type) run interleaved.
            if i + 4 <= n and lens[i] == lens[i + 1] and lens[i] == lens[i + 2] and lens[i] == lens[i + 3]:
                for j in range(4):
                    ptrs[j] = base + offs[i + j]
                    c4[j] = cinit
                _update4(c4, ptrs, lens[i])
                for j in range(4):
                    res[i + j] = c4[j]
                i += 4
            else:
                res[i] = _update(cinit, base + offs[i], lens[i]) if lens[i] else cinit
                i += 1
    return out


def crc16_strided(buffer, record_length: int, crc_length: int, init: int = CRC16_INIT):
    """CRC of the first ``crc_length`` bytes of each ``record_length``-byte record.

    The common case on the hot path: N fixed-length frames or packets back to back.
    Trailing bytes that do not fill a record are ignored.
    """
    if record_length <= 0 or not 0 <= crc_length <= record_length:
        raise KernelArgumentError("crc16_strided", "crc_length",
                                  "need 0 <= crc_length <= record_length and record_length > 0")
    cdef const uint8_t[::1] view = _u8(buffer)
    cdef Py_ssize_t rl = record_length, cl = crc_length
    cdef Py_ssize_t count = view.shape[0] // rl, i, j
    out = np.empty(count, dtype=np.uint16)
    if count == 0:
        return out
    cdef uint16_t[::1] res = out
    cdef const uint8_t *base = &view[0]
    cdef const uint8_t *ptrs[4]
    cdef uint16_t c4[4]
    cdef uint16_t cinit = init
    with nogil:
        i = 0
        while i + 4 <= count:
            for j in range(4):
                ptrs[j] = base + (i + j) * rl
                c4[j] = cinit
            _update4(c4, ptrs, cl)
            for j in range(4):
                res[i + j] = c4[j]
            i += 4
        while i < count:
            res[i] = _update(cinit, base + i * rl, cl)
            i += 1
    return out
