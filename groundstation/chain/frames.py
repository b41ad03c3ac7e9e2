"""Frame checks: length, frame error control, virtual channel frame counts, the CLCW in the OCF."""
from __future__ import annotations

import numpy as np

from groundstation.chain.labels import LabelOf, declared_vcids
from groundstation.chain.stage import FrameBatch, Stage, StageContext
from protocols.ccsds.tmframe import decode_headers, fecf_ok_many
from protocols.ccsds.vcmux import BATCH_FIELDS

#: Frames/s assumed when the mission database gives no symbol rate: more than the daemon ingests.
DEFAULT_MAX_FRAME_RATE = 100_000.0
#: A frame count gap is taken as lost frames while it is at most this many times what the link
#: could have sent since the VC's last batch (plus :data:`GAP_SLACK` frames); beyond, it is a resync.
GAP_RATE_MARGIN = 2.0
GAP_SLACK = 64


class FrameChecks(Stage):
    """Keeps the frames of a batch that have the profile's length and a good FECF; counts frames and
    frame count gaps per virtual channel (idle frames are counted but not gap-checked) and hands
    the newest CLCW to the commanding side.

    A gap is plausibility-checked against the link rate: more frames "lost" than the link could
    have sent since the VC's last batch (a flipped count bit, a foreign frame, a reset on board)
    is a resync, counted in ``queqiao_frame_count_resyncs_total``, not in the frames lost.  The
    rate is the mission's symbol rate over the frame's bits (an upper bound: coding only adds
    symbols), else :data:`DEFAULT_MAX_FRAME_RATE`."""

    name = "fecf"

    def __init__(self, context: StageContext) -> None:
        super().__init__(context)
        self.vc_expected: dict[int, int] = {}
        self.vc_receipt: dict[int, float] = {}
        self.vc_label = LabelOf(declared_vcids(context.spacecraft))
        symbol_rate = context.spacecraft.profile.symbol_rate
        self.max_frame_rate = symbol_rate / (8 * context.profile.frame_length) if symbol_rate else \
            DEFAULT_MAX_FRAME_RATE

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
            ok = fecf_ok_many(data, fl)
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
        p = ctx.profile
        headers = decode_headers(rows, p.kind, p.zone_offset, fields=BATCH_FIELDS)
        # A pinned link's batch skips the router, and the RS decoder may "correct" a codeblock into
        # another spacecraft's header: such a frame is rejected here, never decoded as this one's.
        ours = (headers["version"] == p.version) & (headers["scid"] == ctx.spacecraft.scid)
        if not ours.all():
            for version, scid in zip(headers["version"][~ours].tolist(), headers["scid"][~ours].tolist(), strict=True):
                self.reject(batch.link, "unknown_spacecraft", f"version {version} SCID {scid} on a {ctx.name} link")
            good = [f for f, k in zip(good, ours.tolist(), strict=True) if k]
            if not good:
                return None
            headers = {key: column[ours] for key, column in headers.items()}
        self.count_vc(headers, batch.receipt)
        if p.insert_zone_time is not None:  # the frame's own onboard time; timed packets refine it later
            ctx.state.onboard_time = p.insert_zone_onboard_time(good[-1])
        if p.ocf_offset is not None and ctx.events.on_clcw is not None:
            self.clcw(good[-1], p.ocf_offset, ctx.events.on_clcw)
        return FrameBatch(batch.link, good, batch.receipt, headers)

    def reject(self, link: str, reason: str, detail: str) -> None:
        ctx = self.context
        ctx.metrics.inc("queqiao_frames_rejected_total", (link, reason))
        self.count("rejected", stage=reason)
        ctx.log.warning(f"{link}:{reason}", "link %s: %s frame rejected (%s): %s", link, ctx.name, reason, detail)

    def count_vc(self, headers: dict[str, np.ndarray], receipt: float) -> None:
        """VC frame counter gaps, per virtual channel."""
        ctx = self.context
        p = ctx.profile
        vcids, counts = headers["vcid"], headers["vc_count"]
        single = bool((vcids == vcids[0]).all())
        for vcid in [int(vcids[0])] if single else np.unique(vcids).tolist():
            vc = counts if single else counts[vcids == vcid]
            labels = (ctx.name, self.vc_label(vcid))
            ctx.metrics.inc("queqiao_frames_total", labels, int(vc.size))
            if vcid == p.idle_vcid:
                continue
            expected = self.vc_expected.get(vcid)
            self.vc_expected[vcid] = (int(vc[-1]) + 1) % p.count_modulus
            previous = np.empty_like(vc)
            previous[1:] = (vc[:-1] + 1) % p.count_modulus
            previous[0] = vc[0] if expected is None else expected
            gaps = np.flatnonzero(vc != previous).tolist()
            if gaps:
                elapsed = max(receipt - self.vc_receipt.get(vcid, receipt), 0.0)
                plausible = GAP_RATE_MARGIN * self.max_frame_rate * elapsed + GAP_SLACK + vc.size
                for at in gaps:
                    self.gap(vcid, labels, int(vc[at]), int(previous[at]), plausible)
            self.vc_receipt[vcid] = receipt

    def gap(self, vcid: int, labels: tuple[str, str], count: int, expected: int, plausible: float) -> None:
        ctx = self.context
        lost = (count - expected) % ctx.profile.count_modulus
        if lost > plausible:
            ctx.metrics.inc("queqiao_frame_count_resyncs_total", labels)
            self.count("resync", stage="vc_count")
            ctx.log.warning(f"{ctx.name}:vc{vcid}:resync", "%s VC%d: count %d, expected %d: %d frames is more than "
                            "the link could have sent (%.0f); resynchronised", ctx.name, vcid, count, expected, lost,
                            plausible)
            return
        ctx.metrics.inc("queqiao_frame_gaps_total", labels, lost)
        ctx.log.warning(f"{ctx.name}:vc{vcid}:gap", "%s VC%d: %d frame(s) lost (count %d, expected %d)",
                        ctx.name, vcid, lost, count, expected)

    def clcw(self, frame: bytes, start: int, hook) -> None:
        word = int.from_bytes(frame[start:start + 4], "big")
        if word >> 31:  # type 1: not a CLCW
            return
        hook(self.context.name, {
            "vcid": (word >> 18) & 0x3F, "no_rf": (word >> 15) & 1, "no_bit_lock": (word >> 14) & 1,
            "lockout": (word >> 13) & 1, "wait": (word >> 12) & 1, "retransmit": (word >> 11) & 1,
            "farm_b_counter": (word >> 9) & 3, "report_value": word & 0xFF,
        })
