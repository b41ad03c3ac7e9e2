"""Fault grammar (good and bad specs), fault effects, activation and determinism."""
from __future__ import annotations

import statistics

import pytest

from flightsw.core.faults import FaultSet, FaultSpecError, parse_duration, parse_fault
from flightsw.core.msgids import EVENT_FAULT_ACTIVATED, EVENT_FAULT_CLEARED

# --------------------------------------------------------------------------- grammar: good specs


@pytest.mark.parametrize("text, kind, target, params, start, duration", [
    ("stuck:zhurong.power.battery_voltage@t=60", "stuck", "zhurong.power.battery_voltage", {"value": None}, 60.0, None),
    ("stuck:a.b=27.5", "stuck", "a.b", {"value": 27.5}, 0.0, None),
    ("noise:zhurong.thermal.*=0.5", "noise", "zhurong.thermal.*", {"sigma": 0.5}, 0.0, None),
    ("noise:x, sigma=2", "noise", "x", {"sigma": 2.0}, 0.0, None),
    ("bias:hy2d.aocs.gyro_x=-0.01@t=2m", "bias", "hy2d.aocs.gyro_x", {"value": -0.01}, 120.0, None),
    ("battery-degradation:rate=0.02", "battery-degradation", None, {"rate": 0.02, "floor": 0.2}, 0.0, None),
    ("thermal-runaway:battery_pack", "thermal-runaway", "battery_pack", {"power": 10.0}, 0.0, None),
    ("thermal-runaway:battery_pack=25@t=1h,for=30m", "thermal-runaway", "battery_pack", {"power": 25.0}, 3600.0, 1800.0),
    ("safe-mode@t=120", "safe-mode", None, {}, 120.0, None),
    ("drop-frames:p=0.2", "drop-frames", None, {"p": 0.2}, 0.0, None),
    ("corrupt-frames:p=0.01", "corrupt-frames", None, {"p": 0.01, "bits": 1.0}, 0.0, None),
    ("corrupt-frames:p=1,bits=3@cmd", "corrupt-frames", None, {"p": 1.0, "bits": 3.0}, None, None),
    ("link-outage:start=30,duration=60", "link-outage", None, {"start": 30.0, "duration": 60.0}, 30.0, 60.0),
    ("  SAFE-MODE @ cmd , for = 10s ", "safe-mode", None, {}, None, 10.0),
])
def test_good_specs(text, kind, target, params, start, duration):
    spec = parse_fault(text)
    assert (spec.kind, spec.target, dict(spec.params), spec.start, spec.duration) == (kind, target, params, start, duration)
    assert spec.text == text.strip()


# --------------------------------------------------------------------------- grammar: bad specs


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("melt:x", "unknown fault kind 'melt'; known kinds: stuck, noise"),
    ("stuck", "stuck needs a target"),
    ("stuck:", "empty item"),
    ("noise:x", "noise needs sigma="),
    ("noise:x=abc", "sigma='abc' is not a standard deviation"),
    ("noise:x=-1", "sigma=-1 is out of range"),
    ("noise:x=nan", "is not a standard deviation"),
    ("drop-frames:p=1.5", "p=1.5 is out of range; expected a probability in [0, 1]"),
    ("drop-frames", "drop-frames needs p="),
    ("drop-frames:0.2", "expected key=value (drop-frames takes no target)"),
    ("drop-frames:q=0.2", "unknown parameter 'q' for drop-frames; allowed: p"),
    ("drop-frames:p=0.1,p=0.2", "given twice"),
    ("corrupt-frames:p=0.1,bits=1.5", "bits=1.5 is out of range"),
    ("battery-degradation:rate=0.02,floor=2", "floor=2 is out of range"),
    ("stuck:3volts", "is not a valid target name"),
    ("stuck:a.b,x", "expected key=value after the target"),
    ("safe-mode@", "nothing after '@'"),
    ("safe-mode@t=soon", "trigger t=: 'soon' is not a duration"),
    ("safe-mode@when=5", "trigger item 'when=5' not understood"),
    ("safe-mode@t=5,cmd", "both 't=' and 'cmd'"),
    ("safe-mode@t=5@t=6", "more than one '@'"),
    ("safe-mode@for=0", "for= must be > 0"),
    ("link-outage:start=30", "link-outage needs duration="),
    ("link-outage:start=30,duration=0", "duration must be > 0"),
    ("link-outage:start=30,duration=60@t=5", "sets its own window"),
    ("link-outage:start=-5,duration=60", "start=-5 is out of range"),
])
def test_bad_specs_name_the_problem(text, message):
    with pytest.raises(FaultSpecError) as err:
        parse_fault(text)
    assert message in str(err.value)
    assert repr(text) in str(err.value) or text == ""


