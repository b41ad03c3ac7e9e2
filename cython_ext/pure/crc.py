"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0).

This is the CCSDS FECF (TM 132.0-B, TC 232.0-B) and the PUS packet error
control.  ``binascii.crc_hqx(data, 0xFFFF)`` computes exactly this CRC in C.
"""
from __future__ import annotations

from binascii import crc_hqx

import numpy as np

from cython_ext.buffers import KernelArgumentError

CRC16_INIT = 0xFFFF


def _bytes_view(buffer) -> memoryview:
    if isinstance(buffer, np.ndarray):
        return memoryview(np.ascontiguousarray(buffer).reshape(-1).view(np.uint8).data)
    view = memoryview(buffer)
    return view.cast("B") if view.nbytes else memoryview(b"")


def crc16(data, init: int = CRC16_INIT) -> int:
    """CRC-16/CCITT-FALSE of a bytes-like object."""
    return crc_hqx(data, init)


def crc16_many(buffer, offsets, lengths, init: int = CRC16_INIT) -> np.ndarray:
    """CRC of ``buffer[offsets[i] : offsets[i] + lengths[i]]`` for every i (uint16 array).

    Raises KernelArgumentError if any slice runs outside the buffer.
    """
    view = _bytes_view(buffer)
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if offsets.shape != lengths.shape:
        raise KernelArgumentError("crc16_many", "lengths", "offsets and lengths differ in shape")
    if offsets.size and (offsets.min() < 0 or lengths.min() < 0 or (offsets + lengths).max() > len(view)):
        raise KernelArgumentError("crc16_many", "offsets", "a CRC slice runs outside the buffer")
    out = np.empty(offsets.size, dtype=np.uint16)
    for i, (start, length) in enumerate(zip(offsets.tolist(), lengths.tolist(), strict=True)):
        out[i] = crc_hqx(view[start : start + length], init)
    return out


def crc16_strided(buffer, record_length: int, crc_length: int, init: int = CRC16_INIT) -> np.ndarray:
    """CRC of the first ``crc_length`` bytes of each ``record_length``-byte record.

    The common case on the hot path: N fixed-length frames or packets back to back.
    Trailing bytes that do not fill a record are ignored.
    """
    if record_length <= 0 or not 0 <= crc_length <= record_length:
        raise KernelArgumentError("crc16_strided", "crc_length",
                                  "need 0 <= crc_length <= record_length and record_length > 0")
    view = _bytes_view(buffer)
    count = len(view) // record_length
    out = np.empty(count, dtype=np.uint16)
    for i in range(count):
        start = i * record_length
        out[i] = crc_hqx(view[start : start + crc_length], init)
    return out
