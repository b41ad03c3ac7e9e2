"""The events HTTP API (docs/API.md).

    GET /api/v1/events?spacecraft=&severity=&since=&limit=      viewer

``severity`` is the lowest level wanted (informative < low < medium < high),
``since`` Unix seconds (events after it, oldest first; without it the latest
``limit``), ``limit`` 1..1000 (default 100).  Every bad parameter is a 400 JSON
``{"error": ...}`` naming it.
"""
from __future__ import annotations

import asyncio
import math

from aiohttp import web

from groundstation.auth import Authenticator, AuthError
from groundstation.events import SEVERITIES, EventStore

MAX_LIMIT = 1000
PARAMETERS = ("spacecraft", "severity", "since", "limit")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class QueryError(ValueError):
    """A query parameter cannot be used; the message names it."""


def parse_query(query) -> dict:
    """The store's query arguments from the request's parameters (QueryError names the bad one)."""
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise QueryError(f"unknown parameter(s) {unknown}; allowed: {', '.join(PARAMETERS)}")
    severity = query.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise QueryError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    since = None
    if "since" in query:
        try:
            since = float(query["since"])
        except ValueError:
            raise QueryError(f"since must be Unix seconds, not {query['since']!r}") from None
        if not math.isfinite(since):
            raise QueryError("since must be a finite number of Unix seconds")
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise QueryError(f"limit must be an integer, not {query['limit']!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be 1..{MAX_LIMIT}, not {limit}")
    spacecraft = query.get("spacecraft") or None
    return {"spacecraft": spacecraft, "severity": severity, "since": since, "limit": limit}


class EventApi:
    def __init__(self, store: EventStore, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth

    def install(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/events", self.list)

    async def list(self, request: web.Request) -> web.Response:
        try:
            self.auth.identify(request.headers.get("Authorization"), peer=request.remote or "?")
        except AuthError as exc:
            return _error(exc.status, str(exc))
        try:
            arguments = parse_query(request.query)
        except QueryError as exc:
            return _error(400, str(exc))
        events = await asyncio.to_thread(self.store.query, **arguments)  # SQLite off the loop
        return web.json_response({"events": [e.as_json() for e in events]})
