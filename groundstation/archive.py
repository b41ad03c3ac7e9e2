"""The raw frame archive: every received frame, good or bad, is kept on disk before decoding.

Frames are appended to segment files (``*.qqa``) in one directory; each sealed
segment has an index file (``*.qqi``) that can always be rebuilt from the segment.
The byte layout, the durability guarantees and the asyncio usage are documented
in docs/ARCHIVE.md; the struct formats below are the normative definition.

The writer is synchronous and cheap: one ``write()`` per batch of frames.  fsync is
separate (:meth:`ArchiveWriter.sync`) so that an asyncio daemon can run it in a
thread and never block its event loop on the disk.
"""
from __future__ import annotations

import asyncio
import calendar
import collections
import enum
import errno
import fcntl
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "WRITE_ERROR_REASONS",
    "ArchiveError",
    "ArchiveSpool",
    "ArchiveReader",
    "ArchiveStats",
    "ArchiveWriter",
    "FrameFlags",
    "FsyncPolicy",
    "Record",
    "SegmentHeaderError",
    "SegmentIndex",
    "IndexBlock",
    "load_index",
    "rebuild_index",
    "scan_segment",
    "write_error_reason",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SEGMENT_SUFFIX = ".qqa"
INDEX_SUFFIX = ".qqi"
LOCK_NAME = ".writer.lock"
#: Files named like segments that are not usable ones are moved here, never deleted.
QUARANTINE_DIR = "quarantine"

# -- segment header: magic, version, header length, segment sequence number,
#    creation time (ns since the Unix epoch, UTC), reserved; then CRC32 of those 28 bytes.
SEGMENT_MAGIC = b"QQAR"
_SEG_HEAD = struct.Struct("<4sHHQqI")
_U32 = struct.Struct("<I")
SEGMENT_HEADER_SIZE = _SEG_HEAD.size + _U32.size  # 32

# -- record header: marker "QR", kind, flags, payload length, receipt time (ns UTC),
#    link id, reserved; then CRC32 of those 20 bytes followed by the payload.
RECORD_MARKER = 0x5251  # b"QR" little-endian
_REC_HEAD = struct.Struct("<HBBIQHH")
_REC_FULL = struct.Struct("<HBBIQHHI")
RECORD_HEADER_SIZE = _REC_FULL.size  # 24
KIND_FRAME = 0
KIND_LINK = 1  # payload: UTF-8 link name; link_id: the id it gets in this segment
#: Sanity bound: a length beyond this is garbage (a torn or corrupt header), not a frame.
MAX_RECORD_PAYLOAD = 1 << 24

# -- index: header, link table, blocks, CRC32 trailer.
INDEX_MAGIC = b"QQAI"
_IDX_HEAD = struct.Struct("<4sHHQQQQQII")
_IDX_LINK = struct.Struct("<HH")
_IDX_BLOCK = struct.Struct("<QQIIQQQ")

_SEGMENT_NAME = re.compile(r"^(\d{10})-(\d{8}T\d{6}Z)\.qqa$")


class ArchiveError(RuntimeError):
    """The archive directory or a file in it cannot be used."""


class SegmentHeaderError(ArchiveError):
    """A file named like a segment whose 32-byte header is torn, foreign or damaged."""


class FsyncPolicy(enum.StrEnum):
    """When appended data is forced to stable storage."""

    ALWAYS = "always"  # after every append call (slow; each batch durable on return)
    INTERVAL = "interval"  # at most every ``fsync_interval_s`` seconds
    NEVER = "never"  # leave it to the kernel (data survives a process kill, not a power cut)


class FrameFlags(enum.IntFlag):
    """The status byte stored with a frame.  The frame chain decides which apply.

    Bits 0-3 are defined here; bits 4-7 are free for the frame chain's own use.
    """

    OK = 0
    SYNC_ERROR = 0x01  # frame boundary not confirmed (no ASM, resynchronised, datagram size wrong)
    CRC_ERROR = 0x02  # frame error control (FECF) did not match
    LENGTH_ERROR = 0x04  # shorter or longer than the link's frame length
    IDLE = 0x08  # idle frame (kept for link statistics)


class Record(NamedTuple):
    """One archived frame as read back."""

    time_ns: int  # ground receipt time, ns since the Unix epoch (UTC)
    link: str
    flags: int
    frame: bytes
    segment: int  # sequence number of the segment holding it
    offset: int  # byte offset of its record header within that segment


@dataclass(frozen=True, slots=True)
class ArchiveStats:
    """Totals over the archive, e.g. for Prometheus gauges."""

    segments: int
    records: int
    bytes: int
    first_ns: int | None
    last_ns: int | None


@dataclass(slots=True)
class IndexBlock:
    """A run of records starting at a sync point (a record boundary a reader can start at)."""

    offset: int
    first_record: int
    count: int
    min_ns: int
    max_ns: int
    link_mask: int  # bit ``min(link_id, 63)`` set for each link present

    def overlaps(self, start_ns: int | None, end_ns: int | None, mask: int | None) -> bool:
        if self.count == 0:
            return False
        if start_ns is not None and self.max_ns < start_ns:
            return False
        if end_ns is not None and self.min_ns >= end_ns:
            return False
        return mask is None or bool(self.link_mask & mask)


@dataclass(slots=True)
class SegmentIndex:
    """Everything a reader needs to skip through one segment without scanning it."""

    sequence: int
    covered_bytes: int  # the index describes the segment's first ``covered_bytes`` bytes
    record_count: int = 0
    min_ns: int | None = None
    max_ns: int | None = None
    links: dict[int, str] = field(default_factory=dict)
    blocks: list[IndexBlock] = field(default_factory=list)
    #: Byte ranges ``(start, end)`` of damaged stretches skipped when this index was built by
    #: scanning the segment (not stored in the index file).
    damaged: list[tuple[int, int]] = field(default_factory=list, compare=False)

    def link_ids(self, names: Collection[str]) -> set[int]:
        return {i for i, n in self.links.items() if n in names}

    def to_bytes(self) -> bytes:
        parts = [
            _IDX_HEAD.pack(
                INDEX_MAGIC,
                FORMAT_VERSION,
                0,
                self.sequence,
                self.covered_bytes,
                self.record_count,
                self.min_ns or 0,
                self.max_ns or 0,
                len(self.links),
                len(self.blocks),
            )
        ]
        for link_id, name in sorted(self.links.items()):
            raw = name.encode()
            parts.append(_IDX_LINK.pack(link_id, len(raw)))
            parts.append(raw)
        for b in self.blocks:
            parts.append(_IDX_BLOCK.pack(b.offset, b.first_record, b.count, 0, b.min_ns, b.max_ns, b.link_mask))
        body = b"".join(parts)
        return body + _U32.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> SegmentIndex:
        if len(data) < _IDX_HEAD.size + 4 or zlib.crc32(data[:-4]) != _U32.unpack_from(data, len(data) - 4)[0]:
            raise ArchiveError("index CRC mismatch or truncated index")
        magic, version, _, seq, covered, count, min_ns, max_ns, n_links, n_blocks = _IDX_HEAD.unpack_from(data)
        if magic != INDEX_MAGIC or version != FORMAT_VERSION:
            raise ArchiveError(f"not a version {FORMAT_VERSION} index (magic {magic!r}, version {version})")
        pos = _IDX_HEAD.size
        links = {}
        for _ in range(n_links):
            link_id, n = _IDX_LINK.unpack_from(data, pos)
            pos += _IDX_LINK.size
            links[link_id] = data[pos : pos + n].decode()
            pos += n
        blocks = []
        for _ in range(n_blocks):
            off, first, cnt, _r, bmin, bmax, mask = _IDX_BLOCK.unpack_from(data, pos)
            pos += _IDX_BLOCK.size
            blocks.append(IndexBlock(off, first, cnt, bmin, bmax, mask))
        if pos != len(data) - 4:
            raise ArchiveError("index length does not match its counts")
        return cls(seq, covered, count, min_ns if count else None, max_ns if count else None, links, blocks)


