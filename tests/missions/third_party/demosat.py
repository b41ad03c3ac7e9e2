# demosat.py - a third-party mission module: Queqiao finds it through QUEQIAO_MISSION_PATH
# or a `queqiao.missions` entry point, without any change to Queqiao itself.
from protocols.missions import Apid, Downlink, FrameProfile, HousekeepingPacket, Instrument, Spacecraft, VirtualChannel
from protocols.missions.common import (
    CENTI,
    S16,
    SWITCH,
    U8,
    U16,
    SolarArray,
    Zone,
    obdh_hk,
    param,
    power_hk,
    standard_commands,
    standard_events,
    state,
    thermal_hk,
)
from protocols.parameters import Linear

APID = 0x050
INSTRUMENTS = (Instrument(1, "CAMERA", "Earth observation camera", "camera_power"),)
STORES = ("housekeeping",)

HOUSEKEEPING = (
    power_hk(apid=APID, sid=1, period=10.0, bus=((7.0, 8.4), (6.5, 8.6)), bus_current_max=3.0,
             battery=((7.0, 8.4), (6.5, 8.5)), soc=((30, 100), (15, 100)),
             arrays=[SolarArray("body", "Body-mounted panels", 1.2)]),
    thermal_hk(apid=APID, sid=2, period=30.0, zones=[Zone("board", "OBC board", (-10, 50), (-20, 60))],
               heaters=[("battery", "Battery")]),
    obdh_hk(apid=APID, sid=3, period=60.0, storage_gbit=8),
    HousekeepingPacket("camera", apid=APID, sid=4, subsystem="camera", period=10.0,
                       description="Camera status", fields=[
        "camera_power" / state(U8, SWITCH, "Camera power", crit={"TRIPPED"}),
        "camera_temperature" / param(S16, "degC", "Detector temperature", CENTI, warn=(-10, 40), crit=(-20, 50)),
        "camera_exposure" / param(U16, "ms", "Exposure time", Linear(0.1), warn=(0, 500), crit=(0, 1000)),
    ]),
)

SPACECRAFT = Spacecraft(
    name="demosat",
    scid=700,
    description="A 3U CubeSat defined outside Queqiao",
    profile=Downlink(frame=FrameProfile(kind="TM", frame_length=256, has_ocf=True, has_fecf=True, randomized=True),
                     virtual_channels=(VirtualChannel(0, "realtime", "Live"),
                                       VirtualChannel(1, "playback", "Stored")),
                     realtime_vc=0, playback_vc=1),
    apids=(Apid(APID, "platform", "Everything"),),
    instruments=INSTRUMENTS,
    housekeeping=HOUSEKEEPING,
    events=standard_events(apid=APID, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES,
                           battery_voltage=6.8),
    commands=standard_commands(apid=APID, instruments=INSTRUMENTS, housekeeping=HOUSEKEEPING, stores=STORES),
)
