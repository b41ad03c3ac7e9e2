# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled CCSDS pseudo-randomizers (twin: cython_ext/pure/randomizer.py).

The PN sequence is generated once per frame length by the twin; the kernel is
the XOR of every frame with it, eight bytes at a time.
"""
from libc.stdint cimport uint8_t, uint16_t, uint64_t, int64_t
from libc.string cimport memcpy

import numpy as np

from cython_ext._crc16 cimport crc16_tables, crc16_update4, crc16_update

cdef uint16_t _CRC_TABLE[16 * 256]
crc16_tables(_CRC_TABLE)

from cython_ext.pure.randomizer import (  # noqa: F401 - sequence generation is not on the hot path
    PERIOD, tc_randomize, tc_sequence, tm_randomize, tm_sequence,
)


from cython_ext.buffers import KernelArgumentError
from cython_ext.buffers import as_u8 as _u8


cdef void _xor_frames(const uint8_t *src, uint8_t *dst, const uint8_t *seq, Py_ssize_t frame,
                      Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t f, i
    cdef uint64_t a, b
    cdef const uint8_t *s
    cdef uint8_t *d
    for f in range(count):
        s = src + f * frame
        d = dst + f * frame
        i = 0
        while i + 8 <= frame:
            memcpy(&a, s + i, 8)
            memcpy(&b, seq + i, 8)
            a ^= b
            memcpy(d + i, &a, 8)
            i += 8
        while i < frame:
            d[i] = s[i] ^ seq[i]
            i += 1


def tm_randomize_many(buffer, frame_length: int) -> bytes:
    """Randomize N back-to-back frames of ``frame_length`` bytes (sequence restarts per frame).

    The buffer length must be a multiple of ``frame_length``.
    """
    cdef const uint8_t[::1] src = _u8(buffer)
    if frame_length <= 0 or src.shape[0] % frame_length:
        raise KernelArgumentError("tm_randomize_many", "frame_length",
                                  f"buffer of {src.shape[0]} bytes is not a whole number of {frame_length}-byte frames")
    out = bytearray(src.shape[0])
    if src.shape[0] == 0:
        return bytes(out)
    seq_bytes = tm_sequence(frame_length)
    cdef const uint8_t[::1] seq = seq_bytes
    cdef uint8_t[::1] dst = out
    cdef Py_ssize_t fl = frame_length
    with nogil:
        _xor_frames(&src[0], &dst[0], &seq[0], fl, src.shape[0] // fl)
    return bytes(out)


def tm_derandomize_into(buffer, frame_length: int, out) -> None:
    """XOR N back-to-back frames with the TM sequence into the writable buffer ``out`` (no copy)."""
    cdef const uint8_t[::1] src = _u8(buffer)
    cdef uint8_t[::1] dst = _u8(out)
    if frame_length <= 0 or src.shape[0] % frame_length or dst.shape[0] < src.shape[0]:
        raise KernelArgumentError("tm_derandomize_into", "frame_length",
                                  "buffer must be whole frames and out at least as long")
    if src.shape[0] == 0:
        return
    seq_bytes = tm_sequence(frame_length)
    cdef const uint8_t[::1] seq = seq_bytes
    cdef Py_ssize_t fl = frame_length
    with nogil:
        _xor_frames(&src[0], &dst[0], &seq[0], fl, src.shape[0] // fl)


def tm_derandomize_frames(buffer, offsets, frame_length: int):
    """Gather the frames starting at ``offsets`` and derandomize them: a (frames, frame_length) uint8 array."""
    cdef const uint8_t[::1] src = _u8(buffer)
    offs_a = np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1)
    if frame_length <= 0 or (offs_a.size and (offs_a.min() < 0 or offs_a.max() + frame_length > src.shape[0])):
        raise KernelArgumentError("tm_derandomize_frames", "offsets", "a frame runs outside the buffer")
    out = np.empty((offs_a.size, frame_length), dtype=np.uint8)
    if offs_a.size == 0:
        return out
    seq_bytes = tm_sequence(frame_length)
    cdef const uint8_t[::1] seq = seq_bytes
    cdef const int64_t[::1] offs = offs_a
    cdef uint8_t[:, ::1] dst = out
    cdef Py_ssize_t fl = frame_length, i, n = offs_a.size
    with nogil:
        for i in range(n):
            _xor_frames(&src[offs[i]], &dst[i, 0], &seq[0], fl, 1)
    return out


def tm_derandomize_check(buffer, offsets, frame_length: int):
    """Derandomize the frames at ``offsets`` and check their FECF in the same pass: ``(frames, fecf_ok)``.

    Four frames at a time: XOR them while they stream in, then run their CRCs
    interleaved while they are still in L1.
    """
    if frame_length < 2:
        raise KernelArgumentError("tm_derandomize_check", "frame_length", "a frame with an FECF has at least 2 bytes")
    cdef const uint8_t[::1] src = _u8(buffer)
    offs_a = np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1)
    if offs_a.size and (offs_a.min() < 0 or offs_a.max() + frame_length > src.shape[0]):
        raise KernelArgumentError("tm_derandomize_frames", "offsets", "a frame runs outside the buffer")
    out = np.empty((offs_a.size, frame_length), dtype=np.uint8)
    ok_a = np.empty(offs_a.size, dtype=bool)
    if offs_a.size == 0:
        return out, ok_a
    seq_bytes = tm_sequence(frame_length)
    cdef const uint8_t[::1] seq = seq_bytes
    cdef const int64_t[::1] offs = offs_a
    cdef uint8_t[:, ::1] dst = out
    cdef uint8_t[::1] ok = ok_a.view(np.uint8)
    cdef Py_ssize_t fl = frame_length, i = 0, j, n = offs_a.size
    cdef const uint8_t *ptrs[4]
    cdef uint16_t c4[4]
    cdef uint16_t fecf, crc
    with nogil:
        while i < n:
            if i + 4 <= n:
                for j in range(4):
                    _xor_frames(&src[offs[i + j]], &dst[i + j, 0], &seq[0], fl, 1)
                    ptrs[j] = &dst[i + j, 0]
                    c4[j] = 0xFFFF
                crc16_update4(_CRC_TABLE, c4, ptrs, fl - 2)
                for j in range(4):
                    fecf = (<uint16_t>dst[i + j, fl - 2] << 8) | dst[i + j, fl - 1]
                    ok[i + j] = c4[j] == fecf
                i += 4
            else:
                _xor_frames(&src[offs[i]], &dst[i, 0], &seq[0], fl, 1)
                crc = crc16_update(_CRC_TABLE, 0xFFFF, &dst[i, 0], fl - 2)
                fecf = (<uint16_t>dst[i, fl - 2] << 8) | dst[i, fl - 1]
                ok[i] = crc == fecf
                i += 1
    return out, ok_a
