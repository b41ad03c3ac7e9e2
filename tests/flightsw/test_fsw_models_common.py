"""Every mission model against the mission database: housekeeping completeness, limits, determinism, commands.

Each model runs in its own default scenario (``DEFAULT_START_UTC``) at coarse
time steps; values are built into packets with the mission database and parsed
back, then classified with the parameters' own limits.
"""
from __future__ import annotations

import math
import time

import pytest

import flightsw.missions  # noqa: F401  (registers the models)
from flightsw.core.faults import FaultSet
from flightsw.missions.common import REFUSED_IN_MODE, RUNTIME_COMMANDS, event_recorder
from flightsw.model import MODELS, CommandOutcome, NotMine
from protocols.missions import builtin_registry
from protocols.parameters import LimitState

REGISTRY = builtin_registry()
NAMES = sorted(n for n in MODELS if n in REGISTRY)
#: One simulated day (a sol for Zhurong) per model, at this step.
DAY_S = {"zhurong": 88_775.0}
STEP_S = 30.0


def make(name: str, seed: int = 7, faults: FaultSet | None = None, events: list | None = None):
    cls = MODELS[name]
    sc = REGISTRY.spacecraft(name)
    # Every event the model raises must exist and its data fit the packet: the recorder builds each one.
    emit = event_recorder(sc, events if events is not None else [])
    return cls(sc, seed=seed, start_utc=cls.DEFAULT_START_UTC, emit=emit, faults=faults)


def run(model, seconds: float, dt: float = STEP_S, faults: FaultSet | None = None, every: float | None = None):
    """Step ``model`` for ``seconds``; yields the time every ``every`` seconds (after the step)."""
    t, next_sample = 0.0, 0.0
    while t < seconds - 1e-9:
        t += dt
        if faults is not None:
            faults.update(t)
        model.step(t, dt)
        if every is not None and t >= next_sample:
            next_sample = t + every
            yield t


def sample(model) -> dict[str, dict]:
    """Every housekeeping packet built with the mission database and parsed back (engineering values)."""
    out = {}
    for packet in model.spacecraft.housekeeping:
        values = model.housekeeping(packet.name)
        parsed = packet.parse(packet.build(values)).hk
        out[packet.name] = {k: v for k, v in parsed.items() if not k.startswith("_")}
    return out


def violations(model, parsed: dict[str, dict]) -> list[str]:
    found = []
    for packet in model.spacecraft.housekeeping:
        for path, param in packet.parameters():
            leaf = path.removeprefix("hk.")
            state = param.classify(parsed[packet.name][leaf])
            if state != LimitState.NOMINAL:
                found.append(f"{packet.name}.{leaf}={parsed[packet.name][leaf]!r} {state.name}")
    return found


def test_every_spacecraft_of_the_database_has_a_model():
    assert set(REGISTRY.names) <= set(MODELS), set(REGISTRY.names) - set(MODELS)
    for name, cls in MODELS.items():
        if name in REGISTRY:
            assert cls.spacecraft_name == name


@pytest.mark.parametrize("name", NAMES)
def test_every_housekeeping_packet_builds_and_parses_with_every_field(name):
    model = make(name)
    checked = 0
    for _ in run(model, 3 * 3600.0, dt=60.0, every=3600.0):
        for packet in model.spacecraft.housekeeping:
            values = model.housekeeping(packet.name)
            wanted = {path.removeprefix("hk.") for path, _ in packet.parameters()}
            assert set(values) == wanted, f"{packet.name}: {set(values) ^ wanted}"
            parsed = packet.parse(packet.build(values)).hk
            for field, value in values.items():
                if isinstance(value, str):
                    assert parsed[field] == value
                else:
                    assert math.isfinite(value)
                    assert parsed[field] == pytest.approx(value, abs=packet_resolution(packet, field))
            checked += 1
    assert checked == 3 * len(model.spacecraft.housekeeping)


def packet_resolution(packet, field: str) -> float:
    for path, param in packet.parameters():
        if path == f"hk.{field}":
            return max(param.calibration.resolution(), 1e-6) * 0.51 + 1e-9
    raise KeyError(field)


