"""Chang'e-5 lander: drilling into the buried layer, scooping, sealing the container; what is refused."""
from __future__ import annotations

import pytest

from flightsw.missions.change5_lander import CORE_KG_PER_M, Change5LanderModel
from flightsw.missions.common import CONSTRAINT_VIOLATED, REFUSED_IN_MODE, RESOURCE_BUSY, event_recorder
from protocols.missions import builtin_registry
from protocols.parameters import LimitState

SC = builtin_registry().spacecraft("change5-lander")


def make(seed=5):
    events: list = []
    model = Change5LanderModel(SC, seed=seed, start_utc=Change5LanderModel.DEFAULT_START_UTC,
                               emit=event_recorder(SC, events))
    return model, events


def advance(model, seconds, dt=10.0, sample=None):
    t, end = model.t, model.t + seconds
    rows = []
    while t < end - 1e-9:
        t += dt
        model.step(t, dt)
        if sample:
            rows.append(model.housekeeping(sample))
    return rows


def names(events):
    return [e for e, _ in events]


def test_a_shallow_core_is_drilled_to_its_target_and_reported():
    model, events = make()
    assert model.housekeeping("drill")["drill_state"] == "STOWED"
    outcome = model.execute("DRILL", {"target_depth": 0.5, "speed": 120.0})
    assert outcome.ok and outcome.duration > 0
    assert model.housekeeping("power")["surface_phase"] == "DRILLING"
    rows = advance(model, 3 * 3600.0, sample="drill")
    done = [a for e, a in events if e == "drilling_done"]
    assert len(done) == 1 and done[0]["depth"] == pytest.approx(0.5)
    assert done[0]["core_length"] == pytest.approx(0.45)
    drilling = [r for r in rows if r["drill_state"] == "DRILLING"]
    assert len(drilling) > 10
    depths = [r["drill_depth"] for r in drilling]
    assert depths == sorted(depths)  # the bit only goes down
    rates = [r["drill_penetration_rate"] for r in drilling]
    assert rates[0] > rates[-1] > 0  # harder with depth
    for r in drilling:
        for field in ("drill_torque", "drill_motor_current", "drill_speed"):
            assert SC.parameter(field).classify(r[field]) == LimitState.NOMINAL, (field, r[field])
    assert rows[-1]["drill_state"] == "DONE" and rows[-1]["drill_depth"] == pytest.approx(0.5)


def test_a_deep_core_stalls_on_the_layer_the_radar_sees():
    model, events = make()
    layer = model.housekeeping("payload")["radar_layer_depth"]
    assert 0.8 < layer < 1.7
    assert model.execute("DRILL", {"target_depth": 2.0, "speed": 150.0}).ok
    advance(model, 12 * 3600.0, dt=20.0)
    stalls = [a for e, a in events if e == "drill_stalled"]
    assert len(stalls) == 1 and "drilling_done" not in names(events)
    assert layer - 0.25 < stalls[0]["depth"] < layer + 0.05 and stalls[0]["torque"] > 22.0
    drill = model.housekeeping("drill")
    assert drill["drill_state"] == "STALLED" and drill["drill_depth"] < 2.0
    assert SC.parameter("drill_state").classify("STALLED") == LimitState.WARNING


def test_scoops_then_seal_the_sample_container_with_the_core():
    model, events = make()
    assert model.execute("DRILL", {"target_depth": 0.4, "speed": 120.0}).ok
    advance(model, 3 * 3600.0, dt=20.0)
    busy = model.execute("SCOOP", {"site": "SITE_2", "scoops": 3})
    assert busy.ok
    refused = model.execute("DRILL", {"target_depth": 0.8, "speed": 120.0})
    assert not refused.ok and refused.error_code == RESOURCE_BUSY
    assert model.housekeeping("power")["surface_phase"] == "SCOOPING"
    advance(model, busy.duration + 30.0)
    scoops = [a for e, a in events if e == "scoop_delivered"]
    assert [s["site"] for s in scoops] == [2, 2, 2]
    masses = [s["sample_mass"] for s in scoops]
    assert masses == sorted(masses) and 0.3 < masses[-1] < 0.42
    arm = model.housekeeping("arm")
    assert arm["arm_state"] == "AT_CONTAINER" and arm["scoops_done"] == 3 and arm["scoop_state"] == "EMPTY"

    not_stowed = model.execute("SEAL_CONTAINER", {"force": 8000.0})
    assert not not_stowed.ok and not_stowed.error_code == CONSTRAINT_VIOLATED
    assert model.execute("STOW_ARM", {}).ok
    advance(model, 120.0)
    assert model.housekeeping("arm")["arm_state"] == "STOWED"
    seal = model.execute("SEAL_CONTAINER", {"force": 8000.0})
    assert seal.ok
    advance(model, seal.duration + 30.0)
    sealed = [a for e, a in events if e == "container_sealed"]
    assert len(sealed) == 1
    expected = masses[-1] + CORE_KG_PER_M * 0.36  # the scoops and the 0.36 m core
    assert sealed[0]["sample_mass"] == pytest.approx(expected, abs=1e-6)
    box = model.housekeeping("sample_container")
    assert box["seal_state"] == "SEALED" and box["core_in_container"] == "YES" and box["seal_force"] == 8000.0
    assert box["sample_mass"] == pytest.approx(expected, abs=1e-6)
    assert SC.parameter("container_pressure").classify(box["container_pressure"]) == LimitState.NOMINAL
    assert model.housekeeping("power")["surface_phase"] == "SAMPLE_TRANSFERRED"
    for command, args in (("DRILL", {"target_depth": 1.0, "speed": 120.0}), ("SCOOP", {"site": "SITE_1", "scoops": 1}),
                          ("SEAL_CONTAINER", {"force": 8000.0})):
        again = model.execute(command, args)
        assert not again.ok and again.error_code == CONSTRAINT_VIOLATED, command


def test_an_empty_container_is_not_sealed_and_safe_mode_stops_the_drill():
    model, events = make()
    empty = model.execute("SEAL_CONTAINER", {"force": 8000.0})
    assert not empty.ok and empty.error_code == CONSTRAINT_VIOLATED
    assert model.execute("DRILL", {"target_depth": 2.0, "speed": 120.0}).ok
    advance(model, 900.0)
    depth = model.housekeeping("drill")["drill_depth"]
    assert depth > 0
    model.enter_safe_mode("COMMANDED")
    advance(model, 1800.0)
    drill = model.housekeeping("drill")
    assert drill["drill_state"] == "STALLED" and drill["drill_depth"] == pytest.approx(depth)
    assert model.housekeeping("power")["surface_phase"] == "SAFE"
    refused = model.execute("SCOOP", {"site": "SITE_1", "scoops": 1})
    assert not refused.ok and refused.error_code == REFUSED_IN_MODE
