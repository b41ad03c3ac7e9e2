# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled attached sync marker search (twin: cython_ext/pure/sync.py).

Markers of up to 8 bytes are compared as one 64-bit word rolled one byte at a
time, so the fuzzy search costs a popcount per byte.
"""
from libc.stdint cimport uint8_t, uint64_t, int64_t

import numpy as np

from cython_ext.pure.sync import ASM, check_cadu_length

cdef extern from *:
    """
    static inline int qq_popcount64(unsigned long long x) { return __builtin_popcountll(x); }
    """
    int qq_popcount64(unsigned long long x) nogil


from cython_ext.buffers import as_u8 as _u8
from cython_ext.buffers import check_marker, check_start


cdef Py_ssize_t _scan(const uint8_t *d, Py_ssize_t n, Py_ssize_t start, uint64_t word, Py_ssize_t m,
                      int max_errors, int64_t *out, Py_ssize_t capacity) noexcept nogil:
    """Positions >= start whose m-byte window is within max_errors bits of ``word``; first ``capacity`` kept."""
    cdef uint64_t window = 0, mask = (<uint64_t>0xFFFFFFFFFFFFFFFF) if m == 8 else (((<uint64_t>1) << (8 * m)) - 1)
    cdef Py_ssize_t i, count = 0
    if n - start < m:
        return 0
    for i in range(start, start + m - 1):
        window = (window << 8) | d[i]
    for i in range(start + m - 1, n):
        window = ((window << 8) | d[i]) & mask
        if qq_popcount64(window ^ word) <= max_errors:
            out[count] = i - m + 1
            count += 1
            if count >= capacity:
                return count
    return count


cdef uint64_t _word(bytes marker):
    cdef uint64_t w = 0
    for b in marker:
        w = (w << 8) | <uint8_t>b
    return w


def find_asm(buffer, start: int = 0, marker: bytes = ASM, max_bit_errors: int = 0) -> int:
    """Offset of the first marker at or after ``start`` (-1 if none).

    With ``max_bit_errors`` > 0 a position matches when at most that many bits differ.
    """
    marker = check_marker("find_asm", marker)
    if max_bit_errors <= 0 or len(marker) > 8:
        if max_bit_errors <= 0:
            data = buffer if isinstance(buffer, (bytes, bytearray)) else bytes(buffer)
            return data.find(marker, check_start("find_asm", start, len(data)))
        from cython_ext.pure.sync import find_asm as slow
        return slow(buffer, start, marker, max_bit_errors)
    cdef const uint8_t[::1] d = _u8(buffer)
    cdef int64_t hit = -1
    cdef Py_ssize_t n = d.shape[0], s = check_start("find_asm", start, d.shape[0]), m = len(marker), found
    cdef uint64_t w = _word(marker)
    cdef int e = max_bit_errors
    if n == 0:
        return -1
    with nogil:
        found = _scan(&d[0], n, s, w, m, e, &hit, 1)
    return int(hit) if found else -1


def find_all_asm(buffer, start: int = 0, marker: bytes = ASM, max_bit_errors: int = 0):
    """Offsets (int64) of every marker at or after ``start``; overlapping hits included."""
    marker = check_marker("find_all_asm", marker)
    if len(marker) > 8:
        from cython_ext.pure.sync import find_all_asm as slow
        return slow(buffer, start, marker, max_bit_errors)
    cdef const uint8_t[::1] d = _u8(buffer)
    cdef Py_ssize_t n = d.shape[0], s = check_start("find_all_asm", start, d.shape[0]), m = len(marker), count = 0
    out = np.empty(max(n - s, 1), dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef uint64_t w = _word(marker)
    cdef int e = max(0, max_bit_errors)
    if n == 0:
        return out[:0]
    with nogil:
        count = _scan(&d[0], n, s, w, m, e, &o[0], o.shape[0])
    return out[:count].copy()


def bit_errors(buffer, offset: int, marker: bytes = ASM) -> int:
    """Number of bits in which ``buffer[offset:offset+len(marker)]`` differs from the marker."""
    from cython_ext.pure.sync import bit_errors as slow
    return slow(buffer, offset, marker)


def lock_frames(buffer, cadu_length: int, start: int = 0, marker: bytes = ASM, max_bit_errors: int = 0):
    """Frame synchroniser over a CADU byte stream: ``(offsets, resume)`` (see the twin)."""
    marker = check_marker("lock_frames", marker)
    if len(marker) > 8:
        from cython_ext.pure.sync import lock_frames as slow
        return slow(buffer, cadu_length, start, marker, max_bit_errors)
    cadu_length = check_cadu_length(cadu_length, len(marker))
    cdef const uint8_t[::1] d = _u8(buffer)
    start = check_start("lock_frames", start, d.shape[0])
    cdef Py_ssize_t n = d.shape[0], m = len(marker), pos = start, cl = cadu_length, count = 0, k
    cdef uint64_t w = _word(marker), window, mask = (<uint64_t>0xFFFFFFFFFFFFFFFF) if m == 8 else (((<uint64_t>1) << (8 * m)) - 1)
    cdef int e = max_bit_errors
    cdef int64_t hit
    out = np.empty(max(n // cl + 1, 1), dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef Py_ssize_t resume, st = start
    if n == 0:
        return out[:0], max(start, n - m + 1)
    with nogil:
        while True:
            if _scan(&d[0], n, pos, w, m, 0, &hit, 1) == 0:
                resume = n - m + 1 if n - m + 1 > st else st
                break
            pos = hit
            while pos + cl <= n:
                window = 0
                for k in range(m):
                    window = (window << 8) | d[pos + k]
                if qq_popcount64((window ^ w) & mask) > e:
                    break
                o[count] = pos
                count += 1
                pos += cl
            if pos + cl > n:
                resume = pos
                break
            pos += 1
    return out[:count].copy(), resume
