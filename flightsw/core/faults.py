"""Fault injection: a small grammar of named faults and the :class:`FaultSet` that applies them.

Grammar (whitespace around tokens is ignored)::

    spec     ::= kind [ ":" body ] [ "@" trigger ]
    body     ::= [ target [ "=" number ] ] { "," key "=" value }      (kinds with a target)
               | key "=" value { "," key "=" value }                   (kinds without)
    trigger  ::= "cmd" [ "," "for" "=" duration ]                      (armed; a command activates it)
               | "t" "=" duration [ "," "for" "=" duration ]           (activates at sim time t)
    duration ::= number [ "ms" | "s" | "m" | "h" | "d" ]               (seconds by default)
    target   ::= a dotted parameter or node name; shell wildcards * ? [..] allowed

Without ``@`` a fault is active from the start.  Kinds (``key=default``; * = required):

    stuck:<param>[=value]          sensor reads a constant (given, else the value at activation)
    noise:<param>=sigma*           adds Gaussian noise, standard deviation sigma (engineering units)
    bias:<param>=value*            adds a constant offset
    battery-degradation:rate*,floor=0.2
                                   capacity fades by `rate` (fraction) per day of sim time, not below floor
    thermal-runaway:<node>[=power] extra heat into a thermal node, W (default 10)
    safe-mode                      asks the spacecraft to enter safe mode
    drop-frames:p*                 each downlink frame is lost with probability p
    corrupt-frames:p*,bits=1       with probability p a frame gets `bits` distinct random bit flips
    ber:p*                         each transmitted bit flips with probability p (the channel's bit error
                                   rate: after Reed-Solomon coding, so the ground can correct it)
    link-outage:start*,duration*   no link from start for duration (its own window; takes no @)

Examples: ``stuck:zhurong.power.battery_voltage@t=60``, ``noise:zhurong.thermal.*=0.5``,
``battery-degradation:rate=0.02``, ``safe-mode@t=120``, ``drop-frames:p=0.2@cmd``,
``link-outage:start=30,duration=60``, ``ber:p=1e-4``.

Determinism: every fault draws from its own ``random.Random`` seeded from the
set's seed and the fault's position and text, so adding one fault never changes
another fault's random sequence, and the same seed gives the same run.
"""
from __future__ import annotations

import fnmatch
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flightsw.core.app import App
from flightsw.core.bus import Message
from flightsw.core.msgids import EVENT_FAULT_ACTIVATED, EVENT_FAULT_CLEARED, MID_FAULT_CHECK

log = logging.getLogger(__name__)

EventCallback = Callable[[int, int, str, Mapping[str, Any]], object]



class FaultSpecError(ValueError):
    """A fault spec string that does not follow the grammar; the message names what is wrong."""

    def __init__(self, spec: str, problem: str) -> None:
        super().__init__(f"fault spec {spec!r}: {problem}")
        self.spec = spec
        self.problem = problem


