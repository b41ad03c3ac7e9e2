"""Zhurong, the Tianwen-1 Mars rover (Utopia Planitia, landed 2021-05-15).

Public facts used: 240 kg, six wheels with active suspension (crab walk), four
solar panels (output fell as dust settled), n-undecane phase-change heat store
(melts near -26 degC) under two collector windows, ~1.9 km driven before its
2022 hibernation, top speed ~200 m/h, six instruments (RoPeR, RoMAG, MCS,
MarSCoDe, MSCam, NaTeCam), UHF relay through the orbiter and X-band direct link.
Invented: SCID, APIDs, frame profile, packet layouts, scalings and limits
(no public frame facts for the rover; see docs/MISSIONS-SOURCES.md).
"""
from __future__ import annotations

from protocols.missions.common import (
    CENTI,
    HALF_PERCENT,
    MISSION_EVENTS,
    MISSION_FUNCTIONS,
    RELAY_SESSION,
    S16,
    S32,
    SWITCH,
    U8,
    U16,
    U32,
    UHF_RATES,
    SolarArray,
    Zone,
    arg,
    aux,
    aux_state,
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
    HousekeepingPacket,
    Instrument,
    Spacecraft,
    VerificationWindows,
    VirtualChannel,
)
from protocols.missions.tianwen1 import tianwen1_frame_profile
from protocols.parameters import Linear, Polynomial

PLATFORM, MOBILITY, PAYLOAD = 0x120, 0x121, 0x122

INSTRUMENTS = (
    Instrument(1, "ROPER", "Rover-mounted subsurface penetrating radar (RoPeR)", "roper_power"),
    Instrument(2, "ROMAG", "Mars rover magnetometer (RoMAG)", "romag_power"),
    Instrument(3, "MCS", "Mars climate station", "mcs_power"),
    Instrument(4, "MARSCODE", "Mars surface composition detector (LIBS + infrared spectrometer)", "marscode_power"),
    Instrument(5, "MSCAM", "Multispectral camera", "mscam_power"),
    Instrument(6, "NATECAM", "Navigation and topography cameras", "natecam_power"),
)
STORES = ("housekeeping", "science", "events")

ROVER_MODES = {0: "STANDBY", 1: "DRIVING", 2: "SCIENCE", 3: "HAZARD_STOP", 4: "HIBERNATION", 5: "SAFE"}
DRIVE_MODES = {0: "NORMAL", 1: "CRAB", 2: "WHEEL_WALK"}
#: Commanded speed kept in each locomotion mode: crab and wheel-walk trade speed for traction.
DRIVE_SPEED_FACTOR = {"NORMAL": 1.0, "CRAB": 0.8, "WHEEL_WALK": 0.3}
#: The rover averages this share of its commanded speed over rough ground and slopes.
DRIVE_EFFICIENCY = 0.7
#: Turn-in-place rate before a drive (deg/s); a turn is at most 180 deg.
TURN_RATE_DEG_S = 1.0
#: Slack on top of the rover's own estimate before the ground calls a drive late.
DRIVE_MARGIN = 1.2
DRIVE_MARGIN_S = 30.0


def drive_duration(distance: float, speed: float, mode: str, turn_deg: float = 180.0) -> float:
    """Seconds the rover expects a drive to take: the turn, then distance at the mode's average speed.

    The emulator reports completion after this time; the ground, not knowing the
    current heading, assumes the longest turn."""
    ground_speed = speed * DRIVE_SPEED_FACTOR.get(mode, 1.0) / 3600.0 * DRIVE_EFFICIENCY
    return turn_deg / TURN_RATE_DEG_S + distance / ground_speed


def drive_completion_window(arguments) -> float:
    """DRIVE's completion window: the longest expected drive plus margin."""
    return DRIVE_MARGIN * drive_duration(float(arguments["distance"]), float(arguments["speed"]),
                                         str(arguments["mode"])) + DRIVE_MARGIN_S
