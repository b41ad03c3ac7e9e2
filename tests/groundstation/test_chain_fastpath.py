"""The chain's fast path (FrameDemux.feed_batch splitting clean batches in columns) against the
reference (every batch walked frame by frame), on random frame sequences with losses, repeats,
junk, corrupted frames and pointers.  Same packets, same counts, same values."""
from __future__ import annotations

import random

import pytest

from cython_ext import crc as _crc
from groundstation.chain import ChainEvents, FrameChain
from groundstation.chain.demux import Demultiplexer
from groundstation.metrics import Metrics
from protocols.ccsds.vcmux import FrameMux
from protocols.missions import registry


def make_chain(reference: bool):
    metrics = Metrics()
    seen: list = []
    events = ChainEvents(
        on_event=lambda sc, e: seen.append(("event", sc, repr(sorted(e.items())))),
        on_parameter=lambda sc, sub, name, unit, s: seen.append(("param", sc, sub, name, repr(s.value), repr(s.raw),
                                                                 int(s.limit), repr(s.onboard_time))),
        on_report=lambda sc, d, values, t: seen.append(("report", sc, d.name, repr(sorted(values.items())))))
    chain = FrameChain(registry(), metrics, spacecraft=["haiyang2d"], events=events, column_walk=not reference)
    return chain, metrics, seen


def demux_of(chain: FrameChain):
    return chain.chains["haiyang2d"].stage(Demultiplexer).demux


def packets_for(rng: random.Random, count: int) -> list[tuple[int, bytes]]:
    """(vcid, packet): housekeeping, events and reports of haiyang2d, sequence counts per APID with slips."""
    sc = registry().spacecraft("haiyang2d")
    tm = [d for d in sc.packets if d.packet_type == 0]
    hk = [d for d in tm if d.kind == "housekeeping"]
    seq: dict[int, int] = {}
    out = []
    for _ in range(count):
        d = rng.choice(hk) if rng.random() < 0.8 else rng.choice(tm)
        step = 1 if rng.random() < 0.995 else rng.choice([0, 2, 5, 16383, 9000])
        n = seq[d.apid] = (seq.get(d.apid, -1) + step) % 16384
        raw = bytearray(d.size)
        raw[0], raw[1] = 0x08 | (d.apid >> 8), d.apid & 0xFF
        raw[2], raw[3] = 0xC0 | (n >> 8), n & 0xFF
        raw[4:6] = (d.size - 7).to_bytes(2, "big")
        raw[6] = 0x20
        raw[7], raw[8] = d.service, d.subtype
        for i in range(9, d.size):
            raw[i] = rng.randrange(256)
        if d.key is not None:
            raw[d.key_offset:d.key_offset + 2] = d.key.to_bytes(2, "big")
        raw[-2:] = _crc.crc16(bytes(raw[:-2])).to_bytes(2, "big")  # packet error control
        if rng.random() < 0.01:  # an unknown packet of a known APID, or a wrong size
            raw[8] ^= 0x40
        if rng.random() < 0.005:
            raw = raw + b"\x00\x01"
            raw[4:6] = (len(raw) - 7).to_bytes(2, "big")
        if rng.random() < 0.003:
            raw[1] ^= 0x3  # unknown APID
        out.append((0 if rng.random() < 0.85 else 1, bytes(raw)))
    return out


def refecf(frame: bytearray) -> bytes:
    frame[-2:] = _crc.crc16(bytes(frame[:-2])).to_bytes(2, "big")
    return bytes(frame)


