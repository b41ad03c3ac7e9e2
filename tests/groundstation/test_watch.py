"""`groundstation watch` turns the daemon's metrics into rows with limit states."""
from __future__ import annotations

import io

from rich.console import Console

from groundstation.metrics import Metrics
from groundstation.watch import parameter_rows, render, spacecraft_names


def exposition() -> str:
    metrics = Metrics()
    metrics.set("queqiao_parameter_value", ("zhurong", "power", "battery_voltage", "V"), 23.1)
    metrics.set("queqiao_parameter_limit_state", ("zhurong", "power", "battery_voltage"), 2)
    metrics.set("queqiao_parameter_last_update_timestamp_seconds", ("zhurong", "power", "battery_voltage"), 1000.0)
    metrics.set("queqiao_parameter_value", ("zhurong", "thermal", "store_temperature", "degC"), -26.5)
    metrics.set("queqiao_parameter_value", ("tianwen1", "orbit", "altitude", "km"), 400.0)
    return metrics.render().decode()


def test_rows_for_one_spacecraft():
    text = exposition()
    assert spacecraft_names(text) == ["tianwen1", "zhurong"]
    rows = parameter_rows(text, "zhurong")
    assert [(r.subsystem, r.parameter, r.value, r.unit, r.limit) for r in rows] == [
        ("power", "battery_voltage", 23.1, "V", 2),
        ("thermal", "store_temperature", -26.5, "degC", 0),
    ]


def test_render_shows_values_and_limits():
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(render(parameter_rows(exposition(), "zhurong"), "zhurong", 1005.0))
    out = console.file.getvalue()
    assert "battery_voltage" in out and "23.1" in out and "CRITICAL" in out and "5 s" in out
    assert "2 parameters · 1 critical · 0 warning · 1 nominal" in out
