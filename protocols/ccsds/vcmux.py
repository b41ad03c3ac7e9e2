"""Virtual channel multiplexing of space packets into TM/AOS frames, and the demultiplexer.

Mux (:class:`FrameMux`): packets queued per virtual channel are cut into the fixed
data field (TM) or M_PDU packet zone (AOS) of the profile's frames; packets span
frames freely and the first header pointer names the first packet that starts in
each frame (0x7FF when none does).  A flush completes a partly filled frame with an
idle packet (APID 0x7FF); when nothing at all is queued, :meth:`FrameMux.next_frame`
sends an idle frame (FHP 0x7FE, "only idle data") on the idle VC.  Master channel
(TM only) and virtual channel counters wrap at their field width.

Demux (:class:`FrameDemux`): frames in, packets out, per (SCID, VCID).  A frame with
a bad FECF is dropped whole; a jump in a VC frame count drops the packet in progress
on that VC and the demux waits for the next first header pointer to resynchronise;
a packet whose length disagrees with the next first header pointer is dropped.  A
packet is only ever emitted whole, from consecutive good frames.  Everything dropped
is reported as an :class:`Anomaly` and counted in :attr:`FrameDemux.counters`.
Undetectable by design: the loss of an exact multiple of the VC count modulus
(256 TM frames, 2^24 AOS frames) in a row.
"""
from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from cython_ext import crc as _crc
from protocols.ccsds.clcw import Clcw
from protocols.ccsds.spacepacket import (
    IDLE_APID,
    MIN_PACKET_LENGTH,
    PRIMARY_HEADER_LENGTH,
    SEQUENCE_COUNT_MODULUS,
    idle_packet,
)
from protocols.ccsds.tmframe import (
    FHP_IDLE_DATA_ONLY,
    FHP_NO_PACKET_START,
    FrameProfile,
    aos_fhec,
    decode_headers,
    fecf_ok_many,
    pack_aos_header,
    pack_tm_header,
)
from protocols.codec.stream import BAD_HEADER as SPLIT_BAD_HEADER
from protocols.codec.stream import split_packets
from protocols.errors import ProtocolError

# --------------------------------------------------------------------------- mux


@dataclass(slots=True)
class _TxChannel:
    buffer: bytearray = field(default_factory=bytearray)
    base: int = 0  # stream position of buffer[0]
    starts: deque = field(default_factory=deque)  # stream positions where packets start
    real_end: int = 0  # stream position just after the last queued real (non-idle) packet
    vc_count: int = 0