# --------------------------------------------------------------------------- value parsers

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(ms|s|m|h|d)?$")


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``1.5m``, ``2h``, ``1d``, ``250ms`` -> seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration (a number with optional unit ms, s, m, h, d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass(frozen=True)
class _Param:
    parse: Callable[[str], float]
    what: str                      # for error messages: "a probability in [0, 1]"
    check: Callable[[float], bool]
    default: float | None = None
    required: bool = False


def _num(what: str, check: Callable[[float], bool] = lambda v: True, default: float | None = None,
         required: bool = False) -> _Param:
    return _Param(_number, what, check, default, required)


def _dur(what: str, required: bool = False) -> _Param:
    return _Param(parse_duration, what, lambda v: v >= 0, None, required)


_PROB = _num("a probability in [0, 1]", lambda v: 0 <= v <= 1, required=True)


@dataclass(frozen=True)
class _Kind:
    target: bool
    primary: str | None
    params: dict[str, _Param]
    trigger: bool = True


KINDS: dict[str, _Kind] = {
    "stuck": _Kind(True, "value", {"value": _num("a number")}),
    "noise": _Kind(True, "sigma", {"sigma": _num("a standard deviation >= 0", lambda v: v >= 0, required=True)}),
    "bias": _Kind(True, "value", {"value": _num("a number", required=True)}),
    "battery-degradation": _Kind(False, None, {
        "rate": _num("a capacity fraction per day in [0, 1]", lambda v: 0 <= v <= 1, required=True),
        "floor": _num("a capacity fraction in [0, 1]", lambda v: 0 <= v <= 1, default=0.2)}),
    "thermal-runaway": _Kind(True, "power", {"power": _num("a heat power in W >= 0", lambda v: v >= 0, default=10.0)}),
    "safe-mode": _Kind(False, None, {}),
    "drop-frames": _Kind(False, None, {"p": _PROB}),
    "corrupt-frames": _Kind(False, None, {
        "p": _PROB, "bits": _num("a whole number of bits >= 1", lambda v: v >= 1 and v == int(v), default=1)}),
    "ber": _Kind(False, None, {"p": _PROB}),
    "link-outage": _Kind(False, None, {"start": _dur("a time", True), "duration": _dur("a duration", True)},
                         trigger=False),
}

_TARGET = re.compile(r"^[A-Za-z_*?\[][\w.*?\[\]\-]*$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault: kind, optional target, parameters, and when it is active."""

    kind: str
    target: str | None = None
    params: Mapping[str, float | None] = field(default_factory=dict)
    start: float | None = 0.0        # sim seconds; None = armed, waits for a command
    duration: float | None = None    # None = until cleared
    text: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        return parse_fault(spec)


def parse_fault(spec: str) -> FaultSpec:
    """Parse one fault spec string (see the module docstring for the grammar)."""
    if not isinstance(spec, str) or not spec.strip():
        raise FaultSpecError(str(spec), "empty; expected kind[:body][@trigger], e.g. 'stuck:zhurong.power.battery_voltage@t=60'")
    text = spec.strip()
    head, at, trigger = text.partition("@")
    if at and not trigger.strip():
        raise FaultSpecError(spec, "nothing after '@'; expected 't=<time>' or 'cmd'")
    if "@" in trigger:
        raise FaultSpecError(spec, "more than one '@'")
    kind_text, colon, body = head.partition(":")
    kind_name = kind_text.strip().lower()
    kind = KINDS.get(kind_name)
    if kind is None:
        raise FaultSpecError(spec, f"unknown fault kind {kind_text.strip()!r}; known kinds: {', '.join(KINDS)}")
    items = [i.strip() for i in body.split(",")] if colon else []
    if colon and (not body.strip() or any(not i for i in items)):
        raise FaultSpecError(spec, "empty item in the body (stray ',' or ':' with nothing after it)")

    target: str | None = None
    raw: dict[str, str] = {}
    if kind.target:
        if not items:
            raise FaultSpecError(spec, f"{kind_name} needs a target, e.g. '{kind_name}:zhurong.power.battery_voltage'")
        first = items.pop(0)
        name, eq, value = first.partition("=")
        name = name.strip()
        if not _TARGET.match(name):
            raise FaultSpecError(spec, f"{name!r} is not a valid target name (dotted name, wildcards * ? [] allowed)")
        target = name
        if eq:
            raw[kind.primary] = value.strip()  # type: ignore[index]
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            if kind.target:
                raise FaultSpecError(spec, f"{item!r}: expected key=value after the target")
            raise FaultSpecError(spec, f"{item!r}: expected key=value ({kind_name} takes no target)")
        if key not in kind.params:
            allowed = ", ".join(kind.params) or "none"
            raise FaultSpecError(spec, f"unknown parameter {key!r} for {kind_name}; allowed: {allowed}")
        if key in raw:
            raise FaultSpecError(spec, f"parameter {key!r} given twice")
        raw[key] = value.strip()

    params: dict[str, float | None] = {}
    for key, p in kind.params.items():
        if key not in raw:
            if p.required:
                raise FaultSpecError(spec, f"{kind_name} needs {key}=<{p.what}>")
            params[key] = p.default
            continue
        try:
            parsed = p.parse(raw[key])
        except ValueError:
            raise FaultSpecError(spec, f"{key}={raw[key]!r} is not {p.what}") from None
        if not p.check(parsed):
            raise FaultSpecError(spec, f"{key}={raw[key]} is out of range; expected {p.what}")
        params[key] = parsed

    start: float | None = 0.0
    duration: float | None = None
    if kind_name == "link-outage":
        start, duration = params["start"], params["duration"]
        if not duration:
            raise FaultSpecError(spec, "link-outage duration must be > 0")
    if at:
        if not kind.trigger:
            raise FaultSpecError(spec, f"{kind_name} sets its own window; remove the '@{trigger}' trigger")
        start, duration = _parse_trigger(spec, trigger)
    return FaultSpec(kind_name, target, params, start, duration, text)


def _parse_trigger(spec: str, trigger: str) -> tuple[float | None, float | None]:
    start: float | None = 0.0
    duration: float | None = None
    seen: set[str] = set()
    for item in (i.strip() for i in trigger.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key == "cmd" and not eq:
            start = None
        elif key in ("t", "for") and eq:
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise FaultSpecError(spec, f"trigger {key}=: {exc}") from None
            if seconds < 0:
                raise FaultSpecError(spec, f"trigger {key}={value.strip()} is negative")
            if key == "t":
                start = seconds
            else:
                if seconds == 0:
                    raise FaultSpecError(spec, "trigger for= must be > 0")
                duration = seconds
        else:
            raise FaultSpecError(spec, f"trigger item {item!r} not understood; expected 't=<time>', 'cmd' or 'for=<duration>'")
        if key in seen:
            raise FaultSpecError(spec, f"trigger {key!r} given twice")
        seen.add(key)
    if "t" in seen and "cmd" in seen:
        raise FaultSpecError(spec, "trigger has both 't=' and 'cmd'; pick one")
    return start, duration


# --------------------------------------------------------------------------- runtime


@dataclass
class Fault:
    """A fault in a FaultSet: its spec and runtime state."""

    spec: FaultSpec
    name: str
    rng: random.Random
    state: str = "pending"          # pending | armed | active | cleared
    activated_at: float | None = None
    expires_at: float | None = None
    activations: int = 0
    held: dict[str, float] = field(default_factory=dict)  # stuck: value held per parameter

    @property
    def active(self) -> bool:
        return self.state == "active"

    def matches(self, name: str) -> bool:
        target = self.spec.target
        return target is not None and (target == name or fnmatch.fnmatchcase(name, target))


class FaultSet:
    """The faults of one run; sensor reads and the link layer consult it.

    Call :meth:`update` with the sim time every tick (time triggers and expiries);
    the query methods report the state as of the last update.
    """

    def __init__(self, specs: Iterable[str | FaultSpec] = (), *, seed: int = 0,
                 on_event: EventCallback | None = None) -> None:
        self.seed = seed
        self.on_event = on_event
        self.faults: list[Fault] = []
        self.now = 0.0
        self.frames_dropped = 0
        self.frames_corrupted = 0
        self.bits_flipped = 0  # by ber faults
        for spec in specs:
            self.add(spec)

    def add(self, spec: str | FaultSpec) -> Fault:
        parsed = spec if isinstance(spec, FaultSpec) else parse_fault(spec)
        base = parsed.name
        names = {f.name for f in self.faults}
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        rng = random.Random(f"{self.seed}/{len(self.faults)}/{parsed.text or parsed.name}")
        fault = Fault(parsed, name, rng, state="armed" if parsed.start is None else "pending")
        self.faults.append(fault)
        return fault

    def get(self, name: str) -> Fault:
        for fault in self.faults:
            if fault.name == name:
                return fault
        raise KeyError(f"no fault named {name!r}; defined: {', '.join(f.name for f in self.faults) or 'none'}")

    # -- state changes
    def _event(self, event_id: int, severity: int, text: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(event_id, severity, text, data)
        else:
            log.warning("fault event %d: %s", event_id, text)

    def _activate(self, fault: Fault, now: float, window_start: float | None = None) -> None:
        fault.state = "active"
        fault.activated_at = now
        # A time-triggered window ends at start + duration even if noticed late;
        # a commanded activation runs for its duration from now.
        duration = fault.spec.duration
        fault.expires_at = None if duration is None else (now if window_start is None else window_start) + duration
        fault.activations += 1
        fault.held.clear()
        severity = 4 if fault.spec.kind == "safe-mode" else 3
        self._event(EVENT_FAULT_ACTIVATED, severity, f"fault {fault.name} activated",
                    fault=fault.name, kind=fault.spec.kind, target=fault.spec.target or "")

    def _clear(self, fault: Fault, now: float, why: str) -> None:
        fault.state = "cleared"
        self._event(EVENT_FAULT_CLEARED, 1, f"fault {fault.name} cleared ({why})", fault=fault.name)

    def update(self, now: float) -> list[Fault]:
        """Apply time triggers and expiries up to sim time ``now``; returns faults that changed."""
        self.now = now
        changed = []
        for fault in self.faults:
            spec = fault.spec
            if fault.state == "pending" and spec.start is not None and now >= spec.start:
                if spec.duration is not None and now >= spec.start + spec.duration:
                    fault.state = "cleared"  # its whole window passed unseen (a run started late)
                    continue
                self._activate(fault, now, window_start=spec.start)
                changed.append(fault)
            if fault.state == "active" and fault.expires_at is not None and now >= fault.expires_at:
                self._clear(fault, now, "duration elapsed")
                changed.append(fault)
        return changed

    def activate(self, name: str, now: float | None = None) -> Fault:
        """Command: activate a fault now (armed, pending or cleared)."""
        fault = self.get(name)
        if not fault.active:
            self._activate(fault, self.now if now is None else now)
        return fault

    def deactivate(self, name: str, now: float | None = None) -> Fault:
        """Command: clear an active fault."""
        fault = self.get(name)
        if fault.active:
            self._clear(fault, self.now if now is None else now, "by command")
        return fault

    def active(self, kind: str | None = None) -> list[Fault]:
        return [f for f in self.faults if f.active and (kind is None or f.spec.kind == kind)]

    # -- sensor path
    def affects(self, param: str) -> bool:
        return any(f.active and f.matches(param) for f in self.faults)

    def apply(self, param: str, value: float) -> float:
        """A sensor reading of ``param`` as the faults make it look (bias, noise, then stuck)."""
        stuck: Fault | None = None
        for fault in self.faults:
            if not fault.active or not fault.matches(param):
                continue
            kind = fault.spec.kind
            if kind == "bias":
                value += fault.spec.params["value"]  # type: ignore[operator]
            elif kind == "noise":
                value += fault.rng.gauss(0.0, fault.spec.params["sigma"])  # type: ignore[arg-type]
            elif kind == "stuck":
                stuck = fault
        if stuck is not None:
            fixed = stuck.spec.params.get("value")
            if fixed is None:
                fixed = stuck.held.setdefault(param, value)
            return fixed
        return value

    def apply_all(self, values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        """``apply`` to every numeric value of a dict (keys joined to ``prefix`` with '.')."""
        if not any(f.active and f.spec.target for f in self.faults):
            return dict(values)
        out = {}
        for key, value in values.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, (int, float)) and not isinstance(value, bool) and self.affects(name):
                out[key] = self.apply(name, float(value))
            else:
                out[key] = value
        return out

    # -- model hooks
    def safe_mode_requested(self) -> bool:
        return bool(self.active("safe-mode"))

    def battery_capacity_factor(self, now: float | None = None) -> float:
        """Remaining capacity fraction from active battery-degradation faults (1.0 when none)."""
        now = self.now if now is None else now
        factor = 1.0
        for fault in self.active("battery-degradation"):
            days = max(0.0, now - (fault.activated_at or 0.0)) / 86400.0
            rate, floor = fault.spec.params["rate"], fault.spec.params["floor"]
            assert rate is not None and floor is not None  # both have defaults in the fault kind
            factor *= max(floor, 1.0 - rate * days)
        return factor

    def extra_heat_w(self, node: str) -> float:
        """Extra heat (W) into a thermal node from active thermal-runaway faults."""
        return sum(f.spec.params["power"] for f in self.active("thermal-runaway") if f.matches(node))  # type: ignore[misc]

    # -- link path
    def link_down(self) -> bool:
        return bool(self.active("link-outage"))

    def drop_frame(self) -> bool:
        """Whether the next downlink frame is lost (drop-frames faults; draws only when active)."""
        for fault in self.active("drop-frames"):
            if fault.rng.random() < fault.spec.params["p"]:  # type: ignore[operator]
                self.frames_dropped += 1
                return True
        return False

    def corrupt_frame(self, frame: bytes) -> bytes:
        """The frame, with random bit flips if a corrupt-frames fault fires for it."""
        for fault in self.active("corrupt-frames"):
            if frame and fault.rng.random() < fault.spec.params["p"]:  # type: ignore[operator]
                buf = bytearray(frame)
                flips = min(int(fault.spec.params["bits"]), len(buf) * 8)  # type: ignore[arg-type]
                for bit in fault.rng.sample(range(len(buf) * 8), flips):  # distinct bits: exactly `bits` errors
                    buf[bit >> 3] ^= 0x80 >> (bit & 7)
                self.frames_corrupted += 1
                frame = bytes(buf)
        return frame

    def channel_errors(self, data: bytes) -> bytes:
        """``data`` as the channel delivers it: each bit flipped with the probability of the active ber
        faults.  The gaps between flips are drawn (geometric), so a low rate costs little."""
        for fault in self.active("ber"):
            p = float(fault.spec.params["p"])  # type: ignore[arg-type]
            if not data or p <= 0.0:
                continue
            buf = bytearray(data)
            bits = len(buf) * 8
            position = -1
            log_keep = math.log1p(-p) if p < 1.0 else -math.inf
            while True:
                position += 1 if p >= 1.0 else 1 + int(math.log(1.0 - fault.rng.random()) / log_keep)
                if position >= bits:
                    break
                buf[position >> 3] ^= 0x80 >> (position & 7)
                self.bits_flipped += 1
            data = bytes(buf)
        return data

    def frame_fate(self, frame: bytes) -> bytes | None:
        """What the link does to one downlink frame: None if lost (outage or drop), else maybe corrupted."""
        if self.link_down() or self.drop_frame():
            return None
        return self.corrupt_frame(frame)

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "kind": f.spec.kind, "target": f.spec.target, "state": f.state,
                 "activated_at": f.activated_at, "spec": f.spec.text} for f in self.faults]


# --------------------------------------------------------------------------- app



class FaultApp(App):
    """Puts a FaultSet on the bus: time triggers checked on each MID_FAULT_CHECK wake-up,
    activation events go through the executive's event app, counters into housekeeping."""

    def __init__(self, faults: FaultSet, *, name: str = "FLT", wakeup_mid: int | None = None) -> None:
        super().__init__(name)
        self.faults = faults
        self.subscriptions = (MID_FAULT_CHECK if wakeup_mid is None else wakeup_mid,)

    def init(self) -> None:
        if self.faults.on_event is None:
            self.faults.on_event = self.executive.reporter(self.name)
        self.faults.update(self.now())

    def handle_message(self, message: Message) -> None:
        self.faults.update(self.now())

    def housekeeping(self) -> dict[str, Any]:
        hk = super().housekeeping()
        hk.update({"defined": len(self.faults.faults), "active": len(self.faults.active()),
                   "frames_dropped": self.faults.frames_dropped, "frames_corrupted": self.faults.frames_corrupted})
        return hk
