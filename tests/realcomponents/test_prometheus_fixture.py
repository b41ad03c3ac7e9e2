"""The Prometheus fixture: a real Prometheus scrapes a prometheus_client exporter on loopback."""
from __future__ import annotations

import time

import pytest
from components import ComponentError, free_port
from prometheus_client import CollectorRegistry, Gauge, start_http_server


@pytest.fixture
def exporter():
    """A tiny exporter on a free loopback port with its own registry: (target, gauge)."""
    registry = CollectorRegistry()
    gauge = Gauge("queqiao_fixture_probe_value", "A value the test sets and reads back via Prometheus",
                  ["spacecraft"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}", gauge
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_prometheus_scrapes_the_exporter_and_answers_queries(prometheus_factory, exporter):
    target, gauge = exporter
    gauge.labels(spacecraft="zhurong").set(28.25)
    prom = prometheus_factory([target], scrape_interval="1s")
    assert prom.url.startswith("http://127.0.0.1:")

    started = time.monotonic()
    value = prom.wait_for_value('queqiao_fixture_probe_value{spacecraft="zhurong"}', timeout=20)
    assert value == 28.25
    assert time.monotonic() - started <= 20
    assert prom.query_value('up{job="queqiao"}') == 1.0
    (series,) = prom.query("queqiao_fixture_probe_value")
    assert series["metric"]["spacecraft"] == "zhurong" and series["metric"]["instance"] == target

    # A later value arrives with a later scrape (1 s interval).
    gauge.labels(spacecraft="zhurong").set(-3.5)
    assert prom.wait_for_value("queqiao_fixture_probe_value", lambda v: v == -3.5, timeout=20) == -3.5
    assert prom.target_health() == [(f"http://{target}/metrics", "up", "")]


def test_query_helpers(prometheus_factory):
    prom = prometheus_factory([f"127.0.0.1:{free_port()}"])  # nothing listens there
    assert prom.query("no_such_metric") == []
    assert prom.query_value("no_such_metric") is None
    assert prom.query_value("1 + 1") == 2.0
    with pytest.raises(ComponentError, match="HTTP 400"):
        prom.query("this is not promql(")
    with pytest.raises(ComponentError, match="a value for"):
        prom.wait_for_value("no_such_metric", timeout=1)


def test_only_loopback_targets(tmp_path):
    from components import Prometheus

    with pytest.raises(ValueError, match="loopback"):
        Prometheus(tmp_path, ["192.0.2.1:9100"])
