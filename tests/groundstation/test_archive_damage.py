"""Archive damage: a flipped bit anywhere in a segment costs exactly the record it hit.

The record spans come from walking the documented layout (docs/ARCHIVE.md) here in the
test, independently of the archive's own parser.  Three readers of a damaged segment
must agree: the writer's recovery (no index, as for the segment open at a crash), a
plain reader of a sealed segment whose index predates the damage, and replay.
"""
from __future__ import annotations

import contextlib
import logging
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groundstation.archive import INDEX_SUFFIX, SEGMENT_HEADER_SIZE, ArchiveReader, ArchiveWriter
from groundstation.chain import FrameChain
from groundstation.metrics import Metrics
from groundstation.replay import replay
from protocols.missions import registry
from tests.groundstation.test_archive import T0, assert_sequence, frame, segments, write_sequence
from tests.groundstation.test_chain import frames_for, hk_packets

RECORD = struct.Struct("<HBBIQHHI")  # marker, kind, flags, length, time, link id, reserved, CRC
COUNT = 300


def record_spans(data: bytes) -> list[tuple[int, int, int, int]]:
    """(start, end, kind, link id) of every record, by the documented layout."""
    spans, pos = [], SEGMENT_HEADER_SIZE
    while pos < len(data):
        marker, kind, _flags, length, _t, link_id, _r, _crc = RECORD.unpack_from(data, pos)
        assert marker == 0x5251
        spans.append((pos, pos + RECORD.size + length, kind, link_id))
        pos += RECORD.size + length
    return spans


class Pristine(tuple):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<segment of {len(self[0])} bytes and its index>"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Pristine:
    """One sealed segment of COUNT frames on two links, and its index."""
    directory = tmp_path_factory.mktemp("pristine")
    with ArchiveWriter(directory) as w:
        write_sequence(w, 0, COUNT)
    (seg,) = segments(directory)
    return Pristine((seg.read_bytes(), seg.with_suffix(INDEX_SUFFIX).read_bytes()))


SEGMENT_NAME = "0000000001-20260101T000000Z.qqa"


