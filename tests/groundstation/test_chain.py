"""The frame chain: mission packets framed by the multiplexer come out as decoded, limit-checked values;
bad frames and packets are counted by reason and never stop it."""
from __future__ import annotations

import random

import pytest

from groundstation.chain import ChainEvents, FrameChain
from groundstation.metrics import Metrics
from protocols.ccsds.cuc import cuc_to_unix
from protocols.ccsds.tmframe import FrameProfile
from protocols.ccsds.vcmux import FrameMux
from protocols.missions import registry
from protocols.parameters import States


def nominal_values(packet) -> dict:
    """A value inside the nominal range for every field of a housekeeping packet."""
    values = {}
    for path, param in packet.parameters():
        name = path.split(".", 1)[1]
        cal = param.calibration
        if cal.is_state:
            allowed = [s for s in cal.codes if param.limits is None or param.classify(s) == 0]
            values[name] = allowed[0]
            continue
        lo, hi = param.domain.minimum, param.domain.maximum
        eng = sorted([cal.to_eng(lo), cal.to_eng(hi)])
        bounds = (param.limits.warning or param.limits.critical) if param.limits is not None else None
        if bounds is not None:
            eng = [max(eng[0], bounds[0] if bounds[0] is not None else eng[0]),
                   min(eng[1], bounds[1] if bounds[1] is not None else eng[1])]
        values[name] = cal.to_eng(cal.to_raw((eng[0] + eng[1]) / 2))
    return values


def frames_for(name: str, packets: list[bytes], vcid: int | None = None) -> tuple[list[bytes], FrameProfile]:
    sc = registry().spacecraft(name)
    profile = sc.profile.frame
    mux = FrameMux(profile, sc.scid)
    vc = sc.profile.realtime_vc if vcid is None else vcid
    mux.push_many(vc, packets)
    return mux.frames(), profile


@pytest.fixture
def chain_and_metrics():
    metrics = Metrics()
    seen = {"events": [], "params": []}
    events = ChainEvents(on_event=lambda sc, e: seen["events"].append((sc, e)),
                         on_parameter=lambda sc, sub, name, unit, sample: seen["params"].append((sc, name)),
                         on_clcw=lambda sc, clcw: seen.setdefault("clcw", []).append((sc, clcw)))
    return FrameChain(registry(), metrics, events=events), metrics, seen


def hk_packets(name: str, count: int = 3):
    sc = registry().spacecraft(name)
    out, expected, counters = [], {}, {}
    for i in range(count):
        for packet in sc.housekeeping:
            values = nominal_values(packet)
            seq = counters[packet.apid] = counters.get(packet.apid, -1) + 1  # sequence counts are per APID
            out.append(packet.build(values, sequence_count=seq, time=(2_000_000_000 + i, 0)))
            expected[packet.name] = (packet, values)
    return out, expected


@pytest.mark.parametrize("name", ["zhurong", "haiyang2d"])
def test_housekeeping_reaches_metrics_with_engineering_values(chain_and_metrics, name):
    chain, metrics, seen = chain_and_metrics
    packets, expected = hk_packets(name)
    frames, _ = frames_for(name, packets)
    chain.process("udp", frames, receipt=1000.0)
    assert metrics.get("queqiao_frames_received_total", ("udp",)) == len(frames)
    values = metrics.series("queqiao_parameter_value")
    states = metrics.series("queqiao_parameter_limit_state")
    for packet, given in expected.values():
        for path, param in packet.parameters():
            field = path.split(".", 1)[1]
            (unit,) = [k[3] for k in values if k[:3] == (name, packet.subsystem, field)]
            got = values[(name, packet.subsystem, field, unit)]
            if isinstance(param.calibration, States):
                assert got == param.calibration.to_raw(given[field])
            else:
                assert got == pytest.approx(given[field], abs=param.calibration.resolution() + 1e-9)
            assert states[(name, packet.subsystem, field)] == 0
    apid = expected[next(iter(expected))][0].apid
    assert metrics.get("queqiao_packet_gaps_total", (name, str(apid))) == 0
    last_coarse = 2_000_000_000 + 2  # CUC seconds since 1958 (TAI) of the last packet built
    assert metrics.get("queqiao_spacecraft_onboard_time_seconds", (name,)) == float(cuc_to_unix(last_coarse, 0))
    assert seen["events"] == []


