"""CCSDS 133.0-B-2 Space Packet: primary header, idle packets, sequence flags.

Primary header, 6 octets, MSB first:
version 3 | type 1 (0 TM, 1 TC) | secondary header flag 1 | APID 11 |
sequence flags 2 | sequence count (or packet name) 14 | packet data length 16
(= octets in the packet data field - 1).
"""
from __future__ import annotations

import struct as _struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import construct as cs

from protocols.errors import ProtocolError, build_with, parse_with, require

PRIMARY_HEADER_LENGTH = 6
#: APID reserved for idle packets (all ones, 133.0-B-2 4.1.3.3.4.4).
IDLE_APID = 0x7FF
MAX_APID = 0x7FF
MAX_SEQUENCE_COUNT = 0x3FFF
#: Largest packet the 16-bit length field allows: 6 + 65536.
MAX_PACKET_LENGTH = PRIMARY_HEADER_LENGTH + 0x10000


class PacketType(IntEnum):
    TM = 0
    TC = 1


class SequenceFlags(IntEnum):
    CONTINUATION = 0b00
    FIRST = 0b01
    LAST = 0b10
    UNSEGMENTED = 0b11


#: The primary header as plain integers (the fast path derives its table from this).
PrimaryHeader = cs.BitStruct(
    "version" / cs.BitsInteger(3),
    "type" / cs.BitsInteger(1),
    "secondary_header_flag" / cs.BitsInteger(1),
    "apid" / cs.BitsInteger(11),
    "sequence_flags" / cs.BitsInteger(2),
    "sequence_count" / cs.BitsInteger(14),
    "data_length" / cs.BitsInteger(16),
)


def packet_length(data_length_field: int) -> int:
    """Total packet octets from the packet data length field."""
    return data_length_field + 1 + PRIMARY_HEADER_LENGTH


def fixed_primary_header(apid: int, packet_type: PacketType, secondary_header: bool, total_length: int) -> cs.Construct:
    """Primary header of a fixed-size packet definition.

    Version, type, secondary header flag, APID and data length are filled in on
    build (``Default``/``Rebuild``) and still parsed as they are on the wire,
    so a definition never has to be told its own APID twice.
    """
    if not 0 <= apid <= MAX_APID:
        raise ValueError(f"APID {apid} outside 0..{MAX_APID}")
    if total_length < PRIMARY_HEADER_LENGTH + 1:
        raise ValueError(f"a space packet has at least one data octet; total length {total_length}")
    return cs.BitStruct(
        "version" / cs.Default(cs.BitsInteger(3), 0),
        "type" / cs.Default(cs.BitsInteger(1), int(packet_type)),
        "secondary_header_flag" / cs.Default(cs.BitsInteger(1), int(secondary_header)),
        "apid" / cs.Default(cs.BitsInteger(11), apid),
        "sequence_flags" / cs.Default(cs.BitsInteger(2), int(SequenceFlags.UNSEGMENTED)),
        "sequence_count" / cs.Default(cs.BitsInteger(14), 0),
        "data_length" / cs.Default(cs.BitsInteger(16), total_length - PRIMARY_HEADER_LENGTH - 1),
    )


# --------------------------------------------------------------------------- generic packets

_HEADER = _struct.Struct(">HHH")
#: Sequence counts wrap at 2^14.
SEQUENCE_COUNT_MODULUS = MAX_SEQUENCE_COUNT + 1
#: The smallest space packet: header plus one data octet.
MIN_PACKET_LENGTH = PRIMARY_HEADER_LENGTH + 1

#: A generic packet: primary header and a data field sized by the header's data length.
#: Build with ``{"primary": {...}, "data": b"..."}``; the data length is recomputed.
SpacePacketStruct = cs.Struct(
    "primary" / cs.BitStruct(
        "version" / cs.Default(cs.BitsInteger(3), 0),
        "type" / cs.Default(cs.BitsInteger(1), 0),
        "secondary_header_flag" / cs.Default(cs.BitsInteger(1), 0),
        "apid" / cs.BitsInteger(11),
        "sequence_flags" / cs.Default(cs.BitsInteger(2), int(SequenceFlags.UNSEGMENTED)),
        "sequence_count" / cs.Default(cs.BitsInteger(14), 0),
        "data_length" / cs.Rebuild(cs.BitsInteger(16), lambda ctx: len(ctx._.data) - 1),
    ),
    "data" / cs.Bytes(lambda ctx: ctx.primary.data_length + 1),
)


