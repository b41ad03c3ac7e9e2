"""Limits classify boundary values correctly, for every parameter of every mission."""
from __future__ import annotations

import numpy as np
import pytest

from protocols.missions import builtin_registry
from protocols.parameters import Limits, LimitState, StateLimits

REGISTRY = builtin_registry()
PARAMS = REGISTRY.parameters()
NUMERIC = [pytest.param(i, id=i.qualified_name) for i in PARAMS if isinstance(i.limits, Limits)]
STATES = [pytest.param(i, id=i.qualified_name) for i in PARAMS if isinstance(i.limits, StateLimits)]


def expected(limits: Limits, value: float) -> LimitState:
    """The documented rule, written out independently of Limits.classify."""
    def inside(bounds):
        lo, hi = bounds
        return (lo is None or value >= lo) and (hi is None or value <= hi)
    if limits.critical and not inside(limits.critical):
        return LimitState.CRITICAL
    if limits.warning and not inside(limits.warning):
        return LimitState.WARNING
    return LimitState.NOMINAL


@pytest.mark.parametrize("info", NUMERIC)
def test_numeric_boundaries(info):
    limits = info.limits
    bounds = [b for pair in (limits.warning or (None, None), limits.critical or (None, None)) for b in pair
              if b is not None]
    assert bounds, f"{info.qualified_name} has limits without a single bound"
    for bound in bounds:
        step = max(abs(bound) * 1e-9, 1e-9)
        for value in (bound - step, bound, bound + step):
            want = expected(limits, value)
            assert info.parameter.classify(value) == want, (info.qualified_name, value)
            assert limits.classify_array(np.array([value]))[0] == want
    # On a bound is still the inner state: a warning bound itself is nominal.
    for bound in [b for b in (limits.warning or ()) if b is not None]:
        assert info.parameter.classify(bound) is LimitState.NOMINAL


@pytest.mark.parametrize("info", STATES)
def test_state_limits_classify_every_state(info):
    limits, cal = info.limits, info.calibration
    for name in cal.codes:
        want = (LimitState.CRITICAL if name in limits.critical else
                LimitState.WARNING if name in limits.warning else LimitState.NOMINAL)
        assert info.parameter.classify(name) == want
    assert limits.classify_array(np.array(list(cal.codes))).tolist() == [
        info.parameter.classify(n) for n in cal.codes]


def test_boundary_values_through_the_packet():
    """Decode real bytes: Zhurong battery at 24.000 V is a warning, one raw step lower is critical."""
    sc = REGISTRY.spacecraft("zhurong")
    power = sc.housekeeping_packet("power")
    values = {path.split(".", 1)[1]: (prm.calibration.to_eng(0) if not prm.calibration.is_state
                                      else next(iter(prm.calibration.codes)))
              for path, prm in power.parameters()}
    param = REGISTRY.parameter("zhurong", "battery_voltage").parameter
    for volts, state in ((25.0, LimitState.NOMINAL), (24.0, LimitState.WARNING), (23.998, LimitState.CRITICAL),
                         (33.6, LimitState.WARNING), (33.602, LimitState.CRITICAL)):
        parsed = power.parse(power.build({**values, "battery_voltage": volts}))
        assert param.classify(parsed.hk.battery_voltage) is state, volts
        assert power.limit_states(parsed)["hk.battery_voltage"] is state


def test_limit_outside_field_range_is_an_error():
    from protocols.errors import DefinitionError
    from protocols.missions.common import U8, param
    from protocols.missions.model import HousekeepingPacket
    from protocols.parameters import Linear

    from .test_definitions import make_spacecraft

    hk = HousekeepingPacket("bad", apid=0x10, sid=1, subsystem="power", period=1, description="x", fields=[
        "soc" / param(U8, "%", "State of charge", Linear(0.5), warn=(0, 100), crit=(0, 200))])
    with pytest.raises(DefinitionError, match=r"'bad'.*'hk.soc'.*critical limit 200 lies outside"):
        make_spacecraft(housekeeping=(hk,))
