"""Space packet boundaries: split a packet stream, and extract packets from TM frame data fields.

Both walks are inherently sequential (a packet's length says where the next
one starts); the twin vectorises the common case of runs of same-length
packets and walks the rest one packet at a time.

Status codes of :func:`split_packets`:
``SPLIT_OK`` the buffer ended exactly at a packet boundary; ``SPLIT_TRUNCATED``
the bytes from ``end`` are an incomplete packet (or header); ``SPLIT_BAD_HEADER``
the header at ``end`` is impossible (version not 0, or longer than ``max_length``).
"""
from __future__ import annotations

import numpy as np

from cython_ext.buffers import KernelArgumentError, check_length, check_start

SPLIT_OK, SPLIT_TRUNCATED, SPLIT_BAD_HEADER = 0, 1, 2
HEADER = 6
#: First header pointer values (132.0-B): no packet starts in the frame / the frame holds only idle data.
FHP_NO_START = 0x7FF
FHP_IDLE = 0x7FE
IDLE_APID = 0x7FF
MAX_PACKET = HEADER + 0x10000


def check_batch(data_fields, fhp, continuous):
    """The three arrays of :func:`extract_packets`, shaped and typed (shared with the compiled kernel)."""
    fields = np.ascontiguousarray(data_fields, dtype=np.uint8)
    if fields.ndim != 2:
        raise KernelArgumentError("extract_packets", "data_fields", "must be (frames, data field length)")
    fhp = np.ascontiguousarray(fhp, dtype=np.int64).reshape(-1)
    cont = np.ascontiguousarray(continuous, dtype=bool).reshape(-1)
    if fhp.size != fields.shape[0] or cont.size != fields.shape[0]:
        raise KernelArgumentError("extract_packets", "fhp", "fhp and continuous need one entry per frame")
    return fields, fhp, cont


def _u8(buffer) -> np.ndarray:
    if isinstance(buffer, np.ndarray):
        return buffer.reshape(-1).view(np.uint8)
    return np.frombuffer(buffer, dtype=np.uint8)


def split_packets(buffer, start: int = 0, max_length: int = MAX_PACKET):
    """Walk concatenated space packets from ``start``.

    Returns ``(offsets, lengths, end, status)``: int64 arrays of every whole
    packet's start and total length, the offset where the walk stopped and why
    (see the module doc).
    """
    data = _u8(buffer)
    n = data.size
    pos = check_start("split_packets", start, n)
    max_length = check_length("split_packets", max_length, "max_length", HEADER + 1)
    offs: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    status = SPLIT_OK
    while pos < n:
        if n - pos < HEADER:
            status = SPLIT_TRUNCATED
            break
        length = ((int(data[pos + 4]) << 8) | int(data[pos + 5])) + HEADER + 1
        if data[pos] >> 5 or length > max_length:
            status = SPLIT_BAD_HEADER
            break
        if pos + length > n:
            status = SPLIT_TRUNCATED
            break
        # A run of packets of this same length: probe geometrically growing windows.
        window = 16
        taken = 1
        while True:
            room = (n - pos) // length
            probe = min(room, taken + window)
            if probe <= taken:
                break
            idx = pos + length * np.arange(taken, probe, dtype=np.int64)
            same = (((data[idx + 4].astype(np.int64) << 8) | data[idx + 5]) + HEADER + 1 == length) & (data[idx] >> 5 == 0)
            if same.all():
                taken = probe
                window *= 4
                continue
            taken += int(np.argmin(same))
            break
        offs.append(pos + length * np.arange(taken, dtype=np.int64))
        lens.append(np.full(taken, length, dtype=np.int64))
        pos += taken * length
    offsets = np.concatenate(offs) if offs else np.empty(0, dtype=np.int64)
    lengths = np.concatenate(lens) if lens else np.empty(0, dtype=np.int64)
    return offsets, lengths, pos, status


def extract_packets(data_fields, fhp, continuous, drop_idle: bool = True):
    """Packets carried by a batch of same-virtual-channel TM frames.

    ``data_fields``: (frames, L) uint8, the frames' data fields in order;
    ``fhp``: each frame's first header pointer; ``continuous``: True where a frame
    follows the previous one with no frame lost (index 0 is not consulted).
    The data fields back to back form one stream; packets spanning frames are
    contiguous in it, so the result indexes ``data_fields.reshape(-1)`` directly.

    Returns ``(offsets, lengths, frames, tail, lost, fhp_errors)``: each packet's
    start in the stream, its length and the frame it starts in; ``tail`` the start
    of an incomplete last packet (-1 if none); ``lost`` packets dropped at a gap,
    an idle frame or an inconsistency; ``fhp_errors`` first header pointers that
    disagreed with the packet lengths (or headers with a bad version).
    """
    fields, fhp, cont = check_batch(data_fields, fhp, continuous)
    frames, width = fields.shape
    stream = fields.reshape(-1)
    total = frames * width
    fhp_list = fhp.tolist()
    cont_list = cont.tolist()

    def resync(frame: int) -> int:
        for h in range(frame, frames):
            if 0 <= fhp_list[h] < width:  # a negative pointer is no start (it would walk backwards)
                return h * width + fhp_list[h]
        return -1

    def first_break(a: int, b: int) -> int:
        for h in range(a + 1, min(b, frames - 1) + 1):
            if not cont_list[h] or fhp_list[h] == FHP_IDLE:
                return h
        return -1

    offsets: list[int] = []
    lengths: list[int] = []
    starts: list[int] = []
    lost = fhp_errors = 0
    tail = -1
    pos = resync(0) if width else -1
    while 0 <= pos < total:
        f0 = pos // width
        bad = first_break(f0, (pos + HEADER - 1) // width)
        if bad >= 0:
            lost += 1
            pos = resync(bad)
            continue
        if pos + HEADER > total:
            tail = pos
            break
        if stream[pos] >> 5:
            fhp_errors += 1
            pos = resync(f0 + 1)
            continue
        end = pos + ((int(stream[pos + 4]) << 8) | int(stream[pos + 5])) + HEADER + 1
        bad = first_break(f0, (end - 1) // width)
        if bad >= 0:
            lost += 1
            pos = resync(bad)
            continue
        if end > total:
            tail = pos
            break
        nxt = end // width
        resume = end
        for h in range(f0 + 1, min(nxt, frames - 1) + 1):
            if h == nxt and end == h * width and not cont_list[h]:
                resume = resync(h)  # the packet ended with its frame; the next frame starts afresh
                break
            expected = end - h * width if h == nxt else FHP_NO_START
            if fhp_list[h] != expected:
                fhp_errors += 1
                lost += 1
                resume = -2 - h
                break
        if resume <= -2:
            pos = resync(-2 - resume)
            continue
        if not (drop_idle and ((int(stream[pos]) & 7) << 8 | int(stream[pos + 1])) == IDLE_APID):
            offsets.append(pos)
            lengths.append(end - pos)
            starts.append(f0)
        pos = resume
    return (np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64), np.array(starts, dtype=np.int64),
            tail, lost, fhp_errors)