class _IndexBuilder:
    """Grows a :class:`SegmentIndex` record by record (writer and scanner share it)."""

    __slots__ = ("index", "block_bytes", "_block")

    def __init__(self, index: SegmentIndex, block_bytes: int) -> None:
        self.index = index
        self.block_bytes = block_bytes
        self._block: IndexBlock | None = index.blocks[-1] if index.blocks else None

    def add(self, offset: int, kind: int, time_ns: int, link_id: int, length: int, name: bytes | None = None) -> None:
        idx = self.index
        blk = self._block
        if blk is None or offset - blk.offset >= self.block_bytes:
            blk = self._block = IndexBlock(offset, idx.record_count, 0, time_ns, time_ns, 0)
            idx.blocks.append(blk)
        if kind == KIND_LINK:
            idx.links[link_id] = (name or b"").decode(errors="replace")
        else:
            if blk.count == 0:
                blk.min_ns = blk.max_ns = time_ns
            elif time_ns < blk.min_ns:
                blk.min_ns = time_ns
            elif time_ns > blk.max_ns:
                blk.max_ns = time_ns
            blk.count += 1
            blk.link_mask |= 1 << (link_id if link_id < 63 else 63)
            idx.record_count += 1
            if idx.min_ns is None or time_ns < idx.min_ns:
                idx.min_ns = time_ns
            if idx.max_ns is None or time_ns > idx.max_ns:
                idx.max_ns = time_ns
        idx.covered_bytes = offset + RECORD_HEADER_SIZE + length


# ---------------------------------------------------------------------------- files


def _segment_name(sequence: int, created_ns: int) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created_ns // 1_000_000_000))
    return f"{sequence:010d}-{stamp}{SEGMENT_SUFFIX}"


def _list_segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for entry in os.scandir(directory):
        m = _SEGMENT_NAME.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    found.sort()
    return found


def _index_path(segment: Path) -> Path:
    return segment.with_suffix(INDEX_SUFFIX)


def _read_segment_header(fd_or_file, path: Path) -> tuple[int, int]:
    head = fd_or_file.read(SEGMENT_HEADER_SIZE)
    if len(head) < SEGMENT_HEADER_SIZE:
        raise SegmentHeaderError(f"{path.name}: shorter than a segment header ({len(head)} bytes)")
    magic, version, hlen, seq, created, _ = _SEG_HEAD.unpack_from(head)
    if magic != SEGMENT_MAGIC:
        raise SegmentHeaderError(f"{path.name}: not a Queqiao archive segment (magic {magic!r})")
    if version != FORMAT_VERSION or hlen != SEGMENT_HEADER_SIZE:
        raise SegmentHeaderError(f"{path.name}: unsupported segment version {version} (header length {hlen})")
    if zlib.crc32(head[: _SEG_HEAD.size]) != _U32.unpack_from(head, _SEG_HEAD.size)[0]:
        raise SegmentHeaderError(f"{path.name}: segment header CRC mismatch")
    return seq, created


def _parse_records(buf: bytes | bytearray | memoryview, pos: int, end: int, verify: bool = True):
    """Yield ``(offset, kind, flags, time_ns, link_id, payload_start, payload_end)`` for each
    whole, valid record in ``buf[pos:end]``; stop (without raising) at the first one that is
    incomplete or invalid.  The caller learns where parsing stopped from the last offset."""
    unpack = _REC_FULL.unpack_from
    crc32 = zlib.crc32
    mv = memoryview(buf)
    limit = end - RECORD_HEADER_SIZE
    while pos <= limit:
        marker, kind, flags, length, t, link_id, _r, crc = unpack(buf, pos)
        p0 = pos + RECORD_HEADER_SIZE
        p1 = p0 + length
        if marker != RECORD_MARKER or length > MAX_RECORD_PAYLOAD or kind > KIND_LINK or p1 > end:
            return
        if verify and crc32(mv[p0:p1], crc32(mv[pos : pos + 20])) != crc:
            return
        yield pos, kind, flags, t, link_id, p0, p1
        pos = p1


class _RecordStream:
    """The valid records of the byte range ``[lo, hi)`` of a segment file, read in chunks.

    Iterating yields ``(base, buf, records)``: ``buf`` holds file bytes from offset ``base``
    and ``records`` the :func:`_parse_records` tuples found in it.  Damage does not end the
    stream: after an invalid record it resynchronises at the next offset where a whole
    valid record starts (the ``QR`` marker, a sane header and a matching CRC), so a flipped
    bit costs the one record it hit.  ``on_skip(start, end, tail)`` is told of every stretch
    of bytes that held no valid record; ``tail`` when it runs to the end of the range (a
    torn write from a crash, or the record being written right now).
    """

    def __init__(self, f, lo: int, hi: int, *, read_size: int, verify: bool, on_skip) -> None:
        self.f, self.lo, self.hi = f, lo, hi
        self.read_size = read_size
        self.verify = verify
        self.on_skip = on_skip
        self.bytes_read = 0

    def __iter__(self) -> Iterator[tuple[int, bytes, list[tuple]]]:
        f, hi = self.f, self.hi
        f.seek(self.lo)
        base, buf = self.lo, b""  # buf holds the file's bytes from offset base
        skip_from: int | None = None  # where the damaged stretch being searched through began
        while True:
            if base + len(buf) < hi:
                chunk = f.read(min(self.read_size, hi - base - len(buf)))
                self.bytes_read += len(chunk)
                if chunk:
                    buf = buf + chunk if buf else chunk
                else:
                    hi = base + len(buf)  # the file is shorter than the range
            final = base + len(buf) >= hi
            n = len(buf)
            if skip_from is None:
                parsed = list(_parse_records(buf, 0, n, self.verify))
                stop = parsed[-1][6] if parsed else 0
                if parsed:
                    yield base, buf, parsed
                if stop == n and final:
                    return
                if stop == n or not final and (n - stop < RECORD_HEADER_SIZE or _incomplete(memoryview(buf)[stop:])):
                    base, buf = base + stop, buf[stop:]  # the next record is not all read yet
                    continue
                skip_from, search = base + stop, stop + 1
            else:
                search = 0
            found, keep = _resync(buf, search, n, final)
            if found is not None:
                self.on_skip(skip_from, base + found, False)
                skip_from = None
                base, buf = base + found, buf[found:]
            elif final:
                self.on_skip(skip_from, base + n, True)
                return
            else:
                base, buf = base + keep, buf[keep:]


