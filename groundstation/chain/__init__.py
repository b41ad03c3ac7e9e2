"""The frame and packet chain: named stages, each with its own counters, from frames to parameters.

    route (version/SCID) -> Reed-Solomon (codeblocks, when the profile has a code)
    -> frame checks (length, FECF, VC counts, CLCW) -> demux (packets)
    -> sequence (gaps, duplicates) -> resolve (mission database) -> decode (PacketCodec)
    -> limits (alarms) -> export (Prometheus store, MQTT, events, verification reports)

One module per stage (:mod:`.reedsolomon`, :mod:`.frames`, :mod:`.demux`, :mod:`.sequence`, :mod:`.resolve`,
:mod:`.decode`, :mod:`.limits`, :mod:`.export`), all behind the small :class:`.stage.Stage`
interface; :func:`.spacecraft.build_stages` puts them in order.  The chain works on batches: a
link hands over every frame that arrived since the last wake-up and each stage handles the
batch with vector operations where it can.  Nothing raises past the chain on bad input: every
frame or packet that cannot go on is counted under its stage and reason
(``queqiao_frames_rejected_total``, ``queqiao_packets_rejected_total``,
``queqiao_chain_stage_total``) and logged at a bounded rate.  The raw archive is written by the
caller before the chain sees a frame.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from groundstation.chain.logs import RateLimitedLog
from groundstation.chain.spacecraft import SpacecraftChain, build_stages
from groundstation.chain.stage import ChainEvents, Sample, Stage, log
from groundstation.metrics import Metrics
from protocols.ccsds.tmframe import AOS_VERSION, TM_PRIMARY_HEADER_LENGTH, TM_VERSION, decode_headers, header_rows
from protocols.missions import Registry

__all__ = ["ChainEvents", "FrameChain", "RateLimitedLog", "Sample", "SpacecraftChain", "Stage", "build_stages"]


class FrameChain:
    """Routes frames to their spacecraft's chain by transfer frame version and SCID."""

    def __init__(self, registry: Registry, metrics: Metrics, *, spacecraft: Iterable[str] | None = None,
                 events: ChainEvents | None = None,
                 limit_overrides: Mapping[str, Mapping[str, tuple]] | None = None, column_walk: bool = True) -> None:
        self.registry = registry
        self.metrics = metrics
        self.events = events or ChainEvents()
        self.log = RateLimitedLog(log)
        names = list(spacecraft) if spacecraft is not None else list(registry.names)
        self.chains: dict[str, SpacecraftChain] = {}
        self._routes: dict[tuple[int, int], SpacecraftChain] = {}
        for name in names:
            sc = registry.spacecraft(name)
            chain = SpacecraftChain(sc, metrics, self.events, limit_overrides=(limit_overrides or {}).get(name),
                                    logger=self.log, column_walk=column_walk)
            self.chains[name] = chain
            self._routes[(chain.profile.version, sc.scid)] = chain

    def process(self, link: str, frames: list[bytes], receipt: float | None = None, *,
                spacecraft: str | None = None) -> None:
        """One batch of whole transfer frames (or RS codeblocks) from ``link`` (already archived by the
        caller).  ``spacecraft``: the link is pinned to it (a CADU link), so the batch goes to its chain
        without routing: a codeblock's header may be damaged until the RS stage has corrected it."""
        receipt = time.time() if receipt is None else receipt
        self.metrics.inc("queqiao_frames_received_total", (link,), len(frames))
        self.metrics.set("queqiao_link_last_frame_timestamp_seconds", (link,), receipt)
        routed: dict[str, list[bytes]] = defaultdict(list)
        if spacecraft is not None and spacecraft in self.chains:
            routed[spacecraft] = list(frames)
        else:
            for (version, scid), frame in self._addresses(link, frames):
                chain = self._routes.get((version, scid))
                if chain is None:
                    self._reject(link, "unknown_spacecraft", f"version {version} SCID {scid}")
                else:
                    routed[chain.name].append(frame)
        self.metrics.inc("queqiao_chain_stage_total", ("route", "ok"), sum(map(len, routed.values())))
        for name, batch in routed.items():
            chain = self.chains[name]
            self.metrics.set("queqiao_spacecraft_last_frame_timestamp_seconds", (name,), receipt)
            try:
                chain.feed(link, batch, receipt)
            except Exception:  # noqa: BLE001 - a bug must not stop the daemon; it is logged with its trace
                self.log.exception(f"{name}:internal_error", "chain for %s failed on a batch of %d frames from %s",
                                   name, len(batch), link)
                self.metrics.inc("queqiao_frames_rejected_total", (link, "internal_error"), len(batch))
            if chain.onboard_time is not None:
                self.metrics.set("queqiao_spacecraft_onboard_time_seconds", (name,), chain.onboard_time)

    def _addresses(self, link: str, frames: list[bytes]) -> list[tuple[tuple[int, int], bytes]]:
        """((version, SCID), frame) of each frame with a primary header of a known version."""
        whole = [f for f in frames if len(f) >= TM_PRIMARY_HEADER_LENGTH]
        if len(whole) != len(frames):
            for frame in frames:
                if len(frame) < TM_PRIMARY_HEADER_LENGTH:
                    self._reject(link, "truncated", f"{len(frame)} octets")
        if not whole:
            return []
        rows = header_rows(whole)
        tm = decode_headers(rows, "TM", fields=("version", "scid"))
        versions, scids = tm["version"], tm["scid"]
        aos = versions == AOS_VERSION
        if aos.any():
            scids = np.where(aos, decode_headers(rows, "AOS", fields=("scid",))["scid"], scids)
        out = []
        for version, scid, frame in zip(versions.tolist(), scids.tolist(), whole, strict=True):
            if version in (TM_VERSION, AOS_VERSION):
                out.append(((version, scid), frame))
            else:
                self._reject(link, "version", f"transfer frame version {version}")
        return out

    def _reject(self, link: str, reason: str, detail: str) -> None:
        self.metrics.inc("queqiao_frames_rejected_total", (link, reason))
        self.metrics.inc("queqiao_chain_stage_total", ("route", reason))
        self.log.warning(f"{link}:{reason}", "link %s: frame rejected (%s): %s", link, reason, detail)
