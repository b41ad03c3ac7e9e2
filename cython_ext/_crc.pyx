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

cdef uint16_t T[16][256]


cdef void _init_tables() noexcept:
    cdef int b, k, bit
    cdef uint16_t c
    for b in range(256):
        c = <uint16_t>(b << 8)
        for bit in range(8):
            c = <uint16_t>((c << 1) ^ 0x1021) if c & 0x8000 else <uint16_t>(c << 1)
        T[0][b] = c
    for k in range(1, 16):
        for b in range(256):
            T[k][b] = <uint16_t>((T[k - 1][b] << 8) ^ T[0][T[k - 1][b] >> 8])


_init_tables()


cdef inline uint16_t _update(uint16_t crc, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    while n >= 16:
        crc = (T[15][p[0] ^ (crc >> 8)] ^ T[14][p[1] ^ (crc & 0xFF)] ^ T[13][p[2]] ^ T[12][p[3]]
               ^ T[11][p[4]] ^ T[10][p[5]] ^ T[9][p[6]] ^ T[8][p[7]] ^ T[7][p[8]] ^ T[6][p[9]]
               ^ T[5][p[10]] ^ T[4][p[11]] ^ T[3][p[12]] ^ T[2][p[13]] ^ T[1][p[14]] ^ T[0][p[15]])
        p += 16
        n -= 16
    while n >= 4:
        crc = (T[3][p[0] ^ (crc >> 8)] ^ T[2][p[1] ^ (crc & 0xFF)] ^ T[1][p[2]] ^ T[0][p[3]])
        p += 4
        n -= 4
    while n > 0:
        crc = <uint16_t>((crc << 8) ^ T[0][(crc >> 8) ^ p[0]])
        p += 1
        n -= 1
    return crc


cdef inline void _update4(uint16_t *c, const uint8_t **p, Py_ssize_t n) noexcept nogil:
    """Four same-length CRCs advanced together (interleaved for instruction-level parallelism)."""
    cdef const uint8_t *a = p[0]
    cdef const uint8_t *b = p[1]
    cdef const uint8_t *d = p[2]
    cdef const uint8_t *e = p[3]
    cdef uint16_t ca = c[0], cb = c[1], cd = c[2], ce = c[3]
    cdef Py_ssize_t i = 0
    while n - i >= 16:
        ca = (T[15][a[i] ^ (ca >> 8)] ^ T[14][a[i + 1] ^ (ca & 0xFF)] ^ T[13][a[i + 2]] ^ T[12][a[i + 3]]
              ^ T[11][a[i + 4]] ^ T[10][a[i + 5]] ^ T[9][a[i + 6]] ^ T[8][a[i + 7]] ^ T[7][a[i + 8]]
              ^ T[6][a[i + 9]] ^ T[5][a[i + 10]] ^ T[4][a[i + 11]] ^ T[3][a[i + 12]] ^ T[2][a[i + 13]]
              ^ T[1][a[i + 14]] ^ T[0][a[i + 15]])
        cb = (T[15][b[i] ^ (cb >> 8)] ^ T[14][b[i + 1] ^ (cb & 0xFF)] ^ T[13][b[i + 2]] ^ T[12][b[i + 3]]
              ^ T[11][b[i + 4]] ^ T[10][b[i + 5]] ^ T[9][b[i + 6]] ^ T[8][b[i + 7]] ^ T[7][b[i + 8]]
              ^ T[6][b[i + 9]] ^ T[5][b[i + 10]] ^ T[4][b[i + 11]] ^ T[3][b[i + 12]] ^ T[2][b[i + 13]]
              ^ T[1][b[i + 14]] ^ T[0][b[i + 15]])
        cd = (T[15][d[i] ^ (cd >> 8)] ^ T[14][d[i + 1] ^ (cd & 0xFF)] ^ T[13][d[i + 2]] ^ T[12][d[i + 3]]
              ^ T[11][d[i + 4]] ^ T[10][d[i + 5]] ^ T[9][d[i + 6]] ^ T[8][d[i + 7]] ^ T[7][d[i + 8]]
              ^ T[6][d[i + 9]] ^ T[5][d[i + 10]] ^ T[4][d[i + 11]] ^ T[3][d[i + 12]] ^ T[2][d[i + 13]]
              ^ T[1][d[i + 14]] ^ T[0][d[i + 15]])
        ce = (T[15][e[i] ^ (ce >> 8)] ^ T[14][e[i + 1] ^ (ce & 0xFF)] ^ T[13][e[i + 2]] ^ T[12][e[i + 3]]
              ^ T[11][e[i + 4]] ^ T[10][e[i + 5]] ^ T[9][e[i + 6]] ^ T[8][e[i + 7]] ^ T[7][e[i + 8]]
              ^ T[6][e[i + 9]] ^ T[5][e[i + 10]] ^ T[4][e[i + 11]] ^ T[3][e[i + 12]] ^ T[2][e[i + 13]]
              ^ T[1][e[i + 14]] ^ T[0][e[i + 15]])
        i += 16
    while i < n:
        ca = <uint16_t>((ca << 8) ^ T[0][(ca >> 8) ^ a[i]])
        cb = <uint16_t>((cb << 8) ^ T[0][(cb >> 8) ^ b[i]])
        cd = <uint16_t>((cd << 8) ^ T[0][(cd >> 8) ^ d[i]])
        ce = <uint16_t>((ce << 8) ^ T[0][(ce >> 8) ^ e[i]])
        i += 1
    c[0] = ca; c[1] = cb; c[2] = cd; c[3] = ce


def _u8(obj):
    if isinstance(obj, np.ndarray):
        return obj.reshape(-1).view(np.uint8)
    return memoryview(obj).cast("B")


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

    Raises ValueError if any slice runs outside the buffer.
    """
    cdef const uint8_t[::1] view = _u8(buffer)
    offs_a = np.ascontiguousarray(offsets, dtype=np.int64)
    lens_a = np.ascontiguousarray(lengths, dtype=np.int64)
    if offs_a.shape != lens_a.shape:
        raise ValueError("offsets and lengths differ in shape")
    offs_a = offs_a.reshape(-1)
    lens_a = lens_a.reshape(-1)
    if offs_a.size and (offs_a.min() < 0 or lens_a.min() < 0 or (offs_a + lens_a).max() > view.shape[0]):
        raise ValueError("a CRC slice runs outside the buffer")
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
        raise ValueError("need 0 <= crc_length <= record_length and record_length > 0")
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
