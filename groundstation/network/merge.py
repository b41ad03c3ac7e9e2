"""The merge: every site's copies of a frame in, exactly one best copy out, in order.

Pure bookkeeping (no I/O): :class:`FrameMerger` is offered decoded messages and
asked, now and then, which frames are ready.  Per spacecraft and virtual channel it
unwraps the frame count into an absolute count (so wrap-around and a spacecraft reset
each get their own epoch): a site's frame is placed nearest its own previous frame when
that one was received just before it (within :data:`FOLLOW_S`), otherwise (the site's
first frame, or after a gap in its reception) nearest the frame that any site received
closest in time.  So a site whose copies reach the merge long after the others' (more
than half the counter's modulus behind: 128 TM frames) is placed by its receipt times,
not mistaken for the next count cycle.  A frame is released when every
expected site has passed it or when it has waited ``wait_s``; releases on one VC are
always in count order.
"""
from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass, field

from groundstation.network.message import FrameHeader, FrameMessage, MessageError, frame_header

log = logging.getLogger("queqiao.merge")

#: A site's frame is unwrapped against the same site's previous frame when it was received at most
#: this long before (the count cannot wrap in between unless the VC runs faster than half its
#: modulus per FOLLOW_S: 1,280 TM frames/s); else against the frame received nearest in time.
FOLLOW_S = 0.1
#: The nearest-in-time search keeps one placement per TIME_STEP_S of receipt time, for the last
#: TIME_SPAN_S: a site up to that far behind is still placed by time (beyond it, nearest the newest).
TIME_STEP_S = 0.01
TIME_SPAN_S = 900.0

#: Reasons a message is refused (bounded metric label values).
REJECT_REASONS = ("truncated", "magic", "version", "quality", "names", "unknown_spacecraft", "stale")


@dataclass(slots=True)
class Candidate:
    message: FrameMessage
    rank: tuple
    first_arrival: float  # monotonic, of the first copy from any site
    first_receipt: float  # the earliest trusted receipt time of any copy (Unix s)
    sites: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Released:
    spacecraft: str
    vcid: int
    absolute: int  # epoch * modulus + count
    message: FrameMessage
    offered_by: frozenset[str]


class ReleasedCounts:
    """The absolute counts released on one VC, as sorted half-open runs [start, end): releases come
    mostly in order, so this stays a few runs however many frames went out; runs ending more than
    ``horizon`` counts before the newest are forgotten (a copy that old is too late to tell)."""

    def __init__(self, horizon: int = 1 << 24) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.horizon = horizon

    def __bool__(self) -> bool:
        return bool(self.starts)

    def __contains__(self, absolute: int) -> bool:
        i = bisect.bisect_right(self.starts, absolute) - 1
        return i >= 0 and absolute < self.ends[i]

    def add(self, absolute: int) -> None:
        starts, ends = self.starts, self.ends
        if starts and absolute == ends[-1]:  # the usual case: the next in order
            ends[-1] += 1
        elif not starts or absolute > ends[-1]:
            starts.append(absolute)
            ends.append(absolute + 1)
        elif absolute not in self:  # a late frame: a run of its own, joined to its neighbours
            i = bisect.bisect_right(starts, absolute)
            starts.insert(i, absolute)
            ends.insert(i, absolute + 1)
            if i + 1 < len(starts) and ends[i] == starts[i + 1]:
                ends[i] = ends.pop(i + 1)
                starts.pop(i + 1)
            if i and ends[i - 1] == starts[i]:
                ends[i - 1] = ends.pop(i)
                starts.pop(i)
        if len(starts) > 1 and ends[0] < ends[-1] - self.horizon:
            keep = bisect.bisect_left(ends, ends[-1] - self.horizon)
            del starts[:keep], ends[:keep]


