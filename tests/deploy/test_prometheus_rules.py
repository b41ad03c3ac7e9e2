"""deploy/prometheus: the configuration and alert rules are valid, unit-tested and match the exporter.

promtool (Debian package ``prometheus``) checks the config and the rules and runs the
rule unit tests in deploy/prometheus/tests/; the Python checks make sure every alert is
tested both ways (fires / stays quiet), carries severity, summary and description, and
uses only metric names and labels the daemon exports (groundstation/metrics.py).
"""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import yaml
from deploy_helpers import DEPLOY, explain, need_tool, run

from groundstation.config import StationConfig
from groundstation.metrics import METRICS, SPECS, Metrics

PROM = DEPLOY / "prometheus"
CONFIG = PROM / "prometheus.yml"
RULES = sorted((PROM / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROM / "tests").glob("*.yml"))
JOB = "queqiao-groundstation"
SEVERITIES = {"critical", "warning", "info"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return need_tool("promtool", "prometheus", why="Prometheus's rule and config checker")


def _alerts() -> list[dict]:
    alerts = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            alerts += [rule for rule in group["rules"] if "alert" in rule]
    return alerts


def test_files_exist():
    assert CONFIG.is_file()
    assert RULES, "no rule files in deploy/prometheus/rules/"
    assert RULE_TESTS, "no rule unit tests in deploy/prometheus/tests/"


def test_promtool_check_config(promtool):
    proc = run([promtool, "check", "config", str(CONFIG)])
    assert proc.returncode == 0, explain(proc)
    # The config loads every rule file we ship.
    for path in RULES:
        assert path.name in proc.stdout + proc.stderr, explain(proc)


def test_promtool_check_rules(promtool):
    proc = run([promtool, "check", "rules", *map(str, RULES)])
    assert proc.returncode == 0, explain(proc)


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(promtool, test_file):
    proc = run([promtool, "test", "rules", str(test_file)], cwd=test_file.parent)
    assert proc.returncode == 0, explain(proc)
    assert "SUCCESS" in proc.stdout, explain(proc)


def test_config_scrapes_the_daemon_every_5s():
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert JOB in jobs, f"no scrape job {JOB!r} (the rules select up{{job={JOB!r}}})"
    job = jobs[JOB]
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "5s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [StationConfig().http_listen] == ["127.0.0.1:9108"]
    rule_files = config["rule_files"]
    for path in RULES:
        assert any((CONFIG.parent / f).resolve() == path.resolve() for f in rule_files), f"{path} not in rule_files"


def test_every_alert_has_severity_summary_and_description():
    alerts = _alerts()
    assert len(alerts) >= 8
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names)), "duplicate alert names"
    for alert in alerts:
        assert alert.get("labels", {}).get("severity") in SEVERITIES, alert["alert"]
        annotations = alert.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), alert["alert"]
        # The annotations name what is affected through the series' own labels.
        assert "{{ $labels." in annotations["summary"], f"{alert['alert']}: summary names no label"


def test_expected_alerts_are_present():
    expr = {a["alert"]: " ".join(a["expr"].split()) for a in _alerts()}
    assert "queqiao_link_up == 0" in expr["QueqiaoLinkDown"]
    assert "queqiao_spacecraft_last_frame_timestamp_seconds" in expr["QueqiaoNoTelemetry"]
    assert "time()" in expr["QueqiaoNoTelemetry"]
    assert "queqiao_frames_rejected_total" in expr["QueqiaoFramesRejectedHigh"]
    assert "queqiao_frames_received_total" in expr["QueqiaoFramesRejectedHigh"]
    assert "queqiao_packet_gaps_total" in expr["QueqiaoPacketGaps"]
    assert "queqiao_frame_gaps_total" in expr["QueqiaoFrameGaps"]
    assert "queqiao_parameter_limit_state == 2" in expr["QueqiaoParameterCritical"]
    assert "queqiao_parameter_limit_state == 1" in expr["QueqiaoParameterWarningLong"]
    assert 'result=~"failed|timed_out"' in expr["QueqiaoCommandFailures"]


def test_every_alert_is_unit_tested_firing_and_quiet():
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fires == set(), f"alerts never tested firing: {sorted(names - fires)}"
    assert names - quiet == set(), f"alerts never tested staying quiet: {sorted(names - quiet)}"
    assert (fires | quiet) - names == set(), f"tests for unknown alerts: {sorted((fires | quiet) - names)}"


def test_rules_use_only_exported_metrics_and_labels():
    """Every queqiao_* name in the rules (expressions and annotations) is one the daemon exports."""
    known = set(SPECS)
    for path in RULES:
        text = path.read_text()
        used = set(re.findall(r"\bqueqiao_[a-z0-9_]+", text))
        assert used, path
        assert used - known == set(), f"{path.name}: metrics the daemon does not export: {sorted(used - known)}"
    for alert in _alerts():
        expr = alert["expr"]
        metrics_in_expr = set(re.findall(r"\bqueqiao_[a-z0-9_]+", expr))
        allowed = set(TARGET_LABELS)
        for name in metrics_in_expr:
            allowed |= set(SPECS[name].labels)
        grouping = re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr)
        selectors = re.findall(r"\{([^}]*)\}", expr)
        labels = {label.strip() for group in grouping for label in group.split(",") if label.strip()}
        labels |= {m.group(1) for sel in selectors for m in re.finditer(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", sel)}
        assert labels <= allowed, f"{alert['alert']}: labels {sorted(labels - allowed)} are not exported"
        for template in alert["annotations"].values():
            for label in re.findall(r"\$labels\.(\w+)", template):
                assert label in allowed, f"{alert['alert']}: annotation uses $labels.{label}, which it does not have"


def test_exporter_output_passes_promtool_check_metrics(promtool):
    """The daemon's /metrics text (every metric, with a sample) lints clean."""
    metrics = Metrics()
    for spec in METRICS:
        metrics.set(spec.name, tuple(f"{label}-value" for label in spec.labels), 1.0)
    metrics.latency.observe_many(np.array([0.0007, 0.02, 0.3]))
    proc = subprocess.run([promtool, "check", "metrics"], input=metrics.render(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
