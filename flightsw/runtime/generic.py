"""A generic stand-in model for any spacecraft of the mission database.

Used when ``flightsw.model.MODELS`` has no model for a spacecraft (a third-party
mission, or before a mission's physical model exists): every housekeeping
parameter sits near the middle of its nominal range with a slow oscillation and
seeded noise, enumerations take their first nominal state, instrument power
follows POWER_INSTRUMENT, and mission commands take a few simulated seconds.
Deterministic under its seed; no physics.
"""
from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from flightsw.model import CommandOutcome, MissionModel, NotMine
from protocols.parameters import Limits, StateLimits


def _nominal_state(param) -> str:
    codes = list(param.calibration.codes)
    limits = param.limits
    bad: set[str] = set()
    if isinstance(limits, StateLimits):
        bad = set(limits.warning) | set(limits.critical)
    for name in codes:
        if name not in bad:
            return name
    return codes[0]


def _nominal_range(param) -> tuple[float, float]:
    limits = param.limits
    lo = hi = None
    if isinstance(limits, Limits):
        rng = limits.warning or limits.critical
        if rng:
            lo, hi = rng
            if lo is None and hi is None:
                lo = hi = None
    if lo is None and hi is None:
        return (0.0, 0.0)
    if lo is None:
        lo = hi - abs(hi) * 0.5 if hi else -1.0
    if hi is None:
        hi = lo + abs(lo) * 0.5 if lo else 1.0
    return (float(lo), float(hi))


class GenericModel(MissionModel):
    """Plausible, in-limits housekeeping for any spacecraft; see the module docstring."""

    spacecraft_name = "*"

    #: Simulated seconds a mission command (other than the standard ones) runs.
    command_duration = 4.0
    command_progress_step = 1.0

    def __init__(self, spacecraft, *, seed: int, start_utc, emit, faults=None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        self.rng = random.Random(seed)
        self.t = 0.0
        self._plan: dict[str, list[tuple[str, Any, float, float, float]]] = {}
        self.states: dict[str, str] = {}
        for packet in spacecraft.housekeeping:
            rows = []
            for path, param in packet.parameters():
                leaf = path.removeprefix("hk.")
                if param.calibration.is_state:
                    self.states[leaf] = _nominal_state(param)
                    rows.append((leaf, param, 0.0, 0.0, 0.0))
                    continue
                lo, hi = _nominal_range(param)
                mid, half = (lo + hi) / 2, (hi - lo) / 2
                rows.append((leaf, param, mid, half * 0.3, self.rng.uniform(0, 2 * math.pi)))
            self._plan[packet.name] = rows
        self.instrument_power = {i.name: "OFF" for i in spacecraft.instruments}
        for inst in spacecraft.instruments:
            if inst.power_parameter:
                self.states[inst.power_parameter] = "OFF"

    def step(self, t: float, dt: float) -> None:
        self.t = t

    def housekeeping(self, packet: str) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        for leaf, param, mid, amp, phase in self._plan[packet]:
            if param.calibration.is_state:
                out[leaf] = self.states[leaf]
            else:
                value = mid + amp * math.sin(self.t / 600.0 + phase) + self.rng.gauss(0.0, amp * 0.02 + 1e-9)
                out[leaf] = value
        return out

    def execute(self, command: str, arguments: Mapping[str, Any]) -> CommandOutcome:
        if command == "POWER_INSTRUMENT":
            name, state = arguments["instrument"], arguments["state"]
            inst = self.spacecraft.instrument(name)
            self.instrument_power[name] = state
            if inst.power_parameter:
                self.states[inst.power_parameter] = state
            self.emit("instrument_power_changed", instrument=name, state=state)
            return CommandOutcome(duration=2.0, progress_step=1.0)
        standard = {"PING", "SET_HK_PERIOD", "ENABLE_HK", "DISABLE_HK", "ENTER_SAFE_MODE", "LEAVE_SAFE_MODE",
                    "DUMP_STORAGE"}
        if command not in standard and command in {c.name for c in self.spacecraft.commands}:
            return CommandOutcome(duration=self.command_duration, progress_step=self.command_progress_step)
        raise NotMine(command)

    def enter_safe_mode(self, reason: str) -> None:
        super().enter_safe_mode(reason)
        for inst in self.spacecraft.instruments:
            self.instrument_power[inst.name] = "OFF"
            if inst.power_parameter:
                self.states[inst.power_parameter] = "OFF"
