"""The limit check: every sample of a limit-checked parameter goes through its alarm (persistence,
hysteresis, configured overrides); transitions are counted, logged and raised as events."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from groundstation.alarms import AlarmPolicy, ParameterAlarm, Transition, override_limits
from groundstation.chain.stage import DecodedBatch, DecodedGroup, Stage, StageContext, log
from protocols.missions import PacketDef
from protocols.parameters import LimitState, Parameter, States


@dataclass(frozen=True)
class NominalCodes:
    """The raw codes an enumeration's settled alarm keeps nominal, as merged code intervals: a batch
    whose every code is inside them changes nothing, and is told so without naming its samples."""

    lows: np.ndarray
    highs: np.ndarray

    @classmethod
    def of(cls, calibration: States, off_nominal: frozenset[str]) -> NominalCodes:
        merged: list[list[int]] = []
        for low, high, name in calibration.intervals():
            if name in off_nominal:
                continue
            if merged and merged[-1][1] + 1 == low:
                merged[-1][1] = high
            else:
                merged.append([low, high])
        return cls(np.array([m[0] for m in merged], dtype=np.int64), np.array([m[1] for m in merged], dtype=np.int64))

    def contain(self, codes: np.ndarray) -> bool:
        if self.lows.size == 0:
            return False
        if self.lows.size == 1:
            return bool(codes.min() >= self.lows[0] and codes.max() <= self.highs[0])
        position = np.searchsorted(self.lows, codes, side="right") - 1
        return bool(((position >= 0) & (codes <= self.highs[np.maximum(position, 0)])).all())


#: Per definition: numeric alarms (export indices, alarms, nominal lows, highs) and enumerations
#: (export index, alarm, the codes that are nominal), for :meth:`LimitCheck.quiet`.
StateScreen = list[tuple[int, ParameterAlarm, NominalCodes]]
Screen = tuple[list[int], list[ParameterAlarm], np.ndarray, np.ndarray, StateScreen]


@dataclass(frozen=True)
class ParameterExport:
    """How one parameter column of one packet definition is exported."""

    path: str  # column name, e.g. "hk.battery_voltage"
    name: str  # label value, e.g. "battery_voltage"
    subsystem: str
    unit: str
    parameter: Parameter


def exports_of(definition: PacketDef) -> list[ParameterExport]:
    """The parameters of a packet definition as they are exported (leaf name, subsystem, unit)."""
    return [ParameterExport(path, path.rsplit(".", 1)[-1], definition.subsystem, param.unit, param)
            for path, param in definition.parameters()]


@dataclass
class ParameterValue:
    """A parameter's latest value in a batch, with its limit state after every sample."""

    export: ParameterExport
    value: object
    raw: object
    state: LimitState


