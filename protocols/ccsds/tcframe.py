"""TC Transfer Frame (232.0-B).

Primary header, 5 octets: version 2 (=00) | bypass flag 1 | control command flag 1 |
spare 2 | SCID 10 | VCID 6 | frame length 10 (total octets - 1) | frame sequence number 8.
Optional segment header, 1 octet: sequence flags 2 | MAP ID 6 (a profile option).
Then the data field and the FECF (CRC-16/CCITT-FALSE, optional per profile, normally present).
A TC frame has at most 1024 octets.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import construct as cs

from cython_ext import crc as _crc
from protocols.ccsds.tmframe import FECF_LENGTH, FrameErrorControl
from protocols.errors import ChecksumError, ProtocolError, build_with, parse_with, require

TC_PRIMARY_HEADER_LENGTH = 5
SEGMENT_HEADER_LENGTH = 1
TC_MAX_FRAME_LENGTH = 1024
#: Segment header sequence flags: a whole user packet in this frame.
SEGMENT_UNSEGMENTED = 0b11

_HEADER = struct.Struct(">HHB")


@dataclass(frozen=True, slots=True)
class TcProfile:
    """How a TC virtual channel's frames look."""

    has_segment_header: bool = False
    has_fecf: bool = True

    @property
    def overhead(self) -> int:
        return (TC_PRIMARY_HEADER_LENGTH + (SEGMENT_HEADER_LENGTH if self.has_segment_header else 0)
                + (FECF_LENGTH if self.has_fecf else 0))

    @property
    def max_data_length(self) -> int:
        return TC_MAX_FRAME_LENGTH - self.overhead


TcPrimaryHeader = cs.BitStruct(
    "version" / cs.Default(cs.BitsInteger(2), 0),
    "bypass_flag" / cs.Default(cs.BitsInteger(1), 0),
    "control_command_flag" / cs.Default(cs.BitsInteger(1), 0),
    "spare" / cs.Default(cs.BitsInteger(2), 0),
    "scid" / cs.BitsInteger(10),
    "vcid" / cs.BitsInteger(6),
    "frame_length" / cs.BitsInteger(10),
    "frame_sequence_number" / cs.Default(cs.BitsInteger(8), 0),
)

SegmentHeader = cs.BitStruct(
    "sequence_flags" / cs.Default(cs.BitsInteger(2), SEGMENT_UNSEGMENTED),
    "map_id" / cs.Default(cs.BitsInteger(6), 0),
)


def tc_frame_struct(profile: TcProfile = TcProfile()) -> cs.Struct:
    """The TC frame as a construct Struct.  Build: ``frame_length`` is recomputed from the data."""
    overhead = profile.overhead
    primary = cs.BitStruct(*[
        ("frame_length" / cs.Rebuild(cs.BitsInteger(10), lambda ctx: len(ctx._.data) + overhead - 1))
        if sc.name == "frame_length" else sc
        for sc in TcPrimaryHeader.subcon.subcons
    ])
    fields = ["primary" / primary]
    if profile.has_segment_header:
        fields.append("segment" / SegmentHeader)
    fields.append("data" / cs.Bytes(lambda ctx: ctx.primary.frame_length + 1 - overhead))
    if profile.has_fecf:
        fields.append("fecf" / FrameErrorControl(lambda ctx: ctx.primary.frame_length + 1 - FECF_LENGTH,
                                                 "TC transfer frame"))
    return cs.Struct(*fields)


@dataclass(frozen=True, slots=True)
class TcFrame:
    """A TC transfer frame as values; ``map_id``/``segment_sequence_flags`` are used when the profile
    has a segment header.  ``crc_ok`` is None without FECF."""

    scid: int
    vcid: int
    data: bytes
    frame_sequence_number: int = 0
    bypass_flag: int = 0
    control_command_flag: int = 0
    map_id: int = 0
    segment_sequence_flags: int = SEGMENT_UNSEGMENTED
    spare: int = 0
    version: int = 0
    crc_ok: bool | None = None

    def build(self, profile: TcProfile = TcProfile()) -> bytes:
        return build_tc_frame(self, profile)

    @classmethod
    def parse(cls, buffer, profile: TcProfile = TcProfile(), offset: int = 0, *, verify: bool = False) -> TcFrame:
        return parse_tc_frame(buffer, profile, offset, verify=verify)


