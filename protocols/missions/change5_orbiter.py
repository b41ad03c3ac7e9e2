"""Chang'e-5 orbiter, extended mission in a periodic orbit around Sun-Earth L1 (from March 2021).

Public facts used: SCID 108 (the orbiter in every recording from 2020-12-12 on; 91 is the
lander stack, protocols.missions.change5_lander), AOS frames, VC1 realtime, low-rate
downlink 2048 baud on a 65536 Hz subcarrier, Reed-Solomon codeword 252 octets in the standard dual
basis (so 220-octet frames), 2 s per frame; after returning the sample capsule
(2020-12-17) it flew to Sun-Earth L1, ~1.5 million km from Earth, on a periodic
orbit of about six months.  Invented: playback VC, APIDs, layouts, scalings, limits.
"""
from __future__ import annotations

from datetime import UTC, datetime

from protocols.ccsds.tmframe import InsertZoneTime, ReedSolomon
from protocols.missions.common import (
    CENTI,
    MISSION_EVENTS,
    MISSION_FUNCTIONS,
    ORBIT_SOURCE,
    S16,
    S32,
    SWITCH,
    U8,
    U16,
    U32,
    SolarArray,
    Tank,
    Zone,
    arg,
    attitude_hk,
    aux,
    choice,
    obdh_hk,
    param,
    power_hk,
    propulsion_hk,
    radio_fields,
    standard_commands,
    standard_events,
    state,
    thermal_hk,
)
from protocols.missions.model import (
    Apid,
    Command,
    Downlink,
    EventReport,
    FrameProfile,
    HousekeepingPacket,
    Instrument,
    Spacecraft,
    VirtualChannel,
)
from protocols.parameters import Linear

PLATFORM, GNC = 0x0A0, 0x0A1

# The rendezvous sensors used for the lunar-orbit docking are kept powered off; they
# remain switchable, which is what the instrument power command exercises.
INSTRUMENTS = (
    Instrument(1, "MONITOR_CAMERA", "Engineering monitoring camera", "camera_power"),
    Instrument(2, "MICROWAVE_RADAR", "Rendezvous microwave radar", "radar_power"),
    Instrument(3, "LASER_RANGER", "Rendezvous laser range finder", "laser_ranger_power"),
)
STORES = ("housekeeping", "events")

AOCS_MODES = {0: "SUN_SAFE", 1: "STANDBY", 2: "SUN_POINT", 3: "EARTH_POINT", 4: "ORBIT_CONTROL"}

