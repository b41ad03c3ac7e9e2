"""Tianwen-1 orbiter: light time by date, the capture orbit, eclipses, burns, relay sessions."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flightsw.core.faults import FaultSet
from flightsw.missions.common import CONSTRAINT_VIOLATED, REFUSED_IN_MODE, event_recorder
from flightsw.missions.tianwen1 import Tianwen1Model
from flightsw.physics.orbit import TIANWEN1_CAPTURE_UTC
from protocols.missions import builtin_registry
from protocols.parameters import LimitState

SC = builtin_registry().spacecraft("tianwen1")


def make(start=Tianwen1Model.DEFAULT_START_UTC, faults=None, seed=2):
    events: list = []
    model = Tianwen1Model(SC, seed=seed, start_utc=start, faults=faults,
                  emit=event_recorder(SC, events))
    model.step(0.0, 0.0)
    return model, events


def advance(model, seconds, dt=30.0, faults=None, until=None):
    t, end = model.t, model.t + seconds
    while t < end - 1e-9:
        t += dt
        if faults is not None:
            faults.update(t)
        model.step(t, dt)
        if until is not None and until():
            return True
    return False


def test_light_time_at_capture_and_at_the_landing():
    model, _ = make(start=TIANWEN1_CAPTURE_UTC)
    assert model.light_time_s() == pytest.approx(10.69 * 60, abs=2.0)     # ~192 million km (CNSA)
    orbit = model.housekeeping("orbit")
    assert orbit["light_time"] == pytest.approx(model.light_time_s())
    assert orbit["earth_distance"] == pytest.approx(192.2e6, rel=0.01)
    landing, _ = make(start=datetime(2021, 5, 15, 0, 18, tzinfo=UTC))
    assert landing.light_time_s() == pytest.approx(17.7 * 60, abs=3.0)    # ~320 million km
    # And it follows the date as the model runs: Earth and Mars drift apart through spring 2021.
    before = model.light_time_s()
    advance(model, 86_400.0, dt=600.0)
    assert model.light_time_s() > before


def test_capture_orbit_figures():
    model, _ = make(start=TIANWEN1_CAPTURE_UTC)
    orbit = model.housekeeping("orbit")
    assert orbit["periapsis_altitude"] == pytest.approx(400.0, abs=0.5)
    assert orbit["apoapsis_altitude"] == pytest.approx(179_243, rel=1e-3)   # ~180,000 km published
    assert orbit["orbital_period"] == pytest.approx(240.0, abs=0.01)
    assert orbit["inclination"] == pytest.approx(10.0, abs=1e-3)
    assert orbit["altitude"] == pytest.approx(400.0, abs=1.0)                # starts at periapsis
    assert 1.3 < orbit["sun_distance"] < 1.7


def test_eclipse_after_periapsis_discharges_the_battery():
    model, events = make(start=TIANWEN1_CAPTURE_UTC)
    seen = advance(model, 6 * 3600.0, until=lambda: model.housekeeping("orbit")["eclipse"] == "UMBRA")
    assert seen
    entry = [a for e, a in events if e == "eclipse_entry"]
    assert entry and 600 < entry[0]["predicted_duration"] < 3600
    soc0 = model.housekeeping("power")["battery_soc"]
    advance(model, 900.0)
    power = model.housekeeping("power")
    assert power["battery_current"] < 0 and power["battery_soc"] < soc0
    assert power["array_wing_a_current"] == 0.0


def test_battery_degradation_shows_at_the_next_eclipse():
    start = TIANWEN1_CAPTURE_UTC + timedelta(days=9.3)
    faults = FaultSet(["battery-degradation:rate=1.0,floor=0.2"], seed=1)
    model, events = make(start=start, faults=faults)
    soc = SC.parameter("battery_soc")
    states = []
    while model.t < 1.2 * 86400:
        advance(model, 600.0, faults=faults)
        states.append(soc.classify(model.housekeeping("power")["battery_soc"]))
    assert states[0] == LimitState.NOMINAL
    assert LimitState.CRITICAL in states
    assert any(e == "battery_low" for e, _ in events)


def test_orbit_maneuver_lowers_the_periapsis_and_uses_propellant():
    model, events = make(start=TIANWEN1_CAPTURE_UTC + timedelta(days=5))  # at apoapsis
    too_much = model.execute("ORBIT_MANEUVER", {"engine": "MAIN_3000N", "ignition_time": 0, "delta_v": 90.0,
                                                "max_duration": 1800})
    assert not too_much.ok and too_much.error_code == CONSTRAINT_VIOLATED
    before = model.housekeeping("orbit")
    prop = model.housekeeping("propulsion")
    outcome = model.execute("ORBIT_MANEUVER", {"engine": "THRUSTERS_120N", "ignition_time": 60, "delta_v": 1.0,
                                               "max_duration": 600})
    assert outcome.ok and outcome.duration > 60
    advance(model, 61.0, dt=1.0)
    assert model.housekeeping("propulsion")["engine_state"] == "FIRING"
    assert model.housekeeping("attitude")["aocs_mode"] == "ORBIT_CONTROL"
    advance(model, outcome.duration, dt=1.0)
    after = model.housekeeping("orbit")
    prop_after = model.housekeeping("propulsion")
    assert prop_after["engine_state"] == "SAFED"
    assert prop_after["burn_delta_v"] == pytest.approx(1.0, abs=0.01)
    assert prop_after["fuel_mass"] < prop["fuel_mass"] and prop_after["oxidizer_mass"] < prop["oxidizer_mass"]
    assert after["periapsis_altitude"] < before["periapsis_altitude"] - 50
    assert after["apoapsis_altitude"] == pytest.approx(before["apoapsis_altitude"], rel=1e-3)
    names = [e for e, _ in events]
    assert names.index("maneuver_started") < names.index("maneuver_completed")


def test_relay_session_with_the_rover_in_view():
    model, events = make()
    assert advance(model, 3 * 86400.0, dt=120.0, until=lambda: model.geo_elev > 20.0)
    outcome = model.execute("RELAY_SESSION", {"start_time": 0, "duration": 600, "data_rate": "KBPS_256"})
    assert outcome.ok and outcome.duration == pytest.approx(600.0)
    advance(model, 300.0, dt=10.0)
    relay = model.housekeeping("relay")
    assert relay["relay_session"] == "TRANSFER" and relay["uhf_transmitter"] == "ON"
    assert relay["rover_frames_received"] > 0 and relay["rover_elevation"] > 5.0
    advance(model, 400.0, dt=10.0)
    relay = model.housekeeping("relay")
    assert relay["relay_session"] == "IDLE" and relay["relay_queue"] > 0
    names = [e for e, _ in events]
    assert "relay_session_started" in names and "relay_session_ended" in names


def test_relay_session_fails_with_the_rover_below_the_horizon():
    model, events = make()
    assert advance(model, 3 * 86400.0, dt=120.0, until=lambda: model.geo_elev < -30.0)
    assert model.execute("RELAY_SESSION", {"start_time": 0, "duration": 600, "data_rate": "KBPS_32"}).ok
    advance(model, 200.0, dt=10.0)
    assert model.housekeeping("relay")["relay_session"] == "FAILED"
    assert ("relay_session_ended", {"frames_received": 0, "frames_lost": 0}) in events


def test_hiric_needs_power_and_attitude_commands_need_nominal_mode():
    model, _ = make()
    image = {"start_time": 0, "lines": 20000, "tdi_stages": 48}
    assert model.execute("HIRIC_IMAGE", image).error_code == REFUSED_IN_MODE
    model.execute("POWER_INSTRUMENT", {"instrument": "HIRIC", "state": "ON"})
    count = model.housekeeping("cameras")["images_stored"]
    outcome = model.execute("HIRIC_IMAGE", image)
    assert outcome.ok and outcome.duration > 0
    assert model.housekeeping("cameras")["images_stored"] == count + 1
    slew = model.execute("SET_ATTITUDE_MODE", {"mode": "EARTH_POINT"})
    assert slew.ok and slew.duration > 0
    assert model.housekeeping("attitude")["aocs_mode"] == "EARTH_POINT"
    model.enter_safe_mode("COMMANDED")
    assert model.housekeeping("attitude")["aocs_mode"] == "SUN_SAFE"
    assert model.execute("SET_ATTITUDE_MODE", {"mode": "MARS_POINT"}).error_code == REFUSED_IN_MODE


def test_engine_valve_runaway_cuts_a_main_engine_burn_short():
    faults = FaultSet(["thermal-runaway:engine_valve=300@t=0"], seed=1)
    model, events = make(start=TIANWEN1_CAPTURE_UTC, faults=faults)   # at periapsis: lower the apoapsis
    outcome = model.execute("ORBIT_MANEUVER", {"engine": "MAIN_3000N", "ignition_time": 420, "delta_v": 40.0,
                                               "max_duration": 600})
    assert outcome.ok
    advance(model, outcome.duration, dt=1.0, faults=faults)
    anomaly = [a for e, a in events if e == "engine_anomaly"]
    assert anomaly and 0 < anomaly[0]["burn_elapsed"] < outcome.duration - 420
    prop = model.housekeeping("propulsion")
    assert prop["engine_state"] == "FAULT" and prop["burn_delta_v"] < 40.0
    assert SC.parameter("temp_engine_valve").classify(model.housekeeping("thermal")["temp_engine_valve"]) \
        == LimitState.CRITICAL
    again = model.execute("ORBIT_MANEUVER", {"engine": "MAIN_3000N", "ignition_time": 0, "delta_v": 1.0,
                                             "max_duration": 60})
    assert not again.ok
