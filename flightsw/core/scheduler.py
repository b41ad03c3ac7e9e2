"""The scheduler: a fixed-rate minor frame driven by a schedule table (cFS SCH, small).

Every tick (default 10 Hz) the scheduler publishes the message id of each table
entry that is due — ``(tick - offset) % period == 0`` — and lets the executive
drain the pipes.  Periods and offsets are in ticks, or in seconds converted to
ticks once at start (a period that is not a whole number of ticks is an error,
not a silent rounding).

Tick *k* happens at sim time ``k / tick_hz`` exactly (integer tick count, no
accumulated float drift).  ``step()`` runs one tick synchronously (tests, virtual
time); ``run()`` is the asyncio loop that sleeps in sim time to each tick.

Overrun: when a tick's work ends after the next tick was due, the tick overran.
The scheduler then catches up at most ``max_catchup`` late ticks back-to-back and
skips (and counts) the rest, as SCH does, so a stall cannot snowball.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from flightsw.core.bus import Message, SoftwareBus
from flightsw.core.time import SimClock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleEntry:
    """One schedule-table row: send ``msg_id`` (meant for ``app``) every ``period``, shifted by ``offset``."""

    app: str
    msg_id: int
    period: float
    offset: float = 0
    unit: Literal["ticks", "s"] = "ticks"
    enabled: bool = True

    def in_ticks(self, tick_hz: float) -> tuple[int, int]:
        """(period, offset) in ticks; raises if seconds do not map onto whole ticks."""
        if self.unit == "ticks":
            period, offset = self.period, self.offset
        elif self.unit == "s":
            period, offset = self.period * tick_hz, self.offset * tick_hz
        else:
            raise ValueError(f"schedule entry {self.app}/0x{self.msg_id:04X}: unit must be 'ticks' or 's', not {self.unit!r}")
        for label, value in (("period", period), ("offset", offset)):
            if not math.isclose(value, round(value), abs_tol=1e-9):
                raise ValueError(
                    f"schedule entry {self.app}/0x{self.msg_id:04X}: {label} {getattr(self, label)} {self.unit} "
                    f"is not a whole number of ticks at {tick_hz:g} Hz")
        period_i, offset_i = round(period), round(offset)
        if period_i < 1:
            raise ValueError(f"schedule entry {self.app}/0x{self.msg_id:04X}: period must be >= 1 tick")
        if not 0 <= offset_i < period_i:
            raise ValueError(f"schedule entry {self.app}/0x{self.msg_id:04X}: offset must be in [0, period)")
        return period_i, offset_i


@dataclass
class _Slot:
    entry: ScheduleEntry
    period: int
    offset: int
    enabled: bool
    sent: int = 0


class Scheduler:
    """Minor-frame scheduler over a SimClock, publishing to a SoftwareBus."""

    def __init__(self, clock: SimClock, bus: SoftwareBus, table: Iterable[ScheduleEntry] = (), *,
                 tick_hz: float = 10.0, dispatch: Callable[[], object] | None = None,
                 max_catchup: int = 5) -> None:
        if not tick_hz > 0:
            raise ValueError(f"tick_hz must be > 0, got {tick_hz}")
        self.clock = clock
        self.bus = bus
        self.tick_hz = float(tick_hz)
        self.tick_period = 1.0 / self.tick_hz
        self.dispatch = dispatch
        self.max_catchup = max_catchup
        self.tick = 0  # the next tick to process
        self._slots: list[_Slot] = []
        self._on_tick: list[Callable[[int, float], object]] = []
        self.overruns = 0
        self.late_ticks = 0
        self.skipped_ticks = 0
        self.processed_ticks = 0
        self._stop = False
        for entry in table:
            self.add(entry)

    @classmethod
    def for_executive(cls, executive, table: Iterable[ScheduleEntry] = (), **kwargs) -> Scheduler:
        """A scheduler on an executive's clock and bus that drains its pipes each tick."""
        sched = cls(executive.clock, executive.bus, table, dispatch=executive.dispatch, **kwargs)
        for entry in sched.entries():
            subs = executive.bus.subscribers(entry.msg_id)
            if entry.app not in subs:
                log.warning("schedule entry for %s sends 0x%04X, which %s does not subscribe to (subscribers: %s)",
                            entry.app, entry.msg_id, entry.app, subs or "none")
        return sched

    # -- table
    def add(self, entry: ScheduleEntry) -> None:
        period, offset = entry.in_ticks(self.tick_hz)
        self._slots.append(_Slot(entry, period, offset, entry.enabled))

    def entries(self) -> list[ScheduleEntry]:
        return [s.entry for s in self._slots]

    def set_enabled(self, app: str, msg_id: int | None = None, enabled: bool = True) -> int:
        """Enable/disable the entries of an app (optionally one msg id); returns how many changed."""
        n = 0
        for slot in self._slots:
            if slot.entry.app == app and (msg_id is None or slot.entry.msg_id == msg_id):
                slot.enabled = enabled
                n += 1
        return n

    def on_tick(self, callback: Callable[[int, float], object]) -> None:
        """Call ``callback(tick, sim_time)`` at the start of every tick (e.g. a physics step)."""
        self._on_tick.append(callback)

    def sent_counts(self) -> dict[tuple[str, int], int]:
        return {(s.entry.app, s.entry.msg_id): s.sent for s in self._slots}

    # -- time
    def tick_time(self, tick: int | None = None) -> float:
        return (self.tick if tick is None else tick) / self.tick_hz

    def due(self, tick: int) -> list[ScheduleEntry]:
        return [s.entry for s in self._slots if s.enabled and (tick - s.offset) % s.period == 0]

    def _process(self, tick: int) -> list[ScheduleEntry]:
        t = self.tick_time(tick)
        for callback in self._on_tick:
            callback(tick, t)
        fired = []
        for slot in self._slots:
            if slot.enabled and (tick - slot.offset) % slot.period == 0:
                self.bus.publish(Message(slot.entry.msg_id, None, "SCH", t))
                slot.sent += 1
                fired.append(slot.entry)
        if self.dispatch is not None:
            self.dispatch()
        self.processed_ticks += 1
        return fired

    def _check_overrun(self, tick: int, started: float) -> None:
        """After tick ``tick`` (begun at sim time ``started``): count an overrun, skip ticks beyond the catch-up budget.

        Only a tick that began on time and ended after the next one was due is an
        overrun; ticks run back-to-back to catch up are counted as ``late_ticks``.
        """
        now = self.clock.now()
        next_time = self.tick_time(tick + 1)
        if started > next_time + 1e-9:
            self.late_ticks += 1
        if now <= next_time + 1e-9:
            return
        if started <= next_time + 1e-9:
            self.overruns += 1
        late = int((now - next_time) * self.tick_hz + 1e-6)  # whole ticks already missed beyond the next one
        if late > self.max_catchup:
            skip = late - self.max_catchup
            self.tick += skip
            self.skipped_ticks += skip
            log.warning("scheduler overrun at tick %d: %.3f s late, skipped %d ticks", tick, now - next_time, skip)

    def step(self) -> list[ScheduleEntry]:
        """Run the next tick now (virtual clocks are advanced to its time); returns the entries fired."""
        tick = self.tick
        t = self.tick_time(tick)
        if self.clock.virtual:
            self.clock.advance_to(t)
        started = self.clock.now()
        self.tick += 1
        fired = self._process(tick)
        self._check_overrun(tick, started)
        return fired

    def step_until(self, t: float) -> int:
        """Step every tick with time <= ``t``; returns the number of ticks run."""
        n = 0
        while self.tick_time() <= t + 1e-9:
            self.step()
            n += 1
        return n

    def stop(self) -> None:
        self._stop = True

    async def run(self, *, ticks: int | None = None, until: float | None = None) -> None:
        """Tick in sim time until stopped, ``ticks`` ticks were run, or sim time ``until`` passed."""
        self._stop = False
        done = 0
        while not self._stop and (ticks is None or done < ticks):
            t = self.tick_time()
            if until is not None and t > until:
                break
            await self.clock.sleep_until(t)
            started = self.clock.now()
            tick = self.tick
            self.tick += 1
            self._process(tick)
            self._check_overrun(tick, started)
            done += 1
