"""COP-1 end to end under 20 % frame loss each way: every command reaches the spacecraft once, in order."""
from __future__ import annotations

import asyncio
import random

from tests.commanding.test_commanding_e2e import TOKEN, Station, free_udp


class LossyRelay(asyncio.DatagramProtocol):
    """Forwards datagrams from a port to a target, dropping a seeded fraction of them."""

    def __init__(self, target: tuple[str, int], loss: float, seed: int) -> None:
        self.target, self.loss, self.rng = target, loss, random.Random(seed)
        self.forwarded = self.dropped = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        self.transport.sendto(data, self.target)


async def relay(port: int, target: int, loss: float, seed: int) -> tuple[asyncio.DatagramTransport, LossyRelay]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(lambda: LossyRelay(("127.0.0.1", target), loss, seed),
                                               local_addr=("127.0.0.1", port))


async def test_cop1_delivers_every_command_once_in_order_under_20_percent_loss(tmp_path, monkeypatch):
    mission, count = "haiyang2d", 40
    up_relay_port = free_udp()
    station = Station(tmp_path, [mission], monkeypatch, uplink_proxy={mission: up_relay_port})
    # Downlink: emulator -> lossy relay -> daemon.  Uplink: daemon -> lossy relay -> emulator.
    down_relay_port, daemon_port = free_udp(), station.downlink
    station.downlink = down_relay_port
    station.config = type(station.config)(**{**station.config.__dict__, "commanding": type(
        station.config.commanding)(**{**station.config.commanding.__dict__, "fop_timeout_s": 0.5,
                                      "fop_transmission_limit": 50, "verification_timeout_s": 60})})
    links = station.config.links
    from links import parse_link_url
    station.config = type(station.config)(**{**station.config.__dict__, "links": (type(links[0])(
        **{**links[0].__dict__, "url": parse_link_url(f"udp://127.0.0.1:{daemon_port}")}),)})
    down, down_stats = await relay(down_relay_port, daemon_port, 0.2, seed=1)
    up, up_stats = await relay(up_relay_port, station.uplinks[mission], 0.2, seed=2)
    received: list[int] = []
    try:
        async with station:
            runtime = station.emulators[0].runtime
            original = runtime.handle_tc_packet

            def spy(packet: bytes) -> None:  # what reaches the onboard command handler, in order
                received.append(((packet[2] & 0x3F) << 8) | packet[3])
                original(packet)

            monkeypatch.setattr(runtime, "handle_tc_packet", spy)
            ids = []
            for _ in range(count):
                status, sent = await station.call("POST", "/api/v1/commands", TOKEN,
                                                  {"spacecraft": mission, "command": "PING"})
                assert status == 202
                ids.append(sent["id"])
            for _ in range(600):
                if len(received) >= count and not station.daemon.commanders[mission].fop.sent:
                    break
                await asyncio.sleep(0.1)
            commander = station.daemon.commanders[mission]
            acknowledged = [cid for cid in ids if any(
                s.get("detail") == "received by the spacecraft (COP-1)" for s in station.daemon.history.get(cid).stages)]
    finally:
        down.close()
        up.close()
    assert up_stats.dropped > 0 and down_stats.dropped > 0  # the channel really was lossy
    assert received == list(range(count))  # exactly once, in order
    assert acknowledged == ids
    assert not commander.fop.sent and not commander.fop.waiting
