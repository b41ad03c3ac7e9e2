"""links.relay, the impaired UDP channel the lossy-link tests put between the emulator and the ground:
what it counts is what happened to the datagrams, and the same seed makes the same decisions."""
from __future__ import annotations

import asyncio
import collections
import subprocess
import sys

import pytest

from links.relay import ImpairedRelay


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[int] = []

    def datagram_received(self, data: bytes, addr) -> None:
        self.got.append(int.from_bytes(data, "big"))


async def through_relay(count: int, **impairment) -> tuple[list[int], ImpairedRelay]:
    loop = asyncio.get_running_loop()
    sink_transport, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    target = sink_transport.get_extra_info("sockname")
    relay_transport, relay = await loop.create_datagram_endpoint(
        lambda: ImpairedRelay(target, hold_s=0.05, **impairment), local_addr=("127.0.0.1", 0))
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    remote_addr=relay_transport.get_extra_info("sockname"))
    for i in range(count):
        sender.sendto(i.to_bytes(4, "big"))
        if i % 50 == 49:
            await asyncio.sleep(0.01)  # within the loopback socket buffers
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(sink.got) == relay.counts.forwarded and relay._held is None:
            break
    for transport in (sender, relay_transport, sink_transport):
        transport.close()
    return sink.got, relay


async def test_without_impairments_every_datagram_arrives_once_in_order():
    got, relay = await through_relay(300, loss=0.0, duplicate=0.0, reorder=0.0, seed=0)
    assert got == list(range(300))
    assert (relay.counts.received, relay.counts.forwarded, relay.counts.dropped) == (300, 300, 0)


async def test_loss_duplication_and_reordering_happen_as_counted():
    got, relay = await through_relay(2000, loss=0.2, duplicate=0.05, reorder=0.1, seed=7)
    c = relay.counts
    assert c.received == 2000 and len(got) == c.forwarded == 2000 - c.dropped + c.duplicated
    copies = collections.Counter(got)
    assert 2000 - len(copies) == c.dropped and 300 < c.dropped < 500  # 20 % of 2000, give or take
    assert sum(n - 1 for n in copies.values()) == c.duplicated > 0 and max(copies.values()) == 2
    first_seen = list(dict.fromkeys(got))
    inversions = sum(1 for a, b in zip(first_seen, first_seen[1:], strict=False) if b < a)
    assert inversions == c.reordered > 50  # each held datagram went out right after the next one


async def test_the_same_seed_makes_the_same_decisions():
    first, _ = await through_relay(500, loss=0.3, duplicate=0.1, reorder=0.0, seed=3)
    second, _ = await through_relay(500, loss=0.3, duplicate=0.1, reorder=0.0, seed=3)
    assert first == second


@pytest.mark.parametrize("argv,message", [(["--listen", "127.0.0.1:9", "--to", "nowhere"], "expected HOST:PORT"),
                                          (["--listen", "127.0.0.1:9", "--to", "127.0.0.1:9", "--loss", "1.5"],
                                           "expected a probability")])
def test_bad_arguments_are_refused_with_a_reason(argv, message):
    result = subprocess.run([sys.executable, "-m", "links.relay", *argv], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr
