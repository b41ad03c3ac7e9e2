"""Virtual channel mux/demux: properties over random packets, frame lengths, losses and corruption."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.ccsds.clcw import Clcw
from protocols.ccsds.spacepacket import build_space_packet, idle_packet, parse_space_packet
from protocols.ccsds.tmframe import (
    FHP_IDLE_DATA_ONLY,
    FHP_NO_PACKET_START,
    AosFrame,
    FrameProfile,
    parse_frame,
)
from protocols.ccsds.vcmux import FrameDemux, FrameMux, demux_frames, mux_packets

profiles = st.one_of(
    st.builds(FrameProfile, frame_length=st.integers(20, 400), has_ocf=st.booleans(), has_fecf=st.booleans(),
              secondary_header_length=st.sampled_from([0, 4])),
    st.builds(FrameProfile, frame_length=st.integers(32, 400), has_ocf=st.booleans(), has_fecf=st.booleans(),
              kind=st.just("AOS"), aos_fhec=st.booleans(), insert_zone_length=st.sampled_from([0, 8])),
)


def make_packets(seed: int, count: int, max_data: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        body = i.to_bytes(4, "big") + rnd.randbytes(rnd.randrange(0, max_data))  # unique per index
        out.append(build_space_packet(rnd.randrange(0, 0x7FF), body, sequence_count=i % 0x4000))
    return out


def run_mux(profile, packets, seed, vcids=(0, 1, 2)):
    rnd = random.Random(seed)
    mux = FrameMux(profile, scid=0x42)
    sent = {v: [] for v in vcids}
    frames = []
    for p in packets:
        v = rnd.choice(vcids)
        mux.push(v, p)
        sent[v].append(p)
        r = rnd.random()
        if r < 0.15:
            frames.append(mux.next_frame(flush=rnd.random() < 0.5))
        elif r < 0.2:
            frames.append(mux.idle_frame())
    frames += mux.frames(flush=True)
    return frames, sent


def received_by_vc(result):
    got: dict[int, list[bytes]] = {}
    for p in result.packets:
        got.setdefault(p.vcid, []).append(p.data)
    return got


@settings(max_examples=60, deadline=None)
@given(profiles, st.integers(0, 2**32), st.integers(1, 60), st.integers(1, 600))
def test_mux_demux_gives_back_exactly_the_packets(profile, seed, count, max_data):
    packets = make_packets(seed, count, max_data)
    frames, sent = run_mux(profile, packets, seed)
    assert all(len(f) == profile.frame_length for f in frames)
    result = demux_frames(frames, profile)
    assert result.anomalies == []
    got = received_by_vc(result)
    assert {v: s for v, s in sent.items() if s} == got


def is_subsequence(small, big):
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


@settings(max_examples=60, deadline=None)
@given(profiles, st.integers(0, 2**32), st.integers(1, 60), st.integers(1, 600), st.data())
def test_lost_frames_never_yield_bad_packets_and_are_reported(profile, seed, count, max_data, data):
    packets = make_packets(seed, count, max_data)
    frames, sent = run_mux(profile, packets, seed)
    drop = set(data.draw(st.lists(st.integers(0, len(frames) - 1), max_size=max(1, len(frames) // 3))))
    kept = [f for i, f in enumerate(frames) if i not in drop]
    demux = FrameDemux(profile)
    result = demux.feed(kept)
    got = received_by_vc(result)
    for v, pkts in got.items():
        assert is_subsequence(pkts, sent[v])
        for p in pkts:
            parse_space_packet(p)  # whole and well formed
    # Every deleted frame followed by a kept frame of the same VC shows up as a gap.
    vc_of = [parse_frame(f, profile).vcid for f in frames]
    expected_gaps = 0
    for v in set(vc_of):
        dropped = [i in drop for i in (j for j, x in enumerate(vc_of) if x == v)]
        # A run of lost frames shows once a kept frame follows it; a run at the very start of
        # a VC cannot be seen (the demux has no count to expect yet).
        for k in range(len(dropped) - 1):
            if dropped[k] and not dropped[k + 1] and not all(dropped[:k + 1]):
                expected_gaps += 1
    gaps = [a for a in result.anomalies if a.kind == "frame_gap"]
    assert len(gaps) == expected_gaps
    lost_reported = demux.counters["lost_frames"]
    assert lost_reported <= len(drop)


@settings(max_examples=40, deadline=None)
@given(st.builds(FrameProfile, frame_length=st.integers(30, 300), has_ocf=st.booleans()), st.integers(0, 2**32),
       st.data())
def test_corrupted_frames_are_dropped_by_fecf(profile, seed, data):
    packets = make_packets(seed, 30, 200)
    frames, sent = run_mux(profile, packets, seed)
    bad = set(data.draw(st.lists(st.integers(0, len(frames) - 1), max_size=5)))
    damaged = []
    for i, f in enumerate(frames):
        if i in bad:
            f = bytearray(f)
            pos = data.draw(st.integers(0, len(f) - 1))
            f[pos] ^= 1 << data.draw(st.integers(0, 7))
            f = bytes(f)
        damaged.append(f)
    result = demux_frames(damaged, profile)
    got = received_by_vc(result)
    for v, pkts in got.items():
        assert is_subsequence(pkts, sent[v])
    assert sum(a.kind == "fecf" for a in result.anomalies) == len(bad)


def test_fhp_values_idle_fill_and_idle_frames():
    profile = FrameProfile(frame_length=100, has_ocf=True)
    mux = FrameMux(profile, scid=245, ocf=Clcw(vcid=1, report_value=9))
    big = build_space_packet(10, bytes(234))  # 240 octets: spans three 88-octet data fields
    small = build_space_packet(11, bytes(4))
    mux.push(1, big)
    mux.push(1, small)
    frames = [parse_frame(f, profile) for f in mux.frames()]
    assert [f.fhp for f in frames] == [0, FHP_NO_PACKET_START, 240 - 2 * profile.zone_length]
    assert all(f.clcw == Clcw(vcid=1, report_value=9) for f in frames)
    assert [f.mc_count for f in frames] == [0, 1, 2] and [f.vc_count for f in frames] == [0, 1, 2]
    # The rest of the last frame is one idle packet.
    last = frames[-1]
    idle_at = last.fhp + len(small)
    idle = parse_space_packet(last.data, idle_at)
    assert idle.apid == 0x7FF and idle_at + idle.length == profile.zone_length
    # Nothing queued: an idle frame on VC 7 with FHP 0x7FE.
    oid = parse_frame(mux.next_frame(), profile)
    assert (oid.vcid, oid.fhp, oid.mc_count) == (7, FHP_IDLE_DATA_ONLY, 3)


def test_idle_fill_shorter_than_an_idle_packet_carries_over():
    profile = FrameProfile(frame_length=50, has_fecf=False)
    zone = profile.zone_length  # 44
    mux = FrameMux(profile, scid=1)
    first = build_space_packet(1, bytes(zone - 6 - 3))  # leaves 3 octets: too few for an idle packet
    mux.push(0, first)
    frames = mux.frames()
    assert len(frames) == 1 and mux.pending() == 0
    second = build_space_packet(2, bytes(5))
    mux.push(0, second)
    frames += mux.frames()
    f2 = parse_frame(frames[1], profile)
    assert f2.fhp == 4  # the idle packet's 4-octet tail comes first
    result = demux_frames(frames, profile)
    assert [p.data for p in result.packets] == [first, second] and result.anomalies == []


def test_counters_wrap():
    profile = FrameProfile(frame_length=20, has_fecf=False)
    packets = [build_space_packet(1, bytes(7)) for _ in range(400)]
    frames = mux_packets(packets, profile, scid=3, vcid=2)
    parsed = [parse_frame(f, profile) for f in frames]
    assert len(frames) > 256
    assert [f.vc_count for f in parsed] == [i % 256 for i in range(len(frames))]
    assert [f.mc_count for f in parsed] == [i % 256 for i in range(len(frames))]
    result = demux_frames(frames, profile)
    assert len(result.packets) == 400 and result.anomalies == []


def test_aos_vc_count_wraps_at_2_24():
    profile = FrameProfile(frame_length=40, has_fecf=False, kind="AOS")
    p = build_space_packet(1, bytes(5))
    zone = p + p + idle_packet(profile.zone_length - 2 * len(p))
    frames = [AosFrame(9, 3, zone, 0, vc).build(profile) for vc in (0xFFFFFE, 0xFFFFFF, 0, 1)]
    result = demux_frames(frames, profile)
    assert result.anomalies == [] and len(result.packets) == 8


def test_demux_starting_mid_stream_resyncs_at_fhp():
    profile = FrameProfile(frame_length=64)
    packets = make_packets(7, 40, 150)
    frames = mux_packets(packets, profile, scid=5, vcid=1)
    result = demux_frames(frames[3:], profile)
    assert result.anomalies == []
    assert is_subsequence([p.data for p in result.packets], packets)
    assert result.packets[-1].data == packets[-1]


def test_feed_buffer_matches_feed_and_reports_where_packets_start():
    profile = FrameProfile(frame_length=80, has_ocf=True)
    packets = make_packets(3, 30, 100)
    frames = mux_packets(packets, profile, scid=5, vcid=1)
    bad = bytearray(b"".join(frames))
    bad[80 * 2 + 10] ^= 0xFF
    a = FrameDemux(profile).feed_buffer(bytes(bad) + b"xyz")
    b = FrameDemux(profile).feed([bytes(bad[i:i + 80]) for i in range(0, len(bad), 80)] + [b"xyz"])
    assert a.packets == b.packets
    assert [(x.kind, x.frame) for x in a.anomalies] == [(x.kind, x.frame) for x in b.anomalies]
    assert [x.kind for x in a.anomalies][:2] == ["fecf", "frame_gap"] and a.anomalies[-1].kind == "frame_length"
    zone_end = profile.zone_offset + profile.zone_length
    for p in a.packets:
        start = p.frame * 80 + p.offset
        n = min(len(p.data), zone_end - p.offset)  # the packet may continue in the next frame
        assert bytes(bad[start:start + n]) == p.data[:n]


def test_bad_fhp_and_fhp_mismatch_drop_the_packet():
    profile = FrameProfile(frame_length=40, has_fecf=False)
    zl = profile.zone_length
    p = build_space_packet(1, bytes(50))  # 56 octets: spans into the 2nd frame, ends at 56 - zl
    from protocols.ccsds.tmframe import TmFrame
    f1 = TmFrame(1, 0, p[:zl], 0, vc_count=0).build(profile)
    rest = p[zl:] + build_space_packet(2, bytes(zl - (len(p) - zl) - 6))
    f2_wrong = TmFrame(1, 0, rest, len(p) - zl + 1, vc_count=1).build(profile)  # FHP one too far
    result = demux_frames([f1, f2_wrong], profile)
    assert result.anomalies[0].kind == "fhp_mismatch"
    assert p not in [x.data for x in result.packets]  # the spanning packet is dropped
    f2_out = TmFrame(1, 0, rest, 0x700, vc_count=1).build(profile)
    result = demux_frames([f1, f2_out], profile)
    assert [a.kind for a in result.anomalies] == ["bad_fhp"] and result.packets == []


def test_frames_with_sync_flag_are_not_read_as_packets():
    from protocols.ccsds.tmframe import TmFrame

    profile = FrameProfile(frame_length=40)
    frame = TmFrame(1, 1, bytes(profile.zone_length), 0, sync_flag=1, segment_length_id=0).build(profile)
    result = demux_frames([frame], profile)
    assert [a.kind for a in result.anomalies] == ["not_packets"] and result.packets == []


def test_aos_frames_with_a_bad_fhec_are_dropped():
    profile = FrameProfile(frame_length=60, has_fecf=False, kind="AOS", aos_fhec=True)
    frames = mux_packets(make_packets(1, 10, 60), profile, scid=82, vcid=1)
    bad = bytearray(frames[1])
    bad[1] ^= 0x01  # VCID 1 -> 0: only the FHEC can tell
    result = demux_frames([frames[0], bytes(bad)] + frames[2:], profile)
    assert [a.kind for a in result.anomalies][:2] == ["fhec", "frame_gap"]
    assert all(p.vcid == 1 for p in result.packets)


@settings(deadline=None, max_examples=60)
@given(profiles, st.integers(0, 2**32), st.sampled_from([0.0, 0.02, 0.1]))
def test_feed_batch_equals_the_frame_by_frame_walk(profile, seed, damage):
    """FrameDemux.feed_batch (the column walk of clean TM and AOS batches) gives what feed gives: the same
    packets in the same order, the same anomalies and counters, and the same state for the next batch."""
    import numpy as np

    rnd = random.Random(seed)
    mux = FrameMux(profile, scid=0x42)
    frames = []
    for packet in make_packets(seed, 120, 3 * profile.zone_length):
        mux.push(rnd.choice((0, 1)), packet)
        if rnd.random() < 0.1:
            frames += mux.frames(flush=rnd.random() < 0.5)
        if rnd.random() < 0.03:
            frames.append(mux.idle_frame())
    frames += mux.frames(flush=True)
    damaged = []
    for frame in frames:
        r = rnd.random()
        if r < damage:
            continue  # lost
        if r < 2 * damage:
            bad = bytearray(frame)
            bad[rnd.randrange(4, min(8, len(bad)))] ^= 1 << rnd.randrange(8)  # a pointer or count bit
            frame = bytes(bad)
        damaged.append(frame)
    columns, walk = FrameDemux(profile), FrameDemux(profile, column_walk=False)
    walked = []
    frame_by_frame = columns.feed
    columns.feed = lambda batch: walked.append(len(batch)) or frame_by_frame(batch)  # type: ignore[method-assign]
    i = 0
    while i < len(damaged):
        n = rnd.choice([1, 2, 5, 17])
        batch = damaged[i:i + n]
        i += n
        a, b = columns.feed_batch(batch), walk.feed_batch(batch)
        packets = lambda r: [r.stream[o:o + n].tobytes() for o, n in zip(r.offsets.tolist(), r.lengths.tolist(),  # noqa: E731
                                                                         strict=True)]
        assert packets(a) == packets(b)
        assert [(x.kind, x.frame, x.vcid, x.dropped) for x in a.anomalies] == \
            [(x.kind, x.frame, x.vcid, x.dropped) for x in b.anomalies]
        assert a.stream.dtype == np.uint8
    assert columns.counters == walk.counters
    if damage == 0:
        assert walked == []  # a clean TM or AOS stream never needs the frame-by-frame walk
    tail_a, tail_b = columns.flush(), walk.flush()
    assert [(x.kind, x.frame, x.vcid, x.dropped) for x in tail_a.anomalies] == \
        [(x.kind, x.frame, x.vcid, x.dropped) for x in tail_b.anomalies]