@dataclass(slots=True)
class _Channel:
    modulus: int
    highest: int  # absolute count of the highest frame seen
    next_release: int  # lowest absolute count not yet released
    pending: dict[int, Candidate] = field(default_factory=dict)
    released: ReleasedCounts = field(default_factory=ReleasedCounts)  # for duplicates and late copies
    site_high: dict[str, int] = field(default_factory=dict)
    latest_receipt: float = 0.0  # the newest trusted receipt time seen (Unix s, never ahead of the wall clock)
    last_arrival: float = 0.0  # monotonic, of the last copy from any site
    site_last: dict[str, tuple[float, int]] = field(default_factory=dict)  # (receipt, absolute) of its last frame
    # Receipt times (ascending, one per TIME_STEP_S) and the absolute count placed at each.
    times: list[float] = field(default_factory=list)
    absolutes: list[int] = field(default_factory=list)

    def unwrap(self, site: str, count: int, receipt: float) -> int:
        """The absolute count of ``count`` received by ``site`` at ``receipt`` (see the module's docstring)."""
        last = self.site_last.get(site)
        if last is not None and 0.0 <= receipt - last[0] <= FOLLOW_S:
            reference = last[1]
        elif self.times:
            i = bisect.bisect_left(self.times, receipt)
            if i == len(self.times) or (i and receipt - self.times[i - 1] <= self.times[i] - receipt):
                i -= 1
            reference = self.absolutes[i]
        else:
            reference = self.highest
        half = self.modulus // 2
        delta = (count - reference) % self.modulus
        if delta >= half:
            delta -= self.modulus
        absolute = reference + delta
        self.site_last[site] = (receipt, absolute)
        if not self.times or receipt >= self.times[-1] + TIME_STEP_S:
            self.times.append(receipt)
            self.absolutes.append(absolute)
            if receipt - self.times[0] > 2 * TIME_SPAN_S:  # trimmed in chunks: amortised O(1)
                keep = bisect.bisect_left(self.times, receipt - TIME_SPAN_S)
                del self.times[:keep], self.absolutes[:keep]
        return absolute


@dataclass
class MergeCounts:
    """Per (site, spacecraft): what the merge did with that site's frames."""

    offered: int = 0
    chosen: int = 0
    duplicates: int = 0
    gaps_filled: int = 0
    late: int = 0  # came after later frames had been released: passed on out of order rather than lost
    clock_skew: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    lateness_s: float = 0.0  # of the last frame: merge arrival minus the site's receipt time