def _resync(buf: bytes, pos: int, end: int, final: bool) -> tuple[int | None, int]:
    """The offset of the first whole valid record in ``buf[pos:end]`` as ``(offset, 0)``;
    else ``(None, keep)``: nothing before ``keep`` can start one (unless ``final``, a
    candidate at ``keep`` needs bytes not read yet)."""
    crc32 = zlib.crc32
    mv = memoryview(buf)
    while True:
        p = buf.find(b"QR", pos, end)
        if p < 0:
            return None, max(pos, end - 1)  # the last byte may be the marker's first half
        if p + RECORD_HEADER_SIZE > end:
            return None, p
        _m, kind, _f, length, _t, _lid, reserved, crc = _REC_FULL.unpack_from(buf, p)
        if kind <= KIND_LINK and reserved == 0 and length <= MAX_RECORD_PAYLOAD:
            p0 = p + RECORD_HEADER_SIZE
            if p0 + length > end:
                if not final:
                    return None, p
            elif crc32(mv[p0 : p0 + length], crc32(mv[p : p + 20])) == crc:
                return p, 0
        pos = p + 1


def _index_records(f, sequence: int, size: int, block_bytes: int, read_size: int) -> SegmentIndex:
    """Index every valid record of an open segment file; damaged stretches found on the way
    (not the tail) are logged and listed in the index's ``damaged``."""
    builder = _IndexBuilder(SegmentIndex(sequence, SEGMENT_HEADER_SIZE), block_bytes)
    damaged = builder.index.damaged

    def skipped(start: int, end: int, tail: bool) -> None:
        if not tail:
            damaged.append((start, end))

    for base, buf, parsed in _RecordStream(f, SEGMENT_HEADER_SIZE, size, read_size=read_size, verify=True,
                                           on_skip=skipped):
        for off, kind, _flags, t, link_id, p0, p1 in parsed:
            builder.add(base + off, kind, t, link_id, p1 - p0, buf[p0:p1] if kind == KIND_LINK else None)
    return builder.index


def scan_segment(path: str | os.PathLike[str], *, block_bytes: int = 64 * 1024, read_size: int = 1 << 20,
                 ignore_header: bool = False) -> tuple[SegmentIndex, int, int]:
    """Read a whole segment, validating every record.

    Returns ``(index, valid_end, file_size)``: ``valid_end`` is the offset just past the
    last valid record; anything beyond it is a torn or corrupt tail.  Damaged stretches
    between valid records are skipped (resynchronising at the next valid record) and
    listed in ``index.damaged``.  ``ignore_header``: take the sequence number from the file
    name and scan the records even when the header is damaged.
    """
    path = Path(path)
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if ignore_header:
            m = _SEGMENT_NAME.match(path.name)
            if m is None or size < SEGMENT_HEADER_SIZE:
                raise SegmentHeaderError(f"{path.name}: no segment name or shorter than a segment header")
            seq = int(m.group(1))
        else:
            seq, _created = _read_segment_header(f, path)
        index = _index_records(f, seq, size, block_bytes, read_size)
    return index, index.covered_bytes, size


def load_index(segment: str | os.PathLike[str]) -> SegmentIndex | None:
    """The segment's index file if present, intact and consistent with the segment; else None."""
    segment = Path(segment)
    try:
        data = _index_path(segment).read_bytes()
        index = SegmentIndex.from_bytes(data)
        size = segment.stat().st_size
    except (OSError, ArchiveError, UnicodeDecodeError, struct.error) as exc:
        log.debug("archive index for %s unusable: %s", segment.name, exc)
        return None
    m = _SEGMENT_NAME.match(segment.name)
    if m is None or int(m.group(1)) != index.sequence or index.covered_bytes != size:
        return None
    return index


def _write_index(segment: Path, index: SegmentIndex) -> None:
    # tmp + rename: a reader never sees a half-written index.
    target = _index_path(segment)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(index.to_bytes())
    os.replace(tmp, target)


def rebuild_index(segment: str | os.PathLike[str], *, truncate: bool = False,
                  block_bytes: int = 64 * 1024) -> SegmentIndex:
    """Scan ``segment``, write its index file and return it.

    With ``truncate=True`` a torn or corrupt tail (bytes after the last valid record) is cut
    off the segment first; otherwise the index just stops before it.  Damaged stretches
    between valid records are skipped and logged (the bytes stay in the file).
    """
    segment = Path(segment)
    index, valid_end, size = scan_segment(segment, block_bytes=block_bytes)
    _log_damage(segment, index)
    if valid_end < size:
        if truncate:
            _truncate_tail(segment, valid_end, size)
        else:
            log.warning("archive segment %s: invalid data from offset %d of %d", segment.name, valid_end, size)
    if truncate or valid_end == size:
        _write_index(segment, index)
    return index


def _log_damage(segment: Path, index: SegmentIndex) -> None:
    for start, end in index.damaged:
        log.warning("archive segment %s: %d damaged bytes at offset %d skipped (the record there is lost; "
                    "the records after it are kept)", segment.name, end - start, start)


def _truncate_tail(segment: Path, valid_end: int, size: int) -> None:
    log.warning("archive segment %s: %d bytes after the last valid record at offset %d (torn write or corruption); "
                "truncated", segment.name, size - valid_end, valid_end)
    with open(segment, "r+b") as f:
        f.truncate(valid_end)
        os.fsync(f.fileno())


def _segment_header(sequence: int, created_ns: int) -> bytes:
    head = _SEG_HEAD.pack(SEGMENT_MAGIC, FORMAT_VERSION, SEGMENT_HEADER_SIZE, sequence, created_ns, 0)
    return head + _U32.pack(zlib.crc32(head))


def _created_from_name(segment: Path) -> int:
    m = _SEGMENT_NAME.match(segment.name)
    assert m is not None
    return calendar.timegm(time.strptime(m.group(2), "%Y%m%dT%H%M%SZ")) * 1_000_000_000


# ---------------------------------------------------------------------------- writer


