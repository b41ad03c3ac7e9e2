"""Chang'e-5 orbiter at Sun-Earth L1: attitude deadband, light time, station keeping, power margin."""
from __future__ import annotations

import itertools

import pytest

from flightsw.core.faults import FaultSet
from flightsw.missions.change5_orbiter import Change5OrbiterModel
from flightsw.missions.common import CONSTRAINT_VIOLATED, REFUSED_IN_MODE, event_recorder
from protocols.missions import builtin_registry

SC = builtin_registry().spacecraft("change5-orbiter")


def make(seed=4, faults=None):
    events: list = []
    model = Change5OrbiterModel(SC, seed=seed, start_utc=Change5OrbiterModel.DEFAULT_START_UTC,
                                emit=event_recorder(SC, events), faults=faults)
    return model, events


def advance(model, seconds, dt=10.0, faults=None):
    t, end = model.t, model.t + seconds
    while t < end - 1e-9:
        t += dt
        if faults is not None:
            faults.update(t)
        model.step(t, dt)


def test_attitude_held_within_the_deadband_by_thruster_pulses():
    model, _ = make()
    errors, pulses = [], []
    for _ in range(int(86_400 // 60)):
        advance(model, 60.0, dt=2.0)
        errors.append(model.housekeeping("attitude")["pointing_error"])
        pulses.append(model.housekeeping("propulsion")["thruster_pulses"])
    deadband = Change5OrbiterModel.DEADBAND_DEG
    noise = 4 * 0.002
    assert max(errors) <= deadband + noise
    assert max(errors) > 0.5 * deadband         # it drifts out to the deadband edges (a limit cycle)
    assert pulses[-1] > pulses[0]               # and pulses bring it back
    assert all(b >= a for a, b in itertools.pairwise(pulses))


def test_light_time_and_range_at_l1():
    model, _ = make()
    advance(model, 60.0)
    orbit = model.housekeeping("orbit")
    assert 1.0e6 < orbit["earth_distance"] < 2.0e6
    assert orbit["light_time"] == pytest.approx(orbit["earth_distance"] / 299_792.458, rel=1e-6)
    assert model.light_time_s() == pytest.approx(orbit["light_time"], rel=1e-6)
    # The Lissajous orbit moves the spacecraft hundreds of km per hour.
    first = (orbit["l1_x"], orbit["l1_y"], orbit["l1_z"])
    advance(model, 6 * 3600.0, dt=600.0)
    orbit = model.housekeeping("orbit")
    moved = sum((a - b) ** 2 for a, b in zip(first, (orbit["l1_x"], orbit["l1_y"], orbit["l1_z"]), strict=True)) ** 0.5
    assert 1_000 < moved < 10_000


def test_station_keeping_burns_propellant_and_resets_the_manoeuvre_clock():
    model, events = make()
    advance(model, 60.0)
    before = model.housekeeping("propulsion")["propellant_mass"]
    assert model.housekeeping("orbit")["days_since_maneuver"] > 20
    left = model.propellant_kg
    model.propellant_kg = 20.0   # nearly empty tanks: 20 m/s would need ~23 kg
    too_big = model.execute("STATION_KEEPING", {"ignition_time": 0, "delta_v": 20.0})
    assert not too_big.ok and too_big.error_code == CONSTRAINT_VIOLATED
    model.propellant_kg = left
    outcome = model.execute("STATION_KEEPING", {"ignition_time": 120, "delta_v": 0.5})  # 60 s from now
    assert outcome.ok and outcome.duration > 60
    advance(model, outcome.duration + 5, dt=1.0)
    done = [a for e, a in events if e == "station_keeping_done"]
    assert done and done[0]["delta_v"] == pytest.approx(0.5, abs=1e-3)
    assert model.housekeeping("propulsion")["propellant_mass"] == pytest.approx(before - done[0]["propellant_used"])
    assert model.housekeeping("orbit")["days_since_maneuver"] < 0.01
    model.enter_safe_mode("COMMANDED")
    assert model.execute("STATION_KEEPING", {"ignition_time": 0, "delta_v": 0.1}).error_code == REFUSED_IN_MODE


def test_power_margin_falls_when_earth_pointing_tilts_the_arrays():
    model, _ = make()
    advance(model, 600.0)
    sun_margin = model.housekeeping("power")["power_margin"]
    outcome = model.execute("SET_ATTITUDE_MODE", {"mode": "EARTH_POINT"})
    assert outcome.ok and outcome.duration > 0
    advance(model, outcome.duration + 600.0)
    assert model.housekeeping("attitude")["aocs_mode"] == "EARTH_POINT"
    assert 0 < model.housekeeping("power")["power_margin"] < sun_margin


def test_thermal_runaway_on_the_transponder_is_seen_in_its_temperature():
    faults = FaultSet(["thermal-runaway:transponder=100@t=60"], seed=1)
    model, _ = make(faults=faults)
    advance(model, 4 * 3600.0, dt=30.0, faults=faults)
    temp = model.housekeeping("comms")["sband_temperature"]
    assert SC.parameter("sband_temperature").classify(temp).name == "CRITICAL"
