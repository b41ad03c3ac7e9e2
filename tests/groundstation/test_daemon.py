"""The daemon end to end in one process: frames over loopback UDP and a TCP CADU stream are archived,
decoded and served on /metrics; junk never stops it."""
from __future__ import annotations

import asyncio
import os
import socket
import urllib.request
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from groundstation.archive import ArchiveReader
from groundstation.config import parse_config
from groundstation.daemon import Daemon
from protocols.ccsds.sync import CaduEncoder
from protocols.missions import registry
from tests.groundstation.test_chain import frames_for, hk_packets

#: zhurong's CADUs as the emulator sends them: Reed-Solomon coded (its profile's code), randomized.
ZHURONG_CADU = CaduEncoder(registry().spacecraft("zhurong").profile.frame)


def zhurong_cadus(frames: list[bytes]) -> bytes:
    return ZHURONG_CADU.cadus(frames)


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_for(tmp_path, udp_port: int, tcp_port: int):
    return parse_config(f"""
[station]
name = "test-station"

[[spacecraft]]
name = "zhurong"

[[spacecraft]]
name = "haiyang2d"

[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{udp_port}"

[[links]]
name = "tcp-in"
url = "tcp-listen://127.0.0.1:{tcp_port}"
spacecraft = "zhurong"

[archive]
dir = "{tmp_path / 'archive'}"
fsync = "always"
""", base_dir=tmp_path)


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def capture_config(tmp_path, capture):
    """A daemon reading one zhurong CADU capture as its only link."""
    return parse_config(f"""
[[links]]
name = "capture"
url = "file://{capture}"
spacecraft = "zhurong"
[[spacecraft]]
name = "zhurong"
[archive]
dir = "{tmp_path / 'archive'}"
""", base_dir=tmp_path)


