"""Simulated time and the spacecraft's onboard clock.

Two clocks, kept apart on purpose:

* :class:`SimClock` is the emulator's notion of "now": seconds of simulated time
  since a start epoch (a UTC datetime).  It runs ``time_scale`` times faster than
  the wall clock, or — in *virtual* mode, for tests and batch runs — moves only
  when something steps it.  It never goes backwards.
* :class:`OnboardClock` is what the spacecraft believes: a CUC count (coarse
  seconds + binary fine fraction) since its epoch, with a drift in ppm and an
  offset that a time-correlation telecommand sets.  Its reading is derived from
  the SimClock, so drift and correlation are exact and reproducible.

TAI-UTC is explicit (:data:`LEAP_SECONDS`): CUC counts elapsed SI seconds since a
TAI epoch, while the SimClock's start epoch is given in UTC.  Leap seconds that
would fall *inside* a run are ignored by the SimClock's UTC view (the run is a
uniform SI time line); the onboard count is unaffected either way.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

log = logging.getLogger(__name__)

#: CCSDS 301.0-B-4 recommended epoch (level 1 time code): 1958-01-01T00:00:00 TAI.
CCSDS_EPOCH = datetime(1958, 1, 1, tzinfo=UTC)

#: (UTC instant from which it applies, TAI-UTC in seconds), IERS Bulletin C.
#: Before 1972 UTC used rubber seconds; we take TAI-UTC = 0 there (the offset at
#: 1958-01-01 was 0 by definition and the fractional pre-1972 steps are below what
#: any emulated mission can observe).  Last leap second: 2016-12-31.
LEAP_SECONDS: tuple[tuple[datetime, int], ...] = tuple(
    (datetime(y, m, 1, tzinfo=UTC), s)
    for y, m, s in (
        (1972, 1, 10), (1972, 7, 11), (1973, 1, 12), (1974, 1, 13), (1975, 1, 14), (1976, 1, 15),
        (1977, 1, 16), (1978, 1, 17), (1979, 1, 18), (1980, 1, 19), (1981, 7, 20), (1982, 7, 21),
        (1983, 7, 22), (1985, 7, 23), (1988, 1, 24), (1990, 1, 25), (1991, 1, 26), (1992, 7, 27),
        (1993, 7, 28), (1994, 7, 29), (1996, 1, 30), (1997, 7, 31), (1999, 1, 32), (2006, 1, 33),
        (2009, 1, 34), (2012, 7, 35), (2015, 7, 36), (2017, 1, 37),
    )
)
_LEAP_STARTS = [start for start, _ in LEAP_SECONDS]


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"datetime {when.isoformat()} has no timezone; give UTC explicitly (tzinfo=UTC)")
    return when.astimezone(UTC)


def tai_minus_utc(when: datetime) -> int:
    """TAI-UTC in whole seconds at a UTC instant (0 before 1972)."""
    i = bisect.bisect_right(_LEAP_STARTS, _aware(when)) - 1
    return LEAP_SECONDS[i][1] if i >= 0 else 0


def _us(delta: timedelta) -> int:
    """A timedelta as integer microseconds (exact; timedelta is integral in us)."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def tai_seconds_us(when: datetime, epoch: datetime = CCSDS_EPOCH, epoch_scale: Literal["TAI", "UTC"] = "TAI") -> int:
    """Elapsed TAI microseconds from ``epoch`` to the UTC instant ``when`` (exact integer).

    ``epoch_scale`` says how the epoch's wall-clock reading is meant: "TAI" for the
    CCSDS 1958 epoch, "UTC" for a mission epoch written as a UTC date.
    """
    when = _aware(when)
    epoch = _aware(epoch)
    elapsed = _us(when - epoch) + 1_000_000 * tai_minus_utc(when)
    if epoch_scale == "UTC":
        elapsed -= 1_000_000 * tai_minus_utc(epoch)
    elif epoch_scale != "TAI":
        raise ValueError(f"epoch_scale must be 'TAI' or 'UTC', not {epoch_scale!r}")
    return elapsed


