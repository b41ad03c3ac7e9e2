"""The spacecraft runtime in virtual time: packets, frames, telecommands, COP-1, storage, faults.

Everything the runtime sends is read back by an independent decoder: spacepackets'
PusTm for the packets and protocols.ccsds' demultiplexer / frame parser for the frames.
"""
from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from spacepackets.ecss.tc import PusTc
from spacepackets.ecss.tm import PusTm

from cython_ext import crc as _crc
from flightsw.model import CommandOutcome, MissionModel, NotMine
from flightsw.runtime import FlightSoftware, GenericModel, RuntimeConfig
from flightsw.runtime.core import _HkEncoder
from protocols.ccsds.cop1 import UNLOCK, set_vr_command
from protocols.ccsds.tcframe import TcFrame
from protocols.ccsds.tmframe import parse_frame
from protocols.ccsds.vcmux import FrameDemux
from protocols.missions import registry
from protocols.missions.common import ACCEPTANCE_FAILURES, EXECUTION_FAILURES
from protocols.parameters import LimitState

START = datetime(2021, 6, 1, 4, 0, tzinfo=UTC)
CODES = {**{v: k for k, v in ACCEPTANCE_FAILURES.items()}}
EXEC = {v: k for k, v in EXECUTION_FAILURES.items()}


def make(name: str = "zhurong", **config: Any) -> FlightSoftware:
    model_class = config.pop("model_class", None)
    # These tests are about the runtime with plain TC frames; uplink security: test_fsw_sdls.py.
    config.setdefault("sdls_required", False)
    return FlightSoftware(registry().spacecraft(name), RuntimeConfig(virtual=True, start=START, **config),
                          model_class=model_class)


class Ground:
    """An independent reader of what the runtime sends."""

    def __init__(self, rt: FlightSoftware) -> None:
        self.sc = rt.spacecraft
        self.profile = self.sc.profile.frame
        self.demux = FrameDemux(self.profile)
        self.packets: list[tuple[int, PusTm]] = []
        self.anomalies: list = []
        self.frames: list[bytes] = []

    def feed(self, frames: list[bytes]) -> list[tuple[int, PusTm]]:
        self.frames += frames
        result = self.demux.feed(frames)
        self.anomalies += result.anomalies
        new = [(p.vcid, PusTm.unpack(p.data, timestamp_len=6)) for p in result.packets]
        self.packets += new
        return new

    def of(self, service: int, subtype: int | None = None) -> list[PusTm]:
        return [tm for _, tm in self.packets
                if tm.service == service and (subtype is None or tm.message_subtype == subtype)]

    def hk(self, packet: str) -> list[Any]:
        p = self.sc.housekeeping_packet(packet)
        return [p.parse(tm.pack()).hk for tm in self.of(3, 25) if tm.apid == p.apid
                and int.from_bytes(tm.source_data[:2], "big") == p.sid]

    def events(self) -> list[str]:
        return [self.sc.event(int.from_bytes(tm.source_data[:2], "big")).name for tm in self.of(5)]

    def verification(self, request: bytes) -> list[tuple[int, bytes]]:
        """(subtype, data after the request ID) of the PUS 1 reports about one telecommand."""
        return [(tm.message_subtype, tm.source_data[4:]) for tm in self.of(1) if tm.source_data[:4] == request[:4]]


def tc_frame(rt: FlightSoftware, packet: bytes, *, ns: int = 0, bypass: bool = True, control: bool = False,
             scid: int | None = None, vcid: int = 0) -> bytes:
    return TcFrame(rt.spacecraft.scid if scid is None else scid, vcid, packet, frame_sequence_number=ns,
                   bypass_flag=int(bypass), control_command_flag=int(control)).build()


def with_ack(packet: bytes, ack: int) -> bytes:
    data = bytearray(packet)
    data[6] = (data[6] & 0xF0) | ack
    data[-2:] = _crc.crc16(bytes(data[:-2])).to_bytes(2, "big")
    return bytes(data)


