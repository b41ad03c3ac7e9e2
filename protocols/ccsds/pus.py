"""ECSS-E-ST-70-41C (PUS-C) TM and TC secondary headers, packet error control, packet factories.

TM secondary header: PUS version 4 (=2) | time reference status 4 | service 8 |
subtype 8 | message type counter 16 | destination ID 16 | time (mission-defined;
Queqiao uses CUC 4+2 octets without P-field).
TC secondary header: PUS version 4 (=2) | acknowledgement flags 4 | service 8 |
subtype 8 | source ID 16.
Packet error control: CRC-16/CCITT-FALSE over the whole packet before it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import construct as cs

from cython_ext import crc as _crc
from protocols.ccsds.spacepacket import (
    PRIMARY_HEADER_LENGTH,
    PacketType,
    SequenceFlags,
    fixed_primary_header,
    pack_primary_header,
    packet_length,
    unpack_primary_header,
)
from protocols.ccsds.time import cuc_field
from protocols.errors import ChecksumError, ProtocolError, parse_with, require

PUS_VERSION_C = 2
PEC_LENGTH = 2
#: Acknowledgement flags: acceptance, start, progress, completion (all requested).
ACK_ALL = 0b1111


def tm_secondary_header(time: cs.Construct | None = None) -> cs.Struct:
    """PUS-C TM secondary header with the given absolute time field (default CUC 4+2)."""
    return cs.Struct(
        "flags" / cs.BitStruct(
            "pus_version" / cs.Default(cs.BitsInteger(4), PUS_VERSION_C),
            "time_reference_status" / cs.Default(cs.BitsInteger(4), 0),
        ),
        "service" / cs.Int8ub,
        "subtype" / cs.Int8ub,
        "message_counter" / cs.Default(cs.Int16ub, 0),
        "destination_id" / cs.Default(cs.Int16ub, 0),
        "time" / (time if time is not None else cuc_field()),
    )


TcSecondaryHeader = cs.Struct(
    "flags" / cs.BitStruct(
        "pus_version" / cs.Default(cs.BitsInteger(4), PUS_VERSION_C),
        "ack_flags" / cs.Default(cs.BitsInteger(4), ACK_ALL),
    ),
    "service" / cs.Int8ub,
    "subtype" / cs.Int8ub,
    "source_id" / cs.Default(cs.Int16ub, 0),
)

TC_SECONDARY_HEADER_LENGTH = TcSecondaryHeader.sizeof()


class PacketErrorControl(cs.Construct):
    """CRC-16 trailer over every octet of the packet before it.

    Lives as the last field of a packet Struct whose first field is ``primary``:
    the packet's start is found from the primary header's data length, so the
    field needs no copy of the packet.  Parse raises :class:`ChecksumError` on
    mismatch (with the packet's byte offset); build computes it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flagbuildnone = True

    def _sizeof(self, context, path):
        return PEC_LENGTH

    @staticmethod
    def _covered(stream, context, path) -> tuple[int, bytes]:
        end = cs.stream_tell(stream, path)
        total = context.primary.data_length + 1 + PRIMARY_HEADER_LENGTH
        start = end - (total - PEC_LENGTH)
        if start < 0:
            raise ProtocolError("space packet", "packet error control before a whole packet", field="pec", offset=end)
        cs.stream_seek(stream, start, 0, path)
        covered = cs.stream_read(stream, end - start, path)
        return start, covered

    def _parse(self, stream, context, path):
        start, covered = self._covered(stream, context, path)
        received = int.from_bytes(cs.stream_read(stream, PEC_LENGTH, path), "big")
        expected = _crc.crc16(covered)
        if received != expected:
            raise ChecksumError(
                "space packet", f"packet error control 0x{received:04X}, computed 0x{expected:04X}",
                field="pec", offset=start,
            )
        return received

    def _build(self, obj, stream, context, path):
        _, covered = self._covered(stream, context, path)
        value = _crc.crc16(covered)
        cs.stream_write(stream, value.to_bytes(PEC_LENGTH, "big"), PEC_LENGTH, path)
        return value


def _data_size(fields: Sequence[cs.Construct]) -> int:
    return sum(f.sizeof() for f in fields)


def _with_service(header: cs.Struct, service: int, subtype: int) -> cs.Struct:
    """A secondary header whose service and subtype default to this packet's."""
    defaults = {"service": service, "subtype": subtype}
    return cs.Struct(*[(sc.name / cs.Default(cs.Int8ub, defaults[sc.name])) if sc.name in defaults else sc
                       for sc in header.subcons])


def _packet(packet_type: PacketType, apid: int, secondary: cs.Struct, fields: Sequence[cs.Construct]) -> cs.Struct:
    total = PRIMARY_HEADER_LENGTH + secondary.sizeof() + _data_size(fields) + PEC_LENGTH
    return cs.Struct(
        "primary" / fixed_primary_header(apid, packet_type, True, total),
        "secondary" / secondary,
        *fields,
        "pec" / PacketErrorControl(),
    )


def tm_packet(apid: int, service: int, subtype: int, fields: Sequence[cs.Construct], *,
              time: cs.Construct | None = None) -> cs.Struct:
    """A fixed-size PUS-C TM packet: primary, secondary (with service/subtype), ``fields``, pec.

    ``fields`` are named constructs (``"hk" / Struct(...)``); the data length,
    APID, service and subtype are filled in on build.
    """
    return _packet(PacketType.TM, apid, _with_service(tm_secondary_header(time), service, subtype), fields)


def tc_packet(apid: int, service: int, subtype: int, fields: Sequence[cs.Construct]) -> cs.Struct:
    """A fixed-size PUS-C TC packet: primary, secondary, ``fields`` (the arguments), pec."""
    return _packet(PacketType.TC, apid, _with_service(TcSecondaryHeader, service, subtype), fields)



# --------------------------------------------------------------------------- generic (variable-length) packets

#: Octets of the TM secondary header before the time field.
TM_SECONDARY_HEADER_FIXED_LENGTH = 7
#: Queqiao's default TM time field: implicit CUC, 4 coarse + 2 fine octets.
DEFAULT_TIME_LENGTH = 6


def pus_tm_struct(time: cs.Construct | None = None) -> cs.Struct:
    """Generic PUS-C TM packet: primary, secondary, ``source_data`` (any length), pec.

    The data length is rebuilt from the source data; parse checks the CRC.
    """
    secondary = tm_secondary_header(time)
    fixed = secondary.sizeof() + PEC_LENGTH
    return cs.Struct(
        "primary" / _generic_primary(PacketType.TM, lambda ctx: fixed + len(ctx._.source_data) - 1),
        "secondary" / secondary,
        "source_data" / cs.Bytes(lambda ctx: ctx.primary.data_length + 1 - fixed),
        "pec" / PacketErrorControl(),
    )


def pus_tc_struct() -> cs.Struct:
    """Generic PUS-C TC packet: primary, secondary, ``app_data`` (any length), pec."""
    fixed = TC_SECONDARY_HEADER_LENGTH + PEC_LENGTH
    return cs.Struct(
        "primary" / _generic_primary(PacketType.TC, lambda ctx: fixed + len(ctx._.app_data) - 1),
        "secondary" / TcSecondaryHeader,
        "app_data" / cs.Bytes(lambda ctx: ctx.primary.data_length + 1 - fixed),
        "pec" / PacketErrorControl(),
    )


def _generic_primary(packet_type: PacketType, data_length) -> cs.Construct:
    return cs.BitStruct(
        "version" / cs.Default(cs.BitsInteger(3), 0),
        "type" / cs.Default(cs.BitsInteger(1), int(packet_type)),
        "secondary_header_flag" / cs.Default(cs.BitsInteger(1), 1),
        "apid" / cs.BitsInteger(11),
        "sequence_flags" / cs.Default(cs.BitsInteger(2), int(SequenceFlags.UNSEGMENTED)),
        "sequence_count" / cs.Default(cs.BitsInteger(14), 0),
        "data_length" / cs.Rebuild(cs.BitsInteger(16), data_length),
    )


PusTmStruct = pus_tm_struct()
PusTcStruct = pus_tc_struct()


@dataclass(frozen=True, slots=True)
class PusTm:
    """A PUS-C TM packet as plain values.  ``time`` is the raw absolute-time field
    (its length is mission-defined; Queqiao's own is CUC 4+2 without P-field)."""

    apid: int
    service: int
    subtype: int
    source_data: bytes = b""
    time: bytes = bytes(DEFAULT_TIME_LENGTH)
    sequence_count: int = 0
    message_counter: int = 0
    destination_id: int = 0
    time_reference_status: int = 0
    sequence_flags: SequenceFlags = SequenceFlags.UNSEGMENTED
    pus_version: int = PUS_VERSION_C
    #: Parse result: did the packet error control match (always True for built packets).
    crc_ok: bool = True

    def build(self) -> bytes:
        return build_pus_tm(self)

    @classmethod
    def parse(cls, buffer, offset: int = 0, *, time_length: int = DEFAULT_TIME_LENGTH, verify: bool = True) -> PusTm:
        return parse_pus_tm(buffer, offset, time_length=time_length, verify=verify)


@dataclass(frozen=True, slots=True)
class PusTc:
    """A PUS-C TC packet as plain values."""

    apid: int
    service: int
    subtype: int
    app_data: bytes = b""
    sequence_count: int = 0
    source_id: int = 0
    ack_flags: int = ACK_ALL
    sequence_flags: SequenceFlags = SequenceFlags.UNSEGMENTED
    pus_version: int = PUS_VERSION_C
    crc_ok: bool = True

    def build(self) -> bytes:
        return build_pus_tc(self)

    @classmethod
    def parse(cls, buffer, offset: int = 0, *, verify: bool = True) -> PusTc:
        return parse_pus_tc(buffer, offset, verify=verify)


def _check_range(structure: str, name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise ProtocolError(structure, f"{value} outside 0..{(1 << bits) - 1}", field=name)


def build_pus_tm(tm: PusTm) -> bytes:
    """Primary + secondary + source data + CRC-16 packet error control."""
    for name, bits in (("service", 8), ("subtype", 8), ("message_counter", 16), ("destination_id", 16),
                       ("time_reference_status", 4), ("pus_version", 4)):
        _check_range("PUS TM packet", f"secondary.{name}", getattr(tm, name), bits)
    secondary = bytes([(tm.pus_version << 4) | tm.time_reference_status, tm.service, tm.subtype]) + \
        tm.message_counter.to_bytes(2, "big") + tm.destination_id.to_bytes(2, "big") + bytes(tm.time)
    body = secondary + bytes(tm.source_data)
    head = pack_primary_header(tm.apid, len(body) + PEC_LENGTH - 1, sequence_count=tm.sequence_count,
                               packet_type=PacketType.TM, secondary_header_flag=True,
                               sequence_flags=tm.sequence_flags)
    packet = head + body
    return packet + _crc.crc16(packet).to_bytes(2, "big")


def build_pus_tc(tc: PusTc) -> bytes:
    for name, bits in (("service", 8), ("subtype", 8), ("source_id", 16), ("ack_flags", 4), ("pus_version", 4)):
        _check_range("PUS TC packet", f"secondary.{name}", getattr(tc, name), bits)
    body = bytes([(tc.pus_version << 4) | tc.ack_flags, tc.service, tc.subtype]) + tc.source_id.to_bytes(2, "big") \
        + bytes(tc.app_data)
    head = pack_primary_header(tc.apid, len(body) + PEC_LENGTH - 1, sequence_count=tc.sequence_count,
                               packet_type=PacketType.TC, secondary_header_flag=True,
                               sequence_flags=tc.sequence_flags)
    packet = head + body
    return packet + _crc.crc16(packet).to_bytes(2, "big")


def _open_packet(structure: str, buffer, offset: int, packet_type: int, minimum: int) -> tuple[tuple, int]:
    header = unpack_primary_header(buffer, offset)
    version, ptype, sec, apid, flags, count, length = header
    if version != 0:
        raise ProtocolError(structure, f"version {version}, expected 0", field="primary.version", offset=offset)
    if ptype != packet_type:
        raise ProtocolError(structure, f"packet type {ptype}, expected {packet_type}", field="primary.type",
                            offset=offset)
    if not sec:
        raise ProtocolError(structure, "secondary header flag is 0", field="primary.secondary_header_flag",
                            offset=offset)
    total = packet_length(length)
    if total < minimum:
        raise ProtocolError(structure, f"packet of {total} octets is shorter than the {minimum} its headers need",
                            field="primary.data_length", offset=offset)
    require(structure, len(buffer), offset, total, field="data")
    return header, total


def _pec_ok(structure: str, buffer, offset: int, total: int, verify: bool) -> bool:
    received = int.from_bytes(buffer[offset + total - PEC_LENGTH:offset + total], "big")
    ok = _crc.crc16(bytes(buffer[offset:offset + total - PEC_LENGTH])) == received
    if verify and not ok:
        raise ChecksumError(structure, f"packet error control 0x{received:04X} does not match", field="pec",
                            offset=offset + total - PEC_LENGTH)
    return ok


def parse_pus_tm(buffer, offset: int = 0, *, time_length: int = DEFAULT_TIME_LENGTH, verify: bool = True) -> PusTm:
    """The PUS-C TM packet at ``offset``.  ``verify`` raises ChecksumError on a CRC mismatch;
    without it the result carries ``crc_ok``."""
    structure = "PUS TM packet"
    fixed = PRIMARY_HEADER_LENGTH + TM_SECONDARY_HEADER_FIXED_LENGTH + time_length + PEC_LENGTH
    (_, _, _, apid, flags, count, _), total = _open_packet(structure, buffer, offset, PacketType.TM, fixed)
    s = offset + PRIMARY_HEADER_LENGTH
    pus_version = buffer[s] >> 4
    if pus_version != PUS_VERSION_C:
        raise ProtocolError(structure, f"PUS version {pus_version}, expected {PUS_VERSION_C} (PUS-C)",
                            field="secondary.flags.pus_version", offset=s)
    ok = _pec_ok(structure, buffer, offset, total, verify)
    t = s + TM_SECONDARY_HEADER_FIXED_LENGTH
    return PusTm(
        apid=apid, service=buffer[s + 1], subtype=buffer[s + 2],
        source_data=bytes(buffer[t + time_length:offset + total - PEC_LENGTH]),
        time=bytes(buffer[t:t + time_length]), sequence_count=count,
        message_counter=int.from_bytes(buffer[s + 3:s + 5], "big"),
        destination_id=int.from_bytes(buffer[s + 5:s + 7], "big"),
        time_reference_status=buffer[s] & 0x0F, sequence_flags=SequenceFlags(flags),
        pus_version=pus_version, crc_ok=ok,
    )


def parse_pus_tc(buffer, offset: int = 0, *, verify: bool = True) -> PusTc:
    structure = "PUS TC packet"
    fixed = PRIMARY_HEADER_LENGTH + TC_SECONDARY_HEADER_LENGTH + PEC_LENGTH
    (_, _, _, apid, flags, count, _), total = _open_packet(structure, buffer, offset, PacketType.TC, fixed)
    s = offset + PRIMARY_HEADER_LENGTH
    pus_version = buffer[s] >> 4
    if pus_version != PUS_VERSION_C:
        raise ProtocolError(structure, f"PUS version {pus_version}, expected {PUS_VERSION_C} (PUS-C)",
                            field="secondary.flags.pus_version", offset=s)
    ok = _pec_ok(structure, buffer, offset, total, verify)
    return PusTc(
        apid=apid, service=buffer[s + 1], subtype=buffer[s + 2],
        app_data=bytes(buffer[s + TC_SECONDARY_HEADER_LENGTH:offset + total - PEC_LENGTH]),
        sequence_count=count, source_id=int.from_bytes(buffer[s + 3:s + 5], "big"),
        ack_flags=buffer[s] & 0x0F, sequence_flags=SequenceFlags(flags), pus_version=pus_version, crc_ok=ok,
    )


def parse_pus_tm_struct(buffer, offset: int = 0, *, time: cs.Construct | None = None):
    """Parse with the construct definition (containers); errors as ProtocolError."""
    return parse_with("PUS TM packet", PusTmStruct if time is None else pus_tm_struct(time), buffer, offset=offset)


def parse_pus_tc_struct(buffer, offset: int = 0):
    return parse_with("PUS TC packet", PusTcStruct, buffer, offset=offset)
