"""Reed-Solomon decoding (CCSDS 131.0-B 4.3): the first stage of a spacecraft's chain when its
frame profile has a code (``FrameProfile.rs``).

What a CADU link hands over after the ASM and derandomization is a codeblock: the frame and its
check symbols.  The stage corrects the batch's codeblocks in one kernel call and passes the
frames on; a codeblock with any uncorrectable codeword is rejected (the caller archived it as
received, so replay can try again) and never reaches the frame checks, because the octets of an
uncorrectable codeword cannot be trusted.  Frames already RS-decoded upstream (a link with
``format = "frames"`` from a station that decoded them) have the profile's frame length and pass
as they are; any other length goes on to the frame checks, which reject it by length.
"""
from __future__ import annotations

from groundstation.chain.stage import FrameBatch, Stage, StageContext
from protocols.ccsds.rs import RsCode


class ReedSolomonDecoder(Stage):
    """Corrects codeblocks into frames; counts codewords per result and the symbols corrected."""

    name = "rs"

    def __init__(self, context: StageContext) -> None:
        super().__init__(context)
        rs = context.profile.rs
        self.code = None if rs is None else RsCode(rs.e, rs.interleave, rs.basis, context.profile.frame_length)

    def process(self, batch: FrameBatch) -> FrameBatch | None:
        code = self.code
        if code is None:
            return batch
        width = code.codeblock_length
        coded = [i for i, item in enumerate(batch.frames) if len(item) == width]
        if not coded:
            return batch
        decoded = code.decode_many(b"".join(batch.frames[i] for i in coded))
        self.account(decoded.counts(), int(decoded.corrected_symbols.sum()))
        fl = self.context.profile.frame_length
        flat = decoded.frames.tobytes()  # one copy, then bytes slices (cheaper than a copy per row)
        bad = decoded.uncorrectable.tolist()
        out: list[bytes | None] = list(batch.frames)
        for row, i in enumerate(coded):
            out[i] = None if bad[row] else flat[row * fl:(row + 1) * fl]
        if any(bad):
            self.reject(batch.link, sum(bad))
        kept = [item for item in out if item is not None]
        return FrameBatch(batch.link, kept, batch.receipt) if kept else None

    def account(self, counts: dict[str, int], symbols: int) -> None:
        ctx = self.context
        for result, n in counts.items():
            if n:
                ctx.metrics.inc("queqiao_rs_codewords_total", (ctx.name, result), n)
                self.count(result, n)
        if symbols:
            ctx.metrics.inc("queqiao_rs_corrected_symbols_total", (ctx.name,), symbols)

    def reject(self, link: str, n: int) -> None:
        ctx = self.context
        ctx.metrics.inc("queqiao_frames_rejected_total", (link, "rs_uncorrectable"), n)
        ctx.log.warning(f"{link}:rs_uncorrectable", "link %s: %d %s codeblock(s) uncorrectable (%s), archived, "
                        "not decoded", link, n, ctx.name, self.code)


__all__ = ["ReedSolomonDecoder"]
