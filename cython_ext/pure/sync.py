"""Attached sync marker search over a byte stream (CCSDS 131.0-B).

Byte-aligned search, as for every CADU stream this project carries (UART, TCP,
files).  ``max_bit_errors`` lets a frame synchroniser accept a marker with a few
flipped bits once locked, which is how real synchronisers tolerate noise.
"""
from __future__ import annotations

import numpy as np

from cython_ext.buffers import KernelArgumentError, check_length, check_marker, check_start

ASM = b"\x1a\xcf\xfc\x1d"

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def find_asm(buffer, start: int = 0, marker: bytes = ASM, max_bit_errors: int = 0) -> int:
    """Offset of the first marker at or after ``start`` (-1 if none).

    With ``max_bit_errors`` > 0 a position matches when at most that many bits differ.
    """
    data = buffer if isinstance(buffer, (bytes, bytearray)) else bytes(buffer)
    marker = check_marker("find_asm", marker)  # checked in the compiled kernel's order: marker, then start
    start = check_start("find_asm", start, len(data))
    if max_bit_errors <= 0:
        return data.find(marker, start)
    hits = _fuzzy_positions(buffer, start, marker, max_bit_errors)
    return int(hits[0]) if hits.size else -1


def find_all_asm(buffer, start: int = 0, marker: bytes = ASM, max_bit_errors: int = 0) -> np.ndarray:
    """Offsets (int64) of every marker at or after ``start``; overlapping hits included."""
    data = bytes(buffer)
    marker = check_marker("find_all_asm", marker)  # checked in the compiled kernel's order: marker, then start
    start = check_start("find_all_asm", start, len(data))
    if max_bit_errors <= 0:
        found = []
        pos = data.find(marker, start)
        while pos >= 0:
            found.append(pos)
            pos = data.find(marker, pos + 1)
        return np.array(found, dtype=np.int64)
    return _fuzzy_positions(buffer, start, marker, max_bit_errors)


def bit_errors(buffer, offset: int, marker: bytes = ASM) -> int:
    """Number of bits in which ``buffer[offset:offset+len(marker)]`` differs from the marker
    (every bit of the marker counts as wrong where the buffer ends before it)."""
    offset = check_start("bit_errors", offset, len(buffer), "offset")
    marker = check_marker("bit_errors", marker)
    window = np.frombuffer(bytes(buffer[offset : offset + len(marker)]), dtype=np.uint8)
    if window.size < len(marker):
        return 8 * len(marker)
    return int(_POPCOUNT[window ^ np.frombuffer(marker, dtype=np.uint8)].sum())


def _fuzzy_positions(buffer, start: int, marker: bytes, max_bit_errors: int) -> np.ndarray:
    data = np.frombuffer(bytes(buffer), dtype=np.uint8)[start:]
    m = len(marker)
    if data.size < m:
        return np.empty(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(data, m)
    errors = _POPCOUNT[windows ^ np.frombuffer(marker, dtype=np.uint8)].sum(axis=1)
    return np.flatnonzero(errors <= max_bit_errors).astype(np.int64) + start


def check_cadu_length(cadu_length, marker_length: int) -> int:
    """A CADU holds at least its marker (shared with the compiled kernel)."""
    cadu_length = check_length("lock_frames", cadu_length, "cadu_length")
    if cadu_length < marker_length:
        raise KernelArgumentError("lock_frames", "cadu_length",
                                  f"{cadu_length} is shorter than the {marker_length}-octet marker")
    return cadu_length


def lock_frames(buffer, cadu_length: int, start: int = 0, marker: bytes = ASM, max_bit_errors: int = 0):
    """Frame synchroniser over a CADU byte stream: ``(offsets, resume)``.

    Acquires on an exact marker, then stays locked while the marker ``cadu_length``
    bytes later differs in at most ``max_bit_errors`` bits; on a miss it searches
    again from the byte after the lost position.  ``offsets`` (int64) are the
    markers of every whole CADU; ``resume`` is where the next call should start
    (the first CADU that does not fit, or where the search ran out).
    """
    data = bytes(buffer) if not isinstance(buffer, (bytes, bytearray)) else buffer
    n = len(data)
    marker = check_marker("lock_frames", marker)
    m = len(marker)
    check_cadu_length(cadu_length, m)
    start = check_start("lock_frames", start, n)
    reference = np.frombuffer(marker, dtype=np.uint8)
    raw = np.frombuffer(data, dtype=np.uint8)
    found: list[np.ndarray] = []
    pos = start
    while True:
        pos = data.find(marker, pos)
        if pos < 0:
            return (np.concatenate(found) if found else np.empty(0, dtype=np.int64)), max(start, n - m + 1)
        # Locked: check the markers of all following whole CADUs at once, keep the run up to the first miss.
        count = (n - pos) // cadu_length
        if count == 0:
            return (np.concatenate(found) if found else np.empty(0, dtype=np.int64)), pos
        starts = pos + cadu_length * np.arange(count, dtype=np.int64)
        windows = raw[starts[:, None] + np.arange(m)]
        errors = _POPCOUNT[windows ^ reference].sum(axis=1)
        good = errors <= max_bit_errors
        run = count if good.all() else int(np.argmin(good))
        found.append(starts[:run])
        if run == count:
            return np.concatenate(found), pos + run * cadu_length
        pos = int(starts[run]) + 1
