"""Every query of every committed Grafana dashboard returns data from a real daemon through a real Prometheus.

`groundstation demo` (every mission's emulator over loopback, a free port for --http) runs
as a subprocess with faults that make the event series exist honestly: haiyang2d's
downlink corrupts and drops frames (rejected frames, frame and packet gaps), zhurong's bus
voltage sticks below its critical limit (limit state, alarm transitions), and the test
sends a PING through `groundstation send` (commands by result).  A private Prometheus
scrapes it every second.  Then each panel's each target expression, with the template
variables substituted (every value of the spacecraft variable in turn; $__rate_interval,
$__range, $__interval by fixed windows), goes through /api/v1/query; any error or empty
result fails the test, listing dashboard, panel and expression.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from deploy_helpers import DEPLOY, REPO, groundstation_process

from protocols.missions import builtin_registry
from tests.realcomponents import components  # noqa: E402

pytestmark = pytest.mark.realcomponents

DASHBOARDS = DEPLOY / "grafana" / "dashboards"
TOKEN = "grafana-queries-test-token-0123456789"
#: Event series the faults and the PING make exist: the side of "X or <zero fallback>" before the
#: fallback must return data for these, so a fallback cannot hide a broken query.
HONEST_EVENTS = ("queqiao_frames_rejected_total", "queqiao_frame_gaps_total", "queqiao_packet_gaps_total",
                 "queqiao_commands_total", "queqiao_alarms_total", "queqiao_parameter_limit_state == 2")
#: Grafana's built-in variables, as Grafana would expand them for a one-hour view scraped every second.
BUILTINS = {"__rate_interval": "15s", "__interval": "5s", "__range": "5m", "__range_s": "300", "__range_ms": "300000"}
FAULTS = ("haiyang2d=corrupt-frames:p=0.3", "haiyang2d=drop-frames:p=0.2", "zhurong=stuck:zhurong.power.bus_voltage=20")


def _cli() -> list[str]:
    exe = REPO / ".venv" / "bin" / "groundstation"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "groundstation.cli"]



@pytest.fixture
def demo(tmp_path):
    """`groundstation demo` with every mission on a free loopback port; yields its address."""
    port = components.free_port()
    log_path = tmp_path / "demo.log"
    env = {**os.environ, "QUEQIAO_API_TOKEN": TOKEN, "QUEQIAO_MISSION_PATH": ""}
    argv = [*_cli(), "demo", "--http", f"127.0.0.1:{port}", "--duration", "150", "--archive", str(tmp_path / "archive")]
    for fault in FAULTS:
        argv += ["--fault", fault]
    with groundstation_process(argv, f"127.0.0.1:{port}", log_path, what="groundstation demo", cwd=tmp_path, env=env):
        yield f"127.0.0.1:{port}", env


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])
    return out


def substitutions(dashboard: dict) -> list[dict[str, str]]:
    """One mapping of variable -> value per combination to check (each spacecraft value in turn)."""
    combos: list[dict[str, str]] = [dict(BUILTINS)]
    for var in dashboard.get("templating", {}).get("list", []):
        values = [o["value"] for o in var.get("options", [])] or [var.get("query", "")]
        assert values, f"variable {var['name']} has no value to substitute"
        combos = [{**c, var["name"]: v} for c in combos for v in values]
    return combos


def substitute(expr: str, values: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for variable ${name} in {expr}")
        return values[name]
    # Longest names first via the regex's greedy match: $__range_s is not $__range + "_s".
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", repl, expr)


def test_every_dashboard_query_returns_data(demo, tmp_path):
    address, env = demo
    started = time.monotonic()
    reg = builtin_registry()
    prom = components.Prometheus(tmp_path / "prometheus", [address], scrape_interval="1s")
    prom.start()
    try:
        n_params = len(reg.parameters())
        prom.wait_for_value("count(queqiao_parameter_value)", lambda v: v >= n_params, timeout=30)
        # A command, so queqiao_commands_total exists with a real result.
        send = subprocess.run([*_cli(), "send", "--api", f"http://{address}", "zhurong", "PING", "--wait",
                               "--timeout", "20"], capture_output=True, text=True, timeout=40, env=env)
        assert send.returncode == 0, send.stdout + send.stderr
        # The events the faults cause, seen by Prometheus before any panel is checked.
        for promql in ('queqiao_commands_total{command="PING", result="completed"}',
                       "sum(queqiao_frames_rejected_total)", "sum(queqiao_frame_gaps_total)",
                       "sum(queqiao_packet_gaps_total)",
                       'queqiao_parameter_limit_state{spacecraft="zhurong", parameter="bus_voltage"} == 2',
                       "sum(queqiao_alarms_total)"):
            prom.wait_for_value(promql, timeout=30)
        # Enough samples for every rate window ($__rate_interval) to hold several.
        prom.wait_for_value("count_over_time(queqiao_link_up[15s])", lambda v: v >= 5, timeout=20)

        failures: list[str] = []
        checked = primaries = 0
        files = sorted(DASHBOARDS.glob("*.json"))
        assert len(files) == 2 + len(reg), [f.name for f in files]
        for path in files:
            dashboard = json.loads(path.read_text())
            for values in substitutions(dashboard):
                for panel in panels(dashboard):
                    for target in panel.get("targets", []):
                        expr = substitute(target["expr"], values)
                        where = f"{path.name} / {panel['title']} [{target['refId']}]"
                        try:
                            result = prom.query(expr)
                        except components.ComponentError as exc:
                            failures.append(f"{where}: error: {exc}\n    {expr}")
                            continue
                        checked += 1
                        if not result:
                            failures.append(f"{where}: no data\n    {expr}")
                        primary = expr.split(" or ")[0]
                        # Fleet-wide only: the faults hit haiyang2d and zhurong, not every spacecraft.
                        fleet_wide = 'spacecraft="' not in primary
                        if primary != expr and fleet_wide and any(e in primary for e in HONEST_EVENTS):
                            if not prom.query(primary):
                                failures.append(f"{where}: no data before the fallback\n    {primary}")
                            primaries += 1
        assert checked > len(reg.parameters()), checked
        assert primaries >= 6, primaries
        assert not failures, f"{len(failures)} of {checked} dashboard queries failed:\n" + "\n".join(failures)
        print(f"{checked} dashboard queries returned data, {primaries} of them also without the zero fallback "
              f"({time.monotonic() - started:.0f} s)")
    finally:
        prom.stop()