def send(rt: FlightSoftware, name: str, *, seq: int = 0, ack: int = 0b1111, **arguments: Any) -> bytes:
    packet = with_ack(rt.spacecraft.command(name).build(sequence_count=seq, **arguments), ack)
    rt.receive_tc_frame(tc_frame(rt, packet))
    return packet


# --------------------------------------------------------------------------- telemetry


def test_housekeeping_frames_decode_independently():
    rt = make()
    ground = Ground(rt)
    ground.feed(rt.advance_to(65))
    assert not ground.anomalies
    sc = rt.spacecraft
    # Every HK packet at its period (first at t=0): power every 8 s -> 9 by t=65.
    assert len(ground.hk("power")) == 9
    assert len(ground.hk("mobility")) == 17
    assert {vc for vc, _ in ground.packets} == {sc.profile.realtime_vc}
    # Per-APID 14-bit sequence counters without gaps.
    by_apid: dict[int, list[int]] = {}
    for _, tm in ground.packets:
        by_apid.setdefault(tm.apid, []).append(tm.seq_count)
    for apid, counts in by_apid.items():
        assert counts == list(range(len(counts))), apid
    # CUC 4+2 time: the onboard clock at the sample time.
    first = ground.of(3, 25)[0]
    coarse = int.from_bytes(first.pack()[13:17], "big")
    assert coarse == rt.onboard.now(0.0).coarse
    # Idle frames fill the rest at the frame rate (64 kbit/s, 224-octet CADUs).
    assert len(ground.frames) == int(65 * rt.frame_rate) + 1
    idle = [f for f in ground.frames if parse_frame(f, ground.profile).vcid == 63]
    assert len(idle) > len(ground.frames) // 2


def test_fast_path_matches_construct_build():
    rt = make()
    for packet in rt.spacecraft.housekeeping:
        enc = _HkEncoder(packet)
        values = rt.model.housekeeping(packet.name)
        fast = enc.encode(values, 1234, 0x01020304, 0x0506)
        cols = enc.columns(values)
        reference = packet.build({k.removeprefix("hk."): v for k, v in cols.items()}, sequence_count=1234,
                                 time=(0x01020304, 0x0506))
        assert fast == reference, packet.name


def test_deterministic_for_a_seed():
    a = make(seed=7, faults=["noise:zhurong.power.*=0.5"]).advance_to(40)
    b = make(seed=7, faults=["noise:zhurong.power.*=0.5"]).advance_to(40)
    c = make(seed=8, faults=["noise:zhurong.power.*=0.5"]).advance_to(40)
    assert a == b
    assert a != c


def test_time_scale_and_bitrate_set_the_frame_rate():
    rt = make("haiyang2d", bitrate=(1115 + 4) * 8 * 2.0)
    assert rt.frame_rate == pytest.approx(2.0)
    assert len(rt.advance_to(10)) == 21
    assert make("tianwen1").bitrate == 16384  # the profile's symbol rate


# --------------------------------------------------------------------------- telecommands


def test_ping_reports_accept_start_completion_and_17_2():
    rt = make()
    ground = Ground(rt)
    rt.advance_to(1)
    request = send(rt, "PING", seq=5)
    ground.feed(rt.advance_to(2))
    assert [s for s, _ in ground.verification(request)] == [1, 3, 7]
    assert len(ground.of(17, 2)) == 1
    assert rt.tc_accepted == 1


def test_ping_built_by_spacepackets():
    rt = make("haiyang2d")
    ground = Ground(rt)
    tc = PusTc(17, 1, apid=rt.spacecraft.command("PING").apid, seq_count=9).pack()
    rt.receive_tc_frame(tc_frame(rt, tc))
    ground.feed(rt.advance_to(2))
    assert [s for s, _ in ground.verification(tc)] == [1, 3, 7]
    assert ground.of(17, 2)


