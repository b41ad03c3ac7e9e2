"""Events as data: onboard PUS 5 reports, limit transitions, link up/down, bursts of
rejected frames and command outcomes, stored in SQLite and counted per name.

The chain and the commanders call :meth:`EventRecorder.record` on the event loop;
the recorder only counts the event and puts it on a queue.  One writer thread
inserts queued events in small transactions and applies the retention, so a slow
disk never blocks ingest.  Readers (the HTTP API) open their own connection: the
database is in WAL mode, so reads never wait for the writer.

Event names are bounded: the mission database's declared events plus
:data:`GROUND_EVENTS`, so ``queqiao_events_total{spacecraft,severity,event}``
has a fixed label set, declared at zero when the daemon starts.
"""
from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundstation.history import FINAL_STATES, CommandHistory, CommandRecord
from groundstation.metrics import Metrics
from protocols.missions import Spacecraft

log = logging.getLogger("queqiao.events")

#: PUS 5 severities (subtypes 1..4), lowest first; the ground's own events use the same scale.
SEVERITIES = ("informative", "low", "medium", "high")

#: The ground's own event names and their fixed severities.
GROUND_EVENTS: dict[str, str] = {
    "limit_nominal": "informative",
    "limit_warning": "medium",
    "limit_critical": "high",
    "link_up": "informative",
    "link_down": "medium",
    "frames_rejected_burst": "medium",
    **{f"command_{state}": "informative" if state == "completed" else "medium" for state in FINAL_STATES},
}

METRIC = "queqiao_events_total"

#: A burst of rejected frames ends after this long without a new rejection.
BURST_QUIET_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         REAL NOT NULL,
    spacecraft   TEXT NOT NULL,
    severity     TEXT NOT NULL,
    event        TEXT NOT NULL,
    source       TEXT NOT NULL,
    subsystem    TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    onboard_time REAL,
    data         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
CREATE INDEX IF NOT EXISTS events_by_spacecraft ON events (spacecraft, time);
"""


@dataclass
class Event:
    time: float
    spacecraft: str
    severity: str
    event: str
    source: str  # "onboard" | "ground"
    subsystem: str = ""
    message: str = ""
    onboard_time: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time, "spacecraft": self.spacecraft, "severity": self.severity,
                "event": self.event, "source": self.source, "subsystem": self.subsystem, "message": self.message,
                "onboard_time": self.onboard_time, "data": self.data}


def severity_at_least(level: str) -> tuple[str, ...]:
    """The severities at or above ``level`` (ValueError for an unknown level)."""
    return SEVERITIES[SEVERITIES.index(level):]


def from_chain(spacecraft: str, raw: dict[str, Any]) -> Event:
    """An :class:`Event` from the chain's event dict (``type`` "onboard" or "limit")."""
    if raw.get("type") == "limit":
        name = f"limit_{raw['to']}"
        message = (f"{raw['subsystem']}.{raw['parameter']} {raw['from']} -> {raw['to']} "
                   f"(value {raw['value']:g} {raw.get('unit', '')}".rstrip() + ")")
        data: dict[str, Any] = {k: raw[k] for k in ("parameter", "from", "to", "value", "unit") if k in raw}
        return Event(raw["ground_time"], spacecraft, GROUND_EVENTS[name], name, "ground", raw["subsystem"],
                     message, raw.get("onboard_time"), data)
    data = {str(k): v for k, v in (raw.get("data") or {}).items()}
    message = " ".join(f"{k}={v}" for k, v in data.items())
    return Event(raw["ground_time"], spacecraft, raw["severity"], raw["event"], "onboard", raw.get("subsystem", ""),
                 message, raw.get("onboard_time"), data)


def event_labels(spacecraft: Spacecraft) -> list[tuple[str, str, str]]:
    """``queqiao_events_total`` label sets of a spacecraft: its declared events and the ground's own."""
    declared = [(e.name, e.severity_name) for e in spacecraft.events]
    return [(spacecraft.name, severity, name) for name, severity in [*declared, *GROUND_EVENTS.items()]]


