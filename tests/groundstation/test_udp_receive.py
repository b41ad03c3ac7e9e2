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


async def test_a_batch_carries_the_arrival_time_of_its_first_datagram():
    async with open_link("udp://127.0.0.1:0", role="in") as link:
        await wait_up(link)
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