@dataclass(slots=True)
class _Open:
    """The segment being written."""

    sequence: int
    path: Path
    fd: int
    size: int
    opened_mono: float
    builder: _IndexBuilder
    link_ids: dict[str, int] = field(default_factory=dict)


class ArchiveWriter:
    """Appends frames to the archive in ``directory``.

    Opening recovers the directory (truncates a torn tail, rebuilds missing indexes,
    applies retention) and starts a fresh segment.  Thread-safe: :meth:`append_many`
    can run on the event loop while :meth:`sync` runs in a worker thread.

    ``inline_sync``: with the "interval" policy, whether :meth:`append_many` itself
    fsyncs when the interval has passed (right for simple synchronous users).  The
    daemon passes False and runs :meth:`sync_periodically` so fsync happens off the loop.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.INTERVAL,
        fsync_interval_s: float = 1.0,
        segment_max_bytes: int = 256 * 1024 * 1024,
        segment_max_age_s: float | None = 3600.0,
        retention_max_bytes: int | None = None,
        retention_max_age_s: float | None = None,
        index_block_bytes: int = 64 * 1024,
        inline_sync: bool = True,
        clock_ns=time.time_ns,
    ) -> None:
        self.directory = Path(directory)
        self.fsync = FsyncPolicy(fsync)
        if fsync_interval_s <= 0:
            raise ValueError("fsync_interval_s must be > 0")
        if segment_max_bytes < 4096:
            raise ValueError("segment_max_bytes must be >= 4096")
        self.fsync_interval_s = float(fsync_interval_s)
        self.segment_max_bytes = int(segment_max_bytes)
        self.segment_max_age_s = segment_max_age_s
        self.retention_max_bytes = retention_max_bytes
        self.retention_max_age_s = retention_max_age_s
        self.index_block_bytes = int(index_block_bytes)
        self.inline_sync = inline_sync
        self._clock_ns = clock_ns
        self._lock = threading.Lock()  # guards all state below
        self._sync_lock = threading.Lock()  # one fsync at a time; only holders close fds
        self._retired: list[int] = []  # fds of sealed segments, fsynced+closed by the next sync
        self._dir_dirty = False  # a segment was created or deleted since the last directory fsync
        self._last_sync_mono = time.monotonic()
        self._closed = False
        # sealed segments: sequence -> (path, size, records, min_ns, max_ns)
        self._sealed: dict[int, tuple[Path, int, int, int | None, int | None]] = {}
        #: Counters for metrics: frames and bytes appended, fsyncs done, segments rotated.
        self.frames_appended = 0
        self.bytes_appended = 0
        self.syncs = 0
        self.rotations = 0
        #: What recovery found at start: damaged stretches skipped, files moved to quarantine/.
        self.damaged_regions = 0
        self.quarantined = 0

        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._take_directory_lock()
        try:
            self._recover()
            self._apply_retention()
        except BaseException:
            os.close(self._lock_fd)
            raise
        # None while the disk refuses a new segment (started on a full disk): the first
        # append that finds room opens it, and until then an ArchiveSpool holds the frames.
        self._cur: _Open | None = None
        try:
            self._cur = self._open_segment(self._next_sequence())
        except OSError as exc:
            log.error("archive: cannot create a new segment (%s); it is created with the first write that fits",
                      exc.strerror)

    def _take_directory_lock(self) -> int:
        # Two writers interleaving in one directory would corrupt it; the lock dies with the process.
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ArchiveError(f"{self.directory} is in use by another archive writer (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd


    # -- life cycle ---------------------------------------------------------------

    def _recover(self) -> None:
        for name in os.listdir(self.directory):
            if name.endswith(INDEX_SUFFIX + ".tmp"):
                os.unlink(self.directory / name)
        for seq, path in _list_segments(self.directory):
            index = load_index(path)
            if index is None:
                index = self._repair(seq, path)
                if index is None:
                    continue
            if index.record_count == 0 and not index.links:
                # An empty segment (writer stopped before its first frame) is just clutter.
                path.unlink()
                _index_path(path).unlink(missing_ok=True)
                continue
            self._sealed[seq] = (path, index.covered_bytes, index.record_count, index.min_ns, index.max_ns)

    def _repair(self, seq: int, path: Path) -> SegmentIndex | None:
        """Index a segment that has no usable index: cut a torn tail, skip damaged stretches,
        rewrite a damaged header from the file name; move a file that is no segment aside.
        None when the file is no longer a segment of the archive."""
        try:
            try:
                index, valid_end, size = scan_segment(path, block_bytes=self.index_block_bytes)
            except SegmentHeaderError as exc:
                head = path.read_bytes()[:SEGMENT_HEADER_SIZE]
                if len(head) < SEGMENT_HEADER_SIZE and SEGMENT_MAGIC.startswith(head[:4]):
                    # A crash while the segment was being created: it never held a record.
                    log.warning("archive: removing %s with a torn header: %s", path.name, exc)
                    path.unlink()
                    return None
                if len(head) < SEGMENT_HEADER_SIZE:
                    self._quarantine(path, str(exc))
                    return None
                index, valid_end, size = scan_segment(path, block_bytes=self.index_block_bytes, ignore_header=True)
                if index.record_count == 0 and not index.links:
                    self._quarantine(path, f"{exc}, and no valid record in it")
                    return None
                log.warning("archive: %s, but %d valid records follow it: header rewritten from the file name",
                            exc, index.record_count)
                with open(path, "r+b") as f:
                    f.write(_segment_header(seq, _created_from_name(path)))
            if index.sequence != seq:
                self._quarantine(path, f"its header says segment {index.sequence}, its name {seq}")
                return None
        except OSError as exc:
            self._quarantine(path, f"unreadable ({exc.strerror})")
            return None
        _log_damage(path, index)
        self.damaged_regions += len(index.damaged)
        if valid_end < size:
            _truncate_tail(path, valid_end, size)
        try:
            _write_index(path, index)
        except OSError as exc:
            # A full disk: the index is rebuilt again at the next start; readers scan meanwhile.
            _index_path(path).with_name(_index_path(path).name + ".tmp").unlink(missing_ok=True)
            log.warning("archive: cannot write the index of %s (%s); it is rebuilt at the next start",
                        path.name, exc.strerror)
        log.info("archive: rebuilt index of %s (%d records)", path.name, index.record_count)
        return index

    def _quarantine(self, path: Path, why: str) -> None:
        """Move a file that is not a usable segment (and its index) into ``quarantine/``, for a human."""
        folder = self.directory / QUARANTINE_DIR
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        k = 1
        while target.exists():
            target = folder / f"{path.name}.{k}"
            k += 1
        try:
            os.replace(path, target)
            if _index_path(path).exists():
                os.replace(_index_path(path), target.with_name(target.name + INDEX_SUFFIX))
        except OSError as exc:
            raise ArchiveError(f"{path}: not a usable segment ({why}) and cannot be moved aside: {exc}") from exc
        self.quarantined += 1
        self._dir_dirty = True
        log.warning("archive: moved %s to %s/%s: %s", path.name, QUARANTINE_DIR, target.name, why)

    def _next_sequence(self) -> int:
        return max(self._sealed, default=0) + 1

    def _open_segment(self, seq: int) -> _Open:
        created = self._clock_ns()
        path = self.directory / _segment_name(seq, created)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, _segment_header(seq, created))
        except OSError:
            # A full disk: leave no torn header behind; the caller carries on with what it has.
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._dir_dirty = True
        builder = _IndexBuilder(SegmentIndex(seq, SEGMENT_HEADER_SIZE), self.index_block_bytes)
        return _Open(seq, path, fd, SEGMENT_HEADER_SIZE, time.monotonic(), builder)

    def _rotate_locked(self) -> None:
        cur = self._cur
        assert cur is not None
        idx = cur.builder.index
        # The new segment first: if the disk refuses it, the current one simply stays open.
        new = self._open_segment(cur.sequence + 1)
        try:
            _write_index(cur.path, idx)
        except OSError as exc:
            _index_path(cur.path).with_name(_index_path(cur.path).name + ".tmp").unlink(missing_ok=True)
            log.warning("archive: cannot write the index of %s (%s); recovery rebuilds it", cur.path.name, exc.strerror)
        self._sealed[cur.sequence] = (cur.path, cur.size, idx.record_count, idx.min_ns, idx.max_ns)
        self._retired.append(cur.fd)
        self.rotations += 1
        self._cur = new
        self._apply_retention()
        log.info("archive: sealed %s (%d records, %d bytes)", cur.path.name, idx.record_count, cur.size)

    def _apply_retention(self) -> None:
        if not self._sealed:
            return
        now = self._clock_ns()
        # The total includes the open segment (it is on disk too), which is never deleted.
        cur = getattr(self, "_cur", None)
        total = sum(v[1] for v in self._sealed.values()) + (cur.size if cur is not None else 0)
        for seq in sorted(self._sealed):
            path, size, _count, _min, max_ns = self._sealed[seq]
            too_big = self.retention_max_bytes is not None and total > self.retention_max_bytes
            too_old = (
                self.retention_max_age_s is not None
                and max_ns is not None
                and max_ns < now - int(self.retention_max_age_s * 1e9)
            )
            if not (too_big or too_old):
                break  # oldest first: once one is kept, newer ones are kept too
            path.unlink(missing_ok=True)
            _index_path(path).unlink(missing_ok=True)
            del self._sealed[seq]
            total -= size
            self._dir_dirty = True
            log.info("archive: retention removed %s (%d bytes, %s)", path.name, size, "size" if too_big else "age")

    def close(self) -> None:
        """Seal the current segment (its index is written), fsync unless the policy is "never".

        Never raises for the disk: what cannot be written or synced now is logged (recovery
        rebuilds a missing index at the next start); every descriptor is closed."""
        with self._sync_lock:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                cur = self._cur
                empty = cur is None or cur.builder.index.record_count == 0
                if cur is not None and not empty:
                    idx = cur.builder.index
                    self._sealed[cur.sequence] = (cur.path, cur.size, idx.record_count, idx.min_ns, idx.max_ns)
                fds = [*self._retired, *([cur.fd] if cur is not None else [])]
                self._retired = []
            try:
                if cur is not None and not empty:
                    _write_index(cur.path, cur.builder.index)
                for fd in fds:
                    if self.fsync is not FsyncPolicy.NEVER:
                        os.fsync(fd)
                if self.fsync is not FsyncPolicy.NEVER:
                    _fsync_dir(self.directory)
            except OSError as exc:
                log.error("archive: closing: %s (recovery rebuilds a missing index at the next start)", exc.strerror)
            finally:
                for fd in fds:
                    os.close(fd)
                if cur is not None and empty:
                    cur.path.unlink(missing_ok=True)
                os.close(self._lock_fd)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the hot path ------------------------------------------------------------

    def append(self, frame: bytes, *, link: str, time_ns: int | None = None, flags: int = 0) -> None:
        """Archive one frame (slow path; prefer :meth:`append_many`)."""
        self.append_many((frame,), link=link, time_ns=time_ns, flags=flags)

    def append_buffer(
        self,
        buffer: bytes | bytearray | memoryview,
        lengths: Sequence[int],
        *,
        link: str | Sequence[str],
        time_ns: int | Sequence[int] | None = None,
        flags: int | Sequence[int] = 0,
    ) -> int:
        """Archive frames laid end to end in ``buffer`` with the given ``lengths``."""
        mv = memoryview(buffer)
        frames = []
        pos = 0
        for n in lengths:
            frames.append(mv[pos : pos + n])
            pos += n
        if pos > len(mv):
            raise ValueError(f"lengths add up to {pos} bytes but the buffer holds {len(mv)}")
        return self.append_many(frames, link=link, time_ns=time_ns, flags=flags)

    def append_many(
        self,
        frames: Sequence[bytes | bytearray | memoryview],
        *,
        link: str | Sequence[str],
        time_ns: int | Sequence[int] | None = None,
        flags: int | Sequence[int] = 0,
    ) -> int:
        """Archive a batch of frames with one ``write()``; returns the number archived.

        ``link``, ``time_ns`` (ground receipt time, ns UTC; default: now) and ``flags``
        (see :class:`FrameFlags`) are either one value for the whole batch or one per frame.
        """
        n = len(frames)
        if n == 0:
            return 0
        if time_ns is None:
            time_ns = self._clock_ns()
        times = [time_ns] * n if isinstance(time_ns, int) else time_ns
        flag_list = [flags] * n if isinstance(flags, int) else flags
        links = (link,) * n if isinstance(link, str) else link
        if len(times) != n or len(flag_list) != n or len(links) != n:
            raise ValueError("time_ns, flags and link must be scalars or have one entry per frame")
        do_sync = False
        with self._lock:
            if self._closed:
                raise ArchiveError("archive writer is closed")
            if self._cur is None:
                self._cur = self._open_segment(self._next_sequence())  # OSError: still no room
            cur = self._cur
            if cur.size >= self.segment_max_bytes or self._too_old(cur):
                try:
                    self._rotate_locked()
                    cur = self._cur
                    assert cur is not None
                except OSError:
                    pass  # no room for a new segment: the write below tries the current one
            parts: list = []
            # Index entries and new link ids are applied only once the write has succeeded,
            # so a bad argument or a failed write leaves the writer consistent with the file.
            pending: list[tuple] = []
            new_links: dict[str, int] = {}
            pack = _REC_HEAD.pack
            pack_crc = _U32.pack
            crc32 = zlib.crc32
            offset = cur.size
            link_ids = cur.link_ids
            for i, (frame, t, fl, ln) in enumerate(zip(frames, times, flag_list, links, strict=True)):
                lid = link_ids.get(ln)
                if lid is None:
                    lid = new_links.get(ln)
                    if lid is None:
                        lid = len(link_ids) + len(new_links)
                        if lid > 0xFFFF:
                            raise ArchiveError("more than 65536 link names in one segment")
                        raw = str(ln).encode()
                        head = pack(RECORD_MARKER, KIND_LINK, 0, len(raw), t, lid, 0)
                        parts += (head, pack_crc(crc32(raw, crc32(head))), raw)
                        pending.append((offset, KIND_LINK, t, lid, len(raw), raw))
                        new_links[ln] = lid
                        offset += RECORD_HEADER_SIZE + len(raw)
                length = len(frame)
                if length > MAX_RECORD_PAYLOAD:
                    raise ValueError(f"frame {i}: {length} bytes exceeds the archive's "
                                     f"{MAX_RECORD_PAYLOAD}-byte record limit")
                try:
                    head = pack(RECORD_MARKER, KIND_FRAME, fl, length, t, lid, 0)
                except struct.error:
                    raise ValueError(f"frame {i}: flags must be 0..255 and time_ns 0..2**64-1 ns, "
                                     f"not flags={fl!r}, time_ns={t!r}") from None
                parts.append(head)
                parts.append(pack_crc(crc32(frame, crc32(head))))
                parts.append(frame)
                pending.append((offset, KIND_FRAME, t, lid, length, None))
                offset += RECORD_HEADER_SIZE + length
            data = b"".join(parts)
            try:
                _write_all(cur.fd, data)
            except OSError:
                # A partial write (disk full) would leave a torn record mid-segment: cut it off.
                try:
                    os.ftruncate(cur.fd, cur.size)
                    os.lseek(cur.fd, cur.size, os.SEEK_SET)
                except OSError:
                    log.exception("archive: cannot undo a partial write to %s", cur.path.name)
                raise
            link_ids.update(new_links)
            add = cur.builder.add
            for entry in pending:
                add(*entry)
            cur.size = offset
            self.frames_appended += n
            self.bytes_appended += len(data)
            if self.fsync is FsyncPolicy.ALWAYS:
                do_sync = True
            elif self.fsync is FsyncPolicy.INTERVAL and self.inline_sync:
                do_sync = time.monotonic() - self._last_sync_mono >= self.fsync_interval_s
            if self._retired and (self.inline_sync or self.fsync is FsyncPolicy.NEVER):
                do_sync = True  # close the sealed segment's descriptor (no fsync under "never")
        if do_sync:
            self.sync()
        return n

    def _too_old(self, cur: _Open) -> bool:
        return (
            self.segment_max_age_s is not None
            and cur.builder.index.record_count > 0
            and time.monotonic() - cur.opened_mono >= self.segment_max_age_s
        )

    # -- durability ----------------------------------------------------------------

    def sync(self) -> None:
        """Force everything appended so far to stable storage (blocking: run it in a thread
        from asyncio).  Also closes sealed segments and rotates an idle segment past its age.

        Raises the first ``OSError`` met (a rotation the disk refused, a failed fsync) after
        doing all the rest; sealed segments' descriptors are closed either way."""
        error: OSError | None = None
        with self._sync_lock:
            with self._lock:
                if self._closed:
                    return
                if self._cur is not None and self._too_old(self._cur):
                    try:
                        self._rotate_locked()
                    except OSError as exc:
                        error = exc
                fd = self._cur.fd if self._cur is not None else None
                retired, self._retired = self._retired, []
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            policy_never = self.fsync is FsyncPolicy.NEVER
            for old in retired:
                try:
                    if not policy_never:
                        os.fsync(old)
                except OSError as exc:
                    error = error or exc
                finally:
                    os.close(old)
            if not policy_never:
                try:
                    # fdatasync: the data and the file size, without the timestamps a reader does not need.
                    if fd is not None:
                        getattr(os, "fdatasync", os.fsync)(fd)
                    if dir_dirty:
                        _fsync_dir(self.directory)
                    self.syncs += 1
                except OSError as exc:
                    self._dir_dirty |= dir_dirty
                    error = error or exc
            self._last_sync_mono = time.monotonic()
        if error is not None:
            raise error

    def sync_due(self) -> bool:
        """Whether the "interval" policy wants a sync now."""
        return self.fsync is FsyncPolicy.INTERVAL and time.monotonic() - self._last_sync_mono >= self.fsync_interval_s

    async def sync_periodically(self) -> None:
        """Run forever (cancel to stop): fsync every ``fsync_interval_s`` in a worker thread.

        For the daemon's TaskGroup, with ``inline_sync=False``; under the "never" policy it
        still closes sealed segments and rotates idle ones, just without fsync."""
        while True:
            await asyncio.sleep(self.fsync_interval_s)
            await asyncio.to_thread(self.sync)

    # -- statistics ----------------------------------------------------------------

    def stats(self) -> ArchiveStats:
        """Totals over the archive, kept incrementally (cheap enough for every scrape)."""
        with self._lock:
            cur = None if self._closed else self._cur
            idx = cur.builder.index if cur is not None else SegmentIndex(0, 0)
            segs = list(self._sealed.values())
            mins = [s[3] for s in segs if s[3] is not None]
            maxs = [s[4] for s in segs if s[4] is not None]
            if idx.min_ns is not None and idx.max_ns is not None:
                mins.append(idx.min_ns)
                maxs.append(idx.max_ns)
            return ArchiveStats(
                segments=len(segs) + (cur is not None),
                records=sum(s[2] for s in segs) + idx.record_count,
                bytes=sum(s[1] for s in segs) + (cur.size if cur is not None else 0),
                first_ns=min(mins) if mins else None,
                last_ns=max(maxs) if maxs else None,
            )

    @property
    def current_segment(self) -> Path | None:
        """The segment being written (None while the disk has refused to create one)."""
        return self._cur.path if self._cur is not None else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(directory: Path) -> None:
    # A new or removed file is durable only once its directory entry is.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- spool