HOUSEKEEPING = (
    power_hk(apid=PLATFORM, sid=1, period=16.0,
             bus=((27.0, 30.0), (26.0, 31.0)), bus_current_max=30.0,
             battery=((25.0, 32.8), (24.0, 33.6)), soc=((60, 100), (40, 100)),
             arrays=[SolarArray("wing_a", "Solar wing A", 18.0), SolarArray("wing_b", "Solar wing B", 18.0)],
             extra=[
                 "power_margin" / param(S32, "W", "Array output minus load (positive = surplus)", Linear(0.01),
                                        warn=(20, 3000), crit=(0, 3000)),
             ],
             description="Power balance: bus, battery, arrays and the surplus between them"),
    thermal_hk(apid=PLATFORM, sid=2, period=32.0,
               zones=[
                   Zone("propellant_tank", "Propellant tank", (10, 35), (5, 40)),
                   Zone("thruster_valves", "Thruster valve cluster", (5, 60), (0, 80)),
                   Zone("avionics", "Avionics panel", (-10, 40), (-20, 50)),
                   Zone("transponder", "Transponder", (-10, 45), (-20, 55)),
                   Zone("sun_panel", "Sun-facing panel", (-40, 80), (-60, 100)),
               ],
               heaters=[("tank", "Propellant tank"), ("valves", "Thruster valves"), ("battery", "Battery")]),
    attitude_hk(apid=GNC, sid=3, period=8.0, modes=AOCS_MODES, mode_warn={"STANDBY"}, mode_crit={"SUN_SAFE"},
                wheels=3, wheel_max_rpm=5000, max_rate=0.5, pointing=((0, 0.2), (0, 2.0))),
    HousekeepingPacket("orbit", apid=GNC, sid=4, subsystem="orbit", period=300.0,
                       description="State in the Sun-Earth rotating frame, origin at L1 (x toward Earth)", fields=[
        *[f"l1_{axis}" / param(S32, "km", f"Position {axis} relative to Sun-Earth L1", Linear(0.1),
                               warn=(-900000, 900000), crit=(-1500000, 1500000)) for axis in "xyz"],
        *[f"l1_v{axis}" / param(S32, "m/s", f"Velocity {axis} relative to L1 (rotating frame)", Linear(0.001),
                                warn=(-500, 500), crit=(-1000, 1000)) for axis in "xyz"],
        "earth_distance" / param(U32, "km", "Distance to Earth (~1.5 million km)", Linear(10), warn=(1.0e6, 2.0e6),
                                 crit=(0.5e6, 3.0e6)),
        "light_time" / param(U16, "s", "One-way light time to Earth", Linear(0.01), warn=(3.3, 6.7), crit=(1.6, 10)),
        "orbit_phase" / param(U16, "deg", "Phase along the ~180-day periodic orbit", Linear(0.01), warn=(0, 360),
                              crit=(0, 360)),
        "days_since_maneuver" / param(U16, "d", "Days since the last station-keeping burn", warn=(0, 90),
                                      crit=(0, 180)),
        "orbit_source" / state(U8, ORBIT_SOURCE, "Where the on-board state comes from", warn={"STALE"}),
    ]),
    propulsion_hk(apid=GNC, sid=5, period=60.0, description="Station-keeping propellant and pressurant",
                  tanks=[Tank("propellant", "Propellant", pressure=((1.2, 2.1), (1.0, 2.3)),
                              mass=((30, 2000), (10, 2500)))],
                  helium=((3, 30), (2, 35))),
    obdh_hk(apid=PLATFORM, sid=6, period=60.0, storage_gbit=16),
    HousekeepingPacket("comms", apid=PLATFORM, sid=7, subsystem="comms", period=32.0,
                       description="S-band TT&C transponder", fields=[
        *radio_fields("sband", "S-band", tx_power=((10, 25), (5, 30)), rx_level=((-140, -80), (-150, -70)),
                      rates={0: "BPS_2048", 1: "KBPS_16", 2: "KBPS_64"}),
    ]),
    HousekeepingPacket("rendezvous", apid=PLATFORM, sid=8, subsystem="rendezvous", period=120.0,
                       description="Rendezvous and monitoring sensors left from the lunar-orbit docking", fields=[
        "camera_power" / state(U8, SWITCH, "Monitoring camera power", crit={"TRIPPED"}),
        "radar_power" / state(U8, SWITCH, "Rendezvous microwave radar power", crit={"TRIPPED"}),
        "laser_ranger_power" / state(U8, SWITCH, "Rendezvous laser range finder power", crit={"TRIPPED"}),
        "sensor_deck_temperature" / param(S16, "degC", "Rendezvous sensor deck temperature", CENTI,
                                          warn=(-30, 40), crit=(-45, 55)),
    ]),
)

EVENTS = (
    *standard_events(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES,
                     battery_voltage=25.0),
    EventReport("station_keeping_done", apid=GNC, event_id=MISSION_EVENTS + 0, severity=1, subsystem="orbit",
                description="A station-keeping burn finished", aux=[
        "delta_v" / aux(S32, "m/s", "Achieved velocity change", Linear(0.001)),
        "propellant_used" / aux(U16, "kg", "Propellant used", Linear(0.01)),
    ]),
    EventReport("power_negative", apid=PLATFORM, event_id=MISSION_EVENTS + 1, severity=3, subsystem="power",
                description="Load exceeds array output: the battery is discharging in sunlight", aux=[
        "power_margin" / aux(S32, "W", "Array output minus load", Linear(0.01)),
    ]),
    EventReport("sun_acquisition_lost", apid=GNC, event_id=MISSION_EVENTS + 2, severity=4, subsystem="aocs",
                description="Sun sensors lost the Sun", aux=[
        "sun_angle" / aux(U16, "deg", "Last Sun angle from the array normal", Linear(0.01)),
    ]),
)

