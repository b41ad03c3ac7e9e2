"""Prometheus remote write of every sample into two real receivers: Prometheus and VictoriaMetrics."""
from __future__ import annotations

import asyncio
import time

import cramjam
import numpy as np
import pytest

from groundstation.remote_write import Endpoint, RemoteWriter, WriteRequest
from protocols.missions import builtin_registry
from tests.realcomponents.components import Prometheus, VictoriaMetrics, free_port

pytestmark = pytest.mark.realcomponents

HAIYANG = builtin_registry().spacecraft("haiyang2d")
POWER = next(p for p in HAIYANG.housekeeping if p.name == "power")
ALTIMETER = next(p for p in HAIYANG.housekeeping if p.name == "altimeter")


def raw_columns(definition, count: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for path, parameter in definition.parameters():
        states = getattr(parameter.calibration, "states", None)
        out[path] = rng.choice(sorted(states), count) if states else rng.integers(0, 5000, count)
    return out


def expected_values(definition, groups, path):
    parameter = dict(definition.parameters())[path]
    raw = np.concatenate([g[path] for g in groups])
    return raw.astype(float) if getattr(parameter.calibration, "states", None) else parameter.calibration.to_eng_array(raw)


def test_a_write_request_is_snappy_protobuf_with_sorted_labels_and_every_sample():
    writer = RemoteWriter([Endpoint("http://127.0.0.1:1/api/v1/write")], external_labels={"station": "kashi"})
    now = time.time()
    raw = raw_columns(POWER, 3, seed=1)
    writer.add("haiyang2d", POWER, raw, now - 10 + np.arange(3), now)
    ((body, count),) = writer.encode_pending()
    assert count == 3 * len(POWER.parameters())
    request = WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
    assert len(request.timeseries) == len(POWER.parameters())
    for series in request.timeseries:
        labels = [(label.name, label.value) for label in series.labels]
        assert labels == sorted(labels)
        named = dict(labels)
        assert named["__name__"] == "queqiao_parameter_value" and named["station"] == "kashi"
        # Three samples of one series in one batch share a receipt time: spaced 1 ms apart, none lost.
        assert [s.timestamp for s in series.samples] == [int(now * 1000) + i for i in range(3)]
        path = next(p for p, _ in POWER.parameters() if p.endswith("." + named["parameter"]))
        assert [s.value for s in series.samples] == pytest.approx(list(expected_values(POWER, [raw], path)))


async def run_writer_until(writer: RemoteWriter, done, timeout: float = 30.0) -> None:
    task = asyncio.create_task(writer.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_every_sample_reaches_prometheus_and_victoria_metrics_across_a_receiver_restart(tmp_path):
    prometheus = Prometheus(tmp_path / "prometheus", [], extra_args=["--web.enable-remote-write-receiver"]).start()
    victoria = VictoriaMetrics(tmp_path / "victoria").start()
    try:
        endpoints = [Endpoint(f"{prometheus.url}/api/v1/write", name="prometheus"),
                     Endpoint(victoria.write_url, name="victoria")]
        writer = RemoteWriter(endpoints, interval=0.2, backoff_initial=0.1, backoff_max=0.5)
        start = time.time() - 300
        groups = {POWER.name: [], ALTIMETER.name: []}
        onboard = []

        def feed(first: int, last: int) -> None:
            for i in range(first, last):  # one batch per "second" of the last five minutes
                for definition, count in ((POWER, 1), (ALTIMETER, 4)):
                    raw = raw_columns(definition, count, seed=i)
                    groups[definition.name].append(raw)
                    onboard.append(start + i)
                    writer.add("haiyang2d", definition, raw, start + i + np.arange(count) * 0.25, start + i + 0.5)

        feed(0, 100)
        await run_writer_until(writer, lambda: all(e.stats.samples_sent == writer.samples_encoded for e in endpoints))
        victoria.stop()                        # the receiver goes away in the middle ...
        feed(100, 200)
        task = asyncio.create_task(writer.run())
        try:
            async with asyncio.timeout(20):
                while endpoints[1].stats.samples_retried == 0:
                    await asyncio.sleep(0.05)
            assert endpoints[1].queued_samples > 0
            victoria.start()                   # ... and comes back with the same storage
            async with asyncio.timeout(30):
                while any(e.stats.samples_sent != writer.samples_encoded for e in endpoints):
                    await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert all(e.stats.samples_dropped == 0 for e in endpoints)
        for receiver in (prometheus, victoria):
            for definition in (POWER, ALTIMETER):
                for path, _ in definition.parameters():
                    name = path.rsplit(".", 1)[-1]
                    expected = expected_values(definition, groups[definition.name], path)
                    selector = f'queqiao_parameter_value{{spacecraft="haiyang2d",parameter="{name}"}}'
                    count = await asyncio.to_thread(receiver.wait_for_value, f"count_over_time({selector}[1h])",
                                                    lambda v, n=expected.size: v == n, timeout=30)
                    total = await asyncio.to_thread(receiver.query_value, f"sum_over_time({selector}[1h])")
                    assert count == expected.size, (receiver.name, name)
                    assert total == pytest.approx(float(expected.sum()), rel=1e-9), (receiver.name, name)
    finally:
        victoria.stop()
        prometheus.stop()


async def test_a_refused_request_is_dropped_and_counted_not_retried_for_ever(tmp_path):
    prometheus = Prometheus(tmp_path / "prometheus", [], extra_args=["--web.enable-remote-write-receiver"]).start()
    try:
        endpoint = Endpoint(f"{prometheus.url}/api/v1/write/nonexistent", name="wrong path")
        writer = RemoteWriter([endpoint], interval=0.1)
        writer.add("haiyang2d", POWER, raw_columns(POWER, 2, seed=0), None, time.time())
        await run_writer_until(writer, lambda: endpoint.stats.samples_dropped > 0, timeout=15)
        assert endpoint.stats.samples_dropped == 2 * len(POWER.parameters())
        assert endpoint.stats.samples_sent == 0 and not endpoint.queue
    finally:
        prometheus.stop()


def test_the_queue_is_bounded_and_drops_the_oldest():
    endpoint = Endpoint("http://127.0.0.1:1/api/v1/write", queue_max_samples=100)
    for i in range(5):
        endpoint.put(bytes([i]), 40)
    assert [body for body, _ in endpoint.queue] == [bytes([3]), bytes([4])]
    assert endpoint.stats.samples_dropped == 120 and endpoint.queued_samples == 80


def test_a_demo_run_puts_every_archived_sample_into_both_receivers_across_a_restart(tmp_path):
    import csv
    import io
    import os
    import subprocess
    import sys

    prometheus = Prometheus(tmp_path / "prometheus", [], extra_args=["--web.enable-remote-write-receiver"]).start()
    victoria = VictoriaMetrics(tmp_path / "victoria").start()
    archive = tmp_path / "archive"
    try:
        env = dict(os.environ, QUEQIAO_API_TOKEN="remote-write-test-token-0123456789")
        demo = subprocess.Popen(
            [sys.executable, "-m", "groundstation.cli", "demo", "--mission", "haiyang2d", "--archive", str(archive),
             "--http", f"127.0.0.1:{free_port()}", "--duration", "30",
             "--remote-write", f"{prometheus.url}/api/v1/write", "--remote-write", victoria.write_url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            time.sleep(10)
            victoria.stop()        # the receiver restarts in the middle of the run
            time.sleep(6)
            victoria.start()
            output = demo.communicate(timeout=90)[0]
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.communicate()
        assert demo.returncode == 0, output
        names = [p.rsplit(".", 1)[-1] for d in HAIYANG.housekeeping for p, _ in d.parameters()]
        history = subprocess.run([sys.executable, "-m", "groundstation.cli", "history", "haiyang2d", ",".join(names),
                                  "--archive", str(archive), "--format", "csv"], capture_output=True, text=True,
                                 timeout=60)
        archived: dict[str, int] = {}
        for row in csv.DictReader(io.StringIO(history.stdout)):
            archived[row["parameter"]] = archived.get(row["parameter"], 0) + 1
        assert set(archived) == set(names) and archived["altimeter_range"] >= 20
        for receiver in (prometheus, victoria):
            # A receiver makes what it acknowledged searchable within seconds, not at once (newer
            # VictoriaMetrics releases flush their in-memory rows for search about every second):
            # wait a bounded while for the counts to settle, then they must equal the archive's.
            deadline = time.monotonic() + 20
            while True:
                counts = {r["metric"]["parameter"]: int(float(r["value"][1])) for r in receiver.query(
                    'count_over_time(queqiao_parameter_value{spacecraft="haiyang2d",station="queqiao-demo"}[1h])')}
                if counts == archived or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert counts == archived, receiver.name
    finally:
        victoria.stop()
        prometheus.stop()