def frame_sequence(seed: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    damage = (0.0, 0.003, 0.01, 0.04)[seed % 4]  # per-frame odds of each kind of damage
    sc = registry().spacecraft("haiyang2d")
    profile = sc.profile.frame
    mux = FrameMux(profile, sc.scid)
    frames: list[bytes] = []
    for vcid, packet in packets_for(rng, 6000):
        mux.push(vcid, packet)
        if rng.random() < 0.03:
            frames += mux.frames(flush=rng.random() < 0.5)
        if rng.random() < 0.01:
            frames.append(mux.idle_frame())
    frames += mux.frames(flush=True)
    damaged: list[bytes] = []
    for frame in frames:
        r = rng.random() / damage if damage else 1.0
        if r < 1:
            continue  # lost
        if r < 2:
            damaged.append(frame)  # repeated
        elif r < 3:
            bad = bytearray(frame)
            bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
            frame = bytes(bad)  # FECF catches it
        elif r < 5:
            bad = bytearray(frame)  # damage that the FECF does not catch (recomputed): pointer or data
            what = rng.randrange(4)
            if what == 0:
                bad[5] = rng.randrange(256)
            elif what == 1:
                bad[4] = (bad[4] & 0xF8) | 7
                bad[5] = 0xFF if rng.random() < 0.5 else 0xFE
            elif what == 2:
                bad[4] |= 0x40  # synchronisation flag
            else:
                at = rng.randrange(6, len(bad) - 6)
                bad[at] = rng.randrange(256)
            frame = refecf(bad)
        elif r < 6:
            frame = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1200)))
        damaged.append(frame)
    batches, i = [], 0
    while i < len(damaged):
        n = rng.choice([1, 2, 3, 7, 20, 64])
        batches.append(damaged[i:i + n])
        i += n
    return batches


def comparable(metrics: Metrics) -> dict:
    # repr: random time fields give NaN onboard times, and NaN != NaN.
    return {name: {labels: repr(v) for labels, v in series.items()} for name, series in metrics._values.items()}


@pytest.mark.parametrize("seed", range(12))
def test_fast_chain_matches_the_reference_on_damaged_streams(seed):
    fast, fast_metrics, fast_seen = make_chain(False)
    ref, ref_metrics, ref_seen = make_chain(True)
    for k, batch in enumerate(frame_sequence(seed)):
        fast.process("udp", batch, receipt=1000.0 + k)
        ref.process("udp", batch, receipt=1000.0 + k)
    assert comparable(fast_metrics) == comparable(ref_metrics)
    assert fast_seen == ref_seen
    a, b = fast.chains["haiyang2d"], ref.chains["haiyang2d"]
    assert repr(a.onboard_time) == repr(b.onboard_time)
    assert demux_of(fast).counters == demux_of(ref).counters
    assert fast_metrics.get("queqiao_frames_rejected_total", ("udp", "internal_error")) == 0
    assert fast_metrics.latency.count == ref_metrics.latency.count


def test_clean_batches_take_the_fast_path():
    """A clean stream never needs the demultiplexer's per-frame walk, and a partial packet spans batches."""
    chain, metrics, _ = make_chain(False)
    demux = demux_of(chain)
    calls = []
    original = demux.feed
    demux.feed = lambda frames: calls.append(len(frames)) or original(frames)
    rng = random.Random(3)
    s = registry().spacecraft("haiyang2d")
    mux = FrameMux(s.profile.frame, s.scid)
    hk = [d for d in s.packets if d.kind == "housekeeping"]
    seq: dict[int, int] = {}
    sent = 0
    for _ in range(40):
        for _ in range(rng.randrange(1, 200)):
            d = rng.choice(hk)
            n = seq[d.apid] = seq.get(d.apid, -1) + 1
            mux.push(0, _hk(d, n))
            sent += 1
        chain.process("udp", mux.frames(flush=False), receipt=1.0)
    assert calls == []
    total = sum(metrics.series("queqiao_packets_total").values())
    assert 0 < total <= sent and sent - total < 60  # only the packets still in the mux or in progress
    assert set(metrics.series("queqiao_packets_rejected_total")) <= {("haiyang2d", "pec")}  # zero-filled packets
    assert not metrics.series("queqiao_packet_gaps_total")


