"""The receiving UDP link: every waiting datagram in one batch, a large receive buffer, and the
kernel's arrival time of a batch's first datagram as its ground receipt."""
from __future__ import annotations

import asyncio
import socket
import time

from links import open_link


async def wait_up(link, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if link.local_address:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("link did not bind")


async def stamps_on(link, tries=100):
    """Until the kernel stamps this link's datagrams on arrival.  Linux switches receive time stamps on
    for the whole system a moment after the first socket asks (a deferred static key); until then a
    datagram carries the time it was read.  Probes are sent, read after a pause, and consumed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for _ in range(tries):
            sent = time.time()
            tx.sendto(b"probe", link.local_address)
            time.sleep(0.005)  # noqa: ASYNC251 - the probe must wait in the socket while the loop is held
            items = await link.receive_many()
            assert items[-1][1] == b"probe"
            if link.last_receipt < sent + 0.004:
                return
    raise AssertionError("the kernel never stamped a datagram on arrival (SO_TIMESTAMPNS)")


async def test_a_batch_carries_the_arrival_time_of_its_first_datagram():
    async with open_link("udp://127.0.0.1:0", role="in") as link:
        await wait_up(link)
        await stamps_on(link)
        assert link.receive_buffer and link.receive_buffer >= 1 << 16
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            sent_at = time.time()
            for i in range(300):
                tx.sendto(bytes([i % 256]) * 1115, link.local_address)
            await asyncio.sleep(0.2)  # the batch waits: the receipt must not be when it is read
            items = await link.receive_many()
            read_at = time.time()
        assert [data[0] for _, data in items] == [i % 256 for i in range(300)]
        assert sent_at - 0.01 <= link.last_receipt <= sent_at + 0.1 < read_at - 0.1
        # The next batch gets its own time.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            later = time.time()
            tx.sendto(b"x" * 10, link.local_address)
            items = await link.receive_many()
        assert items[0][1] == b"x" * 10
        assert link.last_receipt >= later - 0.01


async def _batches(link, interval: float, count: int) -> list[tuple[int, float]]:
    """Send ``count`` datagrams ``interval`` apart; (batch size, receipt-to-handover seconds) of each batch."""
    out: list[tuple[int, float]] = []

    async def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i in range(count):
                tx.sendto(bytes([i % 256]) * 100, link.local_address)
                await asyncio.sleep(interval)

    sender = asyncio.create_task(send())
    got = 0
    while got < count:
        items = await link.receive_many()
        out.append((len(items), time.time() - link.last_receipt))
        got += len(items)
    await sender
    return out


async def test_frames_a_millisecond_apart_are_coalesced_within_the_latency_budget():
    from links.transports import COALESCE_S

    async with open_link("udp://127.0.0.1:0", role="in") as link:
        await wait_up(link)
        batches = await _batches(link, 0.001, 300)
    settled = batches[20:]  # once the link has seen the rate
    assert sum(n for n, _ in settled) / len(settled) >= 2  # shared batches, not one frame each
    assert max(wait for _, wait in settled) < COALESCE_S + 0.05  # bounded wait (a loaded machine adds some)


async def test_a_slow_link_never_waits():
    async with open_link("udp://127.0.0.1:0", role="in") as link:
        await wait_up(link)
        batches = await _batches(link, 0.02, 15)
    assert all(n == 1 for n, _ in batches)
    assert sorted(wait for _, wait in batches)[len(batches) // 2] < 0.002  # handed over at once
