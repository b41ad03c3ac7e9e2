"""Onboard storage: keep telemetry while the link is down, dump it later (PUS 15, small).

* :class:`PassSchedule` — when the ground can hear us: a list of ``(start, end)``
  windows in sim seconds, plus a command override that forces the link up or down.
* :class:`OnboardStore` — a byte-bounded FIFO of :class:`StoredItem` (bytes,
  onboard time, APID).  When a new item does not fit, the oldest items are dropped
  first and one event reports how many went (PUS 15 "circular" packet store).
  ``dump()`` yields items oldest first, optionally only a time range, and deletes
  what it yielded (downlink-then-delete), so an interrupted dump loses nothing.

``OnboardStore.offer()`` is the routing decision the link layer makes per item:
live downlink when a pass is on, into the store when not.
"""
from __future__ import annotations

import bisect
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flightsw.core.app import App
from flightsw.core.bus import Message
from flightsw.core.msgids import (
    EVENT_LINK_STATE,
    EVENT_STORAGE_DUMP_COMPLETED,
    EVENT_STORE_ITEM_TOO_LARGE,
    EVENT_STORE_OVERFLOW,
    MID_LINK_CHECK,
)

log = logging.getLogger(__name__)

EventCallback = Callable[[int, int, str, Mapping[str, Any]], object]



class PassSchedule:
    """Ground-station visibility windows in sim time, with a command override."""

    def __init__(self, windows: Iterable[tuple[float, float]] = (), *, default_up: bool = False) -> None:
        spans = sorted((float(a), float(b)) for a, b in windows)
        for a, b in spans:
            if not b > a:
                raise ValueError(f"pass window ({a:g}, {b:g}) must end after it starts")
        for (_, b1), (a2, _) in itertools.pairwise(spans):
            if a2 < b1:
                raise ValueError(f"pass windows overlap at {a2:g} s")
        self.windows = spans
        self._starts = [a for a, _ in spans]
        self.default_up = default_up  # with no windows at all: is the link up?
        self.forced: bool | None = None

    def force(self, state: Literal["up", "down", "auto"]) -> None:
        """Command override: force the link up/down, or back to the schedule ("auto")."""
        if state not in ("up", "down", "auto"):
            raise ValueError(f"link state must be 'up', 'down' or 'auto', not {state!r}")
        self.forced = None if state == "auto" else state == "up"

    def scheduled(self, t: float) -> bool:
        if not self.windows:
            return self.default_up
        i = bisect.bisect_right(self._starts, t) - 1
        return i >= 0 and t < self.windows[i][1]

    def link_up(self, t: float) -> bool:
        return self.forced if self.forced is not None else self.scheduled(t)

    def next_pass(self, t: float) -> tuple[float, float] | None:
        """The pass under way at ``t`` or the next one, if any."""
        for a, b in self.windows:
            if b > t:
                return (a, b)
        return None


@dataclass(frozen=True, slots=True)
class StoredItem:
    data: bytes
    onboard_time: float
    apid: int
    seq: int = 0

    @property
    def size(self) -> int:
        return len(self.data)


