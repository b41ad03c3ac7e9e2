"""`groundstation send SPACECRAFT COMMAND --wait` against `flightsw run` and `groundstation run` processes,
over UDP, TCP (CADUs down, CLTUs up) and MQTT through a real Mosquitto."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack

import pytest

from links.keyfiles import new_associations, write_key_file
from protocols.missions import registry
from tests.realcomponents.components import Mosquitto

TOKEN = "station-token-for-tests-000111"
PY = sys.executable


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(stack: ExitStack, argv: list[str], env: dict) -> subprocess.Popen:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    stack.callback(stop)
    return process


def wait_ready(http: int, process: subprocess.Popen, commanded: str) -> None:
    for _ in range(300):
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=2) as response:
                if json.loads(response.read())["status"] == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("daemon not ready")


INSTRUMENT = {"zhurong": "ROPER", "haiyang2d": "ALTIMETER"}


def sdls_keys(tmp_path, mission, spi: int = 1) -> tuple[list[str], str]:
    """For a spacecraft that requires SDLS: (the emulator's --sdls-keys arguments, the [[spacecraft]] lines).
    The key file holds SPI 1 (HMAC-SHA-256) and SPI 2 (AES-256-GCM); the ground uses ``spi``."""
    if not registry().spacecraft(mission).sdls_required:
        return [], ""
    path = write_key_file(tmp_path / f"{mission}.sdls.toml", mission,
                          new_associations({1: "HMAC-SHA-256", 2: "AES-256-GCM"}))
    return ["--sdls-keys", str(path)], f'sdls_key_file = "{path}"\nsdls_spi = {spi}'


def station_config(tmp_path, http: int, link_lines: str, mission: str, uplink: str, key_line: str, *,
                   verification_timeout_s: float | None = 30):
    """The ground station's configuration file for one commanded spacecraft."""
    config = tmp_path / "gs.toml"
    timeout = f"verification_timeout_s = {verification_timeout_s}" if verification_timeout_s else ""
    config.write_text(f"""
[station]
http_listen = "127.0.0.1:{http}"
[[links]]
name = "downlink"
{link_lines}
[[spacecraft]]
name = "{mission}"
uplink = "{uplink}"
{key_line}
[archive]
dir = "{tmp_path / 'archive'}"
[commanding]
enabled = true
{timeout}
""")
    return config


class NullModem:
    """Two pseudo-terminals wired back to back, like two UARTs and a cable: what one end
    writes, the other reads.  Yields the two device paths."""

    def __init__(self) -> None:
        import threading

        self.pairs = [os.openpty(), os.openpty()]
        self.paths = [os.ttyname(slave) for _, slave in self.pairs]
        for _, slave in self.pairs:
            import tty
            tty.setraw(slave)
        self.running = True
        masters = [master for master, _ in self.pairs]
        self.threads = [threading.Thread(target=self._pump, args=(masters[0], masters[1]), daemon=True),
                        threading.Thread(target=self._pump, args=(masters[1], masters[0]), daemon=True)]
        for thread in self.threads:
            thread.start()

    def _pump(self, source: int, sink: int) -> None:
        import select

        while self.running:
            ready, _, _ = select.select([source], [], [], 0.1)
            if ready:
                try:
                    os.write(sink, os.read(source, 65536))
                except OSError:
                    return

    def close(self) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(2)
        for master, slave in self.pairs:
            os.close(master)
            os.close(slave)


def setups(tmp_path, mission, stack):
    udp_down, udp_up, tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM), free_port()
    down, up = NullModem(), NullModem()
    stack.callback(down.close)
    stack.callback(up.close)
    return {
        "udp": (["--downlink", f"udp://127.0.0.1:{udp_down}", "--uplink", f"udp://127.0.0.1:{udp_up}"],
                f'url = "udp://127.0.0.1:{udp_down}"', f"udp://127.0.0.1:{udp_up}"),
        "tcp": (["--downlink", f"tcp-listen://127.0.0.1:{tcp}"],
                f'url = "tcp://127.0.0.1:{tcp}"\nspacecraft = "{mission}"', f"tcp://127.0.0.1:{tcp}"),
        # Two serial lines: CADUs down one, CLTUs up the other.
        "serial": (["--downlink", f"serial://{down.paths[0]}?baud=115200",
                    "--uplink", f"serial://{up.paths[0]}?baud=115200"],
                   f'url = "serial://{down.paths[1]}?baud=115200"\nspacecraft = "{mission}"',
                   f"serial://{up.paths[1]}?baud=115200"),
    }


