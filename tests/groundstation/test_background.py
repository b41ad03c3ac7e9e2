"""Background work steps aside for the links: it runs on a low-priority thread, and between its pieces
waits while a UDP link reports that its datagrams wait too long in the socket (links.pressure)."""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

import pytest

from groundstation.background import BackgroundWorker, shared_worker, yield_to_ingest
from links import open_link
from links.pressure import BEHIND_S, HOLD_S, PRESSURE, IngestPressure
from tests.groundstation.test_udp_receive import stamps_on, wait_up


async def test_the_worker_runs_calls_on_a_thread_of_lower_priority():
    worker = BackgroundWorker("test-background")
    try:
        tid, name = await worker.run(lambda: (threading.get_native_id(), threading.current_thread().name))
        assert tid != threading.get_native_id() and name.startswith("test-background")
        if sys.platform.startswith("linux"):
            assert os.getpriority(os.PRIO_PROCESS, tid) > os.getpriority(os.PRIO_PROCESS, 0)
        assert await worker.run(sum, [1, 2, 3]) == 6
    finally:
        worker.close()
    assert shared_worker() is shared_worker()


def test_a_short_wait_is_not_behind_and_a_long_one_is_for_a_while():
    pressure = IngestPressure()
    pressure.note_wait(BEHIND_S / 2)
    assert not pressure.behind() and pressure.behind_count == 0
    pressure.note_wait(BEHIND_S * 2)
    assert pressure.behind() and pressure.behind_count == 1
    time.sleep(HOLD_S + 0.02)
    assert not pressure.behind()


async def test_background_work_waits_while_the_links_are_behind_and_nothing_else_does():
    worker = BackgroundWorker("test-yield")
    try:
        PRESSURE.note_wait(1.0)
        start = time.monotonic()
        yield_to_ingest()  # not a background thread: no wait
        assert time.monotonic() - start < HOLD_S / 2
        PRESSURE.note_wait(1.0)
        waited = await worker.run(lambda: (time.monotonic(), yield_to_ingest(), time.monotonic()))
        assert waited[2] - waited[0] >= HOLD_S * 0.8
        assert not PRESSURE.behind()
    finally:
        worker.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel arrival time stamps (SO_TIMESTAMPNS)")
async def test_a_udp_link_whose_datagrams_waited_says_the_station_is_behind():
    async with open_link("udp://127.0.0.1:0", role="in") as link:
        await wait_up(link)
        await stamps_on(link)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            before = PRESSURE.behind_count
            tx.sendto(b"b" * 100, link.local_address)
            time.sleep(BEHIND_S * 4)  # noqa: ASYNC251 - the loop busy elsewhere, on purpose: the datagram waits
            items = await link.receive_many()
        assert items[0][1] == b"b" * 100
        assert PRESSURE.behind_count == before + 1 and PRESSURE.behind()
