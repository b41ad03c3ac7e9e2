"""Finding samples in the parameter archive: ``groundstation history`` and ``GET /api/v1/parameters/...``.

Both go through :class:`HistoryQuery`, which checks the spacecraft and parameter names against the
mission database (an unknown name is an error with a suggestion, not an empty answer), parses the
times, and reads the archive with :class:`groundstation.parameter_archive.ParameterReader`.

    groundstation history haiyang2d battery_voltage,bus_current --from 2026-12-02T10:00Z --format csv
    curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:9108/api/v1/parameters/haiyang2d/battery_voltage?limit=10'
"""
from __future__ import annotations

import argparse
import csv
import difflib
import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from groundstation.parameter_archive import SUBDIR, ParameterReader
from protocols.missions import Registry

#: The columns of every answer, in order (CSV header, JSON keys).
COLUMNS = ("onboard_time", "ground_time", "parameter", "subsystem", "raw_value", "eng_value", "state", "unit",
           "limit_state")
LIMIT_NAMES = ("nominal", "warning", "critical")
DEFAULT_CONFIG = Path("/etc/queqiao/groundstation.toml")
DEMO_ARCHIVE_HELP = "$XDG_STATE_HOME/queqiao/demo-archive (~/.local/state/...)"
_DEMO_MARK = ".queqiao-demo"


