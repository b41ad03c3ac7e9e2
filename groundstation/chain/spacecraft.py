"""One spacecraft's chain: its stages in order, run on each batch of its frames."""
from __future__ import annotations

from collections.abc import Mapping

from groundstation.chain.decode import Decoder
from groundstation.chain.demux import Demultiplexer
from groundstation.chain.export import Exporter
from groundstation.chain.frames import FrameChecks
from groundstation.chain.limits import LimitCheck
from groundstation.chain.logs import RateLimitedLog
from groundstation.chain.reedsolomon import ReedSolomonDecoder
from groundstation.chain.resolve import DefinitionResolver
from groundstation.chain.sequence import SequenceCheck
from groundstation.chain.stage import (
    ChainEvents,
    FrameBatch,
    Sample,
    SpacecraftState,
    Stage,
    StageContext,
    log,
)
from groundstation.metrics import Metrics
from protocols.missions import Spacecraft


def build_stages(context: StageContext, *, limit_overrides: Mapping[str, tuple] | None = None,
                 column_walk: bool = True) -> list[Stage]:
    """The chain's stages in the order a batch goes through them (add a new stage here)."""
    return [
        ReedSolomonDecoder(context),
        FrameChecks(context),
        Demultiplexer(context, column_walk=column_walk),
        SequenceCheck(context),
        DefinitionResolver(context),
        Decoder(context),
        LimitCheck(context, limit_overrides),
        Exporter(context),
    ]


class SpacecraftChain:
    """Frames of one spacecraft through its stages; the latest values and times it has seen."""

    def __init__(self, spacecraft: Spacecraft, metrics: Metrics, events: ChainEvents, *,
                 limit_overrides: Mapping[str, tuple] | None = None, logger: RateLimitedLog | None = None,
                 column_walk: bool = True) -> None:
        self.spacecraft = spacecraft
        self.name = spacecraft.name
        self.profile = spacecraft.profile.frame
        self.state = SpacecraftState()
        self.context = StageContext(spacecraft, self.profile, metrics, events, logger or RateLimitedLog(log),
                                    self.state)
        self.stages = build_stages(self.context, limit_overrides=limit_overrides, column_walk=column_walk)
        #: The stages by name (their counters, e.g. ``chain.stage("sequence").counters``).
        self.by_name = {type(stage).__name__: stage for stage in self.stages}

    def stage(self, cls: type[Stage]) -> Stage:
        return self.by_name[cls.__name__]

    def feed(self, link: str, frames: list[bytes], receipt: float) -> None:
        """One batch of this spacecraft's frames from ``link``."""
        self.run(FrameBatch(link, frames, receipt), self.stages)

    @staticmethod
    def run(item, stages: list[Stage]) -> None:
        for stage in stages:
            item = stage.process(item)
            if item is None:
                return

    @property
    def latest(self) -> dict[tuple[str, str], Sample]:
        return self.state.latest

    @property
    def onboard_time(self) -> float | None:
        return self.state.onboard_time

    @property
    def last_frame_time(self) -> float | None:
        return self.state.last_frame_time

    @property
    def light_time_override(self) -> float | None:
        return self.state.light_time_override

    @light_time_override.setter
    def light_time_override(self, value: float | None) -> None:
        self.state.light_time_override = value
