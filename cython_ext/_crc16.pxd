# cython: language_level=3
"""CRC-16/CCITT-FALSE slice-by-16 core, shared (inline) by the kernels that need it.

Each module keeps its own 16 x 256 table (``crc16_tables`` fills one), so no
module depends on another at import time.
"""
from libc.stdint cimport uint8_t, uint16_t


cdef inline void crc16_tables(uint16_t *T) noexcept nogil:
    cdef int b, k, bit
    cdef uint16_t c
    for b in range(256):
        c = <uint16_t>(b << 8)
        for bit in range(8):
            c = <uint16_t>((c << 1) ^ 0x1021) if c & 0x8000 else <uint16_t>(c << 1)
        T[b] = c
    for k in range(1, 16):
        for b in range(256):
            T[k * 256 + b] = <uint16_t>((T[(k - 1) * 256 + b] << 8) ^ T[T[(k - 1) * 256 + b] >> 8])


cdef inline uint16_t crc16_update(const uint16_t *T, uint16_t crc, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    # Table k advances a byte through k further zero bytes: 16 bytes cost 16 independent lookups.
    while n >= 16:
        crc = (T[15 * 256 + (p[0] ^ (crc >> 8))] ^ T[14 * 256 + (p[1] ^ (crc & 0xFF))] ^ T[13 * 256 + p[2]]
               ^ T[12 * 256 + p[3]] ^ T[11 * 256 + p[4]] ^ T[10 * 256 + p[5]] ^ T[9 * 256 + p[6]]
               ^ T[8 * 256 + p[7]] ^ T[7 * 256 + p[8]] ^ T[6 * 256 + p[9]] ^ T[5 * 256 + p[10]]
               ^ T[4 * 256 + p[11]] ^ T[3 * 256 + p[12]] ^ T[2 * 256 + p[13]] ^ T[256 + p[14]] ^ T[p[15]])
        p += 16
        n -= 16
    while n >= 4:
        crc = (T[3 * 256 + (p[0] ^ (crc >> 8))] ^ T[2 * 256 + (p[1] ^ (crc & 0xFF))] ^ T[256 + p[2]] ^ T[p[3]])
        p += 4
        n -= 4
    while n > 0:
        crc = <uint16_t>((crc << 8) ^ T[(crc >> 8) ^ p[0]])
        p += 1
        n -= 1
    return crc


cdef inline uint16_t _r16(const uint16_t *T, uint16_t c, const uint8_t *a) noexcept nogil:
    return (T[15 * 256 + (a[0] ^ (c >> 8))] ^ T[14 * 256 + (a[1] ^ (c & 0xFF))] ^ T[13 * 256 + a[2]]
            ^ T[12 * 256 + a[3]] ^ T[11 * 256 + a[4]] ^ T[10 * 256 + a[5]] ^ T[9 * 256 + a[6]]
            ^ T[8 * 256 + a[7]] ^ T[7 * 256 + a[8]] ^ T[6 * 256 + a[9]] ^ T[5 * 256 + a[10]]
            ^ T[4 * 256 + a[11]] ^ T[3 * 256 + a[12]] ^ T[2 * 256 + a[13]] ^ T[256 + a[14]] ^ T[a[15]])


cdef inline void crc16_update4(const uint16_t *T, uint16_t *c, const uint8_t **p, Py_ssize_t n) noexcept nogil:
    """Four same-length CRCs advanced together (independent chains overlap in the CPU)."""
    cdef const uint8_t *a = p[0]
    cdef const uint8_t *b = p[1]
    cdef const uint8_t *d = p[2]
    cdef const uint8_t *e = p[3]
    cdef uint16_t ca = c[0], cb = c[1], cd = c[2], ce = c[3]
    cdef Py_ssize_t i = 0
    while n - i >= 16:
        ca = _r16(T, ca, a + i)
        cb = _r16(T, cb, b + i)
        cd = _r16(T, cd, d + i)
        ce = _r16(T, ce, e + i)
        i += 16
    while i < n:
        ca = <uint16_t>((ca << 8) ^ T[(ca >> 8) ^ a[i]])
        cb = <uint16_t>((cb << 8) ^ T[(cb >> 8) ^ b[i]])
        cd = <uint16_t>((cd << 8) ^ T[(cd >> 8) ^ d[i]])
        ce = <uint16_t>((ce << 8) ^ T[(ce >> 8) ^ e[i]])
        i += 1
    c[0] = ca; c[1] = cb; c[2] = cd; c[3] = ce
