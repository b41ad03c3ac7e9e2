"""Telecommand reception: CLTUs out of a byte stream, TC frame checks, FARM-1.

Datagram links carry one TC frame per message (a message that starts with the
CLTU start sequence EB 90 is decoded as a CLTU: the first two bits of a TC frame,
its version, are 00, so the two cannot be confused).  Stream links carry CLTUs
(BCH-coded, optionally randomized), found by :class:`CltuExtractor`.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from protocols.ccsds.cltu import BLOCK_LENGTH, START_SEQUENCE, TAIL_SEQUENCE, decode_cltu
from protocols.ccsds.cop1 import Farm1, FarmResult, FrameKind
from protocols.ccsds.sdls import DEFAULT_WINDOW, AntiReplayWindow, SecurityAssociation, SecurityError, process_security
from protocols.ccsds.tcframe import TcFrame, TcProfile, parse_tc_frame
from protocols.errors import ProtocolError

log = logging.getLogger("queqiao.flightsw.uplink")

#: A stream without a CLTU tail for this long is garbage; the extractor resynchronises.
MAX_CLTU = 2 + (1024 // 7 + 2) * BLOCK_LENGTH + len(TAIL_SEQUENCE)


class CltuExtractor:
    """Whole CLTUs out of an arbitrarily chunked byte stream (one per source)."""

    def __init__(self, *, randomized: bool = False) -> None:
        self.randomized = randomized
        self.buffer = bytearray()
        self.skipped = 0
        self.bad = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """Decoded CLTU contents (TC frames) completed by ``chunk``."""
        buf = self.buffer
        buf += chunk
        out: list[bytes] = []
        while True:
            start = buf.find(START_SEQUENCE)
            if start < 0:
                keep = 1 if buf[-1:] == START_SEQUENCE[:1] else 0
                self.skipped += len(buf) - keep
                del buf[:len(buf) - keep]
                return out
            if start:
                self.skipped += start
                del buf[:start]
            # Walk code blocks until the tail sequence.
            pos = 2
            end = None
            while pos + BLOCK_LENGTH <= len(buf):
                if buf[pos:pos + BLOCK_LENGTH] == TAIL_SEQUENCE:
                    end = pos + BLOCK_LENGTH
                    break
                pos += BLOCK_LENGTH
            if end is None:
                if len(buf) > MAX_CLTU:  # no tail where one must have been: drop this start
                    self.bad += 1
                    del buf[:2]
                    continue
                return out
            try:
                decoded = decode_cltu(bytes(buf[:end]), randomized=self.randomized, correct=True)
                out.append(decoded.data)
            except ProtocolError as exc:
                self.bad += 1
                log.warning("CLTU dropped: %s", exc)
            del buf[:end]


@dataclass
class FrameVerdict:
    """What happened to one received TC frame."""

    frame: TcFrame | None
    kind: FrameKind | None
    farm: FarmResult | None
    reason: str  # "accepted", "bypass", "unlock", "set_vr", FARM reasons, or a rejection reason
    security: SecurityError | None = None  # why security processing refused the frame

    @property
    def deliver(self) -> bool:
        """Whether the frame's data field goes to the packet layer."""
        return self.farm is not None and self.farm.accepted and self.kind in (FrameKind.AD, FrameKind.BD)


class TcSecurity:
    """The receiving end of SDLS (CCSDS 355.0-B-2): the spacecraft's SAs and the anti-replay state per SPI.

    With no SAs every frame is refused as unauthenticated (a spacecraft that requires SDLS but
    was given no keys accepts nothing rather than everything).
    """

    def __init__(self, associations: Mapping[int, SecurityAssociation], *, window: int = DEFAULT_WINDOW) -> None:
        self.associations = dict(associations)
        self.replay = AntiReplayWindow(window)
        self.accepted = 0
        self.rejected: Counter[str] = Counter()

    @property
    def last_sequence(self) -> int:
        return max(self.replay.last.values(), default=0)


class TcReceiver:
    """Checks TC frames (length, FECF, SCID, VCID), their security when SDLS is on, and runs them
    through FARM-1: security comes first, so only authentic frames can move V(R) or unlock FARM."""

    def __init__(self, scid: int, *, vcid: int = 0, window: int = 10, profile: TcProfile | None = None,
                 security: TcSecurity | None = None) -> None:
        self.scid = scid
        self.vcid = vcid
        self.profile = profile or TcProfile()
        self.security = security
        self.farm = Farm1(window=window)
        self.counters: Counter[str] = Counter()

    def receive(self, data: bytes) -> FrameVerdict:
        try:
            frame = parse_tc_frame(data, self.profile)
        except ProtocolError as exc:
            return self._reject(None, "bad_frame", str(exc))
        if frame.crc_ok is False:
            return self._reject(frame, "bad_fecf", "FECF does not check")
        if frame.scid != self.scid:
            return self._reject(frame, "wrong_scid", f"SCID {frame.scid}, this spacecraft is {self.scid}")
        if frame.vcid != self.vcid:
            return self._reject(frame, "wrong_vcid", f"VCID {frame.vcid}, the command VC is {self.vcid}")
        if self.security is not None:
            sec = self.security
            try:
                frame = process_security(data, sec.associations, self.profile, sec.replay).frame
            except SecurityError as exc:
                sec.rejected[exc.cause] += 1
                self.counters[f"sdls_{exc.cause}"] += 1  # logged by the runtime, at a bounded rate
                return FrameVerdict(frame, None, None, f"sdls_{exc.cause}", exc)
            except ProtocolError as exc:
                return self._reject(frame, "bad_frame", str(exc))
            sec.accepted += 1
        if frame.bypass_flag == 0 and frame.control_command_flag == 1:
            return self._reject(frame, "bad_flags", "control command flag without bypass (reserved)")
        kind = (FrameKind.AD if frame.bypass_flag == 0 else
                FrameKind.BC if frame.control_command_flag else FrameKind.BD)
        result = self.farm.receive(kind, frame.frame_sequence_number, frame.data)
        self.counters[f"{kind.value}_{result.reason}"] += 1
        if not result.accepted:
            log.info("TC frame %s N(S)=%d not accepted: %s (V(R)=%d)", kind.value, frame.frame_sequence_number,
                     result.reason, self.farm.vr)
        return FrameVerdict(frame, kind, result, result.reason)

    def _reject(self, frame: TcFrame | None, reason: str, detail: str) -> FrameVerdict:
        self.counters[reason] += 1
        log.warning("TC frame rejected (%s): %s", reason, detail)
        return FrameVerdict(frame, None, None, reason)
