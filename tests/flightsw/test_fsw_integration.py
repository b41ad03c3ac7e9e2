"""A miniature rover spacecraft composed from the core and physics, run in virtual time.

This is also the shape a mission model takes: a model object stepped by the
scheduler, a provider for housekeeping, sinks into storage/downlink, faults applied
on the sensor and link paths.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from flightsw.core import (
    App,
    EventApp,
    Executive,
    FaultApp,
    FaultSet,
    HousekeepingApp,
    Message,
    OnboardStore,
    PassSchedule,
    ScheduleEntry,
    Scheduler,
    SimClock,
    StorageApp,
)
from flightsw.core.msgids import MID_FAULT_CHECK, MID_HK_WAKEUP, MID_LINK_CHECK, MID_MODEL_STEP
from flightsw.physics import (
    Battery,
    MarsSurfaceIllumination,
    PhaseChangeNode,
    RoverMobility,
    SolarArray,
    ThermalNetwork,
    ThermalNode,
    mars_surface_temperature_c,
)

START = datetime(2021, 5, 22, 2, 40, tzinfo=UTC)


class RoverModel(App):
    """Power and thermal of a small rover, stepped on MID_MODEL_STEP."""

    subscriptions = (MID_MODEL_STEP,)

    def __init__(self, faults: FaultSet, seed: int) -> None:
        super().__init__("MODEL")
        self.faults = faults
        self.sun = MarsSurfaceIllumination(START)
        self.array = SolarArray(3.0, dust_loss_per_sol=0.002)
        self.battery = Battery(30.0, soc=0.7)
        self.thermal = ThermalNetwork(lambda t: mars_surface_temperature_c(self.sun.local_time_h(t)))
        self.body = self.thermal.add(ThermalNode("body", 30_000.0, -10.0, internal_w=20.0, heater_w=30.0))
        self.thermal.add(PhaseChangeNode.n_undecane("pcm", 3.0, -20.0))
        self.thermal.link("body", "pcm", 3.0)
        self.thermal.link_environment("body", conductance_w_per_k=0.4, emissivity_area_m2=0.1)
        self.rover = RoverMobility(seed=seed)
        self.rover.command_drive(10.0, 30.0)
        self.last = 0.0

    def handle_message(self, message: Message) -> None:
        now = self.now()
        dt, self.last = now - self.last, now
        if dt <= 0:
            return
        self.battery.set_capacity_factor(self.faults.battery_capacity_factor(now))
        self.body.extra_w = self.faults.extra_heat_w("body")
        sun = self.sun.at(now)
        power = self.array.step(dt, sun.irradiance_wm2, sun.sin_elevation, self.body.temperature_c)
        self.body.heater_on = self.body.temperature_c < -30.0
        load = 40.0 + (30.0 if self.body.heater_on else 0.0) + (60.0 if self.rover.driving else 0.0)
        self.battery.step(power - load, dt)
        self.thermal.step(dt)
        self.rover.step(dt)

    def values(self, packet: str) -> dict[str, float]:
        raw = {
            "power": {"battery_voltage": self.battery.state.voltage_v, "soc": self.battery.soc,
                      "array_power": self.array.power_w},
            "thermal": {"body": self.body.temperature_c, "pcm": self.thermal.node("pcm").temperature_c},
            "mobility": {"odometer": self.rover.odometer_m},
        }[packet]
        return self.faults.apply_all(raw, prefix=f"rover.{packet}")


def run(seed: int, hours: float = 6.0):
    clock = SimClock.virtual_at(START)
    ex = Executive(clock, spacecraft="rover")
    events, downlink = [], []
    faults = FaultSet(["stuck:rover.power.battery_voltage@t=1h", "drop-frames:p=0.1",
                       "thermal-runaway:body=40@t=2h,for=1h"], seed=seed)
    store = OnboardStore(4_000, link=PassSchedule([(0, 1800), (4 * 3600, 5 * 3600)]))
    ex.add(EventApp(events.append, burst=20))
    ex.add(FaultApp(faults))
    storage = ex.add(StorageApp(store))
    model = ex.add(RoverModel(faults, seed))

    def send(data: bytes) -> None:
        frame = faults.frame_fate(data)
        if frame is not None:
            downlink.append(frame)

    def sink(name, values, ot):
        data = json.dumps([name, ot.coarse, ot.fine, values], sort_keys=True).encode()
        if store.offer(data, ot.seconds, 0x100, clock.now()):
            if len(store):
                for item in store.dump():  # pass under way: stored data first, oldest first
                    send(item.data)
            send(data)

    ex.add(HousekeepingApp([("power", 10.0), ("thermal", 30.0), ("mobility", 60.0)], model.values, sink))
    sched = Scheduler.for_executive(ex, [
        ScheduleEntry("MODEL", MID_MODEL_STEP, 1),
        ScheduleEntry("FLT", MID_FAULT_CHECK, 1),
        ScheduleEntry("STO", MID_LINK_CHECK, 1),
        ScheduleEntry("HK", MID_HK_WAKEUP, 1),
    ], tick_hz=1.0)
    sched.step_until(hours * 3600)
    return ex, model, storage, events, downlink, faults


def test_rover_runs_deterministically_with_faults_storage_and_events():
    ex, model, storage, events, downlink, faults = run(seed=11)
    texts = [e.text for e in events]
    assert any("stuck:rover.power.battery_voltage activated" in t for t in texts)
    assert any("thermal-runaway:body activated" in t for t in texts)
    assert any("thermal-runaway:body cleared" in t for t in texts)
    assert any(t.startswith("link lost") for t in texts) and any(t.startswith("link acquired") for t in texts)
    assert any("onboard store full" in t for t in texts)  # 2.5 h outage overflows 4 kB
    assert sum("dump completed" in t for t in texts) == 1  # the one pass after the outage
    assert 0.05 <= model.battery.soc <= 1.0
    assert abs(model.rover.odometer_m - 10.0) < 1e-9
    assert downlink
    decoded = [json.loads(d) for d in downlink if d.startswith(b'["')]
    volts = {round(v[3]["battery_voltage"], 9) for v in decoded if v[0] == "power" and v[1] > 0 and
             v[1] - decoded[0][1] > 3700}
    assert len(volts) == 1  # stuck after t = 1 h
    hk = ex.housekeeping()
    assert hk["FLT"]["frames_dropped"] == faults.frames_dropped > 0
    assert hk["STO"]["dropped_total"] > 0
    again = run(seed=11)
    assert again[4] == downlink
    assert [e.text for e in again[3]] == texts
    assert run(seed=12)[4] != downlink