def test_ack_flags_choose_the_success_reports():
    rt = make()
    ground = Ground(rt)
    none = send(rt, "PING", seq=1, ack=0)
    only_completion = send(rt, "PING", seq=2, ack=0b1000)
    ground.feed(rt.advance_to(2))
    assert ground.verification(none) == []
    assert [s for s, _ in ground.verification(only_completion)] == [7]
    assert len(ground.of(17, 2)) == 2


def test_command_with_duration_reports_progress():
    rt = make()
    ground = Ground(rt)
    rt.advance_to(5)
    request = send(rt, "SET_SUSPENSION", seq=3, height=rt.model.suspension_mm + 20
                   if hasattr(rt.model, "suspension_mm") else 20)
    ground.feed(rt.advance_to(30))
    subtypes = [s for s, _ in ground.verification(request)]
    assert subtypes[:2] == [1, 3] and subtypes[-1] == 7
    assert subtypes.count(5) >= 2
    steps = [int.from_bytes(d[:2], "big") for s, d in ground.verification(request) if s == 5]
    assert steps == list(range(1, len(steps) + 1))


def test_power_instrument_shows_in_housekeeping_and_events():
    rt = make()
    ground = Ground(rt)
    off = [i for i in rt.spacecraft.instruments if rt.model.housekeeping(
        rt.spacecraft.housekeeping_packet(_packet_of(rt, i.power_parameter)).name)[i.power_parameter] == "OFF"]
    inst = off[0]
    send(rt, "POWER_INSTRUMENT", instrument=inst.name, state="ON")
    ground.feed(rt.advance_to(40))
    assert "instrument_power_changed" in ground.events()
    assert getattr(ground.hk(_packet_of(rt, inst.power_parameter))[-1], inst.power_parameter) == "ON"


def _packet_of(rt: FlightSoftware, parameter: str) -> str:
    return next(p.name for p in rt.spacecraft.housekeeping
                if any(path == f"hk.{parameter}" for path, _ in p.parameters()))


def test_out_of_range_argument_is_rejected_with_its_code():
    rt = make()
    ground = Ground(rt)
    cmd = rt.spacecraft.command("SET_HK_PERIOD")
    good = cmd.build(sid="POWER", period=10)
    bad = bytearray(good)
    offset = len(good) - 2 - 2  # period: the last argument, U16 in 0.1 s
    bad[offset:offset + 2] = (65000).to_bytes(2, "big")  # 6500 s > 3600 s
    bad[-2:] = _crc.crc16(bytes(bad[:-2])).to_bytes(2, "big")
    rt.receive_tc_frame(tc_frame(rt, bytes(bad)))
    ground.feed(rt.advance_to(1))
    [(subtype, data)] = ground.verification(bytes(bad))
    assert subtype == 2
    assert int.from_bytes(data[:2], "big") == CODES["ILLEGAL_ARGUMENT"]
    assert int.from_bytes(data[2:6], "big") == offset
    assert rt.tc_rejected == 1


def test_bad_checksum_is_rejected():
    rt = make()
    ground = Ground(rt)
    packet = bytearray(rt.spacecraft.command("PING").build(sequence_count=4))
    packet[-1] ^= 0xFF
    rt.receive_tc_frame(tc_frame(rt, bytes(packet)))
    ground.feed(rt.advance_to(1))
    [(subtype, data)] = ground.verification(bytes(packet))
    assert subtype == 2 and int.from_bytes(data[:2], "big") == CODES["BAD_CHECKSUM"]
    assert not ground.of(17, 2)


def test_the_command_log_records_each_telecommand_run_and_none_refused():
    rt = make()
    log: list[dict] = []
    rt.command_log = log.append
    send(rt, "PING", seq=5)
    bad = bytearray(rt.spacecraft.command("PING").build(sequence_count=6))
    bad[-1] ^= 0xFF  # refused at the packet checks: never run, never logged
    rt.receive_tc_frame(tc_frame(rt, bytes(bad)))
    send(rt, "POWER_INSTRUMENT", seq=7, instrument="ROPER", state="ON")
    apid = rt.spacecraft.command("PING").apid
    assert [(e["command"], e["apid"], e["sequence_count"], e["arguments"]) for e in log] == [
        ("PING", apid, 5, {}), ("POWER_INSTRUMENT", rt.spacecraft.command("POWER_INSTRUMENT").apid, 7,
                                {"instrument": "ROPER", "state": "ON"})]


