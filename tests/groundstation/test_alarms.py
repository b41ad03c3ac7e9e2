"""Alarms: transitions at the right sample, persistence and hysteresis stop flapping, states from enumerations."""
from __future__ import annotations

import numpy as np
import pytest

from groundstation.alarms import AlarmPolicy, ParameterAlarm, override_limits
from protocols.parameters import Limits, LimitState, StateLimits

VOLTS = Limits(warning=(26.0, 33.0), critical=(24.0, 34.0))
N, W, C = LimitState.NOMINAL, LimitState.WARNING, LimitState.CRITICAL


def test_nominal_batch_makes_no_transition():
    alarm = ParameterAlarm(VOLTS)
    assert alarm.update(np.full(1000, 28.0)) == []
    assert alarm.state is N


def test_transitions_up_and_down_at_the_sample_that_crossed():
    alarm = ParameterAlarm(VOLTS)
    got = alarm.update(np.array([28.0, 25.5, 23.0, 25.0, 30.0]))
    assert [(t.index, t.previous, t.state) for t in got] == [(1, N, W), (2, W, C), (3, C, W), (4, W, N)]
    assert alarm.state is N


def test_persistence_ignores_a_single_spike():
    alarm = ParameterAlarm(VOLTS, AlarmPolicy(persistence=3))
    assert alarm.update(np.array([28, 23, 28, 28, 23, 23])) == []
    got = alarm.update(np.array([23.0]))  # third in a row, carried across batches
    assert [(t.index, t.state) for t in got] == [(0, C)]


def test_hysteresis_stops_flapping_on_the_limit():
    noisy = 33.0 + np.array([0.05, -0.05, 0.04, -0.03, 0.05, -0.05, -0.6])
    plain = ParameterAlarm(VOLTS)
    assert len(plain.update(noisy)) == 6
    damped = ParameterAlarm(VOLTS, AlarmPolicy(hysteresis=0.5))
    got = damped.update(noisy)
    assert [(t.index, t.state) for t in got] == [(0, W), (6, N)]


def test_state_limits():
    alarm = ParameterAlarm(StateLimits(warning={"DEGRADED"}, critical={"SAFE"}))
    got = alarm.update(np.array(["NOMINAL", "SAFE", "DEGRADED", "NOMINAL"]))
    assert [t.state for t in got] == [C, W, N]


def test_overrides_replace_only_what_is_given():
    limits = override_limits(VOLTS, warning=(27.0, 32.0))
    assert limits.warning == (27.0, 32.0) and limits.critical == (24.0, 34.0)
    with pytest.raises(ValueError):
        AlarmPolicy(persistence=0)
