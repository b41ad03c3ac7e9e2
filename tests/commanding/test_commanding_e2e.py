"""Commanding end to end over loopback UDP: daemon API -> TC frames -> emulator -> PUS 1 reports -> history."""
from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.error
import urllib.request

import pytest

from flightsw.runtime import Emulator
from groundstation.config import parse_config
from groundstation.daemon import Daemon
from links.keyfiles import new_associations, write_key_file
from protocols.missions import registry

TOKEN = "operator-token-for-tests-0123"
VIEWER = "viewer-token-for-tests-01234"


def free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method: str, url: str, token: str | None, body: dict | bytes | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Station:
    """A daemon with commanding and emulators for the given spacecraft, all on loopback UDP."""

    def __init__(self, tmp_path, missions, monkeypatch, uplink_proxy=None):
        self.downlink = free_udp()
        self.uplinks = {m: free_udp() for m in missions}
        monkeypatch.setenv("QQ_TEST_OPERATOR", TOKEN)
        monkeypatch.setenv("QQ_TEST_VIEWER", VIEWER)
        # Spacecraft that require SDLS share a key file with the ground (kept across restarts in one test).
        self.keys = {}
        for m in missions:
            if registry().spacecraft(m).sdls_required:
                self.keys[m] = tmp_path / f"{m}.sdls.toml"
                if not self.keys[m].exists():
                    write_key_file(self.keys[m], m, new_associations({1: "HMAC-SHA-256"}))
        spacecraft = "".join(f"""
[[spacecraft]]
name = "{m}"
uplink = "udp://127.0.0.1:{(uplink_proxy or {}).get(m, self.uplinks[m])}"
""" + (f'sdls_key_file = "{self.keys[m]}"\n' if m in self.keys else "") for m in missions)
        self.config = parse_config(f"""
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{self.downlink}"
{spacecraft}
[archive]
dir = "{tmp_path / 'archive'}"
[commanding]
enabled = true
verification_timeout_s = 20
[[commanding.operators]]
name = "li.wei"
role = "operator"
token_env = "QQ_TEST_OPERATOR"
[[commanding.operators]]
name = "wall-display"
role = "viewer"
token_env = "QQ_TEST_VIEWER"
""", base_dir=tmp_path)
        self.missions = missions

    async def __aenter__(self):
        self.daemon = Daemon(self.config, http_listen="127.0.0.1:0")
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.daemon.run(self.stop))
        for _ in range(200):
            if self.daemon.http is not None and self.daemon.http.port and len(self.daemon.commanders) == len(self.missions):
                break
            await asyncio.sleep(0.025)
        self.emulators = [Emulator(m, downlink=f"udp://127.0.0.1:{self.downlink}",
                                   uplink=f"udp://127.0.0.1:{self.uplinks[m]}", seed=1, bitrate=512_000,
                                   sdls_key_files=[str(self.keys[m])] if m in self.keys else ())
                          for m in self.missions]
        for emulator in self.emulators:
            await emulator.__aenter__()
        self.url = self.daemon.http.url
        return self

    async def __aexit__(self, *exc):
        for emulator in self.emulators:
            await emulator.__aexit__(None, None, None)
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def call(self, method, path, token=TOKEN, body=None):
        return await asyncio.to_thread(request, method, self.url + path, token, body)

    async def until_final(self, command_id, timeout=20.0):
        for _ in range(int(timeout / 0.1)):
            status, record = await self.call("GET", f"/api/v1/commands/{command_id}", VIEWER)
            assert status == 200
            if record["final"]:
                return record
            await asyncio.sleep(0.1)
        raise AssertionError(f"command {command_id} not final: {record}")


