"""Decoded values, events and status published over MQTT (aiomqtt, via links.MqttLink).

Topics (``prefix`` defaults to ``queqiao``):
    <prefix>/<spacecraft>/<subsystem>/<parameter>   {value, raw, unit, onboard_time, ground_time, limit}
    <prefix>/<spacecraft>/events                      limit transitions and onboard events
    <prefix>/<spacecraft>/status                      link and alarm state

Parameter messages are throttled per parameter: with ``on_change`` (default) a
value is published when it differs from the last one published, and never more
often than ``rate_hz``; the latest value held back by the rate limit is sent
when its interval has passed, so the last word is never lost.  A change of
limit state is published at once.  Messages wait in a bounded buffer while the
broker is away and go out when it is back.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from links import open_link
from links.transports import MqttLink
from links.url import parse_link_url

LIMIT_NAMES = ("nominal", "warning", "critical")


@dataclass
class _Throttle:
    last_sent: float = -math.inf
    last_value: object = None
    last_limit: int = -1
    pending: tuple[str, bytes] | None = None


def _jsonable(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MqttPublisher:
    """Throttles and publishes; owns its MQTT link.  Use as ``async with``."""

    def __init__(self, url: str, *, prefix: str = "queqiao", rate_hz: float = 1.0, on_change: bool = True,
                 buffer_size: int = 10_000, client_options: Mapping | None = None, qos: int = 1,
                 link: MqttLink | None = None) -> None:
        if rate_hz <= 0:
            raise ValueError(f"MQTT rate limit must be > 0 Hz, not {rate_hz}")
        self.prefix = prefix
        self.interval = 1.0 / rate_hz
        self.on_change = on_change
        # The broker URL carries no topic path ([mqtt] url); the prefix is its own setting.
        spec = parse_link_url(url if urlsplit(url).path.strip("/") else f"{url.rstrip('/')}/{prefix}")
        self.link = link or cast(MqttLink, open_link(spec, role="out", spacecraft="+", queue_size=buffer_size,
                                                     client_options=dict(client_options or {}), name="mqtt-publisher"))
        if link is None:
            self.link.qos = qos
        self._throttles: dict[str, _Throttle] = {}
        self._flusher: asyncio.Task | None = None
        self.published = 0

    async def __aenter__(self) -> MqttPublisher:
        await self.link.__aenter__()
        self._flusher = asyncio.create_task(self._flush_pending(), name="mqtt throttle flush")
        return self

    async def __aexit__(self, *exc) -> None:
        if self._flusher:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        self.flush_all()
        await self.link.drain(2.0)
        await self.link.__aexit__(*exc)

    @property
    def dropped(self) -> int:
        return self.link.stats.dropped_out

    @property
    def connected(self) -> bool:
        return self.link.stats.up

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        self.link.publish(topic, payload, retain=retain)
        self.published += 1

    def parameter(self, spacecraft: str, subsystem: str, parameter: str, *, value, raw, unit: str,
                  onboard_time: float | None, ground_time: float, limit: int, now: float | None = None) -> bool:
        """Offer the latest sample of a parameter; returns True if it was published now."""
        topic = f"{self.prefix}/{spacecraft}/{subsystem}/{parameter}"
        throttle = self._throttles.setdefault(topic, _Throttle())
        value = _jsonable(value)
        changed = value != throttle.last_value or limit != throttle.last_limit
        if self.on_change and not changed and throttle.pending is None:
            return False
        payload = json.dumps({
            "value": value, "raw": _jsonable(raw), "unit": unit,
            "onboard_time": _jsonable(onboard_time), "ground_time": ground_time,
            "limit": LIMIT_NAMES[limit],
        }, separators=(",", ":")).encode()
        now = time.monotonic() if now is None else now
        limit_changed = limit != throttle.last_limit
        throttle.last_value, throttle.last_limit = value, limit
        if limit_changed or now - throttle.last_sent >= self.interval:
            throttle.last_sent, throttle.pending = now, None
            self._send(topic, payload, retain=True)
            return True
        throttle.pending = (topic, payload)  # the rate limit holds it; the flusher sends the latest
        return False

    def event(self, spacecraft: str, event: Mapping) -> None:
        self._send(f"{self.prefix}/{spacecraft}/events", json.dumps(event, default=_jsonable).encode(), retain=False)

    def status(self, spacecraft: str, status: Mapping) -> None:
        self._send(f"{self.prefix}/{spacecraft}/status", json.dumps(status, default=_jsonable).encode(), retain=True)

    def flush_due(self, now: float | None = None) -> int:
        """Send held-back values whose interval has passed; returns how many."""
        now = time.monotonic() if now is None else now
        sent = 0
        for throttle in self._throttles.values():
            if throttle.pending is not None and now - throttle.last_sent >= self.interval:
                topic, payload = throttle.pending
                throttle.pending, throttle.last_sent = None, now
                self._send(topic, payload, retain=True)
                sent += 1
        return sent

    def flush_all(self) -> None:
        self.flush_due(now=math.inf)

    async def _flush_pending(self) -> None:
        while True:
            await asyncio.sleep(min(0.1, self.interval / 2))
            self.flush_due()