@pytest.mark.parametrize("name", NAMES)
def test_nominal_day_has_no_limit_violation(name):
    model = make(name)
    problems: dict[str, float] = {}
    for t in run(model, DAY_S.get(name, 86_400.0), every=600.0):
        for problem in violations(model, sample(model)):
            problems.setdefault(problem.split("=")[0], t)
    assert not problems, problems


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_values_other_seed_other_values(name):
    def trace(seed):
        model = make(name, seed=seed)
        return [sample(model) for _ in run(model, 2 * 3600.0, dt=60.0, every=1800.0)]

    first, again, other = trace(3), trace(3), trace(4)
    assert first == again
    assert first != other


@pytest.mark.parametrize("name", NAMES)
def test_runtime_commands_are_not_mine(name):
    model = make(name)
    for command in RUNTIME_COMMANDS:
        with pytest.raises(NotMine):
            model.execute(command, {})


@pytest.mark.parametrize("name", NAMES)
def test_instrument_power_follows_the_command_and_is_refused_in_safe_mode(name):
    events: list = []
    model = make(name, events=events)
    sc = model.spacecraft
    inst = next((i for i in sc.instruments if not model.instruments[i.name].on), sc.instruments[0])
    packet = next(p for p in sc.housekeeping if any(path == f"hk.{inst.power_parameter}" for path, _ in p.parameters()))
    if model.instruments[inst.name].on:
        assert model.execute("POWER_INSTRUMENT", {"instrument": inst.name, "state": "OFF"}).ok
        assert model.housekeeping(packet.name)[inst.power_parameter] == "OFF"
    volume_off = model.science_bits(60.0)
    outcome = model.execute("POWER_INSTRUMENT", {"instrument": inst.name, "state": "ON"})
    assert isinstance(outcome, CommandOutcome) and outcome.ok
    assert model.housekeeping(packet.name)[inst.power_parameter] == "ON"
    assert ("instrument_power_changed", {"instrument": inst.name, "state": "ON"}) in events
    assert model.science_bits(60.0) > volume_off  # an instrument that is on produces data
    list(run(model, 600.0, dt=10.0))
    model.enter_safe_mode("COMMANDED")
    assert model.mode == "SAFE"
    assert model.housekeeping(packet.name)[inst.power_parameter] == "OFF"
    assert not any(i.on for i in model.instruments.values())
    refused = model.execute("POWER_INSTRUMENT", {"instrument": inst.name, "state": "ON"})
    assert not refused.ok and refused.error_code == REFUSED_IN_MODE
    model.exit_safe_mode()
    assert model.execute("POWER_INSTRUMENT", {"instrument": inst.name, "state": "ON"}).ok


#: A thermal node of each model and the housekeeping parameter that reads it.
RUNAWAY = {
    "zhurong": ("electronics_box", "thermal", "temp_electronics_box", 40.0),
    "tianwen1": ("hiric_optics", "thermal", "temp_hiric_optics", 60.0),
    "change5-orbiter": ("transponder", "thermal", "temp_transponder", 40.0),
    "change5-lander": ("drill_motor", "thermal", "temp_drill_motor", 40.0),
    "haiyang2d": ("radiometer_receiver", "thermal", "temp_radiometer_receiver", 20.0),
    "ilrs-lander": ("electronics_cabin", "thermal", "temp_electronics_cabin", 120.0),
}


@pytest.mark.parametrize("name", NAMES)
def test_thermal_runaway_drives_a_temperature_into_its_critical_limit(name):
    node, packet, field, power = RUNAWAY[name]
    faults = FaultSet([f"thermal-runaway:{node}={power}@t=600"], seed=1)
    model = make(name, faults=faults)
    param = model.spacecraft.parameter(field)
    states = []
    for _ in run(model, 3 * 86400.0, dt=60.0, faults=faults, every=1800.0):
        states.append(param.classify(model.housekeeping(packet)[field]))
        if states[-1] == LimitState.CRITICAL:
            break
    assert states[0] == LimitState.NOMINAL
    assert states[-1] == LimitState.CRITICAL


@pytest.mark.parametrize("name", NAMES)
def test_step_and_housekeeping_are_cheap(name):
    model = make(name)
    list(run(model, 600.0, dt=1.0))
    n = 2000
    start = time.perf_counter()
    for i in range(n):
        model.step(600.0 + i + 1.0, 1.0)
    per_step = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for packet in model.spacecraft.housekeeping:
        model.housekeeping(packet.name)
    per_hk = (time.perf_counter() - start) / len(model.spacecraft.housekeeping)
    # Generous bounds for a loaded CI machine; typical figures are in docs/EMULATOR.md.
    assert per_step < 2e-3 and per_hk < 2e-3, (per_step, per_hk)