@pytest.mark.parametrize("mission,cop1", [("haiyang2d", True), ("zhurong", False)])
async def test_ping_and_an_instrument_command_complete(tmp_path, monkeypatch, mission, cop1):
    async with Station(tmp_path, [mission], monkeypatch) as station:
        assert station.daemon.commanders[mission].cop1 is cop1
        status, sent = await station.call("POST", "/api/v1/commands", body={"spacecraft": mission, "command": "PING"})
        assert status == 202 and sent["operator"] == "li.wei"
        record = await station.until_final(sent["id"])
        stages = [s["stage"] for s in record["stages"]]
        assert record["state"] == "completed", record
        assert stages[0] == "queued" and "uplinked" in stages and "accepted" in stages
        instrument = station.daemon.registry.spacecraft(mission).instruments[0].name
        status, sent = await station.call("POST", "/api/v1/commands", body={
            "spacecraft": mission, "command": "POWER_INSTRUMENT", "arguments": {"instrument": instrument, "state": "ON"}})
        assert status == 202, sent
        record = await station.until_final(sent["id"])
        assert record["state"] == "completed", record
        metrics = station.daemon.metrics.series("queqiao_commands_total")
        assert metrics[(mission, "PING", "completed")] == 1
        assert metrics[(mission, "POWER_INSTRUMENT", "completed")] == 1


async def test_refused_requests_never_reach_the_link(tmp_path, monkeypatch):
    # The uplink goes to a socket of ours: anything the daemon sends would arrive there.
    spy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spy.bind(("127.0.0.1", 0))
    spy.setblocking(False)
    async with Station(tmp_path, ["zhurong"], monkeypatch, uplink_proxy={"zhurong": spy.getsockname()[1]}) as st:
        refusals = [
            (None, {"spacecraft": "zhurong", "command": "PING"}, 401),
            ("not-a-token-000000000000", {"spacecraft": "zhurong", "command": "PING"}, 401),
            (VIEWER, {"spacecraft": "zhurong", "command": "PING"}, 403),
            (TOKEN, {"spacecraft": "zhurong", "command": "SELF_DESTRUCT"}, 400),
            (TOKEN, {"spacecraft": "zhurong", "command": "DRIVE", "arguments": {"distance": "far"}}, 400),
            (TOKEN, {"spacecraft": "zhurong", "command": "DRIVE", "arguments": {"distance": 1e9}}, 400),
            (TOKEN, {"spacecraft": "voyager1", "command": "PING"}, 404),
            (TOKEN, b"{not json", 400),
            (TOKEN, b"x" * 200_000, 413),
        ]
        for token, body, expected in refusals:
            status, answer = await st.call("POST", "/api/v1/commands", token, body)
            assert status == expected, (body if not isinstance(body, bytes) else body[:20], answer)
            assert "error" in answer
        await asyncio.sleep(0.3)
        with pytest.raises(BlockingIOError):
            spy.recv(65536)  # not one byte went out
        status, history = await st.call("GET", "/api/v1/commands", VIEWER)
        assert status == 200 and history["commands"] == []
    spy.close()


async def test_history_survives_a_restart(tmp_path, monkeypatch):
    async with Station(tmp_path, ["haiyang2d"], monkeypatch) as station:
        _, sent = await station.call("POST", "/api/v1/commands", body={"spacecraft": "haiyang2d", "command": "PING"})
        await station.until_final(sent["id"])
    async with Station(tmp_path, ["haiyang2d"], monkeypatch) as station:
        status, record = await station.call("GET", f"/api/v1/commands/{sent['id']}", VIEWER)
        assert status == 200 and record["state"] == "completed" and record["operator"] == "li.wei"
        status, listing = await station.call("GET", "/api/v1/commands?spacecraft=haiyang2d", VIEWER)
        assert [c["id"] for c in listing["commands"]] == [sent["id"]]


