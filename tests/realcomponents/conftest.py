"""Fixtures that start real Mosquitto and Prometheus processes (Debian packages) on loopback.

    async def test_x(mosquitto):                      # a running anonymous broker
        async with aiomqtt.Client(mosquitto.host, mosquitto.port): ...

    def test_y(mosquitto_factory):                    # a broker with users and an ACL
        broker = mosquitto_factory(users={"gs": "pw"}, acl="user gs\\ntopic readwrite queqiao/#\\n")

    def test_z(prometheus_factory):                   # Prometheus scraping our exporter every second
        prom = prometheus_factory(["127.0.0.1:9108"])
        assert prom.wait_for_value("queqiao_up") == 1

A missing binary fails the test under CI (CI=true) and skips it elsewhere, naming the
apt package.  scripts/ensure-system-deps.sh installs both (as root).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from components import MOSQUITTO, PROMETHEUS, Mosquitto, NatsCluster, NatsServer, Prometheus, require_binary  # noqa: E402


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realcomponents)


@pytest.fixture
def mosquitto_factory(tmp_path_factory) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers with the given options (see :class:`components.Mosquitto`); all stop at teardown."""
    started: list[Mosquitto] = []

    def start(**options) -> Mosquitto:
        broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"), **options)
        started.append(broker)
        return broker.start()

    yield start
    for broker in reversed(started):
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory) -> Mosquitto:
    """A running broker on 127.0.0.1 with anonymous access; ``.host``, ``.port``, ``.url``."""
    return mosquitto_factory()


@pytest.fixture
def prometheus_factory(tmp_path_factory) -> Iterator[Callable[..., Prometheus]]:
    """``prometheus_factory(["127.0.0.1:PORT", ...], scrape_interval="1s")`` -> a ready Prometheus."""
    started: list[Prometheus] = []

    def start(targets, **options) -> Prometheus:
        prom = Prometheus(tmp_path_factory.mktemp("prometheus"), targets, **options)
        started.append(prom)
        return prom.start()

    yield start
    for prom in reversed(started):
        prom.stop()


@pytest.fixture
def mosquitto_binary() -> str:
    return require_binary(MOSQUITTO)


@pytest.fixture
def prometheus_binary() -> str:
    return require_binary(PROMETHEUS)


@pytest.fixture
def nats_server(tmp_path_factory) -> Iterator[NatsServer]:
    """One private nats-server with JetStream; ``.url``."""
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
def nats_cluster(tmp_path_factory) -> Iterator[NatsCluster]:
    """Three clustered nats-server nodes with JetStream (streams may use replicas 3); ``.url``, ``.nodes``."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats-cluster")).start()
    yield cluster
    cluster.stop()
