"""A full archive disk stops nothing: frames are held in memory, written when space returns,
and what the buffer could not hold is counted.  On a real tmpfs, filled to the last page.

The end-to-end test runs a real ``groundstation run`` process fed over UDP and watches it
through /metrics and /healthz while its archive's filesystem is full.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from groundstation.archive import ArchiveReader, ArchiveSpool, ArchiveWriter
from links.keyfiles import new_associations, write_key_file
from tests.deploy.deploy_helpers import groundstation_process
from tests.groundstation.test_archive import T0, frame
from tests.groundstation.test_chain import frames_for, hk_packets
from tests.groundstation.test_daemon import free_port, scrape
from tests.groundstation.tmpfs import fill, small_tmpfs
from tests.realcomponents.components import wait_until

REPO = Path(__file__).resolve().parents[2]
TOKEN = "disk-full-test-token-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def disk(tmp_path):
    with small_tmpfs(tmp_path / "disk", "2m") as mountpoint:
        yield mountpoint


def batches(start: int, count: int, size: int = 10):
    for b in range(start, start + count, size):
        ks = range(b, min(b + size, start + count))
        yield [frame(k) for k in ks], [T0 + k for k in ks]


def test_the_spool_holds_frames_while_the_disk_is_full_and_writes_them_in_order(disk, caplog):
    clock = Clock()
    writer = ArchiveWriter(disk / "archive", fsync="never", segment_max_bytes=64 * 1024)
    spool = ArchiveSpool(writer, max_bytes=1 << 20, retry_interval_s=1.0, clock=clock)
    for frames, times in batches(0, 100):
        spool.append_many(frames, link="x", time_ns=times)
    assert writer.frames_appended == 100 and not spool.degraded
    filler = fill(disk)
    with caplog.at_level(logging.WARNING, logger="groundstation.archive"):
        for frames, times in batches(100, 300):
            spool.append_many(frames, link="x", time_ns=times)  # never raises
        assert spool.degraded and spool.reason == "no_space" and spool.detail == "No space left on device"
        # The segment's last page may still take a batch or two; everything after is held.
        assert writer.frames_appended < 150 and spool.held_frames == 400 - writer.frames_appended
        assert spool.write_errors["no_space"] == 1
        held = spool.held_frames
        assert spool.retry() is False and spool.write_errors["no_space"] == 1  # not due yet: no attempt
        clock.now += 1.0
        assert spool.retry() is False and spool.write_errors["no_space"] == 2  # due: tried, still full
        filler.unlink()
        clock.now += 1.0
        while spool.retry():
            pass
    assert not spool.degraded and spool.held_frames == 0 and spool.held_bytes == 0 and spool.dropped_frames == 0
    assert "No space left on device" in caplog.text and f"{held} held frames written, 0 dropped" in caplog.text
    spool.close()
    records = list(ArchiveReader(disk / "archive").records())
    assert [r.frame for r in records] == [frame(k) for k in range(400)]
    assert [r.time_ns for r in records] == [T0 + k for k in range(400)]  # receipt times, not write times


def test_the_oldest_held_frames_are_dropped_and_counted_beyond_the_buffer(disk):
    clock = Clock()
    writer = ArchiveWriter(disk / "archive", fsync="never")
    budget = 20_000
    spool = ArchiveSpool(writer, max_bytes=budget, clock=clock)
    filler = fill(disk)
    for frames, times in batches(0, 500):
        spool.append_many(frames, link="x", time_ns=times)
    written, dropped = writer.frames_appended, spool.dropped_frames  # written: what the last page took
    assert spool.held_bytes <= budget and dropped > 100
    assert written + spool.held_frames + dropped == 500
    filler.unlink()
    clock.now += 1.0
    while spool.retry():
        pass
    spool.close()
    kept = [r.frame for r in ArchiveReader(disk / "archive").records()]
    # The oldest held ones went: the archive has a gap, then the newest frames, in order.
    assert kept == [frame(k) for k in [*range(written), *range(written + dropped, 500)]]


def test_with_no_buffer_every_refused_frame_is_dropped_and_writing_resumes(disk):
    writer = ArchiveWriter(disk / "archive", fsync="never")
    spool = ArchiveSpool(writer, max_bytes=0, clock=Clock())
    filler = fill(disk)
    for k in range(5):
        spool.append_many([bytes([k]) * 5000], link="x", time_ns=T0 + k)
    assert spool.dropped_frames == 5 and spool.held_frames == 0 and spool.degraded
    filler.unlink()
    spool.append_many([b"back"], link="x", time_ns=T0 + 5)
    assert not spool.degraded
    spool.close()
    assert [r.frame for r in ArchiveReader(disk / "archive").records()] == [b"back"]


def test_frames_held_at_shutdown_are_counted_as_dropped(disk):
    writer = ArchiveWriter(disk / "archive", fsync="never")
    spool = ArchiveSpool(writer)
    spool.append_many([frame(1)], link="x")
    fill(disk)
    big = [bytes([2]) * 5000, bytes([3]) * 5000]  # more than the slack of the segment's last page
    spool.append_many(big, link="x")
    spool.close()
    assert spool.dropped_frames == 2 and spool.held_frames == 0
    assert [r.frame for r in ArchiveReader(disk / "archive").records()] == [frame(1)]


def test_a_full_disk_at_rotation_keeps_the_current_segment(disk):
    writer = ArchiveWriter(disk / "archive", fsync="never", segment_max_bytes=4096)
    spool = ArchiveSpool(writer, clock=Clock())
    spool.append_many([bytes(5000)], link="x", time_ns=T0)  # the segment is now past its size
    filler = fill(disk)
    # The new segment cannot get its header written: the current one stays open (its page's slack
    # takes the small frame), and no torn segment is left behind.
    spool.append_many([bytes(10)], link="x", time_ns=T0 + 1)
    assert writer.rotations == 0 and len(list((disk / "archive").glob("*.qqa"))) == 1
    spool.append_many([bytes(6000)], link="x", time_ns=T0 + 2)
    assert spool.held_frames == 1
    filler.unlink()
    spool.retry(force=True)
    assert writer.rotations == 1 and spool.held_frames == 0
    spool.close()
    assert [len(r.frame) for r in ArchiveReader(disk / "archive").records()] == [5000, 10, 6000]
    assert not list((disk / "archive").glob("*.tmp"))


def test_a_writer_starts_on_a_full_disk_and_opens_its_segment_when_there_is_room(disk, caplog):
    with ArchiveWriter(disk / "archive") as w:
        w.append_many([frame(k) for k in range(10)], link="x", time_ns=T0)
    filler = fill(disk)
    with caplog.at_level(logging.ERROR, logger="groundstation.archive"):
        writer = ArchiveWriter(disk / "archive", fsync="never")  # recovery and start, on a full disk
    assert "cannot create a new segment (No space left on device)" in caplog.text
    assert writer.current_segment is None and writer.stats().records == 10
    spool = ArchiveSpool(writer, clock=Clock())
    spool.append_many([frame(10), frame(11)], link="x", time_ns=T0 + 1)
    assert spool.held_frames == 2 and spool.reason == "no_space"
    filler.unlink()
    spool.retry(force=True)
    assert spool.held_frames == 0 and writer.current_segment is not None
    spool.close()
    assert [r.frame for r in ArchiveReader(disk / "archive").records()] == [frame(k) for k in range(12)]


def test_a_command_history_on_a_full_disk_refuses_new_commands_and_never_raises_on_updates(disk, caplog):
    from groundstation.history import CommandHistory, HistoryWriteError

    history = CommandHistory(disk / "commands.sqlite")
    first = history.add("haiyang2d", "PING", {}, "op")
    fill(disk)
    with pytest.raises(HistoryWriteError, match="database or disk is full"):
        for _ in range(10_000):  # the WAL's last page may take a few more
            history.add("haiyang2d", "PING", {"pad": "x" * 4000}, "op")
    with caplog.at_level(logging.ERROR, logger="queqiao.history"):
        for _ in range(50):  # a report decoded, a timer firing: neither may raise
            history.advance(first, "accepted", detail="y" * 5000)
    assert history.refused_updates > 0
    assert caplog.text.count("an update was not recorded") == 1  # bounded: one line a minute
    history.close()


# ---------------------------------------------------------------------------- end to end


def healthz(address: str) -> tuple[dict, str, int]:
    """The report, its text and the HTTP status (503 while degraded, for load balancers)."""
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=5) as response:
            text, code = response.read().decode(), response.status
    except urllib.error.HTTPError as exc:
        text, code = exc.read().decode(), exc.code
    return json.loads(text), text, code


def command(url: str, name: str) -> dict:
    request = urllib.request.Request(f"{url}/api/v1/commands", method="POST",
                                     data=json.dumps({"spacecraft": "haiyang2d", "command": name}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        return json.loads(response.read())


def total(metrics: dict, name: str) -> float:
    return sum(v for (n, _labels), v in metrics.items() if n == name)


def send(port: int, frames: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for f in frames:
            sender.sendto(f, ("127.0.0.1", port))
            time.sleep(0.002)  # a link's pace, not a loopback flood


@pytest.mark.timeout(180)
def test_a_daemon_on_a_full_disk_keeps_decoding_and_serving_then_archives_what_it_held(tmp_path):
    packets, _ = hk_packets("haiyang2d", 300)
    frames, _profile = frames_for("haiyang2d", packets)
    before, during, after = frames[:20], frames[20:80], frames[80:100]
    udp, http = free_port(), f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    url = f"http://{http}"
    uplink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where the TC frames go
    uplink.bind(("127.0.0.1", 0))
    uplink.settimeout(10)
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        config = tmp_path / "groundstation.toml"
        # haiyang2d requires an authenticated uplink: the station holds its key file (keys never in the config).
        keys = write_key_file(tmp_path / "haiyang2d.sdls.toml", "haiyang2d", new_associations({1: "HMAC-SHA-256"}))
        config.write_text(f"""
