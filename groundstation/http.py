"""The daemon's one HTTP listener: /metrics, /healthz, and the routes other modules add (the API).

aiohttp runs on the daemon's own event loop.  /metrics and /healthz are
read-only and unauthenticated (they expose nothing that commands); routes that
act are added by the commanding module with their own authentication.

Every refused request, whether aiohttp's parser refused it (an oversized or
malformed request line or header) or a route did, is answered with a 4xx JSON
``{"error": ...}`` and leaves one rate-limited, escaped log line naming the
status, the request and the peer; never a traceback.  Only a bug in a route is
a 500, logged with its traceback at the same bounded rate.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web, web_protocol, web_server

from groundstation.chain import RateLimitedLog
from groundstation.metrics import CONTENT_TYPE, Metrics
from groundstation.safelog import escape

log = logging.getLogger("queqiao.http")

#: Largest request body the API accepts (commands are small).
MAX_BODY = 64 * 1024
#: Longest request line and header field aiohttp reads (its default); a longer one is a 431/400.
MAX_FIELD = 8190
#: Longest error text echoed back or logged (error messages may quote the request).
MAX_ERROR_TEXT = 300


def json_error(status: int, message: str) -> web.Response:
    """The one shape of every refusal: ``{"error": message}`` with a 4xx (or 5xx) status."""
    return web.json_response({"error": escape(message, MAX_ERROR_TEXT)}, status=status)


class RequestLog:
    """One line per refused request, at most ``burst`` per kind and window (the rest are counted)."""

    def __init__(self) -> None:
        self.log = RateLimitedLog(log)

    def refused(self, status: int, method: str, path: str, peer: str | None, message: str) -> None:
        self.log.warning(f"http:{status}", "api refused: %d %s %s from %s: %s", status, escape(method, 20),
                         escape(path, 120), escape(peer or "?", 60), escape(message, MAX_ERROR_TEXT))

    def failed(self, method: str, path: str) -> None:
        """A route raised: a bug, logged with its traceback (call from an ``except`` block)."""
        self.log.exception("http:internal_error", "api failed: %s %s", escape(method, 20), escape(path, 120))


class _JsonErrorRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering requests its parser refuses with JSON and one bounded line."""

    request_log: RequestLog

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # a response is on its way; the connection can only be dropped
            raise ConnectionError("response already sent, cannot send the error")
        reason = getattr(exc, "message", None) or message or HTTPStatus(status).phrase
        first_line = str(reason).split("\n", 1)[0]
        if status >= 500:
            self.request_log.log.exception("http:internal_error", "api failed: %s", escape(first_line, 120))
        else:
            self.request_log.refused(status, "-", "-", request.remote, first_line)
        response = json_error(status, f"bad request: {first_line}" if status < 500 else "internal error")
        response.force_close()
        return response


class _JsonErrorServer(web_server.Server):
    """Builds :class:`_JsonErrorRequestHandler` connections (aiohttp offers no public hook for its error page)."""

    request_log: RequestLog

    def __call__(self) -> web_protocol.RequestHandler:
        handler = _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.request_log = self.request_log
        return handler


class _Runner(web.AppRunner):
    def __init__(self, app: web.Application, request_log: RequestLog, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self._request_log = request_log

    async def _make_server(self) -> web_server.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        server.request_log = self._request_log  # type: ignore[attr-defined]
        app_handler, request_log = server.request_handler, self._request_log

        async def outermost(request):
            # What the application raises outside its middleware (aiohttp's Expect handler: 417) as JSON too.
            try:
                return await app_handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                request_log.refused(exc.status, request.method, request.path, request.remote, exc.text or exc.reason)
                return json_error(exc.status, exc.text or exc.reason)

        server.request_handler = outermost
        return server


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
        self.requests = RequestLog()
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[self._json_errors])
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def __aenter__(self) -> HttpServer:
        self._runner = _Runner(self.app, self.requests, access_log=None, max_line_size=MAX_FIELD,
                               max_field_size=MAX_FIELD)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # ephemeral port (tests, demo): report the real one
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        log.info("http listening on %s", self.url)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _json_errors(self, request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Every 4xx as JSON with one log line; aiohttp's own refusals (404, 405, 413) become JSON too."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = json_error(exc.status, exc.reason)
        except Exception:  # noqa: BLE001 - a bug in a route answers 500 and leaves its trace, at a bounded rate
            self.requests.failed(request.method, request.path)
            return json_error(500, "internal error")
        if response.status >= 400:
            body = getattr(response, "text", None) or ""
            self.requests.refused(response.status, request.method, request.path, request.remote, body)
        return response

    async def _metrics(self, request: web.Request) -> web.Response:
        # Rendering walks every series; keep it off the loop's critical path for large fleets.
        body = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.health()
        status = 200 if report.get("status") == "ok" else 503
        return web.json_response(report, status=status)
