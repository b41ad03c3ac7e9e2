"""Tianwen-1 orbiter (Mars orbit insertion 2021-02-10).

Public facts used: SCID 245, 220-octet AOS frames without FHEC and without FECF
(Reed-Solomon (252,220) only, conventional basis), VC1 realtime, VC3 replay,
16384 baud low-rate downlink (0.25 s per frame); 3000 N orbital control engine;
capture orbit ~400 km periapsis, ~180 000 km apoapsis, ~10-day period, ~10 deg
inclination; Earth distance ~192 million km at arrival (~10.7 min one-way light
time); payloads MoRIC, HiRIC, MOSIR, MMS, MOMAG, MINPA, MEPA; UHF relay for the
Zhurong rover.  Invented: APIDs, packet layouts, scalings, limits, propellant figures.
"""
from __future__ import annotations

from datetime import UTC, datetime

from protocols.ccsds.tmframe import InsertZoneTime, ReedSolomon
from protocols.missions.common import (
    CENTI,
    MISSION_EVENTS,
    MISSION_FUNCTIONS,
    ORBIT_SOURCE,
    RELAY_SESSION,
    S16,
    S32,
    SWITCH,
    U8,
    U16,
    U32,
    UHF_RATES,
    SolarArray,
    Tank,
    Zone,
    arg,
    attitude_hk,
    aux,
    aux_state,
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
from protocols.parameters import Linear, Polynomial

PLATFORM, GNC, PAYLOAD, RELAY = 0x200, 0x201, 0x202, 0x203

INSTRUMENTS = (
    Instrument(1, "MORIC", "Moderate-resolution imaging camera", "moric_power"),
    Instrument(2, "HIRIC", "High-resolution imaging camera (0.5 m from 265 km)", "hiric_power"),
    Instrument(3, "MOSIR", "Mars orbiter subsurface investigation radar", "mosir_power"),
    Instrument(4, "MMS", "Mars mineralogical spectrometer", "mms_power"),
    Instrument(5, "MOMAG", "Mars orbiter magnetometer", "momag_power"),
    Instrument(6, "MINPA", "Mars ion and neutral particle analyser", "minpa_power"),
    Instrument(7, "MEPA", "Mars energetic particle analyser", "mepa_power"),
)
STORES = ("housekeeping", "science", "events", "relay")

AOCS_MODES = {0: "SUN_SAFE", 1: "STANDBY", 2: "EARTH_POINT", 3: "MARS_POINT", 4: "INERTIAL", 5: "ORBIT_CONTROL",
              6: "RELAY_TRACK"}
ENGINE = {0: "SAFED", 1: "ARMED", 2: "FIRING", 3: "FAULT"}
ECLIPSE = {0: "SUNLIT", 1: "PENUMBRA", 2: "UMBRA"}

HOUSEKEEPING = (
    power_hk(apid=PLATFORM, sid=1, period=8.0,
             bus=((40.5, 43.5), (39.0, 44.5)), bus_current_max=40.0,
             battery=((34.0, 41.0), (32.0, 42.0)), soc=((50, 100), (30, 100)),
             arrays=[SolarArray("wing_a", "Solar wing A", 25.0), SolarArray("wing_b", "Solar wing B", 25.0)],
             extra=[
                 "sada_a_angle" / param(U16, "deg", "Solar array drive A angle", Linear(0.01), warn=(0, 360),
                                        crit=(0, 360)),
                 "sada_b_angle" / param(U16, "deg", "Solar array drive B angle", Linear(0.01), warn=(0, 360),
                                        crit=(0, 360)),
             ]),
    thermal_hk(apid=PLATFORM, sid=2, period=16.0,
               zones=[
                   Zone("fuel_tank", "Fuel (MMH) tank", (10, 35), (5, 40)),
                   Zone("oxidizer_tank", "Oxidizer (MON) tank", (10, 35), (5, 40)),
                   Zone("engine_valve", "3000 N engine valve", (5, 60), (0, 80)),
                   Zone("propellant_lines", "Propellant lines (coldest point)", (8, 40), (3, 50)),
                   Zone("electronics_panel", "Avionics panel", (-10, 40), (-20, 50)),
                   Zone("hiric_optics", "HiRIC telescope optics", (15, 25), (10, 30)),
                   Zone("star_tracker", "Star tracker head", (-20, 30), (-30, 40)),
                   Zone("relay_antenna", "UHF relay antenna", (-80, 80), (-100, 100)),
               ],
               heaters=[("tanks", "Propellant tanks"), ("lines", "Propellant lines"), ("hiric", "HiRIC optics"),
                        ("battery", "Battery")]),
    attitude_hk(apid=GNC, sid=3, period=4.0, modes=AOCS_MODES, mode_warn={"STANDBY"}, mode_crit={"SUN_SAFE"},
                wheels=4, wheel_max_rpm=6000, max_rate=1.0),
    HousekeepingPacket("orbit", apid=GNC, sid=4, subsystem="orbit", period=60.0,
                       description="Orbit about Mars, Earth distance and light time", fields=[
        "periapsis_altitude" / param(U32, "km", "Periapsis altitude (capture orbit ~400 km)",
                                     Linear(0.01), warn=(250, 1000), crit=(200, 100000)),
        "apoapsis_altitude" / param(U32, "km", "Apoapsis altitude (capture orbit ~180 000 km)", Linear(0.1),
                                    warn=(5000, 200000), crit=(250, 400000)),
        "orbital_period" / param(U32, "h", "Orbital period (capture orbit ~240 h)", Linear(0.001), warn=(2, 260),
                                 crit=(1.5, 400)),
        "inclination" / param(U16, "deg", "Inclination to the Mars equator (capture orbit ~10 deg)", Linear(0.01),
                              warn=(0, 180), crit=(0, 180)),
        "true_anomaly" / param(U16, "deg", "True anomaly", Linear(0.01), warn=(0, 360), crit=(0, 360)),
        "altitude" / param(U32, "km", "Current altitude above Mars", Linear(0.01), warn=(250, 200000),
                           crit=(200, 400000)),
        "earth_distance" / param(U32, "km", "Distance to Earth (~192 million km at arrival)", Linear(100),
                                 warn=(0, 380e6), crit=(0, 410e6)),
        "light_time" / param(U16, "s", "One-way light time to Earth (~642 s at arrival)", Linear(0.1),
                             warn=(0, 1300), crit=(0, 1380)),
        "sun_distance" / param(U16, "AU", "Distance to the Sun", Linear(0.0001), warn=(1.3, 1.7), crit=(0.9, 1.8)),
        "eclipse" / state(U8, ECLIPSE, "Eclipse state", warn={"UMBRA"}),
        "orbit_source" / state(U8, ORBIT_SOURCE, "Where the on-board orbit comes from", warn={"STALE"}),
    ]),
    propulsion_hk(apid=GNC, sid=5, period=16.0,
                  description="Bipropellant system: 3000 N orbital control engine and 120 N / 25 N thrusters",
                  engine=[
                      "engine_state" / state(U8, ENGINE, "3000 N engine state", warn={"ARMED"}, crit={"FAULT"}),
                      "engine_thrust" / param(U16, "N", "3000 N engine thrust (from chamber pressure)", Linear(0.1),
                                              warn=(0, 3150), crit=(0, 3300)),
                      "chamber_pressure" / param(U16, "MPa", "3000 N engine chamber pressure", Linear(0.001),
                                                 warn=(0, 1.0), crit=(0, 1.2)),
                  ],
                  tanks=[Tank("fuel", "Fuel (MMH)", pressure=((1.5, 2.1), (1.2, 2.3)), mass=((60, 1000), (30, 1100))),
                         Tank("oxidizer", "Oxidizer (MON)", pressure=((1.5, 2.1), (1.2, 2.3)),
                              mass=((100, 1600), (50, 1700)))],
                  helium=((4, 35), (2.5, 40)),
                  burn=[
                      "burn_delta_v" / param(S32, "m/s", "Velocity change of the current or last burn",
                                             Linear(0.001), warn=(-1500, 1500), crit=(-2000, 2000)),
                      "burn_elapsed" / param(U16, "s", "Elapsed time of the current or last burn", Linear(0.1),
                                             warn=(0, 1800), crit=(0, 2400)),
                  ]),
    obdh_hk(apid=PLATFORM, sid=6, period=32.0, storage_gbit=512),
    HousekeepingPacket("comms", apid=PLATFORM, sid=7, subsystem="comms", period=16.0,
                       description="X-band deep-space transponder and high-gain antenna", fields=[
        *radio_fields("xband", "X-band", tx_power=((60, 110), (40, 130)), rx_level=((-150, -100), (-160, -90)),
                      rates={0: "BPS_16", 1: "KBPS_16", 2: "KBPS_512", 3: "MBPS_2"}),
        "hga_azimuth" / param(S16, "deg", "High-gain antenna azimuth", Linear(0.01), warn=(-180, 180),
                              crit=(-185, 185)),
        "hga_elevation" / param(S16, "deg", "High-gain antenna elevation", Linear(0.01), warn=(-90, 90),
                                crit=(-95, 95)),
    ]),
    HousekeepingPacket("relay", apid=RELAY, sid=8, subsystem="relay", period=8.0,
                       description="UHF relay for the Zhurong rover: session, geometry, data forwarded", fields=[
        "relay_session" / state(U8, RELAY_SESSION, "Relay session with the rover", crit={"FAILED"}),
        *radio_fields("uhf", "UHF relay", tx_power=((3, 12), (1, 15)), rx_level=((-115, -40), (-125, -30)),
                      rates=UHF_RATES, intermittent=True),
        "rover_range" / param(U32, "km", "Range to the rover", Linear(0.01), warn=(0, 5000), crit=(0, 200000)),
        "rover_elevation" / param(S16, "deg", "Orbiter elevation seen from the rover", Linear(0.01), warn=(-90, 90),
                                  crit=(-90, 90)),
        "rover_frames_received" / param(U32, "", "Rover frames received this session", warn=(0, 2**31),
                                        crit=(0, 2**32 - 1)),
        "rover_frames_lost" / param(U16, "", "Rover frames lost this session (RS failures)", warn=(0, 50),
                                    crit=(0, 500)),
        "relay_queue" / param(U32, "kB", "Rover data held for downlink to Earth", warn=(0, 4_000_000),
                              crit=(0, 8_000_000)),
    ]),
    HousekeepingPacket("cameras", apid=PAYLOAD, sid=10, subsystem="cameras", period=16.0,
                       description="MoRIC and HiRIC cameras", fields=[
        "moric_power" / state(U8, SWITCH, "MoRIC power", crit={"TRIPPED"}),
        "moric_exposure" / param(U16, "ms", "MoRIC exposure time", Linear(0.01), warn=(0, 100), crit=(0, 200)),
        "moric_temperature" / param(S16, "degC", "MoRIC detector temperature", CENTI, warn=(-20, 35),
                                    crit=(-30, 45)),
        "hiric_power" / state(U8, SWITCH, "HiRIC power", crit={"TRIPPED"}),
        "hiric_line_period" / param(U16, "us", "HiRIC TDI line period", Linear(0.01), warn=(20, 500),
                                    crit=(10, 600)),
        "hiric_tdi_stages" / param(U8, "", "HiRIC TDI stages", warn=(1, 96), crit=(1, 128)),
        "hiric_temperature" / param(S16, "degC", "HiRIC focal plane temperature", CENTI, warn=(10, 30),
                                    crit=(0, 40)),
        "images_stored" / param(U16, "", "Images waiting for downlink", warn=(0, 5000), crit=(0, 10000)),
    ]),
    HousekeepingPacket("spectrometers", apid=PAYLOAD, sid=11, subsystem="spectrometers", period=16.0,
                       description="MMS mineral spectrometer and MOSIR subsurface radar", fields=[
        "mms_power" / state(U8, SWITCH, "MMS power", crit={"TRIPPED"}),
        # Silicon diode sensor counts: its curve is not linear over -200 .. +19 degC.
        "mms_detector_temperature" / param(U16, "degC", "MMS infrared detector temperature",
                                           Polynomial(-200.0, 4.0e-3, -1.0e-8), warn=(-90, 15), crit=(-100, 19)),
        "mms_cooler_power" / param(U16, "W", "MMS cryocooler power", Linear(0.01), warn=(0, 12), crit=(0, 15)),
        "mms_spectra" / param(U32, "", "Spectra recorded since power-on", warn=(0, 2**31), crit=(0, 2**32 - 1)),
        "mosir_power" / state(U8, SWITCH, "MOSIR power", crit={"TRIPPED"}),
        "mosir_tx_power" / param(U16, "W", "MOSIR peak transmit power", Linear(0.1), warn=(0, 400), crit=(0, 500)),
        "mosir_temperature" / param(S16, "degC", "MOSIR electronics temperature", CENTI, warn=(-20, 45),
                                    crit=(-30, 55)),
    ]),
    HousekeepingPacket("fields_particles", apid=PAYLOAD, sid=12, subsystem="fields_particles", period=8.0,
                       description="MOMAG magnetometer, MINPA ion/neutral analyser, MEPA energetic particles",
                       fields=[
        "momag_power" / state(U8, SWITCH, "MOMAG power", crit={"TRIPPED"}),
        *[f"momag_b{axis}" / param(S32, "nT", f"Magnetic field, spacecraft {axis} axis (outboard sensor)",
                                   Linear(0.001), warn=(-500, 500), crit=(-2000, 2000)) for axis in "xyz"],
        "momag_temperature" / param(S16, "degC", "MOMAG outboard sensor temperature", CENTI, warn=(-60, 40),
                                    crit=(-80, 60)),
        "minpa_power" / state(U8, SWITCH, "MINPA power", crit={"TRIPPED"}),
        "minpa_ion_rate" / param(U32, "1/s", "MINPA ion count rate", warn=(0, 1e6), crit=(0, 1e7)),
        "minpa_neutral_rate" / param(U32, "1/s", "MINPA energetic neutral atom count rate", warn=(0, 1e5),
                                     crit=(0, 1e6)),
        "minpa_mcp_voltage" / param(U16, "V", "MINPA microchannel plate high voltage", warn=(0, 2800),
                                    crit=(0, 3200)),
        "mepa_power" / state(U8, SWITCH, "MEPA power", crit={"TRIPPED"}),
        "mepa_electron_rate" / param(U32, "1/s", "MEPA electron count rate (0.1-12 MeV)", warn=(0, 1e5),
                                     crit=(0, 1e6)),
        "mepa_proton_rate" / param(U32, "1/s", "MEPA proton count rate (2-100 MeV)", warn=(0, 1e4), crit=(0, 1e5)),
        "mepa_dose_rate" / param(U16, "uGy/h", "MEPA absorbed dose rate", Linear(0.1), warn=(0, 100),
                                 crit=(0, 1000)),
    ]),
)

EVENTS = (
    *standard_events(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES,
                     battery_voltage=33.0),
    EventReport("maneuver_started", apid=GNC, event_id=MISSION_EVENTS + 0, severity=1, subsystem="propulsion",
                description="An orbit control burn started", aux=[
        "engine" / aux_state(U8, {0: "MAIN_3000N", 1: "THRUSTERS_120N"}, "Engine"),
        "planned_delta_v" / aux(S32, "m/s", "Planned velocity change", Linear(0.001)),
    ]),
    EventReport("maneuver_completed", apid=GNC, event_id=MISSION_EVENTS + 1, severity=1, subsystem="propulsion",
                description="An orbit control burn ended", aux=[
        "achieved_delta_v" / aux(S32, "m/s", "Achieved velocity change", Linear(0.001)),
        "burn_elapsed" / aux(U16, "s", "Burn duration", Linear(0.1)),
        "propellant_used" / aux(U16, "kg", "Propellant used", Linear(0.1)),
    ]),
    EventReport("engine_anomaly", apid=GNC, event_id=MISSION_EVENTS + 2, severity=4, subsystem="propulsion",
                description="Chamber pressure out of band: the burn was cut off", aux=[
        "chamber_pressure" / aux(U16, "MPa", "Chamber pressure at cut-off", Linear(0.001)),
        "burn_elapsed" / aux(U16, "s", "Elapsed burn time", Linear(0.1)),
    ]),
    EventReport("relay_session_started", apid=RELAY, event_id=MISSION_EVENTS + 3, severity=1, subsystem="relay",
                description="UHF link with the rover established", aux=[
        "rover_range" / aux(U32, "km", "Range to the rover", Linear(0.01)),
        "data_rate" / aux_state(U8, UHF_RATES, "Negotiated rate"),
    ]),
    EventReport("relay_session_ended", apid=RELAY, event_id=MISSION_EVENTS + 4, severity=1, subsystem="relay",
                description="UHF session with the rover ended", aux=[
        "frames_received" / aux(U32, "", "Rover frames received"),
        "frames_lost" / aux(U16, "", "Rover frames lost"),
    ]),
    EventReport("eclipse_entry", apid=GNC, event_id=MISSION_EVENTS + 5, severity=2, subsystem="power",
                description="The orbiter entered the Mars shadow", aux=[
        "predicted_duration" / aux(U16, "s", "Predicted umbra duration"),
    ]),
)

COMMANDS = (
    *standard_commands(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES),
    Command("ORBIT_MANEUVER", apid=GNC, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 0,
            subsystem="propulsion", description="Schedule an orbit control burn", arguments=[
        "engine" / choice(U8, {0: "MAIN_3000N", 1: "THRUSTERS_120N"}, "Engine"),
        "ignition_time" / arg(U32, "s", "Ignition on-board time (CUC coarse seconds)", valid=(0, 2**32 - 1)),
        "delta_v" / arg(S32, "m/s", "Velocity change along the burn attitude", Linear(0.001), valid=(0.01, 1500)),
        "max_duration" / arg(U16, "s", "Cut-off if the burn lasts longer", Linear(0.1), valid=(1, 1800)),
    ]),
    Command("SET_ATTITUDE_MODE", apid=GNC, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 1,
            subsystem="aocs", description="Change the attitude control mode", arguments=[
        "mode" / choice(U8, AOCS_MODES, "Target mode", valid={"STANDBY", "EARTH_POINT", "MARS_POINT", "INERTIAL",
                                                              "RELAY_TRACK"}),
    ]),
    Command("RELAY_SESSION", apid=RELAY, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 2,
            subsystem="relay", description="Schedule a UHF relay session with the rover", arguments=[
        "start_time" / arg(U32, "s", "Session start (CUC coarse seconds)", valid=(0, 2**32 - 1)),
        "duration" / arg(U16, "s", "Session length", valid=(60, 3600)),
        "data_rate" / choice(U8, UHF_RATES, "UHF data rate"),
    ]),
    Command("HIRIC_IMAGE", apid=PAYLOAD, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 3,
            subsystem="cameras", description="Take a HiRIC push-broom image strip", arguments=[
        "start_time" / arg(U32, "s", "Imaging start (CUC coarse seconds)", valid=(0, 2**32 - 1)),
        "lines" / arg(U16, "", "Image lines", valid=(1024, 60000)),
        "tdi_stages" / arg(U8, "", "TDI stages", valid=(1, 96)),
    ]),
)

#: The insert zone's onboard time: its first 6 octets, a count of 100 us (public, D. Estévez's
#: analysis of the real frames).  The count's epoch is not public: J2000 (2000-01-01T12:00:00 UTC)
#: here is invented.  The last 2 octets are not understood (zeros).
TIANWEN1_INSERT_ZONE_TIME = InsertZoneTime(offset=0, length=6, unit=1e-4,
                                           epoch=datetime(2000, 1, 1, 12, tzinfo=UTC).timestamp())


def tianwen1_frame_profile() -> FrameProfile:
    """Tianwen-1's frames (and those relayed through it): 220-octet AOS frames with an 8-octet insert
    zone, no FHEC, no FECF, in RS(252,220) codeblocks (E=16) in the conventional basis, randomized."""
    return FrameProfile(kind="AOS", frame_length=220, has_ocf=False, has_fecf=False, randomized=True,
                        insert_zone_length=8, insert_zone_time=TIANWEN1_INSERT_ZONE_TIME,
                        rs=ReedSolomon(e=16, interleave=1, basis="conventional"))


SPACECRAFT = Spacecraft(
    name="tianwen1",
    scid=245,
    description="Tianwen-1 Mars orbiter: orbit science and relay for the Zhurong rover",
    profile=Downlink(
        frame=tianwen1_frame_profile(),
        virtual_channels=(
            VirtualChannel(1, "realtime", "Real-time telemetry"),
            VirtualChannel(3, "playback", "Replay of stored telemetry (replay flag set)"),
            VirtualChannel(63, "idle", "Fill"),
        ),
        realtime_vc=1, playback_vc=3,
        reed_solomon="RS(252,220), E=16, conventional (not dual) basis", symbol_rate=16384,
        source="mixed",
        notes="Public: SCID 245, 220-octet AOS frames, no FHEC, no FECF (RS only), VC1 realtime / VC3 replay, "
              "16384 baud on a 65536 Hz subcarrier (0.25 s per frame), RS in conventional basis, CCSDS "
              "randomizer, an 8-octet insert zone whose first 6 octets count 100 us. "
              "Assumed: the time count's epoch (J2000), no OCF, VC63 idle.",
    ),
    apids=(
        Apid(PLATFORM, "platform", "Power, thermal, data handling, radio; standard commands and events"),
        Apid(GNC, "gnc", "Attitude, orbit, propulsion"),
        Apid(PAYLOAD, "payload", "The science payloads"),
        Apid(RELAY, "relay", "UHF relay for the rover"),
    ),
    instruments=INSTRUMENTS,
    housekeeping=HOUSEKEEPING,
    events=EVENTS,
    commands=COMMANDS,
)
