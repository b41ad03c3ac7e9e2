"""The sequence check: packet sequence counts per APID, gaps counted, duplicates not decoded twice,
and a backward jump or reset (a reboot) accepted once a few packets in a row agree on it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groundstation.chain.labels import LabelOf, declared_apids
from groundstation.chain.stage import PacketBatch, Stage, StageContext
from protocols.ccsds.spacepacket import MAX_SEQUENCE_COUNT

SEQUENCE_MODULUS = MAX_SEQUENCE_COUNT + 1
#: A count up to this many behind the last (or equal to it) is a duplicate: a frame sent twice.
DUPLICATE_WINDOW = 16
#: Packets in a row that must follow on from a jump further back before it is taken as a resync.
RESYNC_PACKETS = 3


@dataclass
class _Jump:
    """A run of packets that follow on from each other but not from the last accepted count."""

    last: int
    packets: int = 1


class SequenceCheck(Stage):
    """Groups a batch's packets by APID (stream order kept within each) and checks each APID's
    sequence counts against the last one accepted:

    - a step forward (up to half the count modulus) goes on; a step of more than one is a gap
      (the packets lost are counted);
    - the same count or one at most :data:`DUPLICATE_WINDOW` behind is a duplicate (dropped);
    - a count further back is a jump: dropped as ``out_of_sequence`` (a replayed or foreign frame
      must not blind the APID, nor put old values out) until :data:`RESYNC_PACKETS` packets in a
      row follow on from each other; the last of them is accepted and the reset counted
      (``queqiao_packet_sequence_resets_total``).  A packet that follows on from the last
      accepted count meanwhile ends the jump.

    Packets of an APID without telemetry definitions are not checked (the resolver rejects them
    as ``unknown_apid``); an undeclared APID is counted under the label "undeclared".
    """

    name = "sequence"

    def __init__(self, context: StageContext) -> None:
        super().__init__(context)
        self.last: dict[int, int] = {}
        self.jumps: dict[int, _Jump] = {}
        self.label = LabelOf(declared_apids(context.spacecraft))
        self.checked = {d.apid for d in context.spacecraft.packets if d.packet_type == 0}

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        apids = batch.apids
        if (apids == apids[0]).all():  # one APID (a quiet link's frame): no grouping
            split = [(int(apids[0]), np.arange(apids.size))]
        else:
            order = np.argsort(apids, kind="stable")
            values, starts = np.unique(apids[order], return_index=True)
            split = list(zip(values.tolist(), np.split(order, starts[1:]), strict=True))
        groups = []
        for apid, members in split:
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
        labels = (ctx.name, self.label(apid))
        ctx.metrics.inc("queqiao_packets_total", labels, int(counts.size))
        if apid not in self.checked:
            return np.ones(counts.size, dtype=bool)
        last = self.last.get(apid)
        previous = np.empty_like(counts)
        previous[1:] = counts[:-1]
        previous[0] = counts[0] - 1 if last is None else last
        steps = (counts - previous) % SEQUENCE_MODULUS
        if apid in self.jumps or ((steps == 0) | (steps > SEQUENCE_MODULUS // 2)).any():
            keep, gaps, outcomes = self._walk(apid, last, counts.tolist())
        else:
            keep = np.ones(counts.size, dtype=bool)
            gaps = steps[steps > 1] - 1
            outcomes = {}
            self.last[apid] = int(counts[-1])
        if gaps.size:
            ctx.metrics.inc("queqiao_packet_gaps_total", labels, int(gaps.sum()))
            self.count("gap", int(gaps.size))
        for outcome, n in outcomes.items():
            if outcome == "duplicate":
                ctx.metrics.inc("queqiao_packet_duplicates_total", labels, n)
            elif outcome == "reset":
                ctx.metrics.inc("queqiao_packet_sequence_resets_total", labels, n)
                ctx.log.warning(f"{ctx.name}:{apid}:reset", "%s APID %d: sequence count reset to %d", ctx.name,
                                apid, self.last[apid])
            else:
                ctx.metrics.inc("queqiao_packets_rejected_total", (ctx.name, outcome), n)
            self.count(outcome, n)
        return keep

    def _walk(self, apid: int, last: int | None, counts: list[int]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """Packet by packet: (keep mask, packets lost per gap, outcome counts)."""
        keep = np.zeros(len(counts), dtype=bool)
        gaps: list[int] = []
        outcomes: dict[str, int] = {}
        jump = self.jumps.pop(apid, None)
        for i, count in enumerate(counts):
            if last is None:
                keep[i], last = True, count
                continue
            step = (count - last) % SEQUENCE_MODULUS
            if 0 < step <= SEQUENCE_MODULUS // 2:
                keep[i], last, jump = True, count, None
                if step > 1:
                    gaps.append(step - 1)
                continue
            if SEQUENCE_MODULUS - step <= DUPLICATE_WINDOW or step == 0:
                outcomes["duplicate"] = outcomes.get("duplicate", 0) + 1
                continue
            if jump is not None and 0 < (count - jump.last) % SEQUENCE_MODULUS <= DUPLICATE_WINDOW:
                jump.last, jump.packets = count, jump.packets + 1
            else:
                jump = _Jump(count)
            if jump.packets >= RESYNC_PACKETS:
                keep[i], last, jump = True, count, None
                outcomes["reset"] = outcomes.get("reset", 0) + 1
            else:
                outcomes["out_of_sequence"] = outcomes.get("out_of_sequence", 0) + 1
        if jump is not None:
            self.jumps[apid] = jump
        if last is not None:
            self.last[apid] = last
        return keep, np.array(gaps, dtype=np.int64), outcomes
