"""The decode: one batch decode per packet definition (PacketCodec; VariablePacketCodec for a
definition with variable-size parts), packet error control checked, onboard time from the
packets' CUC time field."""
from __future__ import annotations

import numpy as np

from groundstation.chain.stage import DecodedBatch, DecodedGroup, DefinitionGroup, PacketBatch, Stage, StageContext
from protocols.ccsds.cuc import cuc_to_unix
from protocols.codec import CRC_OK, PacketCodec, VariablePacketCodec
from protocols.errors import ProtocolError
from protocols.missions import PacketDef

TIME_COARSE = "secondary.time.coarse"
TIME_FINE = "secondary.time.fine"


class Decoder(Stage):
    """Raw columns of each definition's packets, decoded in place from the batch's stream; a packet
    whose PEC does not check is rejected.  Events and reports are calibrated whole here (every row
    is used); housekeeping is calibrated by the limit check, which knows what it needs."""

    name = "decode"

    def __init__(self, context: StageContext) -> None:
        super().__init__(context)
        self.codecs: dict[str, PacketCodec | VariablePacketCodec] = {}

    def codec(self, definition: PacketDef) -> PacketCodec | VariablePacketCodec:
        codec = self.codecs.get(definition.name)
        if codec is None:
            kind = VariablePacketCodec if definition.variable else PacketCodec
            codec = self.codecs[definition.name] = kind(definition.construct, name=definition.name)
        return codec

    def raw_columns(self, batch: PacketBatch, group: DefinitionGroup) -> dict | None:
        """The raw columns of a group's packets (None: none is left).  A variable-size packet whose
        layout (the sizes its own fields give) does not match its length is rejected: the batch is
        decoded again without it, so one bad packet costs its own decode, never its neighbours'."""
        codec = self.codec(group.definition)
        offsets = batch.offsets[group.rows]
        if isinstance(codec, PacketCodec):
            return codec.raw_many(batch.stream, offsets=offsets)
        lengths = batch.lengths[group.rows]
        try:
            return codec.decode_many(batch.stream, raw=True, offsets=offsets, lengths=lengths, exact=True)
        except ProtocolError:
            pass
        keep = []
        for i, row in enumerate(group.rows.tolist()):
            try:
                codec.decode_many(batch.stream, raw=True, offsets=offsets[i:i + 1], lengths=lengths[i:i + 1],
                                  exact=True)
                keep.append(i)
            except ProtocolError as exc:
                self.reject_packet("length", batch.packet(row), f"{group.definition.name}: {exc}")
        if not keep:
            return None
        return codec.decode_many(batch.stream, raw=True, offsets=offsets[keep], lengths=lengths[keep], exact=True)

    def process(self, batch: PacketBatch) -> DecodedBatch | None:
        decoded = [d for d in (self.decode(batch, g) for g in batch.definitions) if d is not None]
        return DecodedBatch(decoded, batch.receipt) if decoded else None

    def decode(self, batch: PacketBatch, group: DefinitionGroup) -> DecodedGroup | None:
        definition = group.definition
        raw = self.raw_columns(batch, group)
        if raw is None:
            return None
        ok = raw.get(CRC_OK)
        if ok is not None and not ok.all():
            for _ in range(int((~ok).sum())):
                self.reject_packet("pec", b"", definition.name)
            keep = np.flatnonzero(ok)
            raw = {k: v[keep] for k, v in raw.items()}
        count = len(next(iter(raw.values()))) if raw else int(group.rows.size)
        if count == 0:
            return None
        self.count("ok", count)
        onboard = None
        times = None
        if TIME_COARSE in raw:
            if definition.kind == "housekeeping" and self.context.events.on_samples is not None:
                times = cuc_to_unix(raw[TIME_COARSE], raw[TIME_FINE] if TIME_FINE in raw else 0)
                onboard = float(times[-1])
            else:
                onboard = float(cuc_to_unix(raw[TIME_COARSE][-1:], raw[TIME_FINE][-1:] if TIME_FINE in raw else 0)[0])
            self.context.state.onboard_time = onboard
        codec = self.codec(definition)
        eng = None
        if definition.kind != "housekeeping":
            assert isinstance(codec, PacketCodec)  # only telemetry definitions may be variable-size
            eng = codec.calibrate(raw)
        return DecodedGroup(definition, raw, count, onboard, eng, onboard_times=times)
