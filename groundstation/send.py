"""`groundstation send`: send a telecommand through a running daemon and follow its verification.

    QUEQIAO_API_TOKEN=... groundstation send zhurong PING --wait
    groundstation send zhurong POWER_INSTRUMENT instrument=ROPER state=ON --wait

The token comes from QUEQIAO_API_TOKEN (or the token file/variable named in
the daemon's configuration with --config), never from the command line, so it
stays out of shell history.  Exit status: 0 completed (or accepted for
uplink without --wait), 1 failed / timed out / rejected (or --timeout ran out
first: the command goes on and the daemon records its outcome), 2 refused or
unreachable.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

TOKEN_ENV = "QUEQIAO_API_TOKEN"
#: Exit status of ``send --wait`` by final state; any other final state (failed, rejected, timed_out) is 1.
#: ``unreported`` (on board, completion not reported) has its own, so a script can tell it from a failure.
EXIT_BY_STATE = {"completed": 0, "unreported": 3}
DEFAULT_API = "http://127.0.0.1:9108"


def parse_arguments(pairs: list[str]) -> dict:
    """``name=value`` pairs; values that read as JSON (numbers, true/false) keep that type."""
    arguments = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"command argument {pair!r} must be NAME=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        arguments[name] = value
    return arguments


def api_request(method: str, url: str, token: str, body: dict | None = None, timeout: float = 10.0) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except json.JSONDecodeError:
            return error.code, {"error": error.reason}


def _token(args) -> str | None:
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    if getattr(args, "config", None):
        from groundstation.auth import read_token
        from groundstation.config import load_config

        commanding = load_config(args.config).commanding
        return read_token(env=commanding.token_env) if commanding.token_env in os.environ else None
    return None


def required_token(args) -> str | None:
    """The API token, or None after saying on stderr why there is none (the caller exits 2)."""
    try:
        token = _token(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if not token:
        print(f"error: no API token: set {TOKEN_ENV} (see README, Commanding)", file=sys.stderr)
        return None
    return token


def _print_stage(stage: dict, out) -> None:
    stamp = time.strftime("%H:%M:%S", time.gmtime(stage["time"])) + f".{int(stage['time'] % 1 * 1000):03d}"
    extra = ""
    if "error_code" in stage:
        extra += f" error code {stage['error_code']}"
    if stage.get("detail"):
        extra += f" ({stage['detail']})"
    print(f"  {stamp}  {stage['stage']}{extra}", file=out, flush=True)


def run(args, out=None) -> int:
    out = out or sys.stdout  # looked up at call time: the caller may have redirected it
    try:
        arguments = parse_arguments(args.arguments)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = required_token(args)
    if token is None:
        return 2
    api = args.api.rstrip("/")
    try:
        status, body = api_request("POST", f"{api}/api/v1/commands", token,
                                {"spacecraft": args.spacecraft, "command": args.command, "arguments": arguments})
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach the daemon at {api}: {exc}", file=sys.stderr)
        return 2
    if status >= 300:
        print(f"refused ({status}): {body.get('error', body)}", file=sys.stderr)
        return 2
    command_id = body["id"]
    print(f"command {command_id}: {args.spacecraft} {args.command} {json.dumps(arguments)}", file=out, flush=True)
    seen = 0
    for stage in body.get("stages", []):
        _print_stage(stage, out)
        seen += 1
    if not args.wait:
        return 0
    # --timeout bounds only this client's wait: the command's outcome is the daemon's to record.
    record = body
    deadline = math.inf if args.timeout is None else time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            status, record = api_request("GET", f"{api}/api/v1/commands/{command_id}", token)
        except (urllib.error.URLError, OSError) as exc:
            print(f"error: lost the daemon: {exc}", file=sys.stderr)
            return 2
        if status != 200:
            print(f"error ({status}): {record.get('error', record)}", file=sys.stderr)
            return 2
        for stage in record["stages"][seen:]:
            _print_stage(stage, out)
        seen = len(record["stages"])
        if record["final"]:
            print(f"command {command_id}: {record['state']}", file=out, flush=True)
            return EXIT_BY_STATE.get(record["state"], 1)
    print(f"command {command_id}: stopped waiting after {args.timeout:g} s; it is still {record['state']} "
          f"and the daemon records its outcome (GET {api}/api/v1/commands/{command_id})", file=out, flush=True)
    return 1


def complete_spacecraft(prefix: str, **_) -> list[str]:
    """Bash completion (argcomplete) of the spacecraft name, from the mission database."""
    from protocols.missions import registry

    return [name for name in registry().names if name.startswith(prefix)]


def complete_command(prefix: str, parsed_args, **_) -> list[str]:
    """Bash completion of the command name for the spacecraft already typed."""
    from protocols.missions import registry

    try:
        commands = registry().spacecraft(parsed_args.spacecraft).commands
    except KeyError:
        return []
    return [c.name for c in commands if c.name.startswith(prefix.upper())]


def complete_argument(prefix: str, parsed_args, **_) -> list[str]:
    """Bash completion of NAME=VALUE: the command's argument names not given yet, then a state's names."""
    from protocols.missions import registry

    try:
        command = registry().spacecraft(parsed_args.spacecraft).command(parsed_args.command)
    except KeyError:
        return []
    name, sep, value = prefix.partition("=")
    if sep:
        arg = command.arguments.get(name)
        if arg is None or not isinstance(arg.valid, frozenset):
            return []
        states = arg.describe_range().split(", ")
        return [f"{name}={state}" for state in states if state.startswith(value.upper())]
    given = {pair.partition("=")[0] for pair in parsed_args.arguments or []}
    return [f"{n}=" for n in command.arguments if n.startswith(prefix) and n not in given]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("send", help="send a telecommand through the running daemon")
    parser.add_argument("spacecraft").completer = complete_spacecraft
    parser.add_argument("command").completer = complete_command
    parser.add_argument("arguments", nargs="*", metavar="NAME=VALUE").completer = (
        complete_argument)
    parser.add_argument("--api", default=DEFAULT_API, help="the daemon's HTTP address (default %(default)s)")
    parser.add_argument("--config", help="read the token's variable name from the daemon's configuration file")
    parser.add_argument("--wait", action="store_true", help="follow the verification stages until a final state")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop waiting after this many seconds (default: until the final state, which the "
                             "daemon's verification windows always reach); the command's outcome is unchanged")
    parser.set_defaults(func=run)
