"""The limit check: every sample of a limit-checked parameter goes through its alarm (persistence,
hysteresis, configured overrides); transitions are counted, logged and raised as events."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from groundstation.alarms import AlarmPolicy, ParameterAlarm, Transition, override_limits
from groundstation.chain.stage import DecodedBatch, DecodedGroup, Stage, StageContext, log
from protocols.missions import PacketDef
from protocols.parameters import LimitState, Parameter


@dataclass(frozen=True)
class ParameterExport:
    """How one parameter column of one packet definition is exported."""

    path: str  # column name, e.g. "hk.battery_voltage"
    name: str  # label value, e.g. "battery_voltage"
    subsystem: str
    unit: str
    parameter: Parameter


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

    def process(self, batch: DecodedBatch) -> DecodedBatch:
        for group in batch.groups:
            if group.definition.kind == "housekeeping":
                group.values = self.check(group, batch.receipt)
        return batch

    def parameters(self, definition: PacketDef) -> list[ParameterExport]:
        exports = self.exports.get(definition.name)
        if exports is None:
            exports = self.exports[definition.name] = [
                ParameterExport(path, path.rsplit(".", 1)[-1], definition.subsystem, param.unit, param)
                for path, param in definition.parameters()]
        return exports

    def check(self, group: DecodedGroup, receipt: float) -> list[ParameterValue]:
        out = []
        for export in self.parameters(group.definition):
            alarm = self.alarm(export)
            column = group.raw[export.path]
            eng = export.parameter.calibration.to_eng_array(column if alarm is not None else column[-1:])
            state = LimitState.NOMINAL
            if alarm is not None:
                for transition in alarm.update(eng):
                    self.transition(export, transition, receipt, group.onboard)
                state = alarm.state
            out.append(ParameterValue(export, eng[-1].item(), column[-1].item(), state))
        return out

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
