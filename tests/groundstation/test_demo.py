"""`groundstation demo` (the README's main job) shows live values of every emulated spacecraft within seconds."""
from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from protocols.missions import registry


def test_demo_exports_every_parameter_of_the_chosen_missions(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    missions = ["zhurong", "haiyang2d"]
    env = dict(os.environ, QUEQIAO_API_TOKEN="demo-test-token-0123456789")
    demo = subprocess.Popen([sys.executable, "-m", "groundstation.cli", "demo", "--http", f"127.0.0.1:{port}",
                             "--archive", str(tmp_path / "archive"), "--duration", "60",
                             *[a for m in missions for a in ("--mission", m)]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    expected = {m: sum(len(p.parameters()) for p in registry().spacecraft(m).housekeeping) for m in missions}
    seen: dict[str, int] = {}
    started = time.monotonic()
    try:
        while time.monotonic() - started < 30:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                continue
            seen = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "queqiao_parameter_value":
                        seen[sample.labels["spacecraft"]] = seen.get(sample.labels["spacecraft"], 0) + 1
            if seen == expected:
                break
        elapsed = time.monotonic() - started
        ping = subprocess.run([sys.executable, "-m", "groundstation.cli", "send", "--api", f"http://127.0.0.1:{port}",
                               "zhurong", "PING", "--wait", "--timeout", "30"],
                              env=env, capture_output=True, text=True, timeout=60)
        # haiyang2d requires SDLS: the demo made its keys and the ground authenticates the command.
        secured_ping = subprocess.run([sys.executable, "-m", "groundstation.cli", "send", "--api",
                                       f"http://127.0.0.1:{port}", "haiyang2d", "PING", "--wait", "--timeout", "30"],
                                      env=env, capture_output=True, text=True, timeout=60)
    finally:
        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=20)[0]
    assert seen == expected, output
    assert elapsed < 30
    assert ping.returncode == 0 and ping.stdout.splitlines()[-1].endswith("completed"), ping.stdout + ping.stderr
    assert secured_ping.returncode == 0 and secured_ping.stdout.splitlines()[-1].endswith("completed"), \
        secured_ping.stdout + secured_ping.stderr
    keys = tmp_path / "archive-keys"
    assert keys.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in keys.iterdir()] == ["haiyang2d.sdls.toml"]
    assert (keys / "haiyang2d.sdls.toml").stat().st_mode & 0o777 == 0o600
    assert f"SDLS keys   {keys}  (uplink of haiyang2d authenticated)" in output
    assert "API token   from $QUEQIAO_API_TOKEN" in output
    assert f"http://127.0.0.1:{port}/metrics" in output
    assert demo.returncode == 0, output


def test_demo_prints_a_generated_token_when_none_is_set():
    from groundstation.demo import banner

    class FakeDaemon:
        class http:
            url = "http://127.0.0.1:9108"

    out = io.StringIO()
    banner(FakeDaemon, ["zhurong"], __import__("pathlib").Path("/tmp/a"), "generated-token-xyz", out)
    assert "API token   generated-token-xyz" in out.getvalue()
    assert "groundstation send --api http://127.0.0.1:9108 zhurong PING --wait" in out.getvalue()


def test_banner_commands_work_when_pasted_into_a_fresh_shell(tmp_path):
    """The printed commands name the venv's script (no activation needed) and the real token."""
    import shlex
    from types import SimpleNamespace

    from groundstation.demo import banner

    out = io.StringIO()
    daemon = SimpleNamespace(http=SimpleNamespace(url="http://127.0.0.1:9"))
    banner(daemon, ["zhurong"], tmp_path, "tok-123", out=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if line.strip()}
    command = shlex.split(lines["command"].split(None, 1)[1])
    assert command[0] == "QUEQIAO_API_TOKEN=tok-123"
    program = Path(command[1]) if Path(command[1]).is_absolute() else Path.cwd() / command[1]
    help_run = subprocess.run([str(program), "send", "--help"], capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin"})  # a fresh shell: the venv is not activated
    assert help_run.returncode == 0 and "--api" in help_run.stdout, help_run.stderr
    assert command[2:] == ["send", "--api", "http://127.0.0.1:9", "zhurong", "PING", "--wait"]


def _samples(port: int) -> list:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def test_demo_with_a_bit_error_rate_on_tianwen1_corrects_every_codeword(tmp_path):
    """The README's `demo --fault tianwen1=ber:p=1e-4`: tianwen1 goes as RS-coded CADUs, the channel
    flips one bit in 10^4, the ground's Reed-Solomon stage corrects them all, and what is decoded is
    what was sent: no frame rejected, no packet lost to a sequence gap."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, QUEQIAO_API_TOKEN="demo-test-token-0123456789")
    demo = subprocess.Popen([sys.executable, "-m", "groundstation.cli", "demo", "--http", f"127.0.0.1:{port}",
                             "--archive", str(tmp_path / "archive"), "--duration", "120", "--mission", "tianwen1",
                             "--time-scale", "20", "--fault", "tianwen1=ber:p=1e-4"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    corrected: dict[str, float] = {}
    samples: list = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < 60:
            time.sleep(1.0)
            try:
                samples = _samples(port)
            except OSError:
                continue
            corrected = {s.labels["result"]: s.value for s in samples if s.name == "queqiao_rs_codewords_total"
                         and s.labels.get("spacecraft") == "tianwen1"}
            if corrected.get("corrected", 0) >= 20:
                break
    finally:
        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=20)[0]
    assert corrected.get("corrected", 0) >= 20 and corrected.get("clean", 0) > 0, (corrected, output[-2000:])
    assert corrected.get("uncorrectable", 0) == 0
    symbols = sum(s.value for s in samples if s.name == "queqiao_rs_corrected_symbols_total")
    assert symbols >= corrected["corrected"]
    rejected = sum(s.value for s in samples if s.name == "queqiao_frames_rejected_total")
    gaps = sum(s.value for s in samples if s.name in ("queqiao_packet_gaps_total", "queqiao_frame_gaps_total"))
    bad_packets = sum(s.value for s in samples if s.name == "queqiao_packets_rejected_total")
    assert (rejected, gaps, bad_packets) == (0, 0, 0), output[-2000:]
    assert demo.returncode == 0, output


@pytest.mark.slow
def test_the_events_of_a_demo_run_with_an_injected_fault_are_listed_by_the_api_and_the_cli(tmp_path):
    """The README's fault (150 W into zhurong's battery at time scale 60): the limit transitions it causes
    are events, served at /api/v1/events and printed by `groundstation events`."""
    import json

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "demo-test-token-0123456789"
    env = dict(os.environ, QUEQIAO_API_TOKEN=token)
    demo = subprocess.Popen([sys.executable, "-m", "groundstation.cli", "demo", "--http", f"127.0.0.1:{port}",
                             "--archive", str(tmp_path / "archive"), "--duration", "200", "--mission", "zhurong",
                             "--time-scale", "60", "--fault", "zhurong=thermal-runaway:battery=150"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    events: list[dict] = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < 150:
            time.sleep(2.0)
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/events?spacecraft=zhurong&limit=1000",
                                             headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    events = json.loads(response.read())["events"]
            except OSError:
                continue
            if any(e["event"] == "limit_critical" and e["data"].get("parameter") == "battery_temperature"
                   for e in events):
                break
        cli = subprocess.run([sys.executable, "-m", "groundstation.cli", "events", "--api", f"http://127.0.0.1:{port}",
                              "--spacecraft", "zhurong", "--limit", "1000"], env=env, capture_output=True, text=True,
                             timeout=60)
    finally:
        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=20)[0]
    battery = [e for e in events if e["data"].get("parameter") == "battery_temperature"]
    assert [e["event"] for e in battery][:2] == ["limit_warning", "limit_critical"], (events[-10:], output[-2000:])
    assert battery[0]["source"] == "ground" and battery[0]["severity"] == "medium"
    assert battery[1]["severity"] == "high" and battery[1]["time"] >= battery[0]["time"]
    assert cli.returncode == 0, cli.stdout + cli.stderr
    lines = cli.stdout.splitlines()
    assert any("limit_warning" in line and "battery_temperature" in line for line in lines), cli.stdout
    assert any("limit_critical" in line and "battery_temperature" in line for line in lines), cli.stdout


def test_the_demo_ports_are_distinct():
    from groundstation.demo import free_udp_ports

    ports = free_udp_ports(40)
    assert len(set(ports)) == 40 and all(0 < p < 65536 for p in ports)
