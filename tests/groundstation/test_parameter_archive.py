"""The parameter archive: every sample written, found again, crash-safe, compacted, kept as long as configured."""
from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest

from groundstation.parameter_archive import ParameterArchive, ParameterReader, live_files, remove_range
from protocols.missions import builtin_registry
from protocols.parameters import LimitState, States

REGISTRY = builtin_registry()
HAIYANG = REGISTRY.spacecraft("haiyang2d")
POWER = next(p for p in HAIYANG.housekeeping if p.name == "power")
T0 = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC).timestamp()


def raw_columns(definition, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Raw values inside each field's domain (state fields: their declared codes)."""
    rng = np.random.default_rng(seed)
    out = {}
    for path, parameter in definition.parameters():
        if isinstance(parameter.calibration, States):
            out[path] = rng.choice(sorted(parameter.calibration.states), count)
        else:
            domain = parameter.domain
            lo, hi = max(domain.minimum, -1000), min(domain.maximum, 60000)
            out[path] = rng.integers(int(lo), int(hi), count) if not domain.is_float else rng.uniform(lo, hi, count)
    return out


def test_every_sample_comes_back_with_its_engineering_value_state_name_and_limit_state(tmp_path):
    archive = ParameterArchive(tmp_path)
    raw = raw_columns(POWER, 50)
    onboard = T0 + np.arange(50) * 8.0
    archive.add("haiyang2d", POWER, raw, onboard, T0 + 400.0)
    assert archive.pending_samples == 50 * len(POWER.parameters())
    assert archive.flush() == 50 * len(POWER.parameters())
    reader = ParameterReader(tmp_path)
    for path, parameter in POWER.parameters():
        name = path.rsplit(".", 1)[-1]
        table = reader.samples("haiyang2d", [name])
        assert table.num_rows == 50
        rows = table.to_pylist()
        assert [r["onboard_time"].timestamp() for r in rows] == pytest.approx(list(onboard))
        assert {r["ground_time"].timestamp() for r in rows} == {T0 + 400.0}
        assert [r["raw_value"] for r in rows] == [float(v) for v in raw[path]]
        for r, value in zip(rows, raw[path], strict=True):
            eng = parameter.calibration.to_eng(value)
            if isinstance(parameter.calibration, States):
                assert r["state"] == eng and r["eng_value"] is None
            else:
                assert r["eng_value"] == pytest.approx(eng) and r["state"] is None
            expected = parameter.limits.classify(eng) if parameter.limits is not None else LimitState.NOMINAL
            assert r["limit_state"] == int(expected)
            assert r["unit"] == parameter.unit and r["subsystem"] == POWER.subsystem


def test_a_query_selects_by_time_and_name_and_sorts_by_time(tmp_path):
    archive = ParameterArchive(tmp_path)
    for i in range(10):  # ten batches, 10 s apart, each 4 packets
        archive.add("haiyang2d", POWER, raw_columns(POWER, 4, seed=i), T0 + i * 10 + np.arange(4), T0 + i * 10 + 5)
        if i % 3 == 0:
            archive.flush()
    archive.flush()
    reader = ParameterReader(tmp_path)
    table = reader.samples("haiyang2d", ["battery_voltage", "power.bus_current"], start=T0 + 20, end=T0 + 55)
    grounds = [r["ground_time"].timestamp() for r in table.to_pylist()]
    assert grounds == sorted(grounds) and set(grounds) == {T0 + 25, T0 + 35, T0 + 45, T0 + 55}
    assert set(table["parameter"].to_pylist()) == {"battery_voltage", "bus_current"}
    assert table.num_rows == 4 * 4 * 2
    by_onboard = reader.samples("haiyang2d", ["battery_voltage"], start=T0 + 21, end=T0 + 32, onboard_time=True)
    assert [r["onboard_time"].timestamp() for r in by_onboard.to_pylist()] == [T0 + 21, T0 + 22, T0 + 23, T0 + 30,
                                                                             T0 + 31, T0 + 32]
    assert reader.samples("haiyang2d", ["battery_voltage"], limit=3).num_rows == 3
    assert reader.samples("haiyang2d", ["battery_voltage"], start=T0 + 1000).num_rows == 0
    assert reader.samples("tianwen1", ["battery_voltage"]).num_rows == 0


def test_a_crash_leaves_no_unreadable_file_and_a_corrupt_one_is_skipped_and_counted(tmp_path):
    archive = ParameterArchive(tmp_path)
    archive.add("haiyang2d", POWER, raw_columns(POWER, 8), None, T0)
    archive.flush()
    day = tmp_path / "spacecraft=haiyang2d" / "date=2026-12-02"
    (day / "20261202T10-99.parquet.tmp").write_bytes(b"PAR1 half a file")  # what a crash mid-write leaves
    good = live_files(day)[0]
    truncated = day / "20261202T10-5.parquet"
    truncated.write_bytes(good.read_bytes()[:200])                        # a damaged file of the archive
    ParameterArchive(tmp_path)                                             # restart
    assert not list(day.glob("*.tmp"))
    reader = ParameterReader(tmp_path)
    table = reader.samples("haiyang2d", ["battery_voltage"])
    assert table.num_rows == 8
    assert reader.skipped_files == 1
    reader.samples("haiyang2d", ["battery_voltage"])
    assert reader.skipped_files == 1  # remembered, not counted again


def test_a_write_error_keeps_the_samples_for_the_next_flush(tmp_path):
    archive = ParameterArchive(tmp_path / "params")
    archive.add("haiyang2d", POWER, raw_columns(POWER, 8), None, T0)
    (tmp_path / "params" / "spacecraft=haiyang2d").write_text("not a directory")  # mkdir of the day fails
    assert archive.flush() == 0
    assert archive.stats.write_errors == 1 and archive.pending_samples == 8 * len(POWER.parameters())
    (tmp_path / "params" / "spacecraft=haiyang2d").unlink()
    assert archive.flush() == 8 * len(POWER.parameters())
    assert ParameterReader(tmp_path / "params").samples("haiyang2d", ["bus_voltage"]).num_rows == 8


def test_memory_is_bounded_while_the_disk_cannot_be_written(tmp_path):
    per_group = 4 * len(POWER.parameters())
    archive = ParameterArchive(tmp_path, max_pending_samples=3 * per_group)
    for i in range(5):
        archive.add("haiyang2d", POWER, raw_columns(POWER, 4, seed=i), None, T0 + i)
    assert archive.pending_samples == 3 * per_group
    assert archive.stats.samples_dropped == 2 * per_group
    archive.flush()
    grounds = {r["ground_time"].timestamp() for r in ParameterReader(tmp_path).samples("haiyang2d", ["bus_voltage"])
               .to_pylist()}
    assert grounds == {T0 + 2, T0 + 3, T0 + 4}  # the oldest went first


async def test_a_flood_is_written_early_in_bounded_pieces_without_losing_a_sample(tmp_path):
    """With ``flush_samples`` pending the running archive writes at once, not a flush interval later,
    and a flush makes files of at most about ``flush_samples`` rows: what bounds a flood's memory."""
    import asyncio

    per_group = 10 * len(POWER.parameters())
    archive = ParameterArchive(tmp_path, flush_interval=3600.0, flush_samples=3 * per_group)
    task = asyncio.create_task(archive.run())
    try:
        for i in range(2):
            archive.add("haiyang2d", POWER, raw_columns(POWER, 10, seed=i), None, T0 + i)
        await asyncio.sleep(0.3)
        assert archive.stats.samples_written == 0  # below flush_samples: waits for the interval
        archive.add("haiyang2d", POWER, raw_columns(POWER, 10, seed=2), None, T0 + 2)
        for _ in range(100):
            if archive.stats.samples_written:
                break
            await asyncio.sleep(0.05)
        assert archive.stats.samples_written == 3 * per_group  # long before the hour
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    for i in range(3, 10):  # seven groups in one flush: files of three groups, three, and one
        archive.add("haiyang2d", POWER, raw_columns(POWER, 10, seed=i), None, T0 + i)
    archive.flush()
    day = tmp_path / "spacecraft=haiyang2d" / "date=2026-12-02"
    sizes = sorted(pq.read_metadata(path).num_rows for path in live_files(day))
    assert sizes == sorted([3 * per_group, 3 * per_group, 3 * per_group, per_group])
    grounds = {r["ground_time"].timestamp() for r in ParameterReader(tmp_path).samples("haiyang2d", ["bus_voltage"])
               .to_pylist()}
    assert grounds == {T0 + i for i in range(10)}


def test_an_hour_too_large_to_merge_in_memory_stays_in_its_flush_files(tmp_path):
    per_group = 3 * len(POWER.parameters())
    archive = ParameterArchive(tmp_path, flush_interval=1.0, compact_max_rows=4 * per_group)
    for hour, groups in ((0, 4), (1, 5)):  # hour 0 fits the bound, hour 1 has one group too many
        for i in range(groups):
            archive.add("haiyang2d", POWER, raw_columns(POWER, 3, seed=i), None, T0 + hour * 3600 + i * 60)
            archive.flush()
    day = tmp_path / "spacecraft=haiyang2d" / "date=2026-12-02"
    assert archive.compact(now=T0 + 3 * 3600) == 4
    names = [path.name for path in live_files(day)]
    assert sum(name.startswith("20261202T10") for name in names) == 1  # merged
    assert sum(name.startswith("20261202T11") for name in names) == 5  # left as flushed
    grounds = [r["ground_time"].timestamp() for r in ParameterReader(tmp_path).samples("haiyang2d", ["bus_voltage"])
               .to_pylist()]
    assert len(grounds) == 9 * 3 and len(set(grounds)) == 9


def test_compaction_merges_a_closed_hour_and_an_interrupted_one_never_doubles_a_sample(tmp_path):
    archive = ParameterArchive(tmp_path, flush_interval=1.0)
    for i in range(6):
        archive.add("haiyang2d", POWER, raw_columns(POWER, 3, seed=i), None, T0 + i * 60)
        archive.flush()
    day = tmp_path / "spacecraft=haiyang2d" / "date=2026-12-02"
    parts = live_files(day)
    assert len(parts) == 6
    reader = ParameterReader(tmp_path)
    before = reader.samples("haiyang2d", ["bus_voltage", "power_mode"]).to_pylist()
    # An interrupted compaction: the merged file is in place, two covered parts were not deleted yet.
    keep = [p.read_bytes() for p in parts[:2]]
    assert archive.compact(now=T0 + 2 * 3600) == 6
    for p, data in zip(parts[:2], keep, strict=True):
        p.write_bytes(data)
    files = live_files(day)
    assert len(files) == 1 and "-c" in files[0].name
    after = ParameterReader(tmp_path).samples("haiyang2d", ["bus_voltage", "power_mode"]).to_pylist()
    assert sorted(after, key=repr) == sorted(before, key=repr)
    metadata = pq.read_metadata(files[0])
    assert metadata.num_rows == 6 * 3 * len(POWER.parameters())
    # The current hour is left alone.
    archive.add("haiyang2d", POWER, raw_columns(POWER, 3), None, T0 + 3 * 3600)
    archive.flush()
    archive.add("haiyang2d", POWER, raw_columns(POWER, 3), None, T0 + 3 * 3600 + 60)
    archive.flush()
    assert archive.compact(now=T0 + 3 * 3600 + 120) == 0


def test_retention_removes_whole_days_older_than_configured(tmp_path):
    archive = ParameterArchive(tmp_path, retention=timedelta(days=2))
    for days_ago in (0, 1, 3, 10):
        archive.add("haiyang2d", POWER, raw_columns(POWER, 2), None, T0 - days_ago * 86400)
    archive.flush()
    assert len(list(tmp_path.glob("spacecraft=haiyang2d/date=*"))) == 4
    archive.apply_retention(now=T0)
    days = sorted(p.name for p in tmp_path.glob("spacecraft=haiyang2d/date=*"))
    assert days == ["date=2026-12-01", "date=2026-12-02"]  # 3 and 10 days ago are gone


def test_remove_range_deletes_exactly_the_range(tmp_path):
    archive = ParameterArchive(tmp_path)
    for i in range(6):
        archive.add("haiyang2d", POWER, raw_columns(POWER, 2, seed=i), None, T0 + i * 10)
    archive.flush()
    per_batch = 2 * len(POWER.parameters())
    assert remove_range(tmp_path, "haiyang2d", T0 + 10, T0 + 30) == 2 * per_batch
    grounds = sorted({r["ground_time"].timestamp() for r in ParameterReader(tmp_path).samples(
        "haiyang2d", [p.rsplit(".", 1)[-1] for p, _ in POWER.parameters()]).to_pylist()})
    assert grounds == [T0, T0 + 30, T0 + 40, T0 + 50]
    assert remove_range(tmp_path, "haiyang2d", None, None) == 4 * per_batch
    assert not any(live_files(d) for d in tmp_path.glob("spacecraft=haiyang2d/date=*"))


def test_files_are_sorted_by_parameter_so_a_query_reads_few_row_groups(tmp_path):
    archive = ParameterArchive(tmp_path)
    archive.add("haiyang2d", POWER, raw_columns(POWER, 20_000), None, time.time())
    archive.flush()
    (path,) = [p for d in tmp_path.glob("spacecraft=*/date=*") for p in live_files(d)]
    metadata = pq.read_metadata(path)
    assert metadata.num_row_groups > 2
    names = [metadata.row_group(i).column(0).statistics for i in range(metadata.num_row_groups)]
    spans = [(s.min, s.max) for s in names if s is not None and s.has_min_max]
    assert spans == sorted(spans) and all(lo <= hi for lo, hi in spans)
    assert os.path.getsize(path) > 0


def test_packets_of_the_same_name_on_two_spacecraft_are_kept_apart(tmp_path):
    zhurong_power = next(p for p in REGISTRY.spacecraft("zhurong").housekeeping if p.name == "power")
    archive = ParameterArchive(tmp_path)
    archive.add("haiyang2d", POWER, raw_columns(POWER, 3), None, T0)
    archive.add("zhurong", zhurong_power, raw_columns(zhurong_power, 2), None, T0)
    assert archive.flush() == 3 * len(POWER.parameters()) + 2 * len(zhurong_power.parameters())
    reader = ParameterReader(tmp_path)
    for sc, definition, count in (("haiyang2d", POWER, 3), ("zhurong", zhurong_power, 2)):
        names = [p.rsplit(".", 1)[-1] for p, _ in definition.parameters()]
        assert reader.samples(sc, names).num_rows == count * len(names)


def test_small_groups_merged_per_definition_keep_each_packets_times_and_the_arrival_order(tmp_path):
    """At ordinary rates a flush holds many one-frame groups; they are converted per definition
    (merge_groups), and every row must still be what its own group said: its ground time to the
    microsecond, its onboard time, its value, and, for a parameter two definitions share, its place in
    the arrival order.  Groups cross an hour, and a definition's groups come with and without onboard time."""
    import copy

    twin = copy.copy(POWER)  # another definition with the same parameters (a packet carried twice)
    archive = ParameterArchive(tmp_path)
    start = T0 + 3600 - 2.0000005  # two seconds before 11:00, on a half microsecond
    expected: dict[str, list[tuple[int, float | None, float]]] = {}
    for i in range(40):
        definition = POWER if i % 3 else twin
        raw = raw_columns(definition, 1 + i % 4, seed=i)
        onboard = None if i % 7 == 0 else start + i * 0.1 + np.arange(1 + i % 4) * 0.01
        ground = start + i * 0.1
        archive.add("haiyang2d", definition, raw, onboard, ground)
        for path, _ in definition.parameters():
            rows = expected.setdefault(path.rsplit(".", 1)[-1], [])
            for k, value in enumerate(raw[path]):
                rows.append((round(ground * 1e6), None if onboard is None else round(onboard[k] * 1e6), float(value)))
    archive.flush()
    files = live_files(tmp_path / "spacecraft=haiyang2d" / "date=2026-12-02")
    assert sorted(p.name[:11] for p in files)[::len(files) - 1] == ["20261202T10", "20261202T11"]
    for path in files:  # in each file: by parameter, then arrival (what lets a query skip row groups)
        rows = pq.read_table(path).to_pylist()
        keys = [(r["parameter"], r["ground_time"]) for r in rows]
        assert keys == sorted(keys), path.name
    reader = ParameterReader(tmp_path)
    for name, rows in expected.items():
        table = reader.samples("haiyang2d", [name])
        got = [(r["ground_time"].timestamp(), r["onboard_time"], r["raw_value"]) for r in table.to_pylist()]
        got_us = [(int(pq_us(r[0])), None if r[1] is None else int(pq_us(r[1].timestamp())), r[2]) for r in got]
        assert got_us == rows, name


def pq_us(seconds: float) -> int:
    return round(seconds * 1e6)


def test_a_large_flush_is_built_in_pieces_of_whole_parameters_into_one_sorted_file(tmp_path, monkeypatch):
    """A flush of many rows becomes Arrow tables of a few parameters each (the links get the interpreter
    back between them), written one after the other into one file that is still sorted by parameter."""
    from groundstation import parameter_archive

    pieces = []
    monkeypatch.setattr(parameter_archive, "PIECE_ROWS", 250)
    monkeypatch.setattr(parameter_archive, "yield_to_ingest", lambda: pieces.append(1))
    archive = ParameterArchive(tmp_path)
    for i in range(5):
        archive.add("haiyang2d", POWER, raw_columns(POWER, 40, seed=i), None, T0 + i)
    total = 5 * 40 * len(POWER.parameters())
    assert archive.flush() == total
    (path,) = live_files(tmp_path / "spacecraft=haiyang2d" / "date=2026-12-02")
    rows = pq.read_table(path).to_pylist()
    assert len(rows) == total
    keys = [(r["parameter"], r["ground_time"]) for r in rows]
    assert keys == sorted(keys)
    per_piece = -(-250 // 200)  # whole parameters of 200 rows each until a piece holds 250 or more
    assert len(pieces) >= len(POWER.parameters()) // per_piece
    assert pq.read_metadata(path).num_row_groups >= len(POWER.parameters()) // per_piece
    by_name = ParameterReader(tmp_path).samples("haiyang2d", ["bus_voltage"]).num_rows
    assert by_name == 200