class FrameMux:
    """Packs packets into fixed-length frames of one master channel (one SCID).

    ``ocf``: the OCF content (a :class:`Clcw` or raw 32-bit int) put in every frame
    when the profile has an OCF; update it at any time (``mux.ocf = clcw``).  Likewise
    ``insert_zone``, the AOS insert zone of the next frames (zeros to begin with).
    """

    def __init__(self, profile: FrameProfile, scid: int, *, idle_vcid: int | None = None,
                 ocf: Clcw | int | None = None, secondary_header: bytes | None = None, idle_fill: int = 0x55) -> None:
        if not 0 <= scid <= profile.max_scid:
            raise ValueError(f"SCID {scid} outside 0..{profile.max_scid} for {profile.kind} frames")
        self.profile = profile
        self.scid = scid
        self.idle_vcid = profile.idle_vcid if idle_vcid is None else idle_vcid
        self.ocf = ocf if ocf is not None else Clcw()
        if secondary_header is None:
            secondary_header = bytes(max(profile.secondary_header_length - 1, 0))
        if len(secondary_header) != max(profile.secondary_header_length - 1, 0):
            raise ValueError("secondary header data does not match the profile's secondary header length")
        self.secondary_header = secondary_header
        self.idle_fill = idle_fill
        self.insert_zone = bytes(profile.insert_zone_length)
        self.mc_count = 0
        self.idle_sequence_count = 0
        self._channels: dict[int, _TxChannel] = {}
        self._order: list[int] = []  # round-robin order of VCIDs
        self._next = 0

    # ---- queueing

    def push(self, vcid: int, packet: bytes) -> None:
        """Queue one whole space packet on ``vcid``."""
        if not 0 <= vcid <= self.profile.max_vcid:
            raise ValueError(f"VCID {vcid} outside 0..{self.profile.max_vcid}")
        n = len(packet)
        if n < MIN_PACKET_LENGTH or ((packet[4] << 8) | packet[5]) + 7 != n:
            raise ProtocolError("space packet", f"{n} octets do not match the packet data length field",
                                field="primary.data_length", offset=0)
        ch = self._channels.get(vcid)
        if ch is None:
            ch = self._channels[vcid] = _TxChannel()
            self._order.append(vcid)
        position = ch.base + len(ch.buffer)
        ch.starts.append(position)
        ch.buffer += packet
        ch.real_end = position + n

    def push_many(self, vcid: int, packets: Iterable[bytes]) -> None:
        for p in packets:
            self.push(vcid, p)

    def pending(self, vcid: int | None = None) -> int:
        """Real (non-idle) octets queued and not yet framed, on one VC or all."""
        chans = self._channels.values() if vcid is None else [self._channels.get(vcid, _TxChannel())]
        return sum(max(0, ch.real_end - ch.base) for ch in chans)

    def vc_count(self, vcid: int) -> int:
        """The VC frame count the next frame on ``vcid`` will carry."""
        ch = self._channels.get(vcid)
        return ch.vc_count if ch else 0

    # ---- frames

    def next_frame(self, *, flush: bool = True) -> bytes:
        """The next frame: a full one from a VC (round robin), else with ``flush`` a partly
        filled one completed with an idle packet, else an idle frame (FHP 0x7FE)."""
        vcid = self._pick(flush)
        if vcid is None:
            return self.idle_frame()
        return self._frame_from(vcid)

    def frames(self, *, flush: bool = True, max_frames: int | None = None) -> list[bytes]:
        """Every frame the queued packets fill (and with ``flush`` the partly filled ones); no idle frames."""
        out: list[bytes] = []
        while max_frames is None or len(out) < max_frames:
            vcid = self._pick(flush)
            if vcid is None:
                break
            out.append(self._frame_from(vcid))
        return out

    def idle_frame(self) -> bytes:
        """A frame of only idle data (FHP 0x7FE) on the idle VC."""
        ch = self._channels.get(self.idle_vcid)
        if ch is None:
            ch = self._channels[self.idle_vcid] = _TxChannel()
        zone = bytes([self.idle_fill]) * self.profile.zone_length
        return self._assemble(self.idle_vcid, ch, zone, FHP_IDLE_DATA_ONLY)

    def _pick(self, flush: bool) -> int | None:
        zl = self.profile.zone_length
        n = len(self._order)
        for want_full in (True, False) if flush else (True,):
            for k in range(n):
                vcid = self._order[(self._next + k) % n]
                ch = self._channels[vcid]
                if (len(ch.buffer) >= zl) if want_full else (ch.real_end > ch.base):
                    self._next = (self._next + k + 1) % n
                    return vcid
        return None

    def _frame_from(self, vcid: int) -> bytes:
        ch = self._channels[vcid]
        zl = self.profile.zone_length
        room = zl - len(ch.buffer)
        if room > 0:
            # Complete the frame with an idle packet.  One shorter than 7 octets cannot exist, so
            # a 7-octet one is started and its tail carries over to this VC's next frame.  With a
            # single octet of room the receiver could not even read the idle APID from what this
            # frame holds, so that idle packet fills the next frame too (which is then sent).
            size = max(room, MIN_PACKET_LENGTH) if room > 1 else max(room + zl, MIN_PACKET_LENGTH)
            ch.starts.append(ch.base + len(ch.buffer))
            ch.buffer += idle_packet(size, sequence_count=self.idle_sequence_count, fill=self.idle_fill)
            self.idle_sequence_count = (self.idle_sequence_count + 1) % SEQUENCE_COUNT_MODULUS
        end = ch.base + zl
        fhp = FHP_NO_PACKET_START
        starts = ch.starts
        if starts and starts[0] < end:
            fhp = starts[0] - ch.base
            while starts and starts[0] < end:
                starts.popleft()
        zone = bytes(ch.buffer[:zl])
        del ch.buffer[:zl]
        ch.base = end
        return self._assemble(vcid, ch, zone, fhp)

    def _assemble(self, vcid: int, ch: _TxChannel, zone: bytes, fhp: int) -> bytes:
        p = self.profile
        if p.kind == "TM":
            head = pack_tm_header(self.scid, vcid, self.mc_count, ch.vc_count, fhp, ocf_flag=int(p.has_ocf),
                                  secondary_header_flag=int(bool(p.secondary_header_length)))
            if p.secondary_header_length:
                head += bytes([p.secondary_header_length - 1]) + self.secondary_header
            self.mc_count = (self.mc_count + 1) % p.count_modulus
        else:
            head = pack_aos_header(self.scid, vcid, ch.vc_count)
            if p.aos_fhec:
                head += aos_fhec(head)
            head += self.insert_zone + fhp.to_bytes(2, "big")
        ch.vc_count = (ch.vc_count + 1) % p.count_modulus
        frame = head + zone
        if p.has_ocf:
            ocf = self.ocf.to_int() if isinstance(self.ocf, Clcw) else int(self.ocf)
            frame += ocf.to_bytes(4, "big")
        if p.has_fecf:
            frame += _crc.crc16(frame).to_bytes(2, "big")
        return frame


