"""TM (132.0-B-3) and AOS (732.0-B) transfer frames, and the frame profile everything shares.

TM primary header, 6 octets: version 2 (=00) | SCID 10 | VCID 3 | OCF flag 1 |
MC frame count 8 | VC frame count 8 | data field status 16 = secondary header flag 1 |
sync flag 1 | packet order flag 1 | segment length ID 2 (=11) | first header pointer 11.
Then an optional secondary header (version 2 | length-1 6 | data), the data field,
an optional 4-octet OCF (a CLCW) and an optional 2-octet FECF (CRC-16/CCITT-FALSE
over every preceding octet of the frame).

AOS primary header, 6 octets: version 2 (=01) | SCID 8 | VCID 6 | VC frame count 24 |
replay flag 1 | VC frame count usage flag 1 | spare 2 | VC frame count cycle 4; an
optional 2-octet frame header error control (FHEC: RS(10,6) over GF(16), see :func:`aos_fhec`),
an optional insert zone, the M_PDU (header: spare 5 | FHP 11, then the packet zone),
optional OCF, optional FECF.

First header pointer: offset of the first packet header in the data field (TM) or
packet zone (AOS); 0x7FF = no packet starts in this frame; 0x7FE = only idle data.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

import construct as cs
import numpy as np

from cython_ext import crc as _crc
from protocols.ccsds.clcw import CLCW_LENGTH, Clcw
from protocols.errors import ChecksumError, ProtocolError, build_with, parse_with, require

FHP_NO_PACKET_START = 0x7FF
FHP_IDLE_DATA_ONLY = 0x7FE
TM_VERSION = 0
AOS_VERSION = 1
TM_PRIMARY_HEADER_LENGTH = 6
AOS_PRIMARY_HEADER_LENGTH = 6
AOS_FHEC_LENGTH = 2
MPDU_HEADER_LENGTH = 2
OCF_LENGTH = CLCW_LENGTH
FECF_LENGTH = 2
TM_MAX_FRAME_LENGTH = 2048
#: Counter moduli: TM master and virtual channel counts are 8 bits, AOS VC count 24 bits.
TM_COUNT_MODULUS = 256
AOS_COUNT_MODULUS = 1 << 24
#: VCIDs conventionally reserved for idle (OID) frames.
TM_IDLE_VCID = 7
AOS_IDLE_VCID = 63


#: Interleave depths 131.0-B allows for the Reed-Solomon code.
RS_INTERLEAVE_DEPTHS = (1, 2, 3, 4, 5, 8)


@dataclass(frozen=True, slots=True)
class ReedSolomon:
    """The Reed-Solomon code on the frames (131.0-B-5 4.3): E = 16 is RS(255,223), E = 8 RS(255,239);
    ``interleave`` codewords per frame, symbols in the ``basis`` ("dual" is the standard's)."""

    e: int = 16
    interleave: int = 1
    basis: Literal["dual", "conventional"] = "dual"

    def __post_init__(self) -> None:
        if self.e not in (8, 16):
            raise ValueError(f"Reed-Solomon E={self.e}: 8 or 16")
        if self.interleave not in RS_INTERLEAVE_DEPTHS:
            raise ValueError(f"Reed-Solomon interleave depth {self.interleave}: one of {RS_INTERLEAVE_DEPTHS}")
        if self.basis not in ("dual", "conventional"):
            raise ValueError(f"Reed-Solomon basis {self.basis!r}: dual or conventional")

    @property
    def check_length(self) -> int:
        """Check symbol octets after the frame (2E per codeword)."""
        return 2 * self.e * self.interleave


@dataclass(frozen=True, slots=True)
class InsertZoneTime:
    """An onboard time in the AOS insert zone: ``length`` octets at ``offset`` (in the insert zone),
    an unsigned count of ``unit`` seconds since ``epoch`` (Unix seconds)."""

    offset: int
    length: int
    unit: float
    epoch: float
    byteorder: Literal["big", "little"] = "big"

    def to_unix(self, zone: bytes) -> float:
        return self.epoch + int.from_bytes(zone[self.offset:self.offset + self.length], self.byteorder) * self.unit

    def encode(self, unix: float) -> bytes:
        """The time field for ``unix`` (truncated to the unit; wraps like the onboard counter)."""
        count = int((unix - self.epoch) // self.unit) % (1 << (8 * self.length))
        return count.to_bytes(self.length, self.byteorder)


@dataclass(frozen=True, slots=True)
class FrameProfile:
    """What a physical channel's frames look like; every frame builder and parser takes one, and the
    mission database declares each spacecraft's (``Spacecraft.profile.frame``).

    ``secondary_header_length`` is the whole TM secondary header (ID octet included), 0 = none.
    ``randomized`` says whether the CADU layer applies the TM pseudo-randomizer; ``rs`` the
    Reed-Solomon code between the ASM and the frame (None = none); ``insert_zone_time`` what of
    the AOS insert zone is an onboard time (None = nothing known).
    """

    frame_length: int = 1115
    has_ocf: bool = False
    has_fecf: bool = True
    secondary_header_length: int = 0
    randomized: bool = True
    kind: Literal["TM", "AOS"] = "TM"
    aos_fhec: bool = False
    insert_zone_length: int = 0
    rs: ReedSolomon | None = None
    insert_zone_time: InsertZoneTime | None = None

    def __post_init__(self) -> None:
        t = self.insert_zone_time
        if t is not None and not (0 <= t.offset and t.offset + t.length <= self.insert_zone_length):
            raise ValueError(f"insert zone time at {t.offset}+{t.length} outside the {self.insert_zone_length}-octet "
                             "insert zone")
        if self.kind not in ("TM", "AOS"):
            raise ValueError(f"frame kind {self.kind!r}: TM or AOS")
        if self.kind == "TM":
            if self.aos_fhec or self.insert_zone_length:
                raise ValueError("FHEC and insert zone exist only in AOS frames")
            if self.secondary_header_length not in (0, *range(2, 65)):
                raise ValueError(f"TM secondary header of {self.secondary_header_length} octets: 0 or 2..64")
            if self.frame_length > TM_MAX_FRAME_LENGTH:
                raise ValueError(f"TM frames have at most {TM_MAX_FRAME_LENGTH} octets, not {self.frame_length}")
        elif self.secondary_header_length:
            raise ValueError("AOS frames have no secondary header (use the insert zone)")
        if self.zone_length < 1:
            raise ValueError(f"frame length {self.frame_length} leaves no room for data")

    @property
    def version(self) -> int:
        return TM_VERSION if self.kind == "TM" else AOS_VERSION

    @property
    def codeblock_length(self) -> int:
        """Octets between the ASMs: the frame, with its Reed-Solomon check symbols when it has a code."""
        return self.frame_length + (self.rs.check_length if self.rs is not None else 0)

    @property
    def header_length(self) -> int:
        """Octets before the data field (TM) or packet zone (AOS)."""
        if self.kind == "TM":
            return TM_PRIMARY_HEADER_LENGTH + self.secondary_header_length
        return (AOS_PRIMARY_HEADER_LENGTH + (AOS_FHEC_LENGTH if self.aos_fhec else 0) + self.insert_zone_length
                + MPDU_HEADER_LENGTH)

    @property
    def insert_zone_offset(self) -> int:
        """Where the AOS insert zone begins: after the primary header and the FHEC."""
        return AOS_PRIMARY_HEADER_LENGTH + (AOS_FHEC_LENGTH if self.aos_fhec else 0)

    def insert_zone_at(self, unix: float) -> bytes:
        """The insert zone a frame sent at onboard time ``unix`` carries: the time where the profile
        says, zeros elsewhere (what else is in it is not known)."""
        zone = bytearray(self.insert_zone_length)
        t = self.insert_zone_time
        if t is not None:
            zone[t.offset:t.offset + t.length] = t.encode(unix)
        return bytes(zone)

    def insert_zone_onboard_time(self, frame: bytes) -> float | None:
        """The frame's onboard time from its insert zone (Unix seconds), None if the profile knows none."""
        if self.insert_zone_time is None:
            return None
        start = self.insert_zone_offset
        return self.insert_zone_time.to_unix(frame[start:start + self.insert_zone_length])

    @property
    def zone_offset(self) -> int:
        """Where the octets the first header pointer counts from begin."""
        return self.header_length

    @property
    def trailer_length(self) -> int:
        return (OCF_LENGTH if self.has_ocf else 0) + (FECF_LENGTH if self.has_fecf else 0)

    @property
    def zone_length(self) -> int:
        """Data field (TM) or M_PDU packet zone (AOS) length."""
        return self.frame_length - self.header_length - self.trailer_length

    @property
    def ocf_offset(self) -> int | None:
        return self.zone_offset + self.zone_length if self.has_ocf else None

    @property
    def fecf_offset(self) -> int | None:
        return self.frame_length - FECF_LENGTH if self.has_fecf else None

    @property
    def count_modulus(self) -> int:
        return TM_COUNT_MODULUS if self.kind == "TM" else AOS_COUNT_MODULUS

    @property
    def idle_vcid(self) -> int:
        return TM_IDLE_VCID if self.kind == "TM" else AOS_IDLE_VCID

    @property
    def max_vcid(self) -> int:
        return 7 if self.kind == "TM" else 63

    @property
    def max_scid(self) -> int:
        return 0x3FF if self.kind == "TM" else 0xFF


# --------------------------------------------------------------------------- AOS FHEC

# GF(16) with field polynomial x^4 + x + 1; the FHEC code's generator is
# g(x) = (x + a^6)(x + a^7)(x + a^8)(x + a^9) = x^4 + a^3 x^3 + a x^2 + a^3 x + 1 (732.0-B 4.1.2.6).
_GF16_EXP = [0] * 30
_value = 1
for _i in range(15):
    _GF16_EXP[_i] = _GF16_EXP[_i + 15] = _value
    _value = (_value << 1) ^ (0x13 if _value & 0x8 else 0)
_GF16_LOG = {_GF16_EXP[_i]: _i for _i in range(15)}
FHEC_GENERATOR = (1, 8, 2, 8, 1)


def _gf16_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _GF16_EXP[_GF16_LOG[a] + _GF16_LOG[b]]


def aos_fhec(header) -> bytes:
    """The 2-octet FHEC of an AOS primary header (its first 6 octets).

    The code protects the master channel ID, VCID and signalling field: the nibbles of
    octets 0, 1 and 5, most significant first, are the 6 information symbols; the FHEC
    is the 4 check symbols of the systematic RS(10,6) code, two per octet.
    """
    symbols = []
    for i in (0, 1, 5):
        symbols += [header[i] >> 4, header[i] & 0xF]
    reg = [0, 0, 0, 0]
    for s in symbols:
        feedback = s ^ reg[0]
        reg = [reg[1] ^ _gf16_mul(feedback, FHEC_GENERATOR[1]), reg[2] ^ _gf16_mul(feedback, FHEC_GENERATOR[2]),
               reg[3] ^ _gf16_mul(feedback, FHEC_GENERATOR[3]), _gf16_mul(feedback, FHEC_GENERATOR[4])]
    return bytes([(reg[0] << 4) | reg[1], (reg[2] << 4) | reg[3]])


# --------------------------------------------------------------------------- construct definitions

TmPrimaryHeader = cs.BitStruct(
    "version" / cs.Default(cs.BitsInteger(2), TM_VERSION),
    "scid" / cs.BitsInteger(10),
    "vcid" / cs.BitsInteger(3),
    "ocf_flag" / cs.Default(cs.BitsInteger(1), 0),
    "mc_count" / cs.Default(cs.BitsInteger(8), 0),
    "vc_count" / cs.Default(cs.BitsInteger(8), 0),
    "secondary_header_flag" / cs.Default(cs.BitsInteger(1), 0),
    "sync_flag" / cs.Default(cs.BitsInteger(1), 0),
    "packet_order_flag" / cs.Default(cs.BitsInteger(1), 0),
    "segment_length_id" / cs.Default(cs.BitsInteger(2), 0b11),
    "fhp" / cs.BitsInteger(11),
)

TmSecondaryHeader = cs.Struct(
    "id" / cs.BitStruct(
        "version" / cs.Default(cs.BitsInteger(2), 0),
        "length" / cs.Rebuild(cs.BitsInteger(6), lambda ctx: len(ctx._.data)),
    ),
    "data" / cs.Bytes(lambda ctx: ctx.id.length),
)

AosPrimaryHeader = cs.BitStruct(
    "version" / cs.Default(cs.BitsInteger(2), AOS_VERSION),
    "scid" / cs.BitsInteger(8),
    "vcid" / cs.BitsInteger(6),
    "vc_count" / cs.Default(cs.BitsInteger(24), 0),
    "replay_flag" / cs.Default(cs.BitsInteger(1), 0),
    "vc_count_usage_flag" / cs.Default(cs.BitsInteger(1), 0),
    "spare" / cs.Default(cs.BitsInteger(2), 0),
    "vc_count_cycle" / cs.Default(cs.BitsInteger(4), 0),
)

MpduHeader = cs.BitStruct(
    "spare" / cs.Default(cs.BitsInteger(5), 0),
    "fhp" / cs.BitsInteger(11),
)


class FrameErrorControl(cs.Construct):
    """CRC-16 over the ``covered`` octets before it (the frame start is found by seeking back)."""

    def __init__(self, covered, structure: str = "transfer frame") -> None:
        super().__init__()
        self.covered = covered
        self.structure = structure
        self.flagbuildnone = True

    def _sizeof(self, context, path):
        return FECF_LENGTH

    def _covered(self, stream, context, path) -> bytes:
        end = cs.stream_tell(stream, path)
        n = self.covered(context) if callable(self.covered) else self.covered
        cs.stream_seek(stream, end - n, 0, path)
        return cs.stream_read(stream, n, path)

    def _parse(self, stream, context, path):
        covered = self._covered(stream, context, path)
        received = int.from_bytes(cs.stream_read(stream, FECF_LENGTH, path), "big")
        if received != _crc.crc16(covered):
            raise ChecksumError(self.structure, f"FECF 0x{received:04X} does not match", field="fecf",
                                offset=len(covered))
        return received

    def _build(self, obj, stream, context, path):
        value = _crc.crc16(self._covered(stream, context, path))
        cs.stream_write(stream, value.to_bytes(FECF_LENGTH, "big"), FECF_LENGTH, path)
        return value


def tm_frame_struct(profile: FrameProfile) -> cs.Struct:
    """The whole TM frame for ``profile`` as a construct Struct (parse checks the FECF)."""
    if profile.kind != "TM":
        raise ValueError("tm_frame_struct needs a TM profile")
    fields = ["primary" / TmPrimaryHeader]
    if profile.secondary_header_length:
        fields.append("secondary" / TmSecondaryHeader)
    fields.append("data" / cs.Bytes(profile.zone_length))
    if profile.has_ocf:
        fields.append("ocf" / cs.Int32ub)
    if profile.has_fecf:
        fields.append("fecf" / FrameErrorControl(profile.frame_length - FECF_LENGTH, "TM transfer frame"))
    return cs.Struct(*fields)


def aos_frame_struct(profile: FrameProfile) -> cs.Struct:
    """The whole AOS frame (M_PDU data field) for ``profile`` as a construct Struct."""
    if profile.kind != "AOS":
        raise ValueError("aos_frame_struct needs an AOS profile")
    fields = ["primary" / AosPrimaryHeader]
    if profile.aos_fhec:
        fields.append("fhec" / cs.Bytes(AOS_FHEC_LENGTH))
    if profile.insert_zone_length:
        fields.append("insert_zone" / cs.Bytes(profile.insert_zone_length))
    fields += ["mpdu" / MpduHeader, "data" / cs.Bytes(profile.zone_length)]
    if profile.has_ocf:
        fields.append("ocf" / cs.Int32ub)
    if profile.has_fecf:
        fields.append("fecf" / FrameErrorControl(profile.frame_length - FECF_LENGTH, "AOS transfer frame"))
    return cs.Struct(*fields)


# --------------------------------------------------------------------------- the header decoder

#: Field names of the decoded headers, as the construct definitions above name them.
TM_HEADER_FIELDS = tuple(sc.name for sc in TmPrimaryHeader.subcon.subcons)
AOS_HEADER_FIELDS = tuple(sc.name for sc in AosPrimaryHeader.subcon.subcons)


_TM_DECODE = {
    "version": lambda b: b[:, 0] >> 6, "scid": lambda b: ((b[:, 0] & 0x3F) << 4) | (b[:, 1] >> 4),
    "vcid": lambda b: (b[:, 1] >> 1) & 7, "ocf_flag": lambda b: b[:, 1] & 1, "mc_count": lambda b: b[:, 2],
    "vc_count": lambda b: b[:, 3], "secondary_header_flag": lambda b: b[:, 4] >> 7,
    "sync_flag": lambda b: (b[:, 4] >> 6) & 1, "packet_order_flag": lambda b: (b[:, 4] >> 5) & 1,
    "segment_length_id": lambda b: (b[:, 4] >> 3) & 3, "fhp": lambda b: ((b[:, 4] & 7) << 8) | b[:, 5],
}
_AOS_DECODE = {
    "version": lambda b: b[:, 0] >> 6, "scid": lambda b: ((b[:, 0] & 0x3F) << 2) | (b[:, 1] >> 6),
    "vcid": lambda b: b[:, 1] & 0x3F, "vc_count": lambda b: (b[:, 2] << 16) | (b[:, 3] << 8) | b[:, 4],
    "replay_flag": lambda b: b[:, 5] >> 7, "vc_count_usage_flag": lambda b: (b[:, 5] >> 6) & 1,
    "spare": lambda b: (b[:, 5] >> 4) & 3, "vc_count_cycle": lambda b: b[:, 5] & 0xF,
}


def decode_headers(rows: np.ndarray, kind: str, mpdu_offset: int | None = None,
                   fields: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every primary header field of many frames at once: ``rows`` is (frames, >= 6 octets) of uint8.

    The one decoder of TM and AOS primary headers: the chain's frame checks and router, the
    demultiplexer (both its walks) and :func:`parse_frame` all read headers through it.  The
    fields are those of :data:`TmPrimaryHeader` / :data:`AosPrimaryHeader`, under their names, as
    int64 columns; ``tests/protocols/test_ccsds_frames.py`` proves them equal to the construct
    definitions field for field on random frames.  AOS with ``mpdu_offset`` (the packet zone's
    offset, :attr:`FrameProfile.zone_offset`) adds the M_PDU header's first header pointer as ``fhp``.
    ``fields``: only these (the hot path asks for what it uses).
    """
    b = rows[:, :6].astype(np.int64)
    decoders = _TM_DECODE if kind == "TM" else _AOS_DECODE
    out = {name: decoders[name](b) for name in (fields or decoders) if name in decoders}
    if kind != "TM" and mpdu_offset is not None and (fields is None or "fhp" in fields):
        out["fhp"] = ((rows[:, mpdu_offset - 2].astype(np.int64) & 7) << 8) | rows[:, mpdu_offset - 1]
    return out


def header_rows(frames: list[bytes], length: int = TM_PRIMARY_HEADER_LENGTH) -> np.ndarray:
    """The first ``length`` octets of each frame (each at least that long) as a (frames, length) array."""
    return np.frombuffer(b"".join([f[:length] for f in frames]), dtype=np.uint8).reshape(len(frames), length)


def _decode_one(buffer, offset: int, kind: str, mpdu_offset: int | None = None) -> dict[str, int]:
    end = offset + (mpdu_offset or TM_PRIMARY_HEADER_LENGTH)
    row = np.frombuffer(bytes(buffer[offset:end]), dtype=np.uint8).reshape(1, end - offset)
    return {name: int(column[0]) for name, column in decode_headers(row, kind, mpdu_offset).items()}


# --------------------------------------------------------------------------- typed frames

_TM_HEADER = struct.Struct(">HBBH")


@dataclass(frozen=True, slots=True)
class TmFrame:
    """A TM transfer frame as values.  ``data`` is the whole data field (profile.zone_length octets).

    ``ocf`` is the raw 32-bit OCF (see :attr:`clcw`); ``crc_ok`` is None when the profile has
    no FECF.  ``secondary_header`` is the secondary header's data (after its ID octet).
    """

    scid: int
    vcid: int
    data: bytes
    fhp: int = 0
    mc_count: int = 0
    vc_count: int = 0
    ocf: int | None = None
    secondary_header: bytes = b""
    secondary_header_version: int = 0
    sync_flag: int = 0
    packet_order_flag: int = 0
    segment_length_id: int = 0b11
    version: int = TM_VERSION
    crc_ok: bool | None = None

    @property
    def ocf_flag(self) -> int:
        return int(self.ocf is not None)

    @property
    def clcw(self) -> Clcw | None:
        return None if self.ocf is None else Clcw.from_int(self.ocf)

    def build(self, profile: FrameProfile) -> bytes:
        return build_tm_frame(self, profile)

    @classmethod
    def parse(cls, buffer, profile: FrameProfile, offset: int = 0, *, verify: bool = False) -> TmFrame:
        return parse_tm_frame(buffer, profile, offset, verify=verify)


@dataclass(frozen=True, slots=True)
class AosFrame:
    """An AOS transfer frame carrying an M_PDU.  ``data`` is the packet zone."""

    scid: int
    vcid: int
    data: bytes
    fhp: int = 0
    vc_count: int = 0
    ocf: int | None = None
    replay_flag: int = 0
    vc_count_usage_flag: int = 0
    vc_count_cycle: int = 0
    fhec: bytes | None = None
    insert_zone: bytes = b""
    version: int = AOS_VERSION
    crc_ok: bool | None = None
    #: Parse result: does the FHEC check (None when the profile has none).
    fhec_ok: bool | None = None

    @property
    def clcw(self) -> Clcw | None:
        return None if self.ocf is None else Clcw.from_int(self.ocf)

    def build(self, profile: FrameProfile) -> bytes:
        return build_aos_frame(self, profile)

    @classmethod
    def parse(cls, buffer, profile: FrameProfile, offset: int = 0, *, verify: bool = False) -> AosFrame:
        return parse_aos_frame(buffer, profile, offset, verify=verify)


def _field(structure: str, name: str, value: int, bits: int) -> int:
    if not 0 <= value < (1 << bits):
        raise ProtocolError(structure, f"{value} does not fit {bits} bits", field=name)
    return value


def _trailer(structure: str, frame, profile: FrameProfile, head: bytes) -> bytes:
    if len(frame.data) != profile.zone_length:
        raise ProtocolError(structure, f"data of {len(frame.data)} octets, the profile's frames carry "
                                       f"{profile.zone_length}", field="data")
    out = head + bytes(frame.data)
    if profile.has_ocf:
        if frame.ocf is None:
            raise ProtocolError(structure, "the profile has an OCF but the frame has none", field="ocf")
        out += _field(structure, "ocf", int(frame.ocf), 32).to_bytes(4, "big")
    elif frame.ocf is not None:
        raise ProtocolError(structure, "the frame has an OCF but the profile has none", field="ocf")
    if profile.has_fecf:
        out += _crc.crc16(out).to_bytes(2, "big")
    return out


def pack_tm_header(scid: int, vcid: int, mc_count: int, vc_count: int, fhp: int, *, ocf_flag: int = 0,
                   secondary_header_flag: int = 0, sync_flag: int = 0, packet_order_flag: int = 0,
                   segment_length_id: int = 0b11, version: int = TM_VERSION) -> bytes:
    """The 6-octet TM primary header."""
    s = "TM transfer frame"
    word0 = (_field(s, "primary.version", version, 2) << 14) | (_field(s, "primary.scid", scid, 10) << 4) \
        | (_field(s, "primary.vcid", vcid, 3) << 1) | _field(s, "primary.ocf_flag", ocf_flag, 1)
    status = (_field(s, "primary.secondary_header_flag", secondary_header_flag, 1) << 15) \
        | (_field(s, "primary.sync_flag", sync_flag, 1) << 14) \
        | (_field(s, "primary.packet_order_flag", packet_order_flag, 1) << 13) \
        | (_field(s, "primary.segment_length_id", segment_length_id, 2) << 11) | _field(s, "primary.fhp", fhp, 11)
    return _TM_HEADER.pack(word0, _field(s, "primary.mc_count", mc_count, 8),
                           _field(s, "primary.vc_count", vc_count, 8), status)


def unpack_tm_header(buffer, offset: int = 0) -> tuple[int, ...]:
    """(version, scid, vcid, ocf_flag, mc_count, vc_count, secondary_header_flag, sync_flag,
    packet_order_flag, segment_length_id, fhp)."""
    require("TM transfer frame primary header", len(buffer), offset, TM_PRIMARY_HEADER_LENGTH)
    return tuple(_decode_one(buffer, offset, "TM").values())


def build_tm_frame(frame: TmFrame, profile: FrameProfile) -> bytes:
    """The frame's octets (FECF computed when the profile has one)."""
    s = "TM transfer frame"
    if profile.kind != "TM":
        raise ProtocolError(s, "needs a TM profile", field="profile")
    head = pack_tm_header(frame.scid, frame.vcid, frame.mc_count, frame.vc_count, frame.fhp,
                          ocf_flag=frame.ocf_flag, secondary_header_flag=int(bool(profile.secondary_header_length)),
                          sync_flag=frame.sync_flag, packet_order_flag=frame.packet_order_flag,
                          segment_length_id=frame.segment_length_id, version=frame.version)
    if profile.secondary_header_length:
        if len(frame.secondary_header) != profile.secondary_header_length - 1:
            raise ProtocolError(s, f"secondary header data of {len(frame.secondary_header)} octets, the profile has "
                                   f"{profile.secondary_header_length - 1}", field="secondary.data")
        head += bytes([(_field(s, "secondary.id.version", frame.secondary_header_version, 2) << 6)
                       | (profile.secondary_header_length - 1)]) + bytes(frame.secondary_header)
    elif frame.secondary_header:
        raise ProtocolError(s, "the profile has no secondary header", field="secondary")
    return _trailer(s, frame, profile, head)


def _check_fecf(structure: str, buffer, offset: int, profile: FrameProfile, verify: bool) -> bool | None:
    if not profile.has_fecf:
        return None
    end = offset + profile.frame_length
    received = int.from_bytes(buffer[end - FECF_LENGTH:end], "big")
    ok = _crc.crc16(bytes(buffer[offset:end - FECF_LENGTH])) == received
    if verify and not ok:
        raise ChecksumError(structure, f"FECF 0x{received:04X} does not match", field="fecf",
                            offset=end - FECF_LENGTH)
    return ok


def fecf_ok_many(buffer, frame_length: int) -> np.ndarray:
    """Does each frame's FECF check, for back-to-back frames of ``frame_length`` in ``buffer`` (one kernel call)."""
    n = len(buffer) // frame_length
    if not n:
        return np.zeros(0, dtype=bool)
    computed = _crc.crc16_strided(buffer, frame_length, frame_length - FECF_LENGTH)
    rows = np.frombuffer(buffer, dtype=np.uint8, count=n * frame_length).reshape(n, frame_length)
    received = (rows[:, frame_length - 2].astype(np.uint16) << 8) | rows[:, frame_length - 1]
    return np.asarray(computed, dtype=np.uint16) == received


def parse_tm_frame(buffer, profile: FrameProfile, offset: int = 0, *, verify: bool = False) -> TmFrame:
    """The TM frame at ``offset``.  ``verify=True`` raises ChecksumError on a bad FECF;
    otherwise the result's ``crc_ok`` tells.  Header/profile mismatches raise ProtocolError."""
    s = "TM transfer frame"
    require(s, len(buffer), offset, profile.frame_length)
    version, scid, vcid, ocf_flag, mc, vc, sec, sync, order, seglen, fhp = unpack_tm_header(buffer, offset)
    if version != TM_VERSION:
        raise ProtocolError(s, f"version {version}, expected {TM_VERSION}", field="primary.version", offset=offset)
    if ocf_flag != int(profile.has_ocf):
        raise ProtocolError(s, f"OCF flag {ocf_flag} disagrees with the frame profile", field="primary.ocf_flag",
                            offset=offset)
    if sec != int(bool(profile.secondary_header_length)):
        raise ProtocolError(s, f"secondary header flag {sec} disagrees with the frame profile",
                            field="primary.secondary_header_flag", offset=offset + 4)
    ok = _check_fecf(s, buffer, offset, profile, verify)
    secondary, sh_version = b"", 0
    p = offset + TM_PRIMARY_HEADER_LENGTH
    if profile.secondary_header_length:
        ident = buffer[p]
        if (ident & 0x3F) + 1 != profile.secondary_header_length:
            raise ProtocolError(s, f"secondary header length {(ident & 0x3F) + 1} disagrees with the frame profile",
                                field="secondary.id.length", offset=p)
        sh_version = ident >> 6
        secondary = bytes(buffer[p + 1:p + profile.secondary_header_length])
    z = offset + profile.zone_offset
    ocf = None
    if profile.has_ocf:
        o = offset + profile.zone_offset + profile.zone_length  # the OCF follows the data
        ocf = int.from_bytes(buffer[o:o + OCF_LENGTH], "big")
    return TmFrame(scid, vcid, bytes(buffer[z:z + profile.zone_length]), fhp, mc, vc, ocf, secondary, sh_version,
                   sync, order, seglen, version, ok)


def pack_aos_header(scid: int, vcid: int, vc_count: int, *, replay_flag: int = 0, vc_count_usage_flag: int = 0,
                    vc_count_cycle: int = 0, spare: int = 0, version: int = AOS_VERSION) -> bytes:
    s = "AOS transfer frame"
    word0 = (_field(s, "primary.version", version, 2) << 14) | (_field(s, "primary.scid", scid, 8) << 6) \
        | _field(s, "primary.vcid", vcid, 6)
    signal = (_field(s, "primary.replay_flag", replay_flag, 1) << 7) \
        | (_field(s, "primary.vc_count_usage_flag", vc_count_usage_flag, 1) << 6) \
        | (_field(s, "primary.spare", spare, 2) << 4) | _field(s, "primary.vc_count_cycle", vc_count_cycle, 4)
    return word0.to_bytes(2, "big") + _field(s, "primary.vc_count", vc_count, 24).to_bytes(3, "big") + bytes([signal])


def unpack_aos_header(buffer, offset: int = 0) -> tuple[int, ...]:
    """(version, scid, vcid, vc_count, replay_flag, vc_count_usage_flag, spare, vc_count_cycle)."""
    require("AOS transfer frame primary header", len(buffer), offset, AOS_PRIMARY_HEADER_LENGTH)
    return tuple(_decode_one(buffer, offset, "AOS").values())


def build_aos_frame(frame: AosFrame, profile: FrameProfile) -> bytes:
    s = "AOS transfer frame"
    if profile.kind != "AOS":
        raise ProtocolError(s, "needs an AOS profile", field="profile")
    head = pack_aos_header(frame.scid, frame.vcid, frame.vc_count, replay_flag=frame.replay_flag,
                           vc_count_usage_flag=frame.vc_count_usage_flag, vc_count_cycle=frame.vc_count_cycle,
                           version=frame.version)
    if profile.aos_fhec:
        # Computed unless the caller supplies one (e.g. to send a deliberately bad one in a test).
        fhec = frame.fhec if frame.fhec is not None else aos_fhec(head)
        if len(fhec) != AOS_FHEC_LENGTH:
            raise ProtocolError(s, "FHEC has 2 octets", field="fhec")
        head += bytes(fhec)
    if len(frame.insert_zone) != profile.insert_zone_length:
        raise ProtocolError(s, f"insert zone of {len(frame.insert_zone)} octets, the profile has "
                               f"{profile.insert_zone_length}", field="insert_zone")
    head += bytes(frame.insert_zone) + _field(s, "mpdu.fhp", frame.fhp, 11).to_bytes(2, "big")
    return _trailer(s, frame, profile, head)


def parse_aos_frame(buffer, profile: FrameProfile, offset: int = 0, *, verify: bool = False) -> AosFrame:
    s = "AOS transfer frame"
    require(s, len(buffer), offset, profile.frame_length)
    require(s, len(buffer), offset, profile.frame_length)
    h = _decode_one(buffer, offset, "AOS", profile.zone_offset)
    version, scid, vcid, vc, fhp = h["version"], h["scid"], h["vcid"], h["vc_count"], h["fhp"]
    replay, usage, cycle = h["replay_flag"], h["vc_count_usage_flag"], h["vc_count_cycle"]
    if version != AOS_VERSION:
        raise ProtocolError(s, f"version {version}, expected {AOS_VERSION}", field="primary.version", offset=offset)
    ok = _check_fecf(s, buffer, offset, profile, verify)
    p = offset + AOS_PRIMARY_HEADER_LENGTH
    fhec = fhec_ok = None
    if profile.aos_fhec:
        fhec = bytes(buffer[p:p + AOS_FHEC_LENGTH])
        fhec_ok = fhec == aos_fhec(buffer[offset:offset + AOS_PRIMARY_HEADER_LENGTH])
        p += AOS_FHEC_LENGTH
    insert = bytes(buffer[p:p + profile.insert_zone_length])
    p += profile.insert_zone_length
    z = offset + profile.zone_offset
    ocf = None
    if profile.has_ocf:
        o = offset + profile.zone_offset + profile.zone_length  # the OCF follows the data
        ocf = int.from_bytes(buffer[o:o + OCF_LENGTH], "big")
    return AosFrame(scid, vcid, bytes(buffer[z:z + profile.zone_length]), fhp, vc, ocf, replay, usage, cycle, fhec,
                    insert, version, ok, fhec_ok)


def parse_frame(buffer, profile: FrameProfile, offset: int = 0, *, verify: bool = False) -> TmFrame | AosFrame:
    """A TM or AOS frame according to ``profile.kind``."""
    if profile.kind == "TM":
        return parse_tm_frame(buffer, profile, offset, verify=verify)
    return parse_aos_frame(buffer, profile, offset, verify=verify)


def parse_frame_struct(buffer, profile: FrameProfile, offset: int = 0):
    """Parse with the construct definition (containers); errors as ProtocolError."""
    con = tm_frame_struct(profile) if profile.kind == "TM" else aos_frame_struct(profile)
    return parse_with(f"{profile.kind} transfer frame", con, buffer, offset=offset)


def build_frame_struct(obj, profile: FrameProfile) -> bytes:
    con = tm_frame_struct(profile) if profile.kind == "TM" else aos_frame_struct(profile)
    return build_with(f"{profile.kind} transfer frame", con, obj)
