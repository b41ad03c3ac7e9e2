"""ILRS lander: a lunar south-pole research station lander in long-term unattended operation.

A notional station element of the International Lunar Research Station: it lives
through 14-day lunar nights on a radioisotope thermoelectric generator (RTG) and
radioisotope heater units, with solar arrays and a battery for the day.
Everything here is invented (no such spacecraft flies yet); the lunar-night
figures follow what Chang'e-3/4 landers reported (night below -170 degC, RHU
heating, hibernation and autonomous wake at dawn).
"""
from __future__ import annotations

from protocols.missions.common import (
    CENTI,
    HALF_PERCENT,
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
from protocols.parameters import Linear, Polynomial

PLATFORM, SCIENCE = 0x400, 0x401

INSTRUMENTS = (
    Instrument(1, "SEISMOMETER", "Broadband lunar seismometer", "seismometer_power"),
    Instrument(2, "HEAT_FLOW_PROBE", "Regolith heat-flow probe", "heat_probe_power"),
    Instrument(3, "NEUTRON_SPECTROMETER", "Neutron and water-ice spectrometer", "neutron_power"),
    Instrument(4, "DOSIMETER", "Radiation dosimeter", "dosimeter_power"),
    Instrument(5, "DUST_ANALYSER", "Dust and surface electric field analyser", "dust_power"),
    Instrument(6, "PANORAMIC_CAMERA", "Panoramic camera", "camera_power"),
)
STORES = ("housekeeping", "science", "events")

STATION_MODES = {0: "DAY_NOMINAL", 1: "DUSK", 2: "NIGHT_SURVIVAL", 3: "DAWN_WAKE", 4: "SAFE"}
#: RTG hot junction: type-K thermocouple counts, second-order fit (0 .. 614 degC over the 16-bit range).
HOT_JUNCTION = Polynomial(0.0, 0.012, -4.0e-8)
RTG_STATES = {0: "NOMINAL", 1: "DEGRADED", 2: "SHUNT_FAULT"}

HOUSEKEEPING = (
    power_hk(apid=PLATFORM, sid=1, period=30.0,
             bus=((27.0, 31.0), (25.5, 32.0)), bus_current_max=15.0,
             battery=((25.0, 32.8), (24.0, 33.6)), soc=((40, 100), (20, 100)),
             battery_temperature=((-5, 30), (-20, 40)),
             arrays=[SolarArray("mast", "Vertical mast array (low-Sun south-pole geometry)", 8.0),
                     SolarArray("deck", "Deck array", 4.0)],
             extra=[
                 "station_mode" / state(U8, STATION_MODES, "Station day/night operating mode",
                                        warn={"DAWN_WAKE"}, crit={"SAFE"}),
                 "rtg_state" / state(U8, RTG_STATES, "Radioisotope thermoelectric generator state",
                                     warn={"DEGRADED"}, crit={"SHUNT_FAULT"}),
                 "rtg_power" / param(U16, "W", "RTG electrical output", Linear(0.01), warn=(90, 130), crit=(70, 140)),
                 "rtg_voltage" / param(U16, "V", "RTG output voltage", Linear(0.002), warn=(27, 31), crit=(25, 33)),
                 "rtg_hot_junction" / param(U16, "degC", "RTG thermocouple hot junction", HOT_JUNCTION,
                                            warn=(400, 560), crit=(300, 600)),
                 "rtg_cold_junction" / param(S16, "degC", "RTG thermocouple cold junction (radiator)", Linear(0.1),
                                             warn=(50, 200), crit=(0, 250)),
                 "sun_elevation" / param(S16, "deg", "Sun elevation at the site (south pole: within a few deg)",
                                         Linear(0.01), warn=(-10, 10), crit=(-90, 90)),
             ],
             description="Power: solar arrays and battery for the day, RTG through the lunar night"),
    thermal_hk(apid=PLATFORM, sid=2, period=60.0,
               zones=[
                   Zone("electronics_cabin", "Warm electronics cabin", (-20, 40), (-35, 55)),
                   Zone("radiator", "Cabin radiator", (-60, 60), (-190, 100)),
                   Zone("rhu_loop", "Radioisotope heater unit two-phase loop", (-30, 60), (-50, 80)),
                   Zone("seismometer_vault", "Seismometer vault", (-40, 30), (-60, 45)),
                   Zone("regolith_surface", "Regolith surface beside the lander", (-190, 100), (-240, 130)),
               ],
               heaters=[("battery", "Battery"), ("cabin", "Electronics cabin"), ("seismometer", "Seismometer")],
               extra=[
                   "rhu_loop_valve" / state(U8, {0: "CLOSED", 1: "OPEN", 2: "STUCK"},
                                            "Variable-conductance loop valve (opens at night)", crit={"STUCK"}),
                   "rhu_heat" / param(U16, "W", "Heat delivered by the radioisotope heater loop", Linear(0.1),
                                      warn=(40, 130), crit=(20, 150)),
               ]),
    obdh_hk(apid=PLATFORM, sid=3, period=60.0, storage_gbit=64, sdls=True),
    HousekeepingPacket("comms", apid=PLATFORM, sid=4, subsystem="comms", period=60.0,
                       description="X-band direct-to-Earth link and high-gain antenna", fields=[
        *radio_fields("xband", "X-band", tx_power=((15, 45), (10, 55)), rx_level=((-150, -95), (-160, -85)),
                      rates={0: "BPS_256", 1: "KBPS_2", 2: "KBPS_64", 3: "KBPS_512"}),
        "earth_elevation" / param(S16, "deg", "Earth elevation at the site", Linear(0.01), warn=(2, 20),
                                  crit=(-10, 30)),
        "hga_azimuth" / param(U16, "deg", "High-gain antenna azimuth", Linear(0.01), warn=(0, 360), crit=(0, 360)),
        "hga_elevation" / param(S16, "deg", "High-gain antenna elevation", Linear(0.01), warn=(-5, 45),
                                crit=(-10, 90)),
        "uplink_count" / param(U16, "", "Uplink sessions since landing", warn=(0, 60000), crit=(0, 65535)),
    ]),
    HousekeepingPacket("geophysics", apid=SCIENCE, sid=10, subsystem="geophysics", period=10.0,
                       description="Seismometer and regolith heat-flow probe", fields=[
        "seismometer_power" / state(U8, SWITCH, "Seismometer power", crit={"TRIPPED"}),
        *[f"seismic_{axis}" / param(S32, "nm/s", f"Ground velocity, {axis} axis (1 s mean)", Linear(0.001),
                                    warn=(-1000, 1000), crit=(-100000, 100000)) for axis in ("east", "north", "up")],
        "seismometer_tilt" / param(S16, "deg", "Sensor tilt from level", Linear(0.001), warn=(-2, 2), crit=(-5, 5)),
        "heat_probe_power" / state(U8, SWITCH, "Heat-flow probe power", crit={"TRIPPED"}),
        "heat_probe_depth" / param(U16, "m", "Heat-flow probe penetration depth", Linear(0.001), warn=(0, 3),
                                   crit=(0, 3.5)),
        "regolith_temp_shallow" / param(S16, "degC", "Regolith temperature at 0.3 m", CENTI, warn=(-200, 0),
                                        crit=(-240, 50)),
        "regolith_temp_deep" / param(S16, "degC", "Regolith temperature at the probe tip", CENTI, warn=(-200, 0),
                                     crit=(-240, 50)),
        "heat_flow" / param(U16, "mW/m2", "Derived surface heat flow", Linear(0.01), warn=(0, 50), crit=(0, 100)),
    ]),
    HousekeepingPacket("environment", apid=SCIENCE, sid=11, subsystem="environment", period=30.0,
                       description="Neutron spectrometer, dosimeter, dust analyser, panoramic camera", fields=[
        "neutron_power" / state(U8, SWITCH, "Neutron spectrometer power", crit={"TRIPPED"}),
        "thermal_neutron_rate" / param(U32, "1/s", "Thermal neutron count rate", Linear(0.01), warn=(0, 500),
                                       crit=(0, 5000)),
        "epithermal_neutron_rate" / param(U32, "1/s", "Epithermal neutron count rate (water-ice indicator)",
                                          Linear(0.01), warn=(0, 500), crit=(0, 5000)),
        "dosimeter_power" / state(U8, SWITCH, "Dosimeter power", crit={"TRIPPED"}),
        "dose_rate" / param(U16, "uGy/h", "Absorbed dose rate in silicon", Linear(0.01), warn=(0, 100),
                            crit=(0, 500)),
        "dust_power" / state(U8, SWITCH, "Dust analyser power", crit={"TRIPPED"}),
        "dust_deposition" / param(U16, "ug/cm2", "Accumulated dust on the sensor plate", Linear(0.01),
                                  warn=(0, 200), crit=(0, 500)),
        "surface_field" / param(S16, "V/m", "Vertical surface electric field", Linear(0.1), warn=(-500, 500),
                                crit=(-2000, 2000)),
        "camera_power" / state(U8, SWITCH, "Panoramic camera power", crit={"TRIPPED"}),
        "camera_temperature" / param(S16, "degC", "Panoramic camera detector temperature", CENTI, warn=(-40, 40),
                                     crit=(-55, 55)),
    ]),
)

EVENTS = (
    *standard_events(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES,
                     battery_voltage=25.0),
    EventReport("lunar_night_entered", apid=PLATFORM, event_id=MISSION_EVENTS + 0, severity=2, subsystem="power",
                description="Sun below the horizon: night-survival mode, RTG only, RHU loop open", aux=[
        "battery_soc" / aux(U8, "%", "State of charge at dusk", HALF_PERCENT),
        "rtg_power" / aux(U16, "W", "RTG output", Linear(0.01)),
    ]),
    EventReport("dawn_wake", apid=PLATFORM, event_id=MISSION_EVENTS + 1, severity=1, subsystem="power",
                description="Sunlight back on the arrays: the station woke up", aux=[
        "night_hours" / aux(U16, "h", "Length of the night just survived", Linear(0.1)),
        "min_cabin_temperature" / aux(S16, "degC", "Coldest cabin temperature during the night", CENTI),
    ]),
    EventReport("moonquake_detected", apid=SCIENCE, event_id=MISSION_EVENTS + 2, severity=1,
                subsystem="geophysics", description="Seismic trigger: an event record was stored", aux=[
        "peak_velocity" / aux(S32, "nm/s", "Peak ground velocity", Linear(0.001)),
        "duration" / aux(U16, "s", "Signal duration above trigger"),
    ]),
    EventReport("rtg_output_low", apid=PLATFORM, event_id=MISSION_EVENTS + 3, severity=3, subsystem="power",
                description="RTG output below the night-survival budget", aux=[
        "rtg_power" / aux(U16, "W", "RTG output", Linear(0.01)),
        "rtg_hot_junction" / aux(U16, "degC", "Hot junction temperature", HOT_JUNCTION),
    ]),
    EventReport("solar_particle_event", apid=SCIENCE, event_id=MISSION_EVENTS + 4, severity=2,
                subsystem="environment", description="Dose rate rose above the solar particle event threshold",
                aux=["dose_rate" / aux(U16, "uGy/h", "Dose rate at trigger", Linear(0.01))]),
)

COMMANDS = (
    *standard_commands(apid=PLATFORM, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES),
    Command("SET_HEATER_SETPOINT", apid=PLATFORM, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 0,
            subsystem="thermal", description="Set a heater line's thermostat set point", arguments=[
        "heater" / choice(U8, {0: "BATTERY", 1: "CABIN", 2: "SEISMOMETER"}, "Heater line"),
        "setpoint" / arg(S16, "degC", "Set point", CENTI, valid=(-40, 30)),
    ]),
    Command("SET_NIGHT_THRESHOLDS", apid=PLATFORM, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 1,
            subsystem="power", description="Sun elevations at which the station goes to sleep and wakes up",
            arguments=[
        "sleep_elevation" / arg(S16, "deg", "Enter night survival below", Linear(0.01), valid=(-5, 5)),
        "wake_elevation" / arg(S16, "deg", "Wake above", Linear(0.01), valid=(-5, 10)),
    ], constraint=lambda a: None if a["wake_elevation"] > a["sleep_elevation"]
            else "wake_elevation must be above sleep_elevation"),
    Command("SEISMOMETER_GAIN", apid=SCIENCE, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 2,
            subsystem="geophysics", description="Set the seismometer gain and trigger level", arguments=[
        "gain" / choice(U8, {0: "X1", 1: "X4", 2: "X16", 3: "X64"}, "Preamplifier gain"),
        "trigger" / arg(U16, "nm/s", "Event trigger level", Linear(0.1), valid=(1, 5000)),
    ]),
    Command("HEAT_PROBE_HAMMER", apid=SCIENCE, service=8, subtype=1, function_id=MISSION_FUNCTIONS + 3,
            subsystem="geophysics", description="Hammer the heat-flow probe deeper", arguments=[
        "strokes" / arg(U16, "", "Hammer strokes", valid=(1, 2000)),
        "max_depth" / arg(U16, "m", "Stop at this depth", Linear(0.001), valid=(0.1, 3.0)),
    ]),
)

SPACECRAFT = Spacecraft(
    name="ilrs-lander",
    scid=673,
    description="Lunar south-pole research station lander (notional ILRS element), long-term unattended",
    profile=Downlink(
        frame=FrameProfile(kind="TM", frame_length=1024, has_ocf=True, has_fecf=True, randomized=True),
        virtual_channels=(
            VirtualChannel(0, "realtime", "Real-time housekeeping and events"),
            VirtualChannel(2, "playback", "Stored housekeeping and science, dumped each Earth pass"),
            VirtualChannel(7, "idle", "Only idle data"),
        ),
        realtime_vc=0, playback_vc=2, reed_solomon=None, source="invented",
        notes="Invented profile. Direct-to-Earth X-band from the south-pole rim (Earth low on the horizon); "
              "a relay orbiter could carry the same frames.",
    ),
    apids=(
        Apid(PLATFORM, "platform", "Power, thermal, data handling, radio; standard commands and events"),
        Apid(SCIENCE, "science", "Station science instruments"),
    ),
    instruments=INSTRUMENTS,
    housekeeping=HOUSEKEEPING,
    events=EVENTS,
    commands=COMMANDS,
    sdls_required=True,
)
