"""`groundstation watch`: a live terminal view of a spacecraft's parameters, with limit colours.

It reads the running daemon's /metrics (read-only, no token needed), so it
shows exactly what Prometheus and Grafana see; state names come from the mission
database and the events pane from the events API (with a viewer token).  Drawn
with rich's Live and Layout: off-nominal parameters first and pinned on every
page, the nominal ones paged below them, the summary line always on top.
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from prometheus_client.parser import text_string_to_metric_families

from groundstation.events_cli import EventsClient, event_line
from groundstation.send import TOKEN_ENV, _token

LIMIT_STYLE = {0: "green", 1: "yellow", 2: "bold red"}
LIMIT_TEXT = {0: "nominal", 1: "WARNING", 2: "CRITICAL"}


@dataclass
class Row:
    subsystem: str
    parameter: str
    value: float | None = None
    unit: str = ""
    limit: int = 0
    updated: float | None = None


def fetch_metrics(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout) as response:
        return response.read().decode()


def parameter_rows(text: str, spacecraft: str) -> list[Row]:
    """Rows of one spacecraft's parameters from the exposition text."""
    rows: dict[tuple[str, str], Row] = {}

    def row(labels) -> Row:
        key = (labels["subsystem"], labels["parameter"])
        return rows.setdefault(key, Row(*key))

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("spacecraft") != spacecraft or "parameter" not in labels:
                continue
            if sample.name == "queqiao_parameter_value":
                r = row(labels)
                r.value, r.unit = sample.value, labels.get("unit", "")
            elif sample.name == "queqiao_parameter_limit_state":
                row(labels).limit = int(sample.value)
            elif sample.name == "queqiao_parameter_last_update_timestamp_seconds":
                row(labels).updated = sample.value
    return sorted(rows.values(), key=lambda r: (r.subsystem, r.parameter))


def spacecraft_names(text: str) -> list[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "queqiao_parameter_value":
                names.add(sample.labels["spacecraft"])
    return sorted(names)


#: Lines the screen keeps for the summary line, the table's header and the events pane's frame.
SUMMARY_LINES = 1
TABLE_CHROME = 2   # header row and its rule (box.SIMPLE_HEAD, no edges)
EVENTS_CHROME = 2  # the events pane's border


def state_names(spacecraft: str) -> dict[tuple[str, str], dict[int, str]]:
    """(subsystem, parameter) -> code -> state name, from the mission database (empty if unknown)."""
    from protocols.missions.registry import registry
    from protocols.parameters import States

    reg = registry()
    if spacecraft not in reg:
        return {}
    return {(info.subsystem, info.name): dict(info.calibration.states)
            for info in reg.parameters(spacecraft) if isinstance(info.calibration, States)}


def ordered(rows: list[Row], subsystem: str | None = None) -> list[Row]:
    """Critical first, then warning, then nominal; by subsystem and name within each; optionally one subsystem."""
    chosen = [r for r in rows if subsystem is None or r.subsystem == subsystem]
    return sorted(chosen, key=lambda r: (-r.limit, r.subsystem, r.parameter))


def page(rows: list[Row], capacity: int, number: int) -> tuple[list[Row], int, int]:
    """Rows for page ``number`` (wrapping), the page shown and the page count.

    Off-nominal rows are pinned at the top of every page (as many as fit): an alarm
    never scrolls away; the nominal rows are paged below them.
    """
    capacity = max(1, capacity)
    alarms = [r for r in rows if r.limit][:capacity]
    nominal = [r for r in rows if not r.limit]
    room = capacity - len(alarms)
    if room <= 0 or not nominal:
        return alarms, 0, 1
    pages = -(-len(nominal) // room)
    number %= pages
    return alarms + nominal[number * room:(number + 1) * room], number, pages


def display_value(r: Row, states: dict[tuple[str, str], dict[int, str]]) -> str:
    if r.value is None:
        return "—"
    names = states.get((r.subsystem, r.parameter))
    if names is not None and float(r.value).is_integer():
        return names.get(int(r.value), f"UNDEFINED_{int(r.value)}")
    return f"{r.value:.6g}"


def summary_line(rows: list[Row], spacecraft: str, now: float, shown: int, number: int, pages: int,
                 subsystem: str | None) -> str:
    counts: dict[int, int] = defaultdict(int)
    for r in rows:
        counts[r.limit] += 1
    where = f" [{subsystem}]" if subsystem else ""
    return (f"{spacecraft}{where}: {len(rows)} parameters · {counts[2]} critical · {counts[1]} warning · "
            f"{counts[0]} nominal · page {number + 1}/{pages} ({shown} shown) · "
            f"{time.strftime('%H:%M:%S', time.gmtime(now))} UTC")


def parameter_table(rows: list[Row], states: dict[tuple[str, str], dict[int, str]], now: float):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, expand=True, pad_edge=False, padding=(0, 1))
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("subsystem", "left"), ("parameter", "left"), ("value", "right"), ("unit", "left"), ("limit", "left"),
        ("age", "right"))
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True, overflow="ellipsis")
    for r in rows:
        age = "—" if r.updated is None else f"{max(0.0, now - r.updated):.0f} s"
        unit = "" if (r.subsystem, r.parameter) in states else r.unit
        table.add_row(r.subsystem, r.parameter, display_value(r, states), unit, LIMIT_TEXT.get(r.limit, "?"), age,
                      style=LIMIT_STYLE.get(r.limit, ""))
    return table


