"""The commanding HTTP API (docs/API.md).

    POST /api/v1/commands            {"spacecraft": "zhurong", "command": "PING", "arguments": {}}  operator
    GET  /api/v1/commands/{id}       one command with its verification stages                      viewer
    GET  /api/v1/commands            history: ?spacecraft=&operator=&state=&since=&limit=           viewer
    GET  /api/v1/spacecraft          commandable spacecraft and their command signatures            viewer
    GET  /api/v1/spacecraft/{name}/commands  its commands: arguments, types, ranges, units            viewer

Every route needs ``Authorization: Bearer <token>``; sending needs the operator
role.  Bad requests get a 4xx JSON ``{"error": ...}`` and nothing is uplinked:
a command is built (types and ranges checked) before anything is queued.
"""
from __future__ import annotations

import json
import logging

from aiohttp import web

from groundstation.auth import Authenticator, AuthError, Operator
from groundstation.commanding import Commander, CommandError
from groundstation.history import STATES, CommandHistory
from protocols.missions import describe_command

log = logging.getLogger("queqiao.api")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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
        try:
            body = await request.json()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "request body too large")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the body must be JSON: {\"spacecraft\": ..., \"command\": ..., \"arguments\": {...}}")
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
            log.warning("api: %s refused for %s: %s", name, operator.name, exc)
            return _error(exc.status, str(exc))
        record = self.history.get(command_id)
        if record is None:  # the history refused the record after accepting it (disk full in between)
            return _error(503, f"command {command_id} was sent but its record cannot be read back")
        return web.json_response(record.as_json(), status=202)

    async def status(self, request: web.Request) -> web.Response:
        try:
            self._who(request, command=False)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        try:
            record = self.history.get(int(request.match_info["id"]))
        except ValueError:
            record = None
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
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _error(400, "since is Unix seconds and limit an integer")
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
