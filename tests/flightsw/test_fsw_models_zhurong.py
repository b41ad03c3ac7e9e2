"""Zhurong: driving, the sol's power cycle, hibernation thresholds, battery fade."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flightsw.core.faults import FaultSet
from flightsw.missions.common import REFUSED_IN_MODE, RESOURCE_BUSY, event_recorder
from flightsw.missions.zhurong import ZhurongModel, odometer_at
from flightsw.physics.rover import ZHURONG_TOTAL_ODOMETRY_M
from protocols.missions import builtin_registry
from protocols.parameters import LimitState

SC = builtin_registry().spacecraft("zhurong")
SOL = 88_775.244


def make(seed=5, faults=None, start=ZhurongModel.DEFAULT_START_UTC):
    events: list = []
    model = ZhurongModel(SC, seed=seed, start_utc=start, faults=faults,
                  emit=event_recorder(SC, events))
    return model, events


def advance(model, seconds, dt=10.0, faults=None):
    t = model.t
    end = t + seconds
    while t < end - 1e-9:
        t += dt
        if faults is not None:
            faults.update(t)
        model.step(t, dt)


def test_odometer_starts_from_the_public_total_by_date():
    assert odometer_at(ZhurongModel.DEFAULT_START_UTC) == 0.0
    assert odometer_at(datetime(2022, 6, 1, tzinfo=UTC)) == pytest.approx(ZHURONG_TOTAL_ODOMETRY_M)
    mid, _ = make(start=datetime(2021, 11, 20, tzinfo=UTC))
    assert 800 < mid.housekeeping("mobility")["odometer"] < 1100


def test_drive_grows_odometry_wheel_currents_vary_and_completion_is_reported():
    model, events = make()
    advance(model, 60.0)
    parked = model.housekeeping("mobility")
    assert parked["rover_mode"] == "STANDBY" and parked["drive_speed"] == 0.0
    outcome = model.execute("DRIVE", {"distance": 12.0, "heading": 45.0, "speed": 40.0, "mode": "NORMAL"})
    assert outcome.ok and outcome.duration > 12.0 / (40.0 / 3600.0)
    currents = []
    for _ in range(60):
        advance(model, 30.0)
        hk = model.housekeeping("mobility")
        if hk["rover_mode"] == "DRIVING" and hk["drive_speed"] > 0:
            currents.append(hk["wheel_lf_current"])
    assert len(set(round(c, 3) for c in currents)) > 5  # terrain and slope change the load
    assert min(currents) > 0.2
    hk = model.housekeeping("mobility")
    assert hk["odometer"] == pytest.approx(12.0, abs=1e-6) or any(e == "hazard_detected" for e, _ in events)
    assert hk["rover_mode"] in ("STANDBY", "HAZARD_STOP")
    assert hk["wheel_lf_current"] < 0.05
    done = [a for e, a in events if e == "drive_completed"]
    assert done and done[0]["distance"] == pytest.approx(12.0, abs=1e-6)
    assert abs(hk["pose_east"]) > 1 and abs(hk["pose_north"]) > 1
    assert hk["heading"] == pytest.approx(45.0, abs=1e-6)


def test_stop_halts_the_drive_and_a_second_drive_waits():
    model, _ = make()
    assert model.execute("DRIVE", {"distance": 50.0, "heading": 0.0, "speed": 100.0, "mode": "CRAB"}).ok
    busy = model.execute("DRIVE", {"distance": 5.0, "heading": 0.0, "speed": 40.0, "mode": "NORMAL"})
    assert not busy.ok and busy.error_code == RESOURCE_BUSY
    advance(model, 300.0)
    moved = model.housekeeping("mobility")["odometer"]
    assert 0 < moved < 50
    assert model.execute("STOP", {}).ok
    advance(model, 300.0)
    hk = model.housekeeping("mobility")
    assert hk["odometer"] == moved and hk["drive_speed"] == 0.0 and hk["rover_mode"] == "STANDBY"


def test_mobility_off_in_safe_mode_refuses_drives():
    model, _ = make()
    model.enter_safe_mode("COMMANDED")
    outcome = model.execute("DRIVE", {"distance": 5.0, "heading": 0.0, "speed": 40.0, "mode": "NORMAL"})
    assert not outcome.ok and outcome.error_code == REFUSED_IN_MODE
    assert model.housekeeping("mobility")["rover_mode"] == "SAFE"


def test_safe_mode_stops_a_drive_under_way():
    model, _ = make()
    model.execute("DRIVE", {"distance": 40.0, "heading": 90.0, "speed": 40.0, "mode": "NORMAL"})
    advance(model, 600.0)
    model.enter_safe_mode("COMMANDED")
    odo = model.rover.odometer_m
    advance(model, 600.0)
    assert model.rover.odometer_m == odo and not model.rover.driving


def test_soc_follows_the_sun():
    model, _ = make()
    noon_current, night_current, socs = [], [], []
    for _ in range(int(SOL // 1800)):
        advance(model, 1800.0, dt=30.0)
        power = model.housekeeping("power")
        socs.append(power["battery_soc"])
        if model.last_sun.elevation_deg > 40:
            noon_current.append((power["battery_current"], power["array_power"]))
        elif not model.last_sun.lit:
            night_current.append((power["battery_current"], power["array_power"]))
    assert noon_current and night_current
    assert all(array > 30 and current > -0.05 for current, array in noon_current)  # noon: arrays carry the load
    assert all(array == 0 and current < 0 for current, array in night_current)  # night: battery discharges
    assert max(socs) - min(socs) > 15  # a real sol cycle, not a flat line
    assert min(socs) > 40


def test_battery_degradation_pushes_soc_into_critical():
    faults = FaultSet(["battery-degradation:rate=0.6,floor=0.2"], seed=1)
    model, events = make(faults=faults)
    soc_param = SC.parameter("battery_soc")
    worst = LimitState.NOMINAL
    first = None
    for _ in range(int(3 * SOL // 1800)):
        advance(model, 1800.0, dt=30.0, faults=faults)
        state = soc_param.classify(model.housekeeping("power")["battery_soc"])
        first = state if first is None else first
        worst = max(worst, state)
    assert first == LimitState.NOMINAL and worst == LimitState.CRITICAL
    names = [e for e, _ in events]
    assert "battery_low" in names and "hibernation_entered" in names
    assert ("safe_mode_entered", {"reason": "UNDERVOLTAGE"}) in events


def test_instruments_commands_need_power_and_count_their_products():
    model, _ = make()
    shot = {"target_distance": 3.0, "shots": 30, "with_swir": "YES"}
    assert model.execute("MARSCODE_LIBS", shot).error_code == REFUSED_IN_MODE
    assert model.execute("POWER_INSTRUMENT", {"instrument": "MARSCODE", "state": "ON"}).ok
    before = model.housekeeping("marscode")["laser_shots"]
    outcome = model.execute("MARSCODE_LIBS", shot)
    assert outcome.ok and outcome.duration > 0
    assert model.housekeeping("marscode")["marscode_mode"] == "LIBS"
    assert model.housekeeping("marscode")["laser_shots"] == before + 30
    advance(model, outcome.duration + 10)
    assert model.housekeeping("marscode")["marscode_mode"] == "STANDBY"
    image = {"camera": "NATECAM_STEREO", "filter": "PAN", "exposure": 20.0, "yaw": 30.0, "pitch": -10.0}
    assert not model.execute("TAKE_IMAGE", image).ok
    model.execute("POWER_INSTRUMENT", {"instrument": "NATECAM", "state": "ON"})
    images = model.housekeeping("cameras")["images_stored"]
    assert model.execute("TAKE_IMAGE", image).ok
    cams = model.housekeeping("cameras")
    assert cams["images_stored"] == images + 2 and cams["mast_yaw"] == 30.0
    sounding = model.execute("ROPER_SOUNDING", {"channels": "DUAL", "duration": 120, "gain": 40.0})
    assert sounding.ok and model.housekeeping("roper")["roper_mode"] == "DUAL"
    advance(model, 200.0)
    assert model.housekeeping("roper")["roper_mode"] == "LOW_FREQUENCY"


def test_relay_passes_drain_the_store():
    model, _ = make()
    sessions = set()
    for _ in range(int(9 * 3600 // 60)):
        advance(model, 60.0)
        sessions.add(model.housekeeping("comms")["relay_session"])
    assert "TRANSFER" in sessions and "IDLE" in sessions
    assert model.housekeeping("comms")["relay_volume"] > 0


def test_switched_off_climate_station_holds_its_last_reading():
    model, events = make()
    advance(model, 600.0)
    last = model.housekeeping("mcs")
    assert model.execute("POWER_INSTRUMENT", {"instrument": "MCS", "state": "OFF"}).ok
    advance(model, 3 * 3600.0, dt=60.0)
    held = model.housekeeping("mcs")
    assert held["mcs_power"] == "OFF"
    assert held["air_pressure"] == last["air_pressure"] and held["wind_speed"] == last["wind_speed"]
    assert ("instrument_power_changed", {"instrument": "MCS", "state": "OFF"}) in events
