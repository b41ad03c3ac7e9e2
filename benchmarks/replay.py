"""The replay chain on the fast path: CADU byte stream -> columns.

Stages: ASM frame lock -> gather + derandomize -> FECF check -> frame header
columns (VCID, VC count, FHP) -> continuity -> packet extraction (first header
pointers, spanning packets) -> group by APID -> decode_many at the packets'
offsets.  Every stage runs on whole batches through the kernels; nothing is
done per frame or per packet in Python.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

import cython_ext
from protocols.codec import PacketCodec

ASM = bytes.fromhex("1ACFFC1D")
TM_HEADER = 6


def kernels(backend: str) -> dict[str, ModuleType]:
    pick = cython_ext.twin if backend == "pure" else cython_ext.compiled
    return {name: pick(name) for name in ("sync", "randomizer", "crc", "packets")}


@dataclass
class ReplayResult:
    columns: dict
    frames: int
    bad_fecf: int
    lost: int
    stages: dict[str, float] = field(default_factory=dict)


def replay(stream: bytes, frame_length: int, vcid: int, codec: PacketCodec, apid: int, k: dict[str, ModuleType]
           ) -> ReplayResult:
    stages: dict[str, float] = {}
    t = time.process_time()

    def lap(name: str) -> None:
        nonlocal t
        now = time.process_time()
        stages[name] = now - t
        t = now

    cadu = frame_length + len(ASM)
    markers, _resume = k["sync"].lock_frames(stream, cadu, 0, ASM, 2)
    lap("ASM lock")
    frames, good = k["randomizer"].tm_derandomize_check(stream, markers + len(ASM), frame_length)
    lap("derandomize + FECF check")
    head = frames[:, :TM_HEADER]
    frame_vcid = (head[:, 1] >> 1) & 7
    vc_count = head[:, 3]
    fhp = ((head[:, 4].astype(np.int64) & 7) << 8) | head[:, 5]
    mine = np.flatnonzero(good & (frame_vcid == vcid))
    counts = vc_count[mine].astype(np.int64)
    continuous = np.ones(mine.size, dtype=bool)
    continuous[1:] = ((counts[1:] - counts[:-1]) & 0xFF) == 1
    lap("frame headers")
    data = frames[mine, TM_HEADER : frame_length - 2]
    offsets, lengths, _starts, _tail, lost, _errors = k["packets"].extract_packets(data, fhp[mine], continuous, True)
    stream_of_packets = data.reshape(-1)
    lap("packet extraction")
    apids = ((stream_of_packets[offsets] & 7).astype(np.int64) << 8) | stream_of_packets[offsets + 1]
    selected = offsets[(apids == apid) & (lengths == codec.size)]
    lap("group by APID")
    columns = codec.decode_many(stream_of_packets, offsets=selected)
    lap("decode")
    return ReplayResult(columns, int(markers.size), int((~good).sum()), int(lost), stages)