async def test_send_timeout_only_stops_the_client_and_the_drive_still_completes(tmp_path, monkeypatch, capsys):
    import argparse

    from groundstation import send

    # 0.1 m at 200 m/h without a turn: the rover takes about 2.6 s.
    drive = ["distance=0.1", "heading=0", "speed=200", "mode=NORMAL"]
    async with Station(tmp_path, ["zhurong"], monkeypatch) as station:
        monkeypatch.setenv(send.TOKEN_ENV, TOKEN)  # the client's token, set once the daemon has started
        args = argparse.Namespace(spacecraft="zhurong", command="DRIVE", arguments=drive, api=station.url,
                                  config=None, wait=True, timeout=0.5)
        assert await asyncio.to_thread(send.run, args) == 1
        out = capsys.readouterr().out
        # Where the drive is after 0.5 s depends on the machine's load; it is not final.
        assert re.search(r"command 1: stopped waiting after 0.5 s; it is still (queued|uplinked|accepted|started) "
                         r"and the daemon records its outcome", out), out
        record = await station.until_final(1)
        assert record["state"] == "completed" and record["timed_out_at"] is None
        # Without --timeout the client waits for the final state.
        args.command, args.arguments, args.timeout = "PING", [], None
        assert await asyncio.to_thread(send.run, args) == 0
        out = capsys.readouterr().out
        assert out.rstrip().endswith("command 2: completed") and "  accepted" in out


@pytest.mark.parametrize("arguments,message", [
    ({"distance": "5", "heading": 90, "speed": 100, "mode": "CRAB"}, "argument 'distance' must be a JSON number, not \"5\""),
    ({"distance": True, "heading": 90, "speed": 100, "mode": "CRAB"}, "argument 'distance' must be a JSON number, not true"),
    ({"distance": 5, "heading": None, "speed": 100, "mode": "CRAB"}, "argument 'heading' must be a JSON number, not null"),
    ({"distance": 5, "heading": 90, "speed": 100, "mode": 1}, "argument 'mode' must be a state name (a JSON string), not 1"),
    ({"distance": 5, "heading": 90, "speed": 100, "mode": "CRAB", "source_id": 7}, "unknown argument(s) ['source_id']"),
    ({"distance": 5, "heading": 90, "speed": 100, "mode": "CRAB", "sequence_count": 3},
     "unknown argument(s) ['sequence_count']"),
])
async def test_arguments_are_strictly_typed_at_the_api(tmp_path, monkeypatch, arguments, message):
    async with Station(tmp_path, ["zhurong"], monkeypatch) as station:
        # Raw JSON bytes: what any HTTP client could send.
        body = json.dumps({"spacecraft": "zhurong", "command": "DRIVE", "arguments": arguments}).encode()
        status, answer = await station.call("POST", "/api/v1/commands", body=body)
        assert status == 400 and message in answer["error"], answer
        status, history = await station.call("GET", "/api/v1/commands", VIEWER)
        assert status == 200 and history["commands"] == []  # nothing recorded, nothing uplinked


async def test_the_command_list_from_the_api_and_from_the_mission_database_agree(tmp_path, monkeypatch, capsys):
    import argparse

    from groundstation import command_list, send

    async with Station(tmp_path, ["zhurong"], monkeypatch) as station:
        status, listing = await station.call("GET", "/api/v1/spacecraft/zhurong/commands", VIEWER)
        assert status == 200
        drive = next(c for c in listing["commands"] if c["name"] == "DRIVE")
        assert drive["arguments"][0] == {"name": "distance", "data_type": "uint16", "description": "Distance to drive",
                                         "type": "number", "unit": "m", "range": [0.1, 100.0]}
        assert drive["arguments"][3]["states"] == ["NORMAL", "CRAB", "WHEEL_WALK"]
        status, answer = await station.call("GET", "/api/v1/spacecraft/tianwen1/commands", VIEWER)
        assert status == 404 and "not commanded by this station" in answer["error"]
        monkeypatch.setenv(send.TOKEN_ENV, VIEWER)
        args = argparse.Namespace(spacecraft="zhurong", api=station.url)
        assert await asyncio.to_thread(command_list.run, args) == 0
        from_api = capsys.readouterr().out
    assert command_list.run(argparse.Namespace(spacecraft="zhurong", api=None)) == 0
    assert capsys.readouterr().out == from_api
    assert "    distance: uint16 0.1 .. 100 m" in from_api and "    mode: NORMAL | CRAB | WHEEL_WALK" in from_api
    assert command_list.run(argparse.Namespace(spacecraft="voyager", api=None)) == 2