def test_durations():
    assert [parse_duration(x) for x in ("90", "90s", "1.5m", "2h", "1d", "250ms")] == [90, 90, 90, 7200, 86400, 0.25]
    with pytest.raises(ValueError):
        parse_duration("5 parsecs")


# --------------------------------------------------------------------------- effects


def test_stuck_holds_value_seen_at_activation():
    faults = FaultSet(["stuck:zhurong.power.battery_voltage@t=60"])
    faults.update(0.0)
    assert faults.apply("zhurong.power.battery_voltage", 30.0) == 30.0
    faults.update(60.0)
    assert faults.apply("zhurong.power.battery_voltage", 29.5) == 29.5
    assert faults.apply("zhurong.power.battery_voltage", 27.0) == 29.5
    assert faults.apply("zhurong.power.battery_current", 3.0) == 3.0


def test_stuck_at_given_value_and_bias():
    faults = FaultSet(["stuck:a=5", "bias:b.*=1.5"])
    faults.update(0.0)
    assert faults.apply("a", 1.0) == 5.0
    assert faults.apply("b.x", 1.0) == 2.5
    values = faults.apply_all({"x": 1.0, "y": "ON", "z": True}, prefix="b")
    assert values == {"x": 2.5, "y": "ON", "z": True}


def test_noise_has_requested_sigma():
    faults = FaultSet(["noise:t=0.5"], seed=3)
    faults.update(0.0)
    samples = [faults.apply("t", 10.0) for _ in range(4000)]
    assert statistics.fmean(samples) == pytest.approx(10.0, abs=0.05)
    assert statistics.pstdev(samples) == pytest.approx(0.5, rel=0.05)


def test_drop_and_corrupt_frames_rates():
    faults = FaultSet(["drop-frames:p=0.2", "corrupt-frames:p=0.5,bits=2"], seed=1)
    faults.update(0.0)
    frame = bytes(64)
    fates = [faults.frame_fate(frame) for _ in range(5000)]
    dropped = sum(f is None for f in fates)
    corrupted = [f for f in fates if f is not None and f != frame]
    assert dropped / 5000 == pytest.approx(0.2, abs=0.02)
    assert len(corrupted) / (5000 - dropped) == pytest.approx(0.5, abs=0.03)
    assert all(sum(bin(b).count("1") for b in f) == 2 for f in corrupted)  # exactly 2 distinct flips
    assert faults.frames_dropped == dropped and faults.frames_corrupted == len(corrupted)


def test_link_outage_window_and_events():
    events = []
    faults = FaultSet(["link-outage:start=30,duration=60"], on_event=lambda *e: events.append(e))
    states = []
    for t in range(0, 120, 10):
        faults.update(float(t))
        states.append(faults.link_down())
    assert states == [False, False, False, True, True, True, True, True, True, False, False, False]
    assert [e[0] for e in events] == [EVENT_FAULT_ACTIVATED, EVENT_FAULT_CLEARED]
    assert faults.frame_fate(b"x") == b"x"