#: Why a write failed: the ``reason`` label of ``queqiao_archive_write_errors_total`` (a fixed set).
WRITE_ERROR_REASONS = ("no_space", "quota", "read_only", "io_error", "permission", "other")
_ERRNO_REASONS = {errno.ENOSPC: "no_space", errno.EDQUOT: "quota", errno.EROFS: "read_only", errno.EIO: "io_error",
                  errno.EACCES: "permission", errno.EPERM: "permission"}


def write_error_reason(exc: OSError) -> str:
    """The :data:`WRITE_ERROR_REASONS` entry for an ``OSError`` from the archive."""
    return _ERRNO_REASONS.get(exc.errno or 0, "other")


@dataclass(slots=True)
class _HeldBatch:
    frames: list[bytes]
    link: str | Sequence[str]
    time_ns: int | Sequence[int]
    flags: int | Sequence[int]
    size: int  # bytes the batch takes in the archive: frames plus record headers


class ArchiveSpool:
    """Keeps a refusing disk from stopping the station: frames go to an :class:`ArchiveWriter`;
    when the disk refuses a batch (full, quota, read-only, I/O error) that batch and every later
    one are held in memory, in arrival order, up to ``max_bytes``; beyond that the oldest held
    batches are dropped, and counted.  A retry (at most every ``retry_interval_s``) writes what
    is held, oldest first, as soon as the disk takes it again.

    :meth:`append_many` never raises ``OSError`` and costs one ``write()`` at most, so the
    decoding after it is never held up by the archive.  Run :meth:`retry_periodically` and
    :meth:`sync_periodically` as tasks; log lines about the trouble come at most every
    ``log_interval_s``.  Single-threaded: call everything from the event loop.
    """

    def __init__(self, writer: ArchiveWriter, *, max_bytes: int = 64 * 1024 * 1024, retry_interval_s: float = 1.0,
                 flush_bytes: int = 4 * 1024 * 1024, log_interval_s: float = 60.0, clock=time.monotonic) -> None:
        self.writer = writer
        self.max_bytes = max_bytes
        self.retry_interval_s = retry_interval_s
        self.flush_bytes = flush_bytes  # written per retry step, so the loop gets a turn in between
        self.log_interval_s = log_interval_s
        self._clock = clock
        self._held: collections.deque[_HeldBatch] = collections.deque()
        self.held_bytes = 0
        self.held_frames = 0
        #: Counters: frames dropped (held too long for the buffer, or left at close), write and sync errors by reason.
        self.dropped_frames = 0
        self.write_errors = dict.fromkeys(WRITE_ERROR_REASONS, 0)
        #: While degraded: the reason (a :data:`WRITE_ERROR_REASONS` entry) and the system's words for it.
        self.reason: str | None = None
        self.detail: str | None = None
        self._sync_failed = False
        self._degraded_since = 0.0
        self._next_retry = 0.0
        self._next_log = 0.0
        self._written_since = 0  # held frames written since the trouble began
        self._dropped_since = 0

    @property
    def degraded(self) -> bool:
        return self.reason is not None

    def append_many(self, frames: Sequence[bytes | bytearray | memoryview], *, link: str | Sequence[str],
                    time_ns: int | Sequence[int] | None = None, flags: int | Sequence[int] = 0) -> None:
        """Archive a batch now, or hold it (see the class); arguments as :meth:`ArchiveWriter.append_many`."""
        if not frames:
            return
        if time_ns is None:
            time_ns = self.writer._clock_ns()  # the receipt time, not the time it is finally written
        if not self._held:
            try:
                self.writer.append_many(frames, link=link, time_ns=time_ns, flags=flags)
            except OSError as exc:
                self._failed(exc)
            else:
                if self.reason is not None:
                    self._recovered()  # nothing was held (buffer_max_bytes = 0, or all dropped)
                return
        held = [f if isinstance(f, bytes) else bytes(f) for f in frames]  # a link may reuse its buffers
        size = sum(map(len, held)) + RECORD_HEADER_SIZE * len(held)
        self._held.append(_HeldBatch(held, link, time_ns, flags, size))
        self.held_bytes += size
        self.held_frames += len(held)
        while self.held_bytes > self.max_bytes:
            oldest = self._held.popleft()
            self.held_bytes -= oldest.size
            self.held_frames -= len(oldest.frames)
            self.dropped_frames += len(oldest.frames)
            if not self._dropped_since:
                log.error("archive: %d bytes of frames held in memory (archive.buffer_max_bytes): dropping the oldest",
                          self.max_bytes)
            self._dropped_since += len(oldest.frames)

    def retry(self, *, force: bool = False) -> bool:
        """If a retry is due (or ``force``), write held batches, oldest first, up to ``flush_bytes``.

        Returns True when it wrote something and more is held (call again soon)."""
        if not self._held:
            return False
        now = self._clock()
        if not force and now < self._next_retry:
            return False
        self._next_retry = now + self.retry_interval_s
        written = 0
        while self._held and written < self.flush_bytes:
            batch = self._held[0]
            try:
                self.writer.append_many(batch.frames, link=batch.link, time_ns=batch.time_ns, flags=batch.flags)
            except OSError as exc:
                self._failed(exc)
                return False
            self._held.popleft()
            self.held_bytes -= batch.size
            self.held_frames -= len(batch.frames)
            self._written_since += len(batch.frames)
            written += batch.size
        if self._held:
            self._next_retry = now  # the disk takes frames again: carry on at the next step
            return True
        self._recovered()
        return False

    async def retry_periodically(self) -> None:
        """Run forever (cancel to stop): retry held batches; a large backlog in ``flush_bytes`` steps."""
        while True:
            more = self.retry()
            self._log_while_degraded()
            # With more to write, only let decoding and HTTP have their turn before the next step.
            await asyncio.sleep(0 if more else self.retry_interval_s)

    async def sync_periodically(self) -> None:
        """:meth:`ArchiveWriter.sync_periodically` that counts a failed fsync instead of ending."""
        while True:
            await asyncio.sleep(self.writer.fsync_interval_s)
            try:
                await asyncio.to_thread(self.writer.sync)
            except OSError as exc:
                self._sync_failed = True
                self._failed(exc, what="sync")
            else:
                if self._sync_failed:
                    self._sync_failed = False
                    if not self._held:
                        self._recovered()

    def close(self) -> None:
        """A last attempt to write what is held (counted as dropped if it fails), then close the writer."""
        while self._held and (self.retry(force=True) or not self.reason):
            pass
        if self._held:
            log.error("archive: %d held frames could not be written before shutdown (%s): dropped",
                      self.held_frames, self.detail)
            self.dropped_frames += self.held_frames
            self._held.clear()
            self.held_frames = self.held_bytes = 0
        self.writer.close()

    # -- reporting -------------------------------------------------------------------

    def _failed(self, exc: OSError, what: str = "write") -> None:
        reason = write_error_reason(exc)
        self.write_errors[reason] += 1
        now = self._clock()
        first = self.reason is None
        self.reason, self.detail = reason, os.strerror(exc.errno) if exc.errno else type(exc).__name__
        if first:
            self._degraded_since = now
            self._next_retry = now + self.retry_interval_s
            self._next_log = now + self.log_interval_s
            self._written_since = self._dropped_since = 0
            log.error("archive: %s failed (%s); holding frames in memory (up to %d bytes) and retrying every %g s",
                      what, self.detail, self.max_bytes, self.retry_interval_s)

    def _log_while_degraded(self) -> None:
        now = self._clock()
        if self.reason is not None and now >= self._next_log:
            self._next_log = now + self.log_interval_s
            log.warning("archive: still failing for %.0f s (%s): %d frames held (%d bytes), %d dropped",
                        now - self._degraded_since, self.detail, self.held_frames, self.held_bytes,
                        self._dropped_since)

    def _recovered(self) -> None:
        if self.reason is None or self._sync_failed:
            return
        log.warning("archive: writing again after %.0f s: %d held frames written, %d dropped",
                    self._clock() - self._degraded_since, self._written_since, self._dropped_since)
        self.reason = self.detail = None


