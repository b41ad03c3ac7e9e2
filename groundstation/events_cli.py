"""`groundstation events`: list (or follow) the events the daemon recorded, from its HTTP API."""
from __future__ import annotations

import sys
import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime

from groundstation.events import SEVERITIES, iter_follow
from groundstation.send import DEFAULT_API, api_request, required_token


def event_line(event: dict) -> str:
    stamp = datetime.fromtimestamp(event["time"], UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    where = f"{event['subsystem']}: " if event.get("subsystem") else ""
    return (f"{stamp} {event['spacecraft']:<16} {event['severity']:<11} {event['event']:<22} "
            f"{where}{event.get('message', '')}").rstrip()


class EventsClient:
    """GET /api/v1/events with the operator's token."""

    def __init__(self, api: str, token: str, *, spacecraft: str | None = None, severity: str | None = None) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.filters = {k: v for k, v in (("spacecraft", spacecraft), ("severity", severity)) if v}

    def fetch(self, since: float | None = None, limit: int = 100) -> list[dict]:
        query = dict(self.filters, limit=str(limit))
        if since is not None:
            query["since"] = repr(since)
        status, body = api_request("GET", f"{self.api}/api/v1/events?{urllib.parse.urlencode(query)}", self.token)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body.get('error', body)}")
        return body["events"]


def run(args, out=sys.stdout, sleep: Callable[[float], None] = time.sleep) -> int:
    token = required_token(args)
    if token is None:
        return 2
    client = EventsClient(args.api, token, spacecraft=args.spacecraft, severity=args.severity)
    try:
        events = iter_follow(client.fetch, sleep=sleep) if args.follow else iter(client.fetch(limit=args.limit))
        for event in events:
            print(event_line(event), file=out, flush=args.follow)
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach the daemon at {args.api}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("events", help="list or follow the events the daemon recorded",
                                   description="Onboard events (PUS 5), limit transitions, link up/down, bursts of "
                                               "rejected frames and command outcomes, oldest first.")
    parser.add_argument("--spacecraft", metavar="S", help="only this spacecraft's events")
    parser.add_argument("--severity", metavar="LEVEL", choices=SEVERITIES,
                        help=f"only events at least this severe ({', '.join(SEVERITIES)})")
    parser.add_argument("--follow", action="store_true", help="keep printing new events until interrupted")
    parser.add_argument("--limit", type=int, default=100, help="the latest N events (default 100)")
    parser.add_argument("--api", default=DEFAULT_API, help="the daemon's HTTP address (default %(default)s)")
    parser.add_argument("--config", help="read the token's variable name from the daemon's configuration file")
    parser.set_defaults(func=run)
