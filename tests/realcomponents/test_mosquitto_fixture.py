"""The Mosquitto fixture: a real broker on loopback carries a message from publisher to subscriber."""
from __future__ import annotations

import asyncio
import socket

import aiomqtt
import pytest
from components import require_binary


async def receive_one(client: aiomqtt.Client, timeout: float = 10.0) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            return message
    raise AssertionError("no message")


async def test_publish_subscribe_through_the_real_broker(mosquitto):
    assert mosquitto.host == "127.0.0.1" and mosquitto.running
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="sub") as sub, \
            aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="pub") as pub:
        await sub.subscribe("queqiao/zhurong/power/battery_voltage", qos=1)
        await pub.publish("queqiao/zhurong/power/battery_voltage", payload=b'{"value": 28.4}', qos=1)
        message = await receive_one(sub)
    assert message.topic.matches("queqiao/zhurong/power/battery_voltage")
    assert message.payload == b'{"value": 28.4}'


async def test_broker_with_users_and_acl(mosquitto_factory):
    broker = mosquitto_factory(users={"gs": "ground-pw", "viewer": "view-pw"},
                               acl="user gs\ntopic readwrite queqiao/#\n\nuser viewer\ntopic read queqiao/#\n")
    async with aiomqtt.Client(broker.host, broker.port, username="viewer", password="view-pw") as viewer, \
            aiomqtt.Client(broker.host, broker.port, username="gs", password="ground-pw") as gs:
        await viewer.subscribe("queqiao/#")
        await viewer.publish("queqiao/x", b"denied by the ACL")  # silently dropped by the broker
        await gs.publish("queqiao/tianwen1/comms/xband_tx_power", b"12.5")
        message = await receive_one(viewer)
    assert message.payload == b"12.5"
    for username, password in (("gs", "wrong"), (None, None)):
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(10):
                async with aiomqtt.Client(broker.host, broker.port, username=username, password=password):
                    pass


def test_listens_on_loopback_only_and_stops(mosquitto_factory):
    broker = mosquitto_factory()
    assert f"listener {broker.port} 127.0.0.1" in broker.config_path.read_text()
    with socket.create_connection((broker.host, broker.port), timeout=2):
        pass
    broker.stop()
    assert not broker.running
    with pytest.raises(OSError):
        socket.create_connection((broker.host, broker.port), timeout=2).close()


def test_missing_binary_fails_under_ci_and_skips_otherwise(monkeypatch):
    spec = ("queqiao-no-such-binary", "/nonexistent/queqiao-no-such-binary", "no-such-package")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install no-such-package"):
        require_binary(spec)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install no-such-package"):
        require_binary(spec)


def test_session_end_check_sees_a_broker_this_session_started(tmp_path, mosquitto_binary):
    """tests/conftest.py's leftover check finds a server started without the helpers, until it stops."""
    import subprocess

    from components import free_port, wait_until

    from tests.conftest import leftover_servers

    (tmp_path / "m.conf").write_text(f"listener {free_port()} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([mosquitto_binary, "-c", str(tmp_path / "m.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: proc.pid in leftover_servers(), timeout=10, what="the broker in the leftover list")
        assert "mosquitto -c" in leftover_servers()[proc.pid]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.pid not in leftover_servers()
