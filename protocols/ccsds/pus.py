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

import construct as cs

from cython_ext import crc as _crc
from protocols.ccsds.spacepacket import PRIMARY_HEADER_LENGTH, PacketType, fixed_primary_header
from protocols.ccsds.time import cuc_field
from protocols.errors import ChecksumError, ProtocolError

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


def tm_packet(apid: int, service: int, subtype: int, fields: Sequence[cs.Construct], *,
              time: cs.Construct | None = None) -> cs.Struct:
    """A fixed-size PUS-C TM packet: primary, secondary (with service/subtype), ``fields``, pec.

    ``fields`` are named constructs (``"hk" / Struct(...)``); the data length,
    APID, service and subtype are filled in on build.
    """
    secondary = tm_secondary_header(time)
    total = PRIMARY_HEADER_LENGTH + secondary.sizeof() + _data_size(fields) + PEC_LENGTH
    secondary = cs.Struct(
        *[
            ("service" / cs.Default(cs.Int8ub, service)) if sc.name == "service"
            else ("subtype" / cs.Default(cs.Int8ub, subtype)) if sc.name == "subtype"
            else sc
            for sc in secondary.subcons
        ]
    )
    return cs.Struct(
        "primary" / fixed_primary_header(apid, PacketType.TM, True, total),
        "secondary" / secondary,
        *fields,
        "pec" / PacketErrorControl(),
    )


def tc_packet(apid: int, service: int, subtype: int, fields: Sequence[cs.Construct]) -> cs.Struct:
    """A fixed-size PUS-C TC packet: primary, secondary, ``fields`` (the arguments), pec."""
    total = PRIMARY_HEADER_LENGTH + TC_SECONDARY_HEADER_LENGTH + _data_size(fields) + PEC_LENGTH
    secondary = cs.Struct(
        *[
            ("service" / cs.Default(cs.Int8ub, service)) if sc.name == "service"
            else ("subtype" / cs.Default(cs.Int8ub, subtype)) if sc.name == "subtype"
            else sc
            for sc in TcSecondaryHeader.subcons
        ]
    )
    return cs.Struct(
        "primary" / fixed_primary_header(apid, PacketType.TC, True, total),
        "secondary" / secondary,
        *fields,
        "pec" / PacketErrorControl(),
    )
