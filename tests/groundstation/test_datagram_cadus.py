"""One frames link, two emulators: tianwen1 sends one CADU per datagram (the default for a spacecraft
with a Reed-Solomon code), haiyang2d its TM frames.  The daemon unwraps the CADUs, routes both by
their headers, RS-checks tianwen1's codeblocks and decodes both; a replay of the archive decodes the
same packets again (the archive keeps the codeblocks as the chain got them)."""
from __future__ import annotations

import asyncio

import pytest

from flightsw.runtime.emulator import Emulator
from groundstation.chain import FrameChain
from groundstation.config import parse_config
from groundstation.daemon import Daemon
from groundstation.metrics import Metrics
from groundstation.replay import replay
from protocols.missions import registry
from tests.groundstation.test_daemon import free_port, wait_for

# The RS stage and the CADU unwrapping are the wire format: run again on the pure-Python kernels.
pytestmark = pytest.mark.protocols

MISSIONS = ("tianwen1", "haiyang2d")


def packets(metrics: Metrics) -> dict[str, int]:
    out: dict[str, int] = {}
    for (sc, _), n in metrics.series("queqiao_packets_total").items():
        out[sc] = out.get(sc, 0) + int(n)
    return {sc: n for sc, n in out.items() if n}


async def test_a_frames_link_takes_cadu_datagrams_beside_frames(tmp_path):
    port = free_port()
    config = parse_config(f"""
[[links]]
name = "in"
url = "udp://127.0.0.1:{port}"
[[spacecraft]]
name = "tianwen1"
[[spacecraft]]
name = "haiyang2d"
[archive]
dir = "{tmp_path / 'archive'}"
""", base_dir=tmp_path)
    daemon = Daemon(config, http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    metrics = daemon.metrics
    try:
        await wait_for(lambda: daemon.http is not None and all(r.link.stats.up for r in daemon.links))
        emulators = [Emulator(m, downlink=f"udp://127.0.0.1:{port}", seed=1, bitrate=512_000, time_scale=20.0)
                     for m in MISSIONS]
        assert [e.datagram_cadus for e in emulators] == [True, False]
        for emulator in emulators:
            await emulator.__aenter__()
        try:
            await wait_for(lambda: all(packets(metrics).get(m, 0) >= 20 for m in MISSIONS), timeout=30)
        finally:
            for emulator in emulators:
                await emulator.__aexit__(None, None, None)
        sent = {e.spacecraft.name: e.frames_sent for e in emulators}
        await wait_for(lambda: metrics.get("queqiao_frames_received_total", ("in",)) == sum(sent.values()))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert metrics.get("queqiao_link_cadu_datagrams_total", ("in",)) == sent["tianwen1"]
    assert metrics.get("queqiao_rs_codewords_total", ("tianwen1", "clean")) == sent["tianwen1"]
    assert not any(metrics.series("queqiao_frames_rejected_total").values())
    assert not any(metrics.series("queqiao_packets_rejected_total").values())
    live = packets(metrics)
    assert set(live) == set(MISSIONS)
    # The frame archive holds what the chain was given: tianwen1's codeblocks, RS-checked again on replay.
    again = Metrics()
    replay(tmp_path / "archive", FrameChain(registry(), again))
    assert packets(again) == live
    assert again.get("queqiao_rs_codewords_total", ("tianwen1", "clean")) == sent["tianwen1"]
