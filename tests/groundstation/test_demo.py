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
