"""TM synchronisation (131.0-B): attached sync marker, pseudo-randomizer, CADUs, frame synchroniser.

A CADU here is ASM 0x1ACFFC1D followed by one transfer frame, pseudo-randomized
(TM polynomial, restarting at every frame) when the profile says so; the ASM is never
randomized.

:class:`FrameSynchronizer` turns a byte stream, cut into chunks of any size, into
frames.  SEARCH: look for an exact marker (``search_bit_errors`` allows a few
flipped bits).  LOCK: expect a marker every CADU length; a marker with up to
``max_bit_errors`` flipped bits is accepted.  A worse one is a miss: the frame behind
it is held, and the synchroniser "flywheels" on.  If a good marker follows within
``flywheel`` misses, the held frames are released (flagged ``flywheel=True``); after
``flywheel + 1`` misses in a row the lock is lost, the held frames are dropped and
the search resumes one octet after the first missed marker, so real CADUs after a
burst of noise are found again.  Losses, slips (a new lock out of step with the old
one) and skipped octets are reported as events and counted.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from cython_ext import randomizer as _randomizer
from cython_ext import sync as _sync

if TYPE_CHECKING:
    from protocols.ccsds.tmframe import FrameProfile

ASM = b"\x1a\xcf\xfc\x1d"
ASM_LENGTH = len(ASM)


def randomize(frame: bytes) -> bytes:
    """TM pseudo-randomize one frame (the operation is its own inverse)."""
    return _randomizer.tm_randomize(frame)


derandomize = randomize


def build_cadu(frame: bytes, *, randomize: bool = True, asm: bytes = ASM) -> bytes:
    """ASM + frame (randomized unless ``randomize=False``)."""
    return asm + (_randomizer.tm_randomize(frame) if randomize else bytes(frame))


def build_cadus(frames: Iterable[bytes], *, randomize: bool = True, asm: bytes = ASM) -> bytes:
    """Back-to-back CADUs of equal-length frames (randomized in one kernel call)."""
    frames = list(frames)
    if not frames:
        return b""
    length = len(frames[0])
    if any(len(f) != length for f in frames):
        raise ValueError("all frames of a CADU stream have the same length")
    body = b"".join(frames)
    if randomize:
        body = _randomizer.tm_randomize_many(body, length)
    return b"".join(asm + body[i:i + length] for i in range(0, len(body), length))


class CaduEncoder:
    """What a spacecraft puts on the air for its frames (CCSDS 131.0-B): after the ASM, each frame
    with its Reed-Solomon check symbols when the profile has a code, pseudo-randomized when the
    profile says so.  One encoder per profile; ``cadus`` encodes a whole batch in one kernel call."""

    def __init__(self, profile: FrameProfile) -> None:
        from protocols.ccsds.rs import RsCode

        rs = profile.rs
        self.code = RsCode(rs.e, rs.interleave, rs.basis, profile.frame_length) if rs is not None else None
        self.randomize = profile.randomized
        self.codeblock_length = profile.codeblock_length
        self.cadu_length = len(ASM) + self.codeblock_length

    def codeblocks(self, frames: Sequence[bytes]) -> list[bytes]:
        """Each frame with its check symbols (the frames as they are without a code)."""
        if self.code is None or not frames:
            return list(frames)
        return [bytes(row) for row in self.code.encode_many(b"".join(frames))]

    def cadus(self, frames: Sequence[bytes]) -> bytes:
        """The CADUs of ``frames``, back to back."""
        return build_cadus(self.codeblocks(frames), randomize=self.randomize)



class DatagramCadus:
    """Datagrams that each carry one CADU, told from datagrams that carry a transfer frame, on a link
    whose datagrams may be either (a ``format = "frames"`` UDP or MQTT link fed by several sources).

    A datagram is a CADU when it begins with the ASM exactly and is as long as the CADU of one of
    ``profiles``: then it is replaced by its codeblock (derandomized as that profile says), which the
    chain routes by its header and RS-decodes.  A length whose profiles disagree on randomization is
    never unwrapped (it could not be derandomized right); a transfer frame that begins with the
    ASM's four octets would be a version-0 frame of SCID 428 on VC 7 with the OCF flag set, and is
    unwrapped only if it also has a CADU's length.
    """

    def __init__(self, profiles: Iterable[FrameProfile]) -> None:
        randomized: dict[int, set[bool]] = {}
        for p in profiles:
            length = len(ASM) + p.codeblock_length
            randomized.setdefault(length, set()).add(p.randomized)
        self.lengths = {length: flags.pop() for length, flags in randomized.items() if len(flags) == 1}

    def unwrap(self, datagrams: list[bytes]) -> tuple[list[bytes], int]:
        """(the datagrams with every CADU replaced by its codeblock, how many were CADUs)."""
        lengths = self.lengths
        cadus = 0
        out = datagrams
        for i, datagram in enumerate(datagrams):
            randomized = lengths.get(len(datagram))
            if randomized is None or datagram[:4] != ASM:
                continue
            if out is datagrams:
                out = list(datagrams)
            block = datagram[len(ASM):]
            out[i] = _randomizer.tm_randomize(block) if randomized else bytes(block)
            cadus += 1
        return out, cadus


class SyncState(Enum):
    SEARCH = "search"
    LOCK = "lock"


class SyncedFrame(NamedTuple):
    """A frame out of the synchroniser: stream offset of its first octet (after the ASM),
    its (derandomized) octets, the ASM's bit errors, and whether it was flywheeled
    (its marker was worse than ``max_bit_errors``)."""

    offset: int
    data: bytes
    marker_errors: int
    flywheel: bool


class SyncEvent(NamedTuple):
    """kind: "lock" (octets = octets skipped before the marker), "lost" (octets = held
    frame octets dropped), "slip" (octets = offset of the new lock modulo the CADU length
    relative to the old one)."""

    kind: str
    offset: int
    octets: int
    detail: str


@dataclass(slots=True)
class SyncResult:
    frames: list[SyncedFrame] = field(default_factory=list)
    events: list[SyncEvent] = field(default_factory=list)


class FrameSynchronizer:
    """SEARCH/LOCK frame synchroniser with flywheel over a chunked byte stream."""

    def __init__(self, frame_length: int, *, asm: bytes = ASM, max_bit_errors: int = 2, flywheel: int = 2,
                 search_bit_errors: int = 0, derandomize: bool = True) -> None:
        if frame_length < 1:
            raise ValueError("frame length must be positive")
        if max_bit_errors < 0 or flywheel < 0 or search_bit_errors < 0:
            raise ValueError("bit error and flywheel limits are >= 0")
        self.frame_length = frame_length
        self.asm = bytes(asm)
        self.max_bit_errors = max_bit_errors
        self.flywheel = flywheel
        self.search_bit_errors = search_bit_errors
        self.derandomize = derandomize
        self.cadu_length = len(self.asm) + frame_length
        self.state = SyncState.SEARCH
        self.counters: Counter[str] = Counter()
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._cursor = 0  # index into _buf
        self._held: list[tuple[int, int]] = []  # (index of marker, bit errors) of flywheeled frames
        self._last_good: int | None = None  # stream offset of the last accepted marker
        self._emitted_end = 0  # stream offset just after the last frame handed out
        # Stream offset of the marker the search just acquired on.  It is accepted even when it has more
        # bit errors than max_bit_errors (search_bit_errors may be larger): rejecting it would send the
        # search back to the same marker for ever.
        self._acquired: int | None = None

    @property
    def stream_offset(self) -> int:
        """Octets consumed so far."""
        return self._base + len(self._buf)

    def feed(self, chunk: bytes) -> SyncResult:
        self._buf += chunk
        result = SyncResult()
        # (marker index, CADUs back to back from it, marker bit errors of each, flywheel): a run of
        # perfect markers is one entry, so a clean stream costs no Python object per CADU here.
        found: list[tuple[int, int, int, bool]] = []
        buf = self._buf
        m = len(self.asm)
        cadu = self.cadu_length
        while True:
            if self.state is SyncState.SEARCH:
                pos = _sync.find_asm(buf, self._cursor, self.asm, self.search_bit_errors)
                if pos < 0:
                    self._cursor = max(self._cursor, len(buf) - (m - 1))
                    break
                at = self._base + pos
                # Octets that belong to no frame handed out (noise, dropped frames, garbage).
                skipped = max(0, at - self._emitted_end)
                self.counters["skipped_octets"] += skipped
                result.events.append(SyncEvent("lock", at, skipped, f"marker at {at} after {skipped} skipped octets"))
                self.counters["locks"] += 1
                if self._last_good is not None and (at - self._last_good) % cadu:
                    slip = (at - self._last_good) % cadu
                    result.events.append(SyncEvent("slip", at, slip, f"new lock {slip} octets out of step"))
                    self.counters["slips"] += 1
                self.state = SyncState.LOCK
                self._cursor = pos
                self._acquired = at
                self._held.clear()
                continue
            pos = self._cursor
            if len(buf) - pos < cadu:
                break
            run = 0 if self._held else self._exact_run(pos)
            if run:  # the usual case, a whole run of perfect markers one CADU apart: taken at once
                found.append((pos, run, 0, False))
                self._last_good = self._base + pos + (run - 1) * cadu
                self._emitted_end = self._last_good + cadu
                self._cursor = pos + run * cadu
                continue
            errors = 0 if buf[pos:pos + m] == self.asm else _sync.bit_errors(buf, pos, self.asm)
            if errors <= self.max_bit_errors or self._base + pos == self._acquired:
                for held_pos, held_errors in self._held:
                    found.append((held_pos, 1, held_errors, True))
                self._held.clear()
                found.append((pos, 1, errors, False))
                self._last_good = self._base + pos
                self._emitted_end = self._last_good + cadu
                self._cursor = pos + cadu
            elif len(self._held) < self.flywheel:
                self._held.append((pos, errors))
                self._cursor = pos + cadu
            else:
                self._lose(pos, result)
        self._emit(found, result)
        # Keep only what may still be needed: the held frames, and while locked the last
        # frame (for the backward search after a loss).
        keep_from = self._held[0][0] if self._held else self._cursor
        if self.state is SyncState.LOCK and self._last_good is not None:
            keep_from = max(0, min(keep_from, self._last_good - self._base + m))
        if keep_from:
            del buf[:keep_from]
            self._base += keep_from
            self._cursor -= keep_from
            self._held = [(p - keep_from, e) for p, e in self._held]
        return result

    def _exact_run(self, pos: int) -> int:
        """How many whole CADUs from buffer index ``pos`` on begin with the marker exactly (one array
        compare instead of a Python step per CADU; the array's view of the buffer ends with the call,
        so the buffer can be trimmed afterwards)."""
        cadu = self.cadu_length
        n = (len(self._buf) - pos) // cadu
        if n < 2:
            return 0
        rows = np.frombuffer(self._buf, dtype=np.uint8, count=n * cadu, offset=pos).reshape(n, cadu)
        exact = (rows[:, :len(self.asm)] == np.frombuffer(self.asm, dtype=np.uint8)).all(axis=1)
        return n if exact.all() else int(exact.argmin())

    def _lose(self, pos: int, result: SyncResult) -> None:
        """Lock lost at buffer index ``pos`` (the latest missed marker): drop held frames, search again."""
        m = len(self.asm)
        first = self._held[0][0] if self._held else pos
        at = self._base + first
        result.events.append(SyncEvent("lost", at, len(self._held) * self.frame_length,
                                       f"{len(self._held) + 1} markers missed from {at}; searching again"))
        self.counters["sync_losses"] += 1
        self._held.clear()
        self.state = SyncState.SEARCH
        # Search again from just after the last good marker: a slip backwards (octets
        # lost in the channel) puts the next marker inside the last frame handed out.
        self._cursor = first + 1
        if self._last_good is not None:
            self._cursor = max(0, min(first + 1, self._last_good - self._base + m))

    def flush(self) -> SyncResult:
        """End of stream: frames still held by the flywheel cannot be confirmed, so the rest of the
        stream is searched again from the last good marker; a trailing partial CADU is skipped."""
        result = SyncResult()
        while self._held:
            self._lose(self._held[0][0], result)
            more = self.feed(b"")
            result.frames += more.frames
            result.events += more.events
        end = self._base + len(self._buf)
        self.counters["skipped_octets"] += max(0, end - self._emitted_end)
        self._emitted_end = end
        self._held.clear()
        self._base = end
        self._buf.clear()
        self._cursor = 0
        self.state = SyncState.SEARCH
        return result

    def _emit(self, found: list[tuple[int, int, int, bool]], result: SyncResult) -> None:
        if not found:
            return
        m, fl, cadu = len(self.asm), self.frame_length, self.cadu_length
        buf = self._buf
        parts: list[bytes | bytearray] = []
        for p, count, _, _ in found:
            if count == 1:
                parts.append(buf[p + m:p + m + fl])
            else:  # a run: one strided copy of its data fields (the view ends here, the buffer stays resizable)
                rows = np.frombuffer(buf, dtype=np.uint8, count=count * cadu, offset=p).reshape(count, cadu)
                parts.append(rows[:, m:m + fl].tobytes())
                del rows
        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        if self.derandomize:
            joined = _randomizer.tm_randomize_many(joined, fl)
        if not isinstance(joined, bytes):
            joined = bytes(joined)
        frames = result.frames
        at = 0
        base = self._base + m
        for p, count, errors, fly in found:
            # map() over ranges: no Python-level loop step per CADU of a run.
            datas = [joined[i:i + fl] for i in range(at, at + count * fl, fl)]
            offsets = range(base + p, base + p + count * cadu, cadu)
            frames += map(SyncedFrame, offsets, datas, repeat(errors, count), repeat(fly, count))
            at += count * fl
        total = at // fl
        self.counters["frames"] += total
        self.counters["flywheel_frames"] += sum(count for _, count, _, fly in found if fly)
        self.counters["marker_bit_errors"] += sum(count * errors for _, count, errors, _ in found)


def synchronize(stream: bytes, frame_length: int, **options) -> SyncResult:
    """One-shot: every frame in a whole CADU stream (see :class:`FrameSynchronizer` for options)."""
    synchronizer = FrameSynchronizer(frame_length, **options)
    result = synchronizer.feed(stream)
    tail = synchronizer.flush()
    result.events += tail.events
    return result