def mux_packets(packets: Iterable[bytes], profile: FrameProfile, scid: int, vcid: int) -> list[bytes]:
    """All ``packets`` on one VC as frames (the last completed with idle fill)."""
    mux = FrameMux(profile, scid)
    mux.push_many(vcid, packets)
    return mux.frames(flush=True)


# --------------------------------------------------------------------------- demux


class Anomaly(NamedTuple):
    """Something the demultiplexer dropped or could not use.

    kind: "frame_length", "fecf", "version", "fhec", "not_packets" (TM sync flag set), "frame_gap",
    "bad_fhp", "fhp_mismatch", "bad_packet_header", "incomplete_at_end".  ``frame`` is the index of the frame
    (0 = the first frame this demux was fed); ``dropped`` counts packet octets discarded.
    """

    kind: str
    frame: int
    scid: int | None
    vcid: int | None
    dropped: int
    detail: str


class DemuxPacket(NamedTuple):
    """One whole packet: where it started (frame index, octet offset in that frame) and its octets."""

    scid: int
    vcid: int
    frame: int
    offset: int
    data: bytes


@dataclass(slots=True)
class DemuxResult:
    packets: list[DemuxPacket] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)


class PacketColumns(NamedTuple):
    """A batch's packets in place: packet ``i`` is ``stream[offsets[i]:offsets[i] + lengths[i]]``, in the
    order the demultiplexer completes them; ``anomalies`` as :class:`DemuxResult` reports them."""

    stream: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    anomalies: list[Anomaly]

    @classmethod
    def of(cls, packets: list[bytes], anomalies: list[Anomaly]) -> PacketColumns:
        """Whole packets (bytes) back to back in one stream."""
        lengths = np.fromiter(map(len, packets), dtype=np.int64, count=len(packets))
        offsets = np.zeros(len(packets), dtype=np.int64)
        if len(packets) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        return cls(np.frombuffer(b"".join(packets), dtype=np.uint8), offsets, lengths, anomalies)


@dataclass(slots=True)
class _RxChannel:
    expected: int | None = None  # next VC count
    synced: bool = False  # do we know where the next packet octet belongs
    buf: bytearray = field(default_factory=bytearray)  # packet in progress
    total: int = 0  # its total length once its header is complete (0 = not yet known)
    frame: int = 0  # where it started
    offset: int = 0