# ---------------------------------------------------------------------------- reader


class ArchiveReader:
    """Reads the archive in ``directory`` (while a writer may be appending to it).

    Never modifies the directory: a missing or stale index is rebuilt in memory only.
    Records come back in archive order (segment, then append order), which is receipt
    order unless the ground clock stepped back.
    """

    def __init__(self, directory: str | os.PathLike[str], *, read_size: int = 1 << 20, verify: bool = True) -> None:
        self.directory = Path(directory)
        self.read_size = read_size
        self.verify = verify
        #: Bytes read from segments so far (how much the index let us skip shows here).
        self.bytes_read = 0
        #: Damaged stretches met and skipped so far (each cost at least one record).
        self.damaged_regions = 0
        if not self.directory.is_dir():
            raise ArchiveError(f"{self.directory}: no such archive directory")

    def segments(self) -> list[tuple[Path, SegmentIndex | None]]:
        """Each segment with its on-disk index (None if missing/stale: the segment is then scanned)."""
        return [(path, load_index(path)) for _seq, path in _list_segments(self.directory)]

    def stats(self) -> ArchiveStats:
        """Totals over the archive (scans segments that have no usable index)."""
        segs = records = size = 0
        first = last = None
        for path, index in self.segments():
            try:
                if index is None:
                    index, _valid_end, _size = scan_segment(path, read_size=self.read_size)
                file_size = path.stat().st_size
            except (ArchiveError, FileNotFoundError):
                continue
            segs += 1
            records += index.record_count
            size += file_size
            if index.min_ns is not None and index.max_ns is not None:
                first = index.min_ns if first is None else min(first, index.min_ns)
                last = index.max_ns if last is None else max(last, index.max_ns)
        return ArchiveStats(segs, records, size, first, last)

    def records(
        self,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        links: str | Collection[str] | None = None,
    ) -> Iterator[Record]:
        """Every archived frame with ``start_ns <= time_ns < end_ns`` from the given links."""
        for batch in self.batches(start_ns=start_ns, end_ns=end_ns, links=links):
            yield from batch

    def batches(
        self,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        links: str | Collection[str] | None = None,
    ) -> Iterator[list[Record]]:
        """Like :meth:`records`, one list per read (about ``read_size`` bytes of archive)."""
        if isinstance(links, str):
            links = {links}
        elif links is not None:
            links = set(links)
        for path, index in self.segments():
            try:
                if index is not None:
                    yield from self._read_indexed(path, index, start_ns, end_ns, links)
                else:
                    yield from self._read_scan(path, start_ns, end_ns, links)
            except FileNotFoundError:
                continue  # removed by retention while we were reading

    def _read_indexed(self, path, index, start_ns, end_ns, links) -> Iterator[list[Record]]:
        if index.record_count == 0:
            return
        if start_ns is not None and index.max_ns < start_ns:
            return
        if end_ns is not None and index.min_ns >= end_ns:
            return
        mask = None
        if links is not None:
            ids = index.link_ids(links)
            if not ids:
                return
            mask = 0
            for i in ids:
                mask |= 1 << min(i, 63)
        # Merge adjacent selected blocks into byte ranges, so each is read in large chunks.
        ranges: list[list[int]] = []
        blocks = index.blocks
        for i, b in enumerate(blocks):
            if not b.overlaps(start_ns, end_ns, mask):
                continue
            stop = blocks[i + 1].offset if i + 1 < len(blocks) else index.covered_bytes
            if ranges and ranges[-1][1] == b.offset:
                ranges[-1][1] = stop
            else:
                ranges.append([b.offset, stop])
        if not ranges:
            return
        with open(path, "rb", buffering=0) as f:
            for lo, hi in ranges:
                yield from self._read_range(f, index.sequence, lo, hi, dict(index.links), start_ns, end_ns, links, path)

    def _read_scan(self, path, start_ns, end_ns, links) -> Iterator[list[Record]]:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            try:
                seq, _created = _read_segment_header(f, path)
            except SegmentHeaderError as exc:
                # The records may well be intact (and each carries its own CRC): read them
                # under the sequence number of the file name.
                m = _SEGMENT_NAME.match(path.name)
                if m is None or size <= SEGMENT_HEADER_SIZE:
                    log.warning("archive: skipping %s: %s", path.name, exc)
                    return
                log.warning("archive: %s; reading its records anyway", exc)
                seq = int(m.group(1))
            # Link names come from the definition records met on the way.
            yield from self._read_range(f, seq, SEGMENT_HEADER_SIZE, size, {}, start_ns, end_ns, links, path,
                                        tolerate_tail=True)

    def _read_range(self, f, seq, lo, hi, link_names, start_ns, end_ns, links, path, tolerate_tail=False):
        def skipped(start: int, end: int, tail: bool) -> None:
            if tail and tolerate_tail:
                return  # the end of the segment being written, or a torn tail recovery will cut
            self.damaged_regions += 1
            log.warning("archive: %s: %d damaged bytes at offset %d skipped%s", path.name, end - start, start,
                        "" if tail else "; reading on from the next intact record")

        stream = _RecordStream(f, lo, hi, read_size=self.read_size, verify=self.verify, on_skip=skipped)
        try:
            for base, buf, parsed in stream:
                out: list[Record] = []
                for off, kind, flags, t, lid, p0, p1 in parsed:
                    if kind == KIND_LINK:
                        link_names[lid] = buf[p0:p1].decode(errors="replace")
                        continue
                    if start_ns is not None and t < start_ns:
                        continue
                    if end_ns is not None and t >= end_ns:
                        continue
                    name = link_names.get(lid, f"#{lid}")
                    if links is not None and name not in links:
                        continue
                    out.append(Record(t, name, flags, buf[p0:p1], seq, base + off))
                if out:
                    yield out
        finally:
            self.bytes_read += stream.bytes_read


def _incomplete(buf: bytes | memoryview) -> bool:
    """Whether ``buf`` starts with a plausible record header whose payload is not all there yet."""
    marker, kind, _f, length, *_ = _REC_FULL.unpack_from(buf, 0)
    plausible = marker == RECORD_MARKER and kind <= KIND_LINK and length <= MAX_RECORD_PAYLOAD
    return plausible and RECORD_HEADER_SIZE + length > len(buf)
