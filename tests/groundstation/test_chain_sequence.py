"""Sequence counts and frame counts resynchronise: resets, replayed or foreign frames and flipped
count bits are recognised and counted as such, not as millions of lost frames or duplicates; label
values come only from the mission database."""
from __future__ import annotations

import numpy as np

from groundstation.chain import FrameChain
from groundstation.chain.labels import UNDECLARED, apid_labels, declared_apids, declared_vcids, vc_labels
from groundstation.chain.sequence import DUPLICATE_WINDOW, RESYNC_PACKETS, SequenceCheck
from groundstation.metrics import Metrics
from protocols.ccsds.tmframe import FrameProfile
from protocols.ccsds.vcmux import FrameMux
from protocols.missions import registry


def sequence_stage(name: str = "haiyang2d"):
    metrics = Metrics()
    chain = FrameChain(registry(), metrics, spacecraft=[name])
    return chain.chains[name].stage(SequenceCheck), metrics


def hk_apid(name: str = "haiyang2d") -> int:
    return registry().spacecraft(name).housekeeping[0].apid


def run(stage: SequenceCheck, apid: int, batches: list[list[int]]) -> list[int]:
    """The counts that go on, over several batches."""
    kept = []
    for counts in batches:
        column = np.array(counts, dtype=np.int64)
        kept += column[stage.check(apid, column)].tolist()
    return kept


def test_a_reset_is_accepted_after_a_few_packets_agree_and_counted():
    stage, metrics = sequence_stage()
    apid = hk_apid()
    before = list(range(5000, 5010))
    after = list(range(0, 10))  # the spacecraft rebooted: counts start again at 0
    kept = run(stage, apid, [before, after[:1], after[1:]])  # the jump spans batches too
    assert kept == before + after[RESYNC_PACKETS - 1:]
    labels = ("haiyang2d", str(apid))
    assert metrics.get("queqiao_packet_sequence_resets_total", labels) == 1
    assert metrics.get("queqiao_packets_rejected_total", ("haiyang2d", "out_of_sequence")) == RESYNC_PACKETS - 1
    assert metrics.get("queqiao_packet_duplicates_total", labels) == 0
    assert metrics.get("queqiao_packet_gaps_total", labels) == 0
    assert metrics.get("queqiao_packets_total", labels) == 20


def test_one_replayed_frame_does_not_blind_the_apid():
    stage, metrics = sequence_stage()
    apid = hk_apid()
    good = list(range(3000, 3200))
    replayed = [17, 18]  # an old frame's packets, fewer than it takes to resynchronise
    kept = run(stage, apid, [good[:100], replayed, good[100:]])
    assert kept == good
    labels = ("haiyang2d", str(apid))
    assert metrics.get("queqiao_packet_sequence_resets_total", labels) == 0
    assert metrics.get("queqiao_packet_duplicates_total", labels) == 0
    assert metrics.get("queqiao_packets_rejected_total", ("haiyang2d", "out_of_sequence")) == 2


def test_duplicates_are_only_a_small_window_behind_the_last():
    stage, metrics = sequence_stage()
    apid = hk_apid()
    counts = [100, 101, 101, 101 - DUPLICATE_WINDOW, 102, 16383 - 10]  # last one wraps: a jump back, not a dup
    kept = run(stage, apid, [counts])
    assert kept == [100, 101, 102]
    labels = ("haiyang2d", str(apid))
    assert metrics.get("queqiao_packet_duplicates_total", labels) == 2
    assert metrics.get("queqiao_packets_rejected_total", ("haiyang2d", "out_of_sequence")) == 1
    # Counts wrap: 16383 -> 0 is a step of one.
    assert run(stage, apid, [[103, 104]]) == [103, 104]
    stage2, metrics2 = sequence_stage()
    assert run(stage2, apid, [[16382, 16383, 0, 1]]) == [16382, 16383, 0, 1]
    assert not metrics2.series("queqiao_packet_gaps_total")


def test_forward_gaps_are_counted_and_decoded():
    stage, metrics = sequence_stage()
    apid = hk_apid()
    assert run(stage, apid, [[0, 1, 5], [6, 9]]) == [0, 1, 5, 6, 9]
    assert metrics.get("queqiao_packet_gaps_total", ("haiyang2d", str(apid))) == 3 + 2


