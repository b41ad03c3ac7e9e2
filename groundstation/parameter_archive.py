"""The parameter archive: every decoded sample, in Parquet files partitioned by spacecraft and day.

The frame archive (:mod:`groundstation.archive`) keeps every octet received and stays the source
of truth; this archive keeps what the frames meant — each sample of each parameter with its
onboard and ground time, raw and engineering value (a state parameter's state name) and the
limit state of that value — so that an engineer can ask for every sample of a time range
without decoding frames again (``groundstation history``, ``GET /api/v1/parameters/...``).

Layout (Hive partitioning, so pyarrow datasets, DuckDB and polars read it as it is)::

    ROOT/spacecraft=<name>/date=<YYYY-MM-DD>/<YYYYmmddTHH>-<n>.parquet     one file per flush
    ROOT/spacecraft=<name>/date=<YYYY-MM-DD>/<YYYYmmddTHH>-c<n>.parquet    an hour of today, compacted
    ROOT/spacecraft=<name>/date=<YYYY-MM-DD>/<YYYYmmdd>-c<n>.parquet       a closed day, compacted

``date`` and the hour are those of the ground receipt time.  Rows in a file are sorted by
parameter, then ground time, so the row-group statistics let a query for one parameter skip
the others.

Why this shape:

- The hot path only appends references to the decoded column arrays (:meth:`ParameterArchive.add`);
  calibration, limit classification, Arrow conversion and the Parquet encoding run in a worker
  thread at each flush, so ingest is never blocked by the archive.
- A file is written under a temporary name, fsync'ed and renamed into place: a crash leaves no
  unreadable file, and loses at most the samples of the last flush interval (they are still in
  the frame archive; ``groundstation replay --parameters`` rebuilds a time range).
- One file per flush keeps that promise cheap; an hour that has closed is compacted into one
  file, and a day that has closed into one file sorted by parameter (written and renamed the same
  way, then the files it covers are deleted; a reader that finds both ignores the covered ones), so
  a query of one parameter over a past day reads a few row groups of one file.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from groundstation.background import shared_worker, yield_to_ingest
from groundstation.chain.limits import ParameterExport, exports_of
from protocols.missions import PacketDef
from protocols.parameters import States

log = logging.getLogger("queqiao.parameters")

#: Sub-directory of the daemon's archive directory that holds the parameter archive.
SUBDIR = "parameters"

SCHEMA = pa.schema([
    pa.field("parameter", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("subsystem", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("ground_time", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("onboard_time", pa.timestamp("us", tz="UTC")),
    pa.field("raw_value", pa.float64(), nullable=False),
    pa.field("eng_value", pa.float64()),          # null for a state parameter
    pa.field("state", pa.dictionary(pa.int32(), pa.string())),  # the state name; null for a numeric one
    pa.field("limit_state", pa.uint8(), nullable=False),       # 0 nominal, 1 warning, 2 critical
    pa.field("unit", pa.dictionary(pa.int32(), pa.string()), nullable=False),
])

_PART = re.compile(r"^(?P<span>\d{8}(?:T\d{2})?)-(?P<compact>c?)(?P<n>\d+)\.parquet$")
#: Rows per row group of a compacted file: small enough that one parameter's rows skip the rest.
ROW_GROUP_ROWS = 16_384


@dataclass
class _Pending:
    """Decoded packet groups waiting for the next flush (references only: no copies on the hot path)."""

    groups: list[tuple[PacketDef, Mapping[str, np.ndarray], np.ndarray | None, float]] = field(default_factory=list)
    rows: int = 0


@dataclass
class ArchiveStats:
    samples_written: int = 0
    files_written: int = 0
    samples_dropped: int = 0
    write_errors: int = 0
    files_compacted: int = 0
    files_removed: int = 0


class ParameterArchive:
    """Writes every sample it is given; call :meth:`flush` (or run :meth:`run`) to put them on disk.

    ``max_pending_samples`` bounds memory while the disk cannot be written, or cannot be written as
    fast as samples arrive: past it the oldest pending groups are dropped and counted (the frame
    archive still holds their frames; ``groundstation replay --parameters`` rebuilds them).
    ``flush_samples``: :meth:`run` writes early once a spacecraft has this many pending, and a flush
    builds its tables in pieces of at most this many rows, so that a flood never needs a table of
    a whole flush interval in memory (a 2-million-sample table takes about 100 MB while it is built).
    ``compact_max_rows``: compaction reads a whole hour or day into memory, so a span with more rows
    is left in its flush files (the reader takes any number of files; queries stay correct).
    """

    def __init__(self, root: str | os.PathLike[str], *, flush_interval: float = 5.0,
                 retention: timedelta | None = None, compression: str = "zstd",
                 max_pending_samples: int = 4_000_000, flush_samples: int = 1_000_000,
                 compact_max_rows: int = 20_000_000) -> None:
        if flush_interval <= 0:
            raise ValueError(f"parameter archive flush interval must be > 0 s, not {flush_interval}")
        if flush_samples < 1:
            raise ValueError(f"parameter archive flush_samples must be >= 1, not {flush_samples}")
        self.root = Path(root)
        self.flush_interval = flush_interval
        self.retention = retention
        self.compression = compression
        self.max_pending_samples = max_pending_samples
        self.flush_samples = flush_samples
        self.compact_max_rows = compact_max_rows
        self._rows: dict[Path, int] = {}
        # Set by add() (on the event loop's thread) when a spacecraft has flush_samples pending; run()
        # waits on it.  Without a running loop (replay, benchmarks) nobody waits and it is only a flag.
        self._full = asyncio.Event()
        self.stats = ArchiveStats()
        self._pending: dict[str, _Pending] = defaultdict(_Pending)
        self._lock = threading.Lock()       # add() from the event loop, flush() in a worker thread
        self._flush_lock = threading.Lock()  # one flush at a time
        self._exports: dict[int, list[ParameterExport]] = {}  # by id(definition): names repeat across spacecraft
        self._counter = time.time_ns()
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_temporaries()

    # ------------------------------------------------------------------ hot path

    def add(self, spacecraft: str, definition: PacketDef, raw: Mapping[str, np.ndarray],
            onboard: np.ndarray | None, ground_time: float) -> None:
        """Queue one decoded packet group: ``raw`` columns (as decoded), per-packet onboard times."""
        exports = self._exports.get(id(definition))
        if exports is None:
            exports = self._exports[id(definition)] = exports_of(definition)
        if not exports:
            return
        count = len(next(iter(raw.values()))) if raw else 0
        if count == 0:
            return
        with self._lock:
            pending = self._pending[spacecraft]
            pending.groups.append((definition, raw, onboard, ground_time))
            pending.rows += count * len(exports)
            while pending.rows > self.max_pending_samples and len(pending.groups) > 1:
                dropped = pending.groups.pop(0)
                lost = len(next(iter(dropped[1].values()))) * len(self._exports[id(dropped[0])])
                pending.rows -= lost
                self.stats.samples_dropped += lost
            full = pending.rows >= self.flush_samples
        if full:
            self._full.set()

    @property
    def pending_samples(self) -> int:
        with self._lock:
            return sum(p.rows for p in self._pending.values())

    # ------------------------------------------------------------------ flushing

    def flush(self) -> int:
        """Write everything pending (one file per spacecraft and hour); returns the samples written.

        On a write error the batch stays pending (it is retried at the next flush) and the error is
        counted; nothing raises to the caller.
        """
        with self._flush_lock:
            with self._lock:
                taken, self._pending = self._pending, defaultdict(_Pending)
            written = 0
            for spacecraft, pending in taken.items():
                try:
                    written += self._write_spacecraft(spacecraft, pending)
                except OSError as exc:
                    self.stats.write_errors += 1
                    log.warning("parameter archive: cannot write %s samples of %s (%s); kept for the next flush",
                                pending.rows, spacecraft, exc.strerror or exc)
                    with self._lock:
                        again = self._pending[spacecraft]
                        again.groups[:0] = pending.groups
                        again.rows += pending.rows
                except Exception:  # noqa: BLE001 - a defect here must never stop ingest: counted, logged, dropped
                    self.stats.samples_dropped += pending.rows
                    log.exception("parameter archive: %d samples of %s could not be written", pending.rows, spacecraft)
            return written

    def _write_spacecraft(self, spacecraft: str, pending: _Pending) -> int:
        """Every pending group of one spacecraft: files of at most about ``flush_samples`` rows each."""
        written = 0
        piece: list = []
        rows = 0
        for group in pending.groups:
            piece.append(group)
            rows += len(next(iter(group[1].values()))) * len(self._exports[id(group[0])])
            if rows >= self.flush_samples:
                written += self._write_groups(spacecraft, piece)
                piece, rows = [], 0
        if piece:
            written += self._write_groups(spacecraft, piece)
        return written

    def _write_groups(self, spacecraft: str, groups: list) -> int:
        hours: dict[str, list] = defaultdict(list)
        for group in groups:
            hours[_hour_key(group[3])].append(group)
        by_hour: dict[str, dict[tuple[str, str, str], list[SampleColumns]]] = defaultdict(lambda: defaultdict(list))
        for hour, in_hour in hours.items():
            for group in merge_groups(in_hour, exports_for=lambda d: self._exports[id(d)]):
                yield_to_ingest()  # between pieces: the links first, under a flood
                rows = by_hour[hour]
                for export in self._exports[id(group.definition)]:
                    rows[(export.name, export.subsystem, export.unit)].append(
                        SampleColumns.of(export, group.raw[export.path], group.onboard, group.ground_time))
        written = 0
        for hour, rows in by_hour.items():
            self._counter = max(self._counter + 1, time.time_ns())
            directory = self.root / f"spacecraft={spacecraft}" / f"date={_date_of(hour)}"
            written += _write_atomically(_tables_by_parameter(rows), directory / f"{hour}-{self._counter}.parquet",
                                         self.compression)
            self.stats.files_written += 1
        self.stats.samples_written += written
        return written

    # ------------------------------------------------------------------ maintenance

    def compact(self, *, now: float | None = None, all_hours: bool = False) -> int:
        """Merge the files of every closed day into one, and of every closed hour of today into one.

        "Closed" means ended more than a flush interval ago; ``all_hours`` takes every hour and day as
        closed (a replay that has written its range).  Returns the files merged away."""
        moment = (time.time() if now is None else now) - self.flush_interval - 1.0
        hour_now, day_now = ("~", "~") if all_hours else (_hour_key(moment), _hour_key(moment)[:8])
        merged = 0
        for directory in sorted(self.root.glob("spacecraft=*/date=*")):
            spans: dict[str, list[_File]] = defaultdict(list)
            for f in _files(directory, live_only=True):
                day = f.span[:8]
                spans[day if day < day_now else f.span[:11]].append(f)
            for span, files in spans.items():
                if len(files) < 2 or (len(span) > 8 and span >= hour_now):
                    continue
                if sum(self._rows_of(f.path) for f in files) > self.compact_max_rows:
                    continue  # a merge holds its whole span in memory: a flood's hour stays in its flush files
                merged += self._merge(directory, span, files)
        self.stats.files_compacted += merged
        return merged

    def _rows_of(self, path: Path) -> int:
        """Rows of one file, from its footer (remembered: files never change once written)."""
        rows = self._rows.get(path)
        if rows is None:
            try:
                rows = self._rows[path] = pq.read_metadata(path).num_rows
            except (OSError, pa.ArrowInvalid):
                return 0  # the merge reports the file it cannot read
        return rows

    def _merge(self, directory: Path, span: str, files: list[_File]) -> int:
        try:
            table = _sorted(pa.concat_tables([pq.read_table(f.path, schema=SCHEMA) for f in files])
                            .unify_dictionaries())
        except (OSError, pa.ArrowInvalid) as exc:
            log.warning("parameter archive: cannot compact %s (%s)", span, exc)
            return 0
        top = max(f.n for f in files)
        try:
            _write_atomically(table, directory / f"{span}-c{top}.parquet", self.compression)
        except OSError as exc:
            self.stats.write_errors += 1
            log.warning("parameter archive: cannot compact %s (%s)", span, exc.strerror or exc)
            return 0
        for f in files:
            self._rows.pop(f.path, None)
            if f.path.name != f"{span}-c{top}.parquet":
                f.path.unlink(missing_ok=True)
        return len(files)

    def apply_retention(self, *, now: float | None = None) -> int:
        """Remove the days older than the retention period; returns the files removed."""
        if self.retention is None:
            return 0
        cutoff = (datetime.fromtimestamp(time.time() if now is None else now, UTC) - self.retention).date()
        removed = 0
        for directory in self.root.glob("spacecraft=*/date=*"):
            try:
                day = datetime.strptime(directory.name[5:], "%Y-%m-%d").date()
            except ValueError:
                continue
            if day < cutoff:
                for path in directory.iterdir():
                    self._rows.pop(path, None)
                    path.unlink(missing_ok=True)
                    removed += 1
                directory.rmdir()
        self.stats.files_removed += removed
        return removed

    def _remove_temporaries(self) -> None:
        """A crash during a write leaves only a temporary file: it was never part of the archive."""
        for path in self.root.glob("spacecraft=*/date=*/*.tmp"):
            path.unlink(missing_ok=True)

    def maintain(self) -> int:
        written = self.flush()
        self.compact()
        self.apply_retention()
        return written

    async def run(self) -> None:
        """Flush, compact and apply retention every flush interval until cancelled, then flush once more;
        flush early (without the maintenance) whenever a spacecraft has ``flush_samples`` pending."""
        maintained = time.monotonic()
        # The writes run at a lower priority than the event loop (groundstation.background): under a
        # flood, frames are received first and samples the writer cannot keep are dropped, counted.
        worker = shared_worker()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.flush_interval)
                self._full.clear()
                if time.monotonic() - maintained >= self.flush_interval:
                    maintained = time.monotonic()
                    await worker.run(self.maintain)
                else:
                    await worker.run(self.flush)
        finally:
            await asyncio.shield(asyncio.to_thread(self.flush))


@dataclass(frozen=True)
class MergedGroup:
    """Packet groups of one definition, their exported columns end to end, each packet with its own
    ground time (the groups came in separate batches)."""

    definition: PacketDef
    raw: dict[str, np.ndarray]
    onboard: np.ndarray | None
    ground_time: np.ndarray | float


def merge_groups(groups: Iterable[tuple[PacketDef, Mapping[str, np.ndarray], np.ndarray | None, float]],
                 exports_for: Callable[[PacketDef], list[ParameterExport]]) -> list[MergedGroup]:
    """The groups of each definition as one, in arrival order within it.

    At ordinary rates a batch holds a frame or a few, so a second of housekeeping is a hundred small
    groups; converting each parameter of each group costs a dozen numpy calls whatever its size (the
    writers' CPU at 100 frames/s was mostly that).  Merged, the calls are paid once per definition and
    flush.  Only the exported columns are joined (a variable part is not a parameter).
    """
    by_definition: dict[tuple[int, bool], list] = {}
    for group in groups:
        by_definition.setdefault((id(group[0]), group[2] is None), []).append(group)
    merged: list[MergedGroup] = []
    for same in by_definition.values():
        definition = same[0][0]
        if len(same) == 1:
            _, raw, onboard, ground_time = same[0]
            merged.append(MergedGroup(definition, dict(raw), onboard, ground_time))
            continue
        paths = [e.path for e in exports_for(definition)]
        counts = [len(raw[paths[0]]) for _, raw, _, _ in same] if paths else [0]
        raw_columns = {path: np.concatenate([np.asarray(raw[path]).reshape(-1) for _, raw, _, _ in same])
                       for path in paths}
        onboard = None if same[0][2] is None else np.concatenate(
            [np.asarray(g[2], dtype=np.float64).reshape(-1) for g in same])
        ground = np.repeat(np.array([g[3] for g in same], dtype=np.float64), counts)
        merged.append(MergedGroup(definition, raw_columns, onboard, ground))
    return merged


@dataclass(frozen=True)
class SampleColumns:
    """The samples of one parameter from one packet group, as numpy columns."""

    ground_us: np.ndarray
    onboard_us: np.ndarray | None
    raw: np.ndarray
    eng: np.ndarray | None          # None for a state parameter
    state_names: list[str] | None   # a state parameter: the names of the codes in ``state_index``
    state_index: np.ndarray | None  # index into ``state_names`` per sample
    limit: np.ndarray

    @classmethod
    def of(cls, export: ParameterExport, raw: np.ndarray, onboard: np.ndarray | None,
           ground_time: float | np.ndarray) -> SampleColumns:
        """``ground_time``: the group's receipt time, or one per packet (merged groups)."""
        column = np.asarray(raw).reshape(-1)
        count = column.size
        calibration = export.parameter.calibration
        limits = export.parameter.limits
        onboard_us = None if onboard is None else np.round(np.asarray(onboard, dtype=np.float64) * 1e6).astype(np.int64)
        if isinstance(ground_time, np.ndarray):  # rounded as round() rounds a float: half to even, the same
            ground_us = np.round(ground_time * 1e6).astype(np.int64)
        else:
            ground_us = np.full(count, round(ground_time * 1e6), dtype=np.int64)
        if isinstance(calibration, States):
            # Name and classify each distinct code once, not each sample.
            codes, index = np.unique(column, return_inverse=True)
            names = [calibration.states.get(int(code), f"UNDEFINED_{int(code)}") for code in codes]
            limit = (limits.classify_array(np.asarray(names, dtype=object)).astype(np.uint8)[index]
                     if limits is not None else np.zeros(count, dtype=np.uint8))
            return cls(ground_us, onboard_us, column.astype(np.float64), None, names, index.reshape(-1), limit)
        eng = np.asarray(calibration.to_eng_array(column), dtype=np.float64)
        limit = (limits.classify_array(eng).astype(np.uint8) if limits is not None
                 else np.zeros(count, dtype=np.uint8))
        return cls(ground_us, onboard_us, column.astype(np.float64), eng, None, None, limit)


def _table(rows: Mapping[tuple[str, str, str], list[SampleColumns]]) -> pa.Table:
    """One Arrow table, rows sorted by parameter, then arrival (= ground time) order."""
    keys = sorted(rows)
    flat = [c for k in keys for c in rows[k]]
    sizes = np.array([c.raw.size for c in flat], dtype=np.int64)
    key_of_part = np.repeat(np.arange(len(keys)), [len(rows[k]) for k in keys])
    which = np.repeat(key_of_part, sizes)

    def dictionary(position: int) -> pa.DictionaryArray:
        unique = sorted({k[position] for k in keys})
        number = {v: i for i, v in enumerate(unique)}
        index = np.array([number[k[position]] for k in keys], dtype=np.int32)
        return pa.DictionaryArray.from_arrays(pa.array(index[which]), pa.array(unique, pa.string()))

    names: dict[str, int] = {}
    state_parts = []
    for c in flat:
        if c.state_names is None:
            state_parts.append(np.full(c.raw.size, -1, dtype=np.int32))
        else:
            lut = np.array([names.setdefault(n, len(names)) for n in c.state_names], dtype=np.int32)
            state_parts.append(lut[c.state_index])
    state = np.concatenate(state_parts) if state_parts else np.zeros(0, np.int32)
    onboard = np.concatenate([c.onboard_us if c.onboard_us is not None else np.zeros(c.raw.size, np.int64)
                              for c in flat])
    onboard_valid = np.repeat([c.onboard_us is not None for c in flat], sizes)
    eng = np.concatenate([c.eng if c.eng is not None else np.zeros(c.raw.size) for c in flat])
    eng_valid = np.repeat([c.eng is not None for c in flat], sizes)
    timestamp = pa.timestamp("us", tz="UTC")
    ground = np.concatenate([c.ground_us for c in flat])
    raw = np.concatenate([c.raw for c in flat])
    limit = np.concatenate([c.limit for c in flat])
    if len(flat) > len(keys):
        # A parameter from two definitions: their merged groups follow each other, so put its rows
        # back in arrival order (a stable sort keeps a packet group's own order).
        order = np.lexsort((ground, which))
        which, ground, raw, limit = which[order], ground[order], raw[order], limit[order]
        state, onboard, onboard_valid = state[order], onboard[order], onboard_valid[order]
        eng, eng_valid = eng[order], eng_valid[order]
    return pa.table({
        "parameter": dictionary(0),
        "subsystem": dictionary(1),
        "ground_time": pa.array(ground, timestamp),
        "onboard_time": pa.array(onboard, timestamp, mask=~onboard_valid),
        "raw_value": pa.array(raw),
        "eng_value": pa.array(eng, mask=~eng_valid),
        "state": pa.DictionaryArray.from_arrays(pa.array(state, mask=state < 0), pa.array(list(names), pa.string())),
        "limit_state": pa.array(limit),
        "unit": dictionary(2),
    }, schema=SCHEMA)

# ---------------------------------------------------------------------- files


@dataclass(frozen=True)
class _File:
    span: str        # YYYYmmddTHH (a flush part or an hour) or YYYYmmdd (a day)
    compacted: bool
    n: int           # a part's sequence number; a compacted file's: the largest it covers
    path: Path

    def covers(self, other: _File) -> bool:
        """A compacted file holds every file of its span numbered up to its own (the deletion of the
        files it replaced may have been interrupted by a crash)."""
        if not self.compacted or other is self or not other.span.startswith(self.span) or other.n > self.n:
            return False
        return other.span != self.span or not other.compacted or other.n < self.n


def _files(directory: Path, *, live_only: bool) -> list[_File]:
    found = []
    for path in directory.glob("*.parquet"):
        match = _PART.match(path.name)
        if match is not None:
            found.append(_File(match["span"], bool(match["compact"]), int(match["n"]), path))
    if live_only:
        found = [f for f in found if not any(c.covers(f) for c in found)]
    return sorted(found, key=lambda f: f.path)


def live_files(directory: Path) -> list[Path]:
    """The Parquet files of one day directory that hold data: files covered by a compacted one are left out."""
    return [f.path for f in _files(directory, live_only=True)]


#: Rows of one piece of a flush file (about 10 ms of interpreter time to build; see _tables_by_parameter).
PIECE_ROWS = 131_072


def _tables_by_parameter(rows: Mapping[tuple[str, str, str], list[SampleColumns]]) -> Iterator[pa.Table]:
    """A flush's rows as tables of consecutive parameters, about PIECE_ROWS rows each, in file order.

    Building the Arrow columns of a million rows holds the interpreter lock for about 100 ms, longer
    than a UDP socket's buffer lasts at 50,000 frames/s; in pieces, the links get the lock back (and
    :func:`yield_to_ingest` its chance to wait) between them.  Whole parameters per piece keep the
    file sorted by parameter, then ground time."""
    keys = sorted(rows)
    piece: dict[tuple[str, str, str], list[SampleColumns]] = {}
    size = 0
    for key in keys:
        piece[key] = rows[key]
        size += sum(c.raw.size for c in rows[key])
        if size >= PIECE_ROWS:
            yield_to_ingest()
            yield _table(piece)
            piece, size = {}, 0
    if piece:
        yield_to_ingest()
        yield _table(piece)


def _write_atomically(tables: pa.Table | Iterable[pa.Table], path: Path, compression: str) -> int:
    """Write the table (or the tables, one after the other) as one file that appears whole or not at
    all; returns the rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    written = 0
    try:
        with pq.ParquetWriter(temporary, SCHEMA, compression=compression) as writer:
            for table in [tables] if isinstance(tables, pa.Table) else tables:
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                written += table.num_rows
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return written


def _sorted(table: pa.Table) -> pa.Table:
    """Rows by parameter, then ground time (Arrow sorts no dictionary column: sort on its strings)."""
    import pyarrow.compute as pc

    order = pc.sort_indices(pa.table({"p": table["parameter"].cast(pa.string()), "t": table["ground_time"]}),
                            sort_keys=[("p", "ascending"), ("t", "ascending")])
    return table.take(order)


def _hour_key(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y%m%dT%H")


def _date_of(hour: str) -> str:
    return f"{hour[0:4]}-{hour[4:6]}-{hour[6:8]}"


def day_directories(root: Path, spacecraft: str, first: datetime | None, last: datetime | None) -> Iterable[Path]:
    """The day directories of ``spacecraft`` between two ground times (inclusive; None: open)."""
    base = root / f"spacecraft={spacecraft}"
    for directory in sorted(base.glob("date=*")):
        day = directory.name[5:]
        if first is not None and day < first.strftime("%Y-%m-%d"):
            continue
        if last is not None and day > last.strftime("%Y-%m-%d"):
            continue
        yield directory


# ---------------------------------------------------------------------- reading


class ParameterReader:
    """Queries the archive: the day directories of the range, their live files, and in each only the row
    groups whose statistics (parameter name, ground time) can hold an answer; then a filter and a sort.

    A file whose footer cannot be read (truncated, corrupt, not Parquet) is skipped and counted in
    :attr:`skipped_files`, never fatal.  Footers that were read once are remembered by (size, mtime),
    so a repeated query over the same days only reads the row groups it needs.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.skipped_files = 0
        self._footers: dict[Path, tuple[int, int, pq.FileMetaData | None]] = {}

    def spacecraft(self) -> list[str]:
        return sorted(p.name.split("=", 1)[1] for p in self.root.glob("spacecraft=*") if p.is_dir())

    def samples(self, spacecraft: str, parameters: Iterable[str], *, start: float | None = None,
                end: float | None = None, onboard_time: bool = False, limit: int | None = None) -> pa.Table:
        """The samples of ``parameters`` (names, or ``subsystem.name``) in ``[start, end]`` (Unix seconds),
        sorted by the chosen time (ground receipt, or onboard with ``onboard_time``); at most ``limit`` rows."""
        import pyarrow.compute as pc

        wanted = list(parameters)
        names = sorted({w.rsplit(".", 1)[-1] for w in wanted})
        # Onboard time is never later than ground receipt: the ground day of a sample is on or after its
        # onboard day, so an onboard-time query prunes the days before ``start`` only.
        first = datetime.fromtimestamp(start, UTC) if start is not None else None
        last = datetime.fromtimestamp(end, UTC) if end is not None and not onboard_time else None
        lo = None if start is None else int(start * 1e6)
        hi = None if end is None else int(end * 1e6)
        parts = []
        for day in day_directories(self.root, spacecraft, first, last):
            for path in live_files(day):
                metadata = self._metadata(path)
                if metadata is None:
                    continue
                groups = _row_groups(metadata, names, None if onboard_time else lo, None if onboard_time else hi)
                if not groups:
                    continue
                try:
                    parts.append(pq.ParquetFile(path, metadata=metadata).read_row_groups(groups))
                except (OSError, pa.ArrowInvalid) as exc:
                    self.skipped_files += 1
                    log.warning("parameter archive: skipping unreadable file %s (%s)", path.name, exc)
        if not parts:
            return SCHEMA.empty_table()
        table = pa.concat_tables(parts, promote_options="permissive").unify_dictionaries()
        column = "onboard_time" if onboard_time else "ground_time"
        keep = pc.is_in(table["parameter"].cast(pa.string()), pa.array(names))
        if lo is not None:
            keep = pc.and_(keep, pc.greater_equal(table[column], pa.scalar(lo, table[column].type)))
        if hi is not None:
            keep = pc.and_(keep, pc.less_equal(table[column], pa.scalar(hi, table[column].type)))
        table = table.filter(keep)
        qualified = [w for w in wanted if "." in w]
        if qualified:
            keys = pc.binary_join_element_wise(table["subsystem"].cast(pa.string()),
                                               table["parameter"].cast(pa.string()), ".")
            plain = [w for w in wanted if "." not in w]
            table = table.filter(pc.or_(pc.is_in(keys, pa.array(qualified)),
                                        pc.is_in(table["parameter"].cast(pa.string()), pa.array(plain or [""]))))
        table = table.sort_by([(column, "ascending")])
        if limit is not None:
            table = table.slice(0, max(0, limit))
        return table

    def _metadata(self, path: Path) -> pq.FileMetaData | None:
        """The file's footer, read once per (size, mtime); None (counted) when it cannot be read."""
        try:
            st = path.stat()
        except OSError:
            return None
        known = self._footers.get(path)
        if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
            return known[2]
        try:
            metadata: pq.FileMetaData | None = pq.read_metadata(path)
        except (OSError, pa.ArrowInvalid) as exc:
            metadata = None
            self.skipped_files += 1
            log.warning("parameter archive: skipping unreadable file %s (%s)", path.name, exc)
        self._footers[path] = (st.st_size, st.st_mtime_ns, metadata)
        return metadata


def _row_groups(metadata: pq.FileMetaData, names: list[str], lo: int | None, hi: int | None) -> list[int]:
    """Row groups that may hold one of ``names`` with a ground time in [lo, hi] (µs), by their statistics."""
    schema = metadata.schema.names
    name_column, time_column = schema.index("parameter"), schema.index("ground_time")
    chosen = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        stats = group.column(name_column).statistics
        if stats is not None and stats.has_min_max and not any(stats.min <= n <= stats.max for n in names):
            continue
        times = group.column(time_column).statistics
        if times is not None and times.has_min_max:
            t0, t1 = _micros(times.min), _micros(times.max)
            if (lo is not None and t1 < lo) or (hi is not None and t0 > hi):
                continue
        chosen.append(i)
    return chosen


def _micros(value) -> int:
    """A timestamp statistic as µs since the epoch (pyarrow gives a datetime or an int)."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1e6)
    return int(value)


def remove_range(root: str | os.PathLike[str], spacecraft: str, start: float | None, end: float | None) -> int:
    """Delete the samples of ``spacecraft`` whose ground time is in ``[start, end)`` (None: open); returns
    the samples removed.  Files wholly inside go, files partly inside are rewritten (atomically) without them.
    ``groundstation replay --parameters`` calls this before it writes the range again."""
    import pyarrow.compute as pc

    first = datetime.fromtimestamp(start, UTC) if start is not None else None
    last = datetime.fromtimestamp(end, UTC) if end is not None else None
    removed = 0
    for directory in day_directories(Path(root), spacecraft, first, last):
        for path in live_files(directory):
            table = pq.read_table(path, schema=SCHEMA)
            times = table["ground_time"]
            inside = pc.and_(
                pc.greater_equal(times, pa.scalar(int(start * 1e6), times.type)) if start is not None
                else pc.is_valid(times),
                pc.less(times, pa.scalar(int(end * 1e6), times.type)) if end is not None else pc.is_valid(times))
            count = pc.sum(inside).as_py() or 0
            if count == table.num_rows:
                path.unlink()
            elif count:
                _write_atomically(table.filter(pc.invert(inside)), path, "zstd")
            removed += count
    return removed
