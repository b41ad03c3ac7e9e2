"""Field-table decode/encode of many fixed-size records at once (vectorised numpy twin).

A *field table* is an int64 array, one row per leaf field element, that says
where the field sits in a record and where its value goes in the output:

=========== ================================================================
COL_OFFSET  byte offset of the field's first byte in the record
COL_NBYTES  bytes to load (1..8, 9 for a bit field straddling 9 bytes; any count for KIND_BYTES)
COL_KIND    KIND_BE / KIND_LE (whole-byte integers, floats as bit patterns),
            KIND_BITS (big-endian word of NBYTES, then >> SHIFT & mask(WIDTH)),
            KIND_BYTES (copy NBYTES bytes), KIND_BITS_SWAPPED (KIND_BITS, then the
            WIDTH/8 bytes of the value reversed: construct's swapped BitsInteger)
COL_SHIFT   right shift for KIND_BITS
COL_WIDTH   significant bits
COL_SIGN    SIGN_UNSIGNED, SIGN_SIGNED (sign-extend from WIDTH), SIGN_BOOL (!= 0)
COL_OUT     index of the output array in the list handed to decode/encode
COL_OUT_OFFSET byte offset of this element inside one row of that array
COL_ITEMSIZE   bytes of the output element (1, 2, 4, 8; NBYTES for KIND_BYTES)
=========== ================================================================

Floats need no kind of their own: the record's bits are the IEEE pattern, so
they are loaded as unsigned integers and stored into the float array's bytes.
Output arrays are C-contiguous with ``shape[0] == count``.
"""
from __future__ import annotations

import numpy as np

COL_OFFSET, COL_NBYTES, COL_KIND, COL_SHIFT, COL_WIDTH, COL_SIGN, COL_OUT, COL_OUT_OFFSET, COL_ITEMSIZE = range(9)
TABLE_COLUMNS = 9
KIND_BE, KIND_LE, KIND_BITS, KIND_BYTES, KIND_BITS_SWAPPED = range(5)
SIGN_UNSIGNED, SIGN_SIGNED, SIGN_BOOL = range(3)

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _records(buffer, record_size: int, count: int, offsets) -> np.ndarray:
    """The records as a (count, record_size) uint8 array (a view when they are back to back)."""
    raw = np.frombuffer(buffer, dtype=np.uint8) if not isinstance(buffer, np.ndarray) else buffer.reshape(-1).view(np.uint8)
    if offsets is None:
        if raw.size < count * record_size:
            raise ValueError(f"buffer of {raw.size} bytes holds fewer than {count} records of {record_size} bytes")
        return raw[: count * record_size].reshape(count, record_size)
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.shape != (count,):
        raise ValueError("offsets must have one entry per record")
    if count and (offsets.min() < 0 or offsets.max() + record_size > raw.size):
        raise ValueError("a record offset runs outside the buffer")
    return raw[offsets[:, None] + np.arange(record_size, dtype=np.int64)]


def _load(rows: np.ndarray, offset: int, nbytes: int, little: bool) -> np.ndarray:
    """Unsigned integer (uint64) from ``nbytes`` bytes at ``offset`` of every row."""
    count = rows.shape[0]
    chunk = rows[:, offset : offset + nbytes]
    if nbytes in _UINT:
        word = np.ascontiguousarray(chunk).view(("<" if little else ">") + f"u{nbytes}").reshape(count)
        return word.astype(np.uint64)
    padded = np.zeros((count, 8), dtype=np.uint8)
    if little:
        padded[:, :nbytes] = chunk
        return padded.view("<u8").reshape(count).astype(np.uint64)
    padded[:, 8 - nbytes :] = chunk
    return padded.view(">u8").reshape(count).astype(np.uint64)


def _store(rows: np.ndarray, offset: int, nbytes: int, little: bool, value: np.ndarray) -> None:
    value = value.astype(np.uint64, copy=False)
    if nbytes in _UINT:
        rows[:, offset : offset + nbytes] = (
            value.astype(_UINT[nbytes]).astype(("<" if little else ">") + f"u{nbytes}").view(np.uint8).reshape(-1, nbytes)
        )
        return
    as_bytes = value.astype("<u8" if little else ">u8").view(np.uint8).reshape(-1, 8)
    rows[:, offset : offset + nbytes] = as_bytes[:, :nbytes] if little else as_bytes[:, 8 - nbytes :]


def _mask(width: int) -> np.uint64:
    return np.uint64((1 << width) - 1)


