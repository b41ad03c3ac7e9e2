"""Fuzz the HTTP API of a real `groundstation run` with raw requests: random methods, paths (with
percent-encoded and raw non-UTF-8 octets), headers and bodies, mutated valid commands.  Every answer
is JSON with a status below 500, and the daemon's log never shows a traceback."""
from __future__ import annotations

import json
import socket

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.support import count, fuzz, mutated
from tests.groundstation.test_http_hardening import TOKEN, daemon  # noqa: F401 - the running daemon fixture

PATHS = [b"/api/v1/commands", b"/api/v1/commands/1", b"/api/v1/spacecraft", b"/healthz", b"/api/v1/commands/",
         b"/api/v2", b"/", b"/api/v1/commands?limit=5&state=completed", b"/api/v1/commands?since=1e9"]
VALID = [json.dumps({"spacecraft": "zhurong", "command": c, "arguments": a}).encode()
         for c, a in [("PING", {}), ("DRIVE", {"distance": 1.5}), ("SET_HK_PERIOD", {"sid": 1, "period": 4})]]

line_safe = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
headers = st.lists(st.tuples(st.sampled_from([b"Authorization", b"Content-Type", b"X-Fuzz", b"Accept",
                                               b"Transfer-Encoding", b"Expect"]),
                             st.one_of(line_safe, st.sampled_from([b"Bearer " + TOKEN, b"application/json",
                                                                   b"chunked", b"100-continue"]))), max_size=4)
paths = st.one_of(st.sampled_from(PATHS), st.tuples(st.sampled_from(PATHS), st.binary(max_size=20)).map(
    lambda p: p[0] + b"".join(b"%%%02X" % c if c < 0x21 or c > 0x7E or c in b"%? #" else bytes([c]) for c in p[1])))
bodies = st.one_of(st.just(b""), st.sampled_from(VALID), mutated(st.sampled_from(VALID)), st.binary(max_size=200))


def send(address, request: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@fuzz
@given(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"G\xffT"]), paths, headers,
       bodies)
@example(b"GET", b"/api/v1/commands%00", [(b"Expect", b"chunked")], b"")  # text/plain 417 from aiohttp
def test_any_request_gets_json_below_500(daemon, method, path, extra, body):  # noqa: F811 - the fixture
    count("http_api")
    address, log_path, _ = daemon
    head = b"".join(name + b": " + value + b"\r\n" for name, value in extra
                    if name not in (b"Transfer-Encoding", b"Expect") or value in (b"chunked", b"100-continue"))
    if b"Transfer-Encoding: chunked" in head:
        framed = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
    else:
        framed, head = body, head + b"Content-Length: %d\r\n" % len(body)
    answer = send(address, method + b" " + path + b" HTTP/1.1\r\nHost: gs\r\nConnection: close\r\n" + head
                  + b"\r\n" + framed)
    status_line, _, rest = answer.partition(b"\r\n")
    status = int(status_line.split(b" ")[1])
    assert status < 500, answer[:300]
    response_head, _, response_body = rest.partition(b"\r\n\r\n")
    if method != b"HEAD" and b"100 Continue" not in status_line:
        assert b"application/json" in response_head.lower(), answer[:300]
        json.loads(response_body)
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log and " ERROR " not in log
