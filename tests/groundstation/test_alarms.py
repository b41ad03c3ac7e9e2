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


def test_the_chains_screened_limit_check_raises_what_every_sample_through_its_alarm_raises():
    """LimitCheck screens settled alarms (numeric ranges in one comparison, enumerations on their raw
    codes) and runs the walk only where a sample leaves the nominal range: the transitions must be
    those of every sample through the alarm, batch after batch."""
    import construct as cs

    from groundstation.chain.limits import LimitCheck
    from groundstation.chain.logs import RateLimitedLog
    from groundstation.chain.stage import ChainEvents, DecodedGroup, SpacecraftState, StageContext, log
    from groundstation.metrics import Metrics
    from protocols.missions import registry
    from protocols.missions.model import HousekeepingPacket
    from protocols.parameters import Linear, Parameter, States

    mode = States({0: "OFF", 1: "IDLE", (2, 5): "SCIENCE", 6: "SAFE", 7: "FAULT"})
    definition = HousekeepingPacket("screen_test", apid=5, sid=1, subsystem="test", period=1.0, description="test",
                                    fields=["mode" / Parameter(cs.Int8ub, unit="state", description="mode",
                                                               calibration=mode,
                                                               limits=StateLimits(warning=["SAFE"],
                                                                                  critical=["FAULT"])),
                                            "temp" / Parameter(cs.Int16ub, unit="degC", description="temperature",
                                                               calibration=Linear(0.1, -40.0),
                                                               limits=Limits(warning=(-10, 40), critical=(-20, 60)))])
    seen: list[tuple] = []
    sc = registry().spacecraft("haiyang2d")
    context = StageContext(sc, sc.profile.frame, Metrics(), ChainEvents(
        on_event=lambda name, e: seen.append((e["parameter"], e["from"], e["to"]))), RateLimitedLog(log),
        SpacecraftState())
    check = LimitCheck(context)
    reference = {path: ParameterAlarm(param.limits, AlarmPolicy()) for path, param in definition.parameters()}
    expected: list[tuple] = []
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 8))
        nominal = rng.random() < 0.8
        raw = {"hk.mode": rng.choice([1, 2, 3, 5] if nominal else [0, 1, 6, 7, 8], n).astype(np.uint8),
               "hk.temp": rng.integers(400, 700, n).astype(np.uint16) if nominal
               else rng.integers(0, 1100, n).astype(np.uint16)}
        check.check(DecodedGroup(definition, raw, n, None), 0.0)
        for path, param in definition.parameters():
            for t in reference[path].update(param.calibration.to_eng_array(raw[path])):
                expected.append((path.split(".")[1], t.previous.name.lower(), t.state.name.lower()))
    assert seen == expected
    assert len(expected) > 20  # the walk did run: both kinds left and came back many times