def test_unknown_command_is_rejected():
    rt = make()
    ground = Ground(rt)
    apid = rt.spacecraft.command("PING").apid
    unknown = PusTc(17, 9, apid=apid, seq_count=1).pack()
    unknown_service = PusTc(99, 1, apid=apid, seq_count=2).pack()
    for p in (unknown, unknown_service):
        rt.receive_tc_frame(tc_frame(rt, p))
    ground.feed(rt.advance_to(1))
    assert ground.verification(unknown)[0][1][:2] == CODES["ILLEGAL_SUBTYPE"].to_bytes(2, "big")
    assert ground.verification(unknown_service)[0][1][:2] == CODES["ILLEGAL_TYPE"].to_bytes(2, "big")


def test_wrong_mode_fails_and_safe_mode_round_trip():
    rt = make()
    ground = Ground(rt)
    send(rt, "ENTER_SAFE_MODE", seq=1)
    ground.feed(rt.advance_to(2))
    request = send(rt, "POWER_INSTRUMENT", seq=2, instrument="MARSCODE", state="ON")
    drive = send(rt, "DRIVE", seq=3, **_valid_args(rt, "DRIVE"))
    ground.feed(rt.advance_to(40))
    for req in (request, drive):
        reports = ground.verification(req)
        assert [s for s, _ in reports] == [1, 4]
        assert int.from_bytes(reports[1][1][:2], "big") == EXEC["REFUSED_IN_MODE"]
    assert "safe_mode_entered" in ground.events()
    assert ground.hk("obdh")[-1].obc_mode == "SAFE"
    send(rt, "LEAVE_SAFE_MODE", seq=4)
    ground.feed(rt.advance_to(80))
    assert "safe_mode_left" in ground.events()
    assert ground.hk("obdh")[-1].obc_mode != "SAFE"


def _valid_args(rt: FlightSoftware, name: str) -> dict[str, Any]:
    out = {}
    for n, a in rt.spacecraft.command(name).arguments.items():
        out[n] = sorted(a.valid)[0] if isinstance(a.valid, frozenset) else (a.valid[0] + a.valid[1]) / 2
    return out


def test_housekeeping_period_and_enable_commands():
    rt = make()
    ground = Ground(rt)
    send(rt, "SET_HK_PERIOD", seq=1, sid="POWER", period=1)
    send(rt, "DISABLE_HK", seq=2, sid="MOBILITY")
    ground.feed(rt.advance_to(20))
    assert len(ground.hk("power")) >= 19
    assert len(ground.hk("mobility")) == 0  # disabled before its first sample
    assert {"hk_period_changed", "hk_generation_changed"} <= set(ground.events())


def test_frame_checks_scid_vcid_fecf():
    rt = make()
    packet = rt.spacecraft.command("PING").build()
    rt.receive_tc_frame(tc_frame(rt, packet, scid=rt.spacecraft.scid + 1))
    rt.receive_tc_frame(tc_frame(rt, packet, vcid=5))
    broken = bytearray(tc_frame(rt, packet))
    broken[-1] ^= 1
    rt.receive_tc_frame(bytes(broken))
    assert rt.tc_accepted == 0
    assert rt.tc.counters["wrong_scid"] == rt.tc.counters["wrong_vcid"] == rt.tc.counters["bad_fecf"] == 1


# --------------------------------------------------------------------------- COP-1


def _clcw(rt: FlightSoftware, frames: list[bytes]):
    return parse_frame(frames[-1], rt.frame_profile).clcw