class FrameDemux:
    """Rebuilds packets from TM or AOS frames of ``profile``; feed batches, get packets and anomalies.

    ``keep_idle``: emit idle packets (APID 0x7FF) too (default: drop and count them).
    ``check_fecf``: verify the FECF when the profile has one.
    ``column_walk``: let :meth:`feed_batch` split clean batches in columns (False: always frame by frame).
    """

    def __init__(self, profile: FrameProfile, *, keep_idle: bool = False, check_fecf: bool = True,
                 column_walk: bool = True) -> None:
        self.profile = profile
        self.keep_idle = keep_idle
        self.check_fecf = check_fecf and profile.has_fecf
        self.counters: Counter[str] = Counter()
        self._channels: dict[tuple[int, int], _RxChannel] = {}
        self._index = 0  # frames seen
        self._columns = _ColumnWalk(self) if column_walk else None

    def feed_batch(self, frames: list[bytes], headers: dict[str, np.ndarray] | None = None) -> PacketColumns:
        """Like :meth:`feed` (same packets in the same order, same anomalies and counters, same state
        after), as columns.  A clean TM or AOS batch (every pointer agrees with the packet boundaries,
        no synchronisation flag, every AOS FHEC checks, no idle-only frames on a data VC) is split per
        VC in one kernel call
        per run of consecutive frames; any other batch is walked frame by frame.  ``headers``: the
        frames' :func:`decode_headers` columns when the caller has them (at least :data:`BATCH_FIELDS`)."""
        if self._columns is not None and frames:
            done = self._columns.feed(frames, headers)
            if done is not None:
                return done
        result = self.feed(frames)
        return PacketColumns.of([p.data for p in result.packets], result.anomalies)

    def feed(self, frames: Iterable[bytes]) -> DemuxResult:
        """Process frames (each exactly ``profile.frame_length`` octets)."""
        result = DemuxResult()
        fl = self.profile.frame_length
        # Packets are handed out as bytes, never views.
        batch = [frame if type(frame) is bytes else bytes(frame) for frame in frames]
        whole = [frame for frame in batch if len(frame) == fl]
        data = b"".join(whole)
        oks = self._fecf_ok(data, len(whole))
        headers = self._headers(data, len(whole))
        k = 0
        for frame in batch:
            index = self._index
            self._index += 1
            if len(frame) != fl:
                self._anomaly(result, "frame_length", index, None, None, 0,
                              f"{len(frame)} octets, the profile's frames have {fl}")
                continue
            self._frame(frame, index, oks[k], headers[k], result)
            k += 1
        return result

    def _fecf_ok(self, buffer, n: int) -> list[bool]:
        if not (self.check_fecf and n):
            return [True] * n
        return fecf_ok_many(memoryview(buffer)[:n * self.profile.frame_length], self.profile.frame_length).tolist()

    def _headers(self, buffer, n: int) -> list[tuple[int, int, int, int, int, int]]:
        """(version, scid, vcid, vc count, fhp, sync flag) of each frame, from the one header decoder."""
        p = self.profile
        if not n:
            return []
        rows = np.frombuffer(buffer, dtype=np.uint8, count=n * p.frame_length).reshape(n, p.frame_length)
        h = decode_headers(rows, p.kind, p.zone_offset if p.kind == "AOS" else None)
        sync = h["sync_flag"] if p.kind == "TM" else np.zeros(n, dtype=np.int64)
        return list(zip(h["version"].tolist(), h["scid"].tolist(), h["vcid"].tolist(), h["vc_count"].tolist(),
                        h["fhp"].tolist(), sync.tolist(), strict=True))

    def feed_buffer(self, buffer) -> DemuxResult:
        """Process back-to-back frames in one buffer; the FECFs are checked in one kernel call."""
        fl = self.profile.frame_length
        n = len(buffer) // fl
        result = DemuxResult()
        oks = self._fecf_ok(buffer, n)
        headers = self._headers(buffer, n)
        data = bytes(buffer)
        for i in range(n):
            index = self._index
            self._index += 1
            self._frame(data[i * fl:(i + 1) * fl], index, oks[i], headers[i], result)
        if len(buffer) % fl:
            index = self._index
            self._index += 1
            self._anomaly(result, "frame_length", index, None, None, 0,
                          f"{len(buffer) % fl} trailing octets are not a whole frame")
        return result

    def flush(self) -> DemuxResult:
        """End of data: report (and drop) every packet still in progress."""
        result = DemuxResult()
        # In the order the packets began (not the order the channels were first seen, which the
        # column walk and the frame-by-frame walk may differ in).
        for (scid, vcid), ch in sorted(self._channels.items(), key=lambda item: item[1].frame):
            if len(ch.buf) >= 2 and ((ch.buf[0] << 8) | ch.buf[1]) & 0x7FF == IDLE_APID:
                ch.buf = bytearray()  # the mux's idle fill may run past the last frame: nothing lost
                ch.total = 0
            if ch.buf:
                self._anomaly(result, "incomplete_at_end", ch.frame, scid, vcid, len(ch.buf),
                              "the data ended inside a packet")
                ch.buf = bytearray()
                ch.total = 0
        return result

    # ---- internals

    def _anomaly(self, result: DemuxResult, kind: str, frame: int, scid, vcid, dropped: int, detail: str) -> None:
        result.anomalies.append(Anomaly(kind, frame, scid, vcid, dropped, detail))
        self.counters[kind] += 1
        self.counters["dropped_octets"] += dropped

    def _drop_partial(self, ch: _RxChannel) -> int:
        n = len(ch.buf)
        if n:
            ch.buf = bytearray()
        ch.total = 0
        return n

    def _frame(self, frame: bytes, index: int, crc_ok: bool, header: tuple[int, int, int, int, int, int],
               result: DemuxResult) -> None:
        p = self.profile
        counters = self.counters
        counters["frames"] += 1
        if not crc_ok:
            self._anomaly(result, "fecf", index, None, None, 0, "FECF mismatch: frame dropped")
            return
        version, scid, vcid, vc, fhp, sync_flag = header
        if version != p.version:
            self._anomaly(result, "version", index, None, None, 0,
                          f"transfer frame version {version}, the profile's {p.kind} frames have {p.version}")
            return
        if p.aos_fhec and frame[6:8] != aos_fhec(frame):
            # Without a FECF this is the only check on the header: do not trust its VCID or count.
            self._anomaly(result, "fhec", index, None, None, 0, "AOS frame header error control does not check")
            return
        if sync_flag:
            # Synchronisation flag 1: the data field is not packets (VCA_SDU), the FHP is undefined.
            self._anomaly(result, "not_packets", index, scid, vcid, 0,
                          "synchronisation flag set: the data field does not carry packets")
            return
        key = (scid, vcid)
        ch = self._channels.get(key)
        if ch is None:
            ch = self._channels[key] = _RxChannel()
        if ch.expected is not None and vc != ch.expected:
            lost = (vc - ch.expected) % p.count_modulus
            counters["lost_frames"] += lost
            self._anomaly(result, "frame_gap", index, scid, vcid, self._drop_partial(ch),
                          f"{lost} frame(s) lost: VC count {vc}, expected {ch.expected}")
            ch.synced = False
        ch.expected = (vc + 1) % p.count_modulus
        if fhp == FHP_IDLE_DATA_ONLY:
            counters["idle_frames"] += 1
            return
        zl = p.zone_length
        zo = p.zone_offset
        if fhp != FHP_NO_PACKET_START and fhp >= zl:
            self._anomaly(result, "bad_fhp", index, scid, vcid, self._drop_partial(ch),
                          f"first header pointer {fhp} beyond the {zl}-octet data field")
            ch.synced = False
            return
        zone = frame[zo:zo + zl]
        pos = 0
        if not ch.synced:
            if fhp == FHP_NO_PACKET_START:
                counters["skipped_octets"] += zl
                return
            counters["skipped_octets"] += fhp
            ch.synced = True
            pos = fhp
        elif ch.buf:
            pos = self._continue(ch, zone, fhp, index, scid, vcid, result)
            if pos < 0:
                return
        elif fhp != FHP_NO_PACKET_START and fhp != 0:
            # A packet ended exactly at the previous frame's end, so one must start at 0.
            self._anomaly(result, "fhp_mismatch", index, scid, vcid, 0,
                          f"first header pointer {fhp}, a packet should start at 0")
            counters["skipped_octets"] += fhp
            pos = fhp
        elif fhp == FHP_NO_PACKET_START:
            self._anomaly(result, "fhp_mismatch", index, scid, vcid, 0,
                          "no packet starts in this frame, but none is in progress")
            ch.synced = False
            counters["skipped_octets"] += zl
            return
        self._extract(ch, zone, pos, index, scid, vcid, result)

    def _continue(self, ch: _RxChannel, zone: bytes, fhp: int, index: int, scid: int, vcid: int,
                  result: DemuxResult) -> int:
        """Complete the packet in progress; the new position, or -1 when the frame is used up."""
        zl = len(zone)
        limit = zl if fhp == FHP_NO_PACKET_START else fhp
        pos = 0
        if not ch.total:  # header still incomplete
            need = PRIMARY_HEADER_LENGTH - len(ch.buf)
            if need > limit:
                if fhp == FHP_NO_PACKET_START:
                    ch.buf += zone
                    return -1
                return self._mismatch(ch, fhp, index, scid, vcid, result, "a packet header was cut short")
            ch.buf += zone[:need]
            pos = need
            if ch.buf[0] >> 5:
                version = ch.buf[0] >> 5
                self._anomaly(result, "bad_packet_header", index, scid, vcid, self._drop_partial(ch),
                              f"packet version {version} is not 0")
                return self._resync(ch, fhp)
            ch.total = ((ch.buf[4] << 8) | ch.buf[5]) + 7
        end = pos + ch.total - len(ch.buf)
        if fhp == FHP_NO_PACKET_START:
            if end < zl:
                return self._mismatch(ch, fhp, index, scid, vcid, result,
                                      f"the packet ends at octet {end} but no packet starts in this frame")
            if end > zl:
                ch.buf += zone[pos:]
                return -1
        elif end != fhp:
            return self._mismatch(ch, fhp, index, scid, vcid, result,
                                  f"the packet in progress ends at octet {end}, the next starts at {fhp}")
        ch.buf += zone[pos:end]
        self._emit(ch, bytes(ch.buf), ch.frame, ch.offset, scid, vcid, result)
        ch.buf = bytearray()
        ch.total = 0
        return end if end < zl else -1

    def _mismatch(self, ch, fhp, index, scid, vcid, result, detail) -> int:
        self._anomaly(result, "fhp_mismatch", index, scid, vcid, self._drop_partial(ch), detail)
        return self._resync(ch, fhp)

    def _resync(self, ch: _RxChannel, fhp: int) -> int:
        if fhp == FHP_NO_PACKET_START:
            ch.synced = False
            return -1
        return fhp

    def _extract(self, ch: _RxChannel, zone: bytes, pos: int, index: int, scid: int, vcid: int,
                 result: DemuxResult) -> None:
        zl = len(zone)
        zo = self.profile.zone_offset
        while pos < zl:
            if zl - pos < PRIMARY_HEADER_LENGTH:
                ch.buf = bytearray(zone[pos:])
                ch.total = 0
                ch.frame, ch.offset = index, zo + pos
                return
            if zone[pos] >> 5:
                self._anomaly(result, "bad_packet_header", index, scid, vcid, zl - pos,
                              f"packet version {zone[pos] >> 5} at data field octet {pos}")
                ch.synced = False
                return
            end = pos + ((zone[pos + 4] << 8) | zone[pos + 5]) + 7
            if end <= zl:
                self._emit(ch, zone[pos:end], index, zo + pos, scid, vcid, result)
                pos = end
            else:
                ch.buf = bytearray(zone[pos:])
                ch.total = end - pos
                ch.frame, ch.offset = index, zo + pos
                return

    def _emit(self, ch, data: bytes, frame: int, offset: int, scid: int, vcid: int, result: DemuxResult) -> None:
        if ((data[0] << 8) | data[1]) & 0x7FF == IDLE_APID:
            self.counters["idle_packets"] += 1
            if not self.keep_idle:
                return
        self.counters["packets"] += 1
        result.packets.append(DemuxPacket(scid, vcid, frame, offset, data))


