"""Packet boundaries in a byte stream or in a batch of TM frame data fields, as columns."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

import cython_ext

#: ``PacketSplit.status`` values.
OK, TRUNCATED, BAD_HEADER = 0, 1, 2
_STATUS = {OK: "ok", TRUNCATED: "truncated", BAD_HEADER: "bad header"}


def _kernel(backend: str | None) -> ModuleType:
    if backend is None:
        return cython_ext.packets
    if backend == "pure":
        return cython_ext.twin("packets")
    module = cython_ext.compiled("packets")
    if module is None:
        raise RuntimeError("compiled kernels are not built")
    return module


def _header_columns(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if offsets.size == 0:
        return np.empty(0, dtype=np.uint16), np.empty(0, dtype=np.uint16)
    apid = ((data[offsets] & 0x07).astype(np.uint16) << 8) | data[offsets + 1]
    seq = ((data[offsets + 2] & 0x3F).astype(np.uint16) << 8) | data[offsets + 3]
    return apid, seq


@dataclass(frozen=True)
class PacketSplit:
    """Where each packet of a stream is: parallel columns, plus how the walk ended.

    ``end`` is the offset after the last whole packet; ``status`` is OK (the
    buffer ended there), TRUNCATED (the rest is an incomplete packet: keep it and
    prepend it to the next buffer) or BAD_HEADER (an impossible header at ``end``:
    version not 0 or longer than the allowed maximum).
    """

    offsets: np.ndarray
    lengths: np.ndarray
    apids: np.ndarray
    sequence_counts: np.ndarray
    end: int
    status: int

    def __len__(self) -> int:
        return int(self.offsets.size)

    @property
    def error(self) -> str | None:
        """A human-readable reason when the walk did not end cleanly, else None."""
        if self.status == OK:
            return None
        return f"{_STATUS[self.status]} at byte {self.end}"

    def by_apid(self) -> dict[int, np.ndarray]:
        """Packet indices (into the columns) grouped by APID, in stream order within each group."""
        if self.apids.size == 0:
            return {}
        order = np.argsort(self.apids, kind="stable")
        apids, starts = np.unique(self.apids[order], return_index=True)
        groups = np.split(order, starts[1:])
        return {int(a): g for a, g in zip(apids.tolist(), groups, strict=True)}


def split_packets(buffer, *, start: int = 0, max_length: int = 6 + 0x10000, backend: str | None = None) -> PacketSplit:
    """Split concatenated space packets (any APIDs and lengths) in one pass."""
    kernel = _kernel(backend)
    offsets, lengths, end, status = kernel.split_packets(buffer, start, max_length)
    data = buffer.reshape(-1).view(np.uint8) if isinstance(buffer, np.ndarray) else np.frombuffer(buffer, np.uint8)
    apids, seqs = _header_columns(data, offsets)
    return PacketSplit(offsets, lengths, apids, seqs, int(end), int(status))


@dataclass(frozen=True)
class FramePackets:
    """Packets found in a batch of frame data fields; offsets index ``stream`` (the data fields back to back)."""

    stream: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    frames: np.ndarray
    apids: np.ndarray
    sequence_counts: np.ndarray
    tail: int
    lost: int
    fhp_errors: int

    def __len__(self) -> int:
        return int(self.offsets.size)

    def packet(self, index: int) -> bytes:
        start = int(self.offsets[index])
        return self.stream[start : start + int(self.lengths[index])].tobytes()

    def by_apid(self) -> dict[int, np.ndarray]:
        return PacketSplit(self.offsets, self.lengths, self.apids, self.sequence_counts, 0, OK).by_apid()


def extract_packets(data_fields, fhp, continuous=None, *, drop_idle: bool = True,
                    backend: str | None = None) -> FramePackets:
    """Packets carried by same-VC TM frames (data fields (frames, L), first header pointers, continuity).

    ``continuous[i]`` is True when frame i follows frame i-1 with no frame lost
    (default: all continuous).  See :func:`cython_ext.pure.packets.extract_packets`.
    """
    fields = np.ascontiguousarray(data_fields, dtype=np.uint8)
    if continuous is None:
        continuous = np.ones(fields.shape[0], dtype=bool)
    offsets, lengths, frames, tail, lost, errors = _kernel(backend).extract_packets(fields, fhp, continuous, drop_idle)
    stream = fields.reshape(-1)
    apids, seqs = _header_columns(stream, offsets)
    return FramePackets(stream, offsets, lengths, frames, apids, seqs, int(tail), int(lost), int(errors))