def test_cop1_in_order_gap_lockout_unlock():
    rt = make("haiyang2d", farm_window=10)
    ping = rt.spacecraft.command("PING")
    for ns in range(3):
        rt.receive_tc_frame(tc_frame(rt, ping.build(sequence_count=ns), ns=ns, bypass=False))
    clcw = _clcw(rt, rt.advance_to(1))
    assert (clcw.report_value, clcw.retransmit, clcw.lockout) == (3, 0, 0)
    assert rt.tc_accepted == 3
    # A gap: N(S)=5 while 3 is expected -> not accepted, retransmit flag.
    rt.receive_tc_frame(tc_frame(rt, ping.build(sequence_count=5), ns=5, bypass=False))
    clcw = _clcw(rt, rt.advance_to(2))
    assert (clcw.report_value, clcw.retransmit) == (3, 1)
    assert rt.tc_accepted == 3
    # The retransmission in order clears it.
    rt.receive_tc_frame(tc_frame(rt, ping.build(sequence_count=3), ns=3, bypass=False))
    clcw = _clcw(rt, rt.advance_to(3))
    assert (clcw.report_value, clcw.retransmit) == (4, 0)
    # Far outside the window: lockout; AD frames are refused, BD still passes.
    rt.receive_tc_frame(tc_frame(rt, ping.build(sequence_count=6), ns=100, bypass=False))
    rt.receive_tc_frame(tc_frame(rt, ping.build(sequence_count=7), ns=4, bypass=False))
    clcw = _clcw(rt, rt.advance_to(4))
    assert clcw.lockout == 1 and rt.tc_accepted == 4
    rt.receive_tc_frame(tc_frame(rt, ping.build(sequence_count=8)))
    assert rt.tc_accepted == 5
    # Unlock, then Set V(R) by BC frames.
    rt.receive_tc_frame(tc_frame(rt, UNLOCK, control=True))
    rt.receive_tc_frame(tc_frame(rt, set_vr_command(42), control=True))
    clcw = _clcw(rt, rt.advance_to(5))
    assert (clcw.lockout, clcw.report_value, clcw.farm_b_counter) == (0, 42, 3)
    rt.receive_tc_frame(tc_frame(rt, ping.build(sequence_count=9), ns=42, bypass=False))
    assert rt.tc_accepted == 6


# --------------------------------------------------------------------------- storage


def test_storage_outside_passes_and_dump_on_playback_vc():
    rt = make(passes=[(0, 20), (100, 200)])
    ground = Ground(rt)
    ground.feed(rt.advance_to(99))
    live = len(ground.of(3, 25))
    assert rt.counters["packets_stored"] > 0
    assert sum(len(s) for s in rt.stores.values()) == rt.counters["packets_stored"]
    # No frames at all outside the pass.
    assert len(ground.frames) == math.ceil(20 * rt.frame_rate)  # the slots at t < 20 s
    onboard_now = rt.onboard.now(99).coarse
    send(rt, "DUMP_STORAGE", store="HOUSEKEEPING", start_time=0, end_time=onboard_now)
    ground.feed(rt.advance_to(140))
    playback = [tm for vc, tm in ground.packets if vc == rt.spacecraft.profile.playback_vc]
    assert len(playback) == rt.counters["packets_dumped"] > 0
    assert len(rt.stores["HOUSEKEEPING"]) == 0
    assert len(rt.stores["EVENTS"]) > 0  # the dump command's own reports, stored before the pass
    send(rt, "DUMP_STORAGE", seq=1, store="EVENTS", start_time=0, end_time=rt.onboard.now().coarse)
    ground.feed(rt.advance_to(150))
    assert ground.events().count("storage_dump_completed") == 2  # one played back, one live
    assert len(ground.of(3, 25)) > live
    assert not ground.anomalies


