"""The demultiplexer stage: frames to whole space packets (FrameDemux's batch walk), anomalies counted."""
from __future__ import annotations

import numpy as np

from groundstation.chain.stage import FrameBatch, PacketBatch, Stage, StageContext
from protocols.ccsds.spacepacket import IDLE_APID, PRIMARY_HEADER_LENGTH
from protocols.ccsds.vcmux import FrameDemux, PacketColumns


class Demultiplexer(Stage):
    """Packets of a batch of checked frames, per virtual channel, with the packets in progress kept
    between batches.  Everything the demultiplexer drops is counted by kind; frame count gaps are
    counted by the frame checks (with the number of frames lost), not here.  ``column_walk=False``
    walks every batch frame by frame (the reference the column walk is tested against)."""

    name = "packets"

    def __init__(self, context: StageContext, *, column_walk: bool = True) -> None:
        super().__init__(context)
        # The frame checks verify the FECF (in one batch) before the demultiplexer sees a frame.
        self.demux = FrameDemux(context.profile, check_fecf=False, column_walk=column_walk)

    def process(self, batch: FrameBatch) -> PacketBatch | None:
        ctx = self.context
        found = self.demux.feed_batch(batch.frames, batch.headers)
        for anomaly in found.anomalies:
            if anomaly.kind == "frame_gap":
                continue
            ctx.metrics.inc("queqiao_packets_rejected_total", (ctx.name, anomaly.kind))
            self.count(anomaly.kind)
            ctx.log.warning(f"{ctx.name}:{anomaly.kind}", "%s VC%s: %s (%d octets dropped)", ctx.name,
                            anomaly.vcid, anomaly.detail, anomaly.dropped)
        self.count("ok", len(found.offsets))
        return packet_batch(self, found, batch.receipt)


def packet_batch(stage: Stage, found: PacketColumns, receipt: float) -> PacketBatch | None:
    """The packets with their header columns; shorter than a primary header: rejected, idle: dropped."""
    stream, offsets, lengths = found.stream, found.offsets, found.lengths
    short = lengths < PRIMARY_HEADER_LENGTH
    if short.any():
        for i in np.flatnonzero(short).tolist():
            start = int(offsets[i])
            stage.reject_packet("truncated", stream[start:start + int(lengths[i])].tobytes())
        offsets, lengths = offsets[~short], lengths[~short]
    if offsets.size == 0:
        return None
    apids = ((stream[offsets] & 0x07).astype(np.int64) << 8) | stream[offsets + 1]
    real = apids != IDLE_APID
    if not real.all():
        offsets, lengths, apids = offsets[real], lengths[real], apids[real]
        if offsets.size == 0:
            return None
    counts = ((stream[offsets + 2] & 0x3F).astype(np.int64) << 8) | stream[offsets + 3]
    return PacketBatch(stream, offsets, lengths, apids, counts, receipt)
