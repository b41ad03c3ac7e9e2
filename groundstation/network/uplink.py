"""Commanding through the network: telecommand frames from the merge to the site with the best uplink.

The merge's commanders send their frames (COP-1 or BD, SDLS-protected as configured) to a
:class:`NetworkUplink` instead of a radio link.  It publishes each on
``<prefix>.uplink.<site>.<spacecraft>`` of the site that currently has the best uplink: the site
whose frames carried the spacecraft's most recent good CLCW (:class:`UplinkRouter`, fed by the
merge's output), or, before any, the first of ``[merge] stations``.  Each site's
:class:`UplinkRelay` sends what is addressed to it on its own ``[[spacecraft]] uplink``.
Verification needs nothing new: the reports come back in the merged telemetry, through any site.

Core NATS, not JetStream, carries the frames: a telecommand frame is only worth sending now, and
COP-1 already retransmits what the spacecraft did not acknowledge; a frame published while no
site is connected is lost like a frame on the air, and the FOP sends it again.  A site relays
only frames for its configured spacecraft; authentication is end to end (SDLS between the
merge's commander and the spacecraft), so a relay never needs the keys.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from groundstation.chain import RateLimitedLog
from groundstation.config import NetworkConfig
from groundstation.metrics import Metrics
from groundstation.network.broker import connect
from groundstation.network.merge import Released
from groundstation.network.message import Fecf, Rs
from links import Link
from protocols.ccsds.cltu import encode_cltu

log = logging.getLogger("queqiao.network.uplink")

#: Why the merge did not hand a telecommand frame to a site (``queqiao_network_uplink_unsent_total``).
UPLINK_UNSENT_REASONS = ("no_site", "disconnected", "queue_full")


def uplink_subject(prefix: str, site: str, spacecraft: str) -> str:
    return f"{prefix}.uplink.{site}.{spacecraft}"


class UplinkRouter:
    """Which site has the best uplink to each spacecraft: the one whose frames carried its most
    recent good CLCW (a frame with an OCF that passed its FECF or RS), else ``default``."""

    def __init__(self, has_ocf: Mapping[str, bool], default: str | None) -> None:
        self.has_ocf = dict(has_ocf)
        self.default = default
        self.best: dict[str, str] = {}

    def observe(self, released: list[Released]) -> None:
        for r in released:
            if not self.has_ocf.get(r.spacecraft):
                continue
            quality = r.message.quality
            if quality.fecf == Fecf.BAD or quality.rs == Rs.UNCORRECTABLE:
                continue
            self.best[r.spacecraft] = r.message.station

    def site(self, spacecraft: str) -> str | None:
        return self.best.get(spacecraft, self.default)


@dataclass
class _State:
    up: bool = False


class NetworkUplink:
    """The merge's uplink for one spacecraft: what a :class:`~groundstation.commanding.Commander`
    sends on (``send``), published in order to the best site's subject.  Bare frames (``framing``
    "datagram"): a site whose own uplink is a byte stream wraps each in a CLTU."""

    framing = "datagram"

    def __init__(self, spacecraft: str, router: UplinkRouter, metrics: Metrics,
                 queue: asyncio.Queue[tuple[str, str, bytes]], state: _State, prefix: str) -> None:
        self.spacecraft = spacecraft
        self.stats = state  # stats.up: connected to the network
        self.url = f"network: {uplink_subject(prefix, '<site>', spacecraft)}"
        self.router = router
        self.metrics = metrics
        self.queue = queue
        self.log = RateLimitedLog(log)

    def send(self, frame: bytes) -> None:
        site = self.router.site(self.spacecraft)
        if site is None:
            self.metrics.inc("queqiao_network_uplink_unsent_total", (self.spacecraft, "no_site"))
            self.log.warning(f"{self.spacecraft}:no_site", "uplink %s: no site has carried a CLCW yet and "
                             "[merge] stations is empty: frame not sent", self.spacecraft)
            return
        try:
            self.queue.put_nowait((site, self.spacecraft, frame))
        except asyncio.QueueFull:  # the broker has been unreachable for a long while: COP-1 resends
            self.metrics.inc("queqiao_network_uplink_unsent_total", (self.spacecraft, "queue_full"))


class NetworkUplinks:
    """The merge side's connection: one ordered queue of frames for every commanded spacecraft."""

    def __init__(self, network: NetworkConfig, router: UplinkRouter, metrics: Metrics) -> None:
        self.network = network
        self.router = router
        self.metrics = metrics
        self.queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue(maxsize=10_000)
        self.state = _State()

    def uplink(self, spacecraft: str) -> NetworkUplink:
        return NetworkUplink(spacecraft, self.router, self.metrics, self.queue, self.state,
                             self.network.subject_prefix)

    def _on_state(self, up: bool) -> None:
        self.state.up = up

    async def run(self) -> None:
        nc = await connect(self.network, "queqiao-merge-uplink", self._on_state)
        try:
            while True:
                site, spacecraft, frame = await self.queue.get()
                if not self.state.up:
                    self.metrics.inc("queqiao_network_uplink_unsent_total", (spacecraft, "disconnected"))
                    continue
                await nc.publish(uplink_subject(self.network.subject_prefix, site, spacecraft), frame)
                self.metrics.inc("queqiao_network_uplink_frames_total", (site, spacecraft))
        finally:
            with contextlib.suppress(Exception):
                await nc.close()


class UplinkRelay:
    """A site's side: frames the merge addressed to this site, sent on its own uplink links."""

    def __init__(self, network: NetworkConfig, station: str, links: Mapping[str, Link], metrics: Metrics) -> None:
        self.network = network
        self.station = station
        self.links = dict(links)  # spacecraft -> its open uplink link
        self.metrics = metrics
        self.log = RateLimitedLog(log)

    async def run(self) -> None:
        nc = await connect(self.network, f"queqiao-relay-{self.station}")
        try:
            await nc.subscribe(uplink_subject(self.network.subject_prefix, self.station, "*"), cb=self._on_message)
            await asyncio.Event().wait()  # until cancelled
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _on_message(self, msg) -> None:
        spacecraft = msg.subject.rsplit(".", 1)[-1]
        link = self.links.get(spacecraft)
        if link is None:
            self.metrics.inc("queqiao_network_uplink_refused_total", (self.station, "unknown_spacecraft"))
            self.log.warning(f"uplink:{spacecraft}", "uplink relay: a frame for %r, which this site has no uplink for",
                             spacecraft[:64])
            return
        # The merge sends bare frames; a byte-stream uplink (tcp, serial) carries them as CLTUs.
        link.send(encode_cltu(msg.data) if link.framing == "stream" else msg.data)
        self.metrics.inc("queqiao_network_uplink_relayed_total", (self.station, spacecraft))
