"""Definitions are complete, and bad ones are refused with a message naming what is wrong."""
from __future__ import annotations

import re

import construct as cs
import pytest

from cython_ext import crc
from protocols.ccsds.pus import PEC_LENGTH
from protocols.errors import DefinitionError, ProtocolError
from protocols.missions import (
    Apid,
    Command,
    Downlink,
    EventReport,
    FrameProfile,
    HousekeepingPacket,
    Instrument,
    Registry,
    Spacecraft,
    VirtualChannel,
    builtin_registry,
)
from protocols.missions.common import U8, U16, arg, param, state
from protocols.parameters import Limits, Linear, Parameter, StateLimits

REGISTRY = builtin_registry()

#: UCUM-ish short units used by the missions ("" = dimensionless count, "state" = enumeration).
UNITS = {"", "state", "V", "A", "W", "degC", "K", "Pa", "MPa", "m", "mm", "cm", "km", "AU", "m/s", "m/h", "deg",
         "deg/s", "rpm", "s", "ms", "us", "h", "d", "%", "dB", "dBm", "nT", "mJ", "kJ", "kg", "kB", "N", "1/s",
         "uGy/h", "nm/s", "mW/m2", "ug/cm2", "V/m", "B", "N*m"}


def test_every_housekeeping_parameter_is_complete():
    infos = REGISTRY.parameters()
    assert len(infos) > 300
    for info in infos:
        assert info.unit in UNITS, f"{info.qualified_name}: unit {info.unit!r}"
        assert info.description.strip(), info.qualified_name
        assert info.limits is not None, info.qualified_name
        assert info.calibration is not None, info.qualified_name
        if info.calibration.is_state:
            assert info.unit == "state" and isinstance(info.limits, StateLimits), info.qualified_name
        else:
            assert isinstance(info.limits, Limits), info.qualified_name


def test_event_and_command_fields_are_typed_and_described():
    for sc in REGISTRY:
        for packet in [*sc.events, *sc.commands]:
            for path, prm in packet.parameters():
                assert isinstance(prm, Parameter) and prm.description.strip() and prm.unit in UNITS, \
                    (sc.name, packet.name, path)


def test_each_spacecraft_has_enough_and_the_standard_set():
    standard = {"PING", "POWER_INSTRUMENT", "SET_HK_PERIOD", "ENABLE_HK", "DISABLE_HK", "ENTER_SAFE_MODE",
                "DUMP_STORAGE"}
    for sc in REGISTRY:
        assert len(sc.housekeeping) >= 3, sc.name
        assert standard <= {c.name for c in sc.commands}, sc.name
        assert {e.severity for e in sc.events} == {1, 2, 3, 4} or len(sc.events) >= 3, sc.name
        assert sc.profile.realtime_vc != sc.profile.playback_vc
        assert all(p.period > 0 for p in sc.housekeeping)
        assert sc.command("PING").lookup_key[2:4] == (17, 1)
        for instrument in sc.instruments:  # the emulator switches what POWER_INSTRUMENT names
            assert sc.parameter(instrument.power_parameter).calibration.codes.keys() >= {"OFF", "ON"}
    assert REGISTRY.command("zhurong", "DRIVE").arguments.keys() >= {"distance", "heading"}


def test_public_facts_where_known():
    tw = REGISTRY.spacecraft(245)
    assert (tw.name, tw.profile.frame.kind, tw.profile.frame.frame_length) == ("tianwen1", "AOS", 220)
    assert (tw.profile.realtime_vc, tw.profile.playback_vc, tw.profile.frame.has_fecf, tw.profile.frame.aos_fhec) == \
        (1, 3, False, False)
    ce5 = REGISTRY.spacecraft(108)
    assert (ce5.name, ce5.profile.frame.kind, ce5.profile.realtime_vc) == ("change5-orbiter", "AOS", 1)
    lander = REGISTRY.spacecraft(91)
    assert (lander.name, lander.profile.frame.kind, lander.profile.frame.frame_length) == ("change5-lander", "AOS", 220)
    assert (lander.profile.realtime_vc, lander.profile.playback_vc, lander.profile.frame.has_fecf) == (1, 2, False)
    assert REGISTRY.spacecraft("zhurong").profile.relay_via == "tianwen1"
    for name in ("zhurong", "haiyang2d", "ilrs-lander"):
        assert REGISTRY.spacecraft(name).profile.source == "invented"


# --------------------------------------------------------------------------- bad definitions


PROFILE = Downlink(frame=FrameProfile(kind="TM", frame_length=256, has_ocf=True, has_fecf=True, randomized=False),
                       virtual_channels=(VirtualChannel(0, "realtime", "live"), VirtualChannel(1, "playback", "dump")),
                       realtime_vc=0, playback_vc=1)


def hk(name="power", sid=1, apid=0x10, fields=None):
    return HousekeepingPacket(name, apid=apid, sid=sid, subsystem="power", period=4.0, description="test packet",
                              fields=fields or [f"{name}_volts" / param(U16, "V", "Bus", Linear(0.001),
                                                                       warn=(27, 29), crit=(26, 30))])


