"""Commanding through the network, with a real nats-server: two sites and a merge in one loop.

haiyang2d's downlink reaches the sites through a switch (first only site "a" hears it, then only
"b", as a pass moves from one antenna to the next); both sites can reach its uplink.  The
operator commands at the merge: each telecommand goes out through the site whose frames carried
the most recent good CLCW, the site relays it on its own uplink, and the verification comes back
in the merged telemetry.  The emulator's command log is the onboard truth: each command executed
exactly once.
"""
from __future__ import annotations

import asyncio
import json

from flightsw.runtime import Emulator
from groundstation.config import parse_config
from groundstation.daemon import Daemon
from links.keyfiles import new_associations, write_key_file
from tests.commanding.test_commanding_e2e import free_udp, request

TOKEN = "operator-token-for-uplink-0123"
MISSION = "haiyang2d"  # TM frames with a CLCW (COP-1), SDLS required
SITES = ("a", "b")


class Switch(asyncio.DatagramProtocol):
    """The downlink to whichever sites currently hear the spacecraft."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.hearing: set[str] = {"a"}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        assert self.transport is not None
        for site in self.hearing:
            self.transport.sendto(data, ("127.0.0.1", self.ports[site]))


async def wait_for(predicate, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def command(url: str, name: str) -> dict:
    status, sent = await asyncio.to_thread(request, "POST", url + "/api/v1/commands", TOKEN,
                                           {"spacecraft": MISSION, "command": name})
    assert status == 202, sent
    for _ in range(400):
        status, record = await asyncio.to_thread(request, "GET", f"{url}/api/v1/commands/{sent['id']}", TOKEN)
        if record.get("final"):
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"command not final: {record}")


async def test_commands_go_out_through_the_site_with_the_latest_clcw_and_execute_once(tmp_path, monkeypatch,
                                                                                       nats_server):
    monkeypatch.setenv("QQ_UPLINK_TOKEN", TOKEN)
    keys = tmp_path / "haiyang2d.sdls.toml"
    write_key_file(keys, MISSION, new_associations({1: "HMAC-SHA-256"}))
    emu_up, switch_in = free_udp(), free_udp()
    ports = {site: free_udp() for site in SITES}
    common = f'[network]\nurl = "{nats_server.url}"\n'
    sites = [Daemon(parse_config(f"""
[station]
name = "{site}"
[[links]]
name = "{site}-rx"
url = "udp://127.0.0.1:{ports[site]}"
[[spacecraft]]
name = "{MISSION}"
uplink = "udp://127.0.0.1:{emu_up}"
[archive]
dir = "{tmp_path / site}"
{common}enabled = true
relay_uplink = true
""", base_dir=tmp_path), http_listen="127.0.0.1:0") for site in SITES]
    merge = Daemon(parse_config(f"""
[station]
name = "merge"
[[spacecraft]]
name = "{MISSION}"
sdls_key_file = "{keys}"
[archive]
dir = "{tmp_path / 'merge'}"
{common}
[merge]
enabled = true
stations = {json.dumps(list(SITES))}
wait_s = 0.2
uplink = ["{MISSION}"]
[commanding]
enabled = true
api_token_env = "QQ_UPLINK_TOKEN"
verification_timeout_s = 20
""", base_dir=tmp_path), http_listen="127.0.0.1:0")
    loop = asyncio.get_running_loop()
    transport, switch = await loop.create_datagram_endpoint(lambda: Switch(ports), local_addr=("127.0.0.1", switch_in))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.run(stop)) for d in (*sites, merge)]
    log = tmp_path / "commands.jsonl"
    try:
        await wait_for(lambda: all(d.http is not None and d.http.port for d in (*sites, merge)))
        async with Emulator(MISSION, downlink=f"udp://127.0.0.1:{switch_in}", uplink=f"udp://127.0.0.1:{emu_up}",
                            seed=1, bitrate=512_000, sdls_key_files=[str(keys)], command_log=log):
            router = merge.network_uplinks.router
            await wait_for(lambda: router.best.get(MISSION) == "a")
            first = await command(merge.http.url, "PING")
            switch.hearing = {"b"}  # the pass moves on: only b hears the spacecraft now
            await wait_for(lambda: router.best.get(MISSION) == "b")
            second = await command(merge.http.url, "PING")
        relayed = {site.config.station.name: site.metrics.get("queqiao_network_uplink_relayed_total",
                                                               (site.config.station.name, MISSION)) for site in sites}
        sent = {site: merge.metrics.get("queqiao_network_uplink_frames_total", (site, MISSION)) for site in SITES}
    finally:
        stop.set()
        for task in tasks:
            await asyncio.wait_for(task, 15)
        transport.close()
    assert first["state"] == "completed" and second["state"] == "completed", (first, second)
    assert sent["a"] >= 1 and sent["b"] >= 1 and relayed == sent  # every frame sent went out at its site
    executed = [json.loads(line)["command"] for line in log.read_text().splitlines()]
    assert executed.count("PING") == 2  # each exactly once on board
