"""The daemon's one HTTP listener: /metrics, /healthz, and the routes other modules add (the API).

aiohttp runs on the daemon's own event loop.  /metrics and /healthz are
read-only and unauthenticated (they expose nothing that commands); routes that
act are added by the commanding module with their own authentication.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from groundstation.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("queqiao.http")

#: Largest request body the API accepts (commands are small).
MAX_BODY = 64 * 1024


def parse_listen(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port), with a clear error."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"listen address {address!r} must be HOST:PORT (e.g. 127.0.0.1:9108 or [::1]:9108)")
    return host.strip("[]"), int(port)


class HttpServer:
    """Serves the daemon's metrics, health and API.  Use as ``async with``."""

    def __init__(self, listen: str, metrics: Metrics, health: Callable[[], dict]) -> None:
        self.host, self.port = parse_listen(listen)
        self.metrics = metrics
        self.health = health
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def __aenter__(self) -> HttpServer:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # ephemeral port (tests, demo): report the real one
            self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp exposes no accessor
        log.info("http listening on %s", self.url)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        # Rendering walks every series; keep it off the loop's critical path for large fleets.
        body = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.health()
        status = 200 if report.get("status") == "ok" else 503
        return web.json_response(report, status=status)
