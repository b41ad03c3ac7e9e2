"""deploy/mosquitto: the shipped broker configuration, ACL and password script, on a real Mosquitto.

A private broker (Debian's /usr/sbin/mosquitto) runs a copy of deploy/mosquitto/mosquitto.conf
with only the listener moved to 127.0.0.1:<free port> and the file paths pointed at a temporary
directory (the ACL copied as is, the password file written by make-passwords.sh).  aiomqtt
clients then show what each role may do.  A negative ("never arrives") is proved with a
sentinel: after the forbidden publish has been acknowledged, an allowed client publishes a
sentinel that the same subscriber does receive; the broker handles messages in order, so the
forbidden one would have arrived first.  Every wait is bounded (a few seconds).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import urllib.request
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
from deploy_helpers import DEPLOY, REPO, explain, need_tool

MOSQ = DEPLOY / "mosquitto"
WAIT_S = 5.0
PASSWORDS = {"flightsw": "fsw-secret", "groundstation": "gs secret $x", "reader": "dash-secret"}

from tests.realcomponents import components  # noqa: E402


class ShippedConfigMosquitto(components.Mosquitto):
    """A private broker on 127.0.0.1 running deploy/mosquitto's configuration."""

    def __init__(self, workdir: Path, *, binary: str) -> None:
        super().__init__(workdir, binary=binary)

    def _write_config(self) -> None:
        acl = self.workdir / "acl"
        acl.write_text((MOSQ / "acl").read_text())
        acl.chmod(0o600)
        pw_file = self.workdir / "passwd"
        env = {**os.environ, **{f"QUEQIAO_MQTT_PASSWORD_{user.upper()}": pw for user, pw in PASSWORDS.items()}}
        proc = subprocess.run(["bash", str(MOSQ / "make-passwords.sh"), str(pw_file)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, explain(proc)
        lines = []
        listeners = 0
        for line in (MOSQ / "mosquitto.conf").read_text().splitlines():
            key = line.split("#", 1)[0].split()
            if key and key[0] == "listener":
                listeners += 1
                line = f"listener {self.port} {self.host}"
            elif key and key[0] == "password_file":
                line = f"password_file {pw_file}"
            elif key and key[0] == "acl_file":
                line = f"acl_file {acl}"
            lines.append(line)
        assert listeners == 1, "the test rewrites exactly one listener; update it for new listeners"
        lines += ["persistence false", "log_dest stderr", "log_type all", "connection_messages true"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to "mosquitto", which cannot read the private tmp dir
        self.config_path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    binary = need_tool("mosquitto", "mosquitto", debian_path="/usr/sbin/mosquitto", why="the MQTT broker")
    need_tool("mosquitto_passwd", "mosquitto", debian_path="/usr/bin/mosquitto_passwd")
    b = ShippedConfigMosquitto(tmp_path_factory.mktemp("mosquitto-acl"), binary=binary)
    b.start()
    yield b
    b.stop()


@asynccontextmanager
async def client(broker, user: str | None, password: str | None = None):
    if user is not None and password is None:
        password = PASSWORDS[user]
    async with asyncio.timeout(WAIT_S):
        c = aiomqtt.Client(broker.host, broker.port, username=user, password=password,
                           identifier=f"{user}-{uuid.uuid4().hex[:8]}", timeout=WAIT_S)
        await c.__aenter__()
    try:
        yield c
    finally:
        await c.__aexit__(None, None, None)


async def receive_until(c: aiomqtt.Client, sentinel: bytes) -> list[tuple[str, bytes]]:
    """Every message up to and including the one whose payload is ``sentinel`` (bounded wait)."""
    got: list[tuple[str, bytes]] = []
    async with asyncio.timeout(WAIT_S):
        async for message in c.messages:
            got.append((str(message.topic), bytes(message.payload)))
            if message.payload == sentinel:
                return got
    raise AssertionError("unreachable")


def token() -> bytes:
    return uuid.uuid4().hex.encode()


# ---------------------------------------------------------------------------- what each role may do


async def test_flightsw_downlink_reaches_the_ground_station(broker):
    frame = b"\x1a\xcf\xfc\x1d" + token()
    async with client(broker, "groundstation") as gs, client(broker, "flightsw") as fsw:
        await gs.subscribe("queqiao/+/downlink", qos=1)
        await fsw.publish("queqiao/zhurong/downlink", frame, qos=1)
        assert await receive_until(gs, frame) == [("queqiao/zhurong/downlink", frame)]


async def test_ground_station_uplink_reaches_flightsw(broker):
    tc = token()
    async with client(broker, "flightsw") as fsw, client(broker, "groundstation") as gs:
        await fsw.subscribe("queqiao/zhurong/uplink", qos=1)
        await gs.publish("queqiao/zhurong/uplink", tc, qos=1)
        assert await receive_until(fsw, tc) == [("queqiao/zhurong/uplink", tc)]


async def test_flightsw_cannot_publish_decoded_values(broker):
    forged, sentinel = b'{"value": 99.9}', token()
    topic = "queqiao/zhurong/power/battery_voltage"
    async with client(broker, "reader") as reader, client(broker, "flightsw") as fsw, \
            client(broker, "groundstation") as gs:
        await reader.subscribe("queqiao/#", qos=1)
        await fsw.publish(topic, forged, qos=1)  # acknowledged, then dropped by the ACL
        await fsw.publish("queqiao/zhurong/events", forged, qos=1)
        await gs.publish(topic, sentinel, qos=1)
        got = await receive_until(reader, sentinel)
        assert got == [(topic, sentinel)], f"flightsw's forged value was delivered: {got}"


async def test_reader_gets_decoded_values_events_status_but_never_frames(broker):
    frame, tc, sentinel = token(), token(), token()
    decoded = [("queqiao/zhurong/power/battery_voltage", b'{"value": 28.1}'),
               ("queqiao/zhurong/events", b'{"event": "safe_mode_exit"}'),
               ("queqiao/zhurong/status", b'{"link": "up"}')]
    async with client(broker, "reader") as reader, client(broker, "flightsw") as fsw, \
            client(broker, "groundstation") as gs:
        await reader.subscribe("queqiao/#", qos=1)
        await gs.subscribe("queqiao/+/downlink", qos=1)
        await fsw.publish("queqiao/zhurong/downlink", frame, qos=1)
        await gs.publish("queqiao/zhurong/uplink", tc, qos=1)
        for topic, payload in decoded:
            await gs.publish(topic, payload, qos=1)
        await gs.publish("queqiao/zhurong/thermal/panel_temp", sentinel, qos=1)
        got = await receive_until(reader, sentinel)
        assert got == [*decoded, ("queqiao/zhurong/thermal/panel_temp", sentinel)], got
        # The frame was on the broker all right: the ground station received it.
        assert (await receive_until(gs, frame))[-1] == ("queqiao/zhurong/downlink", frame)


async def test_reader_subscribing_to_frames_explicitly_gets_nothing(broker):
    frame, sentinel = token(), token()
    async with client(broker, "reader") as reader, client(broker, "flightsw") as fsw, \
            client(broker, "groundstation") as gs:
        await reader.subscribe("queqiao/zhurong/downlink", qos=1)
        await reader.subscribe("queqiao/zhurong/uplink", qos=1)
        await reader.subscribe("queqiao/zhurong/status", qos=1)
        await fsw.publish("queqiao/zhurong/downlink", frame, qos=1)
        await gs.publish("queqiao/zhurong/uplink", frame, qos=1)
        await gs.publish("queqiao/zhurong/status", sentinel, qos=1)
        assert await receive_until(reader, sentinel) == [("queqiao/zhurong/status", sentinel)]


async def test_reader_cannot_publish(broker):
    forged, sentinel = token(), token()
    topic = "queqiao/zhurong/power/battery_voltage"
    async with client(broker, "reader") as dashboard, client(broker, "reader") as intruder, \
            client(broker, "groundstation") as gs:
        await dashboard.subscribe("queqiao/#", qos=1)
        await gs.subscribe("queqiao/+/downlink", qos=1)
        await intruder.publish(topic, forged, qos=1)
        await intruder.publish("queqiao/zhurong/downlink", forged, qos=1)
        await gs.publish(topic, sentinel, qos=1)
        assert await receive_until(dashboard, sentinel) == [(topic, sentinel)]
        async with client(broker, "flightsw") as fsw:
            await fsw.publish("queqiao/zhurong/downlink", sentinel, qos=1)
        assert await receive_until(gs, sentinel) == [("queqiao/zhurong/downlink", sentinel)]


async def test_ground_station_cannot_inject_downlink_frames(broker):
    forged, sentinel = token(), token()
    async with client(broker, "groundstation") as gs_in, client(broker, "groundstation") as gs_other, \
            client(broker, "flightsw") as fsw:
        await gs_in.subscribe("queqiao/+/downlink", qos=1)
        await gs_other.publish("queqiao/zhurong/downlink", forged, qos=1)
        await fsw.publish("queqiao/zhurong/downlink", sentinel, qos=1)
        assert await receive_until(gs_in, sentinel) == [("queqiao/zhurong/downlink", sentinel)]


async def test_flightsw_reads_only_its_uplink(broker):
    tc, sentinel = token(), token()
    async with client(broker, "flightsw") as fsw, client(broker, "groundstation") as gs:
        await fsw.subscribe("queqiao/#", qos=1)
        await gs.publish("queqiao/zhurong/power/battery_voltage", tc, qos=1)
        await gs.publish("queqiao/zhurong/events", tc, qos=1)
        await gs.publish("queqiao/zhurong/uplink", sentinel, qos=1)
        assert await receive_until(fsw, sentinel) == [("queqiao/zhurong/uplink", sentinel)]


async def test_retained_values_reach_a_dashboard_that_connects_later(broker):
    value = token()
    topic = "queqiao/tianwen1/power/bus_voltage"
    async with client(broker, "groundstation") as gs:
        await gs.publish(topic, value, qos=1, retain=True)
    async with client(broker, "reader") as reader:
        await reader.subscribe(topic, qos=1)
        assert await receive_until(reader, value) == [(topic, value)]


# ---------------------------------------------------------------------------- who may connect at all


@pytest.mark.parametrize("user,password", [(None, None), ("reader", "wrong"), ("nobody", "x"), ("flightsw", "")],
                         ids=["anonymous", "wrong-password", "unknown-user", "empty-password"])
async def test_refused_at_connect(broker, user, password):
    with pytest.raises(aiomqtt.MqttError) as refused:
        async with client(broker, user, password):
            pass
    assert re.search(r"not authori[sz]ed|bad user name or password|refused", str(refused.value), re.I), refused.value


async def test_broker_logs_the_denied_publish(broker):
    """Operators can see a misbehaving client in the broker's log (denials are logged at debug level)."""
    forged, sentinel = token(), token()
    async with client(broker, "reader") as reader, client(broker, "flightsw") as fsw, \
            client(broker, "groundstation") as gs:
        await reader.subscribe("queqiao/zhurong/power/#", qos=1)
        await fsw.publish("queqiao/zhurong/power/denied_probe", forged, qos=1)
        await gs.publish("queqiao/zhurong/power/denied_probe", sentinel, qos=1)
        assert await receive_until(reader, sentinel) == [("queqiao/zhurong/power/denied_probe", sentinel)]
    log = broker.log_text()
    assert re.search(r"Denied PUBLISH from flightsw-\w+ .*'queqiao/zhurong/power/denied_probe'", log), log[-2000:]


def test_make_passwords_refuses_a_missing_password(tmp_path):
    need_tool("mosquitto_passwd", "mosquitto", debian_path="/usr/bin/mosquitto_passwd")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEQIAO_MQTT_PASSWORD_")}
    env["QUEQIAO_MQTT_PASSWORD_FLIGHTSW"] = "x"
    out = tmp_path / "passwd"
    proc = subprocess.run(["bash", str(MOSQ / "make-passwords.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, explain(proc)
    assert "QUEQIAO_MQTT_PASSWORD_GROUNDSTATION" in proc.stderr and "QUEQIAO_MQTT_PASSWORD_READER" in proc.stderr
    assert not out.exists() and not list(tmp_path.iterdir()), "no partial password file is left behind"


def test_make_passwords_writes_every_user_privately(tmp_path):
    need_tool("mosquitto_passwd", "mosquitto", debian_path="/usr/bin/mosquitto_passwd")
    env = {**os.environ, **{f"QUEQIAO_MQTT_PASSWORD_{u.upper()}": pw for u, pw in PASSWORDS.items()}}
    out = tmp_path / "passwd"
    proc = subprocess.run(["bash", str(MOSQ / "make-passwords.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, explain(proc)
    lines = out.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["flightsw", "groundstation", "reader"]
    assert all(pw not in out.read_text() for pw in PASSWORDS.values()), "passwords are stored hashed"
    assert out.stat().st_mode & 0o007 == 0, "the password file is not world-readable"


# ---------------------------------------------------------------------------- the real programs through the ACL


def _program(name: str) -> list[str]:
    exe = REPO / ".venv" / "bin" / name
    assert exe.exists(), f"{exe} is missing (make venv)"
    help_proc = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True, timeout=60)
    assert help_proc.returncode == 0, f"`{name} run --help` failed:\n{help_proc.stderr}"
    return [str(exe)]


class _Programs:
    """flightsw and groundstation run as child processes (logs in tmp_path), stopped at the end."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path, self.env, self.procs = tmp_path, env, []

    def start(self, argv: list[str], log_name: str) -> subprocess.Popen:
        with open(self.tmp_path / log_name, "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp_path,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.tmp_path.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _daemon_config(tmp_path: Path, broker, http: int, *, publish: bool) -> Path:
    config = tmp_path / "gs.toml"
    text = f"""
[station]
name = "acl-test"
http_listen = "127.0.0.1:{http}"

[[links]]
name = "broker"
url = "mqtt://{broker.host}:{broker.port}/queqiao?username=groundstation&password_env=GS_MQTT_PASSWORD"
format = "frames"

[[spacecraft]]
name = "zhurong"

[archive]
dir = "{tmp_path / 'archive'}"
"""
    if publish:
        text += f"""
[mqtt]
enabled = true
url = "mqtt://{broker.host}:{broker.port}"
username = "groundstation"
password_env = "GS_MQTT_PASSWORD"
topic_prefix = "queqiao"
rate_limit_hz = 10
"""
    config.write_text(text)
    return config


def _frames_received(http: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
    except OSError:
        return 0.0
    for line in metrics.splitlines():
        if line.startswith('queqiao_frames_received_total{link="broker"}'):
            return float(line.split()[-1])
    return 0.0


def _env() -> dict[str, str]:
    return {**os.environ, "GS_MQTT_PASSWORD": PASSWORDS["groundstation"], "FSW_MQTT_PASSWORD": PASSWORDS["flightsw"]}


def _flightsw_argv(flightsw: list[str], broker) -> list[str]:
    return [*flightsw, "run", "--mission", "zhurong", "--duration", "60",
            "--downlink", f"mqtt://{broker.host}:{broker.port}/queqiao?username=flightsw&password_env=FSW_MQTT_PASSWORD"]


def test_emulator_frames_reach_the_daemon_through_the_acl(broker, tmp_path):
    """flightsw run (user flightsw) -> broker -> groundstation run's MQTT link (user groundstation)."""
    flightsw, groundstation = _program("flightsw"), _program("groundstation")
    http = components.free_port()
    programs = _Programs(tmp_path, _env())
    try:
        gs = programs.start([*groundstation, "run", "--config", str(_daemon_config(tmp_path, broker, http, publish=False))],
                            "groundstation.log")
        programs.start(_flightsw_argv(flightsw, broker), "flightsw.log")
        try:
            components.wait_until(lambda: _frames_received(http) > 0, timeout=30, interval=0.5,
                                  what="frames counted by the daemon",
                                  alive=lambda: gs.poll() is None or pytest.fail(f"groundstation exited\n{programs.logs()}"))
        except TimeoutError:
            pytest.fail(f"no frames reached the daemon over MQTT in 30 s\n{programs.logs()}")
    finally:
        programs.stop()


async def test_reader_gets_the_daemons_decoded_values_through_the_acl(broker, tmp_path):
    """... and the daemon's [mqtt] publisher (user groundstation) -> a reader, who gets no frames."""
    flightsw, groundstation = _program("flightsw"), _program("groundstation")
    http = components.free_port()
    programs = _Programs(tmp_path, _env())
    seen: list[tuple[str, bytes]] = []
    try:
        async with client(broker, "reader") as reader:
            await reader.subscribe("queqiao/#", qos=1)
            gs = programs.start([*groundstation, "run", "--config",
                                 str(_daemon_config(tmp_path, broker, http, publish=True))], "groundstation.log")
            programs.start(_flightsw_argv(flightsw, broker), "flightsw.log")
            decoded = None
            messages = reader.messages.__aiter__()
            deadline = asyncio.get_running_loop().time() + 30
            while decoded is None and gs.poll() is None and asyncio.get_running_loop().time() < deadline:
                try:
                    message = await asyncio.wait_for(messages.__anext__(), 0.5)
                except TimeoutError:
                    continue
                seen.append((str(message.topic), bytes(message.payload)))
                parts = str(message.topic).split("/")
                if len(parts) == 4 and parts[1] == "zhurong":
                    decoded = seen[-1]
            if decoded is None:
                pytest.fail(f"no decoded value reached the reader in 30 s; got {[t for t, _ in seen][:10]}\n"
                            f"{programs.logs()}")
        assert decoded is not None
        assert json.loads(decoded[1]), decoded  # a JSON document (value, unit, times, limit state)
        assert not [t for t, _ in seen if t.endswith(("/downlink", "/uplink"))], "the reader received frames"
    finally:
        programs.stop()
