"""Chang'e-5 lander on the Moon: the two days of surface sampling at Mons Rumker (December 2020).

Public facts used: SCID 91 is the lander stack (downlink 8463.7 MHz); the same 256-octet
CADUs as the orbiter (220-octet AOS frames, 8-octet insert zone, RS(255,223) shortened to a
252-octet codeword in the dual basis, pseudo-randomized, 2048 baud), VC1 real time and VC2;
landing on 2020-12-01 near 43.1 N 51.8 W in Oceanus Procellarum; a drill that cored the
regolith down to about 1 m and an arm with a scoop that took surface samples, about 1.7 kg
in all, sealed in a container that the ascender took up on 2020-12-03; the landing camera,
panoramic camera, lunar mineralogical spectrometer and lunar regolith penetrating radar.
Invented: APIDs, every packet layout, scaling and limit, and the sampling sequence's
figures (rates, torques, forces, masses, temperatures).
"""
from __future__ import annotations

from protocols.missions.change5_orbiter import change5_profile, real_apids
from protocols.missions.common import (
    CENTI,
    MISSION_EVENTS,
    MISSION_FUNCTIONS,
    S16,
    SWITCH,
    U8,
    U16,
    SolarArray,
    Zone,
    arg,
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
    EventReport,
    HousekeepingPacket,
    Instrument,
    Spacecraft,
)
from protocols.parameters import Linear

PLATFORM, SAMPLING = 0x0B0, 0x0B1

INSTRUMENTS = (
    Instrument(1, "LANDING_CAMERA", "Landing camera", "landing_camera_power"),
    Instrument(2, "PANORAMIC_CAMERA", "Panoramic camera", "panoramic_camera_power"),
    Instrument(3, "MINERALOGICAL_SPECTROMETER", "Lunar mineralogical spectrometer", "spectrometer_power"),
    Instrument(4, "REGOLITH_RADAR", "Lunar regolith penetrating radar (under the drill)", "radar_power"),
)
STORES = ("housekeeping", "science", "events")

SURFACE_PHASES = {0: "POST_LANDING", 1: "SURFACE_SURVEY", 2: "DRILLING", 3: "SCOOPING", 4: "SEALING",
                  5: "SAMPLE_TRANSFERRED", 6: "SAFE"}
DRILL_STATES = {0: "STOWED", 1: "DEPLOYED", 2: "DRILLING", 3: "RETRACTING", 4: "STALLED", 5: "DONE"}
ARM_STATES = {0: "STOWED", 1: "MOVING", 2: "SCOOPING", 3: "AT_CONTAINER", 4: "FAULT"}
SCOOP_STATES = {0: "EMPTY", 1: "LOADED"}
SEAL_STATES = {0: "OPEN", 1: "SEALING", 2: "SEALED", 3: "LEAK"}
SAMPLE_SITES = {0: "SITE_1", 1: "SITE_2", 2: "SITE_3", 3: "SITE_4", 4: "SITE_5"}