def run_round_trip(tmp_path, mission, emulator_args, link_lines, uplink, env_extra=None):
    http = free_port()
    env = dict(os.environ, QUEQIAO_API_TOKEN=TOKEN, **(env_extra or {}))
    key_args, key_line = sdls_keys(tmp_path, mission)
    config = station_config(tmp_path, http, link_lines, mission, uplink, key_line)
    with ExitStack() as stack:
        fsw = start(stack, [PY, "-m", "flightsw.cli", "run", "--mission", mission, "--bitrate", "100000",
                            *emulator_args, *key_args], env)
        time.sleep(0.3)
        gs = start(stack, [PY, "-m", "groundstation.cli", "run", "--config", str(config)], env)
        wait_ready(http, gs, mission)
        results = {}
        for command in (["PING"], ["POWER_INSTRUMENT", f"instrument={INSTRUMENT[mission]}", "state=ON"]):
            out = subprocess.run([PY, "-m", "groundstation.cli", "send", "--api", f"http://127.0.0.1:{http}",
                                  mission, *command, "--wait", "--timeout", "40"],
                                 env=env, capture_output=True, text=True, timeout=60)
            results[command[0]] = out
        assert fsw.poll() is None
    for name, out in results.items():
        assert out.returncode == 0, (name, out.stdout, out.stderr)
        lines = out.stdout.splitlines()
        assert lines[-1].endswith(": completed"), out.stdout
        assert any(line.strip().split()[-1] == "accepted" or " accepted" in line for line in lines), out.stdout


# zhurong: type-BD frames (its AOS downlink has no CLCW); haiyang2d: COP-1 on its TM CLCW.
@pytest.mark.parametrize("mission", ["zhurong", "haiyang2d"])
@pytest.mark.parametrize("transport", ["udp", "tcp", "serial"])
def test_send_wait_over_sockets_and_serial(tmp_path, transport, mission):
    with ExitStack() as stack:
        emulator_args, link_lines, uplink = setups(tmp_path, mission, stack)[transport]
        run_round_trip(tmp_path, mission, emulator_args, link_lines, uplink)


@pytest.mark.parametrize("mission", ["zhurong", "haiyang2d"])
def test_send_wait_over_mqtt(tmp_path, mission):
    with Mosquitto(tmp_path / "broker") as broker:  # __enter__ starts it
        url = f"{broker.url}/queqiao"
        run_round_trip(tmp_path, mission, ["--downlink", url], f'url = "{url}"', url)


def test_send_fails_with_nonzero_exit_when_the_spacecraft_refuses(tmp_path):
    """ENTER_SAFE_MODE, then an instrument ON: refused in mode -> failed, exit 1."""
    with ExitStack() as stack:
        emulator_args, link_lines, uplink = setups(tmp_path, "haiyang2d", stack)["udp"]
    http = free_port()
    env = dict(os.environ, QUEQIAO_API_TOKEN=TOKEN)
    key_args, key_line = sdls_keys(tmp_path, "haiyang2d")
    config = station_config(tmp_path, http, link_lines, "haiyang2d", uplink, key_line, verification_timeout_s=None)
    send = [PY, "-m", "groundstation.cli", "send", "--api", f"http://127.0.0.1:{http}", "haiyang2d"]
    with ExitStack() as stack:
        start(stack, [PY, "-m", "flightsw.cli", "run", "--mission", "haiyang2d", "--bitrate", "256000",
                      *emulator_args, *key_args], env)
        time.sleep(0.3)
        gs = start(stack, [PY, "-m", "groundstation.cli", "run", "--config", str(config)], env)
        wait_ready(http, gs, "haiyang2d")
        safe = subprocess.run([*send, "ENTER_SAFE_MODE", "--wait"], env=env, capture_output=True, text=True, timeout=60)
        assert safe.returncode == 0, safe.stdout + safe.stderr
        refused = subprocess.run([*send, "POWER_INSTRUMENT", "instrument=ALTIMETER", "state=ON", "--wait"],
                                 env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "failed" in refused.stdout.splitlines()[-1] or "rejected" in refused.stdout.splitlines()[-1]


@pytest.mark.slow
def test_the_readme_drive_example_completes_and_exits_0(tmp_path):
    """The README's `send zhurong DRIVE ... --wait`, as written there, against real processes: the
    completion window follows the drive, so the ground waits for the rover and reports completed."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"^\.venv/bin/groundstation (send zhurong DRIVE [^#\n]*--wait)", readme, re.M)
    assert match, "the README's DRIVE example is gone"
    argv = shlex.split(match.group(1))
    down, up, http = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM), free_port()
    env = dict(os.environ, QUEQIAO_API_TOKEN=TOKEN)
    config = station_config(tmp_path, http, f'url = "udp://127.0.0.1:{down}"', "zhurong", f"udp://127.0.0.1:{up}", "",
                            verification_timeout_s=None)  # the station defaults, as the demo runs
    with ExitStack() as stack:
        start(stack, [PY, "-m", "flightsw.cli", "run", "--mission", "zhurong", "--downlink", f"udp://127.0.0.1:{down}",
                      "--uplink", f"udp://127.0.0.1:{up}"], env)
        time.sleep(0.3)
        gs = start(stack, [PY, "-m", "groundstation.cli", "run", "--config", str(config)], env)
        wait_ready(http, gs, "zhurong")
        out = subprocess.run([PY, "-m", "groundstation.cli", argv[0], "--api", f"http://127.0.0.1:{http}", *argv[1:]],
                             env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    stages = [line.split()[1] for line in out.stdout.splitlines()[1:-1]]
    assert stages[:4] == ["queued", "uplinked", "accepted", "started"] and "progress" in stages
    assert stages[-1] == "completed" and out.stdout.splitlines()[-1].endswith(": completed")
