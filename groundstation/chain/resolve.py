"""Definition resolution: which mission database definition each packet is, by APID, PUS
service/subtype and key; a packet of no definition, or of the wrong size, is rejected (except
on an APID the mission declares opaque: real packets whose content is not public)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from groundstation.chain.stage import DefinitionGroup, PacketBatch, Stage, StageContext
from protocols.missions import PacketDef

#: Octets up to and including the PUS subtype (primary header 6, PUS version/ack 1, service, subtype).
PUS_HEADER_END = 9


class DefinitionResolver(Stage):
    """Per APID, the candidates in definition order: the first whose service, subtype and key (when
    it has one) match wins.  The groups come out in the order of their first packet."""

    name = "decode"

    def __init__(self, context: StageContext) -> None:
        super().__init__(context)
        self.candidates: dict[int, list[PacketDef]] = defaultdict(list)
        for definition in context.spacecraft.packets:
            if definition.packet_type == 0:  # telemetry only
                self.candidates[definition.apid].append(definition)
        #: Declared APIDs whose content is not public: counted and archived upstream, decoded by nobody.
        self.opaque = frozenset(a.number for a in context.spacecraft.apids if a.opaque)
        self._by_pus: dict[int, dict[int, list[PacketDef]]] = {}  # APID -> service << 8 | subtype -> candidates
        self._steps: dict[tuple[int, int], list[tuple[int, dict[int, PacketDef], PacketDef | None]]] = {}

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        parts: dict[str, list[np.ndarray]] = defaultdict(list)
        by_name: dict[str, PacketDef] = {}
        for apid, members in batch.groups:
            for definition, rows in self.resolve(apid, batch, members):
                # A variable-size definition's layout is checked against each length by the decoder.
                lengths = batch.lengths[rows]
                wrong = lengths < definition.size if definition.variable else lengths != definition.size
                if wrong.any():
                    least = "at least " if definition.variable else ""
                    for i in rows[wrong].tolist():
                        self.reject_packet("length", batch.packet(i), f"{definition.name} is {least}"
                                           f"{definition.size} octets, got {batch.lengths[i]}")
                    rows = rows[~wrong]
                if rows.size:
                    parts[definition.name].append(rows)
                    by_name[definition.name] = definition
        groups = []
        for name, pieces in parts.items():
            rows = pieces[0] if len(pieces) == 1 else np.sort(np.concatenate(pieces))
            groups.append(DefinitionGroup(by_name[name], rows))
        groups.sort(key=lambda g: int(g.rows[0]))
        batch.definitions = groups
        return batch if groups else None

    def _keyed(self, apid: int, code: int, definitions) -> list[tuple[int, dict[int, PacketDef], PacketDef | None]]:
        """The candidates of one APID and PUS code as steps in definition order: (key offset, key ->
        definition, the first keyless definition after them or None).  The first match wins, as in
        a walk over the candidates one by one."""
        steps = self._steps.get((apid, code))
        if steps is None:
            steps = []
            for definition in definitions:
                at = definition.key_offset
                if at is None:
                    steps.append((0, {}, definition))
                    break  # a keyless definition takes everything left: later ones never match
                if not steps or steps[-1][0] != at or steps[-1][2] is not None:
                    steps.append((at, {}, None))
                steps[-1][1].setdefault(definition.key, definition)
            self._steps[(apid, code)] = steps
        return steps

    def resolve(self, apid: int, batch: PacketBatch, members: np.ndarray) -> list[tuple[PacketDef, np.ndarray]]:
        """(definition, packet indices) for one APID's packets; the others are rejected."""
        candidates = self.candidates.get(apid)
        if not candidates:
            if apid in self.opaque:
                return []
            for i in members.tolist():
                self.reject_packet("unknown_apid", batch.packet(i), f"APID {apid}")
            return []
        if len(candidates) == 1:
            return [(candidates[0], members)]
        stream, offsets, lengths = batch.stream, batch.offsets[members], batch.lengths[members]
        short = lengths < PUS_HEADER_END
        for i in members[short].tolist():
            self.reject_packet("truncated", batch.packet(i))
        open_ = ~short
        safe = np.where(short, 0, offsets)  # short packets take no part below (no reads past them)
        service, subtype = stream[safe + 7], stream[safe + 8]
        codes = (service.astype(np.int64) << 8) | subtype
        by_pus = self._by_pus.get(apid)
        if by_pus is None:
            by_pus = self._by_pus[apid] = defaultdict(list)
            for definition in candidates:  # definition order kept: the first that matches wins
                by_pus[(definition.service << 8) | definition.subtype].append(definition)
        out = []
        for code in np.unique(codes[open_]).tolist():
            same = open_ & (codes == code)
            for at, by_key, plain in self._keyed(apid, code, by_pus.get(code, ())):
                if by_key:
                    fits = same & (lengths >= at + 2)
                    where = np.where(fits, offsets + at, 0)
                    keys = (stream[where].astype(np.int64) << 8) | stream[where + 1]
                    for key in np.unique(keys[fits]).tolist():
                        keyed = by_key.get(key)
                        if keyed is not None:
                            match = fits & (keys == key)
                            out.append((keyed, members[match]))
                            same &= ~match
                            open_ &= ~match
                if plain is not None and same.any():
                    out.append((plain, members[same]))
                    open_ &= ~same
                    same = np.zeros_like(same)
        for i in np.flatnonzero(open_).tolist():
            self.reject_packet("unknown_packet", batch.packet(int(members[i])),
                               f"APID {apid} PUS {int(service[i])},{int(subtype[i])}")
        return out