HEAT_STORE = {0: "SOLID", 1: "MELTING", 2: "LIQUID", 3: "FREEZING", 4: "SENSOR_FAULT"}
ROPER_MODES = {0: "IDLE", 1: "LOW_FREQUENCY", 2: "HIGH_FREQUENCY", 3: "DUAL"}
MARSCODE_MODES = {0: "STANDBY", 1: "LIBS", 2: "SWIR", 3: "CALIBRATION", 4: "FAULT"}
MSCAM_FILTERS = {0: "PAN", 1: "F480", 2: "F525", 3: "F650", 4: "F700", 5: "F800", 6: "F900", 7: "F950", 8: "F1000"}
#: MCS air temperature: thermocouple ADC counts to degC (-140 .. +104 degC over the 16-bit range).
AIR_TEMPERATURE = Polynomial(-140.0, 3.2e-3, 8.0e-9)

# Wheels: left/right x front/middle/rear.
WHEELS = [(f"{side}{pos}", f"{sname} {pname}") for side, sname in (("l", "left"), ("r", "right"))
          for pos, pname in (("f", "front"), ("m", "middle"), ("r", "rear"))]

HOUSEKEEPING = (
    power_hk(apid=PLATFORM, sid=1, period=8.0,
             bus=((27.0, 31.0), (25.0, 32.0)), bus_current_max=20.0,
             battery=((25.0, 32.8), (24.0, 33.6)), soc=((40, 100), (20, 100)),
             battery_temperature=((-10, 30), (-20, 40)),
             arrays=[SolarArray(f"panel_{i}", f"Solar panel {i}", 3.0) for i in range(1, 5)],
             extra=[
                 "dust_obscuration" / param(U8, "%", "Array output lost to dust (measured vs clear-sky model)",
                                            HALF_PERCENT, warn=(0, 30), crit=(0, 60)),
                 "array_power" / param(U16, "W", "Total solar array output", Linear(0.1), warn=(0, 400),
                                       crit=(0, 500)),
             ]),
    thermal_hk(apid=PLATFORM, sid=2, period=16.0,
               zones=[
                   Zone("electronics_box", "Warm electronics box", (-20, 40), (-30, 50)),
                   Zone("imu", "Inertial measurement unit", (-20, 45), (-30, 55)),
                   Zone("mast_head", "Mast camera head", (-55, 40), (-70, 50)),
                   Zone("mobility_motors", "Wheel drive motors (hottest)", (-60, 60), (-80, 80)),
                   Zone("marscode_optics", "MarSCoDe telescope optics", (-50, 40), (-60, 50)),
                   Zone("roper_electronics", "RoPeR electronics", (-40, 50), (-50, 60)),
                   Zone("collector_window", "Heat-collector window (n-undecane store intake)", (-100, 60), (-120, 80)),
                   Zone("heat_store", "n-undecane phase-change heat store", (-60, 40), (-80, 60)),
               ],
               heaters=[("battery", "Battery"), ("electronics_box", "Electronics box"), ("mast", "Mast"),
                        ("marscode", "MarSCoDe")],
               extra=[
                   "heat_store_phase" / state(U8, HEAT_STORE, "Phase of the n-undecane store (melts near -26 degC)",
                                              crit={"SENSOR_FAULT"}),
                   "heat_store_energy" / param(U16, "kJ", "Latent heat still held by the store", Linear(0.1),
                                               warn=(0, 3000), crit=(0, 3500)),
               ]),
    HousekeepingPacket("mobility", apid=MOBILITY, sid=3, subsystem="mobility", period=4.0,
                       description="Mobility: odometry, pose, suspension and wheel currents", fields=[
        "rover_mode" / state(U8, ROVER_MODES, "Rover operating mode", warn={"HAZARD_STOP", "HIBERNATION"},
                             crit={"SAFE"}),
        "drive_mode" / state(U8, DRIVE_MODES, "Locomotion mode", warn={"WHEEL_WALK"}),
        "odometer" / param(U32, "m", "Distance driven since the first drive (1921 m at hibernation)", Linear(0.01),
                           warn=(0, 10000), crit=(0, 40000)),
        "drive_distance" / param(U16, "m", "Distance driven in the current or last drive", Linear(0.01),
                                 warn=(0, 100), crit=(0, 150)),
        "drive_speed" / param(U16, "m/h", "Ground speed", Linear(0.1), warn=(0, 200), crit=(0, 220)),
        "pose_east" / param(S32, "m", "Position east of the landing site", Linear(0.01), warn=(-5000, 5000),
                            crit=(-20000, 20000)),
        "pose_north" / param(S32, "m", "Position north of the landing site", Linear(0.01), warn=(-5000, 5000),
                             crit=(-20000, 20000)),
        "heading" / param(U16, "deg", "Heading, clockwise from north", Linear(0.01), warn=(0, 360), crit=(0, 360)),
        "roll" / param(S16, "deg", "Body roll", Linear(0.01), warn=(-20, 20), crit=(-30, 30)),
        "pitch" / param(S16, "deg", "Body pitch", Linear(0.01), warn=(-20, 20), crit=(-30, 30)),
        "suspension_height" / param(U16, "mm", "Body clearance set by the active suspension", Linear(0.1),
                                    warn=(150, 550), crit=(100, 600)),
        *[f"wheel_{w}_current" / param(U16, "A", f"{text} wheel drive motor current", Linear(0.001),
                                       warn=(0, 1.5), crit=(0, 2.5)) for w, text in WHEELS],
    ]),
    obdh_hk(apid=PLATFORM, sid=4, period=32.0, storage_gbit=32),
    HousekeepingPacket("comms", apid=PLATFORM, sid=5, subsystem="comms", period=16.0,
                       description="UHF relay link to the orbiter and X-band direct-to-Earth link", fields=[
        *radio_fields("uhf", "UHF relay", tx_power=((3, 12), (1, 15)), rx_level=((-110, -40), (-120, -30)),
                      rates=UHF_RATES, intermittent=True),
        "relay_session" / state(U8, RELAY_SESSION, "Relay session with the Tianwen-1 orbiter", crit={"FAILED"}),
        "relay_volume" / param(U32, "kB", "Data handed to the orbiter in the current session", warn=(0, 2**31),
                               crit=(0, 2**32 - 1)),
        *radio_fields("xband", "X-band direct-to-Earth", tx_power=((5, 16), (2, 20)),
                      rx_level=((-140, -90), (-150, -80)), rates={0: "BPS_16", 1: "BPS_64", 2: "BPS_256"},
                      intermittent=True),
    ]),
    HousekeepingPacket("roper", apid=PAYLOAD, sid=10, subsystem="roper", period=8.0,
                       description="RoPeR ground-penetrating radar: low channel 15-95 MHz (~100 m), "
                                   "high channel 0.45-2.15 GHz (~10 m)", fields=[
        "roper_power" / state(U8, SWITCH, "RoPeR power", crit={"TRIPPED"}),
        "roper_mode" / state(U8, ROPER_MODES, "Sounding channels in use"),
        "roper_traces" / param(U32, "", "Radar traces recorded since power-on", warn=(0, 2**31), crit=(0, 2**32 - 1)),
        "roper_low_tx_power" / param(U16, "W", "Low-frequency channel peak transmit power", Linear(0.1),
                                     warn=(0, 1000), crit=(0, 1200)),
        "roper_high_tx_power" / param(U16, "W", "High-frequency channel peak transmit power", Linear(0.1),
                                      warn=(0, 100), crit=(0, 150)),
        "roper_gain" / param(U8, "dB", "Receiver gain", Linear(0.5), warn=(0, 60), crit=(0, 70)),
        "roper_noise_floor" / param(S16, "dBm", "Receiver noise floor", Linear(0.1), warn=(-120, -60),
                                    crit=(-130, -40)),
        "roper_temperature" / param(S16, "degC", "Radar transceiver temperature", CENTI, warn=(-40, 50),
                                    crit=(-50, 60)),
    ]),
    HousekeepingPacket("romag", apid=PAYLOAD, sid=11, subsystem="romag", period=8.0,
                       description="RoMAG fluxgate magnetometer on the mast", fields=[
        "romag_power" / state(U8, SWITCH, "RoMAG power", crit={"TRIPPED"}),
        "romag_range" / state(U8, {0: "NT_2000", 1: "NT_65000", 2: "SATURATED"}, "Measurement range",
                              crit={"SATURATED"}),
        *[f"field_{axis}" / param(S32, "nT", f"Magnetic field, rover {axis} axis", Linear(0.01),
                                  warn=(-2000, 2000), crit=(-65000, 65000)) for axis in "xyz"],
        "field_total" / param(U32, "nT", "Magnetic field magnitude", Linear(0.01), warn=(0, 3000),
                              crit=(0, 65000)),
        "romag_sensor_temperature" / param(S16, "degC", "Fluxgate sensor temperature", CENTI, warn=(-90, 40),
                                           crit=(-110, 60)),
    ]),
    HousekeepingPacket("mcs", apid=PAYLOAD, sid=12, subsystem="mcs", period=4.0,
                       description="Mars climate station: temperature, pressure, wind, sound", fields=[
        "mcs_power" / state(U8, SWITCH, "Climate station power", crit={"TRIPPED"}),
        # Thermocouple ADC counts: second-order fit from the ground calibration.
        "air_temperature" / param(U16, "degC", "Air temperature at mast height", AIR_TEMPERATURE,
                                  warn=(-110, 25), crit=(-130, 40)),
        "air_pressure" / param(U16, "Pa", "Atmospheric pressure", Linear(0.02), warn=(500, 1200), crit=(300, 1300)),
        "wind_speed" / param(U16, "m/s", "Horizontal wind speed", Linear(0.01), warn=(0, 25), crit=(0, 50)),
        "wind_direction" / param(U16, "deg", "Wind direction (from), clockwise from north", Linear(0.01),
                                 warn=(0, 360), crit=(0, 360)),
        "sound_level" / param(S16, "dB", "Sound pressure level at the microphone (re 20 uPa)", Linear(0.01),
                              warn=(-10, 90), crit=(-20, 110)),
        "mcs_temperature" / param(S16, "degC", "Climate station electronics temperature", CENTI, warn=(-60, 40),
                                  crit=(-70, 50)),
    ]),
    HousekeepingPacket("marscode", apid=PAYLOAD, sid=13, subsystem="marscode", period=16.0,
                       description="MarSCoDe: laser-induced breakdown spectroscopy (1.6-7 m) and short-wave "
                                   "infrared spectrometer (850-2400 nm)", fields=[
        "marscode_power" / state(U8, SWITCH, "MarSCoDe power", crit={"TRIPPED"}),
        "marscode_mode" / state(U8, MARSCODE_MODES, "MarSCoDe mode", crit={"FAULT"}),
        "laser_shots" / param(U32, "", "Laser shots since landing", warn=(0, 1_000_000), crit=(0, 2_000_000)),
        "laser_energy" / param(U16, "mJ", "Laser pulse energy (1064 nm)", Linear(0.01), warn=(0, 30), crit=(0, 35)),
        "target_distance" / param(U16, "m", "Current target distance", Linear(0.001), warn=(1.6, 7.0),
                                  crit=(0, 10)),
        "focus_position" / param(U16, "", "Telescope focus motor position (steps)", warn=(0, 4000), crit=(0, 4095)),
        "libs_detector_temperature" / param(S16, "degC", "LIBS spectrometer detector temperature", CENTI,
                                            warn=(-40, 20), crit=(-50, 30)),
        "swir_detector_temperature" / param(S16, "degC", "SWIR detector temperature", CENTI, warn=(-60, 0),
                                            crit=(-70, 10)),
        "laser_temperature" / param(S16, "degC", "Laser head temperature", CENTI, warn=(-30, 40), crit=(-40, 50)),
    ]),
    HousekeepingPacket("cameras", apid=PAYLOAD, sid=14, subsystem="cameras", period=32.0,
                       description="Multispectral camera, navigation and topography cameras, and the mast", fields=[
        "mscam_power" / state(U8, SWITCH, "Multispectral camera power", crit={"TRIPPED"}),
        "mscam_filter" / state(U8, {**MSCAM_FILTERS, 15: "WHEEL_STUCK"}, "Filter wheel position",
                               crit={"WHEEL_STUCK"}),
        "mscam_exposure" / param(U16, "ms", "Multispectral camera exposure time", Linear(0.1), warn=(0, 5000),
                                 crit=(0, 6000)),
        "mscam_temperature" / param(S16, "degC", "Multispectral camera detector temperature", CENTI,
                                    warn=(-50, 40), crit=(-60, 50)),
        "natecam_power" / state(U8, SWITCH, "Navigation and topography camera pair power", crit={"TRIPPED"}),
        "natecam_exposure" / param(U16, "ms", "Navigation camera exposure time", Linear(0.1), warn=(0, 2000),
                                   crit=(0, 3000)),
        "natecam_temperature" / param(S16, "degC", "Navigation camera detector temperature", CENTI,
                                      warn=(-50, 40), crit=(-60, 50)),
        "mast_yaw" / param(S16, "deg", "Mast head yaw", Linear(0.01), warn=(-180, 180), crit=(-185, 185)),
        "mast_pitch" / param(S16, "deg", "Mast head pitch", Linear(0.01), warn=(-90, 90), crit=(-95, 95)),
        "images_stored" / param(U16, "", "Images waiting for downlink", warn=(0, 2000), crit=(0, 4000)),
    ]),
)