#: Header fields the column walk reads (what :meth:`FrameDemux.feed_batch` needs in ``headers``).
BATCH_FIELDS = ("version", "scid", "vcid", "vc_count", "fhp", "sync_flag")


class _ColumnWalk:
    """:meth:`FrameDemux.feed_batch` for clean TM and AOS batches: packets found per VC in columns.

    Per virtual channel the frames are cut at frame count gaps (where the demultiplexer drops the
    packet in progress and waits for a first header pointer), and each run of consecutive frames
    is split in one kernel pass over its data fields, with the channel's packet in progress in
    front.  The batch qualifies when no frame has the synchronisation flag (TM) or a header error
    control that does not check (AOS with an FHEC), no pointer is past the data field, no data VC
    carries idle-only frames, and every first header pointer agrees with
    the packet boundaries of the walk: then the frame-by-frame walk would report nothing but the
    gaps and emit exactly these packets in the same order, and the channel state and counters are
    advanced as it would have left them.  Otherwise nothing is changed (``feed`` returns None).
    """

    def __init__(self, demux: FrameDemux) -> None:
        self.demux = demux

    def feed(self, frames: list[bytes], h: dict[str, np.ndarray] | None) -> PacketColumns | None:
        demux, p = self.demux, self.demux.profile
        fl = p.frame_length
        n = len(frames)
        if any(len(f) != fl for f in frames):
            return None
        data = b"".join(frames)
        rows = np.frombuffer(data, dtype=np.uint8).reshape(n, fl)
        if demux.check_fecf and not all(demux._fecf_ok(data, n)):
            return None
        if p.kind == "AOS" and p.aos_fhec and any(f[6:8] != aos_fhec(f) for f in frames):
            return None
        if h is None:
            h = decode_headers(rows, p.kind, p.zone_offset if p.kind == "AOS" else None, fields=BATCH_FIELDS)
        scids = h["scid"]
        # AOS frames have no synchronisation flag: their M_PDU always carries packets.
        if (h["version"] != p.version).any() or ("sync_flag" in h and h["sync_flag"].any()) \
                or (scids != scids[0]).any():
            return None
        fhps, counts, vcids = h["fhp"], h["vc_count"], h["vcid"]
        if ((fhps >= p.zone_length) & (fhps != FHP_NO_PACKET_START) & (fhps != FHP_IDLE_DATA_ONLY)).any():
            return None
        scid = int(scids[0])
        plans = []
        one = int(vcids[0]) if (vcids == vcids[0]).all() else None
        for vcid in [one] if one is not None else np.unique(vcids).tolist():
            index = np.arange(n) if one is not None else np.flatnonzero(vcids == vcid)
            plan = self._plan(rows, scid, vcid, index, counts, fhps)
            if plan is None:
                return None
            plans.append(plan)
        return self._commit(scid, n, counts, plans)

    def _plan(self, rows, scid: int, vcid: int, index: np.ndarray, counts: np.ndarray, fhps: np.ndarray):
        """One VC's share of the batch: (vcid, index, gaps [(position, lost, dropped)], segments or None)."""
        p = self.demux.profile
        modulus = p.count_modulus
        ch = self.demux._channels.get((scid, vcid))
        if ch is not None and not ch.synced and ch.buf:
            return None
        vc = counts[index]
        previous = np.empty_like(vc)
        previous[1:] = (vc[:-1] + 1) % modulus
        previous[0] = vc[0] if ch is None or ch.expected is None else ch.expected
        gap_at = np.flatnonzero(vc != previous).tolist()
        lost = ((vc - previous) % modulus).tolist()
        fhp = fhps[index]
        idle = fhp == FHP_IDLE_DATA_ONLY
        held = len(ch.buf) if ch is not None else 0
        if idle.all():
            # A gap still drops the packet in progress, even before frames of only idle data.
            gaps = [(g, lost[g], held if k == 0 else 0) for k, g in enumerate(gap_at)]
            return vcid, index, gaps, None
        if idle.any():
            return None
        synced = ch is not None and ch.synced
        prefix = bytes(ch.buf) if ch is not None and synced else b""
        cuts = [0, *gap_at, index.size]
        gaps = []
        segments = []
        for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
            if start == stop:
                continue
            if start in gap_at:  # the demultiplexer drops the packet in progress and resynchronises
                gaps.append((start, lost[start], len(prefix)))
                synced, prefix = False, b""
            walked = self._walk(rows, index[start:stop], fhp[start:stop], synced, prefix)
            if walked is None:
                return None
            segments.append((start, stop, walked))
            synced = walked[5]
            prefix = walked[0][walked[4]:].tobytes() if walked[4] is not None else b""
        return vcid, index, gaps, segments

    def _walk(self, rows: np.ndarray, index: np.ndarray, fhp: np.ndarray, synced: bool, prefix: bytes):
        """Packets of consecutive frames of one VC, or None when a pointer or header does not check.

        (stream, offsets, lengths, frame completing each packet, tail start or None, synced, skipped octets).
        """
        p = self.demux.profile
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
        split = split_packets(stream, start=start)
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
            at = np.flatnonzero(np.concatenate(([True], frame_of[1:] != frame_of[:-1])))
            head = frame_of[at]
            expected[head] = starts[at] - head * zl
        if (expected[first:] != fhp[first:]).any():
            return None
        completes = (offs + lens - 1 - npre) // zl
        return stream, offs, lens, completes, tail, True, skipped

    def _commit(self, scid: int, n: int, counts: np.ndarray, plans: list) -> PacketColumns:
        """Every channel checks: advance the demultiplexer's state and gather the packets."""
        demux, p = self.demux, self.demux.profile
        zo, zl = p.zone_offset, p.zone_length
        base = demux._index
        demux._index += n
        counters = demux.counters
        counters["frames"] += n
        anomalies: list[Anomaly] = []
        pieces, offsets, lengths, done = [], [], [], []
        at = 0
        for vcid, index, gaps, segments in plans:
            ch = demux._channels.get((scid, vcid))
            if ch is None:
                ch = demux._channels[(scid, vcid)] = _RxChannel()
            for position, lost, dropped in gaps:
                counters["lost_frames"] += lost
                frame = base + int(index[position])
                count = int(counts[index[position]])
                expected = (count - lost) % p.count_modulus
                anomalies.append(Anomaly("frame_gap", frame, scid, vcid, dropped,
                                         f"{lost} frame(s) lost: VC count {count}, expected {expected}"))
                counters["frame_gap"] += 1
                counters["dropped_octets"] += dropped
            ch.expected = (int(counts[index[-1]]) + 1) % p.count_modulus
            if segments is None:
                counters["idle_frames"] += index.size
                if gaps:
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
                    if tail >= prefix:  # else the packet in progress began in an earlier batch: still there
                        frame = (tail - prefix) // zl
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
        anomalies.sort(key=lambda a: a.frame)
        if not pieces:
            return PacketColumns(np.empty(0, np.uint8), np.empty(0, np.int64), np.empty(0, np.int64), anomalies)
        if len(pieces) == 1:
            return PacketColumns(pieces[0], offsets[0], lengths[0], anomalies)
        # The frame-by-frame walk emits a packet with the frame that completes it: same order here.
        order = np.argsort(np.concatenate(done), kind="stable")
        return PacketColumns(np.concatenate(pieces), np.concatenate(offsets)[order], np.concatenate(lengths)[order],
                             anomalies)


def demux_frames(frames: Iterable[bytes], profile: FrameProfile) -> DemuxResult:
    """One-shot demultiplexing (packets still in progress at the end are reported)."""
    demux = FrameDemux(profile)
    result = demux.feed(frames)
    tail = demux.flush()
    result.anomalies += tail.anomalies
    return result