def demo_archive() -> Path:
    """Where ``groundstation demo`` keeps its archive unless told otherwise (per user, survives the demo)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "queqiao" / "demo-archive"


def fresh_demo_archive() -> Path:
    """The demo's default archive, emptied: each demo run starts from nothing, and ``history`` after it
    shows that run.  Only a directory the demo made itself (it holds the demo's mark) is emptied."""
    path = demo_archive()
    if path.exists() and (path / _DEMO_MARK).exists():
        shutil.rmtree(path)
        path.with_name(path.name + "-commands.sqlite").unlink(missing_ok=True)
        shutil.rmtree(path.with_name(path.name + "-keys"), ignore_errors=True)  # the demo's SDLS keys, made anew
    path.mkdir(parents=True, exist_ok=True)
    (path / _DEMO_MARK).touch()
    return path


class HistoryError(ValueError):
    """A query that cannot be answered as asked (unknown name, malformed time): ``status`` for HTTP."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_time(text: str) -> float:
    """ISO 8601 (UTC when no zone is given) or Unix seconds -> Unix seconds."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise HistoryError(f"time {text!r} is not a finite number")
        return value
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HistoryError(f"time {text[:40]!r}: use ISO 8601 (2026-12-02T10:00:00Z) or Unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@dataclass
class HistoryAnswer:
    spacecraft: str
    parameters: list[str]
    start: float | None
    end: float | None
    table: pa.Table
    skipped_files: int

    def records(self) -> list[dict[str, Any]]:
        """JSON-ready rows: times as ISO 8601 UTC strings, limit state by name."""
        rows = self.table.select(list(COLUMNS)).to_pylist()
        for row in rows:
            for key in ("onboard_time", "ground_time"):
                if row[key] is not None:
                    row[key] = row[key].isoformat().replace("+00:00", "Z")
            row["limit_state"] = LIMIT_NAMES[row["limit_state"]]
        return rows

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "spacecraft": self.spacecraft, "parameters": self.parameters,
            "from": _iso(self.start), "to": _iso(self.end), "count": self.table.num_rows,
            "samples": self.records()}
        if not self.table.num_rows:
            body["message"] = self.empty_message()
        if self.skipped_files:
            body["skipped_files"] = self.skipped_files
        return body

    def empty_message(self) -> str:
        span = f" between {_iso(self.start) or 'the beginning'} and {_iso(self.end) or 'now'}"
        return f"no samples of {', '.join(self.parameters)} of {self.spacecraft}{span} in the parameter archive"


class HistoryQuery:
    def __init__(self, registry: Registry, archive_dir: str | Path) -> None:
        self.registry = registry
        self.reader = ParameterReader(Path(archive_dir) / SUBDIR)

    def parameter_names(self, spacecraft: str) -> dict[str, str]:
        """Every archived parameter of ``spacecraft``: leaf name and ``subsystem.name`` -> leaf name."""
        names: dict[str, str] = {}
        for info in self.registry.parameters(spacecraft):
            if info.kind == "housekeeping":
                leaf = info.path.rsplit(".", 1)[-1]
                names[leaf] = leaf
                names[f"{info.subsystem}.{leaf}"] = leaf
        return names

    def ask(self, spacecraft: str, parameters: Sequence[str], *, start: str | float | None = None,
            end: str | float | None = None, onboard_time: bool = False, limit: int | None = None) -> HistoryAnswer:
        if spacecraft not in self.registry:
            raise HistoryError(_unknown("spacecraft", spacecraft, self.registry.names), status=404)
        known = self.parameter_names(spacecraft)
        wanted = [p.strip() for p in parameters if p.strip()]
        if not wanted:
            raise HistoryError("name at least one parameter")
        for name in wanted:
            if name not in known:
                raise HistoryError(_unknown(f"parameter of {spacecraft}", name, known), status=404)
        t0 = parse_time(start) if isinstance(start, str) else start
        t1 = parse_time(end) if isinstance(end, str) else end
        if t0 is not None and t1 is not None and t1 < t0:
            raise HistoryError(f"the range ends ({_iso(t1)}) before it starts ({_iso(t0)})")
        if limit is not None and limit < 0:
            raise HistoryError("limit must be a positive integer")
        before = self.reader.skipped_files
        table = self.reader.samples(spacecraft, wanted, start=t0, end=t1, onboard_time=onboard_time, limit=limit)
        return HistoryAnswer(spacecraft, wanted, t0, t1, table, self.reader.skipped_files - before)


def _unknown(what: str, name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"no {what} {name[:80]!r}{hint}"


def _iso(unix: float | None) -> str | None:
    if unix is None:
        return None
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------- command line


def _archive_dir(args) -> Path:
    if args.archive:
        return Path(args.archive)
    from groundstation.config import ConfigError, load_config

    path = Path(args.config) if args.config else DEFAULT_CONFIG
    if not path.exists():
        demo = demo_archive()
        if not args.config and (demo / _DEMO_MARK).exists():
            print(f"reading the demo's archive {demo}", file=sys.stderr)
            return demo
        raise HistoryError(f"no --archive given and no configuration at {path}: name the archive directory")
    try:
        return Path(load_config(path).archive.dir)
    except ConfigError as exc:
        raise HistoryError(str(exc)) from None


def _write_table(answer: HistoryAnswer, out) -> None:
    rows = answer.records()
    widths = {c: max([len(c)] + [len(_cell(r[c])) for r in rows]) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip(), file=out)
    for r in rows:
        print("  ".join(_cell(r[c]).ljust(widths[c]) for c in COLUMNS).rstrip(), file=out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def run(args) -> int:
    from protocols.missions import registry

    try:
        query = HistoryQuery(registry(), _archive_dir(args))
        answer = query.ask(args.spacecraft, args.parameters.split(","), start=args.start, end=args.end,
                           onboard_time=args.onboard_time, limit=args.limit)
    except HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if answer.skipped_files:
        print(f"warning: {answer.skipped_files} unreadable archive file(s) skipped", file=sys.stderr)
    if args.plot:
        code = _plot(answer, args.plot)
        if code:
            return code
    if args.format == "parquet":
        if not args.output:
            print("error: --format parquet needs --output FILE", file=sys.stderr)
            return 2
        import pyarrow.parquet as pq

        pq.write_table(answer.table, args.output)
    else:
        out = open(args.output, "w", newline="") if args.output else sys.stdout
        try:
            if args.format == "csv":
                writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
                writer.writeheader()
                writer.writerows(answer.records())
            elif args.format == "json":
                json.dump(answer.as_json(), out, indent=1)
                out.write("\n")
            else:
                _write_table(answer, out)
        except BrokenPipeError:
            # `| head`: the reader has what it wanted.  Point stdout at /dev/null so that the interpreter's
            # final flush does not fail again (the recipe of Python's signal module documentation).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        finally:
            if out is not sys.stdout:
                out.close()
    if not answer.table.num_rows:
        print(answer.empty_message(), file=sys.stderr)
        return 1
    return 0


def _plot(answer: HistoryAnswer, path: str) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("error: --plot needs matplotlib: pip install 'queqiao[plot]'", file=sys.stderr)
        return 2
    figure, axes = plt.subplots(figsize=(10, 4), layout="constrained")
    table = answer.table
    for name in dict.fromkeys(table["parameter"].to_pylist()):
        part = table.filter(pa.compute.equal(table["parameter"].cast(pa.string()), name))
        values = part["eng_value"] if part["eng_value"].null_count < part.num_rows else part["raw_value"]
        unit = part["unit"][0].as_py() if part.num_rows else ""
        axes.plot(part["ground_time"].to_numpy(zero_copy_only=False), values.to_numpy(zero_copy_only=False),
                  label=f"{name} ({unit})", linewidth=1)
    axes.set_title(f"{answer.spacecraft}: {', '.join(answer.parameters)}")
    axes.set_xlabel("ground receipt time (UTC)")
    axes.legend(loc="best")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("history", help="every archived sample of parameters, for a time range",
                                   formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    parser.add_argument("spacecraft")
    parser.add_argument("parameters", metavar="PARAMETER[,...]", help="names, or subsystem.name, comma-separated")
    parser.add_argument("--archive", help="the daemon's archive directory (default: the configured one)")
    parser.add_argument("--config", help=f"configuration to take the archive directory from (default {DEFAULT_CONFIG})")
    parser.add_argument("--from", dest="start", help="start, ISO 8601 UTC or Unix seconds (default: the first sample)")
    parser.add_argument("--to", dest="end", help="end, ISO 8601 UTC or Unix seconds (default: the last sample)")
    parser.add_argument("--onboard-time", action="store_true", help="select and sort by onboard time, not ground time")
    parser.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    parser.add_argument("--output", "-o", help="write to this file (default: standard output)")
    parser.add_argument("--limit", type=int, help="at most this many samples")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the samples into a PNG (needs matplotlib)")
    parser.set_defaults(func=run)


# ---------------------------------------------------------------------- HTTP API


class HistoryApi:
    """``GET /api/v1/parameters/{spacecraft}/{parameter}?from=&to=&limit=&onboard_time=`` (viewer role).

    ``parameter`` may name several, comma-separated; ``limit`` defaults to 10,000 samples (at most
    1,000,000).  The answer is :meth:`HistoryAnswer.as_json`; errors are ``{"error": ...}`` with 4xx.
    """

    DEFAULT_LIMIT = 10_000
    MAX_LIMIT = 1_000_000

    def __init__(self, registry: Registry, archive_dir: str | Path, auth) -> None:
        self.query = HistoryQuery(registry, archive_dir)
        self.auth = auth

    def install(self, app) -> None:
        app.router.add_get("/api/v1/parameters/{spacecraft}/{parameter}", self.get)

    async def get(self, request):
        import asyncio

        from aiohttp import web

        from groundstation.auth import AuthError

        def error(status: int, message: str):
            return web.json_response({"error": message}, status=status)

        try:
            self.auth.identify(request.headers.get("Authorization"), peer=request.remote or "?")
        except AuthError as exc:
            return error(exc.status, str(exc))
        query = request.query
        unknown = set(query) - {"from", "to", "limit", "onboard_time"}
        if unknown:
            return error(400, f"unknown query parameter(s) {sorted(unknown)[:5]}; allowed: from, to, limit, onboard_time")
        text = query.get("limit", str(self.DEFAULT_LIMIT))
        if not text.isdigit() or len(text) > 7 or not 0 < int(text) <= self.MAX_LIMIT:
            return error(400, f"limit must be an integer from 1 to {self.MAX_LIMIT}")
        onboard = query.get("onboard_time", "false").lower()
        if onboard not in ("true", "false", "1", "0"):
            return error(400, "onboard_time must be true or false")
        try:
            answer = await asyncio.to_thread(
                self.query.ask, request.match_info["spacecraft"], request.match_info["parameter"].split(","),
                start=query.get("from"), end=query.get("to"), onboard_time=onboard in ("true", "1"), limit=int(text))
        except HistoryError as exc:
            return error(exc.status, str(exc))
        return web.json_response(answer.as_json())
