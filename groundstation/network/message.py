"""The one message format between station forwarders and the merge.

A frame travels as one JetStream message on ``<prefix>.frames.<spacecraft>.<vcid>``.
Its payload is a small fixed header (receipt time, quality) plus the station and
link names, then the transfer frame itself, unchanged.  The station never trusts
the network and the merge never trusts the station: :func:`decode` checks every
length and names the field that is wrong.

The ``Nats-Msg-Id`` header is what JetStream de-duplicates on.  It is derived only
from what the station's archive keeps (receipt time, link, frame), so the catch-up
after an outage republishes the very ids the live path used and JetStream drops the
copies it already holds:

    <station>.<spacecraft>.<vcid>.<epoch>.<count>

where the frame count's *epoch* at the station is the receipt time of the frame's
batch (ns) and the number of times that VC's count wrapped inside the batch.
"""
from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

HEADER = struct.Struct(">3sBqbbHHBB")  # magic, version, receipt_ns, fecf, rs, corrected, sync errors, len(station), len(link)
MAGIC = b"QQF"
VERSION = 1
TM_COUNT_MODULUS = 1 << 8  # TM transfer frame: 8-bit virtual channel frame count
AOS_COUNT_MODULUS = 1 << 24  # AOS transfer frame: 24-bit virtual channel frame count


class Fecf(enum.IntEnum):
    ABSENT = -1  # the profile has no frame error control field
    BAD = 0
    OK = 1


class Rs(enum.IntEnum):
    NOT_APPLIED = -1  # no Reed-Solomon on this link, or not decoded at the station
    CLEAN = 0
    CORRECTED = 1
    UNCORRECTABLE = 2


class MessageError(ValueError):
    """A message that is not a frame message of ours; ``reason`` is a bounded metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Quality:
    """How well a station received one frame; :meth:`rank` orders copies, best first."""

    fecf: Fecf = Fecf.ABSENT
    rs: Rs = Rs.NOT_APPLIED
    corrected_symbols: int = 0
    sync_bit_errors: int = 0

    @property
    def tier(self) -> int:
        """0 clean, 1 corrected, 2 uncorrectable or failed its FECF."""
        if self.fecf == Fecf.BAD or self.rs == Rs.UNCORRECTABLE:
            return 2
        return 1 if self.rs == Rs.CORRECTED or self.corrected_symbols else 0

    def rank(self) -> tuple[int, int, int]:
        return self.tier, self.corrected_symbols, self.sync_bit_errors


@dataclass(frozen=True, slots=True)
class FrameMessage:
    station: str
    link: str
    receipt_ns: int
    quality: Quality
    frame: bytes


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The routing fields of a transfer frame's primary header."""

    version: int
    scid: int
    vcid: int
    count: int

    @property
    def modulus(self) -> int:
        return TM_COUNT_MODULUS if self.version == 0 else AOS_COUNT_MODULUS


def frame_header(frame: bytes) -> FrameHeader:
    """TM (version 1, field value 0) or AOS (version 2, field value 1) primary header fields."""
    if len(frame) < 6:
        raise MessageError("truncated", f"a transfer frame of {len(frame)} octets has no primary header")
    version = frame[0] >> 6
    if version == 0:
        return FrameHeader(0, ((frame[0] & 0x3F) << 4) | (frame[1] >> 4), (frame[1] >> 1) & 7, frame[3])
    if version == 1:
        return FrameHeader(1, ((frame[0] & 0x3F) << 2) | (frame[1] >> 6), frame[1] & 0x3F,
                           int.from_bytes(frame[2:5], "big"))
    raise MessageError("version", f"transfer frame version field {version} (neither TM nor AOS)")


def subject(prefix: str, spacecraft: str, vcid: int | str) -> str:
    return f"{prefix}.frames.{spacecraft}.{vcid}"


def stream_name(prefix: str, spacecraft: str) -> str:
    """One JetStream stream per spacecraft (names may not hold dots)."""
    return f"{prefix}_{spacecraft}".upper().replace(".", "_").replace("-", "_")


def encode(message: FrameMessage) -> bytes:
    station = message.station.encode()
    link = message.link.encode()
    q = message.quality
    return HEADER.pack(MAGIC, VERSION, message.receipt_ns, int(q.fecf), int(q.rs), min(q.corrected_symbols, 0xFFFF),
                       min(q.sync_bit_errors, 0xFFFF), len(station), len(link)) + station + link + message.frame


def decode(payload: bytes) -> FrameMessage:
    if len(payload) < HEADER.size:
        raise MessageError("truncated", f"{len(payload)} octets, the message header alone is {HEADER.size}")
    magic, version, receipt_ns, fecf, rs, corrected, sync_errors, n_station, n_link = HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise MessageError("magic", f"octets 0-2 are {magic!r}, not {MAGIC!r}")
    if version != VERSION:
        raise MessageError("version", f"message version {version} at octet 3; this merge reads {VERSION}")
    try:
        quality = Quality(Fecf(fecf), Rs(rs), corrected, sync_errors)
    except ValueError:
        raise MessageError("quality", f"fecf {fecf} (octet 12) or rs {rs} (octet 13) out of range") from None
    start = HEADER.size
    end = start + n_station + n_link
    if len(payload) < end + 6:
        raise MessageError("truncated", f"{len(payload)} octets: names end at {end}, no frame header after them")
    try:
        station = payload[start:start + n_station].decode()
        link = payload[start + n_station:end].decode()
    except UnicodeDecodeError:
        raise MessageError("names", f"station/link names at octets {start}-{end} are not UTF-8") from None
    return FrameMessage(station, link, receipt_ns, quality, payload[end:])


def message_ids(station: str, spacecraft: str, receipt_ns: int, headers: Iterable[FrameHeader]) -> Iterator[str]:
    """Nats-Msg-Id of each frame of one received batch (see the module docstring)."""
    wraps: dict[int, int] = {}
    last: dict[int, int] = {}
    for h in headers:
        previous = last.get(h.vcid)
        if previous is not None and h.count <= previous:
            wraps[h.vcid] = wraps.get(h.vcid, 0) + 1
        last[h.vcid] = h.count
        yield f"{station}.{spacecraft}.{h.vcid}.{receipt_ns}-{wraps.get(h.vcid, 0)}.{h.count}"
