"""`groundstation watch`: a live terminal view of a spacecraft's parameters, with limit colours.

It reads the running daemon's /metrics (read-only, no token needed), so it
shows exactly what Prometheus and Grafana see.
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from prometheus_client.parser import text_string_to_metric_families

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


def render(rows: list[Row], spacecraft: str, now: float):
    from rich.table import Table

    table = Table(title=f"{spacecraft} — {len(rows)} parameters", expand=True)
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("subsystem", "left"), ("parameter", "left"), ("value", "right"), ("unit", "left"), ("limit", "left"),
        ("age", "right"))
    for column, justify in columns:
        table.add_column(column, justify=justify)
    counts: dict[int, int] = defaultdict(int)
    for r in rows:
        counts[r.limit] += 1
        style = LIMIT_STYLE.get(r.limit, "")
        value = "—" if r.value is None else f"{r.value:.6g}"
        age = "—" if r.updated is None else f"{max(0.0, now - r.updated):.0f} s"
        table.add_row(r.subsystem, r.parameter, value, r.unit, LIMIT_TEXT.get(r.limit, "?"), age, style=style)
    table.caption = (f"{counts[0]} nominal · {counts[1]} warning · {counts[2]} critical"
                     f" · {time.strftime('%H:%M:%S', time.gmtime(now))} UTC")
    return table


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
    if args.once:
        console.print(render(parameter_rows(text, spacecraft), spacecraft, time.time()))
        return 0
    with Live(console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                live.update(render(parameter_rows(text, spacecraft), spacecraft, time.time()), refresh=True)
                time.sleep(args.interval)
                try:
                    text = fetch_metrics(args.url)
                except (urllib.error.URLError, OSError) as exc:
                    console.print(f"[red]lost the daemon: {exc}[/red]")
                    return 1
        except KeyboardInterrupt:
            return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("watch", help="live terminal view of a spacecraft's parameters from a running daemon")
    parser.add_argument("--url", default="http://127.0.0.1:9108", help="the daemon's HTTP address (default %(default)s)")
    parser.add_argument("--spacecraft", "-s", help="spacecraft to show (default: the first with values)")
    parser.add_argument("--interval", type=float, default=1.0, help="refresh period in seconds")
    parser.add_argument("--once", action="store_true", help="print one table and exit")
    parser.set_defaults(func=run)