HOUSEKEEPING = (
    power_hk(apid=PLATFORM, sid=1, period=16.0,
             bus=((27.0, 30.5), (26.0, 31.5)), bus_current_max=40.0,
             battery=((25.0, 32.8), (24.0, 33.6)), soc=((40, 100), (25, 100)),
             battery_temperature=((-5, 35), (-15, 45)),
             arrays=[SolarArray("wing_a", "Solar wing A", 16.0), SolarArray("wing_b", "Solar wing B", 16.0)],
             extra=[
                 "surface_phase" / state(U8, SURFACE_PHASES, "Surface operations phase", crit={"SAFE"}),
                 "sun_elevation" / param(S16, "deg", "Sun elevation at the landing site", Linear(0.01),
                                         warn=(5, 90), crit=(0, 90)),
             ],
             description="Power: two solar wings and the battery through the lunar morning"),
    thermal_hk(apid=PLATFORM, sid=2, period=32.0,
               zones=[
                   Zone("electronics_cabin", "Electronics cabin", (-10, 45), (-25, 55)),
                   Zone("radiator", "Cabin radiator", (-40, 70), (-60, 85)),
                   Zone("drill_motor", "Drill rotary-percussive motor", (-30, 80), (-45, 100)),
                   Zone("arm_shoulder", "Sampling arm shoulder joint", (-40, 70), (-55, 85)),
                   Zone("sample_container", "Sample container (keep the regolith below 40 degC)", (-30, 40),
                        (-45, 50)),
                   Zone("regolith_surface", "Regolith surface beside the lander", (-190, 120), (-240, 140)),
               ],
               heaters=[("battery", "Battery"), ("arm", "Arm joints"), ("container", "Sample container")]),
    obdh_hk(apid=PLATFORM, sid=3, period=60.0, storage_gbit=32),
    HousekeepingPacket("comms", apid=PLATFORM, sid=4, subsystem="comms", period=32.0,
                       description="X-band direct-to-Earth transponder (8463.7 MHz)", fields=[
        *radio_fields("xband", "X-band", tx_power=((10, 30), (5, 35)), rx_level=((-140, -80), (-150, -70)),
                      rates={0: "BPS_2048", 1: "KBPS_16", 2: "KBPS_64", 3: "KBPS_1024"}),
        "earth_elevation" / param(S16, "deg", "Earth elevation at the site", Linear(0.01), warn=(20, 70),
                                  crit=(5, 90)),
    ]),
    HousekeepingPacket("payload", apid=PLATFORM, sid=5, subsystem="payload", period=32.0,
                       description="Cameras, mineralogical spectrometer and regolith radar", fields=[
        "landing_camera_power" / state(U8, SWITCH, "Landing camera power", crit={"TRIPPED"}),
        "panoramic_camera_power" / state(U8, SWITCH, "Panoramic camera power", crit={"TRIPPED"}),
        "spectrometer_power" / state(U8, SWITCH, "Mineralogical spectrometer power", crit={"TRIPPED"}),
        "spectrometer_temperature" / param(S16, "degC", "Spectrometer detector temperature", CENTI,
                                           warn=(-30, 40), crit=(-45, 55)),
        "radar_power" / state(U8, SWITCH, "Regolith penetrating radar power", crit={"TRIPPED"}),
        "radar_layer_depth" / param(U16, "m", "Depth of the first reflector under the drill site", Linear(0.001),
                                    warn=(0, 3), crit=(0, 3.5)),
    ]),
    HousekeepingPacket("drill", apid=SAMPLING, sid=10, subsystem="sampling", period=8.0,
                       description="Rotary-percussive drill coring the regolith into a flexible core bag", fields=[
        "drill_state" / state(U8, DRILL_STATES, "Drill state", warn={"STALLED"}),
        "drill_depth" / param(U16, "m", "Drill bit depth below the surface", Linear(0.0005), warn=(0, 2.5),
                              crit=(0, 2.6)),
        "drill_target_depth" / param(U16, "m", "Commanded depth", Linear(0.0005), warn=(0, 2.5), crit=(0, 2.6)),
        "drill_speed" / param(U16, "rpm", "Bit rotation speed", Linear(0.1), warn=(0, 200), crit=(0, 250)),
        "drill_penetration_rate" / param(U16, "m/h", "Penetration rate", Linear(0.001), warn=(0, 6),
                                         crit=(0, 9)),
        "drill_torque" / param(U16, "N*m", "Rotary torque", Linear(0.01), warn=(0, 22), crit=(0, 30)),
        "drill_motor_current" / param(U16, "A", "Drill motor current", Linear(0.001), warn=(0, 6), crit=(0, 8)),
        "core_length" / param(U16, "m", "Regolith core in the bag", Linear(0.0005), warn=(0, 2.5), crit=(0, 2.6)),
    ]),
    HousekeepingPacket("arm", apid=SAMPLING, sid=11, subsystem="sampling", period=8.0,
                       description="Four-joint sampling arm with a scoop", fields=[
        "arm_state" / state(U8, ARM_STATES, "Arm state", crit={"FAULT"}),
        *[f"arm_{joint}_angle" / param(S16, "deg", f"Arm {joint} joint angle", Linear(0.01),
                                       warn=(-175, 175), crit=(-180, 180))
          for joint in ("shoulder_yaw", "shoulder_pitch", "elbow", "wrist")],
        "arm_motor_current" / param(U16, "A", "Sum of the joint motor currents", Linear(0.001), warn=(0, 4),
                                    crit=(0, 6)),
        "scoop_state" / state(U8, SCOOP_STATES, "Scoop content"),
        "scoops_done" / param(U8, "", "Scoops delivered to the container", warn=(0, 15), crit=(0, 20)),
    ]),
    HousekeepingPacket("sample_container", apid=SAMPLING, sid=12, subsystem="sampling", period=16.0,
                       description="Sealed sample container handed to the ascender", fields=[
        "seal_state" / state(U8, SEAL_STATES, "Container seal", crit={"LEAK"}),
        "seal_force" / param(U16, "N", "Seal press force", warn=(0, 12000), crit=(0, 15000)),
        "container_pressure" / param(U16, "Pa", "Pressure inside the sealed container (vacuum when good)",
                                     Linear(0.01), warn=(0, 1.0), crit=(0, 10.0)),
        "sample_mass" / param(U16, "kg", "Sample mass in the container (core + scoops)", Linear(0.0005),
                              warn=(0, 2.2), crit=(0, 2.5)),
        "core_in_container" / state(U8, {0: "NO", 1: "YES"}, "Core bag transferred into the container"),
    ]),
)