def events_panel(lines: list[str], height: int):
    from rich.panel import Panel
    from rich.text import Text

    body = Text("\n".join(lines[-max(0, height - EVENTS_CHROME):]) or "no events", no_wrap=True, overflow="ellipsis")
    return Panel(body, title="events", title_align="left", height=height)


def screen(rows: list[Row], spacecraft: str, now: float, *, height: int, number: int = 0,
           subsystem: str | None = None, states: dict[tuple[str, str], dict[int, str]] | None = None,
           events: list[str] | None = None, events_height: int = 7):
    """The whole view for a terminal ``height`` lines tall: summary line, parameters, events pane."""
    from rich.layout import Layout
    from rich.text import Text

    states = states or {}
    chosen = ordered(rows, subsystem)
    events_height = min(events_height, max(0, height - SUMMARY_LINES - TABLE_CHROME - 3))
    capacity = height - SUMMARY_LINES - TABLE_CHROME - events_height
    visible, number, pages = page(chosen, capacity, number)
    layout = Layout()
    parts = [Layout(Text(summary_line(chosen, spacecraft, now, len(visible), number, pages, subsystem),
                         style="bold", no_wrap=True, overflow="ellipsis"), size=SUMMARY_LINES),
             Layout(parameter_table(visible, states, now))]
    if events_height:
        parts.append(Layout(events_panel(events or [], events_height), size=events_height))
    layout.split_column(*parts)
    return layout


def render(rows: list[Row], spacecraft: str, now: float, *, height: int = 24, **options):
    """One screen as printed by ``--once`` (a fixed-height layout)."""
    return screen(rows, spacecraft, now, height=height, **options)


class EventFeed:
    """The events pane's lines from the daemon's events API (needs a viewer token)."""

    def __init__(self, api: str, spacecraft: str, token: str | None) -> None:
        self.client = None
        self.note = f"events: set {TOKEN_ENV} to a viewer token to see them here"
        if token:
            self.client = EventsClient(api, token, spacecraft=spacecraft)

    def lines(self, count: int = 20) -> list[str]:
        if self.client is None:
            return [self.note]
        try:
            return [event_line(e) for e in self.client.fetch(limit=count)]
        except (urllib.error.URLError, OSError, RuntimeError) as exc:
            return [f"events unavailable: {exc}"]


def run(args) -> int:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    try:
        text = fetch_metrics(args.url)
    except (urllib.error.URLError, OSError) as exc:
        console.print(f"[red]cannot read {args.url}/metrics: {exc}[/red] — is the daemon running?")
        return 1
    known = spacecraft_names(text)
    spacecraft = args.spacecraft or (known[0] if known else None)
    if spacecraft is None:
        console.print("[yellow]the daemon exports no parameter values yet[/yellow]")
        return 1
    if spacecraft not in known:
        console.print(f"[red]no values for spacecraft {spacecraft!r}[/red]; known: {', '.join(known) or 'none'}")
        return 1
    rows = parameter_rows(text, spacecraft)
    if args.subsystem and args.subsystem not in {r.subsystem for r in rows}:
        console.print(f"[red]{spacecraft} has no subsystem {args.subsystem!r}[/red]; "
                      f"known: {', '.join(sorted({r.subsystem for r in rows}))}")
        return 1
    states = state_names(spacecraft)
    feed = EventFeed(args.url, spacecraft, _token(args))

    def view(number: int):
        return screen(parameter_rows(text, spacecraft), spacecraft, time.time(), height=console.size.height - 1,
                      number=number, subsystem=args.subsystem, states=states, events=feed.lines())

    if args.once:
        console.print(view(args.page - 1), height=console.size.height - 1)
        return 0
    started = time.monotonic()
    with Live(console=console, auto_refresh=False, screen=True) as live:
        try:
            while True:
                number = args.page - 1 + int((time.monotonic() - started) // args.page_seconds)
                live.update(view(number), refresh=True)
                time.sleep(args.interval)
                try:
                    text = fetch_metrics(args.url)
                except (urllib.error.URLError, OSError) as exc:
                    live.stop()
                    console.print(f"[red]lost the daemon: {exc}[/red]")
                    return 1
        except KeyboardInterrupt:
            return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("watch", help="live terminal view of a spacecraft's parameters from a running daemon")
    parser.add_argument("--url", default="http://127.0.0.1:9108", help="the daemon's HTTP address (default %(default)s)")
    parser.add_argument("--spacecraft", "-s", help="spacecraft to show (default: the first with values)")
    parser.add_argument("--interval", type=float, default=1.0, help="refresh period in seconds")
    parser.add_argument("--once", action="store_true", help="print one screen and exit")
    parser.add_argument("--subsystem", help="only this subsystem's parameters")
    parser.add_argument("--page", type=int, default=1, help="the page to start on (default 1)")
    parser.add_argument("--page-seconds", type=float, default=5.0,
                        help="turn to the next page of nominal parameters this often (alarms stay on every page)")
    parser.add_argument("--config", help="read the API token's variable name from the daemon's configuration file")
    parser.set_defaults(func=run)
