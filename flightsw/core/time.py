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

TAI-UTC is explicit: the leap-second table and the epoch conventions are those of
:mod:`protocols.ccsds.cuc` (one copy in the code base), so what the emulator counts
is exactly what the ground decodes.  With the CCSDS epoch (1958-01-01 TAI) the
count includes leap seconds; a mission epoch may count in TAI or UTC scale.  The
run itself is a uniform SI time line: a leap second falling *inside* a run is not
inserted into the SimClock's UTC view (no emulated pass lasts across one today).
"""
from __future__ import annotations

import asyncio
import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from protocols.ccsds.cuc import CCSDS_EPOCH, LEAP_SECONDS, CucTime, Epoch, utc_to_tai
from protocols.ccsds.cuc import tai_minus_utc as _tai_minus_utc_naive

log = logging.getLogger(__name__)

__all__ = ["CCSDS_EPOCH", "LEAP_SECONDS", "CucFormat", "Epoch", "OnboardClock", "OnboardTime", "SimClock",
           "epoch_seconds_us", "tai_minus_utc"]


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"datetime {when.isoformat()} has no timezone; give UTC explicitly (tzinfo=UTC)")
    return when.astimezone(UTC)


def _naive_utc(when: datetime) -> datetime:
    return _aware(when).replace(tzinfo=None)


def tai_minus_utc(when: datetime) -> int:
    """TAI-UTC in whole seconds at an aware UTC instant (table: :mod:`protocols.ccsds.cuc`)."""
    return _tai_minus_utc_naive(_naive_utc(when))


def _us(delta: timedelta) -> int:
    """A timedelta as integer microseconds (exact; timedelta is integral in us)."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def epoch_seconds_us(when: datetime, epoch: Epoch = CCSDS_EPOCH) -> int:
    """Counter microseconds from ``epoch`` to the UTC instant ``when`` (exact integer).

    Same convention as :class:`protocols.ccsds.cuc.CucTime`: a TAI-scale epoch counts
    leap seconds (UTC is converted to TAI first), a UTC-scale epoch does not.
    """
    utc = _naive_utc(when)
    instant = utc_to_tai(utc) if epoch.scale == "TAI" else utc
    return _us(instant - epoch.start)


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
        # Polled, not signalled: the passing of time is itself the event waited for.
        while (remaining := t - self.now()) > 0:  # noqa: ASYNC110
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

    def __init__(self, sim: SimClock, *, epoch: Epoch = CCSDS_EPOCH, drift_ppm: float = 0.0, offset_s: float = 0.0,
                 cuc: CucFormat = CucFormat()) -> None:
        self.sim = sim
        self.epoch = epoch
        self.drift_ppm = float(drift_ppm)
        self.cuc_format = cuc
        # Exact integer nanoseconds of the start instant since the epoch; only
        # small elapsed times go through float arithmetic (sub-ns precision).
        start_us = epoch_seconds_us(sim.start, epoch)
        if start_us < 0:
            raise ValueError(f"simulation start {sim.start.isoformat()} is before the {epoch.name} epoch "
                             f"({epoch.start.isoformat()} {epoch.scale})")
        self._start_ns = start_us * 1000
        self._ref_sim = 0.0
        self._ref_ns = self._start_ns
        self.offset_s = float(offset_s)
        self.correlations = 0

    @classmethod
    def mission_epoch(cls, sim: SimClock, start_utc: datetime, *, name: str = "mission",
                      scale: Literal["TAI", "UTC"] = "UTC", **kwargs) -> OnboardClock:
        """A clock counting from a mission epoch given as a UTC instant (e.g. launch).

        ``scale="UTC"``: the counter skips leap seconds (POSIX-like); ``"TAI"``: it
        counts them.  Either way the ground decodes it with the same :class:`Epoch`.
        """
        naive = _naive_utc(start_utc)
        start = utc_to_tai(naive) if scale == "TAI" else naive
        return cls(sim, epoch=Epoch(name, start, scale), **kwargs)

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

    def cuc_time(self, t: float | None = None) -> CucTime:
        """The reading as a :class:`protocols.ccsds.cuc.CucTime` (to pack into packets)."""
        ot = self.now(t)
        return CucTime(ot.coarse, ot.fine, self.cuc_format.coarse_octets, self.cuc_format.fine_octets, self.epoch)

    def _true_ns(self, t: float | None) -> int:
        t = self.sim.now() if t is None else t
        return self._start_ns + round(t * 1e9)

    def true_seconds(self, t: float | None = None) -> float:
        """What a perfect clock would read at sim time ``t`` (no drift, no offset)."""
        return self._true_ns(t) / 1e9

    def error(self, t: float | None = None) -> float:
        """Onboard minus true time in seconds (what time correlation measures); exact to 1 ns."""
        return (self._ns(t) - self._true_ns(t)) / 1e9

    def set_offset(self, offset_s: float) -> None:
        """Set the additive offset directly (keeps the drift reference)."""
        self.offset_s = float(offset_s)

    def correlate(self, onboard_seconds: float | None = None, t: float | None = None, *,
                  delta_s: float | None = None) -> None:
        """Time correlation: from sim time ``t`` on, the clock reads ``onboard_seconds`` there
        (or its current reading shifted by ``delta_s``; with neither, the true time).

        Drift accumulates again from this point, as after a real clock update.
        """
        t = self.sim.now() if t is None else t
        if onboard_seconds is not None:
            ref_ns = round(onboard_seconds * 1e9)
        elif delta_s is not None:
            ref_ns = self._ns(t) + round(delta_s * 1e9)
        else:
            ref_ns = self._true_ns(t)
        self._ref_sim = t
        self._ref_ns = ref_ns
        self.offset_s = 0.0
        self.correlations += 1
        log.info("onboard clock correlated: %.6f s since epoch at sim t=%.3f", ref_ns / 1e9, t)

    def to_utc(self, onboard_seconds: float) -> datetime:
        """UTC of an onboard reading, inverting drift/offset (ground-style correlation)."""
        elapsed = (onboard_seconds - self._ref_ns / 1e9 - self.offset_s) / (1.0 + self.drift_ppm * 1e-6)
        return self.sim.utc(self._ref_sim + elapsed)