class LimitCheck(Stage):
    """Calibrates what the export needs (the whole column of a limit-checked parameter, the last
    sample of the others: only the latest value is exported) and runs the alarms."""

    name = "limits"

    def __init__(self, context: StageContext, overrides: Mapping[str, tuple] | None = None) -> None:
        super().__init__(context)
        self.overrides = dict(overrides or {})
        self.exports: dict[str, list[ParameterExport]] = {}
        self.alarms: dict[tuple[str, str], ParameterAlarm | None] = {}
        self.screens: dict[str, Screen] = {}

    def process(self, batch: DecodedBatch) -> DecodedBatch:
        for group in batch.groups:
            if group.definition.kind == "housekeeping":
                group.values = self.check(group, batch.receipt)
        return batch

    def parameters(self, definition: PacketDef) -> list[ParameterExport]:
        exports = self.exports.get(definition.name)
        if exports is None:
            exports = self.exports[definition.name] = exports_of(definition)
        return exports

    def check(self, group: DecodedGroup, receipt: float) -> list[ParameterValue]:
        exports = self.parameters(group.definition)
        screen = self.screen(group.definition)
        # Enumerations are screened on their raw codes: a quiet one needs only its last sample named.
        quiet_states = {k for k, alarm, nominal in screen[4]
                        if alarm.settled and nominal.contain(group.raw[exports[k].path])}
        columns = []
        for k, export in enumerate(exports):
            column = group.raw[export.path]
            whole = self.alarm(export) is not None and k not in quiet_states
            columns.append(export.parameter.calibration.to_eng_array(column if whole else column[-1:]))
        quiet = quiet_states | self.quiet(screen, columns)
        out = []
        for k, export in enumerate(exports):
            alarm, eng, state = self.alarms[(export.subsystem, export.name)], columns[k], LimitState.NOMINAL
            if alarm is not None and k not in quiet:
                for transition in alarm.update(eng):
                    self.transition(export, transition, receipt, group.onboard)
                state = alarm.state
            out.append(ParameterValue(export, eng[-1].item(), group.raw[export.path][-1].item(), state))
        return out

    def screen(self, definition: PacketDef) -> Screen:
        screen = self.screens.get(definition.name)
        if screen is None:
            screen = self.screens[definition.name] = self._screen(definition)
        return screen

    def quiet(self, screen: Screen, columns: list) -> set[int]:
        """Numeric exports whose alarm is settled and every sample inside its nominal range: nothing to
        run (the common case, screened for all of a definition's numeric limits in one comparison)."""
        index, alarms, low, high, _ = screen
        quiet: set[int] = set()
        settled = [k for k, alarm in zip(index, alarms, strict=True) if alarm.settled]
        if not settled:
            return quiet
        if len(settled) != len(index):
            rows = [index.index(k) for k in settled]
            low, high = low[rows], high[rows]
        block = np.vstack([columns[k] for k in settled])
        inside = ((block >= low) & (block <= high)).all(axis=1)
        return quiet | {settled[i] for i in np.flatnonzero(inside).tolist()}

    def _screen(self, definition: PacketDef) -> Screen:
        index, alarms, bounds, states = [], [], [], []
        for k, export in enumerate(self.parameters(definition)):
            alarm = self.alarm(export)
            if alarm is None:
                continue
            span, bad = alarm.nominal_range(), alarm.off_nominal_states()
            if span is not None:
                index.append(k)
                alarms.append(alarm)
                bounds.append(span)
            elif bad is not None and isinstance(export.parameter.calibration, States):
                states.append((k, alarm, NominalCodes.of(export.parameter.calibration, bad)))
        low = np.array([[b[0]] for b in bounds], dtype=np.float64).reshape(-1, 1)
        high = np.array([[b[1]] for b in bounds], dtype=np.float64).reshape(-1, 1)
        return index, alarms, low, high, states

    def alarm(self, export: ParameterExport) -> ParameterAlarm | None:
        key = (export.subsystem, export.name)
        if key not in self.alarms:
            override = self.overrides.get(export.name)
            limits = export.parameter.limits
            policy = AlarmPolicy()
            if override is not None:
                warning, critical, persistence, hysteresis = override
                limits = override_limits(limits, warning, critical)
                policy = AlarmPolicy(persistence or 1, hysteresis or 0.0)
            self.alarms[key] = ParameterAlarm(limits, policy) if limits is not None else None
        return self.alarms[key]

    def transition(self, export: ParameterExport, transition: Transition, receipt: float,
                   onboard: float | None) -> None:
        ctx = self.context
        state = transition.state.name.lower()
        self.counters[state] += 1  # the metric is queqiao_alarms_total, per parameter
        ctx.metrics.inc("queqiao_alarms_total", (ctx.name, export.subsystem, export.name, state))
        level = logging.WARNING if transition.state else logging.INFO
        log.log(level, "limit %s.%s.%s: %s -> %s (value %s %s)", ctx.name, export.subsystem, export.name,
                transition.previous.name.lower(), state, transition.value, export.unit)
        if ctx.events.on_event is not None:
            ctx.events.on_event(ctx.name, {
                "type": "limit", "subsystem": export.subsystem, "parameter": export.name,
                "from": transition.previous.name.lower(), "to": state, "value": transition.value,
                "unit": export.unit, "ground_time": receipt, "onboard_time": onboard,
            })