HAZARDS = {0: "ROCK", 1: "SLOPE", 2: "SOFT_SOIL", 3: "WHEEL_SLIP", 4: "UNKNOWN"}
HIBERNATION_REASONS = {0: "LOW_POWER", 1: "LOW_TEMPERATURE", 2: "DUST_STORM", 3: "COMMANDED"}

EVENTS = (
    *standard_events(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES,
                     battery_voltage=25.0),
    EventReport("drive_completed", apid=MOBILITY, event_id=MISSION_EVENTS + 0, severity=1, subsystem="mobility",
                description="A commanded drive finished", aux=[
        "distance" / aux(U16, "m", "Distance driven", Linear(0.01)),
        "heading" / aux(U16, "deg", "Final heading", Linear(0.01)),
        "odometer" / aux(U32, "m", "Odometer after the drive", Linear(0.01)),
    ]),
    EventReport("hazard_detected", apid=MOBILITY, event_id=MISSION_EVENTS + 1, severity=3, subsystem="mobility",
                description="Autonomous hazard avoidance stopped the drive", aux=[
        "hazard" / aux_state(U8, HAZARDS, "Kind of hazard"),
        "range" / aux(U16, "m", "Distance to the hazard", Linear(0.01)),
        "bearing" / aux(S16, "deg", "Bearing of the hazard relative to heading", Linear(0.01)),
    ]),
    EventReport("wheel_overcurrent", apid=MOBILITY, event_id=MISSION_EVENTS + 2, severity=4, subsystem="mobility",
                description="A wheel motor exceeded its current limit and was stopped", aux=[
        "wheel" / aux_state(U8, {i: w.upper() for i, (w, _) in enumerate(WHEELS)}, "Wheel"),
        "current" / aux(U16, "A", "Peak current", Linear(0.001)),
    ]),
    EventReport("dust_degradation", apid=PLATFORM, event_id=MISSION_EVENTS + 3, severity=2, subsystem="power",
                description="Array output lost to dust passed a further 10 %", aux=[
        "dust_obscuration" / aux(U8, "%", "Output lost to dust", HALF_PERCENT),
    ]),
    EventReport("hibernation_entered", apid=PLATFORM, event_id=MISSION_EVENTS + 4, severity=3, subsystem="power",
                description="The rover entered hibernation; it wakes when power and temperature allow", aux=[
        "reason" / aux_state(U8, HIBERNATION_REASONS, "Why"),
        "battery_soc" / aux(U8, "%", "State of charge", HALF_PERCENT),
    ]),
    EventReport("hibernation_left", apid=PLATFORM, event_id=MISSION_EVENTS + 5, severity=1, subsystem="power",
                description="Wake-up conditions met: the rover left hibernation", aux=[
        "array_power" / aux(U16, "W", "Array output at wake-up", Linear(0.1)),
        "temp_electronics_box" / aux(S16, "degC", "Electronics box temperature at wake-up", CENTI),
    ]),
)