@dataclass(frozen=True, slots=True)
class SpacePacket:
    """One space packet as plain values; ``data`` is the whole packet data field
    (secondary header, user data and any error control, as on the wire)."""

    apid: int
    data: bytes
    sequence_count: int = 0
    type: PacketType = PacketType.TM
    secondary_header_flag: bool = False
    sequence_flags: SequenceFlags = SequenceFlags.UNSEGMENTED
    version: int = 0

    @property
    def data_length(self) -> int:
        """The packet data length field (data octets - 1)."""
        return len(self.data) - 1

    @property
    def length(self) -> int:
        return PRIMARY_HEADER_LENGTH + len(self.data)

    @property
    def is_idle(self) -> bool:
        return self.apid == IDLE_APID

    def build(self) -> bytes:
        return build_space_packet(
            self.apid, self.data, sequence_count=self.sequence_count, packet_type=self.type,
            secondary_header_flag=self.secondary_header_flag, sequence_flags=self.sequence_flags,
            version=self.version,
        )

    @classmethod
    def parse(cls, buffer, offset: int = 0) -> SpacePacket:
        return parse_space_packet(buffer, offset)


def pack_primary_header(apid: int, data_length: int, *, sequence_count: int = 0,
                        packet_type: int = PacketType.TM, secondary_header_flag: bool = False,
                        sequence_flags: int = SequenceFlags.UNSEGMENTED, version: int = 0) -> bytes:
    """The 6-octet primary header (``data_length`` is the field value: data octets - 1)."""
    if not 0 <= apid <= MAX_APID:
        raise ProtocolError("space packet", f"APID {apid} outside 0..{MAX_APID}", field="primary.apid")
    if not 0 <= sequence_count <= MAX_SEQUENCE_COUNT:
        raise ProtocolError("space packet", f"sequence count {sequence_count} outside 0..{MAX_SEQUENCE_COUNT}",
                            field="primary.sequence_count")
    if not 0 <= data_length <= 0xFFFF:
        raise ProtocolError("space packet", f"packet data field of {data_length + 1} octets (1..65536 allowed)",
                            field="primary.data_length")
    if not 0 <= version <= 7 or int(packet_type) not in (0, 1) or not 0 <= int(sequence_flags) <= 3:
        raise ProtocolError("space packet", "version, type or sequence flags out of range", field="primary")
    return _HEADER.pack(
        (version << 13) | (int(packet_type) << 12) | (int(bool(secondary_header_flag)) << 11) | apid,
        (int(sequence_flags) << 14) | sequence_count,
        data_length,
    )


def unpack_primary_header(buffer, offset: int = 0) -> tuple[int, int, int, int, int, int, int]:
    """(version, type, secondary_header_flag, apid, sequence_flags, sequence_count, data_length)."""
    require("space packet primary header", len(buffer), offset, PRIMARY_HEADER_LENGTH)
    word0, word1, length = _HEADER.unpack_from(buffer, offset)
    return word0 >> 13, (word0 >> 12) & 1, (word0 >> 11) & 1, word0 & 0x7FF, word1 >> 14, word1 & 0x3FFF, length


def build_space_packet(apid: int, data: bytes, *, sequence_count: int = 0, packet_type: int = PacketType.TM,
                       secondary_header_flag: bool = False, sequence_flags: int = SequenceFlags.UNSEGMENTED,
                       version: int = 0) -> bytes:
    """Header + ``data`` (the whole packet data field, 1..65536 octets)."""
    return pack_primary_header(apid, len(data) - 1, sequence_count=sequence_count, packet_type=packet_type,
                               secondary_header_flag=secondary_header_flag, sequence_flags=sequence_flags,
                               version=version) + bytes(data)


def parse_space_packet(buffer, offset: int = 0) -> SpacePacket:
    """The packet starting at ``offset``; :class:`TruncatedError` if the buffer ends first."""
    version, ptype, sec, apid, flags, count, length = unpack_primary_header(buffer, offset)
    if version != 0:
        raise ProtocolError("space packet", f"version {version}, expected 0", field="primary.version", offset=offset)
    require("space packet", len(buffer), offset, packet_length(length), field="data")
    start = offset + PRIMARY_HEADER_LENGTH
    return SpacePacket(apid, bytes(buffer[start:start + length + 1]), count, PacketType(ptype), bool(sec),
                       SequenceFlags(flags), version)


def iter_packets(buffer, offset: int = 0) -> Iterator[tuple[int, SpacePacket]]:
    """(offset, packet) for back-to-back packets; raises on the first bad or truncated one."""
    end = len(buffer)
    while offset < end:
        packet = parse_space_packet(buffer, offset)
        yield offset, packet
        offset += packet.length


def packet_struct_parse(buffer, offset: int = 0):
    """Parse with :data:`SpacePacketStruct` (construct containers), errors as ProtocolError."""
    return parse_with("space packet", SpacePacketStruct, buffer, offset=offset)


def packet_struct_build(obj) -> bytes:
    return build_with("space packet", SpacePacketStruct, obj)


# --------------------------------------------------------------------------- idle packets