def test_command_activation_and_safe_mode_event_is_high():
    events = []
    faults = FaultSet(["safe-mode@cmd", "drop-frames:p=1@cmd,for=5"], on_event=lambda *e: events.append(e))
    faults.update(100.0)
    assert not faults.safe_mode_requested() and faults.active() == []
    faults.activate("safe-mode")
    assert faults.safe_mode_requested()
    assert events[-1][:2] == (EVENT_FAULT_ACTIVATED, 4)
    faults.activate("drop-frames", now=100.0)
    assert faults.drop_frame()
    faults.update(105.0)
    assert not faults.drop_frame()
    faults.deactivate("safe-mode")
    assert not faults.safe_mode_requested()
    with pytest.raises(KeyError, match="defined: safe-mode, drop-frames"):
        faults.activate("nope")


def test_battery_degradation_and_thermal_runaway_hooks():
    faults = FaultSet(["battery-degradation:rate=0.1,floor=0.5@t=1d", "thermal-runaway:pack=7", "thermal-runaway:pack*=3"])
    faults.update(0.0)
    assert faults.battery_capacity_factor() == 1.0
    faults.update(86400.0)
    assert faults.battery_capacity_factor(86400.0 * 3) == pytest.approx(0.8)
    assert faults.battery_capacity_factor(86400.0 * 30) == pytest.approx(0.5)
    assert faults.extra_heat_w("pack") == 10.0
    assert faults.extra_heat_w("pack2") == 3.0
    assert faults.extra_heat_w("body") == 0.0


def test_late_start_skips_passed_windows():
    faults = FaultSet(["safe-mode@t=10,for=5"])
    faults.update(100.0)
    assert faults.active() == [] and faults.faults[0].state == "cleared"


def test_duplicate_names_get_suffix():
    faults = FaultSet(["noise:x=1", "noise:x=2"])
    assert [f.name for f in faults.faults] == ["noise:x", "noise:x#2"]


# --------------------------------------------------------------------------- determinism


def run_sequence(seed: int, extra: list[str]) -> tuple[list, list]:
    faults = FaultSet(["drop-frames:p=0.3", "noise:v=1", *extra], seed=seed)
    faults.update(0.0)
    drops = [faults.drop_frame() for _ in range(200)]
    noise = [faults.apply("v", 0.0) for _ in range(50)]
    return drops, noise


def test_same_seed_same_sequence_and_independent_streams():
    assert run_sequence(7, []) == run_sequence(7, [])
    assert run_sequence(7, []) != run_sequence(8, [])
    # Adding another fault does not disturb the existing faults' random streams.
    assert run_sequence(7, []) == run_sequence(7, ["corrupt-frames:p=0.5"])


@pytest.mark.parametrize("p", [1e-4, 1e-2])
def test_ber_flips_bits_at_its_rate_and_the_same_seed_flips_the_same_ones(p):
    data = bytes(range(256)) * 400  # 819,200 bits
    faults = FaultSet([f"ber:p={p}"], seed=5)
    faults.update(0.0)
    out = faults.channel_errors(data)
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(data, out, strict=True))
    bits = len(data) * 8
    mean, sigma = bits * p, (bits * p * (1 - p)) ** 0.5
    assert flipped == faults.bits_flipped and abs(flipped - mean) < 5 * sigma
    again = FaultSet([f"ber:p={p}"], seed=5)
    again.update(0.0)
    assert again.channel_errors(data) == out


def test_ber_at_the_extremes_and_when_inactive():
    data = b"\x0f\xf0" * 8
    for p, expected in ((0, data), (1, bytes(b ^ 0xFF for b in data))):
        faults = FaultSet([f"ber:p={p}"])
        faults.update(0.0)
        assert faults.channel_errors(data) == expected
    later = FaultSet(["ber:p=1@t=60"])
    later.update(10.0)
    assert later.channel_errors(data) == data
