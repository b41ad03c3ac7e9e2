"""CCSDS 133.0-B-2 Space Packet: primary header, idle packets, sequence flags.

Primary header, 6 octets, MSB first:
version 3 | type 1 (0 TM, 1 TC) | secondary header flag 1 | APID 11 |
sequence flags 2 | sequence count (or packet name) 14 | packet data length 16
(= octets in the packet data field - 1).
"""
from __future__ import annotations

from enum import IntEnum

import construct as cs

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