def make_spacecraft(**changes) -> Spacecraft:
    fields = dict(name="testsat", scid=42, description="test", profile=PROFILE,
                  apids=(Apid(0x10, "platform", "all"),), housekeeping=(hk(),), events=(), commands=())
    fields.update(changes)
    return Spacecraft(**fields)


@pytest.mark.parametrize("make,message", [
    (lambda: make_spacecraft(apids=(Apid(0x10, "a", "x"), Apid(0x10, "b", "y"))),
     r"spacecraft 'testsat': duplicate APID 16"),
    (lambda: make_spacecraft(housekeeping=(hk(apid=0x11),)),
     r"packet 'power': APID 17 is not one of the spacecraft's APIDs"),
    (lambda: make_spacecraft(housekeeping=(hk("power", sid=1), hk("thermal", sid=1))),
     r"duplicate housekeeping SID 1 \(packets 'power' and 'thermal'\)"),
    (lambda: make_spacecraft(housekeeping=(hk("power", sid=1), hk("power", sid=2))),
     r"duplicate packet name 'power'"),
    (lambda: make_spacecraft(housekeeping=(
        hk("power", 1, fields=["volts" / param(U8, "V", "a", warn=(0, 9))]),
        hk("thermal", 2, fields=["volts" / param(U8, "V", "b", warn=(0, 9))]))),
     r"parameter name 'volts' overlaps: defined in packet 'power' and in packet 'thermal'"),
    (lambda: hk(fields=["volts" / param(U8, "V", "a", warn=(0, 9)), "volts" / param(U8, "V", "b", warn=(0, 9))]),
     r"packet 'power': field names \['volts'\] overlap"),
    (lambda: hk(fields=["Volts" / param(U8, "V", "a", warn=(0, 9))]), r"'Volts' is not snake_case"),
    (lambda: hk(fields=["volts" / param(U8, "V", "a", warn=(9, 0))]),
     r"warning limit range is reversed: low 9 > high 0"),
    (lambda: hk(fields=["mode" / state(U8, {0: "A", 1: "B"}, "Rover mode", crit={"C"})]),
     r"parameter 'Rover mode': state limits name unknown states \['C'\]"),
    (lambda: hk(fields=["blob" / cs.PrefixedArray(cs.Int8ub, cs.Int8ub)]), r"'power' is not fixed-size"),
    (lambda: make_spacecraft(housekeeping=(hk(fields=["volts" / Parameter(U8, unit="V", description="no limits")]),)),
     r"parameter 'hk.volts' has no limits"),
    (lambda: make_spacecraft(name="TestSat"), r"name must be lower-case"),
    (lambda: make_spacecraft(instruments=(Instrument(1, "CAM", "camera", "cam_power"),)),
     r"instrument 'CAM' reports its power in 'cam_power', which no housekeeping packet defines"),
    (lambda: make_spacecraft(instruments=(Instrument(1, "CAM", "camera", "power_volts"),)),
     r"power parameter 'power_volts' of instrument 'CAM' must be an enumeration with OFF and ON"),
    (lambda: make_spacecraft(scid=2000), r"SCID 2000 does not fit the TM frame's 10-bit field"),
    (lambda: make_spacecraft(profile=Downlink(
        frame=FrameProfile(kind="AOS", frame_length=220, has_ocf=False, has_fecf=False, randomized=True),
        virtual_channels=(VirtualChannel(1, "realtime", "x"),), realtime_vc=1, playback_vc=3)),
     r"playback VC 3 is not among the virtual channels \[1\]"),
    (lambda: make_spacecraft(events=(
        EventReport("a", apid=0x10, event_id=5, severity=1, subsystem="x", description="a"),
        EventReport("b", apid=0x10, event_id=5, severity=2, subsystem="x", description="b"))),
     r"duplicate event ID 5 \(packets 'a' and 'b'\)"),
    (lambda: EventReport("a", apid=0x10, event_id=5, severity=7, subsystem="x", description="a"),
     r"severity is PUS 5 subtype 1..4"),
    (lambda: Command("GO", apid=0x10, service=8, subtype=1, subsystem="x", description="go"),
     r"PUS 8,1 needs a function_id"),
    (lambda: Command("GO", apid=0x10, service=8, subtype=1, function_id=1, subsystem="x", description="go",
                     arguments=["speed" / arg(U16, "m/s", "Speed", Linear(0.01), valid=(10, 1))]),
     r"valid range is reversed"),
    (lambda: Command("GO", apid=0x10, service=8, subtype=1, function_id=1, subsystem="x", description="go",
                     arguments=["speed" / arg(U8, "m/s", "Speed", valid=(0, 300))]),
     r"valid range 0..300 exceeds what the field can express"),
    (lambda: Command("GO", apid=0x10, service=8, subtype=1, function_id=1, subsystem="x", description="go",
                     arguments=["speed" / param(U8, "m/s", "Speed", warn=(0, 1))]),
     r"every argument is a named Argument"),
])
def test_bad_definitions_are_refused(make, message):
    with pytest.raises(DefinitionError, match=message):
        make()