def damaged_archive(directory: Path, data: bytes, index: bytes | None, bit: int) -> Path:
    damaged = bytearray(data)
    damaged[bit // 8] ^= 1 << (bit % 8)
    seg = directory / SEGMENT_NAME
    seg.write_bytes(damaged)
    if index is not None:
        seg.with_suffix(INDEX_SUFFIX).write_bytes(index)
    return seg


def expected_after_losing(data: bytes, bit: int) -> tuple[list[int], dict[int, str]]:
    """The frame numbers that must survive a flip of ``bit``, and link ids whose name is lost."""
    spans = record_spans(data)
    hit = next(s for s in spans if s[0] <= bit // 8 < s[1])
    frames = [s for s in spans if s[2] == 0]
    survivors = [k for k, span in enumerate(frames) if span != hit]
    lost_names = {hit[3]: f"#{hit[3]}"} if hit[2] == 1 else {}
    return survivors, lost_names


def check_records(records, survivors: list[int], lost_names: dict[int, str]) -> None:
    links = ("x-band", "s-band")  # link ids 0 and 1, in order of first use
    assert [r.frame for r in records] == [frame(k) for k in survivors]
    for rec, k in zip(records, survivors, strict=True):
        assert rec.time_ns == T0 + k * 1000 and rec.flags == k % 3
        assert rec.link == lost_names.get(k % 2, links[k % 2])


# Positions as a fraction of the records' bits: shrinks towards the start and reaches the end.
fractions = st.floats(min_value=0, max_value=1, exclude_max=True)


@contextlib.contextmanager
def flipped(pristine, fraction: float, *, keep_index: bool):
    """A fresh archive directory holding the segment with one bit flipped (at ``fraction`` of
    its records' bits), with or without its index; yields (directory, bit, survivors, lost names)."""
    data, index = pristine
    bit = SEGMENT_HEADER_SIZE * 8 + int(fraction * (len(data) - SEGMENT_HEADER_SIZE) * 8)
    survivors, lost_names = expected_after_losing(data, bit)
    with tempfile.TemporaryDirectory() as tmp:
        damaged_archive(Path(tmp), data, index if keep_index else None, bit)
        yield Path(tmp), bit, survivors, lost_names


hypothesis_settings = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(hypothesis_settings, max_examples=120)
@given(fraction=fractions)
def test_recovery_loses_only_the_record_a_flipped_bit_hit(pristine, fraction):
    # No index, as for the segment open at a crash: the writer's recovery scans it.
    with flipped(pristine, fraction, keep_index=False) as (directory, bit, survivors, lost_names):
        w = ArchiveWriter(directory)
        # Damage to the last record looks like a torn write: cut off (a tail), not skipped.
        in_last_record = bit // 8 >= record_spans(pristine[0])[-1][0]
        assert w.damaged_regions == (0 if in_last_record else 1)
        assert w.stats().records == len(survivors)
        w.append(b"after", link="x-band", time_ns=T0 + 10**9)
        w.close()
        records = list(ArchiveReader(directory).records())
        assert records[-1].frame == b"after"
        check_records(records[:-1], survivors, lost_names)


@settings(hypothesis_settings, max_examples=60)
@given(fraction=fractions)
def test_a_reader_skips_bit_rot_in_an_indexed_segment(pristine, fraction):
    # The index was written before the bit flipped; link names come from it.
    with flipped(pristine, fraction, keep_index=True) as (directory, _bit, survivors, _lost):
        reader = ArchiveReader(directory)
        check_records(list(reader.records()), survivors, {})
        assert reader.damaged_regions == 1


def test_every_bit_of_one_record_costs_that_record_only(pristine):
    """Exhaustive over one frame record in the middle (header, payload and CRC bits)."""
    data, _index = pristine
    start, end, _kind, _link = record_spans(data)[150]
    for bit in range(start * 8, end * 8):
        survivors, lost = expected_after_losing(data, bit)
        assert len(survivors) == COUNT - 1 and not lost
        with tempfile.TemporaryDirectory() as tmp:
            damaged_archive(Path(tmp), data, None, bit)
            check_records(list(ArchiveReader(Path(tmp)).records()), survivors, {})


def test_a_zeroed_stretch_costs_the_records_it_touches(tmp_path, pristine, caplog):
    data, _index = pristine
    spans = record_spans(data)
    lo, hi = spans[100][0] + 5, spans[120][1] - 5  # from inside record 100 to inside record 120
    damaged = bytearray(data)
    damaged[lo:hi] = bytes(hi - lo)
    (tmp_path / SEGMENT_NAME).write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="groundstation.archive"):
        ArchiveWriter(tmp_path).close()
    assert f"{spans[120][1] - spans[100][0]} damaged bytes at offset {spans[100][0]} skipped" in caplog.text
    frame_spans = [s for s in spans if s[2] == 0]
    survivors = [k for k, s in enumerate(frame_spans) if s[1] <= lo or s[0] >= hi]
    check_records(list(ArchiveReader(tmp_path).records()), survivors, {})
    # The damaged bytes stay where they were (for a human); only the index skips them.
    assert (tmp_path / SEGMENT_NAME).read_bytes() == damaged


def test_a_torn_tail_after_damage_is_still_cut(tmp_path, pristine):
    data, _index = pristine
    spans = record_spans(data)
    damaged = bytearray(data[: spans[-1][0] + 10])  # the last record torn by a crash ...
    damaged[spans[50][0] + 30] ^= 0x01  # ... and bit rot earlier on
    (tmp_path / SEGMENT_NAME).write_bytes(damaged)
    ArchiveWriter(tmp_path).close()
    assert (tmp_path / SEGMENT_NAME).stat().st_size == spans[-2][1]
    frame_spans = [s for s in spans if s[2] == 0]
    survivors = [k for k, s in enumerate(frame_spans) if s[0] != spans[50][0]][:-1]
    check_records(list(ArchiveReader(tmp_path).records()), survivors, {})


def test_replay_decodes_every_frame_but_the_damaged_one(tmp_path):
    hk = hk_packets("haiyang2d", 40)[0]
    frames, _ = frames_for("haiyang2d", hk)
    with ArchiveWriter(tmp_path) as w:
        for k, f in enumerate(frames):
            w.append(f, link="udp-in", time_ns=T0 + k * 10**6)
    (seg,) = segments(tmp_path)
    seg.with_suffix(INDEX_SUFFIX).unlink()
    spans = record_spans(seg.read_bytes())
    damaged = bytearray(seg.read_bytes())
    damaged[(spans[10][0] + spans[10][1]) // 2] ^= 0x40  # the payload of the 10th frame (record 0 names the link)
    seg.write_bytes(damaged)
    ArchiveWriter(tmp_path).close()  # recovery, as at the daemon's next start
    metrics = Metrics()
    chain = FrameChain(registry(), metrics, spacecraft=["haiyang2d"])
    assert replay(tmp_path, chain) == len(frames) - 1
    assert metrics.get("queqiao_frames_received_total", ("udp-in",)) == len(frames) - 1
    good = sum(v for (sc, _vc), v in metrics.series("queqiao_frames_total").items() if sc == "haiyang2d")
    assert good == len(frames) - 1  # every surviving frame decodes: nothing after the damage is lost


def test_pristine_segment_reads_back_whole(pristine, tmp_path):
    data, _index = pristine
    (tmp_path / SEGMENT_NAME).write_bytes(data)
    reader = ArchiveReader(tmp_path)
    assert_sequence(list(reader.records()), 0, COUNT)
    assert reader.damaged_regions == 0
