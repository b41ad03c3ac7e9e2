"""The frame and packet chain: named stages, each with its own counters, from frames to parameters.

    route (version/SCID) -> length -> fecf -> vc gaps -> packets (demux, FHP, spanning packets)
    -> sequence (gaps, duplicates) -> resolve (mission database) -> decode (fast path)
    -> limits (alarms) -> export (Prometheus store, MQTT, events, verification reports)

The chain works on batches: a link hands over every frame that arrived since
the last wake-up, each stage handles the batch with vector operations where
it can, and the decode runs once per packet definition per batch through
:class:`protocols.codec.PacketCodec`.  Nothing raises past the chain on bad
input: every frame or packet that cannot go on is counted under its stage and
reason (``queqiao_frames_rejected_total``, ``queqiao_packets_rejected_total``,
``queqiao_chain_stage_total``) and logged at a bounded rate.  The raw archive
is written by the caller before the chain sees a frame.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from cython_ext import crc as _crc
from groundstation.alarms import AlarmPolicy, ParameterAlarm, Transition, override_limits
from groundstation.metrics import Metrics
from protocols.ccsds.cuc import cuc_to_unix
from protocols.ccsds.spacepacket import IDLE_APID, MAX_SEQUENCE_COUNT
from protocols.ccsds.tmframe import FHP_IDLE_DATA_ONLY, FHP_NO_PACKET_START, FrameProfile
from protocols.ccsds.vcmux import FrameDemux, _RxChannel  # the fast path keeps the demux's channel state
from protocols.codec import CRC_OK, PacketCodec
from protocols.codec.stream import BAD_HEADER as SPLIT_BAD_HEADER
from protocols.codec.stream import split_packets as _split_packets
from protocols.missions import PacketDef, Registry, Spacecraft
from protocols.parameters import LimitState, Parameter

log = logging.getLogger("queqiao.chain")

SEQUENCE_MODULUS = MAX_SEQUENCE_COUNT + 1
TIME_COARSE = "secondary.time.coarse"
TIME_FINE = "secondary.time.fine"


class RateLimitedLog:
    """At most ``burst`` lines per ``window`` seconds per key; the rest are counted and summarised."""

    def __init__(self, logger: logging.Logger, burst: int = 5, window: float = 10.0) -> None:
        self.logger, self.burst, self.window = logger, burst, window
        self._state: dict[str, list] = {}

    def warning(self, key: str, message: str, *args) -> None:
        self._log(key, logging.WARNING, message, args, exc_info=False)

    def exception(self, key: str, message: str, *args) -> None:
        """An error with its traceback (call from an ``except`` block), rate-limited like the rest."""
        self._log(key, logging.ERROR, message, args, exc_info=True)

    def _log(self, key: str, level: int, message: str, args: tuple, *, exc_info: bool) -> None:
        now = time.monotonic()
        start, count, suppressed = self._state.get(key, (now, 0, 0))
        if now - start > self.window:
            if suppressed:
                self.logger.log(level, "%s: %d more like this suppressed", key, suppressed)
            start, count, suppressed = now, 0, 0
        if count < self.burst:
            self.logger.log(level, message, *args, exc_info=exc_info)
            count += 1
        else:
            suppressed += 1
        self._state[key] = [start, count, suppressed]


@dataclass(frozen=True)
class ParameterExport:
    """How one parameter column of one packet definition is exported."""

    path: str  # column name, e.g. "hk.battery_voltage"
    name: str  # label value, e.g. "battery_voltage"
    subsystem: str
    unit: str
    parameter: Parameter


def exports_of(definition: PacketDef) -> list[ParameterExport]:
    """The parameters of a packet definition as they are exported (leaf name, subsystem, unit)."""
    return [ParameterExport(path, path.rsplit(".", 1)[-1], definition.subsystem, param.unit, param)
            for path, param in definition.parameters()]


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
    #: (spacecraft, subsystem, ParameterExport name, Sample) for the latest value of a batch.
    on_parameter: Callable[[str, str, str, str, Sample], None] | None = None
    #: (spacecraft, CLCW fields) for the commanding side's FOP-1.
    on_clcw: Callable[[str, dict], None] | None = None
    #: (spacecraft, PacketDef, raw columns, onboard time per packet or None, ground time) for every
    #: decoded housekeeping packet group: the parameter archive keeps every sample from here.
    on_samples: Callable[[str, PacketDef, dict, np.ndarray | None, float], None] | None = None


class SpacecraftChain:
    """The per-spacecraft part of the chain: demux, sequence tracking, decode, limits, latest values."""

    def __init__(self, spacecraft: Spacecraft, metrics: Metrics, events: ChainEvents, *,
                 limit_overrides: Mapping[str, tuple] | None = None, logger: RateLimitedLog | None = None) -> None:
        self.spacecraft = spacecraft
        self.name = spacecraft.name
        self.profile = FrameProfile.from_mission(spacecraft.profile)
        self.metrics = metrics
        self.events = events
        self.log = logger or RateLimitedLog(log)
        # The chain checks the FECF itself (in one batch) before the demux sees a frame.
        self.demux = FrameDemux(self.profile, check_fecf=False)
        #: Batches of clean TM frames skip the per-frame demultiplexer (see _fast_packets).
        self.fast_path = self.profile.kind == "TM"
        self._vc_expected: dict[int, int] = {}
        self._seq_last: dict[int, int] = {}
        self._definitions: dict[int, list[PacketDef]] = defaultdict(list)
        for definition in spacecraft.packets:
            if definition.packet_type == 0:  # telemetry only
                self._definitions[definition.apid].append(definition)
        self._by_pus: dict[int, dict[int, list[PacketDef]]] = {}  # APID -> PUS service/subtype -> candidates
        self._codecs: dict[str, PacketCodec] = {}
        self._exports: dict[str, list[ParameterExport]] = {}
        self._alarms: dict[tuple[str, str], ParameterAlarm] = {}
        self._overrides = dict(limit_overrides or {})
        self.latest: dict[tuple[str, str], Sample] = {}
        self._exported = False  # a parameter was exported in the batch being decoded
        self.onboard_time: float | None = None
        self.last_frame_time: float | None = None
        self.light_time_override: float | None = None

    # ------------------------------------------------------------------ frames

    def feed(self, link: str, frames: list[bytes], receipt: float) -> None:
        fl = self.profile.frame_length
        good: list[bytes] = []
        for frame in frames:
            if len(frame) != fl:
                self._reject_frame(link, "length", f"{len(frame)} octets, {self.name} frames have {fl}")
            else:
                good.append(frame)
        if not good:
            return
        stage = self.metrics.inc
        if self.profile.has_fecf:
            buffer = b"".join(good)
            computed = _crc.crc16_strided(buffer, fl, fl - 2)
            rows = np.frombuffer(buffer, dtype=np.uint8).reshape(-1, fl)
            received = (rows[:, fl - 2].astype(np.uint16) << 8) | rows[:, fl - 1]
            ok = computed == received
            if not ok.all():
                for _ in range(int((~ok).sum())):
                    self._reject_frame(link, "fecf", "frame error control mismatch")
                good = [f for f, keep in zip(good, ok.tolist()) if keep]
            stage("queqiao_chain_stage_total", ("fecf", "ok"), len(good))
            if not good:
                return
        self.last_frame_time = receipt
        self._count_vc(good)
        if self.profile.has_ocf and self.events.on_clcw is not None:
            self._clcw(good[-1])
        fast = self._fast_packets(good) if self.fast_path else None
        if fast is not None:
            stream, offsets, lengths = fast
            stage("queqiao_chain_stage_total", ("packets", "ok"), len(offsets))
            if len(offsets):
                self._decode_stream(stream, offsets, lengths, receipt)
            return
        # Anything unusual in the batch (a gap, a pointer or header that does not check, idle-only
        # frames on a data VC, AOS): the reference demultiplexer, which reports each anomaly.
        result = self.demux.feed(good)
        for anomaly in result.anomalies:
            if anomaly.kind == "frame_gap":
                continue  # counted from the VC counters above, with the number of frames lost
            self.metrics.inc("queqiao_packets_rejected_total", (self.name, anomaly.kind))
            stage("queqiao_chain_stage_total", ("packets", anomaly.kind))
            self.log.warning(f"{self.name}:{anomaly.kind}", "%s VC%s: %s (%d octets dropped)", self.name,
                             anomaly.vcid, anomaly.detail, anomaly.dropped)
        packets = [p.data for p in result.packets]
        stage("queqiao_chain_stage_total", ("packets", "ok"), len(packets))
        if packets:
            self.decode_packets(packets, receipt)

    def _fast_packets(self, frames: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The demultiplexer's packets of a batch, as (stream, offsets, lengths); None to use it instead.

        Per virtual channel the frames are cut at frame count gaps (where the demultiplexer drops
        the packet in progress and waits for a first header pointer), and each run of consecutive
        frames is split in one pass, with the channel's packet in progress in front.  The batch
        qualifies when no frame has the synchronisation flag or a pointer past the data field, no
        data VC carries idle-only frames, and every first header pointer agrees with the packet
        boundaries of the walk.  Then :class:`FrameDemux` would report nothing but the gaps and
        emit exactly these packets, in the same order; its channel state (expected count, sync,
        packet in progress) and counters are advanced as its own walk would have left them.
        Otherwise nothing is changed and the caller feeds the batch to the demultiplexer.
        """
        p = self.profile
        demux = self.demux
        fl, zo, zl = p.frame_length, p.zone_offset, p.zone_length
        n = len(frames)
        rows = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(n, fl)
        if ((rows[:, 0] >> 6) != p.version).any() or (rows[:, 4] & 0x40).any():
            return None
        scids = ((rows[:, 0].astype(np.int64) & 0x3F) << 4) | (rows[:, 1] >> 4)
        if (scids != scids[0]).any():
            return None
        scid = int(scids[0])
        vcids = (rows[:, 1] >> 1) & 7
        fhps = ((rows[:, 4].astype(np.int64) & 7) << 8) | rows[:, 5]
        counts = rows[:, 3].astype(np.int64)
        bad_pointer = (fhps >= zl) & (fhps != FHP_NO_PACKET_START) & (fhps != FHP_IDLE_DATA_ONLY)
        if bad_pointer.any():
            return None
        modulus = p.count_modulus
        plans = []
        for vcid in np.unique(vcids).tolist():
            index = np.flatnonzero(vcids == vcid)
            ch = demux._channels.get((scid, vcid))
            if ch is not None and not ch.synced and ch.buf:
                return None
            vc = counts[index]
            previous = np.empty_like(vc)
            previous[1:] = (vc[:-1] + 1) % modulus
            previous[0] = vc[0] if ch is None or ch.expected is None else ch.expected
            gaps = np.flatnonzero(vc != previous)
            lost = int(((vc[gaps] - previous[gaps]) % modulus).sum())
            fhp = fhps[index]
            idle = fhp == FHP_IDLE_DATA_ONLY
            if idle.all():
                # A gap still drops the packet in progress, even before frames of only idle data.
                dropped = len(ch.buf) if ch is not None and gaps.size else 0
                plans.append((vcid, index, gaps.size, lost, dropped, None))
                continue
            if idle.any():
                return None
            synced = ch is not None and ch.synced
            prefix = bytes(ch.buf) if synced else b""
            cuts = [0, *gaps.tolist(), index.size]
            dropped = 0
            segments = []
            for start, stop in zip(cuts[:-1], cuts[1:]):
                if start == stop:
                    continue
                if start in gaps:  # the demultiplexer drops the packet in progress and resynchronises
                    dropped += len(prefix)
                    synced, prefix = False, b""
                plan = self._walk(rows, index[start:stop], fhp[start:stop], synced, prefix)
                if plan is None:
                    return None
                segments.append((start, stop, plan))
                synced = plan[5]
                prefix = plan[0][plan[4]:].tobytes() if plan[4] is not None else b""
            plans.append((vcid, index, gaps.size, lost, dropped, segments))
        # Every channel checks: commit the demultiplexer's state and gather the packets.
        base = demux._index
        demux._index += n
        counters = demux.counters
        counters["frames"] += n
        pieces, offsets, lengths, done = [], [], [], []
        at = 0
        for vcid, index, gap_count, lost, dropped, segments in plans:
            ch = demux._channels.get((scid, vcid))
            if ch is None:
                ch = demux._channels[(scid, vcid)] = _RxChannel()
            ch.expected = (int(counts[index[-1]]) + 1) % modulus
            if gap_count:
                counters["frame_gap"] += gap_count
                counters["lost_frames"] += lost
                counters["dropped_octets"] += dropped
            if segments is None:
                counters["idle_frames"] += index.size
                if gap_count:
                    ch.buf, ch.total, ch.synced = bytearray(), 0, False
                continue
            for start, stop, (stream, offs, lens, completes, tail, synced, skipped) in segments:
                counters["skipped_octets"] += skipped
                ch.synced = synced
                ch.buf = bytearray(stream[tail:].tobytes()) if tail is not None else bytearray()
                ch.total = 0
                if tail is not None:
                    if len(ch.buf) >= 6:
                        ch.total = ((ch.buf[4] << 8) | ch.buf[5]) + 7
                    prefix = stream.size - (stop - start) * zl
                    frame = (tail - prefix) // zl if tail >= prefix else 0
                    ch.frame, ch.offset = base + int(index[start + frame]), zo + (tail - prefix) % zl
                if offs.size == 0:
                    continue
                apids = ((stream[offs] & 0x07).astype(np.int64) << 8) | stream[offs + 1]
                real = apids != IDLE_APID
                idle_count = int(offs.size - np.count_nonzero(real))
                counters["idle_packets"] += idle_count
                if idle_count and not demux.keep_idle:
                    offs, lens, completes = offs[real], lens[real], completes[real]
                counters["packets"] += int(offs.size)
                pieces.append(stream)
                offsets.append(offs + at)
                lengths.append(lens)
                done.append(index[start:stop][completes])
                at += stream.size
        if not pieces:
            return np.empty(0, np.uint8), np.empty(0, np.int64), np.empty(0, np.int64)
        if len(pieces) == 1:
            return pieces[0], offsets[0], lengths[0]
        stream = np.concatenate(pieces)
        # The demultiplexer emits a packet with the frame that completes it: same order here.
        order = np.argsort(np.concatenate(done), kind="stable")
        return stream, np.concatenate(offsets)[order], np.concatenate(lengths)[order]

    def _walk(self, rows: np.ndarray, index: np.ndarray, fhp: np.ndarray, synced: bool, prefix: bytes):
        """Packets of consecutive frames of one VC, or None when a pointer or header does not check.

        (stream, offsets, lengths, frame completing each packet, tail start or None, synced, skipped octets).
        """
        p = self.profile
        zo, zl = p.zone_offset, p.zone_length
        k = index.size
        skipped = 0
        if synced:
            if not prefix and fhp[0] != 0:
                return None
            start, first = 0, 0
        else:
            # Unsynchronised: frames without a packet start are skipped, then the pointer is trusted.
            starts = np.flatnonzero(fhp != FHP_NO_PACKET_START)
            if starts.size == 0:
                empty = np.empty(0, np.int64)
                return np.empty(0, np.uint8), empty, empty, empty, None, False, k * zl
            first = int(starts[0])
            prefix = b""
            start = first * zl + int(fhp[first])
            skipped = start
        npre = len(prefix)
        # One copy: the packet in progress, then the data fields back to back.
        stream = np.empty(npre + k * zl, dtype=np.uint8)
        stream[:npre] = np.frombuffer(prefix, dtype=np.uint8)
        zones = stream[npre:].reshape(k, zl)
        first_row, last_row = int(index[0]), int(index[-1])
        if last_row - first_row + 1 == k:  # one VC only: a plain slice, no gather
            zones[...] = rows[first_row:last_row + 1, zo:zo + zl]
        else:
            np.take(rows[:, zo:zo + zl], index, axis=0, out=zones)
        split = _split_packets(stream, start=start)
        if split.status == SPLIT_BAD_HEADER:
            return None
        offs, lens = split.offsets, split.lengths
        tail = split.end if split.end < stream.size else None
        # Where a packet (or the tail packet) starts in each frame must be what the frame's pointer says.
        starts = offs if tail is None else np.append(offs, tail)
        starts = starts[starts >= npre] - npre if npre else starts
        frame_of = starts // zl
        expected = np.full(k, FHP_NO_PACKET_START, dtype=np.int64)
        if starts.size:
            # Starts ascend: the first of each frame is where the frame changes (no sort needed).
            at = np.flatnonzero(np.diff(frame_of, prepend=-1))
            head = frame_of[at]
            expected[head] = starts[at] - head * zl
        if (expected[first:] != fhp[first:]).any():
            return None
        completes = (offs + lens - 1 - npre) // zl
        return stream, offs, lens, completes, tail, True, skipped

    def _reject_frame(self, link: str, reason: str, detail: str) -> None:
        self.metrics.inc("queqiao_frames_rejected_total", (link, reason))
        self.metrics.inc("queqiao_chain_stage_total", (reason, "rejected"))
        self.log.warning(f"{link}:{reason}", "link %s: %s frame rejected (%s): %s", link, self.name, reason, detail)

    def _count_vc(self, frames: list[bytes]) -> None:
        """VC frame counter gaps, per virtual channel (idle frames counted but not gap-checked)."""
        aos = self.profile.kind == "AOS"
        modulus = self.profile.count_modulus
        idle = self.profile.idle_vcid
        per_vc: dict[int, int] = defaultdict(int)
        for frame in frames:
            if aos:
                vcid, count = frame[1] & 0x3F, (frame[2] << 16) | (frame[3] << 8) | frame[4]
            else:
                vcid, count = (frame[1] >> 1) & 0x7, frame[3]
            per_vc[vcid] += 1
            if vcid == idle:
                continue
            expected = self._vc_expected.get(vcid)
            if expected is not None and count != expected:
                lost = (count - expected) % modulus
                self.metrics.inc("queqiao_frame_gaps_total", (self.name, str(vcid)), lost)
                self.log.warning(f"{self.name}:vc{vcid}:gap", "%s VC%d: %d frame(s) lost (count %d, expected %d)",
                                 self.name, vcid, lost, count, expected)
            self._vc_expected[vcid] = (count + 1) % modulus
        for vcid, n in per_vc.items():
            self.metrics.inc("queqiao_frames_total", (self.name, str(vcid)), n)

    def _clcw(self, frame: bytes) -> None:
        start = self.profile.ocf_offset
        word = int.from_bytes(frame[start:start + 4], "big")
        if word >> 31:  # type 1: not a CLCW
            return
        self.events.on_clcw(self.name, {
            "vcid": (word >> 18) & 0x3F, "no_rf": (word >> 15) & 1, "no_bit_lock": (word >> 14) & 1,
            "lockout": (word >> 13) & 1, "wait": (word >> 12) & 1, "retransmit": (word >> 11) & 1,
            "farm_b_counter": (word >> 9) & 3, "report_value": word & 0xFF,
        })

    # ------------------------------------------------------------------ packets

    def decode_packets(self, packets: list[bytes], receipt: float) -> None:
        """Sequence checks, then one batch decode per packet definition."""
        if not packets:
            return
        lengths = np.fromiter(map(len, packets), dtype=np.int64, count=len(packets))
        offsets = np.zeros(len(packets), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        stream = np.frombuffer(b"".join(packets), dtype=np.uint8)
        self._decode_stream(stream, offsets, lengths, receipt)

    def _decode_stream(self, stream: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, receipt: float) -> None:
        """decode_packets on packets in place (``stream[offsets[i]:offsets[i] + lengths[i]]``), per APID in columns.

        Counts, rejections and the order of decoding are those of a packet-by-packet walk:
        sequence check per APID in stream order, then the definition by APID, PUS service and
        subtype and key, then the size; each definition's packets are decoded together, the
        definitions in the order of their first packet.
        """
        short = lengths < 6
        if short.any():
            for i in np.flatnonzero(short).tolist():
                self._reject_packet("truncated", self._packet_bytes(stream, offsets[i], lengths[i]))
            keep = np.flatnonzero(~short)
            offsets, lengths = offsets[keep], lengths[keep]
        if offsets.size == 0:
            return
        apids = ((stream[offsets] & 0x07).astype(np.int64) << 8) | stream[offsets + 1]
        counts = ((stream[offsets + 2] & 0x3F).astype(np.int64) << 8) | stream[offsets + 3]
        real = np.flatnonzero(apids != IDLE_APID)
        if real.size == 0:
            return
        if real.size != apids.size:
            offsets, lengths, apids, counts = offsets[real], lengths[real], apids[real], counts[real]
        order = np.argsort(apids, kind="stable")
        values, starts = np.unique(apids[order], return_index=True)
        groups: dict[str, list[np.ndarray]] = defaultdict(list)
        by_name: dict[str, PacketDef] = {}
        for apid, members in zip(values.tolist(), np.split(order, starts[1:])):
            members = members[self._sequence_many(apid, counts[members])]
            if members.size == 0:
                continue
            for definition, rows in self._resolve_many(apid, stream, offsets[members], lengths[members], members):
                wrong = lengths[rows] != definition.size
                if wrong.any():
                    for i in np.flatnonzero(wrong).tolist():
                        self._reject_packet("length", self._packet_bytes(stream, offsets[rows[i]], lengths[rows[i]]),
                                            f"{definition.name} is {definition.size} octets, got {lengths[rows[i]]}")
                    rows = rows[~wrong]
                if rows.size:
                    groups[definition.name].append(rows)
                    by_name[definition.name] = definition
        decoded = []
        for name, parts in groups.items():
            rows = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))
            decoded.append((int(rows[0]), name, rows))
        self._exported = False
        for _, name, rows in sorted(decoded, key=lambda item: item[0]):
            self._decode_group(by_name[name], stream, offsets[rows], receipt)
        self._observe_latency(receipt)

    def _observe_latency(self, receipt: float) -> None:
        """One observation per batch that updated parameters: ground receipt (the link's arrival time of
        the batch's first frame) to the moment every parameter of the batch is in the metric store."""
        if self._exported:
            self.metrics.latency.observe_many(np.array([time.time() - receipt]))
            self._exported = False

    @staticmethod
    def _packet_bytes(stream: np.ndarray, offset, length) -> bytes:
        return stream[int(offset):int(offset) + int(length)].tobytes()

    def _sequence_many(self, apid: int, counts: np.ndarray) -> np.ndarray:
        """Mask of packets to keep (not duplicates) among one APID's packets, in order; counts as _sequence_ok."""
        last = self._seq_last.get(apid)
        previous = np.empty_like(counts)
        previous[1:] = counts[:-1]
        previous[0] = counts[0] - 1 if last is None else last
        steps = (counts - previous) % SEQUENCE_MODULUS
        if ((steps == 0) | (steps > SEQUENCE_MODULUS // 2)).any():
            # A duplicate leaves the last count where it was: walk this APID packet by packet.
            return np.fromiter((self._sequence_ok(apid, c) for c in counts.tolist()), dtype=bool, count=counts.size)
        labels = (self.name, str(apid))
        self.metrics.inc("queqiao_packets_total", labels, int(counts.size))
        gaps = steps > 1
        if gaps.any():
            self.metrics.inc("queqiao_packet_gaps_total", labels, int((steps[gaps] - 1).sum()))
            self.metrics.inc("queqiao_chain_stage_total", ("sequence", "gap"), int(np.count_nonzero(gaps)))
        self._seq_last[apid] = int(counts[-1])
        return np.ones(counts.size, dtype=bool)

    def _resolve_many(self, apid: int, stream: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                      members: np.ndarray) -> list[tuple[PacketDef, np.ndarray]]:
        """(definition, packet indices) for one APID's packets, rejecting those _resolve would reject."""
        candidates = self._definitions.get(apid)
        if not candidates:
            for o, n in zip(offsets.tolist(), lengths.tolist()):
                self._reject_packet("unknown_apid", self._packet_bytes(stream, o, n), f"APID {apid}")
            return []
        if len(candidates) == 1:
            return [(candidates[0], members)]
        if offsets.size <= 8:
            # A few packets (a quiet link: one frame per wake-up): per packet beats a dozen array operations.
            found: dict[str, tuple[PacketDef, list[int]]] = {}
            for m, o, n in zip(members.tolist(), offsets.tolist(), lengths.tolist()):
                definition = self._resolve(apid, stream[o:o + n].tobytes())
                if definition is not None:
                    found.setdefault(definition.name, (definition, []))[1].append(m)
            return [(d, np.array(rows, dtype=np.int64)) for d, rows in found.values()]
        short = lengths < 9
        for i in np.flatnonzero(short).tolist():
            self._reject_packet("truncated", self._packet_bytes(stream, offsets[i], lengths[i]))
        open_ = ~short
        safe = np.where(short, 0, offsets)  # short packets take no part below (no reads past them)
        service, subtype = stream[safe + 7], stream[safe + 8]
        codes = (service.astype(np.int64) << 8) | subtype
        by_pus = self._by_pus.get(apid)
        if by_pus is None:
            by_pus = self._by_pus[apid] = defaultdict(list)
            for definition in candidates:  # definition order kept: the first that matches wins
                by_pus[(definition.service << 8) | definition.subtype].append(definition)
        out = []
        for code in np.unique(codes[open_]).tolist():
            same = open_ & (codes == code)
            for definition in by_pus.get(code, ()):
                match = same & open_
                if definition.key is not None:
                    at = definition.key_offset
                    fits = lengths >= at + 2
                    where = np.where(match & fits, offsets + at, 0)
                    key = (stream[where].astype(np.int64) << 8) | stream[where + 1]
                    match &= fits & (key == definition.key)
                if match.any():
                    out.append((definition, members[match]))
                    open_ &= ~match
        for i in np.flatnonzero(open_).tolist():
            self._reject_packet("unknown_packet", self._packet_bytes(stream, offsets[i], lengths[i]),
                                f"APID {apid} PUS {int(service[i])},{int(subtype[i])}")
        return out

    def _reject_packet(self, reason: str, data: bytes, detail: str = "") -> None:
        self.metrics.inc("queqiao_packets_rejected_total", (self.name, reason))
        self.metrics.inc("queqiao_chain_stage_total", ("decode", reason))
        self.log.warning(f"{self.name}:{reason}", "%s packet rejected (%s) %s: %s", self.name, reason, detail,
                         bytes(data[:16]).hex())

    def _sequence_ok(self, apid: int, count: int) -> bool:
        """False for duplicates (not decoded twice); gaps are counted and the packet goes on."""
        labels = (self.name, str(apid))
        self.metrics.inc("queqiao_packets_total", labels)
        last = self._seq_last.get(apid)
        if last is None:
            self._seq_last[apid] = count
            return True
        step = (count - last) % SEQUENCE_MODULUS
        if step == 0 or step > SEQUENCE_MODULUS // 2:
            self.metrics.inc("queqiao_packet_duplicates_total", labels)
            self.metrics.inc("queqiao_chain_stage_total", ("sequence", "duplicate"))
            return False
        if step > 1:
            self.metrics.inc("queqiao_packet_gaps_total", labels, step - 1)
            self.metrics.inc("queqiao_chain_stage_total", ("sequence", "gap"))
        self._seq_last[apid] = count
        return True

    def _resolve(self, apid: int, data: bytes) -> PacketDef | None:
        candidates = self._definitions.get(apid)
        if not candidates:
            self._reject_packet("unknown_apid", data, f"APID {apid}")
            return None
        if len(candidates) == 1:
            return candidates[0]
        if len(data) < 9:
            self._reject_packet("truncated", data)
            return None
        service, subtype = data[7], data[8]
        for definition in candidates:
            if definition.service != service or definition.subtype != subtype:
                continue
            if definition.key is None:
                return definition
            at = definition.key_offset
            if len(data) >= at + 2 and ((data[at] << 8) | data[at + 1]) == definition.key:
                return definition
        self._reject_packet("unknown_packet", data, f"APID {apid} PUS {service},{subtype}")
        return None

    def _codec(self, definition: PacketDef) -> PacketCodec:
        codec = self._codecs.get(definition.name)
        if codec is None:
            codec = self._codecs[definition.name] = PacketCodec(definition.construct, name=definition.name)
            self._exports[definition.name] = exports_of(definition)
        return codec

    def _decode_group(self, definition: PacketDef, stream: np.ndarray, offsets: np.ndarray, receipt: float) -> None:
        codec = self._codec(definition)
        raw = codec.raw_many(stream, offsets=offsets)
        ok = raw.get(CRC_OK)
        if ok is not None and not ok.all():
            for _ in range(int((~ok).sum())):
                self._reject_packet("pec", b"", definition.name)
            keep = np.flatnonzero(ok)
            raw = {k: v[keep] for k, v in raw.items()}
        count = len(raw[TIME_COARSE]) if TIME_COARSE in raw else len(offsets)
        if count == 0:
            return
        self.metrics.inc("queqiao_chain_stage_total", ("decode", "ok"), count)
        onboard = None
        times = None
        if TIME_COARSE in raw:
            times = cuc_to_unix(raw[TIME_COARSE], raw.get(TIME_FINE, 0))
            onboard = float(times[-1])
            self.onboard_time = onboard
        if definition.kind == "housekeeping":
            self._export_parameters(definition, raw, None, receipt, onboard)
            if self.events.on_samples is not None:
                self.events.on_samples(self.name, definition, raw, times, receipt)
            return
        eng = codec.calibrate(raw)
        if definition.kind == "event":
            self._events(definition, eng, count, receipt, onboard)
        elif self.events.on_report is not None:
            for i in range(count):
                self.events.on_report(self.name, definition, {k: v[i] for k, v in eng.items()}, receipt)

    def _export_parameters(self, definition: PacketDef, raw: dict, eng: dict | None, receipt: float,
                           onboard: float | None) -> None:
        """Latest value of each parameter; limits see every sample.  Without ``eng`` only what is used is
        calibrated: the whole column of a limit-checked parameter, the last sample of the others."""
        metrics = self.metrics
        for export in self._exports[definition.name]:
            alarm = self._alarm(export)
            if eng is not None:
                column = eng[export.path]
            else:
                column = raw[export.path]
                column = export.parameter.calibration.to_eng_array(column if alarm is not None else column[-1:])
            state = LimitState.NOMINAL
            if alarm is not None:
                for transition in alarm.update(column):
                    self._transition(export, transition, receipt, onboard)
                state = alarm.state
            raw_last = raw[export.path][-1].item()
            value = column[-1].item()
            numeric = raw_last if export.parameter.calibration.is_state else value
            labels = (self.name, export.subsystem, export.name)
            metrics.set("queqiao_parameter_value", labels + (export.unit,), float(numeric))
            metrics.set("queqiao_parameter_limit_state", labels, int(state))
            metrics.set("queqiao_parameter_last_update_timestamp_seconds", labels, receipt)
            sample = Sample(value, raw_last, state, receipt, onboard)
            self.latest[(export.subsystem, export.name)] = sample
            if export.name == "light_time" and self.light_time_override is None:
                metrics.set("queqiao_light_time_seconds", (self.name,), float(value))
            if self.events.on_parameter is not None:
                self.events.on_parameter(self.name, export.subsystem, export.name, export.unit, sample)
        self._exported = True

    def _alarm(self, export: ParameterExport) -> ParameterAlarm | None:
        key = (export.subsystem, export.name)
        if key not in self._alarms:
            override = self._overrides.get(export.name)
            limits = export.parameter.limits
            policy = AlarmPolicy()
            if override is not None:
                warning, critical, persistence, hysteresis = override
                limits = override_limits(limits, warning, critical)
                policy = AlarmPolicy(persistence or 1, hysteresis or 0.0)
            self._alarms[key] = ParameterAlarm(limits, policy) if limits is not None else None
        return self._alarms[key]

    def _transition(self, export: ParameterExport, transition: Transition, receipt: float,
                    onboard: float | None) -> None:
        state = transition.state.name.lower()
        self.metrics.inc("queqiao_alarms_total", (self.name, export.subsystem, export.name, state))
        level = logging.WARNING if transition.state else logging.INFO
        log.log(level, "limit %s.%s.%s: %s -> %s (value %s %s)", self.name, export.subsystem, export.name,
                transition.previous.name.lower(), state, transition.value, export.unit)
        if self.events.on_event is not None:
            self.events.on_event(self.name, {
                "type": "limit", "subsystem": export.subsystem, "parameter": export.name,
                "from": transition.previous.name.lower(), "to": state, "value": transition.value,
                "unit": export.unit, "ground_time": receipt, "onboard_time": onboard,
            })

    def _events(self, definition: PacketDef, eng: dict, count: int, receipt: float, onboard: float | None) -> None:
        aux_columns = {k.split(".", 1)[1]: v for k, v in eng.items() if k.startswith("aux.")}
        for i in range(count):
            event = {"type": "onboard", "event": definition.name, "severity": definition.severity_name,
                     "subsystem": definition.subsystem, "ground_time": receipt, "onboard_time": onboard,
                     "data": {k: v[i].item() for k, v in aux_columns.items()}}
            log.log(logging.WARNING if definition.severity >= 3 else logging.INFO, "event %s: %s %s",
                    self.name, definition.name, event["data"])
            if self.events.on_event is not None:
                self.events.on_event(self.name, event)


class FrameChain:
    """Routes frames to their spacecraft's chain by transfer frame version and SCID."""

    def __init__(self, registry: Registry, metrics: Metrics, *, spacecraft: Iterable[str] | None = None,
                 events: ChainEvents | None = None,
                 limit_overrides: Mapping[str, Mapping[str, tuple]] | None = None) -> None:
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
                                    logger=self.log)
            self.chains[name] = chain
            self._routes[(chain.profile.version, sc.scid)] = chain

    def process(self, link: str, frames: list[bytes], receipt: float | None = None) -> None:
        """One batch of whole transfer frames from ``link`` (already archived by the caller)."""
        receipt = time.time() if receipt is None else receipt
        self.metrics.inc("queqiao_frames_received_total", (link,), len(frames))
        self.metrics.set("queqiao_link_last_frame_timestamp_seconds", (link,), receipt)
        routed: dict[str, list[bytes]] = defaultdict(list)
        for frame in frames:
            if len(frame) < 6:
                self._reject(link, "truncated", f"{len(frame)} octets")
                continue
            version = frame[0] >> 6
            if version == 0:
                scid = ((frame[0] & 0x3F) << 4) | (frame[1] >> 4)
            elif version == 1:
                scid = ((frame[0] & 0x3F) << 2) | (frame[1] >> 6)
            else:
                self._reject(link, "version", f"transfer frame version {version}")
                continue
            chain = self._routes.get((version, scid))
            if chain is None:
                self._reject(link, "unknown_spacecraft", f"version {version} SCID {scid}")
                continue
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

    def _reject(self, link: str, reason: str, detail: str) -> None:
        self.metrics.inc("queqiao_frames_rejected_total", (link, reason))
        self.metrics.inc("queqiao_chain_stage_total", ("route", reason))
        self.log.warning(f"{link}:{reason}", "link %s: frame rejected (%s): %s", link, reason, detail)
