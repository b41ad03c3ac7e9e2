"""Merge side: the sites' streams in through durable JetStream consumers, one merged stream out.

Each spacecraft's stream is read by a durable pull consumer (``[merge] durable``) with
acknowledge-all: a fetched batch is acknowledged once the merge's wait has passed for
it, when every frame it held has been released to the daemon (archived, decoded), so
a merge that restarts resumes where its output stopped.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from groundstation.chain import RateLimitedLog
from groundstation.config import MergeConfig, NetworkConfig
from groundstation.metrics import Metrics
from groundstation.network.broker import connect, ensure_streams, raise_if_cancelled
from groundstation.network.merge import FrameMerger, Released
from groundstation.network.message import MessageError, decode, stream_name, subject

log = logging.getLogger("queqiao.merge")

RELEASE_PERIOD_S = 0.005


class MergeConsumer:
    def __init__(self, network: NetworkConfig, merge: MergeConfig, merger: FrameMerger, metrics: Metrics,
                 deliver: Callable[[list[Released]], None]) -> None:
        self.network = network
        self.merge = merge
        self.merger = merger
        self.metrics = metrics
        self.deliver = deliver
        self.log = RateLimitedLog(log)
        self.connected = False
        self._unacked: deque[tuple[float, object]] = deque()  # (fetch time, last message of the fetch)

    def _on_state(self, up: bool) -> None:
        self.connected = up
        self.metrics.set("queqiao_network_connected", (), int(up))

    async def run(self, spacecraft: list[str]) -> None:
        nc = await connect(self.network, f"queqiao-merge-{self.merge.durable}", self._on_state)
        try:
            js = nc.jetstream()
            await ensure_streams(js, self.network, spacecraft)
            async with asyncio.TaskGroup() as group:
                for name in spacecraft:
                    group.create_task(self._consume(js, name), name=f"merge consume {name}")
                group.create_task(self._release_periodically(), name="merge release")
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _consume(self, js, spacecraft: str) -> None:
        prefix = self.network.subject_prefix
        config = ConsumerConfig(durable_name=self.merge.durable, ack_policy=AckPolicy.ALL,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=max(30.0, 4 * self.merge.wait_s),
                                max_ack_pending=-1)
        while True:
            try:
                sub = await js.pull_subscribe(subject(prefix, spacecraft, "*"), durable=self.merge.durable,
                                              stream=stream_name(prefix, spacecraft), config=config)
                break
            except (TimeoutError, nats.errors.Error) as exc:
                raise_if_cancelled()
                self.log.warning("subscribe", "merge: cannot subscribe to %s (%s); retrying", spacecraft, exc)
                await asyncio.sleep(1.0)
        while True:
            try:
                messages = await sub.fetch(self.merge.fetch_batch, timeout=0.2)
            except nats.errors.TimeoutError:
                raise_if_cancelled()
                self.merger.backlog = False
                continue
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                raise_if_cancelled()
                self.metrics.inc("queqiao_network_consume_failures_total", ())
                self.log.warning("fetch", "merge: fetch from %s failed (%s: %s); retrying", spacecraft,
                                 type(exc).__name__, exc)
                await asyncio.sleep(0.5)
                continue
            self.merger.backlog = len(messages) >= self.merge.fetch_batch
            now, wall = time.monotonic(), time.time()
            for msg in messages:
                try:
                    message = decode(msg.data)
                except MessageError as exc:
                    site = (msg.headers or {}).get("Nats-Msg-Id", "?").split(".", 1)[0]
                    self.merger.reject(site if site in self.merge.stations else "unknown", spacecraft, exc.reason)
                    self.log.warning(f"garbage:{exc.reason}", "merge: a message on %s refused: %s", msg.subject, exc)
                    continue
                if self.merge.stations and message.station not in self.merge.stations:
                    self.merger.reject("unknown", spacecraft, "names")
                    self.log.warning("station", "merge: a message from undeclared station %r refused",
                                     message.station[:40])
                    continue
                reason = self.merger.offer(message, now=now, wall=wall)
                if reason is not None:
                    self.log.warning(f"refused:{reason}", "merge: a frame from %s refused (%s)",
                                     message.station, reason)
            if messages:
                self._unacked.append((now, messages[-1]))

    async def _release_periodically(self) -> None:
        while True:
            await asyncio.sleep(RELEASE_PERIOD_S)
            released = self.merger.release()
            if released:
                self.deliver(released)
            horizon = time.monotonic() - self.merge.wait_s - 2 * RELEASE_PERIOD_S
            while self._unacked and self._unacked[0][0] < horizon:
                _, msg = self._unacked.popleft()
                with contextlib.suppress(nats.errors.Error):
                    await msg.ack()  # type: ignore[attr-defined]