def test_unknown_apids_are_unknown_not_duplicates_and_undeclared_ones_share_one_label():
    metrics = Metrics()
    chain = FrameChain(registry(), metrics, spacecraft=["haiyang2d"])
    sc = registry().spacecraft("haiyang2d")
    undeclared = next(a for a in range(1, 0x7FF) if a not in declared_apids(sc))
    packet = bytearray(sc.housekeeping[0].build(_values(sc.housekeeping[0]), sequence_count=7))
    packet[0] = (packet[0] & 0xF8) | (undeclared >> 8)
    packet[1] = undeclared & 0xFF
    profile = sc.profile.frame
    mux = FrameMux(profile, sc.scid)
    mux.push_many(sc.profile.realtime_vc, [bytes(packet)] * 4)  # the same count four times
    chain.process("udp", mux.frames(), receipt=1.0)
    assert metrics.get("queqiao_packets_total", ("haiyang2d", UNDECLARED)) == 4
    assert metrics.get("queqiao_packets_rejected_total", ("haiyang2d", "unknown_apid")) == 4
    assert not metrics.series("queqiao_packet_duplicates_total")
    assert {labels[1] for labels in metrics.series("queqiao_packets_total")} <= set(apid_labels(sc))


def _values(packet) -> dict:
    return {path.split(".", 1)[1]: (next(iter(param.calibration.codes)) if param.calibration.is_state
                                    else param.calibration.to_eng(param.domain.minimum))
            for path, param in packet.parameters()}


def aos_frames(name: str, count: int) -> tuple[list[bytes], FrameProfile]:
    sc = registry().spacecraft(name)
    profile = sc.profile.frame
    mux = FrameMux(profile, sc.scid)
    hk = sc.housekeeping[0]
    mux.push_many(sc.profile.realtime_vc, [hk.build(_values(hk), sequence_count=n) for n in range(count)])
    return mux.frames(), profile


def test_a_flipped_vc_count_bit_is_a_resync_not_millions_of_lost_frames():
    frames, profile = aos_frames("tianwen1", 40)
    assert profile.kind == "AOS" and not profile.has_fecf and len(frames) >= 6
    flipped = bytearray(frames[3])
    flipped[2] ^= 0x80  # VC count + 2^23: nothing checks an AOS header without FHEC or FECF
    metrics = Metrics()
    chain = FrameChain(registry(), metrics, spacecraft=["tianwen1"])
    for k, frame in enumerate([*frames[:3], bytes(flipped), *frames[4:]]):
        chain.process("udp", [frame], receipt=1000.0 + k * 0.5)
    vc = str(registry().spacecraft("tianwen1").profile.realtime_vc)
    # The jump to the flipped count and the jump back are both far beyond 16,384 baud.
    assert metrics.get("queqiao_frame_count_resyncs_total", ("tianwen1", vc)) == 2
    assert metrics.get("queqiao_frame_gaps_total", ("tianwen1", vc)) == 0


def test_a_real_outage_is_still_counted_as_lost_frames():
    frames, _ = aos_frames("tianwen1", 40)
    metrics = Metrics()
    chain = FrameChain(registry(), metrics, spacecraft=["tianwen1"])
    chain.process("udp", frames[:2], receipt=1000.0)
    chain.process("udp", frames[5:], receipt=1060.0)  # three frames lost over a minute
    vc = str(registry().spacecraft("tianwen1").profile.realtime_vc)
    assert metrics.get("queqiao_frame_gaps_total", ("tianwen1", vc)) == 3
    assert metrics.get("queqiao_frame_count_resyncs_total", ("tianwen1", vc)) == 0


def test_an_undeclared_vcid_is_counted_under_one_label():
    sc = registry().spacecraft("haiyang2d")
    undeclared = next(v for v in range(8) if v not in declared_vcids(sc))
    profile = sc.profile.frame
    mux = FrameMux(profile, sc.scid)
    hk = sc.housekeeping[0]
    mux.push_many(undeclared, [hk.build(_values(hk), sequence_count=n) for n in range(30)])
    frames = mux.frames()
    metrics = Metrics()
    FrameChain(registry(), metrics, spacecraft=["haiyang2d"]).process("udp", frames, receipt=1.0)
    assert metrics.get("queqiao_frames_total", ("haiyang2d", UNDECLARED)) == len(frames) > 1
    assert metrics.get("queqiao_packets_total", ("haiyang2d", str(hk.apid))) == 30  # still decoded
    assert {labels[1] for labels in metrics.series("queqiao_frames_total")} <= set(vc_labels(sc))


def test_label_domains_come_from_the_mission_database():
    sc = registry().spacecraft("haiyang2d")
    assert vc_labels(sc) == (*[str(vc.vcid) for vc in sorted(sc.profile.virtual_channels, key=lambda v: v.vcid)],
                             UNDECLARED)
    assert apid_labels(sc) == (*[str(a) for a in sorted(a.number for a in sc.apids)], UNDECLARED)