class EventStore:
    """The events database: a writer thread fed by a queue, and read queries on fresh connections."""

    def __init__(self, path: str | Path, *, retention_s: float | None = 30 * 86400.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_s = retention_s
        self.clock = clock
        db = self._connect()
        db.executescript(_SCHEMA)
        db.close()
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self.write_errors = 0
        self._thread = threading.Thread(target=self._write_loop, name="event store", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def put(self, event: Event) -> None:
        """Queue an event for the writer (never blocks)."""
        self._queue.put(event)

    def flush(self) -> None:
        """Wait until every queued event is in the database."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10.0)

    # ------------------------------------------------------------------ writer thread

    def _write_loop(self) -> None:
        db = self._connect()
        next_prune = 0.0
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < 500:  # small transactions: at most 500 rows each
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                events = [e for e in batch if e is not None]
                self._insert(db, events)
                if self.retention_s is not None and self.clock() >= next_prune:
                    self._prune(db)
                    next_prune = self.clock() + 3600.0
                for _ in batch:
                    self._queue.task_done()
                if len(events) < len(batch):
                    return
        finally:
            db.close()

    def _insert(self, db: sqlite3.Connection, events: list[Event]) -> None:
        if not events:
            return
        try:
            with db:
                db.executemany(
                    "INSERT INTO events (time, spacecraft, severity, event, source, subsystem, message, onboard_time,"
                    " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(e.time, e.spacecraft, e.severity, e.event, e.source, e.subsystem, e.message, e.onboard_time,
                      json.dumps(e.data, default=str)) for e in events])
        except sqlite3.Error as exc:
            self.write_errors += len(events)
            log.error("event store %s refused %d event(s): %s", self.path, len(events), exc)

    def _prune(self, db: sqlite3.Connection) -> None:
        assert self.retention_s is not None
        try:
            with db:
                db.execute("DELETE FROM events WHERE time < ?", (self.clock() - self.retention_s,))
        except sqlite3.Error as exc:
            log.error("event store %s: retention failed: %s", self.path, exc)

    # ------------------------------------------------------------------ readers (any thread)

    def query(self, *, spacecraft: str | None = None, severity: str | None = None, since: float | None = None,
              limit: int = 100) -> list[Event]:
        """Events oldest first: the first ``limit`` after ``since``, or the latest ``limit`` without it."""
        where: list[str] = []
        args: list[Any] = []
        if spacecraft is not None:
            where.append("spacecraft = ?")
            args.append(spacecraft)
        if severity is not None:
            levels = severity_at_least(severity)
            where.append(f"severity IN ({', '.join('?' * len(levels))})")
            args.extend(levels)
        if since is not None:
            where.append("time > ?")
            args.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = "ASC" if since is not None else "DESC"
        sql = f"SELECT * FROM events {clause} ORDER BY time {order}, id {order} LIMIT ?"
        db = self._connect()
        try:
            rows = db.execute(sql, (*args, limit)).fetchall()
        finally:
            db.close()
        events = [Event(time=r[1], spacecraft=r[2], severity=r[3], event=r[4], source=r[5], subsystem=r[6],
                        message=r[7], onboard_time=r[8], data=json.loads(r[9]), id=r[0]) for r in rows]
        return events if since is not None else events[::-1]


class EventRecorder:
    """Counts each event in ``queqiao_events_total`` and hands it to the store (and to further sinks)."""

    def __init__(self, metrics: Metrics, store: EventStore | None = None) -> None:
        self.metrics = metrics
        self.store = store
        self.sinks: list[Callable[[Event], None]] = []

    def record(self, event: Event) -> None:
        self.metrics.inc(METRIC, (event.spacecraft, event.severity, event.event))
        if self.store is not None:
            self.store.put(event)
        for sink in self.sinks:
            sink(event)

    def ground(self, spacecraft: str, name: str, message: str, *, subsystem: str = "", now: float | None = None,
               **data: Any) -> None:
        self.record(Event(time.time() if now is None else now, spacecraft, GROUND_EVENTS[name], name, "ground",
                          subsystem, message, None, data))


class EventedHistory(CommandHistory):
    """The command history that also records each command's final outcome as an event."""

    def __init__(self, path: str | Path, recorder: EventRecorder) -> None:
        super().__init__(path)
        self.recorder = recorder

    def advance(self, command_id: int, state: str, *, error_code: int | None = None, detail: str = "",
                now: float | None = None) -> CommandRecord:
        before = self.get(command_id) if state in FINAL_STATES else None
        record = super().advance(command_id, state, error_code=error_code, detail=detail, now=now)
        # A final state reached, or a late report correcting one the ground had concluded.
        if before is not None and (not before.final or record.state != before.state):
            message = f"command {command_id} {before.command} {state}" + (f": {detail}" if detail else "")
            if before.final:
                message += f" (after the ground had recorded it {before.state})"
            self.recorder.ground(before.spacecraft, f"command_{state}", message, now=now, command_id=command_id,
                                 command=before.command, operator=before.operator, error_code=error_code)
        return record


class LinkWatch:
    """Turns link state and rejected-frame counters, polled once a second, into events.

    A burst of rejected frames (RS uncorrectable, FECF, ...) is one event, not one per
    frame: it starts at the first rejection after :data:`BURST_QUIET_S` of quiet.
    """

    def __init__(self, recorder: EventRecorder, links: dict[str, list[str]], *, quiet_s: float = BURST_QUIET_S
                 ) -> None:
        """``links``: link name -> the spacecraft it serves."""
        self.recorder = recorder
        self.links = links
        self.quiet_s = quiet_s
        self._up: dict[str, bool] = {}
        self._rejected: dict[tuple[str, str], float] = {}
        self._last_rejection: dict[tuple[str, str], float] = {}

    def poll(self, up: dict[str, bool], rejected: dict[tuple[str, ...], float], now: float) -> None:
        for link, is_up in up.items():
            was = self._up.get(link)
            self._up[link] = is_up
            if was is None and not is_up or was == is_up:
                continue
            name = "link_up" if is_up else "link_down"
            for spacecraft in self.links.get(link, ()):
                self.recorder.ground(spacecraft, name, f"link {link} {'up' if is_up else 'down'}", now=now, link=link)
        for key, count in rejected.items():
            link, reason = key[0], key[1]
            previous = self._rejected.get((link, reason), 0.0)
            self._rejected[(link, reason)] = count
            if count <= previous:
                continue
            last = self._last_rejection.get((link, reason))
            self._last_rejection[(link, reason)] = now
            if last is not None and now - last < self.quiet_s:
                continue  # the same burst
            for spacecraft in self.links.get(link, ()):
                self.recorder.ground(spacecraft, "frames_rejected_burst",
                                     f"link {link}: frames rejected ({reason})", now=now, link=link, reason=reason,
                                     frames=int(count - previous))


def iter_follow(fetch: Callable[[float | None], list[dict]], *, interval: float = 1.0,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[dict]:
    """Events from ``fetch(since)`` forever: the latest first, then each new one once."""
    seen: set[int] = set()
    latest: float | None = None
    while True:
        # Ask from just before the latest time seen: events stamped the same instant may arrive later.
        for event in fetch(None if latest is None else latest - 1e-3):
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            latest = event["time"] if latest is None else max(latest, event["time"])
            yield event
        sleep(interval)