def _field(name: str, value: int, bits: int) -> int:
    if not 0 <= value < (1 << bits):
        raise ProtocolError("TC transfer frame", f"{value} does not fit {bits} bits", field=name)
    return value


def tc_frame_headers(frame: TcFrame, total: int, profile: TcProfile = TcProfile()) -> bytes:
    """The primary header (and segment header, if the profile has one) of a frame of ``total`` octets.

    Space Data Link Security needs them before the frame exists: its MAC covers them.
    """
    word0 = (_field("primary.version", frame.version, 2) << 14) | (_field("primary.bypass_flag", frame.bypass_flag,
                                                                          1) << 13) \
        | (_field("primary.control_command_flag", frame.control_command_flag, 1) << 12) \
        | (_field("primary.spare", frame.spare, 2) << 10) | _field("primary.scid", frame.scid, 10)
    word1 = (_field("primary.vcid", frame.vcid, 6) << 10) | (total - 1)
    out = _HEADER.pack(word0, word1, _field("primary.frame_sequence_number", frame.frame_sequence_number, 8))
    if profile.has_segment_header:
        out += bytes([(_field("segment.sequence_flags", frame.segment_sequence_flags, 2) << 6)
                      | _field("segment.map_id", frame.map_id, 6)])
    return out


def build_tc_frame(frame: TcFrame, profile: TcProfile = TcProfile()) -> bytes:
    total = len(frame.data) + profile.overhead
    if total > TC_MAX_FRAME_LENGTH or not frame.data:
        raise ProtocolError("TC transfer frame", f"{len(frame.data)} data octets: 1..{profile.max_data_length}",
                            field="data")
    out = tc_frame_headers(frame, total, profile) + bytes(frame.data)
    if profile.has_fecf:
        out += _crc.crc16(out).to_bytes(2, "big")
    return out


def tc_frame_length(buffer, offset: int = 0) -> int:
    """Total octets of the TC frame at ``offset`` (from its frame length field)."""
    require("TC transfer frame primary header", len(buffer), offset, TC_PRIMARY_HEADER_LENGTH)
    return (((buffer[offset + 2] << 8) | buffer[offset + 3]) & 0x3FF) + 1


def parse_tc_frame(buffer, profile: TcProfile = TcProfile(), offset: int = 0, *, verify: bool = False) -> TcFrame:
    s = "TC transfer frame"
    require(s + " primary header", len(buffer), offset, TC_PRIMARY_HEADER_LENGTH)
    word0, word1, fsn = _HEADER.unpack_from(buffer, offset)
    version = word0 >> 14
    if version != 0:
        raise ProtocolError(s, f"version {version}, expected 0", field="primary.version", offset=offset)
    total = (word1 & 0x3FF) + 1
    if total <= profile.overhead:
        raise ProtocolError(s, f"frame length {total} leaves no data field", field="primary.frame_length",
                            offset=offset + 2)
    require(s, len(buffer), offset, total, field="data")
    ok = None
    if profile.has_fecf:
        end = offset + total
        received = int.from_bytes(buffer[end - 2:end], "big")
        ok = _crc.crc16(bytes(buffer[offset:end - 2])) == received
        if verify and not ok:
            raise ChecksumError(s, f"FECF 0x{received:04X} does not match", field="fecf", offset=end - 2)
    p = offset + TC_PRIMARY_HEADER_LENGTH
    flags, map_id = SEGMENT_UNSEGMENTED, 0
    if profile.has_segment_header:
        flags, map_id = buffer[p] >> 6, buffer[p] & 0x3F
        p += 1
    data = bytes(buffer[p:offset + total - (FECF_LENGTH if profile.has_fecf else 0)])
    return TcFrame((word0 & 0x3FF), word1 >> 10, data, fsn, (word0 >> 13) & 1, (word0 >> 12) & 1, map_id, flags,
                   (word0 >> 10) & 3, version, ok)


def parse_tc_frame_struct(buffer, profile: TcProfile = TcProfile(), offset: int = 0):
    return parse_with("TC transfer frame", tc_frame_struct(profile), buffer, offset=offset)


def build_tc_frame_struct(obj, profile: TcProfile = TcProfile()) -> bytes:
    return build_with("TC transfer frame", tc_frame_struct(profile), obj)
