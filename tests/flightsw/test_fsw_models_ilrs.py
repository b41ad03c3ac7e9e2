"""ILRS lander: through a lunar night on the RTG, heater loop and battery; geophysics commands."""
from __future__ import annotations

import pytest

from flightsw.missions.common import REFUSED_IN_MODE, event_recorder
from flightsw.missions.ilrs_lander import IlrsLanderModel
from protocols.missions import builtin_registry
from protocols.parameters import LimitState

SC = builtin_registry().spacecraft("ilrs-lander")


def make(seed=11):
    events: list = []
    model = IlrsLanderModel(SC, seed=seed, start_utc=IlrsLanderModel.DEFAULT_START_UTC,
                            emit=event_recorder(SC, events))
    return model, events


def advance(model, seconds, dt=60.0):
    t, end = model.t, model.t + seconds
    while t < end - 1e-9:
        t += dt
        model.step(t, dt)


@pytest.fixture(scope="module")
def lunation():
    """A whole synodic month from mid-morning: samples of power and thermal every 3 hours."""
    model, events = make()
    rows = []
    for _ in range(int(30 * 86400 // 10800)):
        advance(model, 10800.0, dt=600.0)
        rows.append({**model.housekeeping("power"), **model.housekeeping("thermal"),
                     **model.housekeeping("geophysics"), **model.housekeeping("environment")})
    return model, events, rows


def test_the_station_sleeps_through_the_lunar_night_and_wakes_at_dawn(lunation):
    _, events, rows = lunation
    names = [e for e, _ in events]
    assert names.count("lunar_night_entered") == 1 and names.count("dawn_wake") == 1
    assert names.index("lunar_night_entered") < names.index("dawn_wake")
    wake = next(a for e, a in events if e == "dawn_wake")
    assert 300 < wake["night_hours"] < 500          # ~60 % of a lunation at 85 S
    assert wake["min_cabin_temperature"] > -20.0
    modes = [r["station_mode"] for r in rows]
    assert modes[0] == "DAY_NOMINAL" and modes[-1] == "DAY_NOMINAL"
    assert {"DUSK", "NIGHT_SURVIVAL", "DAWN_WAKE"} <= set(modes)


def test_night_survival_keeps_the_station_in_limits(lunation):
    _, _, rows = lunation
    night = [r for r in rows if r["station_mode"] == "NIGHT_SURVIVAL"]
    assert len(night) > 20
    for r in night:
        if r["sun_elevation"] < 0:
            assert r["temp_regolith_surface"] < -165.0           # -170 degC regolith outside
        assert r["rhu_loop_valve"] == "OPEN" and r["rhu_heat"] > 100
        assert r["sun_elevation"] < 1.0   # below the wake elevation
        assert r["rtg_power"] > 100
        assert r["neutron_power"] == "OFF" and r["dust_power"] == "OFF" and r["seismometer_power"] == "ON"
        for field in ("temp_electronics_cabin", "battery_temperature", "temp_rhu_loop", "temp_seismometer_vault",
                      "battery_soc", "battery_voltage", "bus_voltage", "rtg_power"):
            assert SC.parameter(field).classify(r[field]) == LimitState.NOMINAL, (field, r[field])


def test_instruments_come_back_after_dawn(lunation):
    model, _, rows = lunation
    assert rows[-1]["neutron_power"] == "ON" and rows[-1]["dust_power"] == "ON"


def test_instruments_stay_off_in_the_night():
    model, _ = make()
    advance(model, 14 * 86400.0, dt=600.0)
    assert model.housekeeping("power")["station_mode"] == "NIGHT_SURVIVAL"
    refused = model.execute("POWER_INSTRUMENT", {"instrument": "PANORAMIC_CAMERA", "state": "ON"})
    assert not refused.ok and refused.error_code == REFUSED_IN_MODE


def test_heat_probe_hammers_to_depth_and_measures_heat_flow():
    model, _ = make()
    hammer = {"strokes": 600, "max_depth": 0.5}
    assert model.execute("HEAT_PROBE_HAMMER", hammer).error_code == REFUSED_IN_MODE
    model.execute("POWER_INSTRUMENT", {"instrument": "HEAT_FLOW_PROBE", "state": "ON"})
    outcome = model.execute("HEAT_PROBE_HAMMER", hammer)
    assert outcome.ok and outcome.duration == pytest.approx(600 * 3.5)
    advance(model, 600.0, dt=10.0)
    part = model.housekeeping("geophysics")["heat_probe_depth"]
    assert 0.05 < part < 0.5
    advance(model, outcome.duration, dt=10.0)
    geo = model.housekeeping("geophysics")
    assert geo["heat_probe_depth"] == pytest.approx(0.5, abs=0.002)
    assert 10 < geo["heat_flow"] < 30                       # Apollo 15/17: 21 and 16 mW/m2


def test_heater_setpoint_moves_the_vault_temperature():
    model, _ = make()
    advance(model, 6 * 3600.0)
    cold = model.housekeeping("thermal")["temp_seismometer_vault"]
    assert model.execute("SET_HEATER_SETPOINT", {"heater": "SEISMOMETER", "setpoint": 5.0}).ok
    advance(model, 12 * 3600.0)
    thermal = model.housekeeping("thermal")
    assert thermal["temp_seismometer_vault"] > cold + 5
    assert thermal["heater_seismometer_duty"] > 10


def test_moonquakes_over_the_trigger_are_reported():
    model, events = make(seed=3)
    assert model.execute("SEISMOMETER_GAIN", {"gain": "X16", "trigger": 40.0}).ok
    advance(model, 5 * 86400.0, dt=30.0)
    quakes = [a for e, a in events if e == "moonquake_detected"]
    assert quakes and all(q["peak_velocity"] >= 40.0 for q in quakes)
