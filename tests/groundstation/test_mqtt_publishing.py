"""Decoded values reach a real Mosquitto as JSON on queqiao/<spacecraft>/<subsystem>/<parameter>, and
publishing survives the broker going away and coming back."""
from __future__ import annotations

import asyncio
import json

import aiomqtt

from groundstation.config import parse_config
from groundstation.daemon import Daemon
from protocols.missions import registry
from tests.groundstation.test_chain import frames_for, hk_packets, nominal_values
from tests.groundstation.test_daemon import free_port
from tests.realcomponents.components import Mosquitto


async def collect(broker_port: int, topic: str, until, timeout: float = 20.0) -> dict[str, dict]:
    got: dict[str, dict] = {}
    async with aiomqtt.Client("127.0.0.1", broker_port) as client:
        await client.subscribe(topic)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                got[str(message.topic)] = json.loads(message.payload)
                if until(got):
                    return got
    return got


def send_frames(port: int, frames: list[bytes]) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for frame in frames:
            s.sendto(frame, ("127.0.0.1", port))


async def start_daemon(tmp_path, spacecraft: str, udp: int, broker_port: int):
    """A daemon taking frames on ``udp`` and publishing to the broker; returns once it is connected."""
    config = parse_config(f"""
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{udp}"
[[spacecraft]]
name = "{spacecraft}"
[archive]
dir = "{tmp_path / 'archive'}"
[mqtt]
enabled = true
url = "mqtt://127.0.0.1:{broker_port}"
rate_limit_hz = 100
""", base_dir=tmp_path)
    daemon = Daemon(config, http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    for _ in range(200):
        if daemon.mqtt is not None and daemon.mqtt.connected and daemon.links[0].link.stats.up:
            break
        await asyncio.sleep(0.05)
    return daemon, stop, task


async def test_decoded_values_published_as_json_and_resumed_after_broker_restart(tmp_path):
    udp = free_port()
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        daemon, stop, task = await start_daemon(tmp_path, "haiyang2d", udp, broker.port)
        sc = registry().spacecraft("haiyang2d")
        expected = sum(len(p.parameters()) for p in sc.housekeeping)
        packets, given = hk_packets("haiyang2d", 2)
        frames, _ = frames_for("haiyang2d", packets)
        listener = asyncio.create_task(collect(broker.port, "queqiao/haiyang2d/+/+", lambda got: len(got) >= expected))
        await asyncio.sleep(0.3)
        send_frames(udp, frames)
        got = await listener
        assert len(got) == expected
        packet, values = next(iter(given.values()))
        path, param = next((pa, p) for pa, p in packet.parameters() if not p.calibration.is_state)
        name = path.split(".", 1)[1]
        message = got[f"queqiao/haiyang2d/{packet.subsystem}/{name}"]
        assert set(message) == {"value", "raw", "unit", "onboard_time", "ground_time", "limit"}
        assert abs(message["value"] - values[name]) <= param.calibration.resolution() + 1e-9
        assert message["unit"] == param.unit and message["limit"] == "nominal"

        # The broker goes away: values produced meanwhile are kept and published when it is back.
        broker.stop()
        for _ in range(100):
            if not daemon.mqtt.connected:
                break
            await asyncio.sleep(0.05)
        assert not daemon.mqtt.connected
        changed = dict(nominal_values(packet))
        changed[name] = values[name] + 5 * max(param.calibration.resolution(), 0.01)
        later, _ = frames_for("haiyang2d", [packet.build(changed, sequence_count=100, time=(2_000_000_100, 0))])
        send_frames(udp, later)
        await asyncio.sleep(0.5)
        broker = Mosquitto(tmp_path / "broker2", port=broker.port).start()
        topic = f"queqiao/haiyang2d/{packet.subsystem}/{name}"
        got = await collect(broker.port, topic, lambda got: topic in got
                            and abs(got[topic]["value"] - changed[name]) < 1e-6, timeout=30)
        assert abs(got[topic]["value"] - changed[name]) < 1e-6
        assert daemon.mqtt.dropped == 0
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        broker.stop()


def make_ca_and_server_cert(directory) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl, as an operator would)."""
    import subprocess

    d = str(directory)
    run = lambda *argv: subprocess.run(argv, cwd=d, check=True, capture_output=True, timeout=60)  # noqa: E731
    # The extensions a real CA and server certificate carry: Python 3.13 verifies strictly
    # (VERIFY_X509_STRICT) and rejects a CA without key usage or a leaf without them.
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "1", "-subj", "/CN=queqiao-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "1", "-extfile", "server.ext")
    return f"{d}/ca.crt", f"{d}/server.crt", f"{d}/server.key"


def test_test_certificates_pass_strict_verification(tmp_path):
    """A TLS handshake over loopback with VERIFY_X509_STRICT (3.13's default), on every Python."""
    import socket
    import ssl
    import threading

    ca, cert, key = make_ca_and_server_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=ca)
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve():
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"verified")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(8) == b"verified"
            assert tls.getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"),)
        thread.join(10)


async def test_publishing_over_tls_with_username_and_password(tmp_path, monkeypatch):
    import ssl

    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = make_ca_and_server_cert(certs)
    udp = free_port()
    broker = Mosquitto(tmp_path / "broker", users={"groundstation": "gs-secret-pw", "reader": "reader-pw"},
                       extra_config=[f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]).start()
    monkeypatch.setenv("QQ_TEST_MQTT_PASSWORD", "gs-secret-pw")
    try:
        config = parse_config(f"""
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{udp}"
[[spacecraft]]
name = "haiyang2d"
[archive]
dir = "{tmp_path / 'archive'}"
[mqtt]
enabled = true
url = "mqtts://127.0.0.1:{broker.port}"
username = "groundstation"
password_env = "QQ_TEST_MQTT_PASSWORD"
qos = 1
[mqtt.tls]
ca = "{ca}"
""", base_dir=tmp_path)
        daemon = Daemon(config, http_listen="127.0.0.1:0")
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        for _ in range(200):
            if daemon.mqtt is not None and daemon.mqtt.connected:
                break
            await asyncio.sleep(0.05)
        assert daemon.mqtt.connected  # TLS handshake against our CA, then the password
        context = ssl.create_default_context(cafile=ca)
        got = {}
        async with aiomqtt.Client("127.0.0.1", broker.port, username="reader", password="reader-pw",
                                  tls_context=context) as client:
            await client.subscribe("queqiao/haiyang2d/+/+")
            send_frames(udp, frames_for("haiyang2d", hk_packets("haiyang2d", 1)[0])[0])
            async with asyncio.timeout(20):
                async for message in client.messages:
                    got[str(message.topic)] = json.loads(message.payload)
                    if len(got) >= 5:
                        break
        assert len(got) >= 5 and all("value" in m and "limit" in m for m in got.values())
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        broker.stop()