EVENTS = (
    *standard_events(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES,
                     battery_voltage=25.0),
    EventReport("drilling_done", apid=SAMPLING, event_id=MISSION_EVENTS + 0, severity=1, subsystem="sampling",
                description="The drill reached its target depth and the core bag was closed", aux=[
        "depth" / aux(U16, "m", "Final depth", Linear(0.0005)),
        "core_length" / aux(U16, "m", "Core length in the bag", Linear(0.0005)),
    ]),
    EventReport("drill_stalled", apid=SAMPLING, event_id=MISSION_EVENTS + 1, severity=3, subsystem="sampling",
                description="Torque over the limit (rock or a hard layer): the drill stopped", aux=[
        "depth" / aux(U16, "m", "Depth at the stall", Linear(0.0005)),
        "torque" / aux(U16, "N*m", "Torque at the stall", Linear(0.01)),
    ]),
    EventReport("scoop_delivered", apid=SAMPLING, event_id=MISSION_EVENTS + 2, severity=1, subsystem="sampling",
                description="A scoop of surface regolith was poured into the container", aux=[
        "site" / aux(U8, "", "Sampling site number"),
        "sample_mass" / aux(U16, "kg", "Container sample mass after the scoop", Linear(0.0005)),
    ]),
    EventReport("container_sealed", apid=SAMPLING, event_id=MISSION_EVENTS + 3, severity=2, subsystem="sampling",
                description="The sample container is sealed, ready for transfer to the ascender", aux=[
        "sample_mass" / aux(U16, "kg", "Sealed sample mass", Linear(0.0005)),
        "container_pressure" / aux(U16, "Pa", "Pressure inside after sealing", Linear(0.01)),
    ]),
)

COMMANDS = (
    *standard_commands(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES),
    Command("DRILL", apid=SAMPLING, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 0,
            subsystem="sampling", description="Drill a core down to a target depth", arguments=[
        "target_depth" / arg(U16, "m", "Depth to stop at", Linear(0.0005), valid=(0.05, 2.5)),
        "speed" / arg(U16, "rpm", "Bit rotation speed", Linear(0.1), valid=(30, 200)),
    ]),
    Command("SCOOP", apid=SAMPLING, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 1,
            subsystem="sampling", description="Take scoops of surface regolith at a site into the container",
            arguments=[
        "site" / choice(U8, SAMPLE_SITES, "Sampling site in front of the lander"),
        "scoops" / arg(U8, "", "Number of scoops", valid=(1, 5)),
    ]),
    Command("SEAL_CONTAINER", apid=SAMPLING, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 2,
            subsystem="sampling", description="Transfer the core bag (if drilled) and seal the sample container",
            arguments=[
        "force" / arg(U16, "N", "Seal press force", valid=(5000, 12000)),
    ]),
    Command("STOW_ARM", apid=SAMPLING, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 3,
            subsystem="sampling", description="Bring the sampling arm back to its stowed position"),
)

#: The APIDs of the real lander stack's frames (ata-2020-11-28 recording, SCID 91; 130 and 897 on VC 2).
LANDER_REAL_APIDS = (2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 16, 18, 21, 22, 25, 26, 27, 28, 29, 30, 31, 33, 34, 35, 37, 38,
                     39, 40, 41, 42, 43, 48, 49, 50, 51, 52, 58, 59, 60, 61, 130, 257, 258, 259, 260, 261, 278, 281,
                     282, 283, 285, 286, 296, 512, 514, 515, 516, 517, 518, 520, 521, 524, 531, 532, 537, 538, 541,
                     542, 547, 770, 771, 772, 776, 777, 778, 779, 786, 793, 794, 797, 798, 803, 815, 897, 1025, 1026,
                     1027, 1028, 1029, 1030, 1031, 1032, 1033, 1034, 1039, 1040)

SPACECRAFT = Spacecraft(
    name="change5-lander",
    scid=91,
    description="Chang'e-5 lander at Mons Rumker: lunar-surface drilling, scooping and sample sealing",
    profile=change5_profile(
        playback_vc=2,
        notes="Public: SCID 91 (the lander stack, 8463.7 MHz), AOS frames with VC1 and VC2 seen, 2048 baud, RS "
              "codeword 252 octets in dual basis, pseudo-randomized. Assumed: VC2 is the playback channel, no OCF, "
              "no FECF, VC63 idle.",
    ),
    apids=(
        Apid(PLATFORM, "platform", "Power, thermal, data handling, radio; standard commands and events"),
        Apid(SAMPLING, "sampling", "Drill, sampling arm and sample container"),
        *real_apids(LANDER_REAL_APIDS),
    ),
    instruments=INSTRUMENTS,
    housekeeping=HOUSEKEEPING,
    events=EVENTS,
    commands=COMMANDS,
)