async def wait_for(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_udp_and_tcp_frames_reach_metrics_and_archive(tmp_path):
    udp_port, tcp_port = free_port(), free_port(socket.SOCK_STREAM)
    daemon = Daemon(config_for(tmp_path, udp_port, tcp_port), http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await wait_for(lambda: daemon.http is not None and daemon.http.port != 0 and daemon.links[0].link.stats.up)

    hy_frames, _ = frames_for("haiyang2d", hk_packets("haiyang2d", 5)[0])
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for frame in hy_frames:
        sender.sendto(frame, ("127.0.0.1", udp_port))
    for junk in (b"", os.urandom(3), os.urandom(1115), b"\x00" * 2000):
        sender.sendto(junk, ("127.0.0.1", udp_port))
    sender.close()

    zr_frames, _ = frames_for("zhurong", hk_packets("zhurong", 5)[0])
    stream = os.urandom(100) + zhurong_cadus(zr_frames)  # noise first: sync must search
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
    for i in range(0, len(stream), 97):  # arbitrary chunking
        writer.write(stream[i:i + 97])
        await writer.drain()

    def decoded() -> bool:
        frames = daemon.metrics.series("queqiao_frames_received_total")
        return frames.get(("udp-in",), 0) >= len(hy_frames) and frames.get(("tcp-in",), 0) >= len(zr_frames) - 1

    await wait_for(decoded)
    metrics = await asyncio.to_thread(scrape, daemon.http.url)
    stop.set()
    await asyncio.wait_for(task, 10)
    writer.close()

    assert metrics[("queqiao_link_up", (("link", "udp-in"),))] == 1
    rejected = {k: v for k, v in metrics.items() if k[0] == "queqiao_frames_rejected_total"}
    assert sum(rejected.values()) == 4  # the four junk datagrams, each with its reason
    hy_values = [k for k in metrics if k[0] == "queqiao_parameter_value" and ("spacecraft", "haiyang2d") in k[1]]
    zr_values = [k for k in metrics if k[0] == "queqiao_parameter_value" and ("spacecraft", "zhurong") in k[1]]
    assert len(hy_values) == sum(len(p.parameters()) for p in registry().spacecraft("haiyang2d").housekeeping)
    assert len(zr_values) == sum(len(p.parameters()) for p in registry().spacecraft("zhurong").housekeeping)

    archived = list(ArchiveReader(tmp_path / "archive").records())
    by_link = {}
    for record in archived:
        by_link.setdefault(record.link, []).append(record.frame)
    assert by_link["udp-in"][: len(hy_frames)] == hy_frames  # every byte kept, in order, junk too
    assert len(by_link["udp-in"]) == len(hy_frames) + 4
    # A CADU link archives what it received: each codeblock (frame + RS check symbols) after the ASM.
    blocks = ZHURONG_CADU.codeblocks(zr_frames)
    assert by_link["tcp-in"] == blocks[: len(by_link["tcp-in"])] and len(by_link["tcp-in"]) >= len(zr_frames) - 1


async def test_a_capture_file_is_ingested_as_a_link(tmp_path):
    """flightsw writes a CADU capture (file:// downlink); the daemon reads it as a file link."""
    import subprocess
    import sys

    capture = tmp_path / "zhurong.cadu"
    argv = [sys.executable, "-m", "flightsw.cli", "run", "--mission", "zhurong", "--downlink",
            f"file://{capture}", "--duration", "120", "--time-scale", "60"]
    run = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    config = capture_config(tmp_path, capture)
    daemon = Daemon(config, http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    expected = sum(len(p.parameters()) for p in registry().spacecraft("zhurong").housekeeping)
    await wait_for(lambda: len(daemon.metrics.series("queqiao_parameter_value")) == expected, timeout=30)
    stop.set()
    await asyncio.wait_for(task, 10)
    frames = daemon.metrics.get("queqiao_frames_received_total", ("capture",))
    assert frames == capture.stat().st_size // ZHURONG_CADU.cadu_length  # every CADU of the capture
    assert not any(daemon.metrics.series("queqiao_frames_rejected_total").values())  # series exist, at 0


async def test_shutdown_with_a_client_still_connected_closes_it_and_finishes(tmp_path):
    """Since Python 3.12 a TCP server waits for its clients on close: the daemon closes them first."""
    udp_port, tcp_port = free_port(), free_port(socket.SOCK_STREAM)
    daemon = Daemon(config_for(tmp_path, udp_port, tcp_port), http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    tcp_link = next(r.link for r in daemon.links if r.config.name == "tcp-in")
    await wait_for(lambda: daemon.http is not None and daemon.http.port != 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
    try:
        await wait_for(lambda: tcp_link.stats.up)
        stop.set()
        await asyncio.wait_for(task, 10)  # a generous bound; before the fix 3.12+ waited forever
        assert await asyncio.wait_for(reader.read(), 5) == b"", "the daemon closes the client's connection"
        assert not tcp_link.stats.up
    finally:
        writer.close()


def _receipts_that_round_differently(count: int) -> list[float]:
    """Receipt times (Unix seconds) whose microseconds round one way as the float and the other way
    once stored as the archive's integer nanoseconds: the times that tell the two apart."""
    out, t = [], datetime(2026, 12, 3, 1, 46, tzinfo=UTC).timestamp()
    while len(out) < count:
        t += 0.0137
        if round(t * 1e6) != round(int(t * 1e9) / 1e9 * 1e6):
            out.append(t)
    return out


async def test_decoded_samples_carry_the_archived_receipt_time_so_a_replay_rebuilds_them_exactly(
        tmp_path, monkeypatch):
    """The parameter archive's ground times come from the frame archive's receipt time, the one a
    replay reads back: a live run and a replay agree to the microsecond, whatever the clock said."""
    import types

    from groundstation import daemon as daemon_module
    from groundstation.parameter_archive import ParameterReader

    receipts = iter(_receipts_that_round_differently(10_000))
    monkeypatch.setattr(daemon_module, "time", types.SimpleNamespace(time=lambda: next(receipts)))
    frames, _ = frames_for("zhurong", hk_packets("zhurong", 20)[0])
    capture = tmp_path / "zhurong.cadu"
    capture.write_bytes(zhurong_cadus(frames))
    config = capture_config(tmp_path, capture)
    daemon = Daemon(config, http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await wait_for(lambda: daemon.metrics.get("queqiao_frames_received_total", ("capture",)) == len(frames))
    stop.set()
    await asyncio.wait_for(task, 10)

    # What a replay derives from each archived frame: its stored nanoseconds, as seconds.
    replayed_us = {round(r.time_ns / 1e9 * 1e6) for r in ArchiveReader(tmp_path / "archive").records()}
    reader = ParameterReader(tmp_path / "archive" / "parameters")
    names = [path.rsplit(".", 1)[-1] for p in registry().spacecraft("zhurong").housekeeping for path, _ in p.parameters()]
    table = reader.samples("zhurong", names)
    assert table.num_rows > 0
    live_us = set(table["ground_time"].cast("int64").to_pylist())
    assert live_us <= replayed_us
