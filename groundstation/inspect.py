"""`groundstation inspect`: decode and print every frame and packet of a capture file.

Formats: ``cadu`` (an ASM-synchronised stream, derandomized unless --no-derandomize),
``frames`` (back-to-back transfer frames of --frame-length octets) and ``packets``
(concatenated space packets).  Output is one line per frame / packet / error and a
summary; with --json one JSON object per line, each with a "kind" of "frame",
"packet", "error" or "summary".  Exit status: 0 clean, 1 the data had errors (they
are reported), 2 the file could not be read.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cython_ext import crc as _crc
from groundstation.archive import SEGMENT_MAGIC
from protocols.ccsds.pus import PUS_VERSION_C
from protocols.ccsds.rs import RsCode
from protocols.ccsds.spacepacket import IDLE_APID, PRIMARY_HEADER_LENGTH, PacketType, SequenceFlags
from protocols.ccsds.sync import ASM, FrameSynchronizer, derandomize
from protocols.ccsds.tmframe import FHP_IDLE_DATA_ONLY, FrameProfile, ReedSolomon, TmFrame, parse_frame
from protocols.ccsds.vcmux import FrameDemux
from protocols.errors import ProtocolError

DEFAULT_FRAME_LENGTH = 1115


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="decode and print every frame and packet of a capture file",
        description="Decode a capture file and print every frame and packet (exit 1 when the data has errors, "
                    "2 when the file cannot be read).")
    parser.add_argument("file", help="capture file")
    parser.add_argument("--format", choices=("auto", "cadu", "frames", "packets"), default="auto",
                        help="cadu: ASM-synchronised stream; frames: back-to-back transfer frames; "
                             "packets: concatenated space packets; auto (default): cadu when attached sync "
                             "markers recur at a fixed distance, else frames")
    parser.add_argument("--mission", metavar="NAME",
                        help="take the frame profile (type, length, insert zone, FECF, OCF, Reed-Solomon, "
                             "randomizer) from this spacecraft of the mission database; without it the profile "
                             "of the spacecraft whose SCID the first good frame carries, when it fits the file")
    parser.add_argument("--frame-length", type=int, default=None, metavar="N",
                        help=f"transfer frame length in octets (default: the mission's, else {DEFAULT_FRAME_LENGTH}; "
                             "cadu: the marker distance)")
    parser.add_argument("--frame-type", choices=("auto", "tm", "aos"), default="auto",
                        help="TM (132.0-B) or AOS (732.0-B) frames; auto reads the first frame's version")
    parser.add_argument("--ocf", action="store_true", help="frames carry an OCF (AOS; TM frames say so themselves)")
    parser.add_argument("--no-fecf", action="store_true", help="frames carry no FECF")
    parser.add_argument("--fhec", action="store_true", help="AOS frames carry a frame header error control")
    parser.add_argument("--insert-zone", type=int, default=None, metavar="N",
                        help="AOS insert zone length in octets (default: the mission's, else 0)")
    parser.add_argument("--rs", type=_rs_spec, default=None, metavar="E/I/BASIS",
                        help="cadu: Reed-Solomon check of each codeblock, e.g. 16/1/dual or 8/5/conventional "
                             "(default: the mission's, else none; 'none' turns it off)")
    parser.add_argument("--no-derandomize", action="store_true", help="cadu: the frames are not randomized")
    parser.add_argument("--asm-bit-errors", type=int, default=2, metavar="N",
                        help="cadu: bit errors tolerated in a marker once locked (default 2)")
    parser.add_argument("--time-length", type=int, default=6, metavar="N",
                        help="octets of the PUS TM time field (default 6: CUC 4+2)")
    parser.add_argument("--skip-header-bytes", type=int, default=0, metavar="N",
                        help="packets: skip N octets before every packet (a recorder's per-packet prefix, "
                             "e.g. a time stamp); default 0")
    parser.add_argument("--lenient-version", action="store_true",
                        help="packets: a packet whose version is not 0 is counted and passed over (by its "
                             "length field) instead of stopping the file")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--values", action="store_true",
                        help="decode each packet the mission database knows: engineering values with units, "
                             "onboard time as ISO UTC")
    parser.add_argument("--no-idle", action="store_true", help="hide idle packets and idle-data frames")
    parser.add_argument("--vc", type=int, action="append", metavar="VCID",
                        help="only frames and packets of this virtual channel (repeatable)")
    parser.add_argument("--apid", type=int, action="append", metavar="APID",
                        help="only packets of this APID (repeatable); frames are not listed")
    parser.set_defaults(func=run)


def _rs_spec(text: str) -> ReedSolomon | bool:
    """``--rs E/I/BASIS`` (basis dual or conventional); ``none``: no Reed-Solomon (False)."""
    if text.lower() == "none":
        return False
    parts = text.split("/")
    try:
        e, interleave = int(parts[0]), int(parts[1]) if len(parts) > 1 else 1
        return ReedSolomon(e=e, interleave=interleave, basis=parts[2] if len(parts) > 2 else "dual")  # type: ignore[arg-type]
    except (ValueError, IndexError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected E/I/BASIS, e.g. 16/1/dual ({exc})") from None


# --------------------------------------------------------------------------- mission lookup (optional)

def _mission_lookup() -> Callable[[int | None, bytes], dict[str, Any]]:
    """Names from the mission registry when it is there and loads; otherwise nothing."""
    try:
        from protocols.missions.registry import registry

        reg = registry()
        crafts = list(reg)
    except Exception:  # noqa: BLE001 - the registry is optional for inspect
        return lambda scid, data: {}

    def lookup(scid: int | None, data: bytes) -> dict[str, Any]:
        candidates = crafts
        if scid is not None:
            candidates = [sc for sc in crafts if sc.scid == scid]
        found = []
        for sc in candidates:
            try:
                found.append((sc.name, reg.resolve(sc, data).name))
            except Exception:  # noqa: BLE001 - unknown packet: listed from its header only
                continue
        if len(found) == 1:
            return {"spacecraft": found[0][0], "packet": found[0][1]}
        if scid is not None and len(candidates) == 1:
            sc = candidates[0]
            apid = ((data[0] << 8) | data[1]) & 0x7FF if len(data) >= 2 else -1
            declared = next((a for a in sc.apids if a.number == apid), None)
            if declared is None:
                return {"spacecraft": sc.name}
            return {"spacecraft": sc.name, "apid_name": declared.name, **({"opaque": True} if declared.opaque else {})}
        return {}

    return lookup


# --------------------------------------------------------------------------- records

def packet_record(data: bytes, offset: int, time_length: int) -> dict[str, Any]:
    """What the primary header (and a PUS-C secondary header, if any) says about a packet."""
    w0 = (data[0] << 8) | data[1]
    w1 = (data[2] << 8) | data[3]
    length = (data[4] << 8) | data[5]
    ptype = (w0 >> 12) & 1
    sec = (w0 >> 11) & 1
    apid = w0 & 0x7FF
    rec: dict[str, Any] = {
        "kind": "packet", "offset": offset, "apid": apid, "type": PacketType(ptype).name,
        "secondary_header_flag": sec, "sequence_flags": SequenceFlags(w1 >> 14).name,
        "sequence_count": w1 & 0x3FFF, "length": length, "octets": len(data),
    }
    if apid == IDLE_APID:
        rec["idle"] = True
        return rec
    s = PRIMARY_HEADER_LENGTH
    if sec and len(data) > s + 2 and data[s] >> 4 == PUS_VERSION_C:
        rec["pus_version"] = PUS_VERSION_C
        rec["service"] = data[s + 1]
        rec["subtype"] = data[s + 2]
        if ptype == PacketType.TM and len(data) >= s + 7:
            rec["message_counter"] = int.from_bytes(data[s + 3:s + 5], "big")
            rec["destination_id"] = int.from_bytes(data[s + 5:s + 7], "big")
            rec["time"] = data[s + 7:s + 7 + time_length].hex()
        elif ptype == PacketType.TC and len(data) >= s + 5:
            rec["ack_flags"] = data[s] & 0x0F
            rec["source_id"] = int.from_bytes(data[s + 3:s + 5], "big")
        rec["crc_ok"] = len(data) >= s + 5 and _crc.crc16(data[:-2]) == int.from_bytes(data[-2:], "big")
    return rec


def frame_record(frame: bytes, offset: int, index: int, profile: FrameProfile) -> dict[str, Any]:
    f = parse_frame(frame, profile)
    rec: dict[str, Any] = {"kind": "frame", "offset": offset, "index": index, "type": profile.kind,
                           "scid": f.scid, "vcid": f.vcid}
    if isinstance(f, TmFrame):
        rec["mc_count"] = f.mc_count
    else:
        rec["mc_count"] = None  # AOS frames have no master channel count
        rec["replay_flag"] = f.replay_flag
        if f.fhec_ok is not None:
            rec["fhec_ok"] = f.fhec_ok
    rec["vc_count"] = f.vc_count
    rec["fhp"] = f.fhp
    if f.ocf is not None:
        rec["ocf"] = f"{f.ocf:08x}"
    rec["crc_ok"] = f.crc_ok
    return rec


def _error(offset: int | None, message: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "error", "offset": offset, "message": message, **extra}


# --------------------------------------------------------------------------- walks

def walk_packets(data: bytes, time_length: int, lookup, base: int = 0, *, skip_header_bytes: int = 0,
                 lenient_version: bool = False) -> Iterator[dict[str, Any]]:
    """Packet records of concatenated space packets, each after ``skip_header_bytes`` of prefix;
    ends with a ``_stats`` record saying what was passed over."""
    stats: Counter = Counter()
    pos = 0
    while pos < len(data):
        if skip_header_bytes:
            if len(data) - pos < skip_header_bytes:
                yield _error(base + pos, f"{len(data) - pos} trailing octets are fewer than the "
                                         f"{skip_header_bytes}-octet packet prefix")
                stats["trailing_octets"] += len(data) - pos
                break
            stats["prefix_octets_skipped"] += skip_header_bytes
            pos += skip_header_bytes
        if len(data) - pos < PRIMARY_HEADER_LENGTH:
            yield _error(base + pos, f"{len(data) - pos} trailing octets are too few for a packet header")
            stats["trailing_octets"] += len(data) - pos
            break
        version = data[pos] >> 5
        if version and not lenient_version:
            yield _error(base + pos, f"packet version {version} is not 0: not a space packet; "
                                     "the rest of the file is not decoded (--lenient-version goes on)")
            stats["octets_not_decoded"] += len(data) - pos
            break
        total = ((data[pos + 4] << 8) | data[pos + 5]) + 7
        if pos + total > len(data):
            yield _error(base + pos, f"packet of {total} octets is truncated: the file ends after "
                                     f"{len(data) - pos}")
            stats["trailing_octets"] += len(data) - pos
            break
        if version:
            stats["packets_version_not_0"] += 1
            stats["octets_version_not_0"] += total
            pos += total
            continue
        packet = data[pos:pos + total]
        rec = packet_record(packet, base + pos, time_length)
        rec.update(lookup(None, packet))
        yield rec
        pos += total
    yield {"kind": "_stats", "skip_header_bytes": skip_header_bytes, **stats}


@dataclass(frozen=True)
class Geometry:
    """How the file's frames are laid out: ``format`` cadu or frames, the frames' ``profile`` (its
    ``rs`` only for cadu: frames files are already decoded) and the spacecraft it came from."""

    format: str
    profile: FrameProfile
    mission: str | None

    @property
    def codeblock_length(self) -> int:
        return self.profile.codeblock_length


def _marker_distance(data: bytes) -> int | None:
    """The distance at which attached sync markers recur (a CADU's length), from the first few."""
    first = data.find(ASM)
    if first < 0:
        return None
    for _ in range(8):
        second = data.find(ASM, first + 1)
        if second < 0:
            return None
        distance = second - first
        if data[second + distance:second + distance + len(ASM)] == ASM or second + distance >= len(data):
            return distance
        first = second
    return None


def _headers_match(frame: bytes, profile: FrameProfile, scid: int) -> bool:
    """Whether a frame's version and SCID are those of the spacecraft ``scid`` with ``profile``."""
    if len(frame) < 2 or frame[0] >> 6 != profile.version:
        return False
    if profile.kind == "TM":
        return ((frame[0] & 0x3F) << 4) | (frame[1] >> 4) == scid
    return ((frame[0] & 0x3F) << 2) | (frame[1] >> 6) == scid


def _mission_by_scid(fmt: str, data: bytes, distance: int | None, frame_length: int | None):
    """The registry spacecraft whose profile fits the file and whose SCID most of its first frames
    carry (a corrupted first frame does not hide it); None when none does."""
    try:
        from protocols.missions.registry import registry

        crafts = list(registry())
    except Exception:  # noqa: BLE001 - the registry is optional for inspect
        return None
    best, best_votes = None, 0
    for sc in crafts:
        p = sc.profile.frame
        if frame_length is not None and frame_length != p.frame_length:
            continue
        if fmt == "cadu":
            width = p.codeblock_length
            if distance is None or distance != width + len(ASM):
                continue
            start = data.find(ASM)
            bodies = [data[start + len(ASM) + i * distance:start + len(ASM) + i * distance + width] for i in range(8)]
            frames = [derandomize(b) if p.randomized else b for b in bodies if len(b) == width]
        else:
            frames = [data[i * p.frame_length:(i + 1) * p.frame_length] for i in range(8)]
            frames = [f for f in frames if len(f) == p.frame_length]
        votes = sum(_headers_match(f, p, sc.scid) for f in frames)
        if votes * 2 > len(frames) and votes > best_votes:
            best, best_votes = sc, votes
    return best


def resolve_geometry(args, data: bytes) -> Geometry:
    """The frame profile from --mission, else from the spacecraft the frames' SCID names, then the
    explicit flags over it.  ValueError when it cannot be built."""
    fmt = args.format
    distance = _marker_distance(data) if fmt in ("auto", "cadu") else None
    if fmt == "auto":
        fmt = "cadu" if distance else "frames"
    sc = None
    if args.mission:
        from protocols.missions.registry import registry

        reg = registry()
        if args.mission not in reg:
            raise ValueError(f"no spacecraft {args.mission!r} in the mission database; known: {', '.join(reg.names)}")
        sc = reg.spacecraft(args.mission)
    else:
        sc = _mission_by_scid(fmt, data, distance, args.frame_length)
    base = sc.profile.frame if sc is not None else None
    rs = base.rs if base is not None else None
    if args.rs is not None:
        rs = args.rs or None
    if fmt != "cadu":
        rs = None
    if args.frame_length is not None:
        frame_length = args.frame_length
    elif base is not None:
        frame_length = base.frame_length
    elif fmt == "cadu" and distance:
        frame_length = distance - len(ASM) - (rs.check_length if rs else 0)
    else:
        frame_length = DEFAULT_FRAME_LENGTH
    insert_zone = args.insert_zone if args.insert_zone is not None else (base.insert_zone_length if base else 0)
    zone_time = base.insert_zone_time if base is not None and insert_zone == base.insert_zone_length else None
    kind = args.frame_type.upper()
    if kind == "AUTO":
        kind = base.kind if base is not None else "?"
    profile = FrameProfile(
        frame_length=frame_length, kind="AOS" if kind == "AOS" else "TM",
        has_ocf=args.ocf or bool(base and base.has_ocf),
        has_fecf=not args.no_fecf and (base.has_fecf if base is not None else True),
        randomized=fmt == "cadu" and not args.no_derandomize and (base.randomized if base is not None else True),
        aos_fhec=kind == "AOS" and (args.fhec or bool(base and base.aos_fhec)),
        insert_zone_length=insert_zone if kind == "AOS" else 0, rs=rs, insert_zone_time=zone_time)
    if kind == "?":
        profile = dataclasses.replace(profile, kind="TM")  # settled by the first frame's version (_settle_kind)
    return Geometry(fmt, profile, sc.name if sc is not None else None)


def _settle_kind(args, geometry: Geometry, first_frame: bytes | None) -> FrameProfile:
    """Without a mission or --frame-type: the first frame's version says TM or AOS, a TM frame's
    OCF flag whether it has an OCF."""
    p = geometry.profile
    if geometry.mission is None and args.frame_type == "auto" and first_frame is not None:
        aos = first_frame[0] >> 6 == 1
        p = dataclasses.replace(p, kind="AOS" if aos else "TM", insert_zone_length=(args.insert_zone or 0) if aos else 0,
                                aos_fhec=args.fhec and aos)
    if p.kind == "TM" and first_frame is not None and len(first_frame) >= 2:
        p = dataclasses.replace(p, has_ocf=bool(first_frame[1] & 1))
    return p


def _frames_of(geometry: Geometry, data: bytes, stats: Counter, asm_bit_errors: int
               ) -> Iterator[tuple[int, bytes] | dict[str, Any]]:
    fl = geometry.codeblock_length
    if geometry.format == "frames":
        n = len(data) // fl
        for i in range(n):
            yield i * fl, data[i * fl:(i + 1) * fl]
        if len(data) % fl:
            yield _error(n * fl, f"{len(data) % fl} trailing octets are not a whole {fl}-octet frame")
        return
    sync = FrameSynchronizer(fl, derandomize=geometry.profile.randomized, max_bit_errors=asm_bit_errors)
    result = sync.feed(data)
    tail = sync.flush()
    for f in result.frames + tail.frames:
        yield f.offset, f.data
    for ev in result.events + tail.events:
        if ev.kind == "lost":
            yield _error(ev.offset, f"sync lost: {ev.detail}")
        elif ev.kind == "slip":
            yield _error(ev.offset, f"sync slip: {ev.detail}")
    for key in ("skipped_octets", "sync_losses", "slips", "flywheel_frames"):
        stats[key] += sync.counters[key]


#: Demultiplexer anomalies that are properties of the recording, not corrupted data: reported as
#: "gap" records (lost frames, a packet the recording's end cuts), not as errors.
GAP_ANOMALIES = frozenset({"frame_gap", "incomplete_at_end"})


def _anomaly(a, offsets: list[int]) -> dict[str, Any]:
    rec = _error(offsets[a.frame] if a.frame < len(offsets) else None, f"{a.kind}: {a.detail}",
                 frame=a.frame, anomaly=a.kind, scid=a.scid, vcid=a.vcid, dropped=a.dropped)
    if a.kind in GAP_ANOMALIES:
        rec["kind"] = "gap"
    return rec


def walk_frames(args, data: bytes, lookup) -> Iterator[dict[str, Any]]:
    stats: Counter = Counter()
    try:
        geometry = resolve_geometry(args, data)
    except ValueError as exc:
        yield _error(None, f"frame profile: {exc}")
        return
    items = list(_frames_of(geometry, data, stats, args.asm_bit_errors))
    frames = [it for it in items if isinstance(it, tuple)]
    errors = [it for it in items if isinstance(it, dict)]
    rs = geometry.profile.rs
    corrected: list[int | None] = [None] * len(frames)
    uncorrectable = [False] * len(frames)
    if rs is not None and frames:
        code = RsCode(rs.e, rs.interleave, rs.basis, geometry.profile.frame_length)
        decoded = code.decode_many(b"".join(f for _, f in frames))
        symbols, bad = decoded.corrected_symbols.tolist(), decoded.uncorrectable.tolist()
        frames = [(offset, row.tobytes()) for (offset, _), row in zip(frames, decoded.frames, strict=True)]
        corrected = [None if b else int(n) for n, b in zip(symbols, bad, strict=True)]
        uncorrectable = [bool(b) for b in bad]
    try:
        first_good = next((f for (_, f), b in zip(frames, uncorrectable, strict=True) if not b), None)
        profile = dataclasses.replace(_settle_kind(args, geometry, first_good), rs=None)
    except ValueError as exc:
        yield _error(None, f"frame profile: {exc}")
        return
    mission_scid = None
    if geometry.mission is not None:
        from protocols.missions.registry import registry

        mission_scid = registry().spacecraft(geometry.mission).scid
    demux = FrameDemux(profile)
    offsets: list[int] = []
    for index, (offset, frame) in enumerate(frames):
        offsets.append(offset)
        try:
            rec = frame_record(frame, offset, index, profile)
        except ProtocolError as exc:
            rec = _error(offset + (exc.offset or 0), f"frame {index}: {exc}")
        if rec["kind"] == "frame":
            rec["rs_corrected"] = corrected[index]
            rec["rs_uncorrectable"] = uncorrectable[index]
            onboard = profile.insert_zone_onboard_time(frame) if not uncorrectable[index] else None
            if onboard is not None:
                rec["onboard_time"] = onboard
        yield rec
        if rec["kind"] == "error":
            continue  # its header cannot be read: reported once, kept from the demultiplexer
        if uncorrectable[index]:
            yield _error(offset, f"frame {index}: Reed-Solomon uncorrectable ({rs}); not decoded", reason="rs_uncorrectable")
            stats["rs_uncorrectable"] += 1
            continue
        stats["rs_corrected_symbols"] += corrected[index] or 0
        if mission_scid is not None and rec["kind"] == "frame" and rec["scid"] != mission_scid \
                and frame[0] >> 6 == profile.version:
            yield _error(offset, f"frame {index}: SCID {rec['scid']} is not {geometry.mission}'s ({mission_scid}): "
                                 "a corrupted frame, not decoded", reason="foreign_scid")
            continue
        out = demux.feed([frame])
        for a in out.anomalies:
            yield _anomaly(a, offsets)
        for p in out.packets:
            rec = packet_record(p.data, offsets[p.frame] + p.offset, args.time_length)
            rec.update({"scid": p.scid, "vcid": p.vcid, "frame": p.frame})
            rec.update(lookup(p.scid, p.data))
            yield rec
    for a in demux.flush().anomalies:
        yield _anomaly(a, offsets)
    yield from errors
    yield {"kind": "_stats", "format": geometry.format, "mission": geometry.mission, **stats,
           "rs_corrected_symbols": stats["rs_corrected_symbols"], "rs_uncorrectable": stats["rs_uncorrectable"],
           "lost_frames": demux.counters["lost_frames"], "idle_frames": demux.counters["idle_frames"],
           "idle_packets": demux.counters["idle_packets"]}


# --------------------------------------------------------------------------- output

def _text(rec: dict[str, Any]) -> str:
    kind = rec["kind"]
    if kind == "frame":
        mc = f" MC {rec['mc_count']}" if rec.get("mc_count") is not None else ""
        crc = {True: "ok", False: "BAD", None: "none"}[rec["crc_ok"]]
        ocf = f" OCF {rec['ocf']}" if "ocf" in rec else ""
        rs = ""
        if rec.get("rs_uncorrectable"):
            rs = " RS uncorrectable"
        elif rec.get("rs_corrected") is not None:
            rs = f" RS {rec['rs_corrected']} corrected" if rec["rs_corrected"] else " RS ok"
        onboard = f" onboard {_iso(rec['onboard_time'])}" if rec.get("onboard_time") is not None else ""
        return (f"frame   @{rec['offset']:<8} #{rec['index']} {rec['type']} SCID {rec['scid']} VC {rec['vcid']}{mc} "
                f"VC# {rec['vc_count']} FHP {rec['fhp']:#05x}{ocf} FECF {crc}{rs}{onboard}")
    if kind == "packet":
        where = f" SCID {rec['scid']} VC {rec['vcid']}" if "scid" in rec else ""
        text = (f"packet  @{rec['offset']:<8}{where} APID {rec['apid']} {rec['type']} {rec['sequence_flags'].lower()} "
                f"seq {rec['sequence_count']} len {rec['length']}")
        if rec.get("idle"):
            text += " idle"
        if "service" in rec:
            text += f" PUS {rec['service']},{rec['subtype']} CRC {'ok' if rec['crc_ok'] else 'BAD'}"
        if "packet" in rec:
            text += f" [{rec['spacecraft']}/{rec['packet']}]"
        elif "apid_name" in rec:
            text += f" [{rec['spacecraft']}/{rec['apid_name']}{' opaque' if rec.get('opaque') else ''}]"
        elif "spacecraft" in rec:
            text += f" [{rec['spacecraft']}]"
        return text + values_text(rec)
    if kind in ("error", "gap"):
        at = f"@{rec['offset']}" if rec.get("offset") is not None else "@?"
        return f"{kind:<7} {at:<9} {rec['message']}"
    parts = ", ".join(f"{k} {v}" for k, v in rec.items() if k != "kind")
    return f"summary {parts}"


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decoded_values(definition: Any, data: bytes) -> dict[str, Any]:
    """``--values``: the packet's onboard time as ISO UTC and every parameter's engineering value with its unit."""
    from protocols.ccsds.cuc import cuc_to_unix

    try:
        parsed = definition.parse(data)
    except ProtocolError as exc:
        return {"values_error": str(exc)}
    out: dict[str, Any] = {}
    time_field = getattr(getattr(parsed, "secondary", None), "time", None)
    if time_field is not None and "coarse" in time_field:
        unix = float(cuc_to_unix([time_field.coarse], [time_field.get("fine", 0)])[0])
        out["time_utc"] = datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    values: dict[str, dict[str, Any]] = {}
    for path, param in definition.parameters():
        value: Any = parsed
        for part in path.split("."):
            value = value[part]
        values[path.split(".", 1)[-1]] = {"value": value if isinstance(value, str) else _number(value),
                                          "unit": "" if param.calibration.is_state else param.unit}
    out["values"] = values
    return out


def _number(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def with_values(lookup: Callable[[int | None, bytes], dict[str, Any]]) -> Callable[[int | None, bytes], dict[str, Any]]:
    """A lookup that also decodes the packets it names (``--values``)."""
    from protocols.missions.registry import registry

    reg = registry()

    def lookup_and_decode(scid: int | None, data: bytes) -> dict[str, Any]:
        found = lookup(scid, data)
        if "packet" in found:
            found.update(decoded_values(reg.spacecraft(found["spacecraft"]).packet(found["packet"]), data))
        return found

    return lookup_and_decode


def values_text(rec: dict[str, Any]) -> str:
    """The ``--values`` part of a packet's text line: time, then ``name value unit`` for each parameter."""
    parts = [rec["time_utc"]] if "time_utc" in rec else []
    for name, v in rec.get("values", {}).items():
        value = f"{v['value']:.6g}" if isinstance(v["value"], float) else str(v["value"])
        parts.append(f"{name}={value}{(' ' + v['unit']) if v['unit'] else ''}")
    if "values_error" in rec:
        parts.append(f"cannot decode: {rec['values_error']}")
    return ("\n          " + " · ".join(parts)) if parts else ""


def archive_segment_message(path: str, data: bytes) -> str | None:
    """Why ``data`` is not a capture: it is an archive segment, read by replay (None otherwise)."""
    if not data.startswith(SEGMENT_MAGIC):
        return None
    directory = os.path.dirname(os.path.abspath(path))
    return (f"groundstation inspect: {path} is a Queqiao archive segment (.qqa), not a capture; "
            f"feed its frames through the chain with `groundstation replay {directory}`")


def shown(args: argparse.Namespace, rec: dict[str, Any]) -> bool:
    """Whether the --no-idle, --vc and --apid filters keep a frame or packet record (errors always show)."""
    kind = rec["kind"]
    if kind not in ("frame", "packet"):
        return True
    if getattr(args, "no_idle", False) and (rec.get("idle") or (kind == "frame" and rec.get("fhp") == FHP_IDLE_DATA_ONLY)):
        return False
    if getattr(args, "vc", None) and rec.get("vcid") not in args.vc:
        return False
    if getattr(args, "apid", None):
        return kind == "packet" and rec["apid"] in args.apid
    return True


def run(args: argparse.Namespace) -> int:
    """Inspect, ending quietly when the reader of stdout goes away (e.g. ``| head``)."""
    try:
        return inspect_file(args)
    except BrokenPipeError:
        # As the Python docs recommend (signal module, "Note on SIGPIPE"): point stdout at devnull so the
        # interpreter's final flush does not raise again, then exit like a program killed by SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def inspect_file(args: argparse.Namespace) -> int:
    try:
        with open(args.file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        print(f"groundstation inspect: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    archive = archive_segment_message(args.file, data)
    if archive is not None:
        print(archive, file=sys.stderr)
        return 2
    if args.frame_length is not None and args.frame_length < 8 and args.format != "packets":
        print(f"groundstation inspect: --frame-length {args.frame_length} is too short", file=sys.stderr)
        return 2
    if args.skip_header_bytes < 0:
        print(f"groundstation inspect: --skip-header-bytes {args.skip_header_bytes} is negative", file=sys.stderr)
        return 2
    if args.format != "packets" and (args.skip_header_bytes or args.lenient_version):
        print("groundstation inspect: --skip-header-bytes and --lenient-version apply to --format packets",
              file=sys.stderr)
        return 2
    lookup = _mission_lookup()
    if getattr(args, "values", False):
        lookup = with_values(lookup)
    summary: dict[str, Any] = {"kind": "summary", "file": args.file, "format": args.format, "octets": len(data)}
    counts: Counter = Counter()
    if args.format == "packets":
        records = walk_packets(data, args.time_length, lookup, skip_header_bytes=args.skip_header_bytes,
                               lenient_version=args.lenient_version)
        summary.update({"prefix_octets_skipped": 0, "packets_version_not_0": 0, "octets_version_not_0": 0})
    else:
        records = walk_frames(args, data, lookup)
    emit = (lambda r: print(json.dumps(r))) if args.json else (lambda r: print(_text(r)))
    for rec in records:
        kind = rec["kind"]
        if kind == "_stats":
            summary.update({k: v for k, v in rec.items() if k != "kind"})
            continue
        if kind == "frame":
            counts["frames"] += 1
            counts["frames_crc_bad"] += rec["crc_ok"] is False
        elif kind == "packet":
            counts["idle_packets" if rec.get("idle") else "packets"] += 1
            counts["packets_crc_bad"] += rec.get("crc_ok") is False
        elif kind == "gap":
            counts["gaps"] += 1
        else:
            counts["errors"] += 1
        if shown(args, rec):
            emit(rec)
    for key in ("frames", "frames_crc_bad", "packets", "packets_crc_bad", "gaps", "errors"):
        summary[key] = counts[key]
    if args.format == "packets":
        summary["idle_packets"] = counts["idle_packets"]
    emit(summary)
    bad = counts["errors"] or counts["frames_crc_bad"] or counts["packets_crc_bad"]
    return 1 if bad else 0
