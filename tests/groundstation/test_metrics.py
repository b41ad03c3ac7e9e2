"""Metrics: batch updates come out in the text exposition format with the contract's names and labels."""
from __future__ import annotations

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from groundstation.metrics import LATENCY_NAME, METRICS, Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_counters_and_gauges_are_exported_with_their_labels():
    metrics = Metrics()
    metrics.inc("queqiao_frames_received_total", ("udp-main",), 5)
    metrics.inc("queqiao_frames_received_total", ("udp-main",), 2)
    metrics.inc("queqiao_frames_rejected_total", ("udp-main", "fecf"), 1)
    metrics.set("queqiao_parameter_value", ("zhurong", "power", "battery_voltage", "V"), 28.25)
    metrics.add_source(lambda m: m.set("queqiao_link_up", ("udp-main",), 1))
    samples = _samples(metrics)
    assert samples[("queqiao_frames_received_total", (("link", "udp-main"),))] == 7
    assert samples[("queqiao_frames_rejected_total", (("link", "udp-main"), ("reason", "fecf")))] == 1
    assert samples[("queqiao_link_up", (("link", "udp-main"),))] == 1
    key = ("queqiao_parameter_value",
           (("parameter", "battery_voltage"), ("spacecraft", "zhurong"), ("subsystem", "power"), ("unit", "V")))
    assert samples[key] == 28.25


def test_latency_histogram_from_arrays():
    metrics = Metrics()
    metrics.latency.observe_many(np.array([0.0004, 0.0015, 0.0015, 0.2, 9.0]))
    samples = _samples(metrics)
    assert samples[(LATENCY_NAME + "_bucket", (("le", "0.0005"),))] == 1
    assert samples[(LATENCY_NAME + "_bucket", (("le", "0.002"),))] == 3
    assert samples[(LATENCY_NAME + "_bucket", (("le", "+Inf"),))] == 5
    assert samples[(LATENCY_NAME + "_count", ())] == 5
    assert metrics.latency.quantile(0.5) == 0.002


def test_every_declared_metric_is_named_by_convention():
    for spec in METRICS:
        assert spec.name.startswith("queqiao_")
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