[station]
name = "disk-full-test"

[[spacecraft]]
name = "haiyang2d"
uplink = "udp://127.0.0.1:{uplink.getsockname()[1]}"
sdls_key_file = "{keys}"

[commanding]
enabled = true
history_file = "{tmp_path / 'commands.sqlite'}"   # not on the full disk (docs/ARCHIVE.md)

[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{udp}"

[archive]
dir = "{disk / 'archive'}"
segment_max_bytes = "64KiB"
buffer_max_bytes = "1MiB"
""")
        argv = [sys.executable, "-m", "groundstation.cli", "run", "--config", str(config), "--http", http]
        env = dict(os.environ, QUEQIAO_API_TOKEN=TOKEN)
        with groundstation_process(argv, http, tmp_path / "daemon.log", what="groundstation run", cwd=REPO,
                                   env=env) as proc:
            send(udp, before)
            wait_until(lambda: total(scrape(url), "queqiao_archive_records_total") == len(before), timeout=20,
                       what="the first frames archived")
            healthy, _, code = healthz(http)
            assert code == 200 and healthy["status"] == "ok" and healthy["archive"]["status"] == "ok"
            decoded_before = total(scrape(url), "queqiao_packets_total")

            filler = fill(disk)
            send(udp, during)
            full = wait_until(lambda: (m := scrape(url))[("queqiao_frames_received_total", (("link", "udp-in"),))]
                              == len(before) + len(during) and m, timeout=20, what="the frames sent while full")
            # Still running, still decoding (the counters advance), and saying what is wrong.
            assert proc.poll() is None
            assert total(full, "queqiao_frames_total") == len(before) + len(during)
            assert total(full, "queqiao_packets_total") > decoded_before
            # The slack of the segment's last page may take a frame or two; the rest is held.
            slack = full[("queqiao_archive_records_total", ())] - len(before)
            assert 0 <= slack <= 4
            held = int(len(during) - slack)
            assert full[("queqiao_archive_buffered_frames", ())] == held
            assert full[("queqiao_archive_write_errors_total", (("reason", "no_space"),))] >= 1
            assert full[("queqiao_archive_dropped_frames_total", ())] == 0
            degraded, text, code = healthz(http)
            assert code == 503 and degraded["status"] == "degraded"
            assert degraded["archive"]["status"] == "degraded" and degraded["archive"]["reason"] == "no_space"
            assert degraded["archive"]["buffered_frames"] == held
            assert str(tmp_path) not in text and "/disk" not in text  # no filesystem paths
            # Commanding goes on too.
            accepted = command(url, "PING")
            assert accepted["command"] == "PING" and accepted["state"] in ("queued", "uplinked")
            tc_frame, _ = uplink.recvfrom(65536)
            assert tc_frame[0] >> 6 == 0 and len(tc_frame) > 5  # a TC transfer frame went up

            filler.unlink()
            send(udp, after)
            wait_until(lambda: total(scrape(url), "queqiao_archive_records_total") == len(frames[:100]),
                       timeout=20, what="the held frames written once space returned")
            final = scrape(url)
            assert final[("queqiao_archive_buffered_frames", ())] == 0
            assert healthz(http)[2] == 200
        log_text = (tmp_path / "daemon.log").read_text()
        assert "archive: write failed (No space left on device); holding frames in memory" in log_text
        # Held: the frames sent while full, and those that came after them before the retry.
        written_again = re.search(r"archive: writing again after \S+ s: (\d+) held frames written, 0 dropped", log_text)
        assert written_again and held <= int(written_again.group(1)) <= held + len(after), log_text[-3000:]
        assert proc.returncode == 0, log_text[-3000:]
        archived = [r.frame for r in ArchiveReader(disk / "archive").records()]
        assert archived == frames[:100]  # every frame sent, once, in the order received


def test_the_buffer_size_is_a_config_key():
    from groundstation.config import ConfigError, parse_config

    assert parse_config("").archive.buffer_max_bytes == 64 * 2**20
    assert parse_config('[archive]\nbuffer_max_bytes = "8MiB"\n').archive.buffer_max_bytes == 8 * 2**20
    assert parse_config("[archive]\nbuffer_max_bytes = 0\n").archive.buffer_max_bytes == 0
    with pytest.raises(ConfigError, match="archive.buffer_max_bytes"):
        parse_config('[archive]\nbuffer_max_bytes = "lots"\n')


async def test_a_command_the_full_history_cannot_record_is_refused_with_503_and_never_uplinked(disk):
    from groundstation.commanding import Commander, CommandError
    from groundstation.history import CommandHistory
    from groundstation.metrics import Metrics
    from links import open_link
    from protocols.missions import registry

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as uplink:
        uplink.bind(("127.0.0.1", 0))
        uplink.setblocking(False)
        history = CommandHistory(disk / "commands.sqlite")
        link = open_link(f"udp://127.0.0.1:{uplink.getsockname()[1]}", role="out", spacecraft="zhurong",
                         end="ground", name="up", receive=False)
        async with link:
            # zhurong: BD frames, sent at once (no COP-1 waiting for a CLCW).
            commander = Commander(registry().spacecraft("zhurong"), link, history, Metrics())
            commander.submit("PING", {}, "op")
            await asyncio.sleep(0.2)
            sent = []
            with contextlib.suppress(BlockingIOError):
                while True:
                    sent.append(uplink.recv(65536))
            assert sent  # the first command went up
            fill(disk)
            with pytest.raises(CommandError, match="cannot be written .*PING was not sent") as refused:
                for _ in range(10_000):  # the database's last page may take a few more
                    commander.submit("PING", {}, "op")
            assert refused.value.status == 503
            await asyncio.sleep(0.2)
            up_after = []
            with contextlib.suppress(BlockingIOError):
                while True:
                    up_after.append(uplink.recv(65536))
            recorded = len(history.query(limit=100_000))
            assert len(sent) + len(up_after) == recorded  # one frame per recorded command, none for the refused
        history.close()


@pytest.mark.timeout(120)
def test_the_frame_archive_gauges_follow_the_archive_with_the_parameter_archive_off(tmp_path):
    """The frame archive's gauges are the frame archive's: they once moved only with [parameters] enabled."""
    packets, _ = hk_packets("haiyang2d", 40)
    frames, _profile = frames_for("haiyang2d", packets)
    udp, http = free_port(), f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    config = tmp_path / "groundstation.toml"
    config.write_text(f"""
[[spacecraft]]
name = "haiyang2d"

[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{udp}"

[archive]
dir = "{tmp_path / 'archive'}"

[parameters]
enabled = false
""")
    argv = [sys.executable, "-m", "groundstation.cli", "run", "--config", str(config), "--http", http]
    with groundstation_process(argv, http, tmp_path / "daemon.log", what="groundstation run", cwd=REPO):
        send(udp, frames)
        wait_until(lambda: total(scrape(f"http://{http}"), "queqiao_archive_records_total") == len(frames),
                   timeout=30, what="every frame counted in queqiao_archive_records_total")
    assert not (tmp_path / "archive" / "parameters").exists()
