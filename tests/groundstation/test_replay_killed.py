"""A daemon killed with SIGKILL keeps its archive, and replaying it gives the decoded values it had exported."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.groundstation.test_chain import frames_for, hk_packets
from tests.groundstation.test_daemon import free_port

GS = [sys.executable, "-m", "groundstation.cli"]


def parameter_values(text: str) -> dict:
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == "queqiao_parameter_value"}


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_kill_9_then_replay_gives_the_same_values(tmp_path):
    udp, http = free_port(), free_port(socket.SOCK_STREAM)
    config = tmp_path / "gs.toml"
    config.write_text(f"""
[station]
http_listen = "127.0.0.1:{http}"
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{udp}"
[archive]
dir = "{tmp_path / 'archive'}"
fsync = "always"
""")
    daemon = subprocess.Popen([*GS, "run", "--config", str(config)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(200):
            try:
                health = json.loads(get(f"http://127.0.0.1:{http}/healthz"))
                if health["links"]["udp-in"] == "up":
                    break
            except OSError:
                time.sleep(0.05)
        frames, _ = frames_for("haiyang2d", hk_packets("haiyang2d", 6)[0])
        frames += frames_for("zhurong", hk_packets("zhurong", 6)[0])[0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for frame in frames:
                sender.sendto(frame, ("127.0.0.1", udp))
                time.sleep(0.001)
        for _ in range(200):
            text = get(f"http://127.0.0.1:{http}/metrics")
            if f'queqiao_frames_received_total{{link="udp-in"}} {float(len(frames))}' in text:
                break
            time.sleep(0.05)
        live = parameter_values(text)
        assert len(live) > 100
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    out = subprocess.run([*GS, "replay", str(tmp_path / "archive"), "--quiet", "--http", f"127.0.0.1:{http}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"replayed {len(frames)} frames" in out.stdout

    # Replay again, serving metrics, and compare every value with what the live daemon exported.
    replayer = subprocess.Popen([*GS, "replay", str(tmp_path / "archive"), "--quiet", "--http",
                                 f"127.0.0.1:{http}", "--hold"], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(400):
            try:
                replayed = parameter_values(get(f"http://127.0.0.1:{http}/metrics"))
                if len(replayed) == len(live):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert replayed == live
    finally:
        replayer.send_signal(signal.SIGINT)
        replayer.wait(10)