def _hk(d, n: int) -> bytes:
    raw = bytearray(d.size)
    raw[0], raw[1] = 0x08 | (d.apid >> 8), d.apid & 0xFF
    raw[2], raw[3] = 0xC0 | (n >> 8), n & 0xFF
    raw[4:6] = (d.size - 7).to_bytes(2, "big")
    raw[6] = 0x20
    raw[7], raw[8] = d.service, d.subtype
    if d.key is not None:
        raw[d.key_offset:d.key_offset + 2] = d.key.to_bytes(2, "big")
    return bytes(raw)


def test_idle_only_frames_after_a_gap_drop_the_packet_in_progress():
    """Frames of only idle data on a data VC, after a gap: the packet in progress is dropped, as FrameDemux does."""
    s = registry().spacecraft("haiyang2d")
    profile = s.profile.frame
    hk = [d for d in s.packets if d.kind == "housekeeping"]
    mux = FrameMux(profile, s.scid)
    for n in range(60):
        mux.push(0, _hk(hk[n % len(hk)], n // len(hk)))
    frames = mux.frames(flush=True)
    assert len(frames) >= 3
    idle = bytearray(frames[2])
    idle[4], idle[5] = (idle[4] & 0xF8) | 7, 0xFE  # "only idle data" on VC 0
    idle[3] = frames[0][3]  # a gap (the count repeats), and frames[1] follows on from it
    idle = refecf(idle)
    gap_then_idle = [[frames[0]], [idle], frames[1:2], frames[2:]]
    fast, fast_metrics, fast_seen = make_chain(False)
    ref, ref_metrics, ref_seen = make_chain(True)
    for k, batch in enumerate(gap_then_idle):
        fast.process("udp", batch, receipt=1.0 + k)
        ref.process("udp", batch, receipt=1.0 + k)
    assert comparable(fast_metrics) == comparable(ref_metrics)
    assert fast_seen == ref_seen
    a, b = demux_of(fast), demux_of(ref)
    assert a.counters == b.counters and a.counters["dropped_octets"] > 0


def _resolve_one(candidates, data: bytes):
    """The resolution of one packet as the mission database defines it: the first candidate (in
    definition order) whose service, subtype and key match; None when none does."""
    if len(candidates) == 1:
        return candidates[0].name
    if len(data) < 9:
        return None
    for d in candidates:
        if (d.service, d.subtype) != (data[7], data[8]):
            continue
        if d.key is None:
            return d.name
        at = d.key_offset
        if len(data) >= at + 2 and ((data[at] << 8) | data[at + 1]) == d.key:
            return d.name
    return None


@pytest.mark.parametrize("seed", range(4))
def test_the_resolver_picks_what_a_packet_by_packet_walk_picks(seed):
    import numpy as np

    from groundstation.chain.resolve import DefinitionResolver
    from protocols.ccsds.vcmux import PacketColumns

    chain, metrics, _ = make_chain(False)
    resolver = chain.chains["haiyang2d"].stage(DefinitionResolver)
    packets = [p for _, p in packets_for(random.Random(seed), 3000)]
    found = PacketColumns.of(packets, [])
    apids = np.array([((p[0] & 7) << 8) | p[1] for p in packets])
    got = {}
    for apid in np.unique(apids).tolist():
        members = np.flatnonzero(apids == apid)
        batch = type("B", (), {"stream": found.stream, "offsets": found.offsets, "lengths": found.lengths,
                               "packet": lambda self, i: packets[i]})()
        for definition, rows in resolver.resolve(apid, batch, members):
            for i in rows.tolist():
                assert i not in got
                got[i] = definition.name
    for i, p in enumerate(packets):
        apid = ((p[0] & 7) << 8) | p[1]
        assert got.get(i) == _resolve_one(resolver.candidates.get(apid, []), p) if resolver.candidates.get(apid) \
            else i not in got
    rejected = metrics.series("queqiao_packets_rejected_total")
    assert sum(rejected.values()) == len(packets) - len(got)