class OnboardStore:
    """A bounded (by bytes) oldest-first store of telemetry items."""

    def __init__(self, capacity_bytes: int, *, on_event: EventCallback | None = None,
                 link: PassSchedule | None = None, name: str = "store") -> None:
        if capacity_bytes <= 0:
            raise ValueError(f"store capacity must be > 0 bytes, got {capacity_bytes}")
        self.name = name
        self.capacity_bytes = capacity_bytes
        self.on_event = on_event
        self.link = link if link is not None else PassSchedule()
        self._items: deque[StoredItem] = deque()
        self._seq = itertools.count()
        self.used_bytes = 0
        self.stored_total = 0
        self.dropped_total = 0
        self.rejected_total = 0
        self.dumped_total = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def fill_fraction(self) -> float:
        return self.used_bytes / self.capacity_bytes

    def _event(self, event_id: int, severity: int, text: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(event_id, severity, text, data)
        else:
            log.info("storage event %d: %s", event_id, text)

    def store(self, data: bytes, onboard_time: float, apid: int) -> bool:
        """Keep one item; drops the oldest items if needed. False if the item alone exceeds capacity."""
        size = len(data)
        if size > self.capacity_bytes:
            self.rejected_total += 1
            self._event(EVENT_STORE_ITEM_TOO_LARGE, 3, f"item of {size} B exceeds store capacity {self.capacity_bytes} B",
                        size=size, apid=apid)
            return False
        dropped = dropped_bytes = 0
        while self.used_bytes + size > self.capacity_bytes:
            old = self._items.popleft()
            self.used_bytes -= old.size
            dropped += 1
            dropped_bytes += old.size
        self._items.append(StoredItem(bytes(data), float(onboard_time), apid, next(self._seq)))
        self.used_bytes += size
        self.stored_total += 1
        if dropped:
            self.dropped_total += dropped
            self._event(EVENT_STORE_OVERFLOW, 2, f"onboard store full: dropped {dropped} oldest items ({dropped_bytes} B)",
                        dropped=dropped, dropped_bytes=dropped_bytes)
        return True

    def offer(self, data: bytes, onboard_time: float, apid: int, now: float) -> bool:
        """Link-layer routing: True means "send it live", False means it was stored (or rejected)."""
        if self.link.link_up(now):
            return True
        self.store(data, onboard_time, apid)
        return False

    def items(self) -> list[StoredItem]:
        """A snapshot, oldest first (no deletion)."""
        return list(self._items)

    def dump(self, *, start: float | None = None, end: float | None = None, delete: bool = True) -> Iterator[StoredItem]:
        """Yield stored items oldest first, with ``start <= onboard_time < end`` when given.

        Deletion happens item by item as the consumer takes them, so a dump cut
        short (pass ends) keeps what was not yet handed over.  A dump that runs to
        the end reports "storage dump completed" (event 7) with the item count.
        """
        sent = 0
        for item in list(self._items):
            if (start is not None and item.onboard_time < start) or (end is not None and item.onboard_time >= end):
                continue
            # Deleted as it is handed over: what the consumer never took stays stored.
            if delete:
                self._remove(item)
            self.dumped_total += 1
            sent += 1
            yield item
        self._event(EVENT_STORAGE_DUMP_COMPLETED, 1, f"{self.name} dump completed: {sent} items",
                    store=self.name, packets=sent)

    def _remove(self, item: StoredItem) -> None:
        if self._items and self._items[0] is item:
            self._items.popleft()
        else:
            try:
                self._items.remove(item)
            except ValueError:  # already dropped by overflow meanwhile
                return
        self.used_bytes -= item.size

    def clear(self) -> int:
        n = len(self._items)
        self._items.clear()
        self.used_bytes = 0
        return n

    def housekeeping(self) -> dict[str, Any]:
        return {
            "items": len(self._items), "used_bytes": self.used_bytes, "capacity_bytes": self.capacity_bytes,
            "stored_total": self.stored_total, "dropped_total": self.dropped_total,
            "rejected_total": self.rejected_total, "dumped_total": self.dumped_total,
        }


# --------------------------------------------------------------------------- app



class StorageApp(App):
    """Puts an OnboardStore on the bus: on each MID_LINK_CHECK wake-up it follows the pass
    schedule, reports link up/down events (with the store fill at acquisition), and
    forwards store events through the executive's event app."""

    def __init__(self, store: OnboardStore, *, name: str = "STO", wakeup_mid: int | None = None) -> None:
        super().__init__(name)
        self.store = store
        self.subscriptions = (MID_LINK_CHECK if wakeup_mid is None else wakeup_mid,)
        self.link_up: bool | None = None
        self.acquisitions = 0

    @property
    def link(self) -> PassSchedule:
        return self.store.link

    def init(self) -> None:
        if self.store.on_event is None:
            self.store.on_event = self.executive.reporter(self.name)
        self._check()

    def handle_message(self, message: Message) -> None:
        self._check()

    def _check(self) -> None:
        up = self.link.link_up(self.now())
        if up == self.link_up:
            return
        first = self.link_up is None
        self.link_up = up
        if up:
            self.acquisitions += 1
        if not first or up:
            self.event(EVENT_LINK_STATE, 1, f"link {'acquired' if up else 'lost'}; store holds {len(self.store)} items",
                       up=up, items=len(self.store), used_bytes=self.store.used_bytes)

    def housekeeping(self) -> dict[str, Any]:
        hk = super().housekeeping()
        hk.update(self.store.housekeeping())
        hk["link_up"] = bool(self.link_up)
        return hk