class FrameMerger:
    def __init__(self, routes: dict[tuple[int, int], str], *, stations: tuple[str, ...] = (), wait_s: float = 0.2,
                 max_age_s: float = 600.0, clock_skew_s: float = 2.0) -> None:
        """``routes``: (transfer frame version, SCID) -> spacecraft name, from the mission database."""
        self.routes = routes
        self.stations = frozenset(stations)
        self.wait_s = wait_s
        self.max_age_s = max_age_s
        self.clock_skew_s = clock_skew_s
        self.channels: dict[tuple[str, int], _Channel] = {}
        self.counts: dict[tuple[str, str], MergeCounts] = {}
        self._late: list[Released] = []
        #: Set by the reader while it is behind (its last read came back full): a quiet spell then
        #: means a slow read, not the end of a pass, so nothing is released for quietness alone.
        self.backlog = False

    def _counts(self, site: str, spacecraft: str) -> MergeCounts:
        key = (site, spacecraft)
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = MergeCounts()
        return counts

    def reject(self, site: str, spacecraft: str, reason: str) -> None:
        rejected = self._counts(site, spacecraft).rejected
        rejected[reason] = rejected.get(reason, 0) + 1

    def offer(self, message: FrameMessage, *, now: float | None = None, wall: float | None = None) -> str | None:
        """Take one site's copy; returns the rejection reason, or None when it was taken (or a duplicate)."""
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        site = message.station
        try:
            header = frame_header(message.frame)
        except MessageError as exc:
            self.reject(site, "undeclared", exc.reason)
            return exc.reason
        spacecraft = self.routes.get((header.version, header.scid))
        if spacecraft is None:
            self.reject(site, "undeclared", "unknown_spacecraft")
            return "unknown_spacecraft"
        counts = self._counts(site, spacecraft)
        counts.offered += 1
        receipt = message.receipt_ns / 1e9
        lateness = wall - receipt
        if lateness > self.max_age_s:
            self.reject(site, spacecraft, "stale")
            return "stale"
        rank: tuple
        if lateness < -self.clock_skew_s:
            counts.clock_skew += 1  # its receipt time cannot be trusted: rank it by when it reached us
            rank = (*message.quality.rank(), wall)
        else:
            counts.lateness_s = lateness
            rank = (*message.quality.rank(), receipt)
        return self._place(spacecraft, header, message, rank, now, min(rank[-1], wall), counts)

    def _place(self, spacecraft: str, header: FrameHeader, message: FrameMessage, rank: tuple, now: float,
               receipt: float, counts: MergeCounts) -> str | None:
        key = (spacecraft, header.vcid)
        channel = self.channels.get(key)
        modulus = header.modulus
        if channel is None:
            channel = self.channels[key] = _Channel(modulus, header.count, header.count)
        site = message.station
        absolute = channel.unwrap(site, header.count, receipt)
        channel.last_arrival = now
        if receipt > channel.latest_receipt:
            channel.latest_receipt = receipt
        if absolute > channel.highest:
            channel.highest = absolute
        if absolute > channel.site_high.get(site, absolute - 1):
            channel.site_high[site] = absolute
        candidate = channel.pending.get(absolute)
        if candidate is None:
            if channel.released and absolute < channel.next_release:
                if absolute in channel.released:
                    counts.duplicates += 1
                    return None
                # Frames after it went out already (no site had it in time): too late for the order,
                # not too late to keep it.
                counts.late += 1
                counts.chosen += 1
                counts.gaps_filled += 1
                self._mark_released(channel, absolute)
                self._late.append(Released(spacecraft, header.vcid, absolute, message, frozenset({site})))
                return None
            channel.pending[absolute] = Candidate(message, rank, now, receipt, {site})
            return None
        if site in candidate.sites or rank >= candidate.rank:
            counts.duplicates += 1
        else:
            self._counts(candidate.message.station, spacecraft).duplicates += 1
            candidate.message, candidate.rank = message, rank
        candidate.first_receipt = min(candidate.first_receipt, receipt)
        candidate.sites.add(site)
        return None

    def release(self, now: float | None = None, *, flush: bool = False) -> list[Released]:
        """Frames ready to go, per VC in count order (``flush``: everything pending).

        A frame is ready when every expected site has passed it, or when the sites' receipt
        times have moved ``wait_s`` past it (so a backlog — a merge restarting, a site
        catching up — is merged by the stations' clocks, not by how fast we read it), or,
        when no site has sent anything on its VC for ``wait_s`` (the end of a pass), at once.
        """
        now = time.monotonic() if now is None else now
        out, self._late = self._late, []
        for (spacecraft, vcid), channel in self.channels.items():
            if not channel.pending:
                continue
            passed_by_all = (min(channel.site_high.get(s, -1 << 62) for s in self.stations)
                             if self.stations else None)
            quiet = not self.backlog and now - channel.last_arrival >= self.wait_s
            for absolute in sorted(channel.pending):
                candidate = channel.pending[absolute]
                ready = flush or (passed_by_all is not None and passed_by_all > absolute) \
                    or channel.latest_receipt - candidate.first_receipt >= self.wait_s \
                    or quiet
                if not ready:
                    break
                del channel.pending[absolute]
                channel.next_release = absolute + 1
                self._mark_released(channel, absolute)
                chosen = candidate.message.station
                counts = self._counts(chosen, spacecraft)
                counts.chosen += 1
                if self._active_sites(channel) - candidate.sites:
                    counts.gaps_filled += 1
                out.append(Released(spacecraft, vcid, absolute, candidate.message, frozenset(candidate.sites)))
        return out

    @staticmethod
    def _mark_released(channel: _Channel, absolute: int) -> None:
        channel.released.add(absolute)

    def _active_sites(self, channel: _Channel) -> set[str]:
        return set(self.stations or channel.site_high)

    @property
    def pending(self) -> int:
        return sum(len(c.pending) for c in self.channels.values())
