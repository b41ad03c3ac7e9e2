"""HY-2D: payload values along the orbit, instrument modes, eclipse cycling, orbit maintenance."""
from __future__ import annotations

import statistics
from datetime import UTC, datetime

import pytest

from flightsw.core.faults import FaultSet
from flightsw.missions.common import REFUSED_IN_MODE, event_recorder
from flightsw.missions.haiyang2d import Haiyang2dModel
from protocols.missions import builtin_registry
from protocols.parameters import LimitState

SC = builtin_registry().spacecraft("haiyang2d")


def make(seed=9, faults=None, start=Haiyang2dModel.DEFAULT_START_UTC):
    events: list = []
    model = Haiyang2dModel(SC, seed=seed, start_utc=start,
                           emit=event_recorder(SC, events), faults=faults)
    return model, events


def advance(model, seconds, dt=10.0, faults=None):
    t, end = model.t, model.t + seconds
    while t < end - 1e-9:
        t += dt
        if faults is not None:
            faults.update(t)
        model.step(t, dt)


@pytest.fixture(scope="module")
def track():
    """One day of payload samples along the ground track."""
    model, events = make()
    rows = []
    for _ in range(int(86_400 // 60)):
        advance(model, 60.0, dt=20.0)
        rows.append({**model.housekeeping("navigation"), **model.housekeeping("altimeter"),
                     **model.housekeeping("scatterometer"), **model.housekeeping("radiometer")})
    return rows, events


def band(rows, lo, hi, key):
    return [r[key] for r in rows if lo <= r["latitude"] < hi]


def test_ground_track_covers_66_degrees_at_970_km(track):
    rows, _ = track
    lats = [r["latitude"] for r in rows]
    assert min(lats) < -64 and max(lats) > 64 and max(abs(x) for x in lats) <= 66.01
    assert {r["longitude"] // 60 for r in rows} == {-3, -2, -1, 0, 1, 2}
    alts = [r["altitude"] for r in rows]
    assert 955 < min(alts) and max(alts) < 990 and max(alts) - min(alts) > 10   # flattening: higher near the poles
    assert rows[-1]["orbit_number"] - rows[0]["orbit_number"] in (13, 14)      # 104.5 min orbits


def test_sea_state_varies_with_latitude(track):
    rows, _ = track
    tropics_swh = statistics.mean(band(rows, -15, 15, "significant_wave_height"))
    southern_swh = statistics.mean(band(rows, -66, -45, "significant_wave_height"))
    assert southern_swh > tropics_swh + 1.5                      # the Southern Ocean's swell
    tropics_wet = statistics.mean(band(rows, -15, 15, "wet_path_delay"))
    polar_wet = statistics.mean(band(rows, 50, 67, "wet_path_delay") + band(rows, -67, -50, "wet_path_delay"))
    assert tropics_wet > polar_wet + 15                            # water vapour in the tropics
    ssh = [r["sea_surface_height"] for r in rows]
    assert max(ssh) - min(ssh) > 50                                # geoid relief along the track
    assert len({round(r["sigma0_ku"], 2) for r in rows}) > 100


def test_wind_follows_the_three_cell_circulation(track):
    rows, _ = track

    def easterly(d):
        return 20 <= d <= 160

    def westerly(d):
        return 200 <= d <= 340

    trades = band(rows, 8, 25, "wind_direction") + band(rows, -25, -8, "wind_direction")
    westerlies = band(rows, 40, 55, "wind_direction") + band(rows, -55, -40, "wind_direction")
    assert sum(map(easterly, trades)) > 0.8 * len(trades)
    assert sum(map(westerly, westerlies)) > 0.8 * len(westerlies)
    doldrums = statistics.mean(band(rows, -4, 4, "wind_speed"))
    roaring = statistics.mean(band(rows, -55, -40, "wind_speed"))
    assert roaring > doldrums + 3


def test_saa_crossings_are_reported(track):
    _, events = track
    saa = [a for e, a in events if e == "saa_entry"]
    assert 3 <= len(saa) <= 12
    assert saa[-1]["edac_errors"] > saa[0]["edac_errors"]


def test_altimeter_mode_reacquires_and_needs_power():
    model, _ = make()
    outcome = model.execute("ALTIMETER_MODE", {"mode": "TRACKING_KU"})
    assert outcome.ok and outcome.duration > 0
    assert model.housekeeping("altimeter")["altimeter_mode"] == "ACQUISITION"
    advance(model, outcome.duration + 2.0, dt=1.0)
    hk = model.housekeeping("altimeter")
    assert hk["altimeter_mode"] == "TRACKING_KU" and hk["significant_wave_height"] > 0
    model.execute("POWER_INSTRUMENT", {"instrument": "ALTIMETER", "state": "OFF"})
    refused = model.execute("ALTIMETER_MODE", {"mode": "TRACKING_KU_C"})
    assert not refused.ok and refused.error_code == REFUSED_IN_MODE


def test_scatterometer_spins_down_and_up():
    model, _ = make()
    down = model.execute("SCATTEROMETER_SPIN", {"rate": 0.0})
    assert down.ok and down.duration == pytest.approx(96.0, abs=1)
    advance(model, down.duration + 5.0, dt=1.0)
    hk = model.housekeeping("scatterometer")
    assert hk["antenna_spin_rate"] == 0.0 and hk["scatterometer_mode"] == "STANDBY" and hk["wind_speed"] == 0.0
    up = model.execute("SCATTEROMETER_SPIN", {"rate": 96.0})
    advance(model, up.duration + 5.0, dt=1.0)
    hk = model.housekeeping("scatterometer")
    assert hk["antenna_spin_rate"] == pytest.approx(96.0, abs=0.3) and hk["scatterometer_mode"] == "WIND"


def test_orbit_maintenance_raises_the_orbit():
    model, _ = make()
    advance(model, 10.0)
    before = model.altitude
    outcome = model.execute("ORBIT_MAINTENANCE", {"ignition_time": 100, "delta_v": 2.0})
    assert outcome.ok and outcome.duration > 90
    advance(model, outcome.duration + 5.0, dt=1.0)
    # dh = 2 a dv / v ~ 4 km for 2 m/s (plus the ellipsoid's change with latitude meanwhile).
    assert model.alt_offset_km == pytest.approx(2 * 7349.1 * 0.002 / 7.365, rel=0.01)
    assert model.housekeeping("attitude")["aocs_mode"] == "YAW_STEERING"
    assert abs(model.altitude - before) < 25


def test_battery_degradation_shows_in_the_eclipses():
    faults = FaultSet(["battery-degradation:rate=1.0,floor=0.2"], seed=1)
    model, events = make(faults=faults)
    soc = SC.parameter("battery_soc")
    worst, first = LimitState.NOMINAL, None
    for _ in range(int(86_400 // 120)):
        advance(model, 120.0, dt=20.0, faults=faults)
        state = soc.classify(model.housekeeping("power")["battery_soc"])
        first = state if first is None else first
        worst = max(worst, state)
    # 18-minute eclipses in June 2021: a fifth of the capacity still carries them, just below the warning.
    assert first == LimitState.NOMINAL and worst >= LimitState.WARNING
    assert any(e == "battery_low" for e, _ in events)
    assert model.housekeeping("scatterometer")["scatterometer_power"] == "OFF"  # shed on battery_low


def test_yaw_steering_keeps_the_wings_on_the_sun_at_high_beta():
    model, _ = make(start=datetime(2021, 5, 1, tzinfo=UTC))   # beta near 78 deg: no eclipses
    model.step(0.0, 0.0)
    socs, yaws = [], []
    for _ in range(int(86_400 // 600)):
        advance(model, 600.0, dt=20.0)
        socs.append(model.housekeeping("power")["battery_soc"])
        q = model.housekeeping("attitude")
        yaws.append(abs(q["attitude_q3"]))
    assert abs(model.beta) > 1.2
    assert min(socs) > 80                        # a one-axis wing at 78 deg beta alone would give 20 %
    assert max(yaws) > 0.3                       # the spacecraft yaws a long way to get there
