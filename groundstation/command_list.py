"""`groundstation commands SPACECRAFT`: the commands a spacecraft takes, with argument types, ranges and units.

From the running daemon's API with --api (what that station can send), else from
the mission database this installation carries.
"""
from __future__ import annotations

import os
import sys
import urllib.error

from groundstation import send
from protocols.missions import describe_command, registry


def _from_api(api: str, spacecraft: str) -> list[dict]:
    token = os.environ.get(send.TOKEN_ENV, "").strip()
    if not token:
        raise LookupError(f"no API token: set {send.TOKEN_ENV}")
    status, body = send.api_request("GET", f"{api.rstrip('/')}/api/v1/spacecraft/{spacecraft}/commands", token)
    if status != 200:
        raise LookupError(f"the daemon answered {status}: {body.get('error', body)}")
    return body["commands"]


def _from_database(spacecraft: str) -> list[dict]:
    try:
        sc = registry().spacecraft(spacecraft)
    except KeyError as exc:
        raise LookupError(f"mission database: {exc.args[0]}") from None
    return [describe_command(c) for c in sc.commands]


def argument_text(arg: dict) -> str:
    if arg["type"] == "state":
        return f"{arg['name']}: {' | '.join(arg['states'])}"
    lo, hi = arg["range"]
    unit = f" {arg['unit']}" if arg.get("unit") else ""
    return f"{arg['name']}: {arg['data_type']} {lo:g} .. {hi:g}{unit}"


def run(args, out=None) -> int:
    out = out or sys.stdout  # looked up at call time: the caller may have redirected it
    try:
        commands = _from_api(args.api, args.spacecraft) if args.api else _from_database(args.spacecraft)
    except (LookupError, urllib.error.URLError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for command in commands:
        print(f"{command['name']:<22} {command['description']}", file=out)
        for arg in command["arguments"]:
            print(f"    {argument_text(arg):<48} {arg['description']}", file=out)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("commands", help="list a spacecraft's commands with argument types, ranges, units")
    parser.add_argument("spacecraft")
    parser.add_argument("--api", help="ask the running daemon at this address (default: the mission database)")
    parser.set_defaults(func=run)
