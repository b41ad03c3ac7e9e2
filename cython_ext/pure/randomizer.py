"""CCSDS pseudo-randomizers (self-inverse XOR with a fixed PN sequence).

TM (131.0-B): h(x) = x^8 + x^7 + x^5 + x^3 + 1, seed all ones, period 255 bytes,
starts FF 48 0E C0 9A ...  TC (231.0-B): h(x) = x^8 + x^6 + x^4 + x^3 + x^2 + x + 1,
seed all ones, starts FF 39 9E 5A 68.  Both restart at the start of every frame.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from cython_ext.buffers import KernelArgumentError

PERIOD = 255


def _lfsr(taps: tuple[int, ...], length: int) -> bytes:
    # Fibonacci LFSR: output the low bit, feed the XOR of the tapped bits back in at
    # the top.  The taps are the polynomial's exponents below 8.
    register = 0xFF
    out = bytearray(length)
    for i in range(length):
        byte = 0
        for _ in range(8):
            byte = (byte << 1) | (register & 1)
            feedback = 0
            for tap in taps:
                feedback ^= (register >> tap) & 1
            register = (register >> 1) | (feedback << 7)
        out[i] = byte
    return bytes(out)


@lru_cache(maxsize=1)
def _tm_period() -> bytes:
    return _lfsr((0, 3, 5, 7), PERIOD)


@lru_cache(maxsize=1)
def _tc_period() -> bytes:
    return _lfsr((0, 1, 2, 3, 4, 6), PERIOD)


def _repeat(period: bytes, length: int) -> bytes:
    reps, rest = divmod(length, PERIOD)
    return period * reps + period[:rest]


def tm_sequence(length: int) -> bytes:
    """The first ``length`` bytes of the TM pseudo-random sequence."""
    return _repeat(_tm_period(), length)


def tc_sequence(length: int) -> bytes:
    """The first ``length`` bytes of the TC pseudo-random sequence."""
    return _repeat(_tc_period(), length)


def _xor(data, sequence: bytes) -> bytes:
    raw = np.frombuffer(data, dtype=np.uint8)
    return (raw ^ np.frombuffer(sequence, dtype=np.uint8)).tobytes()


def tm_randomize(data) -> bytes:
    """XOR one frame with the TM sequence (randomize and derandomize alike)."""
    return _xor(data, tm_sequence(len(data)))


def tc_randomize(data) -> bytes:
    """XOR one TC frame with the TC sequence (randomize and derandomize alike)."""
    return _xor(data, tc_sequence(len(data)))


def tm_randomize_many(buffer, frame_length: int) -> bytes:
    """Randomize N back-to-back frames of ``frame_length`` bytes (sequence restarts per frame).

    The buffer length must be a multiple of ``frame_length``.
    """
    if frame_length <= 0 or len(buffer) % frame_length:
        raise KernelArgumentError("tm_randomize_many", "frame_length",
                                  f"buffer of {len(buffer)} bytes is not a whole number of {frame_length}-byte frames")
    frames = np.frombuffer(buffer, dtype=np.uint8).reshape(-1, frame_length)
    return (frames ^ np.frombuffer(tm_sequence(frame_length), dtype=np.uint8)).tobytes()


def tm_derandomize_into(buffer, frame_length: int, out) -> None:
    """XOR N back-to-back frames with the TM sequence into the writable buffer ``out``."""
    if frame_length <= 0 or len(buffer) % frame_length or len(out) < len(buffer):
        raise KernelArgumentError("tm_derandomize_into", "frame_length",
                                  "buffer must be whole frames and out at least as long")
    target = out.reshape(-1).view(np.uint8) if isinstance(out, np.ndarray) else np.frombuffer(out, dtype=np.uint8)
    frames = np.frombuffer(buffer, dtype=np.uint8).reshape(-1, frame_length)
    np.bitwise_xor(frames, np.frombuffer(tm_sequence(frame_length), dtype=np.uint8),
                   out=target[: frames.size].reshape(-1, frame_length))


def tm_derandomize_frames(buffer, offsets, frame_length: int) -> np.ndarray:
    """Gather the frames starting at ``offsets`` and derandomize them: a (frames, frame_length) uint8 array.

    The frame synchroniser's offsets (after the ASM) go straight in, so the CADU
    stream is read once and never copied frame by frame.
    """
    data = buffer.reshape(-1).view(np.uint8) if isinstance(buffer, np.ndarray) else np.frombuffer(buffer, np.uint8)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    if frame_length <= 0 or (offsets.size and (offsets.min() < 0 or offsets.max() + frame_length > data.size)):
        raise KernelArgumentError("tm_derandomize_frames", "offsets", "a frame runs outside the buffer")
    sequence = np.frombuffer(tm_sequence(frame_length), dtype=np.uint8)
    if offsets.size > 1 and np.all(np.diff(offsets) == offsets[1] - offsets[0]) and offsets[1] > offsets[0]:
        # Evenly spaced (a locked stream): a strided view instead of a fancy-index gather.
        frames = np.lib.stride_tricks.as_strided(data[offsets[0]:], (offsets.size, frame_length),
                                                 (int(offsets[1] - offsets[0]), 1))
    else:
        frames = data[offsets[:, None] + np.arange(frame_length)]
    return frames ^ sequence


def tm_derandomize_check(buffer, offsets, frame_length: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tm_derandomize_frames` plus the FECF verdict of every frame (CRC-16 of all but the last two bytes)."""
    from cython_ext.pure.crc import crc16_strided

    if frame_length < 2:
        raise KernelArgumentError("tm_derandomize_check", "frame_length", "a frame with an FECF has at least 2 bytes")
    frames = tm_derandomize_frames(buffer, offsets, frame_length)
    crc = crc16_strided(frames, frame_length, frame_length - 2)
    fecf = (frames[:, -2].astype(np.uint16) << 8) | frames[:, -1]
    return frames, crc == fecf
