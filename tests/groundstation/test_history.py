"""`groundstation history`, the parameter API and `replay --parameters` on a real demo run's archive."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.realcomponents.components import free_port

TOKEN = "history-test-token-0123456789"
DURATION = 24


def groundstation(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "groundstation.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=env)


def api(port: int, path: str, token: str | None = TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A haiyang2d demo for DURATION seconds; the API answers are taken while it runs."""
    archive = tmp_path_factory.mktemp("history") / "archive"
    port = free_port()
    env = dict(os.environ, QUEQIAO_API_TOKEN=TOKEN)
    demo = subprocess.Popen([sys.executable, "-m", "groundstation.cli", "demo", "--mission", "haiyang2d", "--http",
                             f"127.0.0.1:{port}", "--archive", str(archive), "--duration", str(DURATION)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    answers = {}
    try:
        time.sleep(13)  # two flush intervals of the parameter archive
        answers["recent"] = api(port, "/api/v1/parameters/haiyang2d/altimeter_range?limit=5")
        answers["two"] = api(port, "/api/v1/parameters/haiyang2d/altimeter_range,altimeter.sea_surface_height")
        answers["typo"] = api(port, "/api/v1/parameters/haiyang2d/altimeter_rang")
        answers["spacecraft"] = api(port, "/api/v1/parameters/voyager1/altimeter_range")
        answers["bad_time"] = api(port, "/api/v1/parameters/haiyang2d/altimeter_range?from=yesterday")
        answers["bad_limit"] = api(port, "/api/v1/parameters/haiyang2d/altimeter_range?limit=99999999999999999999")
        answers["no_token"] = api(port, "/api/v1/parameters/haiyang2d/altimeter_range", token=None)
        answers["future"] = api(port, "/api/v1/parameters/haiyang2d/altimeter_range?from=2099-01-01T00:00:00Z")
        output = demo.communicate(timeout=DURATION + 30)[0]
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            demo.communicate(timeout=20)
    assert demo.returncode == 0, output
    return archive, answers


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_history_lists_every_sample_of_a_1hz_parameter_with_both_times(demo_run):
    archive, _ = demo_run
    result = groundstation("history", "haiyang2d", "altimeter_range", "--archive", str(archive), "--format", "csv")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split(",")
    assert header[:2] == ["onboard_time", "ground_time"]
    rows = csv_rows(result.stdout)
    assert DURATION - 6 <= len(rows) <= DURATION + 1, len(rows)  # a 1 Hz packet, from the first frames to the end
    onboard = [r["onboard_time"] for r in rows]
    assert len(set(onboard)) == len(rows) and onboard == sorted(onboard)
    assert {r["parameter"] for r in rows} == {"altimeter_range"} and {r["unit"] for r in rows} == {"km"}
    assert all(float(r["eng_value"]) > 0 and r["limit_state"] == "nominal" for r in rows)


def test_the_api_answers_from_the_archive_and_refuses_bad_requests_clearly(demo_run):
    _, answers = demo_run
    status, body = answers["recent"]
    assert status == 200 and body["count"] == 5 and len(body["samples"]) == 5
    assert {s["parameter"] for s in body["samples"]} == {"altimeter_range"}
    assert all(s["onboard_time"].endswith("Z") and s["ground_time"].endswith("Z") for s in body["samples"])
    status, body = answers["two"]
    assert status == 200 and {s["parameter"] for s in body["samples"]} == {"altimeter_range", "sea_surface_height"}
    status, body = answers["typo"]
    assert status == 404 and "did you mean altimeter_range" in body["error"]
    assert answers["spacecraft"][0] == 404
    assert answers["bad_time"][0] == 400 and "ISO 8601" in answers["bad_time"][1]["error"]
    assert answers["bad_limit"][0] == 400
    assert answers["no_token"][0] == 401
    status, body = answers["future"]
    assert status == 200 and body["count"] == 0 and "no samples" in body["message"]


def test_replay_rebuilds_the_parameter_archive_from_the_frames(demo_run, tmp_path):
    archive, _ = demo_run
    before = groundstation("history", "haiyang2d", "altimeter_range,battery_voltage,aocs_mode", "--archive",
                           str(archive), "--format", "csv").stdout
    replay = groundstation("replay", str(archive), "--spacecraft", "haiyang2d", "--parameters", "--quiet")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "archived samples of the range removed" in replay.stdout
    after = groundstation("history", "haiyang2d", "altimeter_range,battery_voltage,aocs_mode", "--archive",
                          str(archive), "--format", "csv").stdout
    key = lambda r: (r["onboard_time"], r["parameter"])  # noqa: E731
    assert sorted(csv_rows(after), key=key) == sorted(csv_rows(before), key=key)
    modes = [r for r in csv_rows(after) if r["parameter"] == "aocs_mode"]
    assert modes and all(r["state"] and not r["state"].isdigit() and r["eng_value"] == "" for r in modes)


def test_history_formats_and_errors(demo_run, tmp_path):
    archive, _ = demo_run
    as_json = json.loads(groundstation("history", "haiyang2d", "altimeter_range", "--archive", str(archive),
                                       "--format", "json", "--limit", "3").stdout)
    assert as_json["count"] == 3 and as_json["spacecraft"] == "haiyang2d"
    table = groundstation("history", "haiyang2d", "battery_voltage", "--archive", str(archive))
    assert table.returncode == 0 and table.stdout.split()[:2] == ["onboard_time", "ground_time"]
    out = tmp_path / "samples.parquet"
    parquet = groundstation("history", "haiyang2d", "altimeter_range", "--archive", str(archive), "--format",
                            "parquet", "--output", str(out))
    assert parquet.returncode == 0
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == len(csv_rows(groundstation(
        "history", "haiyang2d", "altimeter_range", "--archive", str(archive), "--format", "csv").stdout))
    unknown = groundstation("history", "haiyang2d", "altimeter_rnage", "--archive", str(archive))
    assert unknown.returncode == 2 and "did you mean altimeter_range" in unknown.stderr
    assert groundstation("history", "nosuchcraft", "x", "--archive", str(archive)).returncode == 2
    bad = groundstation("history", "haiyang2d", "altimeter_range", "--archive", str(archive), "--from", "soon")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr and "Traceback" not in bad.stderr
    empty = groundstation("history", "haiyang2d", "altimeter_range", "--archive", str(archive), "--from", "2099-01-01")
    assert empty.returncode == 1 and "no samples of altimeter_range" in empty.stderr
    piped = subprocess.run(f"{sys.executable} -m groundstation.cli history haiyang2d altimeter_range --archive "
                           f"{archive} | head -n 2", shell=True, capture_output=True, text=True, timeout=60)
    assert len(piped.stdout.splitlines()) == 2 and piped.stderr == ""
