"""`flightsw missions` and `flightsw run`: output, clear errors (exit 2), clean stop on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flightsw.cli import main
from protocols.ccsds.sync import FrameSynchronizer
from protocols.ccsds.vcmux import FrameDemux
from protocols.missions import registry

ROOT = Path(__file__).resolve().parents[2]


def test_missions_json(capsys):
    assert main(["missions", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in listed]
    assert {sc.name for sc in registry()} <= set(names)
    zhurong = listed[names.index("zhurong")]
    assert zhurong["scid"] == 83 and zhurong["tc_apid"] == 288
    assert zhurong["vcids"] == [1, 3, 63] and 289 in zhurong["tm_apids"]
    assert {m["name"]: m["sdls_required"] for m in listed if m["name"] in registry()} == {
        "zhurong": False, "tianwen1": False, "change5-orbiter": False, "change5-lander": False, "haiyang2d": True,
        "ilrs-lander": True}


def test_missions_text(capsys):
    assert main(["missions"]) == 0
    out = capsys.readouterr().out
    assert "haiyang2d" in out and "SCID 466" in out


@pytest.mark.parametrize("argv, message", [
    (["--mission", "nosuch", "--downlink", "udp://127.0.0.1:10015"], "unknown mission"),
    (["--mission", "zhurong", "--downlink", "udpx://127.0.0.1:1"], "unknown scheme"),
    (["--mission", "zhurong", "--downlink", "udp://127.0.0.1"], "needs a port"),
    (["--mission", "zhurong", "--downlink", "serial:///dev/does-not-exist"], "no serial device"),
    (["--mission", "zhurong", "--downlink", "udp://127.0.0.1:10015", "--fault", "melt:x"], "unknown fault kind"),
    (["--mission", "zhurong", "--downlink", "file:///no/such/dir/x.cadu"], "does not exist"),
    (["--mission", "zhurong", "--downlink", "udp://127.0.0.1:10015", "--hk-period", "nosuch=2"],
     "no housekeeping packet"),
])
def test_run_errors_exit_2(capsys, argv, message):
    assert main(["run", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("kind, role", [(socket.SOCK_STREAM, "downlink"), (socket.SOCK_DGRAM, "uplink")])
def test_port_in_use_is_detected_at_start(capsys, kind, role):
    with socket.socket(socket.AF_INET, kind) as busy:
        busy.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            busy.listen()
        port = busy.getsockname()[1]
        if role == "downlink":
            argv = ["--downlink", f"tcp-listen://127.0.0.1:{port}"]
        else:
            argv = ["--downlink", "udp://127.0.0.1:10015", "--uplink", f"udp://127.0.0.1:{port}"]
        assert main(["run", "--mission", "zhurong", *argv]) == 2
    assert f"cannot use port {port}" in capsys.readouterr().err


def _decode(capture: Path, mission: str = "zhurong"):
    profile = registry().spacecraft(mission).profile.frame
    frames = [f.data for f in FrameSynchronizer(profile.frame_length).feed(capture.read_bytes()).frames]
    return frames, FrameDemux(profile).feed(frames)


def test_run_with_duration_to_a_file(tmp_path, capsys):
    capture = tmp_path / "run.cadu"
    code = main(["run", "--mission", "zhurong", "--downlink", f"file://{capture}", "--duration", "10",
                 "--time-scale", "50", "--seed", "3", "--start", "2021-06-01T04:00:00Z",
                 "--fault", "stuck:zhurong.power.battery_voltage=20", "--hk-period", "power=1",
                 "--log-level", "WARNING"])
    assert code == 0
    frames, result = _decode(capture)
    assert len(frames) >= 300 and not result.anomalies
    power = registry().spacecraft("zhurong").housekeeping_packet("power")
    volts = [power.parse(p.data).hk.battery_voltage for p in result.packets
             if registry().resolve("zhurong", p.data) is power]
    assert len(volts) >= 10 and all(v == pytest.approx(20.0) for v in volts)
    assert "stopped after" in capsys.readouterr().err


def test_sigterm_stops_cleanly(tmp_path):
    capture = tmp_path / "sig.cadu"
    proc = subprocess.Popen([sys.executable, "-m", "flightsw.cli", "run", "--mission", "haiyang2d",
                             "--downlink", f"file://{capture}", "--time-scale", "10"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not capture.exists() or capture.stat().st_size < 20_000):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped after" in err
    frames, result = _decode(capture, "haiyang2d")
    assert frames and not result.anomalies
    assert capture.stat().st_size % (1115 + 4) == 0


def test_command_log_of_a_run(tmp_path):
    """`flightsw run --command-log`: one JSON line per telecommand run, flushed as it runs."""
    import json
    import socket as socket_module

    from protocols.ccsds.tcframe import TcFrame

    with socket_module.socket(socket_module.AF_INET, socket_module.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "commands.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "flightsw.cli", "run", "--mission", "zhurong",
                             "--downlink", f"file://{tmp_path / 'run.cadu'}", "--uplink", f"udp://127.0.0.1:{port}",
                             "--command-log", str(log), "--log-level", "WARNING"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    sc = registry().spacecraft("zhurong")
    try:
        capture = tmp_path / "run.cadu"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (capture.exists() and capture.stat().st_size):
            time.sleep(0.05)  # frames flow once both links are open: the uplink is bound
        with socket_module.socket(socket_module.AF_INET, socket_module.SOCK_DGRAM) as tx:
            for seq in range(3):
                tx.sendto(TcFrame(sc.scid, 0, sc.command("PING").build(sequence_count=seq), bypass_flag=1).build(),
                          ("127.0.0.1", port))
        entries: list[dict] = []
        while time.monotonic() < deadline and len(entries) < 3:
            time.sleep(0.1)
            entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [(e["command"], e["sequence_count"]) for e in entries] == [("PING", 0), ("PING", 1), ("PING", 2)]
    assert all(e["apid"] == sc.command("PING").apid and e["sim_time"] >= 0 for e in entries)


def test_flood_to_a_file(tmp_path):
    capture = tmp_path / "flood.cadu"
    assert main(["run", "--mission", "haiyang2d", "--downlink", f"file://{capture}", "--duration", "1",
                 "--time-scale", "2", "--flood", "--log-level", "WARNING"]) == 0
    frames, result = _decode(capture, "haiyang2d")
    assert len(result.packets) > 20_000 and not result.anomalies
