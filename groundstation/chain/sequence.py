"""The sequence check: packet sequence counts per APID, gaps counted, duplicates not decoded twice."""
from __future__ import annotations

import numpy as np

from groundstation.chain.stage import PacketBatch, Stage, StageContext
from protocols.ccsds.spacepacket import MAX_SEQUENCE_COUNT

SEQUENCE_MODULUS = MAX_SEQUENCE_COUNT + 1


class SequenceCheck(Stage):
    """Groups a batch's packets by APID (stream order kept within each) and checks each APID's
    sequence counts against the last one seen: a step of one is the norm, a larger step forward is
    a gap (the packets lost are counted), no step or a step backward a duplicate (dropped)."""

    name = "sequence"

    def __init__(self, context: StageContext) -> None:
        super().__init__(context)
        self.last: dict[int, int] = {}

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        order = np.argsort(batch.apids, kind="stable")
        values, starts = np.unique(batch.apids[order], return_index=True)
        groups = []
        for apid, members in zip(values.tolist(), np.split(order, starts[1:]), strict=True):
            members = members[self.check(apid, batch.counts[members])]
            if members.size:
                groups.append((apid, members))
        if not groups:
            return None
        batch.groups = groups
        return batch

    def check(self, apid: int, counts: np.ndarray) -> np.ndarray:
        """Mask of one APID's packets (in stream order) that go on."""
        ctx = self.context
        labels = (ctx.name, str(apid))
        ctx.metrics.inc("queqiao_packets_total", labels, int(counts.size))
        last = self.last.get(apid)
        previous = np.empty_like(counts)
        previous[1:] = counts[:-1]
        previous[0] = counts[0] - 1 if last is None else last
        steps = (counts - previous) % SEQUENCE_MODULUS
        if ((steps == 0) | (steps > SEQUENCE_MODULUS // 2)).any():
            # A duplicate leaves the last count where it was: the steps are taken one by one.
            keep, steps, self.last[apid] = self._walk(last, counts.tolist())
        else:
            keep = np.ones(counts.size, dtype=bool)
            self.last[apid] = int(counts[-1])
        gaps = steps > 1
        if gaps.any():
            ctx.metrics.inc("queqiao_packet_gaps_total", labels, int((steps[gaps] - 1).sum()))
            self.count("gap", int(np.count_nonzero(gaps)))
        duplicates = int(np.count_nonzero(~keep))
        if duplicates:
            ctx.metrics.inc("queqiao_packet_duplicates_total", labels, duplicates)
            self.count("duplicate", duplicates)
        return keep

    def _walk(self, last: int | None, counts: list[int]) -> tuple[np.ndarray, np.ndarray, int]:
        keep = np.ones(len(counts), dtype=bool)
        steps = np.ones(len(counts), dtype=np.int64)
        for i, count in enumerate(counts):
            if last is not None:
                step = (count - last) % SEQUENCE_MODULUS
                if step == 0 or step > SEQUENCE_MODULUS // 2:
                    keep[i] = False
                    continue
                steps[i] = step
            last = count
        assert last is not None  # the first packet of an APID is always taken
        return keep, steps, last