def idle_packet(length: int, *, sequence_count: int = 0, fill: int = 0x55) -> bytes:
    """An idle packet (APID 0x7FF) of ``length`` total octets (>= 7): ``07 FF C0 00 LL LL`` + fill.

    The idle data pattern is mission-defined (133.0-B-2 4.2.2.4.1); 0x55 is ours.
    """
    if length < MIN_PACKET_LENGTH:
        raise ProtocolError("idle packet", f"an idle packet has at least {MIN_PACKET_LENGTH} octets, not {length}",
                            field="primary.data_length")
    return pack_primary_header(IDLE_APID, length - PRIMARY_HEADER_LENGTH - 1, sequence_count=sequence_count) + bytes(
        [fill]) * (length - PRIMARY_HEADER_LENGTH)


def is_idle(packet: bytes | SpacePacket) -> bool:
    if isinstance(packet, SpacePacket):
        return packet.is_idle
    return len(packet) >= 2 and ((packet[0] << 8) | packet[1]) & 0x7FF == IDLE_APID


# --------------------------------------------------------------------------- segmentation

def segment(apid: int, payload: bytes, max_data_length: int, *, first_sequence_count: int = 0,
            packet_type: int = PacketType.TM, secondary_header_flag: bool = False) -> list[bytes]:
    """Split ``payload`` into packets of at most ``max_data_length`` data octets.

    One packet that fits is UNSEGMENTED; otherwise FIRST, CONTINUATION..., LAST,
    with consecutive sequence counts (wrapping at 2^14).
    """
    if not 1 <= max_data_length <= 0x10000:
        raise ValueError(f"max_data_length {max_data_length} outside 1..65536")
    if not payload:
        raise ValueError("a space packet carries at least one data octet")
    chunks = [payload[i:i + max_data_length] for i in range(0, len(payload), max_data_length)]
    packets = []
    for index, chunk in enumerate(chunks):
        if len(chunks) == 1:
            flags = SequenceFlags.UNSEGMENTED
        elif index == 0:
            flags = SequenceFlags.FIRST
        elif index == len(chunks) - 1:
            flags = SequenceFlags.LAST
        else:
            flags = SequenceFlags.CONTINUATION
        packets.append(build_space_packet(
            apid, chunk, sequence_count=(first_sequence_count + index) % SEQUENCE_COUNT_MODULUS,
            packet_type=packet_type, secondary_header_flag=secondary_header_flag, sequence_flags=flags))
    return packets


@dataclass(slots=True)
class ReassemblyEvent:
    """Something the reassembler had to discard: ``kind`` is "gap" (sequence count jump
    inside a segmented group), "orphan" (CONTINUATION/LAST without FIRST) or
    "interrupted" (FIRST or UNSEGMENTED while a group was open)."""

    kind: str
    apid: int
    sequence_count: int
    dropped_octets: int


@dataclass(slots=True)
class Reassembler:
    """Rebuilds segmented user data per APID; never returns an incomplete group."""

    _open: dict[int, tuple[int, list[bytes]]] = field(default_factory=dict)  # apid -> (last count, parts)
    events: list[ReassemblyEvent] = field(default_factory=list)

    def feed(self, packets: Iterable[SpacePacket]) -> list[tuple[int, bytes]]:
        """(apid, user data) for every group completed by ``packets``."""
        done: list[tuple[int, bytes]] = []
        for p in packets:
            if p.is_idle:
                continue
            state = self._open.get(p.apid)
            if p.sequence_flags in (SequenceFlags.FIRST, SequenceFlags.UNSEGMENTED):
                if state is not None:
                    self.events.append(ReassemblyEvent("interrupted", p.apid, p.sequence_count,
                                                       sum(map(len, state[1]))))
                    del self._open[p.apid]
                if p.sequence_flags == SequenceFlags.UNSEGMENTED:
                    done.append((p.apid, p.data))
                else:
                    self._open[p.apid] = (p.sequence_count, [p.data])
                continue
            if state is None:
                self.events.append(ReassemblyEvent("orphan", p.apid, p.sequence_count, len(p.data)))
                continue
            last, parts = state
            if p.sequence_count != (last + 1) % SEQUENCE_COUNT_MODULUS:
                self.events.append(ReassemblyEvent("gap", p.apid, p.sequence_count,
                                                   sum(map(len, parts)) + len(p.data)))
                del self._open[p.apid]
                continue
            parts.append(p.data)
            if p.sequence_flags == SequenceFlags.LAST:
                del self._open[p.apid]
                done.append((p.apid, b"".join(parts)))
            else:
                self._open[p.apid] = (p.sequence_count, parts)
        return done


def reassemble(packets: Iterable[SpacePacket]) -> list[tuple[int, bytes]]:
    """One-shot form of :class:`Reassembler` (incomplete groups are dropped)."""
    return Reassembler().feed(packets)
