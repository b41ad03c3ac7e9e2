"""The raw frame archive: format, batching, index, rotation, retention, recovery after a crash."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from groundstation.archive import (
    INDEX_SUFFIX,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    SEGMENT_SUFFIX,
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    FrameFlags,
    FsyncPolicy,
    load_index,
    rebuild_index,
    scan_segment,
)

REPO = Path(__file__).resolve().parents[2]
T0 = 1_760_000_000_000_000_000  # a fixed receipt-time origin (ns UTC)


def frame(k: int) -> bytes:
    """A deterministic frame of varying length, so misplaced bytes cannot go unnoticed."""
    return k.to_bytes(4, "big") * (k % 37 + 1)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SEGMENT_SUFFIX))


def write_sequence(writer: ArchiveWriter, start: int, count: int, batch: int = 50, links=("x-band", "s-band")) -> None:
    for b in range(start, start + count, batch):
        ks = range(b, min(b + batch, start + count))
        writer.append_many(
            [frame(k) for k in ks],
            link=[links[k % len(links)] for k in ks],
            time_ns=[T0 + k * 1000 for k in ks],
            flags=[k % 3 for k in ks],
        )


def assert_sequence(records, start: int, count: int, links=("x-band", "s-band")) -> None:
    assert len(records) == count
    for k, rec in enumerate(records, start):
        assert rec.frame == frame(k), k
        assert rec.time_ns == T0 + k * 1000
        assert rec.link == links[k % len(links)]
        assert rec.flags == k % 3


def test_roundtrip_keeps_every_frame_with_time_link_and_flags(tmp_path):
    with ArchiveWriter(tmp_path) as w:
        write_sequence(w, 0, 1000)
        w.append(b"", link="x-band", time_ns=T0 + 1000 * 1000, flags=FrameFlags.SYNC_ERROR | FrameFlags.CRC_ERROR)
    records = list(ArchiveReader(tmp_path).records())
    assert_sequence(records[:1000], 0, 1000)
    last = records[-1]
    assert (last.frame, last.link, last.flags) == (b"", "x-band", 0x03)
    # One sealed segment with its index.
    (seg,) = segments(tmp_path)
    assert seg.with_suffix(INDEX_SUFFIX).exists()


def test_record_layout_on_disk_is_the_documented_one(tmp_path):
    with ArchiveWriter(tmp_path) as w:
        w.append(b"\x1a\xcf\xfc\x1d-frame", link="udp0", time_ns=T0, flags=FrameFlags.CRC_ERROR)
    data = segments(tmp_path)[0].read_bytes()
    magic, version, hlen, seq, _created, _res, hcrc = struct.unpack_from("<4sHHQqII", data)
    assert (magic, version, hlen, seq) == (b"QQAR", 1, 32, 1)
    assert hcrc == zlib.crc32(data[:28])
    pos = SEGMENT_HEADER_SIZE
    records = []
    while pos < len(data):
        marker, kind, flags, length, t, link_id, res, crc = struct.unpack_from("<2sBBIQHHI", data, pos)
        payload = data[pos + 24 : pos + 24 + length]
        assert marker == b"QR" and res == 0
        assert crc == zlib.crc32(data[pos : pos + 20] + payload)
        records.append((kind, flags, t, link_id, payload))
        pos += 24 + length
    # A link-definition record first (kind 1), then the frame (kind 0) referring to it.
    assert records == [(1, 0, T0, 0, b"udp0"), (0, 2, T0, 0, b"\x1a\xcf\xfc\x1d-frame")]
    assert RECORD_HEADER_SIZE == 24


def test_one_write_per_batch(tmp_path, monkeypatch):
    w = ArchiveWriter(tmp_path, fsync="never")
    calls = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: calls.append(len(data)) or real_write(fd, data))
    w.append_many([frame(k) for k in range(500)], link="a", time_ns=T0)
    w.append_buffer(b"".join(frame(k) for k in range(3)), [len(frame(k)) for k in range(3)], link="a", time_ns=T0)
    monkeypatch.undo()
    w.close()
    assert len(calls) == 2
    assert len(list(ArchiveReader(tmp_path).records())) == 503


def test_append_buffer_splits_by_lengths(tmp_path):
    frames = [frame(k) for k in range(10)]
    with ArchiveWriter(tmp_path) as w:
        w.append_buffer(bytearray(b"".join(frames)), [len(f) for f in frames], link="tcp", time_ns=T0)
        with pytest.raises(ValueError, match="lengths add up"):
            w.append_buffer(b"abc", [2, 2], link="tcp")
    assert [r.frame for r in ArchiveReader(tmp_path).records()] == frames


def test_batch_arguments_are_checked(tmp_path):
    with ArchiveWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="one entry per frame"):
            w.append_many([b"a", b"b"], link="l", time_ns=[T0])
    with pytest.raises(ArchiveError, match="closed"):
        w.append(b"x", link="l")


def test_a_rejected_batch_leaves_nothing_behind(tmp_path):
    w = ArchiveWriter(tmp_path)
    w.append(b"first", link="a", time_ns=T0)
    with pytest.raises(ValueError, match="frame 1: flags must be 0..255"):
        w.append_many([b"ok", b"bad"], link=["new-link", "new-link"], time_ns=T0 + 1, flags=[0, 256])
    with pytest.raises(ValueError, match="time_ns"):
        w.append(b"x", link="a", time_ns=-1)
    w.append(b"second", link="new-link", time_ns=T0 + 2)
    w.close()
    assert [(r.frame, r.link) for r in ArchiveReader(tmp_path).records()] == [(b"first", "a"), (b"second", "new-link")]
    (seg,) = segments(tmp_path)
    index, valid_end, size = scan_segment(seg)
    assert valid_end == size and index.to_bytes() == load_index(seg).to_bytes()


def test_a_failed_write_is_cut_off(tmp_path, monkeypatch):
    import errno

    w = ArchiveWriter(tmp_path, fsync="never")
    w.append(b"before", link="a", time_ns=T0)
    size = w.current_segment.stat().st_size
    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))  # part of the batch reaches the file ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError):
        w.append_many([frame(k) for k in range(100)], link="b", time_ns=T0 + 1)
    monkeypatch.undo()
    assert w.current_segment.stat().st_size == size
    w.append(b"after", link="b", time_ns=T0 + 2)
    w.close()
    assert [(r.frame, r.link) for r in ArchiveReader(tmp_path).records()] == [(b"before", "a"), (b"after", "b")]


def test_filters_by_time_and_link_match_a_brute_force_filter(tmp_path):
    with ArchiveWriter(tmp_path, segment_max_bytes=40_000, index_block_bytes=2_000) as w:
        write_sequence(w, 0, 3000, links=("a", "b", "c"))
    reader = ArchiveReader(tmp_path)
    everything = list(reader.records())
    assert len(everything) == 3000
    assert len(segments(tmp_path)) > 3
    for start, end, links in [
        (None, None, "b"),
        (T0 + 1234 * 1000, T0 + 2345 * 1000, None),
        (T0 + 100 * 1000, T0 + 2900 * 1000, {"a", "c"}),
        (T0 + 2999 * 1000, None, None),
        (None, T0, None),
        (None, None, "nonexistent"),
    ]:
        expected = [
            r for r in everything
            if (start is None or r.time_ns >= start)
            and (end is None or r.time_ns < end)
            and (links is None or r.link in ({links} if isinstance(links, str) else links))
        ]
        assert list(reader.records(start_ns=start, end_ns=end, links=links)) == expected


def test_time_filter_skips_blocks_using_the_index(tmp_path):
    with ArchiveWriter(tmp_path, index_block_bytes=4_096) as w:
        write_sequence(w, 0, 20_000, batch=500)
    reader = ArchiveReader(tmp_path, read_size=8192)
    got = list(reader.records(start_ns=T0 + 10_000 * 1000, end_ns=T0 + 10_100 * 1000))
    assert [r.time_ns for r in got] == [T0 + k * 1000 for k in range(10_000, 10_100)]
    total = segments(tmp_path)[0].stat().st_size
    assert 0 < reader.bytes_read < total / 20, "the index should let the reader skip most of the segment"
    # Link filter: a link absent from the whole archive costs no segment reads at all.
    reader.bytes_read = 0
    assert list(reader.records(links="ka-band")) == []
    assert reader.bytes_read == 0


def test_rotation_by_size_and_age_seals_segments_with_indexes(tmp_path):
    with ArchiveWriter(tmp_path, segment_max_bytes=10_000) as w:
        write_sequence(w, 0, 1000)
        assert w.rotations >= 5
    for seg in segments(tmp_path):
        index = load_index(seg)
        assert index is not None and index.covered_bytes == seg.stat().st_size
        assert seg.stat().st_size < 10_000 + 50 * (RECORD_HEADER_SIZE + 37 * 4) + 100  # at most one batch over
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 1000)

    aged = tmp_path / "aged"
    with ArchiveWriter(aged, segment_max_age_s=0.05) as w:
        w.append(b"one", link="l", time_ns=T0)
        time.sleep(0.1)
        w.sync()  # an idle segment past its age is rotated by the periodic sync too
        w.append(b"two", link="l", time_ns=T0 + 1)
    assert len(segments(aged)) == 2
    assert [r.frame for r in ArchiveReader(aged).records()] == [b"one", b"two"]


def test_retention_by_total_size_deletes_oldest_segments(tmp_path):
    with ArchiveWriter(tmp_path, segment_max_bytes=10_000, retention_max_bytes=30_000) as w:
        write_sequence(w, 0, 2000)
        stats = w.stats()
    remaining = segments(tmp_path)
    # The total (open segment included) is within the limit, give or take the last batch.
    assert sum(p.stat().st_size for p in remaining) <= 30_000 + 50 * (RECORD_HEADER_SIZE + 37 * 4)
    assert stats.bytes == sum(p.stat().st_size for p in remaining)
    records = list(ArchiveReader(tmp_path).records())
    first = (records[0].time_ns - T0) // 1000
    assert first > 0  # the oldest frames are gone ...
    assert_sequence(records, first, 2000 - first)  # ... and what is left is a contiguous tail
    assert not list(tmp_path.glob("*.qqi.tmp"))


def test_retention_by_age_uses_receipt_time(tmp_path):
    now = [T0]
    kwargs = dict(segment_max_bytes=4_096, retention_max_age_s=60, clock_ns=lambda: now[0])
    with ArchiveWriter(tmp_path, **kwargs) as w:
        for k in range(200):
            now[0] = T0 + k * 1_000_000_000
            w.append(frame(k), link="l", time_ns=now[0])  # one frame a second
    assert len(segments(tmp_path)) >= 3
    now[0] = T0 + 200 * 1_000_000_000
    ArchiveWriter(tmp_path, **kwargs).close()  # retention also runs at start
    times = [r.time_ns for r in ArchiveReader(tmp_path).records()]
    oldest_kept = (times[0] - T0) // 1_000_000_000
    assert times == [T0 + k * 1_000_000_000 for k in range(oldest_kept, 200)]
    # Whole segments go, and only those whose newest frame is older than 60 s.
    assert oldest_kept <= 140
    first_index = load_index(segments(tmp_path)[0])
    assert first_index.max_ns >= now[0] - 60 * 1_000_000_000
    assert oldest_kept > 100


def test_stats_of_writer_and_reader_agree(tmp_path):
    w = ArchiveWriter(tmp_path, segment_max_bytes=20_000)
    write_sequence(w, 0, 777)
    live = w.stats()
    read_live = ArchiveReader(tmp_path).stats()  # the open segment has no index yet: scanned
    assert live == read_live
    assert live.records == 777 and live.first_ns == T0 and live.last_ns == T0 + 776 * 1000
    w.close()
    assert ArchiveReader(tmp_path).stats() == live


def test_reader_sees_frames_of_the_segment_being_written(tmp_path):
    w = ArchiveWriter(tmp_path, fsync="never")
    write_sequence(w, 0, 100)
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 100)
    # A half-written record at the end (the writer is mid-write) is not an error for a reader.
    with open(w.current_segment, "ab") as f:
        f.write(b"QR\x00\x00\xff\x00\x00\x00")
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 100)
    w.close()


def test_missing_or_corrupt_index_is_rebuilt(tmp_path, caplog):
    with ArchiveWriter(tmp_path, segment_max_bytes=10_000, index_block_bytes=1_000) as w:
        write_sequence(w, 0, 500)
    segs = segments(tmp_path)
    originals = {s: s.with_suffix(INDEX_SUFFIX).read_bytes() for s in segs}
    segs[0].with_suffix(INDEX_SUFFIX).unlink()
    corrupt = bytearray(originals[segs[1]])
    corrupt[40] ^= 0xFF
    segs[1].with_suffix(INDEX_SUFFIX).write_bytes(corrupt)
    assert load_index(segs[0]) is None and load_index(segs[1]) is None
    # A reader copes without touching the directory ...
    assert_sequence(list(ArchiveReader(tmp_path).records(start_ns=T0)), 0, 500)
    assert not segs[0].with_suffix(INDEX_SUFFIX).exists()
    # ... and the writer's recovery rewrites them, byte for byte the same as before.
    with caplog.at_level(logging.INFO, logger="groundstation.archive"):
        ArchiveWriter(tmp_path, index_block_bytes=1_000).close()
    assert "rebuilt index" in caplog.text
    for s in segs[:2]:
        assert s.with_suffix(INDEX_SUFFIX).read_bytes() == originals[s]
    assert rebuild_index(segs[2], block_bytes=1_000).to_bytes() == originals[segs[2]]


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(lambda last: last[: len(last) // 2], id="torn-record"),
        pytest.param(lambda last: last[:10], id="torn-header"),
        pytest.param(lambda last: last[:-1] + bytes([last[-1] ^ 1]), id="bad-crc"),
        pytest.param(lambda last: bytes(range(256)) * 3, id="garbage"),
    ],
)
def test_recovery_truncates_a_torn_or_corrupt_tail(tmp_path, tail, caplog):
    with ArchiveWriter(tmp_path) as w:
        write_sequence(w, 0, 300)
    (seg,) = segments(tmp_path)
    seg.with_suffix(INDEX_SUFFIX).unlink()  # as after a crash: the open segment had no index
    good_size = seg.stat().st_size
    last_record = RECORD_HEADER_SIZE + len(frame(299))
    with open(seg, "r+b") as f:
        f.seek(good_size - last_record)
        last = f.read()
        f.seek(good_size - last_record)
        f.truncate()
        f.write(last)  # the intact record 299 ...
        f.write(tail(last))  # ... and a damaged copy after it
    with caplog.at_level(logging.WARNING, logger="groundstation.archive"):
        w = ArchiveWriter(tmp_path)
    assert "truncated" in caplog.text
    assert seg.stat().st_size == good_size
    write_sequence(w, 300, 10)
    w.close()
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 310)


def test_torn_segment_header_is_discarded(tmp_path):
    with ArchiveWriter(tmp_path) as w:
        write_sequence(w, 0, 10)
    (tmp_path / "0000000002-20260101T000000Z.qqa").write_bytes(b"QQAR\x01")
    ArchiveWriter(tmp_path).close()
    assert len(segments(tmp_path)) == 1
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 10)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not an archive segment at all, but long enough for a header", id="foreign"),
        pytest.param(b"junk", id="short-junk"),
        pytest.param(bytes(4096), id="zeros"),
    ],
)
def test_a_file_named_like_a_segment_that_is_none_is_moved_aside(tmp_path, content, caplog):
    with ArchiveWriter(tmp_path) as w:
        write_sequence(w, 0, 10)
    bogus = tmp_path / "0000000002-20260101T000000Z.qqa"
    bogus.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="groundstation.archive"):
        w = ArchiveWriter(tmp_path)  # starts: the junk does not stop it
    assert w.quarantined == 1
    assert f"moved {bogus.name} to quarantine/" in caplog.text
    assert not bogus.exists()
    assert (tmp_path / "quarantine" / bogus.name).read_bytes() == content  # kept for a human, byte for byte
    write_sequence(w, 10, 5)
    w.close()
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 15)
    # A second junk file of the same name does not overwrite the first one in quarantine.
    bogus.write_bytes(b"more junk")
    w = ArchiveWriter(tmp_path)
    w.close()
    assert (tmp_path / "quarantine" / (bogus.name + ".1")).read_bytes() == b"more junk"


def test_a_damaged_segment_header_is_rewritten_from_the_name_and_no_record_is_lost(tmp_path, caplog):
    with ArchiveWriter(tmp_path) as w:
        write_sequence(w, 0, 100)
    (seg,) = segments(tmp_path)
    seg.with_suffix(INDEX_SUFFIX).unlink()
    original = seg.read_bytes()
    damaged = bytearray(original)
    damaged[9] ^= 0x10  # the sequence number: the header CRC no longer matches
    seg.write_bytes(damaged)
    # A reader alone already gets every record ...
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 100)
    with caplog.at_level(logging.WARNING, logger="groundstation.archive"):
        ArchiveWriter(tmp_path).close()
    assert "header rewritten from the file name" in caplog.text
    # ... and recovery restores the header (the name holds the creation time to the second).
    assert seg.read_bytes()[SEGMENT_HEADER_SIZE:] == original[SEGMENT_HEADER_SIZE:]
    assert struct.unpack_from("<4sHHQ", seg.read_bytes()) == struct.unpack_from("<4sHHQ", original)
    assert_sequence(list(ArchiveReader(tmp_path).records()), 0, 100)


def test_fsync_policies(tmp_path):
    with ArchiveWriter(tmp_path / "always", fsync="always") as w:
        for k in range(3):
            w.append(frame(k), link="l")
        assert w.syncs == 3
    with ArchiveWriter(tmp_path / "never", fsync=FsyncPolicy.NEVER) as w:
        write_sequence(w, 0, 100)
        assert w.syncs == 0
    with ArchiveWriter(tmp_path / "interval", fsync="interval", fsync_interval_s=0.05) as w:
        w.append(b"a", link="l")
        assert w.syncs == 0 and not w.sync_due()
        time.sleep(0.06)
        assert w.sync_due()
        w.append(b"b", link="l")  # inline_sync (the default): the append does the due fsync
        assert w.syncs == 1
    with pytest.raises(ValueError):
        ArchiveWriter(tmp_path / "bad", fsync="sometimes")


async def test_periodic_sync_runs_off_the_event_loop(tmp_path):
    w = ArchiveWriter(tmp_path, fsync="interval", fsync_interval_s=0.02, inline_sync=False)
    task = asyncio.create_task(w.sync_periodically())
    for k in range(20):
        w.append(frame(k), link="l")  # never fsyncs itself with inline_sync=False
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert w.syncs >= 3
    w.close()


def test_one_writer_per_directory(tmp_path):
    w = ArchiveWriter(tmp_path)
    with pytest.raises(ArchiveError, match=f"in use by another archive writer \\(pid {os.getpid()}\\)"):
        ArchiveWriter(tmp_path)
    w.close()
    ArchiveWriter(tmp_path).close()  # free again once closed


def test_sealed_segments_are_closed_without_a_sync_task(tmp_path):
    with ArchiveWriter(tmp_path, fsync="never", segment_max_bytes=4096) as w:
        write_sequence(w, 0, 2000)
        assert w.rotations > 20
        assert len(w._retired) <= 1  # descriptors do not pile up under "never"
        assert w.syncs == 0


def test_frames_larger_than_the_read_size(tmp_path):
    big = [bytes([k]) * (3 * 2**20 + k) for k in range(3)]
    with ArchiveWriter(tmp_path) as w:
        w.append_many(big, link="l", time_ns=T0)
        w.append(b"small", link="l", time_ns=T0 + 1)
    for reader in (ArchiveReader(tmp_path, read_size=65536), ArchiveReader(tmp_path)):
        assert [r.frame for r in reader.records()] == [*big, b"small"]
    with ArchiveWriter(tmp_path / "x") as w, pytest.raises(ValueError, match="record limit"):
        w.append(bytes(2**24 + 1), link="l")


def test_scan_segment_reports_valid_end(tmp_path):
    with ArchiveWriter(tmp_path) as w:
        write_sequence(w, 0, 20)
    (seg,) = segments(tmp_path)
    with open(seg, "ab") as f:
        f.write(b"\x00" * 30)
    index, valid_end, size = scan_segment(seg)
    assert index.record_count == 20 and size - valid_end == 30


# -- crash: SIGKILL a writing process, recover, read back everything up to the last fsync ----

CRASH_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from groundstation.archive import ArchiveWriter

    T0 = 1_760_000_000_000_000_000
    def frame(k):
        return k.to_bytes(4, "big") * (k % 37 + 1)

    w = ArchiveWriter(sys.argv[1], fsync="interval", fsync_interval_s=3600, inline_sync=False,
                      segment_max_bytes=100_000)
    k = 0
    while True:
        ks = range(k, k + 25)
        w.append_many([frame(i) for i in ks], link=[("x-band", "s-band")[i % 2] for i in ks],
                      time_ns=[T0 + i * 1000 for i in ks], flags=[i % 3 for i in ks])
        k += 25
        if k % 200 == 0:
            w.sync()
            # Everything before this line is on stable storage.
            sys.stdout.write(f"{k}\\n")
            sys.stdout.flush()
    """
)


@pytest.mark.timeout(120)
def test_sigkill_loses_at_most_the_frames_after_the_last_sync(tmp_path):
    archive = tmp_path / "archive"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_WRITER, str(archive), str(REPO)],
        stdout=subprocess.PIPE,
        text=True,
    )
    synced = 0
    deadline = time.monotonic() + 60
    try:
        while synced < 20_000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            synced = int(line)
        # Kill it mid-stream: it is writing more batches right now.
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert synced >= 20_000, f"the writer only reported {synced} synced frames before the deadline"
    assert len(segments(archive)) > 3  # rotation happened: sealed segments and one open one

    ArchiveWriter(archive).close()  # recovery: truncate a torn tail, index the open segment
    records = list(ArchiveReader(archive).records())
    assert len(records) >= synced
    # Nothing lost up to the last sync, nothing reordered or damaged after it.
    assert_sequence(records, 0, len(records))
    for seg in segments(archive):
        assert load_index(seg) is not None
