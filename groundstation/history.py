"""The command history: every telecommand, who sent it, and each verification stage.

SQLite (stdlib) in WAL mode: durable across restarts and crashes, queryable
by spacecraft, operator, state and time, and small enough for a board.  Writes
are a few per command, so they run synchronously on the loop.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("queqiao.history")

#: At most one log line this often about updates the database refused.
LOG_INTERVAL_S = 60.0


class HistoryWriteError(RuntimeError):
    """The history database refused a new command (e.g. its disk is full)."""


#: Final states; anything else is still in flight.  ``unreported``: the spacecraft has the command
#: (its FARM accepted the frame, or a PUS 1 report said so) but its completion was not reported
#: within the window; ``timed_out``: nothing says the spacecraft ever had it.
FINAL_STATES = ("completed", "failed", "timed_out", "unreported", "rejected")
#: States a report from the spacecraft sets: these correct a command the ground had given up on.
REPORTED_STATES = ("accepted", "started", "progress", "completed", "failed", "rejected")
#: The ground's own conclusions when a window closed: a later report (or, for ``timed_out``, the
#: FARM's acknowledgement) still corrects them.
GAVE_UP_STATES = ("timed_out", "unreported")
STATES = ("queued", "uplinked", "accepted", "started", "progress") + FINAL_STATES


def corrects(current: str, new: str) -> bool:
    """Whether ``new`` arriving for a command the ground gave up on (``current``) corrects it."""
    return current in GAVE_UP_STATES and (new in REPORTED_STATES or (current, new) == ("timed_out", "unreported"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    spacecraft    TEXT NOT NULL,
    command       TEXT NOT NULL,
    arguments     TEXT NOT NULL,
    operator      TEXT NOT NULL,
    apid          INTEGER,
    sequence_count INTEGER,
    state         TEXT NOT NULL,
    error_code    INTEGER,
    detail        TEXT NOT NULL DEFAULT '',
    submitted_at  REAL NOT NULL,
    updated_at    REAL NOT NULL,
    stages        TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS commands_by_spacecraft ON commands (spacecraft, submitted_at);
"""


@dataclass
class CommandRecord:
    id: int
    spacecraft: str
    command: str
    arguments: dict
    operator: str
    state: str
    submitted_at: float
    updated_at: float
    apid: int | None = None
    sequence_count: int | None = None
    error_code: int | None = None
    detail: str = ""
    stages: list[dict] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def as_json(self) -> dict:
        return {
            "id": self.id, "spacecraft": self.spacecraft, "command": self.command, "arguments": self.arguments,
            "operator": self.operator, "state": self.state, "final": self.final, "error_code": self.error_code,
            "detail": self.detail, "submitted_at": self.submitted_at, "updated_at": self.updated_at,
            "apid": self.apid, "sequence_count": self.sequence_count, "stages": self.stages,
            "timed_out_at": self.timed_out_at,
        }

    @property
    def timed_out_at(self) -> float | None:
        """When the ground last gave up waiting (kept when a late report corrected the state)."""
        times = [stage["time"] for stage in self.stages if stage["stage"] in GAVE_UP_STATES]
        return times[-1] if times else None


class CommandHistory:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a command's record must survive a crash
        self._db.executescript(_SCHEMA)
        self._next_log = 0.0
        #: Stage updates the database refused (disk full): logged at a bounded rate, not raised.
        self.refused_updates = 0

    def _update(self, sql: str, args: tuple) -> None:
        # A stage that cannot be recorded must not stop the caller (a report being decoded,
        # a COP-1 timer): the command itself goes on; the refusal is counted and logged.
        try:
            self._db.execute(sql, args)
        except sqlite3.OperationalError as exc:
            self.refused_updates += 1
            now = time.monotonic()
            if now >= self._next_log:
                self._next_log = now + LOG_INTERVAL_S
                log.error("command history: an update was not recorded (%s); %d refused so far",
                          exc, self.refused_updates)

    def close(self) -> None:
        self._db.close()

    def add(self, spacecraft: str, command: str, arguments: dict, operator: str, *, now: float | None = None) -> int:
        now = time.time() if now is None else now
        try:
            cursor = self._db.execute(
                "INSERT INTO commands (spacecraft, command, arguments, operator, state, submitted_at, updated_at,"
                " stages) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (spacecraft, command, json.dumps(arguments, sort_keys=True), operator, now, now,
                 json.dumps([{"stage": "queued", "time": now}])),
            )
        except sqlite3.OperationalError as exc:
            raise HistoryWriteError(f"the command history cannot be written ({exc})") from exc
        return int(cursor.lastrowid or 0)

    def set_packet(self, command_id: int, apid: int, sequence_count: int) -> None:
        self._update("UPDATE commands SET apid = ?, sequence_count = ? WHERE id = ?",
                     (apid, sequence_count, command_id))

    def advance(self, command_id: int, state: str, *, error_code: int | None = None, detail: str = "",
                now: float | None = None) -> CommandRecord:
        """Record a stage.  A command already in a final state is left as it is, except that a
        report arriving after the ground gave up on the command (:func:`corrects`) corrects it:
        both stay in ``stages`` (the late one marked ``"late": true``)."""
        if state not in STATES:
            raise ValueError(f"unknown command state {state!r}")
        now = time.time() if now is None else now
        record = self.get(command_id)
        if record is None:
            raise KeyError(command_id)
        late = corrects(record.state, state)
        if record.final and not late:
            return record
        stage: dict = {"stage": state, "time": now}
        if late:
            stage["late"] = True
        if error_code is not None:
            stage["error_code"] = error_code
        if detail:
            stage["detail"] = detail
        record.stages.append(stage)
        self._update(
            "UPDATE commands SET state = ?, error_code = COALESCE(?, error_code), detail = ?, updated_at = ?,"
            " stages = ? WHERE id = ?",
            (state, error_code, detail or record.detail, now, json.dumps(record.stages), command_id),
        )
        return self.get(command_id) or record

    def get(self, command_id: int) -> CommandRecord | None:
        row = self._db.execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        return self._record(row) if row else None

    def query(self, *, spacecraft: str | None = None, operator: str | None = None, state: str | None = None,
              since: float | None = None, limit: int = 100) -> list[CommandRecord]:
        clauses: list[str] = []
        values: list[str | float] = []
        for column, value in (("spacecraft", spacecraft), ("operator", operator), ("state", state)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if since is not None:
            clauses.append("submitted_at >= ?")
            values.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(f"SELECT * FROM commands {where} ORDER BY id DESC LIMIT ?",
                                (*values, max(1, min(limit, 10_000)))).fetchall()
        return [self._record(row) for row in rows]

    def in_flight(self) -> list[CommandRecord]:
        marks = ",".join("?" * len(FINAL_STATES))
        rows = self._db.execute(f"SELECT * FROM commands WHERE state NOT IN ({marks}) ORDER BY id",
                                FINAL_STATES).fetchall()
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row) -> CommandRecord:
        (id_, spacecraft, command, arguments, operator, apid, seq, state, code, detail, submitted, updated,
         stages) = row
        return CommandRecord(id_, spacecraft, command, json.loads(arguments), operator, state, submitted, updated,
                             apid, seq, code, detail, json.loads(stages))
