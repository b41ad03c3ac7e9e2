"""The event app: PUS service 5 event reports with severities and rate limiting.

Apps (and non-app components through ``Executive.reporter``) report events; the
event app time-stamps them with onboard time, applies per-event enable flags
(PUS 5,5/5,6), rate-limits repeats of the same (app, event id) and hands each
surviving :class:`Event` to a sink callback (the TM builder wires it to a PUS 5
packet).  The PUS 5 subtype of a report is its severity: 1 informative, 2 low,
3 medium, 4 high.

Rate limiting: at most ``burst`` reports of one (app, event id) per ``window_s``
of sim time.  Further repeats are suppressed and counted; the next report that
gets through carries ``suppressed`` — how many were swallowed before it — so the
ground still learns how often it happened.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from flightsw.core.app import App
from flightsw.core.time import OnboardTime

log = logging.getLogger(__name__)


class Severity(IntEnum):
    """PUS 5 report severities (the TM[5,x] subtype)."""

    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4


@dataclass(frozen=True)
class Event:
    app: str
    event_id: int
    severity: Severity
    text: str
    sim_time: float
    onboard: OnboardTime
    data: Mapping[str, Any] = field(default_factory=dict)
    suppressed: int = 0

    @property
    def pus_subtype(self) -> int:
        return int(self.severity)


EventSink = Callable[[Event], object]


@dataclass
class _Window:
    start: float
    count: int = 0
    suppressed: int = 0


class EventApp(App):
    """Collects, filters, rate-limits and forwards event reports."""

    def __init__(self, sink: EventSink | None = None, *, name: str = "EVS", burst: int = 5, window_s: float = 60.0,
                 history: int = 64) -> None:
        super().__init__(name)
        if burst < 1 or window_s <= 0:
            raise ValueError(f"rate limit needs burst >= 1 and window_s > 0, got {burst}, {window_s}")
        self.sink = sink
        self.burst = burst
        self.window_s = window_s
        self.history_len = history
        self.recent: list[Event] = []
        self._windows: dict[tuple[str, int], _Window] = {}
        self.disabled: set[tuple[str, int]] = set()
        self.min_severity = Severity.INFO
        self.sent = {s: 0 for s in Severity}
        self.suppressed_total = 0
        self.filtered_total = 0

    def set_enabled(self, app: str, event_id: int, enabled: bool) -> None:
        """PUS 5,5 / 5,6: enable or disable one event definition."""
        (self.disabled.discard if enabled else self.disabled.add)((app, event_id))

    def report(self, app: str, event_id: int, severity: int, text: str, **data: Any) -> bool:
        """Report an event; returns True if it went to the sink."""
        sev = Severity(severity)
        key = (app, event_id)
        if key in self.disabled or sev < self.min_severity:
            self.filtered_total += 1
            return False
        now = self.now()
        win = self._windows.get(key)
        if win is None or now - win.start >= self.window_s:
            carried = win.suppressed if win is not None else 0
            win = self._windows[key] = _Window(now, 0, 0)
        else:
            carried = 0
        if win.count >= self.burst:
            win.suppressed += 1
            self.suppressed_total += 1
            return False
        win.count += 1
        suppressed, win.suppressed = carried + win.suppressed, 0
        event = Event(app, event_id, sev, text, now, self.onboard.now(now), dict(data), suppressed)
        self.sent[sev] += 1
        self.recent.append(event)
        del self.recent[:-self.history_len]
        log.log(logging.WARNING if sev >= Severity.MEDIUM else logging.INFO,
                "event %s/%d %s: %s%s", app, event_id, sev.name, text,
                f" (+{suppressed} suppressed)" if suppressed else "")
        if self.sink is not None:
            self.sink(event)
        return True

    def housekeeping(self) -> dict[str, Any]:
        hk = super().housekeeping()
        hk.update({f"sent_{s.name.lower()}": n for s, n in self.sent.items()})
        hk["suppressed"] = self.suppressed_total
        hk["filtered"] = self.filtered_total
        return hk