COMMANDS = (
    *standard_commands(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES),
    Command("STATION_KEEPING", apid=GNC, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 0,
            subsystem="orbit", description="Schedule a station-keeping burn", arguments=[
        "ignition_time" / arg(U32, "s", "Ignition on-board time (CUC coarse seconds)", valid=(0, 2**32 - 1)),
        "delta_v" / arg(U16, "m/s", "Velocity change", Linear(0.001), valid=(0.001, 20)),
    ]),
    Command("SET_ATTITUDE_MODE", apid=GNC, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 1,
            subsystem="aocs", description="Change the attitude control mode", arguments=[
        "mode" / choice(U8, AOCS_MODES, "Target mode", valid={"STANDBY", "SUN_POINT", "EARTH_POINT"}),
    ]),
)


#: The insert zone's onboard time (public, from the real frames): octets 4..7 of the 8-octet insert
#: zone, a little-endian count of seconds since 2012-08-01T00:00:00 UTC.  Octets 0..3 are not understood.
CHANGE5_INSERT_ZONE_TIME = InsertZoneTime(offset=4, length=4, unit=1.0,
                                          epoch=datetime(2012, 8, 1, tzinfo=UTC).timestamp(), byteorder="little")


def change5_profile(*, playback_vc: int, notes: str) -> Downlink:
    """The Chang'e-5 downlink, the same on the orbiter and the lander: 220-octet AOS frames with an
    8-octet insert zone in 252-octet RS codewords (E=16, dual basis), randomized, 2048 baud, VC1 real time."""
    return Downlink(
        frame=FrameProfile(kind="AOS", frame_length=220, has_ocf=False, has_fecf=False, randomized=True,
                           insert_zone_length=8, insert_zone_time=CHANGE5_INSERT_ZONE_TIME,
                           rs=ReedSolomon(e=16, interleave=1, basis="dual")),
        virtual_channels=(
            VirtualChannel(1, "realtime", "Real-time telemetry"),
            VirtualChannel(playback_vc, "playback", "Replay of stored telemetry"),
            VirtualChannel(63, "idle", "Fill"),
        ),
        realtime_vc=1, playback_vc=playback_vc,
        reed_solomon="RS(252,220), E=16, dual basis", symbol_rate=2048,
        source="mixed", notes=notes,
    )


#: The APIDs of the real orbiter's frames (ata-2021-09-18 recording, SCID 108, VC 1).
ORBITER_REAL_APIDS = (2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 16, 25, 26, 27, 28, 29, 30, 31, 33, 34, 35, 39, 40, 41, 42,
                      43, 48, 49, 50, 51, 52, 58, 60, 1030, 1031, 1032, 1034, 1039, 1040)


def real_apids(numbers: tuple[int, ...]) -> tuple[Apid, ...]:
    """The APIDs seen in real Chang'e-5 frames: declared so their packets are counted and archived,
    opaque because what they carry is not public.  Our invented housekeeping uses other APIDs."""
    return tuple(Apid(n, f"real{n}", "Seen in the real frames; content not public", opaque=True) for n in numbers)


SPACECRAFT = Spacecraft(
    name="change5-orbiter",
    scid=108,
    description="Chang'e-5 orbiter in its extended mission around Sun-Earth L1",
    profile=change5_profile(
        playback_vc=3,
        notes="Public: SCID 108, AOS frames, VC1 realtime, 2048 baud on a 65536 Hz subcarrier, RS codeword "
              "252 octets in dual basis (2 s per frame). Assumed: VC3 playback (as on Tianwen-1), randomizer on, "
              "no OCF, no FECF, VC63 idle.",
    ),
    apids=(
        Apid(PLATFORM, "platform", "Power, thermal, data handling, radio; standard commands and events"),
        Apid(GNC, "gnc", "Attitude, orbit, propulsion"),
        *real_apids(ORBITER_REAL_APIDS),
    ),
    instruments=INSTRUMENTS,
    housekeeping=HOUSEKEEPING,
    events=EVENTS,
    commands=COMMANDS,
)
