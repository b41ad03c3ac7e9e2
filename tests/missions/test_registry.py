"""Registry lookups: by name, SCID, APID + service/subtype/key, from raw bytes; parameter metadata."""
from __future__ import annotations

import pytest

from protocols.ccsds.spacepacket import PacketType
from protocols.errors import ProtocolError, TruncatedError
from protocols.missions import (
    HousekeepingPacket,
    Spacecraft,
    builtin_registry,
    get_command,
    get_spacecraft,
    list_parameters,
    registry,
)

REGISTRY = builtin_registry()


def test_builtin_spacecraft_by_name_and_scid():
    assert REGISTRY.names == ["zhurong", "tianwen1", "change5-orbiter", "haiyang2d", "ilrs-lander", "change5-lander"]
    for sc in REGISTRY:
        assert REGISTRY.spacecraft(sc.name) is sc
        assert REGISTRY.spacecraft(sc.scid) is sc
        assert sc.name in REGISTRY and sc.scid in REGISTRY
    assert REGISTRY.spacecraft(245).name == "tianwen1"
    assert REGISTRY.spacecraft(91).name == "change5-lander"    # the lander stack
    assert REGISTRY.spacecraft(108).name == "change5-orbiter"  # the orbiter from 2020-12-12 on
    with pytest.raises(KeyError, match=r"no spacecraft 'voyager'; known: zhurong \(SCID 83\)"):
        REGISTRY.spacecraft("voyager")


def test_default_registry_holds_the_builtins():
    assert isinstance(get_spacecraft("zhurong"), Spacecraft)
    assert {"zhurong", "tianwen1"} <= set(registry().names)
    assert get_command(245, "PING").service == 17
    assert len(list_parameters("haiyang2d")) == len(REGISTRY.parameters("haiyang2d"))


def test_packet_by_header_fields():
    tw = REGISTRY.spacecraft("tianwen1")
    orbit = tw.housekeeping_packet("orbit")
    assert REGISTRY.packet(245, orbit.apid, 3, 25, orbit.sid) is orbit
    assert REGISTRY.packet("tianwen1", orbit.apid, key=orbit.sid) is orbit
    relay = tw.housekeeping_packet("relay")
    assert REGISTRY.packet(245, relay.apid, 3, 25) is relay  # the only HK packet on its APID
    with pytest.raises(KeyError, match="packets match"):
        REGISTRY.packet(245, orbit.apid)
    with pytest.raises(KeyError, match="no packet for tianwen1: TM APID 513 PUS 3,25 key 999"):
        REGISTRY.packet(245, orbit.apid, 3, 25, 999)
    ping = REGISTRY.packet(245, 0x200, 17, 1, packet_type=PacketType.TC)
    assert ping.name == "PING"
    safe = REGISTRY.packet(245, 0x200, 8, 1, 2, packet_type=PacketType.TC)
    assert safe.name == "ENTER_SAFE_MODE"
    assert REGISTRY.packet(245, 0x200, 5, 4, 1).name == "safe_mode_entered"


def test_resolve_from_raw_bytes():
    zh = REGISTRY.spacecraft("zhurong")
    mob = zh.housekeeping_packet("mobility")
    raw = REGISTRY.command(83, "DRIVE").build(distance=3, heading=10, speed=50, mode="NORMAL")
    assert REGISTRY.resolve("zhurong", raw).name == "DRIVE"
    values = {path.split(".", 1)[1]: (prm.calibration.to_eng(0) if not prm.calibration.is_state
                                      else next(iter(prm.calibration.codes))) for path, prm in mob.parameters()}
    hk = mob.build(values)
    assert REGISTRY.resolve(83, hk) is mob
    assert REGISTRY.resolve(83, hk[:mob.key_offset + 2]) is mob  # the header alone is enough
    with pytest.raises(TruncatedError):
        REGISTRY.resolve(83, hk[:5])
    wrong = bytearray(hk)
    wrong[mob.key_offset + 1] = 99
    with pytest.raises(ProtocolError, match="zhurong has no TM packet with APID 289 PUS 3,25 sid 99"):
        REGISTRY.resolve(83, bytes(wrong))