# --------------------------------------------------------------------------- simulated time


class SimClock:
    """Monotonic simulated time in seconds since ``start`` (UTC).

    Real mode: ``now()`` follows ``monotonic()`` scaled by ``time_scale``.
    Virtual mode: ``now()`` changes only through :meth:`advance`/:meth:`advance_to`
    (the scheduler's ``step()`` and ``run()`` call them), so tests are exact and
    batch runs go as fast as the CPU allows.
    """

    def __init__(self, start: datetime, *, time_scale: float = 1.0, virtual: bool = False,
                 monotonic: Callable[[], float] = _time.monotonic) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.start = _aware(start)
        self.virtual = virtual
        self._monotonic = monotonic
        self._scale = float(time_scale)
        self._anchor_sim = 0.0
        self._anchor_wall = monotonic()
        self._last = 0.0

    @classmethod
    def virtual_at(cls, start: datetime) -> SimClock:
        """A virtual clock: time moves only when stepped."""
        return cls(start, virtual=True)

    @property
    def time_scale(self) -> float:
        return self._scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"time_scale must be > 0, got {value}")
        # Re-anchor so that changing speed never makes time jump.
        self._anchor_sim = self.now()
        self._anchor_wall = self._monotonic()
        self._scale = float(value)

    def now(self) -> float:
        """Simulated seconds since ``start``; never decreases."""
        if not self.virtual:
            t = self._anchor_sim + (self._monotonic() - self._anchor_wall) * self._scale
            if t > self._last:
                self._last = t
        return self._last

    def utc(self, t: float | None = None) -> datetime:
        """UTC datetime of sim time ``t`` (default now)."""
        return self.start + timedelta(seconds=self.now() if t is None else t)

    def sim_time_of(self, when: datetime) -> float:
        """Sim seconds of a UTC datetime (may be negative: before start)."""
        return _us(_aware(when) - self.start) / 1e6

    def advance(self, dt: float) -> float:
        """Virtual mode: move time forward by ``dt`` seconds."""
        if dt < 0:
            raise ValueError(f"time cannot go backwards (dt={dt})")
        return self.advance_to(self._last + dt)

    def advance_to(self, t: float) -> float:
        """Virtual mode: move time forward to ``t`` (no-op if already past)."""
        if not self.virtual:
            raise RuntimeError("advance()/advance_to() are for a virtual SimClock; a real clock follows the wall clock")
        if t > self._last:
            self._last = t
        return self._last

    async def sleep_until(self, t: float) -> None:
        """Wait until sim time ``t``: a real sleep (scaled), or a jump in virtual mode."""
        if self.virtual:
            self.advance_to(t)
            await asyncio.sleep(0)  # still a scheduling point for other tasks
            return
        while (remaining := t - self.now()) > 0:
            await asyncio.sleep(remaining / self._scale)


# --------------------------------------------------------------------------- onboard clock


class OnboardTime(NamedTuple):
    """A spacecraft time stamp: CUC counts plus the same instant in seconds since the epoch."""

    coarse: int
    fine: int
    seconds: float


@dataclass(frozen=True)
class CucFormat:
    """Widths of the CUC fields (CCSDS 301.0-B-4: coarse 1-4 octets, fine 0-3)."""

    coarse_octets: int = 4
    fine_octets: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.coarse_octets <= 7 or not 0 <= self.fine_octets <= 10:
            raise ValueError(f"CUC widths out of range: coarse {self.coarse_octets} (1..7), fine {self.fine_octets} (0..10)")

    @property
    def fine_scale(self) -> int:
        return 1 << (8 * self.fine_octets)

    @property
    def coarse_modulus(self) -> int:
        return 1 << (8 * self.coarse_octets)


