"""The HTTP listener serves the metrics store and the health report over real loopback HTTP."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from groundstation.http import HttpServer, parse_listen
from groundstation.metrics import Metrics


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


async def test_metrics_and_health():
    import asyncio

    metrics = Metrics()
    metrics.inc("queqiao_frames_received_total", ("udp",), 3)
    health = {"status": "ok", "links": {"udp": "up"}}
    async with HttpServer("127.0.0.1:0", metrics, lambda: health) as server:
        status, body, ctype = await asyncio.to_thread(_get, server.url + "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        assert 'queqiao_frames_received_total{link="udp"} 3.0' in body.decode()
        status, body, _ = await asyncio.to_thread(_get, server.url + "/healthz")
        assert status == 200 and json.loads(body) == health
        health["status"] = "degraded"
        status, body, _ = await asyncio.to_thread(_get, server.url + "/healthz")
        assert status == 503


@pytest.mark.parametrize("bad", ["9108", "localhost", "host:port", ":9108", "h:70000"])
def test_bad_listen_addresses(bad):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(bad)


def test_ipv6_listen_address():
    assert parse_listen("[::1]:9108") == ("::1", 9108)