def test_store_is_bounded_oldest_dropped():
    rt = make(passes=[(1000, 2000)], store_bytes=2000)
    rt.advance_to(200)
    store = rt.stores["HOUSEKEEPING"]
    assert store.used_bytes <= 2000 and store.dropped_total > 0
    assert any(e.event_id == 0x12 for e in rt.events_app.recent)  # the overflow event


# --------------------------------------------------------------------------- faults


def test_stuck_and_noise_faults_in_decoded_values():
    rt = make(faults=["stuck:zhurong.power.battery_voltage=20@t=30", "noise:zhurong.thermal.temp_*=5"])
    ground = Ground(rt)
    ground.feed(rt.advance_to(100))
    volts = [p.battery_voltage for p in ground.hk("power")]
    assert all(v != 20 for v in volts[:3]) and all(v == pytest.approx(20.0) for v in volts[5:])
    crit = rt.spacecraft.parameter("battery_voltage").limits.critical
    assert volts[-1] < crit[0]  # a limit violation the ground sees


def test_frame_faults_drop_corrupt_outage():
    dropped = make("haiyang2d", faults=["drop-frames:p=1"])
    assert dropped.advance_to(10) == [] and dropped.counters["frames_lost"] > 0
    corrupt = make("haiyang2d", faults=["corrupt-frames:p=1,bits=3"])
    ground = Ground(corrupt)
    ground.feed(corrupt.advance_to(10))
    assert ground.demux.counters and any(a.kind.startswith("fecf") or "crc" in a.kind or "fecf" in a.detail.lower()
                                         for a in ground.anomalies)
    outage = make("haiyang2d", faults=["link-outage:start=5,duration=10"])
    frames = outage.advance_to(20)
    assert len(frames) == pytest.approx(10 * outage.frame_rate, abs=2)


def test_safe_mode_fault_and_thermal_runaway():
    rt = make(faults=["safe-mode@t=10"])
    ground = Ground(rt)
    ground.feed(rt.advance_to(40))
    assert "safe_mode_entered" in ground.events()
    assert rt.model.mode == "SAFE"


def test_thermal_runaway_and_battery_degradation_change_telemetry():
    hot = make(faults=["thermal-runaway:battery=2000"])
    cold = make()
    g_hot, g_cold = Ground(hot), Ground(cold)
    g_hot.feed(hot.advance_to(600))
    g_cold.feed(cold.advance_to(600))
    t_hot = g_hot.hk("power")[-1].battery_temperature
    t_cold = g_cold.hk("power")[-1].battery_temperature
    assert t_hot > t_cold + 5
    worn = make(faults=["battery-degradation:rate=1,floor=0.05"])
    fresh = make()
    gw, gf = Ground(worn), Ground(fresh)
    gw.feed(worn.advance_to(900))
    gf.feed(fresh.advance_to(900))
    assert gw.hk("power")[-1].battery_soc != gf.hk("power")[-1].battery_soc


def test_noise_has_the_requested_sigma():
    quiet = make(seed=3)
    noisy = make(seed=3, faults=["noise:zhurong.power.bus_voltage=0.5"])
    gq, gn = Ground(quiet), Ground(noisy)
    gq.feed(quiet.advance_to(800))
    gn.feed(noisy.advance_to(800))
    diffs = [a.bus_voltage - b.bus_voltage for a, b in zip(gn.hk("power"), gq.hk("power"), strict=False)]
    assert 0.3 < statistics.pstdev(diffs) < 0.8


# --------------------------------------------------------------------------- the model interface


class _TinyModel(MissionModel):
    """A test model: every HK value from the generic model, its own command and event."""

    spacecraft_name = "haiyang2d"

    def __init__(self, spacecraft, **kwargs) -> None:
        super().__init__(spacecraft, **kwargs)
        self.inner = GenericModel(spacecraft, **kwargs)
        self.steps = 0

    def step(self, t: float, dt: float) -> None:
        self.steps += 1
        self.inner.step(t, dt)
        if self.steps == 5:
            self.emit("saa_entry", **{n: 0 for n in _aux_names(self.spacecraft, "saa_entry")})

    def housekeeping(self, packet: str) -> Mapping[str, Any]:
        return self.inner.housekeeping(packet)

    def execute(self, command: str, arguments: Mapping[str, Any]) -> CommandOutcome:
        if command == "ALTIMETER_MODE":
            return CommandOutcome(ok=False, error_code=EXEC["RESOURCE_BUSY"])
        if command == "SCATTEROMETER_SPIN":
            return CommandOutcome(duration=3.0, progress_step=1.0)
        raise NotMine(command)


