"""HY-2D (Haiyang-2D) ocean dynamics satellite (launched 2021-05-19).

Public facts used: non-Sun-synchronous orbit at ~970 km, 66 deg inclination,
flying in constellation with HY-2B/2C; payloads include a dual-frequency (Ku/C)
radar altimeter, a Ku-band rotating pencil-beam scatterometer and a correction
microwave radiometer (18.7/23.8/37 GHz).  Invented: the whole frame profile,
SCID, APIDs, layouts, scalings and limits.
"""
from __future__ import annotations

from protocols.missions.common import (
    MISSION_EVENTS,
    MISSION_FUNCTIONS,
    S16,
    S32,
    SWITCH,
    U8,
    U16,
    U32,
    SolarArray,
    Zone,
    arg,
    attitude_hk,
    aux,
    choice,
    obdh_hk,
    param,
    power_hk,
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

PLATFORM, GNC, PAYLOAD = 0x300, 0x301, 0x302

INSTRUMENTS = (
    Instrument(1, "ALTIMETER", "Dual-frequency (Ku 13.58 GHz / C 5.25 GHz) radar altimeter", "altimeter_power"),
    Instrument(2, "SCATTEROMETER", "Ku-band rotating pencil-beam scatterometer", "scatterometer_power"),
    Instrument(3, "RADIOMETER", "Correction microwave radiometer (18.7, 23.8, 37 GHz)", "radiometer_power"),
)
STORES = ("housekeeping", "altimeter", "scatterometer", "radiometer")

AOCS_MODES = {0: "SAFE", 1: "STANDBY", 2: "NADIR", 3: "YAW_STEERING", 4: "ORBIT_CONTROL"}
ALTIMETER_MODES = {0: "STANDBY", 1: "ACQUISITION", 2: "TRACKING_KU_C", 3: "TRACKING_KU", 4: "CALIBRATION"}
SCAT_MODES = {0: "STANDBY", 1: "WIND", 2: "CALIBRATION", 3: "SPIN_FAULT"}
GNSS_FIX = {0: "NO_FIX", 1: "FIX_2D", 2: "FIX_3D", 3: "PRECISE"}

HOUSEKEEPING = (
    power_hk(apid=PLATFORM, sid=1, period=8.0,
             bus=((27.5, 29.5), (26.5, 30.5)), bus_current_max=35.0,
             battery=((25.0, 32.8), (24.0, 33.6)), soc=((55, 100), (35, 100)),
             arrays=[SolarArray("wing_a", "Solar wing A", 20.0), SolarArray("wing_b", "Solar wing B", 20.0)]),
    thermal_hk(apid=PLATFORM, sid=2, period=16.0,
               zones=[
                   Zone("altimeter_rfu", "Altimeter radio-frequency unit", (0, 35), (-10, 45)),
                   Zone("scatterometer_tx", "Scatterometer transmitter", (0, 45), (-10, 55)),
                   Zone("radiometer_receiver", "Radiometer receiver (stabilised)", (24, 26), (20, 30)),
                   Zone("avionics", "Avionics panel", (-10, 40), (-20, 50)),
                   Zone("propellant_tank", "Hydrazine tank", (10, 40), (5, 45)),
               ],
               heaters=[("radiometer", "Radiometer receiver"), ("tank", "Hydrazine tank"), ("battery", "Battery")]),
    attitude_hk(apid=GNC, sid=3, period=4.0, modes=AOCS_MODES, mode_warn={"STANDBY"}, mode_crit={"SAFE"},
                wheels=4, wheel_max_rpm=6000, max_rate=0.5, pointing=((0, 0.05), (0, 0.5))),
    HousekeepingPacket("navigation", apid=GNC, sid=4, subsystem="orbit", period=10.0,
                       description="GNSS receiver fix and orbit (~970 km, 66 deg)", fields=[
        "gnss_fix" / state(U8, GNSS_FIX, "GNSS receiver fix", warn={"FIX_2D"}, crit={"NO_FIX"}),
        "gnss_satellites" / param(U8, "", "GNSS satellites tracked", warn=(6, 24), crit=(4, 32)),
        "latitude" / param(S32, "deg", "Geodetic latitude", Linear(1e-7), warn=(-66.5, 66.5), crit=(-90, 90)),
        "longitude" / param(S32, "deg", "Longitude", Linear(1e-7), warn=(-180, 180), crit=(-180, 180)),
        "altitude" / param(U32, "km", "Altitude above the WGS-84 ellipsoid", Linear(0.001), warn=(955, 990),
                           crit=(900, 1050)),
        "orbit_number" / param(U32, "", "Orbits since launch", warn=(0, 100000), crit=(0, 200000)),
        "position_error" / param(U16, "m", "Estimated position error of the fix", Linear(0.01), warn=(0, 10),
                                 crit=(0, 100)),
    ]),
    obdh_hk(apid=PLATFORM, sid=5, period=32.0, storage_gbit=256, sdls=True),
    HousekeepingPacket("comms", apid=PLATFORM, sid=6, subsystem="comms", period=16.0,
                       description="S-band TT&C and X-band payload data transmitters", fields=[
        *radio_fields("sband", "S-band TT&C", tx_power=((1, 6), (0.5, 8)), rx_level=((-120, -60), (-130, -50)),
                      rates={0: "KBPS_4", 1: "KBPS_32", 2: "KBPS_256"}),
        *radio_fields("xband", "X-band payload data", tx_power=((8, 25), (5, 30)), rx_level=None,
                      rates={0: "MBPS_10", 1: "MBPS_150", 2: "MBPS_300"}),
    ]),
    HousekeepingPacket("altimeter", apid=PAYLOAD, sid=10, subsystem="altimeter", period=1.0,
                       description="Radar altimeter: range, sea surface height, significant wave height", fields=[
        "altimeter_power" / state(U8, SWITCH, "Altimeter power", crit={"TRIPPED"}),
        "altimeter_mode" / state(U8, ALTIMETER_MODES, "Altimeter mode", warn={"ACQUISITION"}),
        "altimeter_range" / param(U32, "km", "Ku-band range to the sea surface", Linear(1e-6), warn=(940, 1000),
                                  crit=(900, 1050)),
        "sea_surface_height" / param(S32, "m", "Sea surface height above the ellipsoid", Linear(0.001),
                                     warn=(-110, 90), crit=(-150, 150)),
        "ssh_anomaly" / param(S16, "m", "Sea surface height anomaly from the mean sea surface", Linear(0.001),
                              warn=(-1.5, 1.5), crit=(-3, 3)),
        "significant_wave_height" / param(U16, "m", "Significant wave height", Linear(0.01), warn=(0, 12),
                                          crit=(0, 20)),
        "sigma0_ku" / param(S16, "dB", "Ku-band backscatter coefficient", Linear(0.01), warn=(5, 25), crit=(-5, 40)),
        "sigma0_c" / param(S16, "dB", "C-band backscatter coefficient", Linear(0.01), warn=(5, 25), crit=(-5, 40)),
        "ionosphere_delay" / param(U16, "m", "Ionospheric range correction from the Ku/C difference",
                                   Linear(0.001), warn=(0, 0.5), crit=(0, 1.0)),
        "altimeter_agc" / param(U8, "dB", "Receiver automatic gain control", Linear(0.5), warn=(10, 60),
                                crit=(0, 70)),
    ]),
    HousekeepingPacket("scatterometer", apid=PAYLOAD, sid=11, subsystem="scatterometer", period=2.0,
                       description="Scatterometer: sea surface wind vector", fields=[
        "scatterometer_power" / state(U8, SWITCH, "Scatterometer power", crit={"TRIPPED"}),
        "scatterometer_mode" / state(U8, SCAT_MODES, "Scatterometer mode", crit={"SPIN_FAULT"}),
        "wind_speed" / param(U16, "m/s", "Sea surface wind speed (10 m)", Linear(0.01), warn=(0, 30), crit=(0, 50)),
        "wind_direction" / param(U16, "deg", "Sea surface wind direction (from), clockwise from north",
                                 Linear(0.01), warn=(0, 360), crit=(0, 360)),
        "antenna_spin_rate" / param(U16, "rpm", "Antenna spin rate", Linear(0.01), warn=(94, 98), crit=(90, 102)),
        "scatterometer_tx_power" / param(U16, "W", "Transmitter peak power", Linear(0.1), warn=(100, 130),
                                         crit=(80, 140)),
        "scatterometer_sigma0" / param(S16, "dB", "Mean backscatter of the last scan", Linear(0.01),
                                       warn=(-40, 0), crit=(-50, 10)),
        "scatterometer_noise" / param(S16, "dBm", "Receiver noise power", Linear(0.1), warn=(-110, -80),
                                      crit=(-120, -70)),
    ]),
    HousekeepingPacket("radiometer", apid=PAYLOAD, sid=12, subsystem="radiometer", period=2.0,
                       description="Correction radiometer: brightness temperatures, wet tropospheric delay", fields=[
        "radiometer_power" / state(U8, SWITCH, "Radiometer power", crit={"TRIPPED"}),
        *[f"tb_{band}" / param(U16, "K", f"Brightness temperature at {ghz} GHz", Linear(0.01), warn=(100, 300),
                               crit=(2.7, 330)) for band, ghz in (("18", "18.7"), ("23", "23.8"), ("37", "37"))],
        "wet_path_delay" / param(U16, "cm", "Wet tropospheric path delay", Linear(0.01), warn=(0, 50),
                                 crit=(0, 80)),
        "hot_load_temperature" / param(U16, "K", "Internal hot calibration load temperature", Linear(0.01),
                                       warn=(295, 305), crit=(290, 310)),
    ]),
)

EVENTS = (
    *standard_events(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES,
                     battery_voltage=25.0),
    EventReport("altimeter_track_lost", apid=PAYLOAD, event_id=MISSION_EVENTS + 0, severity=2,
                subsystem="altimeter", description="The altimeter tracker lost the echo and is re-acquiring", aux=[
        "latitude" / aux(S32, "deg", "Latitude at loss", Linear(1e-7)),
        "longitude" / aux(S32, "deg", "Longitude at loss", Linear(1e-7)),
    ]),
    EventReport("scatterometer_spin_fault", apid=PAYLOAD, event_id=MISSION_EVENTS + 1, severity=4,
                subsystem="scatterometer", description="Antenna spin out of band: the transmitter was inhibited",
                aux=["antenna_spin_rate" / aux(U16, "rpm", "Spin rate at detection", Linear(0.01))]),
    EventReport("saa_entry", apid=PLATFORM, event_id=MISSION_EVENTS + 2, severity=1, subsystem="obdh",
                description="Entering the South Atlantic Anomaly (single-event upsets expected)", aux=[
        "edac_errors" / aux(U16, "", "Corrected memory errors so far"),
    ]),
)

COMMANDS = (
    *standard_commands(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES),
    Command("ALTIMETER_MODE", apid=PAYLOAD, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 0,
            subsystem="altimeter", description="Set the altimeter mode", arguments=[
        "mode" / choice(U8, ALTIMETER_MODES, "Mode", valid={"STANDBY", "TRACKING_KU_C", "TRACKING_KU",
                                                             "CALIBRATION"}),
    ]),
    Command("SCATTEROMETER_SPIN", apid=PAYLOAD, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 1,
            subsystem="scatterometer", description="Set the scatterometer antenna spin rate", arguments=[
        "rate" / arg(U16, "rpm", "Spin rate", Linear(0.01), valid=(0, 98)),
    ]),
    Command("ORBIT_MAINTENANCE", apid=GNC, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 2,
            subsystem="orbit", description="Schedule an orbit maintenance burn (ground-track control)", arguments=[
        "ignition_time" / arg(U32, "s", "Ignition on-board time (CUC coarse seconds)", valid=(0, 2**32 - 1)),
        "delta_v" / arg(S16, "m/s", "Along-track velocity change", Linear(0.001), valid=(-5, 5)),
    ]),
)

SPACECRAFT = Spacecraft(
    name="haiyang2d",
    scid=466,
    description="HY-2D ocean dynamics satellite: altimetry, sea surface wind, radiometry",
    profile=Downlink(
        frame=FrameProfile(kind="TM", frame_length=1115, has_ocf=True, has_fecf=True, randomized=True),
        virtual_channels=(
            VirtualChannel(0, "realtime", "Real-time housekeeping and events"),
            VirtualChannel(1, "playback", "Stored housekeeping and payload data"),
            VirtualChannel(7, "idle", "Only idle data"),
        ),
        realtime_vc=0, playback_vc=1, reed_solomon="RS(255,223), E=16, interleave 5", source="invented",
        notes="Invented profile (no public frame facts): a conventional CCSDS TM profile with CLCW and FECF.",
    ),
    apids=(
        Apid(PLATFORM, "platform", "Power, thermal, data handling, radio; standard commands and events"),
        Apid(GNC, "gnc", "Attitude, GNSS navigation, orbit"),
        Apid(PAYLOAD, "payload", "Altimeter, scatterometer, radiometer"),
    ),
    instruments=INSTRUMENTS,
    housekeeping=HOUSEKEEPING,
    events=EVENTS,
    commands=COMMANDS,
    sdls_required=True,
)
