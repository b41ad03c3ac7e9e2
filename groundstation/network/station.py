"""Station side: every received frame, good or bad, to the network after the archive has it.

The daemon calls :meth:`StationForwarder.offer` right after its archive append.  Live
frames wait in a bounded queue; while the broker is unreachable (or the queue is full)
nothing is held in memory: the forwarder remembers the receipt time of the first frame
not acknowledged and, once the broker is back, republishes from its own archive from
there.  Message ids depend only on what the archive keeps, so JetStream's
de-duplication drops whatever had been stored before the outage.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nats

from cython_ext import crc as _crc
from groundstation.archive import ArchiveReader, FrameFlags
from groundstation.chain import RateLimitedLog
from groundstation.config import NetworkConfig
from groundstation.metrics import Metrics
from groundstation.network.broker import connect, ensure_streams, raise_if_cancelled
from groundstation.network.message import Fecf, FrameMessage, MessageError, Quality, encode, frame_header, message_ids, subject

#: Why a received frame is not forwarded (``queqiao_network_unsent_frames_total{reason}``).
UNSENT_REASONS = ("unknown_spacecraft",)

log = logging.getLogger("queqiao.network.station")

PUBLISH_WINDOW = 2000  # acknowledgements outstanding at once
CATCH_UP_RETRY_S = 0.5


@dataclass(frozen=True, slots=True)
class Route:
    spacecraft: str
    has_fecf: bool


@dataclass(frozen=True, slots=True)
class Outgoing:
    subject: str
    msg_id: str
    payload: bytes


class StationForwarder:
    def __init__(self, network: NetworkConfig, station: str, routes: dict[tuple[int, int], Route],
                 archive_dir: Path, metrics: Metrics, links: Sequence[str]) -> None:
        self.network = network
        self.station = station
        self.routes = routes
        self.archive_dir = archive_dir
        self.metrics = metrics
        self.links = list(links)
        self.queue: asyncio.Queue[tuple[int, list[Outgoing]]] = asyncio.Queue()
        self.queued_frames = 0
        self.behind_ns: int | None = None  # receipt time of the first frame not acknowledged
        self.connected = False
        self.log = RateLimitedLog(log)

    # ------------------------------------------------------------------ the daemon's side

    def offer(self, frames: Iterable[bytes], link: str, receipt_ns: int, flags: int | Sequence[int] = 0) -> None:
        """A batch the archive has just taken (same receipt time and flags as archived)."""
        outgoing = self.messages(list(frames), link, receipt_ns, flags)
        if not outgoing:
            return
        if self.behind_ns is not None or not self.connected or self.queued_frames + len(outgoing) > \
                self.network.queue_frames:
            self._fall_behind(receipt_ns)
            return
        self.queued_frames += len(outgoing)
        self.queue.put_nowait((receipt_ns, outgoing))

    def messages(self, frames: list[bytes], link: str, receipt_ns: int, flags: int | Sequence[int]) -> list[Outgoing]:
        """The messages of one archived batch; a frame with no routable header is counted, not sent."""
        flag_list = [flags] * len(frames) if isinstance(flags, int) else list(flags)
        by_spacecraft: dict[str, list[tuple[int, bytes, int]]] = {}
        for i, (frame, flag) in enumerate(zip(frames, flag_list, strict=True)):
            try:
                header = frame_header(frame)
            except MessageError as exc:
                self._unsent(exc.reason, link)
                continue
            route = self.routes.get((header.version, header.scid))
            if route is None:
                self._unsent("unknown_spacecraft", link)
                continue
            by_spacecraft.setdefault(route.spacecraft, []).append((i, frame, flag))
        out: list[Outgoing] = []
        for spacecraft, items in by_spacecraft.items():
            route = next(r for r in self.routes.values() if r.spacecraft == spacecraft)
            headers = [frame_header(frame) for _, frame, _ in items]
            ids = message_ids(self.station, spacecraft, receipt_ns, headers)
            for (_, frame, flag), header, msg_id in zip(items, headers, ids, strict=True):
                quality = Quality(fecf=_fecf(frame) if route.has_fecf else Fecf.ABSENT,
                                  sync_bit_errors=1 if flag & FrameFlags.SYNC_ERROR else 0)
                payload = encode(FrameMessage(self.station, link, receipt_ns, quality, frame))
                out.append(Outgoing(subject(self.network.subject_prefix, spacecraft, header.vcid), msg_id, payload))
        return out

    def _unsent(self, reason: str, link: str) -> None:
        self.metrics.inc("queqiao_network_unsent_frames_total", (reason,))
        self.log.warning(f"unsent:{reason}", "link %s: a frame not forwarded (%s)", link, reason)

    def _fall_behind(self, receipt_ns: int) -> None:
        if self.behind_ns is None or receipt_ns < self.behind_ns:
            if self.behind_ns is None:
                self.log.warning("behind", "network: behind from receipt time %d ns; the archive will catch up",
                                 receipt_ns)
            self.behind_ns = receipt_ns

    def _on_state(self, up: bool) -> None:
        self.connected = up
        self.metrics.set("queqiao_network_connected", (), int(up))

    # ------------------------------------------------------------------ the network's side

    async def run(self) -> None:
        nc = await connect(self.network, f"queqiao-station-{self.station}", self._on_state)
        try:
            js = nc.jetstream()
            spacecraft = sorted({r.spacecraft for r in self.routes.values()})
            await ensure_streams(js, self.network, spacecraft)
            while True:
                if self.behind_ns is not None and self.connected:
                    if not await self._catch_up(js):
                        await asyncio.sleep(CATCH_UP_RETRY_S)  # the cluster is still electing, or down
                    continue
                try:
                    receipt_ns, outgoing = await asyncio.wait_for(self.queue.get(), timeout=0.5)
                except TimeoutError:
                    raise_if_cancelled()
                    continue
                batch = [(receipt_ns, outgoing)]
                while not self.queue.empty() and sum(len(o) for _, o in batch) < PUBLISH_WINDOW:
                    batch.append(self.queue.get_nowait())
                self.queued_frames -= sum(len(o) for _, o in batch)
                if self.behind_ns is not None:
                    self._fall_behind(batch[0][0])
                    continue
                if not await self._publish(js, [m for _, o in batch for m in o]):
                    self._fall_behind(batch[0][0])
                    self._drain()
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    def _drain(self) -> None:
        while not self.queue.empty():
            receipt_ns, outgoing = self.queue.get_nowait()
            self.queued_frames -= len(outgoing)
            self._fall_behind(receipt_ns)

    async def _publish(self, js, messages: list[Outgoing]) -> bool:
        """All acknowledged (stored or known duplicates)?  False on any failure: the archive resends."""
        try:
            futures = [await js.publish_async(m.subject, m.payload, headers={"Nats-Msg-Id": m.msg_id})
                       for m in messages]
            acks = await asyncio.wait_for(asyncio.gather(*futures), timeout=self.network.publish_timeout_s)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise_if_cancelled()
            self.metrics.inc("queqiao_network_publish_failures_total", ())
            self.log.warning("publish", "network: publish failed (%s: %s); catching up from the archive later",
                             type(exc).__name__, exc)
            return False
        duplicates = sum(1 for a in acks if a.duplicate)
        self.metrics.inc("queqiao_network_frames_published_total", (), len(acks) - duplicates)
        if duplicates:
            self.metrics.inc("queqiao_network_duplicates_total", (), duplicates)
        return True

    async def _catch_up(self, js) -> bool:
        """Republish the archive from the first unacknowledged receipt time to now."""
        self._drain()  # queued frames are in the archive too
        start: int = self.behind_ns or 0
        self.behind_ns = None  # a failure from here on sets it again
        log.info("network: catching up from the archive from receipt time %d ns", start)
        reader = ArchiveReader(self.archive_dir, verify=True)
        sent = 0
        pending: list[Outgoing] = []
        for records in await asyncio.to_thread(lambda: list(reader.batches(start_ns=start, links=self.links))):
            for (link, time_ns), grouped in itertools.groupby(records, key=lambda r: (r.link, r.time_ns)):
                group = list(grouped)
                pending += self.messages([r.frame for r in group], link, time_ns, [r.flags for r in group])
                if len(pending) >= PUBLISH_WINDOW:
                    if not await self._publish(js, pending):
                        self._fall_behind(start)
                        return False
                    sent += len(pending)
                    pending = []
        if pending and not await self._publish(js, pending):
            self._fall_behind(start)
            return False
        sent += len(pending)
        self.metrics.inc("queqiao_network_catchup_frames_total", (), sent)
        log.info("network: caught up, %d frames republished from the archive", sent)
        return True


def _fecf(frame: bytes) -> Fecf:
    return Fecf.OK if _crc.crc16(frame[:-2]) == int.from_bytes(frame[-2:], "big") else Fecf.BAD