def test_parameter_metadata():
    infos = REGISTRY.parameters("zhurong")
    names = [i.name for i in infos]
    assert len(names) == len(set(names))
    odo = REGISTRY.parameter("zhurong", "odometer")
    assert (odo.spacecraft, odo.subsystem, odo.packet, odo.path, odo.unit, odo.data_type) == \
        ("zhurong", "mobility", "mobility", "hk.odometer", "m", "uint32")
    assert odo.calibration.describe() == "linear: 0 + 0.01 * raw"
    assert "1921" in odo.description
    assert odo.limits.describe() == "warning outside [0, 10000]; critical outside [0, 40000]"
    assert odo.qualified_name == "zhurong.mobility.odometer"
    assert REGISTRY.parameter("zhurong", "mcs.hk.air_temperature").calibration.describe().startswith("polynomial")
    with_events = REGISTRY.parameters("zhurong", include_events=True)
    assert len(with_events) > len(infos) and {i.kind for i in with_events} == {"housekeeping", "event"}
    # Instruments the task names are all there.
    subsystems = {i.subsystem for i in infos}
    assert {"power", "thermal", "mobility", "roper", "romag", "mcs", "marscode", "cameras"} <= subsystems
    tw = {i.name for i in REGISTRY.parameters("tianwen1")}
    assert {"periapsis_altitude", "orbital_period", "inclination", "earth_distance", "light_time", "engine_thrust",
            "relay_session", "momag_bx", "minpa_ion_rate", "mepa_proton_rate", "mms_power", "hiric_power",
            "moric_power"} <= tw


def test_counts_are_realistic():
    for sc in REGISTRY:
        counts = [len(p.parameters()) for p in sc.housekeeping]
        assert sum(counts) >= 60 and min(counts) >= 4, (sc.name, counts)
        assert all(isinstance(p, HousekeepingPacket) for p in sc.housekeeping)


def test_packet_for_a_parsed_header_and_verification_reports():
    from protocols.ccsds.pus import TcSecondaryHeader
    from protocols.ccsds.spacepacket import PrimaryHeader

    drive = REGISTRY.command("zhurong", "DRIVE")
    raw = drive.build(distance=5, heading=45, speed=120, mode="NORMAL", sequence_count=77)
    primary = PrimaryHeader.parse(raw[:6])
    secondary = TcSecondaryHeader.parse(raw[6:11])
    assert REGISTRY.packet_for_header(83, primary, secondary, key=drive.function_id) is drive
    # The emulator answers on the command's APID with the command's request ID.
    accepted = REGISTRY.packet(83, drive.apid, 1, 1)
    report = accepted.parse(accepted.build(request=raw, sequence_count=1))
    assert (report.report.request.apid, report.report.request.sequence_count, report.report.request.type) == \
        (drive.apid, 77, 1)
    assert REGISTRY.resolve(83, accepted.build(request=raw)) is accepted
    failed = REGISTRY.packet(83, drive.apid, 1, 8)
    parsed = failed.parse(failed.build({"code": "REFUSED_IN_MODE", "data": 3}, request=raw))
    assert parsed.report.code == "REFUSED_IN_MODE"
    pong = REGISTRY.packet(83, REGISTRY.command(83, "PING").apid, 17, 2)
    assert pong.name == "platform_ping_reply"


def test_build_and_parse_errors_name_the_packet_and_field():
    power = REGISTRY.spacecraft("tianwen1").housekeeping_packet("power")
    values = {path.split(".", 1)[1]: (prm.calibration.to_eng(0) if not prm.calibration.is_state
                                      else next(iter(prm.calibration.codes))) for path, prm in power.parameters()}
    with pytest.raises(ProtocolError, match=r"packet power field 'hk': unknown value\(s\) \['volts'\]"):
        power.build({**values, "volts": 1})
    with pytest.raises(ProtocolError, match=r"missing value\(s\) \['bus_voltage'\]"):
        power.build({k: v for k, v in values.items() if k != "bus_voltage"})
    with pytest.raises(ProtocolError, match=r"bus_voltage"):
        power.build({**values, "bus_voltage": 1000})
    raw = power.build(values)
    with pytest.raises(TruncatedError, match=r"packet power at byte 0: 10 octets, the packet has 45"):
        power.parse(raw[:10])
    corrupted = bytearray(raw)
    corrupted[30] ^= 0xFF  # inside the hk data
    with pytest.raises(ProtocolError, match="packet error control"):
        power.parse(bytes(corrupted))