def test_limit_violation_raises_an_event_and_state(chain_and_metrics):
    chain, metrics, seen = chain_and_metrics
    sc = registry().spacecraft("zhurong")
    packet = next(p for p in sc.housekeeping for _, param in p.parameters()
                  if param.limits is not None and not param.calibration.is_state and param.limits.critical)
    path, param = next((pa, p) for pa, p in packet.parameters()
                       if p.limits is not None and not p.calibration.is_state and p.limits.critical
                       and p.limits.critical[1] is not None
                       and p.calibration.to_raw(p.limits.critical[1] + 10 * max(p.calibration.resolution(), 0.01))
                       <= p.domain.maximum)
    field = path.split(".", 1)[1]
    values = nominal_values(packet)
    values[field] = param.limits.critical[1] + 10 * max(param.calibration.resolution(), 0.01)
    frames, _ = frames_for("zhurong", [packet.build(values, sequence_count=1, time=(2_000_000_000, 0))])
    chain.process("udp", frames, receipt=1000.0)
    assert metrics.get("queqiao_parameter_limit_state", ("zhurong", packet.subsystem, field)) == 2
    assert metrics.get("queqiao_alarms_total", ("zhurong", packet.subsystem, field, "critical")) == 1
    limit_events = [e for _, e in seen["events"] if e["type"] == "limit"]
    assert limit_events[0]["parameter"] == field and limit_events[0]["to"] == "critical"


def test_bad_frames_are_counted_by_reason_and_good_ones_still_decode(chain_and_metrics):
    chain, metrics, _ = chain_and_metrics
    packets, _ = hk_packets("haiyang2d", count=40)
    frames, profile = frames_for("haiyang2d", packets)
    assert len(frames) >= 5
    corrupt = bytearray(frames[1])
    corrupt[40] ^= 0xFF
    rng = random.Random(7)
    junk = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 1200))) for _ in range(20)]
    batch = [frames[0], bytes(corrupt), frames[2][:500], *junk, *frames[2:]]
    chain.process("udp", batch, receipt=1.0)
    rejected = metrics.series("queqiao_frames_rejected_total")
    assert rejected[("udp", "fecf")] >= 1
    assert rejected[("udp", "length")] >= 1
    assert sum(rejected.values()) == len(batch) - (len(frames) - 1)
    realtime_vc = str(registry().spacecraft("haiyang2d").profile.realtime_vc)
    assert metrics.get("queqiao_frame_gaps_total", ("haiyang2d", realtime_vc)) == 1
    assert metrics.series("queqiao_parameter_value")  # the good frames decoded


def test_sequence_gaps_and_duplicates(chain_and_metrics):
    chain, metrics, _ = chain_and_metrics
    sc = registry().spacecraft("haiyang2d")
    packet = sc.housekeeping[0]
    values = nominal_values(packet)
    packets = [packet.build(values, sequence_count=n, time=(2_000_000_000 + n, 0)) for n in (0, 1, 5, 5, 6)]
    frames, _ = frames_for("haiyang2d", packets)
    chain.process("udp", frames, receipt=1.0)
    labels = ("haiyang2d", str(packet.apid))
    assert metrics.get("queqiao_packet_gaps_total", labels) == 3
    assert metrics.get("queqiao_packet_duplicates_total", labels) == 1
    assert metrics.get("queqiao_packets_total", labels) == 5


def test_unknown_spacecraft_and_versions(chain_and_metrics):
    chain, metrics, _ = chain_and_metrics
    frames, _ = frames_for("haiyang2d", hk_packets("haiyang2d", 1)[0])
    alien = bytearray(frames[0])
    alien[0] = (alien[0] & 0xC0) | 0x3F  # another SCID
    chain.process("udp", [bytes(alien), b"\xc0" + bytes(1114), b"\x00"], receipt=1.0)
    rejected = metrics.series("queqiao_frames_rejected_total")
    assert rejected[("udp", "unknown_spacecraft")] == 1
    assert rejected[("udp", "version")] == 1
    assert rejected[("udp", "truncated")] == 1


def test_a_batch_of_only_corrupt_frames_is_counted_not_a_crash(chain_and_metrics):
    chain, metrics, _ = chain_and_metrics
    frames, _ = frames_for("haiyang2d", hk_packets("haiyang2d", 3)[0])
    corrupt = [bytes(f[:-1]) + bytes([f[-1] ^ 1]) for f in frames]
    chain.process("udp", corrupt, receipt=1.0)
    assert metrics.get("queqiao_frames_rejected_total", ("udp", "fecf")) == len(frames)
    assert metrics.get("queqiao_frames_rejected_total", ("udp", "internal_error")) == 0


def test_internal_errors_are_counted_and_logged_at_a_bounded_rate(chain_and_metrics, caplog, monkeypatch):
    chain, metrics, _ = chain_and_metrics
    frames, _ = frames_for("haiyang2d", hk_packets("haiyang2d", 1)[0])

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(chain.chains["haiyang2d"], "feed", broken)
    for _ in range(50):
        chain.process("udp", frames[:1], receipt=1.0)
    assert metrics.get("queqiao_frames_rejected_total", ("udp", "internal_error")) == 50
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert 1 <= len(tracebacks) <= 5