def _aux_names(sc, event: str) -> list[str]:
    body = next(s for s in sc.event(event).construct.subcons if s.name == "aux").subcon
    return [s.name for s in body.subcons if s.name]


def test_model_events_and_outcomes():
    rt = make("haiyang2d", model_class=_TinyModel)
    ground = Ground(rt)
    busy = send(rt, "ALTIMETER_MODE", seq=1, **_valid_args(rt, "ALTIMETER_MODE"))
    spin = send(rt, "SCATTEROMETER_SPIN", seq=2, **_valid_args(rt, "SCATTEROMETER_SPIN"))
    ground.feed(rt.advance_to(10))
    assert "saa_entry" in ground.events()
    reports = ground.verification(busy)
    assert [s for s, _ in reports] == [1, 4] and int.from_bytes(reports[1][1][:2], "big") == EXEC["RESOURCE_BUSY"]
    assert [s for s, _ in ground.verification(spin)] == [1, 3, 5, 5, 7]


def test_flood_frames_decode():
    rt = make("haiyang2d")
    stream = b"".join(rt.flood(5000, batch=1024))
    from protocols.ccsds.sync import FrameSynchronizer

    sync = FrameSynchronizer(rt.frame_profile.frame_length)
    result = FrameDemux(rt.spacecraft.profile.frame).feed(f.data for f in sync.feed(stream).frames)
    tms = [PusTm.unpack(p.data, timestamp_len=6) for p in result.packets]
    events = [tm for tm in tms if tm.service == 5]  # the store's first link-state report
    assert len([tm for tm in tms if tm.service == 3]) == 5000 and len(events) <= 1 and not result.anomalies
    by_apid: dict[int, list[int]] = {}  # sequence counts per APID, events included
    for tm in tms:
        by_apid.setdefault(tm.apid, []).append(tm.seq_count)
    assert all(sorted(v) == list(range(len(v))) for v in by_apid.values())


def test_drive_reports_progress_and_moves_the_rover():
    rt = make()
    ground = Ground(rt)
    rt.advance_to(2)
    heading = float(rt.model.housekeeping("mobility").get("heading", 0.0)) if "heading" in \
        rt.model.housekeeping("mobility") else 0.0
    request = send(rt, "DRIVE", seq=1, distance=1.0, heading=heading, speed=100.0, mode="NORMAL")
    ground.feed(rt.advance_to(200))
    reports = [s for s, _ in ground.verification(request)]
    assert reports[:2] == [1, 3] and reports[-1] == 7 and reports.count(5) >= 3
    assert "drive_completed" in ground.events()


