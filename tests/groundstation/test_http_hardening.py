"""Bad HTTP requests against a real `groundstation run`: each gets a 4xx JSON error and at most a bounded,
rate-limited, escaped log line; never a 500, a traceback or a forged line.  Requests are written on raw
sockets, so headers can carry octets no HTTP client library would send."""
from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from groundstation.api import parse_body
from groundstation.safelog import EscapingFilter, escape
from tests.deploy.deploy_helpers import groundstation_process
from tests.realcomponents import components

REPO = Path(__file__).resolve().parents[2]
TOKEN = b"operator-token-for-tests-0123"
#: RateLimitedLog's burst: lines per kind of refusal and window.
BURST = 5


def exchange(address: tuple[str, int], request: bytes) -> tuple[int, dict, bytes]:
    """Send ``request`` on a fresh connection; (status, JSON body, raw head) of the answer."""
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head, head
    return status, json.loads(body), head


def get(path: bytes, auth: bytes = b"Bearer " + TOKEN, extra: bytes = b"") -> bytes:
    return (b"GET " + path + b" HTTP/1.1\r\nHost: gs\r\nConnection: close\r\nAuthorization: " + auth + b"\r\n"
            + extra + b"\r\n")


def post(body: bytes, ctype: bytes = b"application/json", auth: bytes = b"Bearer " + TOKEN) -> bytes:
    return (b"POST /api/v1/commands HTTP/1.1\r\nHost: gs\r\nConnection: close\r\nAuthorization: " + auth
            + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def command(name: str, arguments: bytes = b"{}") -> bytes:
    return b'{"spacecraft": "zhurong", "command": ' + json.dumps(name).encode() + b', "arguments": ' + arguments + b"}"


FORGED = "2026-01-01 00:00:00,000 CRITICAL queqiao.daemon: forged"

#: (name, request, status, text the error must contain)
BAD_REQUESTS = [
    ("authorization not UTF-8", get(b"/api/v1/spacecraft", auth=b"Bearer \xff\xfe\x80-not-a-token"), 401,
     "unknown token"),
    ("authorization latin-1", post(command("PING"), auth=b"Bearer caf\xe9-token-0000000000"), 401, "unknown token"),
    ("no authorization", get(b"/api/v1/commands", auth=b""), 401, "authentication required"),
    ("header too long", get(b"/api/v1/spacecraft", extra=b"X-Padding: " + b"a" * 20_000 + b"\r\n"), 400,
     "bad request"),
    ("request line not UTF-8", get(b"/api/v1/commands/\xff\xfe"), 400, "bad request"),
    ("nested JSON", post(command("PING", b'{"a": ' * 5000 + b"1" + b"}" * 5000)), 400, "nested too deeply"),
    ("5,000-digit integer", post(command("DRIVE", b'{"distance": ' + b"9" * 5000 + b"}")), 400, "5000 digits"),
    ("NaN", post(command("DRIVE", b'{"distance": NaN}')), 400, "NaN"),
    ("31-digit command id", get(b"/api/v1/commands/" + b"9" * 31), 404, "no command"),
    ("negative command id", get(b"/api/v1/commands/-1"), 404, "no command"),
    ("huge history limit", get(b"/api/v1/commands?limit=" + b"9" * 40), 400, "limit"),
    ("infinite since", get(b"/api/v1/commands?since=inf"), 400, "since"),
    ("wrong content type", post(command("PING"), ctype=b"text/plain"), 415, "application/json"),
    ("body not UTF-8", post(b'{"spacecraft": "\xff"}'), 400, "not UTF-8"),
    ("body too large", post(b"[" * 200_000), 413, "too large"),
    ("not JSON", post(b"{spacecraft"), 400, "must be JSON"),
    ("unknown route", get(b"/api/v2/everything"), 404, "Not Found"),
    ("wrong method", get(b"/api/v1/commands", extra=b"").replace(b"GET", b"DELETE", 1), 405, "Not Allowed"),
    ("newline in command name", post(command("PING\n" + FORGED)), 400, "has no command"),
    # Found by tests/fuzz: aiohttp answers an unknown Expect outside the middleware, in text/plain.
    ("unknown Expect", get(b"/api/v1/commands%00", extra=b"Expect: chunked\r\n"), 417, "Unknown Expect"),
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    port, downlink, uplink = components.free_port(), components.free_port(), components.free_port()
    config = tmp / "groundstation.toml"
    config.write_text(f"""
[station]
http_listen = "127.0.0.1:{port}"
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{downlink}"
[[spacecraft]]
name = "zhurong"
uplink = "udp://127.0.0.1:{uplink}"
[archive]
dir = "{tmp / 'archive'}"
[commanding]
enabled = true
[[commanding.operators]]
name = "li.wei"
role = "operator"
token_env = "QQ_TEST_OPERATOR"
""")
    env = {**os.environ, "QQ_TEST_OPERATOR": TOKEN.decode(), "PYTHONPATH": str(REPO)}
    log_path = tmp / "daemon.log"
    argv = [sys.executable, "-m", "groundstation.cli", "run", "--config", str(config)]
    with groundstation_process(argv, f"127.0.0.1:{port}", log_path, what="groundstation run", cwd=tmp, env=env):
        yield ("127.0.0.1", port), log_path, tmp


def refused_lines(log_path: Path, status: int | None = None) -> list[str]:
    pattern = re.compile(rf"WARNING queqiao\.http: api refused: {status if status else ''}")
    return [line for line in log_path.read_text(errors="replace").splitlines() if pattern.search(line)]


@pytest.mark.parametrize("name,request_bytes,status,text", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_each_bad_request_gets_a_4xx_json_error(daemon, name, request_bytes, status, text):
    address, log_path, _ = daemon
    got, body, _ = exchange(address, request_bytes)
    assert got == status, (name, body)
    assert set(body) == {"error"} and text in body["error"], body
    assert len(body["error"]) <= 400  # errors quoting the request are cut
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log and " 500 " not in log and "ERROR" not in log


def test_a_newline_cannot_forge_a_log_line(daemon):
    address, log_path, _ = daemon
    # The path is percent-decoded before it is logged: %0A becomes a real newline in request.path.
    forged_path = b"/api/v1/commands/1%0A" + FORGED.replace(" ", "%20").encode() + b"%1B[31m"
    status, body, _ = exchange(address, get(forged_path))
    assert status == 404 and body["error"].startswith("no command 1\\x0a")
    components.wait_until(lambda: "\\x1b[31m" in log_path.read_text(), timeout=5, what="the refusal's log line")
    lines = log_path.read_text().splitlines()
    assert not [line for line in lines if line.startswith(FORGED[:10]) and "api refused" not in line]
    assert [line for line in lines if "1\\x0a2026-01-01" in line and "\\x1b[31m" in line]
    assert "\x1b" not in log_path.read_text()


def test_a_flood_of_bad_requests_leaves_a_bounded_log(daemon):
    address, log_path, _ = daemon
    before = len(refused_lines(log_path, 401))
    size_before = log_path.stat().st_size
    for i in range(300):
        status, _, _ = exchange(address, get(b"/api/v1/spacecraft", auth=b"Bearer \xff" + str(i).encode() * 8))
        assert status == 401
    after = refused_lines(log_path, 401)
    assert len(after) - before <= BURST  # rate-limited: 300 refusals, at most one burst of lines
    assert log_path.stat().st_size - size_before < BURST * 400


def test_healthz_shows_no_filesystem_paths(daemon):
    address, _, tmp = daemon
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: gs\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["status"] == "ok" and body["archive"] == {"status": "ok", "frames_appended": 0, "buffered_frames": 0,
                                                             "dropped_frames": 0}
    assert str(tmp) not in json.dumps(body) and "/" not in json.dumps(body["archive"])


def test_a_good_command_still_goes_through(daemon):
    address, log_path, _ = daemon
    status, body, _ = exchange(address, post(command("PING")))
    assert status == 202 and body["command"] == "PING" and body["operator"] == "li.wei"


@pytest.mark.parametrize("value,shown", [
    ("a\nb", "a\\x0ab"), ("tab\there", "tab\\x09here"), ("\x1b[2J", "\\x1b[2J"), ("line\u2028sep", "line\\u2028sep"),
    ("\udcff", "\\udcff"), (b"\xff\n", "b'\\xff\\n'"), ("plain text", "plain text"), ("中文", "中文"),
])
def test_escape(value, shown):
    assert escape(value) == shown


def test_escape_bounds_the_length():
    assert escape("x" * 5000, 100) == "x" * 100 + "... (4900 more characters)"


def test_escaping_filter_makes_one_line_per_record():
    import logging

    record = logging.LogRecord("queqiao.test", logging.WARNING, __file__, 1, "refused %s from %s",
                               ("PING\n" + FORGED, "\x1b]0;title\x07"), None)
    assert EscapingFilter().filter(record)
    line = logging.Formatter("%(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line and line.startswith("refused PING\\x0a2026-01-01")


@pytest.mark.parametrize("raw,error", [
    (b"[" * 3000 + b"]" * 3000, "nested too deeply"), (b'{"n": ' + b"1" * 41 + b"}", "41 digits"),
    (b'{"n": -Infinity}', "-Infinity"), (b"\xc3\x28", "not UTF-8"), (b"{,}", "must be JSON"),
])
def test_parse_body_refusals(raw, error):
    from groundstation.api import BadBody

    with pytest.raises(BadBody, match=re.escape(error)):
        parse_body(raw)


def test_parse_body_accepts_ordinary_json():
    assert parse_body(b'{"spacecraft": "zhurong", "arguments": {"distance": 12.5, "steps": -' + b"9" * 40 + b"}}") == {
        "spacecraft": "zhurong", "arguments": {"distance": 12.5, "steps": -int("9" * 40)}}


def test_the_nesting_limit_is_the_same_on_every_python():
    """32 levels parse, 33 are refused, whatever depth this Python's json could reach; brackets in strings do not count."""
    from groundstation.api import MAX_JSON_DEPTH, BadBody

    deepest: list = []
    for _ in range(MAX_JSON_DEPTH - 1):
        deepest = [deepest]
    assert parse_body(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) == deepest
    with pytest.raises(BadBody, match="nested too deeply"):
        parse_body(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert parse_body(b'{"name": "[[[[\\"{{{{' + b"[" * 100 + b'"}') == {"name": '[[[["{{{{' + "[" * 100}
