"""Calibration adapters: scalar and vector forms agree, round trips hold, limits classify boundaries."""
from __future__ import annotations

import construct as cs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import DefinitionError, ProtocolError
from protocols.parameters import (
    Limits,
    LimitState,
    Linear,
    Parameter,
    Polynomial,
    StateLimits,
    States,
    parameters_of,
)

VOLTAGE = Parameter(cs.Int16ub, unit="V", description="bus voltage", calibration=Linear(0.001),
                    limits=Limits(warning=(26, 33), critical=(24, 34)))
MODE = Parameter(cs.Int8ub, unit="state", description="mode", calibration=States({0: "OFF", 1: "ON", 2: "SAFE"}),
                 limits=StateLimits(critical={"SAFE"}))
TEMP = Parameter(cs.Int16sb, unit="degC", description="temperature", calibration=Polynomial(-40, 0.01, 1e-7))
HK = cs.Struct("voltage" / VOLTAGE, "mode" / MODE, "temp" / TEMP,
               "bits" / cs.BitStruct("heater" / Parameter(cs.BitsInteger(3), unit="", description="heater"),
                                     "spare" / cs.BitsInteger(5)))


def test_build_and_parse_give_engineering_values():
    data = HK.build(dict(voltage=28.5, mode="SAFE", temp=0.0, bits=dict(heater=5, spare=0)))
    assert data[:3] == bytes([0x6F, 0x54, 0x02])
    parsed = HK.parse(data)
    assert parsed.voltage == pytest.approx(28.5)
    assert parsed.mode == "SAFE"
    assert parsed.bits.heater == 5
    assert abs(parsed.temp) <= TEMP.calibration.resolution()


def test_parameters_are_listed_in_wire_order_with_paths():
    assert [path for path, _ in parameters_of(HK)] == ["voltage", "mode", "temp", "bits.heater"]


@pytest.mark.parametrize("value,state", [(26, 0), (25.999, 1), (33, 0), (33.001, 1), (24, 1), (23.999, 2), (34.001, 2)])
def test_limit_boundaries(value, state):
    assert VOLTAGE.classify(value) == state
    assert VOLTAGE.limits.classify_array(np.array([value]))[0] == state


def test_state_limits():
    assert MODE.classify("SAFE") is LimitState.CRITICAL
    assert MODE.classify("ON") is LimitState.NOMINAL


def test_out_of_range_value_is_refused_with_field_name():
    with pytest.raises(ProtocolError, match="voltage"):
        HK.build(dict(voltage=70, mode="ON", temp=0, bits=dict(heater=0, spare=0)))


@given(st.integers(-32768, 32767))
def test_polynomial_round_trip_every_raw(raw):
    cal = TEMP.calibration
    assert cal.to_raw(cal.to_eng(raw)) == raw
    assert cal.to_raw_array(cal.to_eng_array(np.array([raw])))[0] == raw


@given(st.integers(0, 255))
def test_states_scalar_and_array_agree(raw):
    cal = MODE.calibration
    assert cal.to_eng_array(np.array([raw]))[0] == cal.to_eng(raw)
    assert cal.to_raw(cal.to_eng(raw)) == raw


@pytest.mark.parametrize("make", [
    lambda: Limits(warning=(10, 5)),
    lambda: Limits(warning=(0, 10), critical=(1, 9)),
    lambda: Polynomial(0, 1, -0.001).bind(__import__("protocols.parameters").parameters.raw_domain(cs.Int16ub)),
    lambda: Parameter(cs.Int8ub, unit="", description=""),
    lambda: Parameter(cs.Int8ub, unit="state", description="m", calibration=States({0: "A"}), limits=StateLimits(warning={"B"})),
])
def test_bad_definitions_are_rejected(make):
    with pytest.raises(DefinitionError):
        make()


def test_a_shared_calibration_is_bound_per_field():
    shared = Linear(0.5)
    wide = Parameter(cs.Int32sb, unit="m", description="wide", calibration=shared)
    narrow = Parameter(cs.Int8ub, unit="m", description="narrow", calibration=shared)
    assert wide.calibration is not narrow.calibration
    s = cs.Struct("a" / wide, "b" / narrow)
    assert s.parse(s.build(dict(a=-100.5, b=12.5))) == dict(a=-100.5, b=12.5)


def test_states_with_far_apart_codes_in_a_wide_field():
    cal = Parameter(cs.Int32ub, unit="state", description="mode word",
                    calibration=States({0: "IDLE", 0x7FFF0000: "ARMED", 0xFFFFFFFF: "FIRE"})).calibration
    raw = np.array([0, 0xFFFFFFFF, 5, 0x7FFF0000])
    assert cal.to_eng_array(raw).tolist() == ["IDLE", "FIRE", "UNDEFINED_5", "ARMED"]
    assert [cal.to_eng(int(r)) for r in raw] == cal.to_eng_array(raw).tolist()
