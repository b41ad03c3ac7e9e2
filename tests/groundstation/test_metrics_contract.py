"""Every labelled counter of the metric contract is on /metrics at 0 for every declared label value before
the first frame; noise on a stream link is counted in queqiao_link_skipped_octets_total and logged at a
bounded rate."""
from __future__ import annotations

import asyncio
import logging
import os
import socket

from groundstation.config import parse_config
from groundstation.daemon import Daemon
from groundstation.labels import UNDECLARED, FrameRejectReason, LabelDomains, PacketRejectReason
from groundstation.metrics import METRICS
from protocols.ccsds.sync import ASM
from protocols.missions import registry
from tests.groundstation.test_chain import frames_for, hk_packets
from tests.groundstation.test_daemon import capture_config, free_port, scrape, wait_for, zhurong_cadus

TOKEN = "operator-token-for-contract-01"


async def running(config) -> tuple[Daemon, asyncio.Event, asyncio.Task]:
    daemon = Daemon(config, http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await wait_for(lambda: daemon.http is not None and daemon.http.port != 0)
    return daemon, stop, task


async def test_every_counter_series_exists_at_zero_before_any_frame(tmp_path, monkeypatch):
    monkeypatch.setenv("QQ_CONTRACT_TOKEN", TOKEN)
    config = parse_config(f"""
[[spacecraft]]
name = "zhurong"
uplink = "udp://127.0.0.1:{free_port()}"
[[spacecraft]]
name = "haiyang2d"
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{free_port()}"
[[links]]
name = "tcp-in"
url = "tcp-listen://127.0.0.1:{free_port(socket.SOCK_STREAM)}"
spacecraft = "zhurong"
[archive]
dir = "{tmp_path / 'archive'}"
[commanding]
enabled = true
api_token_env = "QQ_CONTRACT_TOKEN"
""", base_dir=tmp_path)
    # The one event allowed before any frame: a link's first "up", once per spacecraft it serves. The bound
    # udp-in (serving both) is up; the TCP server is up only once a client connects.
    served = {"zhurong": 1, "haiyang2d": 1}

    def link_up_events() -> dict[str, float]:
        return {sc: n for (sc, _, event), n in daemon.metrics.series("queqiao_events_total").items()
                if event == "link_up" and n}

    daemon, stop, task = await running(config)
    try:
        await wait_for(lambda: link_up_events() == served)  # the link watcher polls once a second
        metrics = await asyncio.to_thread(scrape, daemon.http.url)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    def value(name: str, **labels) -> float | None:
        return metrics.get((name, tuple(sorted(labels.items()))))

    for spacecraft, links in served.items():
        assert value("queqiao_events_total", spacecraft=spacecraft, severity="informative", event="link_up") == links
    zhurong = registry().spacecraft("zhurong")
    for link in ("udp-in", "tcp-in"):
        for reason in FrameRejectReason:
            assert value("queqiao_frames_rejected_total", link=link, reason=reason.value) == 0, (link, reason)
        assert value("queqiao_frames_received_total", link=link) == 0
        assert value("queqiao_link_skipped_octets_total", link=link) == 0
    for apid in [str(a.number) for a in zhurong.apids] + [UNDECLARED]:
        for name in ("queqiao_packet_gaps_total", "queqiao_packets_total", "queqiao_packet_duplicates_total"):
            assert value(name, spacecraft="zhurong", apid=apid) == 0, (name, apid)
    for vc in [str(v.vcid) for v in zhurong.profile.virtual_channels] + [UNDECLARED]:
        assert value("queqiao_frame_gaps_total", spacecraft="zhurong", vc=vc) == 0
    for reason in PacketRejectReason:
        assert value("queqiao_packets_rejected_total", spacecraft="haiyang2d", reason=reason.value) == 0
    assert value("queqiao_commands_total", spacecraft="zhurong", command="PING", result="completed") == 0
    assert value("queqiao_commands_total", spacecraft="haiyang2d", command="PING", result="completed") is None
    assert value("queqiao_chain_stage_total", stage="sync", outcome="lost") == 0
    assert value("queqiao_archive_records_total") == 0

    # The whole declared domain is there, and nothing beyond it: labels come from the mission database only.
    domains = LabelDomains(links=["udp-in", "tcp-in"], spacecraft=[zhurong, registry().spacecraft("haiyang2d")],
                           commanded=["zhurong"]).series()
    for name, labels in domains.items():
        spec = next(s for s in METRICS if s.name == name)
        exported = {k[1] for k, v in metrics.items() if k[0] == name}
        assert exported == {tuple(sorted(zip(spec.labels, label, strict=True))) for label in labels}, name
        assert all(v == 0 for k, v in metrics.items()
                   if k[0] == name and ("event", "link_up") not in k[1]), name
    labelled_counters = {s.name for s in METRICS if s.kind == "counter" and s.labels}
    assert labelled_counters <= set(domains)  # every labelled counter of the contract has its domain


async def test_noise_on_a_stream_link_is_counted_and_logged_at_a_bounded_rate(tmp_path, caplog):
    frames, _ = frames_for("zhurong", hk_packets("zhurong", 40)[0])
    noisy, clean = frames[:-3], frames[-3:]
    rnd = os.urandom
    stream, noise_octets = bytearray(), 0
    for i, frame in enumerate(noisy):
        noise = rnd(50 + i % 200)
        while ASM[:2] in noise or ASM[2:] in noise:  # noise that cannot pass for part of a marker
            noise = rnd(len(noise))
        stream += noise + zhurong_cadus([frame])
        noise_octets += len(noise)
    for frame in clean:  # a clean end: the lock after the last noise is confirmed, nothing is left held
        stream += zhurong_cadus([frame])
    capture = tmp_path / "noisy.cadu"
    capture.write_bytes(bytes(stream))
    config = capture_config(tmp_path, capture)
    caplog.set_level(logging.WARNING, logger="queqiao.daemon")
    daemon, stop, task = await running(config)
    try:
        await wait_for(lambda: daemon.metrics.get("queqiao_frames_received_total", ("capture",)) == len(frames),
                       timeout=30)
        metrics = await asyncio.to_thread(scrape, daemon.http.url)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert metrics[("queqiao_link_skipped_octets_total", (("link", "capture"),))] == noise_octets
    losses = metrics[("queqiao_chain_stage_total", (("outcome", "lost"), ("stage", "sync")))]
    assert losses == len(noisy) - 1  # the lock is lost in every block of noise after the first ...
    sync_lines = [r for r in caplog.records if r.name == "queqiao.daemon" and ": sync " in r.getMessage()]
    assert 1 <= len(sync_lines) <= 5 * 2  # ... and logged at most a burst per kind (lost, slip) and window