def test_fop1_on_the_ground_recovers_a_lost_ad_frame():
    """protocols' FOP-1 as the ground, the runtime's FARM-1 on board, one AD frame lost on the way up."""
    from protocols.ccsds.cop1 import Fop1, FrameKind

    rt = make("haiyang2d")
    fop = Fop1(window=4, timeout=5.0)
    now = 0.0
    sent: list = []
    lost = {1}  # the first transmission of N(S)=1 never arrives
    ping = rt.spacecraft.command("PING")

    def transmit(transmits) -> None:
        for t in transmits:
            if t.kind is FrameKind.AD and t.ns in lost:
                lost.discard(t.ns)
                continue
            sent.append(t.ns)
            rt.receive_tc_frame(tc_frame(rt, t.data, ns=t.ns, bypass=t.kind is not FrameKind.AD,
                                         control=t.kind is FrameKind.BC))

    transmit(fop.initiate(now, mode="unlock")[0])
    for seq in range(5):
        transmit(fop.submit(ping.build(sequence_count=seq), seq, now)[0])
    acknowledged = set()
    while now < 60 and len(acknowledged) < 5:
        now += 0.5
        frames = rt.advance_to(now)
        if frames:
            clcw = parse_frame(frames[-1], rt.frame_profile).clcw
            out, events = fop.on_clcw(clcw.as_dict(), now)
            transmit(out)
            acknowledged |= {e.tag for e in events if e.kind == "acknowledged"}
        out, _ = fop.on_timer(now)
        transmit(out)
    assert acknowledged == {0, 1, 2, 3, 4}
    assert rt.tc_accepted == 5  # each PING executed once, in order
    assert rt.tc.counters["AD_gap"] >= 1


@pytest.mark.parametrize("randomized", [False, True])
def test_cltu_extractor_on_a_chunked_noisy_stream(randomized):
    from flightsw.runtime.uplink import CltuExtractor
    from protocols.ccsds.cltu import encode_cltu

    rt = make()
    frames = [tc_frame(rt, rt.spacecraft.command("PING").build(sequence_count=i)) for i in range(3)]
    cltus = [encode_cltu(f, randomize=randomized) for f in frames]
    flipped = bytearray(cltus[1])
    flipped[5] ^= 0x04  # one bit error in a code block: corrected
    stream = b"\x00\xeb\x12" + cltus[0] + b"\x55" * 9 + bytes(flipped) + b"\xeb" + cltus[2]
    ex = CltuExtractor(randomized=randomized)
    out = []
    for i in range(len(stream)):
        out += ex.feed(stream[i:i + 1])
    assert out == frames


@pytest.mark.parametrize("mission", [sc.name for sc in registry()])
def test_every_mission_flies_with_its_model(mission):
    rt = make(mission, seed=2)
    ground = Ground(rt)
    ground.feed(rt.advance_to(30))
    request = send(rt, "PING", seq=1)
    ground.feed(rt.advance_to(62))
    assert not ground.anomalies and rt.counters["hk_build_errors"] == 0
    assert [s for s, _ in ground.verification(request)] == [1, 3, 7] and ground.of(17, 2)
    seen = {rt.spacecraft.housekeeping_packet(int.from_bytes(tm.source_data[:2], "big")).name
            for tm in ground.of(3, 25)}
    assert seen == {p.name for p in rt.spacecraft.housekeeping}  # every report once at t=0 at least


@pytest.mark.parametrize("target", ["zhurong.power.battery_voltage", "power.battery_voltage", "battery_voltage",
                                    "zhurong.power.battery_*"])
def test_sensor_fault_target_forms(target):
    rt = make(faults=[f"stuck:{target}=20"])
    ground = Ground(rt)
    ground.feed(rt.advance_to(20))
    assert all(p.battery_voltage == pytest.approx(20.0) for p in ground.hk("power"))
    assert rt.faults.faults[0].spec.target.startswith("zhurong.")


def test_the_readme_fault_example_crosses_the_battery_limits_within_its_stated_time():
    """The README's thermal-runaway example: its fault, at its time scale, goes critical within ~90 s."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"demo --mission zhurong --time-scale (\d+) --fault zhurong=(\S+)`", readme)
    assert match, "the README's fault example is gone"
    time_scale, fault = int(match[1]), match[2]
    limits = registry().spacecraft("zhurong").parameter("battery_temperature").limits
    rt = make(faults=[fault])
    ground = Ground(rt)
    ground.feed(rt.advance_to(90 * time_scale))
    states = [limits.classify(hk.battery_temperature) for hk in ground.hk("power")]
    assert states[0] == LimitState.NOMINAL  # the fault heats a battery that starts within limits
    assert LimitState.WARNING in states and states[-1] == LimitState.CRITICAL
