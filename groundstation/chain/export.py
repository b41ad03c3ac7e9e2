"""The export: latest parameter values into the metric store (and to MQTT through the hooks),
onboard events and verification reports to their hooks, and the receipt-to-export latency."""
from __future__ import annotations

import logging
import time

import numpy as np

from groundstation.chain.stage import DecodedBatch, DecodedGroup, Sample, Stage, log
from protocols.missions.model import EventReport


class Exporter(Stage):
    """What a batch decoded, out: one metric update per parameter per batch (the latest value),
    every event and report; then one latency observation for the batch."""

    name = "export"

    def process(self, batch: DecodedBatch) -> None:
        exported = False
        for group in batch.groups:
            kind = group.definition.kind
            if kind == "housekeeping":
                self.parameters(group, batch.receipt)
                if self.context.events.on_samples is not None:
                    self.context.events.on_samples(self.context.name, group.definition, group.raw,
                                                   group.onboard_times, batch.receipt)
                exported = True
            elif kind == "event":
                self.onboard_events(group, batch.receipt)
            else:
                self.reports(group, batch.receipt)
        if exported:
            # Ground receipt (the link's arrival time of the batch's first frame) to the moment every
            # parameter of the batch is in the metric store.
            self.context.metrics.latency.observe_many(np.array([time.time() - batch.receipt]))

    def parameters(self, group: DecodedGroup, receipt: float) -> None:
        ctx = self.context
        metrics, state, hook = ctx.metrics, ctx.state, ctx.events.on_parameter
        for value in group.values:
            export = value.export
            numeric = value.raw if export.parameter.calibration.is_state else value.value
            labels = (ctx.name, export.subsystem, export.name)
            metrics.set("queqiao_parameter_value", labels + (export.unit,), float(numeric))
            metrics.set("queqiao_parameter_limit_state", labels, int(value.state))
            metrics.set("queqiao_parameter_last_update_timestamp_seconds", labels, receipt)
            sample = Sample(value.value, value.raw, value.state, receipt, group.onboard)
            state.latest[(export.subsystem, export.name)] = sample
            if export.name == "light_time" and state.light_time_override is None:
                metrics.set("queqiao_light_time_seconds", (ctx.name,), float(value.value))
            if hook is not None:
                hook(ctx.name, export.subsystem, export.name, export.unit, sample)

    def onboard_events(self, group: DecodedGroup, receipt: float) -> None:
        ctx = self.context
        definition, eng = group.definition, group.eng or {}
        assert isinstance(definition, EventReport)  # the decoder gives events their kind
        aux_columns = {k.split(".", 1)[1]: v for k, v in eng.items() if k.startswith("aux.")}
        for i in range(group.count):
            event = {"type": "onboard", "event": definition.name, "severity": definition.severity_name,
                     "subsystem": definition.subsystem, "ground_time": receipt, "onboard_time": group.onboard,
                     "data": {k: v[i].item() for k, v in aux_columns.items()}}
            log.log(logging.WARNING if definition.severity >= 3 else logging.INFO, "event %s: %s %s",
                    ctx.name, definition.name, event["data"])
            if ctx.events.on_event is not None:
                ctx.events.on_event(ctx.name, event)

    def reports(self, group: DecodedGroup, receipt: float) -> None:
        ctx = self.context
        if ctx.events.on_report is None or group.eng is None:
            return
        for i in range(group.count):
            ctx.events.on_report(ctx.name, group.definition, {k: v[i] for k, v in group.eng.items()}, receipt)