class OnboardClock:
    """Spacecraft time: CUC counts since ``epoch``, with drift and a correlation offset.

    onboard(t) = tai(ref) + (t - ref) * (1 + drift_ppm * 1e-6) + offset

    where ``t`` is SimClock time and ``ref`` the sim time of the last correlation
    (initially 0, the SimClock start).  The coarse count wraps at its field width,
    as a real counter does.
    """

    def __init__(self, sim: SimClock, *, epoch: datetime = CCSDS_EPOCH,
                 epoch_scale: Literal["TAI", "UTC"] = "TAI", drift_ppm: float = 0.0, offset_s: float = 0.0,
                 cuc: CucFormat = CucFormat()) -> None:
        self.sim = sim
        self.epoch = _aware(epoch)
        self.epoch_scale = epoch_scale
        self.drift_ppm = float(drift_ppm)
        self.cuc_format = cuc
        # Exact integer nanoseconds of the start instant since the epoch; only
        # small elapsed times go through float arithmetic (sub-ns precision).
        start_us = tai_seconds_us(sim.start, self.epoch, epoch_scale)
        if start_us < 0:
            raise ValueError(f"simulation start {sim.start.isoformat()} is before the onboard epoch {self.epoch.isoformat()}")
        self._ref_sim = 0.0
        self._ref_ns = start_us * 1000
        self.offset_s = float(offset_s)
        self.correlations = 0

    @classmethod
    def mission_epoch(cls, sim: SimClock, epoch_utc: datetime, **kwargs) -> OnboardClock:
        """A clock counting from a mission epoch written in UTC (e.g. launch day)."""
        return cls(sim, epoch=epoch_utc, epoch_scale="UTC", **kwargs)

    def _ns(self, t: float | None) -> int:
        t = self.sim.now() if t is None else t
        elapsed = (t - self._ref_sim) * (1.0 + self.drift_ppm * 1e-6) + self.offset_s
        return self._ref_ns + round(elapsed * 1e9)

    def seconds(self, t: float | None = None) -> float:
        """Onboard seconds since the epoch at sim time ``t`` (default now)."""
        return self._ns(t) / 1e9

    def now(self, t: float | None = None) -> OnboardTime:
        """CUC coarse/fine counts (and seconds) at sim time ``t`` (default now)."""
        ns = self._ns(t)
        if ns < 0:
            raise ValueError("onboard time before the epoch cannot be expressed in CUC")
        coarse, rem = divmod(ns, 1_000_000_000)
        fine = rem * self.cuc_format.fine_scale // 1_000_000_000
        return OnboardTime(coarse % self.cuc_format.coarse_modulus, fine, ns / 1e9)

    def true_seconds(self, t: float | None = None) -> float:
        """What a perfect clock would read at sim time ``t`` (no drift, no offset)."""
        t = self.sim.now() if t is None else t
        return tai_seconds_us(self.sim.start, self.epoch, self.epoch_scale) / 1e6 + t

    def error(self, t: float | None = None) -> float:
        """Onboard minus true time in seconds (what time correlation measures)."""
        return self.seconds(t) - self.true_seconds(t)

    def set_offset(self, offset_s: float) -> None:
        """Set the additive offset directly (keeps the drift reference)."""
        self.offset_s = float(offset_s)

    def correlate(self, onboard_seconds: float, t: float | None = None) -> None:
        """Time correlation: from sim time ``t`` on, the clock reads ``onboard_seconds`` there.

        Drift accumulates again from this point, as after a real clock update.
        """
        t = self.sim.now() if t is None else t
        self._ref_sim = t
        self._ref_ns = round(onboard_seconds * 1e9)
        self.offset_s = 0.0
        self.correlations += 1
        log.info("onboard clock correlated: %.6f s since epoch at sim t=%.3f", onboard_seconds, t)

    def to_utc(self, onboard_seconds: float) -> datetime:
        """UTC of an onboard reading, inverting drift/offset (ground-style correlation)."""
        elapsed = (onboard_seconds - self._ref_ns / 1e9 - self.offset_s) / (1.0 + self.drift_ppm * 1e-6)
        return self.sim.utc(self._ref_sim + elapsed)
