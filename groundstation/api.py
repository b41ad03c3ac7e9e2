"""The commanding HTTP API (docs/API.md).

    POST /api/v1/commands            {"spacecraft": "zhurong", "command": "PING", "arguments": {}}  operator
    GET  /api/v1/commands/{id}       one command with its verification stages                      viewer
    GET  /api/v1/commands            history: ?spacecraft=&operator=&state=&since=&limit=           viewer
    GET  /api/v1/spacecraft          commandable spacecraft and their command signatures            viewer
    GET  /api/v1/spacecraft/{name}/commands  its commands: arguments, types, ranges, units            viewer

Every route needs ``Authorization: Bearer <token>``; sending needs the operator
role.  Bad requests get a 4xx JSON ``{"error": ...}`` (and one rate-limited log
line, see groundstation.http) and nothing is uplinked: a command is built
(types and ranges checked) before anything is queued.  The body must be
``application/json`` in UTF-8; integers longer than :data:`MAX_INT_DIGITS`,
NaN/Infinity and nesting deeper than the JSON parser's recursion limit are refused.
"""
from __future__ import annotations

import json
import math
import re

from aiohttp import web

from groundstation.auth import Authenticator, AuthError, Operator
from groundstation.commanding import Commander, CommandError
from groundstation.history import STATES, CommandHistory
from groundstation.http import json_error as _error
from protocols.missions import describe_command

#: Longest integer literal accepted in a request (a 64-bit value has at most 20 digits).
MAX_INT_DIGITS = 40
#: Deepest JSON nesting a body may have (a command is 2 levels deep). Checked before parsing: how
#: deep json.loads can go before a RecursionError differs between Python versions (3.13 goes deeper).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")
#: Largest command id (SQLite INTEGER) and history page.
MAX_COMMAND_ID = 2**63 - 1
MAX_LIMIT = 10_000
BODY_SHAPE = 'the body must be JSON: {"spacecraft": ..., "command": ..., "arguments": {...}}'


class BadBody(ValueError):
    """The request body is not acceptable JSON (the message says why)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadBody(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_constant(name: str) -> float:
    raise BadBody(f"{name} is not a number JSON allows")


def _nesting_depth(text: str) -> int:
    """How deep the arrays and objects of ``text`` nest, brackets inside strings not counted."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_body(raw: bytes) -> object:
    """The JSON document in ``raw``, or BadBody saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"the body is not UTF-8 (byte {exc.start})") from None
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise BadBody(f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    try:
        return json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except BadBody:
        raise
    except ValueError as exc:  # JSONDecodeError, and int() limits on exotic forms
        raise BadBody(f"{BODY_SHAPE} ({str(exc)[:80]})") from None


def _command_id(text: str) -> int | None:
    """A command id from the path, or None if it cannot name one (not digits, or beyond SQLite's range)."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_COMMAND_ID else None


class CommandApi:
    def __init__(self, commanders: dict[str, Commander], history: CommandHistory, auth: Authenticator) -> None:
        self.commanders = commanders
        self.history = history
        self.auth = auth

    def install(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/commands", self.send)
        app.router.add_get("/api/v1/commands", self.list)
        app.router.add_get("/api/v1/commands/{id}", self.status)
        app.router.add_get("/api/v1/spacecraft", self.spacecraft)
        app.router.add_get("/api/v1/spacecraft/{name}/commands", self.commands)

    def _who(self, request: web.Request, *, command: bool) -> Operator:
        header = request.headers.get("Authorization")
        peer = request.remote or "?"
        return self.auth.require_commander(header, peer=peer) if command else self.auth.identify(header, peer=peer)

    async def send(self, request: web.Request) -> web.Response:
        try:
            operator = self._who(request, command=True)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        if request.content_type != "application/json":
            return _error(415, f"the body must be application/json, not {request.content_type or 'untyped'}")
        try:
            body = parse_body(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body too large (at most {request.client_max_size} octets)")
        except BadBody as exc:
            return _error(400, str(exc))
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        unknown = set(body) - {"spacecraft", "command", "arguments"}
        if unknown:
            return _error(400, f"unknown field(s) {sorted(unknown)}; allowed: spacecraft, command, arguments")
        spacecraft, name = body.get("spacecraft"), body.get("command")
        arguments = body.get("arguments", {})
        if not isinstance(spacecraft, str) or not isinstance(name, str):
            return _error(400, "spacecraft and command must be strings")
        commander = self.commanders.get(spacecraft)
        if commander is None:
            known = ", ".join(sorted(self.commanders)) or "none"
            return _error(404, f"spacecraft {spacecraft!r} is not commanded by this station; commanded: {known}")
        try:
            command_id = commander.submit(name, arguments, operator.name)
        except CommandError as exc:
            return _error(exc.status, f"{exc} (operator {operator.name})")
        record = self.history.get(command_id)
        if record is None:  # the history refused the record after accepting it (disk full in between)
            return _error(503, f"command {command_id} was sent but its record cannot be read back")
        return web.json_response(record.as_json(), status=202)

    async def status(self, request: web.Request) -> web.Response:
        try:
            self._who(request, command=False)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        command_id = _command_id(request.match_info["id"])
        record = None if command_id is None else self.history.get(command_id)
        if record is None:
            return _error(404, f"no command {request.match_info['id']}")
        return web.json_response(record.as_json())

    async def list(self, request: web.Request) -> web.Response:
        try:
            self._who(request, command=False)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        query = request.query
        state = query.get("state")
        if state is not None and state not in STATES:
            return _error(400, f"state must be one of {', '.join(STATES)}")
        try:
            since = float(query["since"]) if "since" in query else None
            limit = int(query.get("limit", "100")) if len(query.get("limit", "")) <= 6 else -1
        except ValueError:
            since, limit = math.nan, -1
        if (since is not None and not math.isfinite(since)) or not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"since is Unix seconds and limit an integer from 1 to {MAX_LIMIT}")
        records = self.history.query(spacecraft=query.get("spacecraft"), operator=query.get("operator"),
                                     state=state, since=since, limit=limit)
        return web.json_response({"commands": [r.as_json() for r in records]})

    async def spacecraft(self, request: web.Request) -> web.Response:
        try:
            self._who(request, command=False)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        return web.json_response({"spacecraft": [
            {"name": name, "cop1": c.cop1, "uplink": str(c.link.url), "link_up": c.link.stats.up,
             "commands": [cmd.signature() for cmd in c.spacecraft.commands]}
            for name, c in sorted(self.commanders.items())
        ]})

    async def commands(self, request: web.Request) -> web.Response:
        try:
            self._who(request, command=False)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        name = request.match_info["name"]
        commander = self.commanders.get(name)
        if commander is None:
            known = ", ".join(sorted(self.commanders)) or "none"
            return _error(404, f"spacecraft {name!r} is not commanded by this station; commanded: {known}")
        return web.json_response({"spacecraft": name,
                                  "commands": [describe_command(c) for c in commander.spacecraft.commands]})
