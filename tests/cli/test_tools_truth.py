"""The operator tools say what their input is: archive segments, empty archives, filters, a closed pipe."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from groundstation.archive import ArchiveWriter
from protocols.ccsds.tmframe import FrameProfile
from tests.cli.test_inspect import SCRIPT, build_frames, of_kind, tm_packets

#: The console scripts import this checkout's code, wherever the venv was installed from.
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def inspect(*args: str) -> tuple[int, list[dict], str]:
    proc = subprocess.run([str(SCRIPT), "inspect", *args], capture_output=True, text=True, timeout=60, env=ENV)
    lines = [json.loads(line) for line in proc.stdout.splitlines()] if "--json" in args else []
    return proc.returncode, lines, proc.stdout + proc.stderr


def _archive(tmp_path: Path, frames: list[bytes], time_ns: int = 1_700_000_000 * 10**9) -> Path:
    directory = tmp_path / "archive"
    writer = ArchiveWriter(directory)
    writer.append_many(frames, link="udp-in", time_ns=time_ns)
    writer.close()
    return directory


def _frames() -> list[bytes]:
    return build_frames(FrameProfile(frame_length=256), tm_packets(12))


def test_inspect_on_an_archive_segment_says_so_and_points_to_replay(tmp_path):
    directory = _archive(tmp_path, _frames())
    segment = next(directory.glob("*.qqa"))
    code, _, out = inspect(str(segment))
    assert code == 2 and "archive segment" in out and f"groundstation replay {directory}" in out
    assert "errors 0" not in out


def test_inspect_filters_by_vc_apid_and_idle(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"".join(_frames()))
    args = ("--format", "frames", "--frame-length", "256", "--json")
    _, everything, _ = inspect(str(path), *args)
    assert {r["vcid"] for r in of_kind(everything, "frame")} >= {1, 2}
    _, vc1, _ = inspect(str(path), *args, "--vc", "1")
    assert of_kind(vc1, "frame") and {r["vcid"] for r in of_kind(vc1, "frame") + of_kind(vc1, "packet")} == {1}
    _, apid, _ = inspect(str(path), *args, "--apid", str(0x65))
    assert not of_kind(apid, "frame") and [r["apid"] for r in of_kind(apid, "packet")] == [0x65] * 6
    _, busy, _ = inspect(str(path), *args, "--no-idle")
    idle_frames = [r for r in of_kind(everything, "frame") if r["fhp"] == 0x7FE]
    assert idle_frames and len(of_kind(busy, "frame")) == len(of_kind(everything, "frame")) - len(idle_frames)
    assert not any(r.get("idle") for r in of_kind(busy, "packet"))


def test_inspect_into_head_ends_quietly(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"".join(_frames()) * 200)
    pipeline = subprocess.run(f"'{SCRIPT}' inspect --format frames --frame-length 256 '{path}' | head -n 2",
                              shell=True, capture_output=True, text=True, timeout=60, env=ENV)
    assert len(pipeline.stdout.splitlines()) == 2 and pipeline.stderr == "", pipeline.stderr


def _replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("groundstation")), "replay", "--quiet", *args],
                          capture_output=True, text=True, timeout=60, env=ENV)


def test_replay_of_an_empty_directory_or_range_says_so(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _replay(str(empty))
    assert proc.returncode == 1 and "no archive segments" in proc.stdout
    directory = _archive(tmp_path, _frames())
    proc = _replay(str(directory), "--from", "2030-01-01T00:00:00Z")
    assert proc.returncode == 1 and "no frames" in proc.stdout and "2030-01-01" in proc.stdout
    proc = _replay(str(directory))
    assert proc.returncode == 0 and f"replayed {len(_frames())} frames" in proc.stdout


def test_demo_banner_follows_http():
    from groundstation.demo import banner

    class FakeDaemon:
        class http:
            url = "http://127.0.0.1:22411"

    out = io.StringIO()
    banner(FakeDaemon, ["zhurong"], Path("/tmp/a"), None, out)
    text = out.getvalue()
    assert "http://127.0.0.1:22411/metrics" in text and "change the target to 127.0.0.1:22411" in text
    assert "9108/" not in text and "groundstation events --api http://127.0.0.1:22411" in text


def test_inspect_values_prints_engineering_values_units_and_iso_utc_times(tmp_path):
    from tests.groundstation.test_chain import frames_for, hk_packets

    packets, given = hk_packets("haiyang2d", 1)  # TM frames: inspect reads their profile from the frames
    frames, profile = frames_for("haiyang2d", packets)
    path = tmp_path / "haiyang2d.frames"
    path.write_bytes(b"".join(frames))
    args = ["--format", "frames", "--frame-length", str(profile.frame_length), "--values"]
    code, lines, out = inspect(str(path), *args, "--json", "--no-idle")
    assert code == 0, out
    decoded = {r["packet"]: r for r in of_kind(lines, "packet") if "values" in r}
    assert set(decoded) == set(given)
    checked = states = 0
    for name, (packet, values) in given.items():
        for dotted, param in packet.parameters():
            field = dotted.split(".", 1)[1]
            got = decoded[name]["values"][field]
            if param.calibration.is_state:
                assert got == {"value": values[field], "unit": ""} and isinstance(values[field], str)
                states += 1
            else:
                assert got["unit"] == param.unit
                assert abs(got["value"] - values[field]) <= param.calibration.resolution() + 1e-9
                checked += 1
        # CUC coarse 2_000_000_000 s from the 1958 TAI epoch, less the leap seconds: 2021-05-18 UTC.
        assert decoded[name]["time_utc"].startswith("2021-05-18T") and decoded[name]["time_utc"].endswith("Z")
    assert checked and states
    _, _, text = inspect(str(path), *args)
    unit_param = next(p for pk, _ in given.values() for _, p in pk.parameters() if p.unit and not p.calibration.is_state)
    assert f" {unit_param.unit}" in text and "2021-05-18T" in text and "=" in text
