"""deploy/prometheus on a real Prometheus scraping a real `groundstation run`.

The shipped prometheus.yml (targets moved to free loopback ports, the rule file by absolute
path, scrape and evaluation intervals as shipped) loads, scrapes the daemon, and every
alert rule evaluates against the daemon's live series without error.  Which alert fires
when is the business of the promtool unit tests (deploy/prometheus/tests).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deploy_helpers import DEPLOY, REPO, groundstation_process, need_tool

PROM = DEPLOY / "prometheus"
JOB = "queqiao-groundstation"

from tests.realcomponents import components  # noqa: E402


class ShippedConfigPrometheus(components.Prometheus):
    def __init__(self, workdir: Path, daemon: str, **kwargs) -> None:
        super().__init__(workdir, [daemon], **kwargs)
        self.daemon = daemon

    def _write_config(self) -> None:
        config = yaml.safe_load((PROM / "prometheus.yml").read_text())
        config["rule_files"] = [str((PROM / f).resolve()) for f in config["rule_files"]]
        for job in config["scrape_configs"]:
            target = self.daemon if job["job_name"] == JOB else f"{self.host}:{self.port}"
            job["static_configs"] = [{"targets": [target]}]
        self.config_path.write_text(yaml.safe_dump(config))



@pytest.fixture
def daemon(tmp_path):
    """`groundstation run` with one UDP link, on free loopback ports."""
    port, udp = components.free_port(), components.free_port()
    config = tmp_path / "groundstation.toml"
    config.write_text(f"""
[station]
name = "deploy-test"
http_listen = "127.0.0.1:{port}"

[[links]]
name = "emulator-udp"
url = "udp://127.0.0.1:{udp}"
format = "frames"

[[spacecraft]]
name = "zhurong"

[archive]
dir = "{tmp_path / 'archive'}"
""")
    exe = REPO / ".venv" / "bin" / "groundstation"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "groundstation.cli"]
    help_proc = subprocess.run([*argv, "run", "--help"], capture_output=True, text=True, timeout=60)
    assert help_proc.returncode == 0, f"`groundstation run --help` failed:\n{help_proc.stderr}"
    with groundstation_process([*argv, "run", "--config", str(config)], f"127.0.0.1:{port}",
                               tmp_path / "daemon.log", what="groundstation run", cwd=tmp_path):
        yield f"127.0.0.1:{port}"


def test_shipped_config_scrapes_the_daemon_and_every_rule_evaluates(daemon, tmp_path):
    need_tool("prometheus", "prometheus", debian_path="/usr/bin/prometheus")
    prom = ShippedConfigPrometheus(tmp_path / "prometheus", daemon)
    prom.start()
    try:
        assert prom.wait_for_value(f'up{{job="{JOB}"}}', lambda v: v == 1, timeout=30) == 1
        assert prom.wait_for_value('queqiao_link_up{link="emulator-udp"}', timeout=30) == 1

        def all_rules_evaluated():
            groups = prom.api("rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            done = rules and all(r.get("lastEvaluation", "").startswith("0001") is False for r in rules)
            return rules if done and all(r["health"] == "ok" for r in rules) else None

        try:
            rules = components.wait_until(all_rules_evaluated, timeout=30, interval=0.5, what="every rule evaluated ok")
        except TimeoutError:
            groups = prom.api("rules")["groups"]
            bad = [(r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
            raise AssertionError(f"rules not healthy: {bad}") from None
        shipped = yaml.safe_load((PROM / "rules" / "queqiao.rules.yml").read_text())
        names = {r["alert"] for g in shipped["groups"] for r in g["rules"] if "alert" in r}
        assert {r["name"] for r in rules} == names
        # A healthy daemon with its link up and no traffic yet: nothing is firing.
        firing = [a for a in prom.api("alerts")["alerts"] if a["state"] == "firing"]
        assert firing == [], firing
    finally:
        prom.stop()
