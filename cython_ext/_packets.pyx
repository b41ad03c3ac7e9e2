# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled space packet boundaries (twin: cython_ext/pure/packets.py, which documents the results)."""
from libc.stdint cimport uint8_t, int64_t

import numpy as np

from cython_ext.pure.packets import (  # noqa: F401 - shared constants
    SPLIT_OK, SPLIT_TRUNCATED, SPLIT_BAD_HEADER, HEADER, FHP_NO_START, FHP_IDLE, IDLE_APID, MAX_PACKET,
)


cdef extern from *:
    """
    #define qq_prefetch(p) __builtin_prefetch((const void *)(p), 0, 0)
    """
    void qq_prefetch(const void *p) nogil

# The walk is a chain of dependent loads (each length gives the next header's address);
# prefetching a little ahead of it turns cache misses into streaming reads.
cdef enum:
    PREFETCH_AHEAD = 768


from cython_ext.buffers import as_u8 as _u8
from cython_ext.buffers import check_length, check_start
from cython_ext.pure.packets import check_batch


def split_packets(buffer, start=0, max_length=MAX_PACKET):
    """Walk concatenated space packets from ``start``: ``(offsets, lengths, end, status)``."""
    cdef const uint8_t[::1] data = _u8(buffer)
    cdef Py_ssize_t n = data.shape[0], pos = check_start("split_packets", start, data.shape[0]), length, count = 0
    cdef Py_ssize_t maxlen = check_length("split_packets", max_length, "max_length", HEADER + 1)
    cdef int status = 0
    capacity = max(1, (n - pos) // 7 + 1) if n > pos else 1
    offs_a = np.empty(capacity, dtype=np.int64)
    lens_a = np.empty(capacity, dtype=np.int64)
    cdef int64_t[::1] offs = offs_a
    cdef int64_t[::1] lens = lens_a
    with nogil:
        while pos < n:
            if n - pos < 6:
                status = 1
                break
            if pos + PREFETCH_AHEAD < n:
                qq_prefetch(&data[pos + PREFETCH_AHEAD])
            length = ((<Py_ssize_t>data[pos + 4] << 8) | data[pos + 5]) + 7
            if (data[pos] >> 5) or length > maxlen:
                status = 2
                break
            if pos + length > n:
                status = 1
                break
            offs[count] = pos
            lens[count] = length
            count += 1
            pos += length
    return offs_a[:count].copy(), lens_a[:count].copy(), pos, status


cdef inline Py_ssize_t _resync(const int64_t *fhp, Py_ssize_t frame, Py_ssize_t frames,
                               Py_ssize_t width) noexcept nogil:
    cdef Py_ssize_t h
    for h in range(frame, frames):
        if 0 <= fhp[h] < width:
            return h * width + fhp[h]
    return -1


cdef inline Py_ssize_t _first_break(const uint8_t *cont, const int64_t *fhp, Py_ssize_t a, Py_ssize_t b,
                                    Py_ssize_t frames) noexcept nogil:
    cdef Py_ssize_t h
    if b > frames - 1:
        b = frames - 1
    for h in range(a + 1, b + 1):
        if not cont[h] or fhp[h] == 0x7FE:
            return h
    return -1


cdef inline Py_ssize_t _frame_at(Py_ssize_t p, Py_ssize_t f, Py_ssize_t width) noexcept nogil:
    """Frame holding stream byte ``p``, stepping forward from frame ``f`` (p >= f * width).

    Packets span few frames, so stepping beats a 64-bit division per lookup.
    """
    cdef Py_ssize_t start = f * width
    while p >= start + width:
        start += width
        f += 1
    return f


def extract_packets(data_fields, fhp, continuous, drop_idle=True):
    """Packets of a batch of same-VC TM frame data fields: ``(offsets, lengths, frames, tail, lost, fhp_errors)``."""
    fields, fhp_a, cont_a = check_batch(data_fields, fhp, continuous)
    cont_a = cont_a.view(np.uint8)
    cdef Py_ssize_t frames = fields.shape[0], width = fields.shape[1]
    cdef Py_ssize_t total = frames * width
    stream_a = fields.reshape(-1)
    if total == 0:
        stream_a = np.zeros(1, dtype=np.uint8)
    cdef const uint8_t[::1] s = stream_a
    cdef const int64_t[::1] fh = fhp_a
    cdef const uint8_t[::1] cont = cont_a
    capacity = total // 7 + 1
    offs_a = np.empty(capacity, dtype=np.int64)
    lens_a = np.empty(capacity, dtype=np.int64)
    starts_a = np.empty(capacity, dtype=np.int64)
    cdef int64_t[::1] offs = offs_a
    cdef int64_t[::1] lens = lens_a
    cdef int64_t[::1] starts = starts_a
    cdef Py_ssize_t count = 0, lost = 0, fhp_errors = 0, tail = -1
    cdef Py_ssize_t pos, f0, bad, end, nxt, resume, h, expected, last
    cdef bint drop = drop_idle
    # Raw pointers in the walk: passing memoryviews to the helpers would touch reference counts per call.
    cdef const int64_t *fhp_p = &fh[0] if frames else NULL
    cdef const uint8_t *cont_p = &cont[0] if frames else NULL
    with nogil:
        pos = _resync(fhp_p, 0, frames, width) if width else -1
        f0 = pos // width if pos > 0 else 0
        while 0 <= pos < total:
            if pos < f0 * width:
                f0 = pos // width  # after a resync backwards (never in practice)
            f0 = _frame_at(pos, f0, width)
            bad = _first_break(cont_p, fhp_p, f0, _frame_at(pos + 5, f0, width), frames)
            if bad >= 0:
                lost += 1
                pos = _resync(fhp_p, bad, frames, width)
                continue
            if pos + 6 > total:
                tail = pos
                break
            if pos + PREFETCH_AHEAD < total:
                qq_prefetch(&s[pos + PREFETCH_AHEAD])
            if s[pos] >> 5:
                fhp_errors += 1
                pos = _resync(fhp_p, f0 + 1, frames, width)
                continue
            end = pos + ((<Py_ssize_t>s[pos + 4] << 8) | s[pos + 5]) + 7
            last = _frame_at(end - 1, f0, width)
            bad = _first_break(cont_p, fhp_p, f0, last, frames)
            if bad >= 0:
                lost += 1
                pos = _resync(fhp_p, bad, frames, width)
                continue
            if end > total:
                tail = pos
                break
            nxt = _frame_at(end, last, width)
            resume = end
            last = nxt if nxt < frames - 1 else frames - 1
            for h in range(f0 + 1, last + 1):
                if h == nxt and end == h * width and not cont[h]:
                    resume = _resync(fhp_p, h, frames, width)
                    break
                expected = end - h * width if h == nxt else 0x7FF
                if fhp_p[h] != expected:
                    fhp_errors += 1
                    lost += 1
                    resume = -2 - h
                    break
            if resume <= -2:
                pos = _resync(fhp_p, -2 - resume, frames, width)
                continue
            if not (drop and (((s[pos] & 7) << 8) | s[pos + 1]) == 0x7FF):
                offs[count] = pos
                lens[count] = end - pos
                starts[count] = f0
                count += 1
            pos = resume
    return offs_a[:count].copy(), lens_a[:count].copy(), starts_a[:count].copy(), tail, lost, fhp_errors