COMMANDS = (
    *standard_commands(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES),
    Command("DRIVE", apid=MOBILITY, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 0, subsystem="mobility",
            description="Drive a distance along a heading, with autonomous hazard avoidance", arguments=[
        "distance" / arg(U16, "m", "Distance to drive", Linear(0.01), valid=(0.1, 100)),
        "heading" / arg(U16, "deg", "Heading, clockwise from north", Linear(0.01), valid=(0, 359.99)),
        "speed" / arg(U16, "m/h", "Ground speed", Linear(0.1), valid=(10, 200)),
        "mode" / choice(U8, DRIVE_MODES, "Locomotion mode"),
    ], verification=VerificationWindows(completion=drive_completion_window)),
    Command("STOP", apid=MOBILITY, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 1, subsystem="mobility",
            description="Stop the current drive at once"),
    Command("SET_SUSPENSION", apid=MOBILITY, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 2,
            subsystem="mobility", description="Raise or lower the body with the active suspension", arguments=[
        "height" / arg(U16, "mm", "Body clearance", Linear(0.1), valid=(150, 550)),
    ]),
    Command("ROPER_SOUNDING", apid=PAYLOAD, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 3,
            subsystem="roper", description="Start a radar sounding", arguments=[
        "channels" / choice(U8, ROPER_MODES, "Channels", valid={"LOW_FREQUENCY", "HIGH_FREQUENCY", "DUAL"}),
        "duration" / arg(U16, "s", "Sounding duration", valid=(1, 7200)),
        "gain" / arg(U8, "dB", "Receiver gain", Linear(0.5), valid=(0, 60)),
    ]),
    Command("MARSCODE_LIBS", apid=PAYLOAD, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 4,
            subsystem="marscode", description="Fire a LIBS burst at a target", arguments=[
        "target_distance" / arg(U16, "m", "Target distance", Linear(0.001), valid=(1.6, 7.0)),
        "shots" / arg(U8, "", "Laser shots", valid=(1, 120)),
        "with_swir" / choice(U8, {0: "NO", 1: "YES"}, "Also take a SWIR spectrum"),
    ]),
    Command("TAKE_IMAGE", apid=PAYLOAD, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 5,
            subsystem="cameras", description="Point the mast and take an image", arguments=[
        "camera" / choice(U8, {0: "MSCAM", 1: "NATECAM_LEFT", 2: "NATECAM_RIGHT", 3: "NATECAM_STEREO"}, "Camera"),
        "filter" / choice(U8, MSCAM_FILTERS, "MSCam filter (ignored by NaTeCam)"),
        "exposure" / arg(U16, "ms", "Exposure time", Linear(0.1), valid=(0.1, 5000)),
        "yaw" / arg(S16, "deg", "Mast yaw", Linear(0.01), valid=(-180, 180)),
        "pitch" / arg(S16, "deg", "Mast pitch", Linear(0.01), valid=(-90, 90)),
    ]),
    Command("SET_WAKE_THRESHOLDS", apid=PLATFORM, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 6,
            subsystem="power", description="Conditions the rover waits for before leaving hibernation", arguments=[
        "array_power" / arg(U16, "W", "Minimum array output", Linear(0.1), valid=(20, 300)),
        "temperature" / arg(S16, "degC", "Minimum electronics box temperature", CENTI, valid=(-40, 0)),
    ]),
)