def decode(buffer, record_size: int, count: int, offsets, table: np.ndarray, outputs: list[np.ndarray],
           crc_length: int = -1, crc_out: np.ndarray | None = None) -> None:
    """Fill ``outputs`` from ``count`` records of ``record_size`` bytes (see the module doc).

    With ``crc_length`` >= 0, also the CRC-16/CCITT-FALSE of each record's first
    ``crc_length`` bytes into the uint16 array ``crc_out``.
    """
    if count == 0:
        return
    if crc_length >= 0:
        from cython_ext.pure import crc as _crc

        if crc_length > record_size or crc_out is None or crc_out.shape[0] != count:
            raise ValueError("crc_out must be a uint16 array of one entry per record and crc_length <= record_size")
        if offsets is None:
            crc_out[:] = _crc.crc16_strided(buffer, record_size, crc_length)[:count]
        else:
            crc_out[:] = _crc.crc16_many(buffer, offsets, np.full(count, crc_length, dtype=np.int64))
    rows = _records(buffer, record_size, count, offsets)
    for out in outputs:
        if not out.flags.c_contiguous or out.shape[0] != count:
            raise ValueError("outputs must be C-contiguous with one row per record")
    views = [o.reshape(count, -1).view(np.uint8) for o in outputs]
    for entry in np.asarray(table, dtype=np.int64).tolist():
        offset, nbytes, kind, shift, width, sign, out_index, out_offset, itemsize = entry
        target = views[out_index]
        if kind == KIND_BYTES:
            target[:, out_offset : out_offset + nbytes] = rows[:, offset : offset + nbytes]
            continue
        if nbytes == 9:  # a bit field straddling 9 bytes: 8-byte word plus the low byte
            hi = _load(rows, offset, 8, False)
            lo = rows[:, offset + 8].astype(np.uint64)
            value = ((hi << np.uint64(8 - shift)) | (lo >> np.uint64(shift))) & _mask(width)
            shift = 0
        else:
            value = _load(rows, offset, nbytes, kind == KIND_LE)
        if kind in (KIND_BITS, KIND_BITS_SWAPPED):
            value = (value >> np.uint64(shift)) & _mask(width)
        if kind == KIND_BITS_SWAPPED:
            value = value.byteswap() >> np.uint64(64 - width)
        if sign == SIGN_BOOL:
            value = (value != 0).astype(np.uint64)
        elif sign == SIGN_SIGNED and width < 64:
            top = np.uint64(1 << (width - 1))
            value = (value ^ top) - top  # wraps in uint64: two's complement sign extension
        target[:, out_offset : out_offset + itemsize] = (
            value.astype(_UINT[itemsize]).view(np.uint8).reshape(count, itemsize)
        )


def encode(out, record_size: int, count: int, table: np.ndarray, inputs: list[np.ndarray]) -> None:
    """Write the fields of ``inputs`` into ``out`` (``count`` records, already holding the template)."""
    if count == 0:
        return
    # Annotated as any shape: numpy's newer stubs track the 1-d view and the 2-d reshape below apart.
    rows: np.ndarray = (np.frombuffer(out, dtype=np.uint8) if not isinstance(out, np.ndarray)
                        else out.reshape(-1).view(np.uint8))
    if rows.size < count * record_size:
        raise ValueError("output buffer too small")
    rows = rows[: count * record_size].reshape(count, record_size)
    views = []
    for array in inputs:
        if not array.flags.c_contiguous or array.shape[0] != count:
            raise ValueError("inputs must be C-contiguous with one row per record")
        views.append(array.reshape(count, -1).view(np.uint8))
    for entry in np.asarray(table, dtype=np.int64).tolist():
        offset, nbytes, kind, shift, width, sign, in_index, in_offset, itemsize = entry
        source = views[in_index]
        if kind == KIND_BYTES:
            rows[:, offset : offset + nbytes] = source[:, in_offset : in_offset + nbytes]
            continue
        value = np.ascontiguousarray(source[:, in_offset : in_offset + itemsize]).view(_UINT[itemsize]).reshape(count)
        value = value.astype(np.uint64)
        if sign == SIGN_BOOL:
            value = (value != 0).astype(np.uint64)
        value &= _mask(width)
        if kind == KIND_BITS_SWAPPED:
            value = value.byteswap() >> np.uint64(64 - width)
        if nbytes == 9:
            hi = _load(rows, offset, 8, False)
            lo = rows[:, offset + 8].astype(np.uint64)
            up = np.uint64(8 - shift)
            hi = (hi & ~(_mask(width) >> up)) | (value >> up)
            lo = (lo & ~np.uint64((0xFF << shift) & 0xFF)) | ((value << np.uint64(shift)) & np.uint64(0xFF))
            _store(rows, offset, 8, False, hi)
            rows[:, offset + 8] = lo.astype(np.uint8)
        elif kind in (KIND_BITS, KIND_BITS_SWAPPED):
            word = _load(rows, offset, nbytes, False)
            word = (word & ~(_mask(width) << np.uint64(shift))) | (value << np.uint64(shift))
            _store(rows, offset, nbytes, False, word)
        else:
            _store(rows, offset, nbytes, kind == KIND_LE, value)
