"""Faults by telecommand: SET_FAULT activates and clears a fault armed at start (--fault SPEC@cmd)."""
from __future__ import annotations

import pytest

from tests.flightsw.test_fsw_rt_core import Ground, make, send


def test_set_fault_activates_and_clears_an_armed_fault_and_telemetry_shows_it():
    rt = make(faults=["stuck:zhurong.power.battery_voltage=20@cmd"])
    ground = Ground(rt)
    ground.feed(rt.advance_to(60))
    before = [p.battery_voltage for p in ground.hk("power")]
    assert before and all(v != pytest.approx(20.0) for v in before)  # armed, not active

    request = send(rt, "SET_FAULT", seq=1, slot=0, state="ACTIVE")
    ground.feed(rt.advance_to(200))
    assert [s for s, _ in ground.verification(request)] == [1, 3, 7]
    assert "fault_activated" in ground.events()
    during = [p.battery_voltage for p in ground.hk("power")][len(before) + 1:]
    assert during and all(v == pytest.approx(20.0) for v in during)
    crit = rt.spacecraft.parameter("battery_voltage").limits.critical
    assert during[-1] < crit[0]  # the ground sees a critical limit violation

    cleared = send(rt, "SET_FAULT", seq=2, slot=0, state="CLEAR")
    ground.feed(rt.advance_to(400))
    assert [s for s, _ in ground.verification(cleared)] == [1, 3, 7]
    assert [p.battery_voltage for p in ground.hk("power")][-1] != pytest.approx(20.0)
    assert ground.events().count("fault_activated") == 1 and ground.events().count("fault_cleared") == 1


def test_set_fault_on_an_empty_slot_fails_with_constraint_violated():
    rt = make()
    ground = Ground(rt)
    rt.advance_to(1)
    request = send(rt, "SET_FAULT", seq=1, slot=3, state="ACTIVE")
    ground.feed(rt.advance_to(3))
    reports = ground.verification(request)
    assert [s for s, _ in reports] == [1, 4]
    code = int.from_bytes(reports[-1][1][:2], "big")
    from protocols.missions.common import EXECUTION_FAILURES
    assert EXECUTION_FAILURES[code] == "CONSTRAINT_VIOLATED"
