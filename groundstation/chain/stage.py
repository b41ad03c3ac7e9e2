"""What every stage of a spacecraft's chain shares: the batches that flow between stages, the
context a stage works in, and the small interface each stage implements.

A stage takes one batch and returns the batch the next stage takes (or None when nothing is
left), counts what it did in its own :attr:`Stage.counters` and, under its metric name, in
``queqiao_chain_stage_total{stage, outcome}``.  :func:`groundstation.chain.spacecraft.build_stages`
lists the stages in order: a new stage (Reed-Solomon decoding before the frame checks, a packet
pre-processor after the demultiplexer) is one entry there.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from groundstation.chain.logs import RateLimitedLog
from groundstation.metrics import Metrics
from protocols.ccsds.tmframe import FrameProfile
from protocols.missions import PacketDef, Spacecraft
from protocols.parameters import LimitState

log = logging.getLogger("queqiao.chain")


@dataclass
class Sample:
    """The latest value of one parameter (what /metrics, MQTT and `watch` show)."""

    value: object
    raw: object
    limit: LimitState
    ground_time: float
    onboard_time: float | None


@dataclass
class ChainEvents:
    """Hooks for what the chain produces besides metrics (all optional)."""

    #: (spacecraft, PacketDef, row values as a flat dict, ground time) for PUS 1 / 17 reports.
    on_report: Callable[[str, PacketDef, dict, float], None] | None = None
    #: (spacecraft, event dict) for onboard events (PUS 5) and limit transitions.
    on_event: Callable[[str, dict], None] | None = None
    #: (spacecraft, subsystem, ParameterExport name, unit, Sample) for the latest value of a batch.
    on_parameter: Callable[[str, str, str, str, Sample], None] | None = None
    #: (spacecraft, CLCW fields) for the commanding side's FOP-1.
    on_clcw: Callable[[str, dict], None] | None = None
    #: (spacecraft, PacketDef, raw columns, onboard time of each packet or None, ground time) for every
    #: decoded housekeeping group: the parameter archive and remote write keep every sample from here.
    on_samples: Callable[[str, PacketDef, dict, np.ndarray | None, float], None] | None = None


@dataclass
class SpacecraftState:
    """What the chain knows of one spacecraft between batches (read by the daemon and `watch`)."""

    latest: dict[tuple[str, str], Sample] = field(default_factory=dict)
    onboard_time: float | None = None
    last_frame_time: float | None = None
    light_time_override: float | None = None


@dataclass
class StageContext:
    """The spacecraft a chain works for and where its stages report."""

    spacecraft: Spacecraft
    profile: FrameProfile
    metrics: Metrics
    events: ChainEvents
    log: RateLimitedLog
    state: SpacecraftState

    @property
    def name(self) -> str:
        return self.spacecraft.name


@dataclass
class FrameBatch:
    """Whole transfer frames of one spacecraft from one link, in arrival order."""

    link: str
    frames: list[bytes]
    receipt: float
    #: The frames' header columns (:func:`protocols.ccsds.tmframe.decode_headers`), once decoded.
    headers: dict[str, np.ndarray] | None = None


@dataclass
class DefinitionGroup:
    """The packets of one definition in a batch (indices into the batch), to be decoded together."""

    definition: PacketDef
    rows: np.ndarray


@dataclass
class PacketBatch:
    """Space packets in place: packet ``i`` is ``stream[offsets[i]:offsets[i] + lengths[i]]``; ``apids``
    and ``counts`` (sequence counts) are their header columns.  ``groups`` is filled by the sequence
    check: (APID, packet indices) per APID, the packets that go on; ``definitions`` by the resolver."""

    stream: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    apids: np.ndarray
    counts: np.ndarray
    receipt: float
    groups: list[tuple[int, np.ndarray]] = field(default_factory=list)
    definitions: list[DefinitionGroup] = field(default_factory=list)

    def packet(self, i: int) -> bytes:
        start = int(self.offsets[i])
        return self.stream[start:start + int(self.lengths[i])].tobytes()


@dataclass
class DecodedGroup:
    """One definition's packets decoded: raw columns, their count, the onboard time of the last;
    ``values`` the latest value of each exported parameter once the limit check has run."""

    definition: PacketDef
    raw: dict[str, np.ndarray]
    count: int
    onboard: float | None
    eng: dict[str, np.ndarray] | None = None
    #: The onboard time of every packet (Unix seconds), for housekeeping when a sink keeps every sample.
    onboard_times: np.ndarray | None = None
    values: list[Any] = field(default_factory=list)


@dataclass
class DecodedBatch:
    """Every definition's decoded packets of one batch, in the order of their first packet."""

    groups: list[DecodedGroup]
    receipt: float


class Stage:
    """One named step of the chain.  Subclasses set :attr:`name` (the ``stage`` label of
    ``queqiao_chain_stage_total``) and implement :meth:`process`."""

    name = "stage"

    def __init__(self, context: StageContext) -> None:
        self.context = context
        self.counters: Counter[str] = Counter()

    def process(self, batch: Any) -> Any:
        """The batch for the next stage, or None when nothing goes on."""
        raise NotImplementedError

    def count(self, outcome: str, n: int = 1, stage: str | None = None) -> None:
        """``n`` items with ``outcome`` (in this stage's counters and in the stage metric)."""
        if n:
            self.counters[outcome] += n
            self.context.metrics.inc("queqiao_chain_stage_total", (stage or self.name, outcome), n)

    def reject_packet(self, reason: str, data: bytes, detail: str = "") -> None:
        """A packet that cannot go on: counted per spacecraft and reason, logged at a bounded rate."""
        ctx = self.context
        ctx.metrics.inc("queqiao_packets_rejected_total", (ctx.name, reason))
        self.count(reason, stage="decode")
        ctx.log.warning(f"{ctx.name}:{reason}", "%s packet rejected (%s) %s: %s", ctx.name, reason, detail,
                        bytes(data[:16]).hex())