SPACECRAFT = Spacecraft(
    name="zhurong",
    scid=83,
    description="Zhurong Mars rover (Tianwen-1); telemetry relayed through the Tianwen-1 orbiter",
    profile=Downlink(
        frame=tianwen1_frame_profile(),
        virtual_channels=(
            VirtualChannel(1, "realtime", "Housekeeping and events, live during a relay session"),
            VirtualChannel(3, "playback", "Stored housekeeping and science dumped from mass memory"),
            VirtualChannel(63, "idle", "Fill"),
        ),
        realtime_vc=1, playback_vc=3, reed_solomon="RS(252,220), E=16, conventional basis (as Tianwen-1)",
        relay_via="tianwen1", source="invented",
        notes="Invented profile (no public frame facts for the rover). Frames go over UHF to the Tianwen-1 "
              "orbiter, which stores and forwards them to Earth; the X-band direct link uses the same frames. "
              "The orbiter's own frame format is assumed for them: 220-octet AOS frames with the 8-octet "
              "insert zone (its time in 100 us), RS(252,220) in the conventional basis, randomized.",
    ),
    apids=(
        Apid(PLATFORM, "platform", "Power, thermal, data handling, radio; standard commands and events"),
        Apid(MOBILITY, "mobility", "Locomotion, navigation, pose"),
        Apid(PAYLOAD, "payload", "The six science instruments"),
    ),
    instruments=INSTRUMENTS,
    housekeeping=HOUSEKEEPING,
    events=EVENTS,
    commands=COMMANDS,
)
