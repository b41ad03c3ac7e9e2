"""Frame checks: length, frame error control, virtual channel frame counts, the CLCW in the OCF."""
from __future__ import annotations

import numpy as np

from cython_ext import crc as _crc
from groundstation.chain.stage import FrameBatch, Stage, StageContext
from protocols.ccsds.tmframe import decode_headers


class FrameChecks(Stage):
    """Keeps the frames of a batch that have the profile's length and a good FECF; counts frames and
    frame count gaps per virtual channel (idle frames are counted but not gap-checked) and hands
    the newest CLCW to the commanding side."""

    name = "fecf"

    def __init__(self, context: StageContext) -> None:
        super().__init__(context)
        self.vc_expected: dict[int, int] = {}

    def process(self, batch: FrameBatch) -> FrameBatch | None:
        ctx = self.context
        fl = ctx.profile.frame_length
        good = [frame for frame in batch.frames if len(frame) == fl]
        if len(good) != len(batch.frames):
            for frame in batch.frames:
                if len(frame) != fl:
                    self.reject(batch.link, "length", f"{len(frame)} octets, {ctx.name} frames have {fl}")
        if not good:
            return None
        data = b"".join(good)
        rows = np.frombuffer(data, dtype=np.uint8).reshape(len(good), fl)
        if ctx.profile.has_fecf:
            ok = _crc.crc16_strided(data, fl, fl - 2) == ((rows[:, fl - 2].astype(np.uint16) << 8) | rows[:, fl - 1])
            if not ok.all():
                for _ in range(int((~ok).sum())):
                    self.reject(batch.link, "fecf", "frame error control mismatch")
                keep = ok.tolist()
                good = [f for f, k in zip(good, keep, strict=True) if k]
                rows = rows[ok]
            self.count("ok", len(good))
            if not good:
                return None
        ctx.state.last_frame_time = batch.receipt
        self.count_vc(rows)
        if ctx.profile.ocf_offset is not None and ctx.events.on_clcw is not None:
            self.clcw(good[-1], ctx.profile.ocf_offset, ctx.events.on_clcw)
        return FrameBatch(batch.link, good, batch.receipt)

    def reject(self, link: str, reason: str, detail: str) -> None:
        ctx = self.context
        ctx.metrics.inc("queqiao_frames_rejected_total", (link, reason))
        self.count("rejected", stage=reason)
        ctx.log.warning(f"{link}:{reason}", "link %s: %s frame rejected (%s): %s", link, ctx.name, reason, detail)

    def count_vc(self, rows: np.ndarray) -> None:
        """VC frame counter gaps, per virtual channel."""
        ctx = self.context
        p = ctx.profile
        h = decode_headers(rows, p.kind, fields=("vcid", "vc_count"))
        vcids, counts = h["vcid"], h["vc_count"]
        for vcid in np.unique(vcids).tolist():
            vc = counts[vcids == vcid]
            ctx.metrics.inc("queqiao_frames_total", (ctx.name, str(vcid)), int(vc.size))
            if vcid == p.idle_vcid:
                continue
            expected = self.vc_expected.get(vcid)
            self.vc_expected[vcid] = (int(vc[-1]) + 1) % p.count_modulus
            previous = np.empty_like(vc)
            previous[1:] = (vc[:-1] + 1) % p.count_modulus
            previous[0] = vc[0] if expected is None else expected
            for at in np.flatnonzero(vc != previous).tolist():
                lost = (int(vc[at]) - int(previous[at])) % p.count_modulus
                ctx.metrics.inc("queqiao_frame_gaps_total", (ctx.name, str(vcid)), lost)
                ctx.log.warning(f"{ctx.name}:vc{vcid}:gap", "%s VC%d: %d frame(s) lost (count %d, expected %d)",
                                ctx.name, vcid, lost, int(vc[at]), int(previous[at]))

    def clcw(self, frame: bytes, start: int, hook) -> None:
        word = int.from_bytes(frame[start:start + 4], "big")
        if word >> 31:  # type 1: not a CLCW
            return
        hook(self.context.name, {
            "vcid": (word >> 18) & 0x3F, "no_rf": (word >> 15) & 1, "no_bit_lock": (word >> 14) & 1,
            "lockout": (word >> 13) & 1, "wait": (word >> 12) & 1, "retransmit": (word >> 11) & 1,
            "farm_b_counter": (word >> 9) & 3, "report_value": word & 0xFF,
        })