def test_duplicate_scid_and_name_in_registry():
    reg = Registry([make_spacecraft()])
    with pytest.raises(DefinitionError, match=r"spacecraft 'other'.*duplicate SCID 42, already used by 'testsat'"):
        reg.register(make_spacecraft(name="other"))
    with pytest.raises(DefinitionError, match=r"spacecraft 'testsat'.*duplicate spacecraft name"):
        reg.register(make_spacecraft(scid=43))
    with pytest.raises(DefinitionError, match=r"duplicate SCID 245, already used by 'tianwen1'"):
        Registry(list(REGISTRY)).register(make_spacecraft(scid=245))


def test_unknown_relay_is_refused():
    reg = Registry([make_spacecraft(profile=Downlink(
        frame=FrameProfile(kind="TM", frame_length=256, has_ocf=True, has_fecf=True, randomized=False),
        virtual_channels=PROFILE.virtual_channels, realtime_vc=0, playback_vc=1, relay_via="nowhere"))])
    with pytest.raises(DefinitionError, match=r"'testsat': relays via 'nowhere', which is not registered"):
        reg.check_relays()


# --------------------------------------------------------------------------- commands


def test_command_arguments_are_range_checked_on_build_and_on_receipt():
    drive = REGISTRY.command("zhurong", "drive")
    ok = drive.build(distance=12.5, heading=90, speed=100, mode="CRAB", sequence_count=3)
    assert drive.parse_arguments(ok) == {"distance": 12.5, "heading": 90.0, "speed": 100.0, "mode": "CRAB"}
    with pytest.raises(ProtocolError, match=r"DRIVE field 'args.distance'.*150 m outside the valid range 0.1 .. 100 m"):
        drive.build(distance=150, heading=90, speed=100, mode="CRAB")
    with pytest.raises(ProtocolError, match=r"unknown argument\(s\) \['range'\]"):
        drive.build(distance=1, heading=90, speed=100, mode="CRAB", range=3)
    with pytest.raises(ProtocolError, match=r"missing argument\(s\) \['mode'\]"):
        drive.build(distance=1, heading=90, speed=100)
    with pytest.raises(ProtocolError, match=r"'mode' = 'FLY' not allowed; allowed: NORMAL, CRAB, WHEEL_WALK"):
        drive.build(distance=1, heading=90, speed=100, mode="FLY")
    # A corrupted/forged command with an out-of-range raw value is refused by the receiver too.
    offset = drive.key_offset + 2
    forged = bytearray(ok)
    forged[offset:offset + 2] = (20000).to_bytes(2, "big")  # 200 m
    forged[-PEC_LENGTH:] = crc.crc16(bytes(forged[:-PEC_LENGTH])).to_bytes(2, "big")
    with pytest.raises(ProtocolError, match=r"'args.distance' = 200 m outside the valid range"):
        drive.parse_arguments(bytes(forged))


def test_state_argument_subset_and_cross_argument_constraint():
    power = REGISTRY.command("tianwen1", "POWER_INSTRUMENT")
    power.build(instrument="HIRIC", state="ON")
    with pytest.raises(ProtocolError, match=r"'state' = 'TRIPPED' not allowed; allowed: OFF, ON"):
        power.build(instrument="HIRIC", state="TRIPPED")
    dump = REGISTRY.command("tianwen1", "DUMP_STORAGE")
    dump.build(store="SCIENCE", start_time=10, end_time=20)
    with pytest.raises(ProtocolError, match=r"start_time 30 is after end_time 20"):
        dump.build(store="SCIENCE", start_time=30, end_time=20)
    period = REGISTRY.command("haiyang2d", "SET_HK_PERIOD")
    data = period.build(sid="ALTIMETER", period=2.5)
    assert period.parse_arguments(data) == {"sid": "ALTIMETER", "period": 2.5}
    with pytest.raises(ProtocolError, match=r"'period' = 0.1 s outside the valid range 0.5 .. 3600 s"):
        period.build(sid="ALTIMETER", period=0.1)


def test_command_signature_is_readable():
    assert re.fullmatch(r"DRIVE\(distance: 0.1 .. 100 m, heading: 0 .. 359.99 deg, speed: 10 .. 200 m/h, "
                        r"mode: NORMAL, CRAB, WHEEL_WALK\)", REGISTRY.command("zhurong", "DRIVE").signature())


def test_shared_calibration_constants_are_not_rebound():
    """CENTI on a float field must not turn the integer fields' rounding off."""
    from protocols.missions.common import CENTI, F32, S16

    integer = param(S16, "degC", "integer field", CENTI, warn=(0, 1))
    floating = param(F32, "degC", "float field", CENTI, warn=(0, 1))
    assert integer.calibration.to_raw(0.014) == 1 and floating.calibration.to_raw(0.014) != 1
    assert CENTI.to_raw(0.014) == 1
