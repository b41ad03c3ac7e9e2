"""VariablePacketCodec: many packets of one definition with variable-size parts, decoded in batches.

A variable part is an ``Array`` whose count, or a ``Bytes`` whose length, is an
expression of earlier fields (``this.count``, ``this._.primary.length - 9``), or a
trailing ``GreedyBytes``/``GreedyRange`` that runs to the packet's end.

Packets are grouped by their *resolved layout* (the size of every variable part):
a prefix codec (the definition cut just before the next variable part) decodes
the fields the size depends on for all packets at once, the sizes are evaluated
on whole columns, packets are split by size value, and each group continues
with the next variable part; once every size is known the group is decoded by a
fixed :class:`PacketCodec` of the definition with those sizes written in.  Real
streams have few distinct layouts (a handful of waveform lengths), so the cost
is a few table decodes over contiguous index sets, never a per-packet loop; the
fixed codecs are cached by layout.  A two-pass kernel would save the prefix
decode, but would need its own walker and kernel twin for every construct the
table already handles: the grouping reuses them unchanged.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import construct as cs
import numpy as np

from protocols.codec.codec import Columns, PacketCodec, _as_bytes_view
from protocols.codec.table import octets
from protocols.errors import DefinitionError, ProtocolError, TruncatedError

_CUT = object()  # "the definition stops here" while rebuilding a prefix


@dataclass(frozen=True)
class Ragged:
    """A column whose per-packet length varies: packet ``i`` is ``values[starts[i]:starts[i] + lengths[i]]``.

    ``values`` holds the packets' elements layout group by layout group (each group one
    contiguous copy of what its codec decoded), so ``starts`` need not be increasing.
    """

    values: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return self.starts.size

    def __getitem__(self, index):
        """Packet ``index``'s elements; an index array or slice gives those packets' Ragged."""
        if isinstance(index, (slice, np.ndarray, list)):
            return Ragged(self.values, self.starts[index], self.lengths[index])
        start = self.starts[index]
        return self.values[start : start + self.lengths[index]]

    def tolist(self) -> list:
        return [self[i].tolist() for i in range(len(self))]


@dataclass(frozen=True)
class _Variable:
    parts: tuple[str, ...]
    node: cs.Construct  # the Array/Bytes/GreedyBytes/GreedyRange itself (not its Renamed)

    @property
    def path(self) -> str:
        return ".".join(self.parts)

    @property
    def greedy(self) -> bool:
        return self.node is cs.GreedyBytes or isinstance(self.node, cs.GreedyRange)

    def element_octets(self) -> int:
        if isinstance(self.node, (cs.Array, cs.GreedyRange)):
            size = octets(self.node.subcon)
            if size <= 0:
                raise DefinitionError(f"field {self.path!r}: repeated element has no fixed size")
            return size
        return 1

    def fixed(self, count: int) -> cs.Construct:
        if isinstance(self.node, (cs.Array, cs.GreedyRange)):
            return cs.Array(count, self.node.subcon)
        return cs.Bytes(count)


def _is_variable(node: cs.Construct) -> bool:
    if node is cs.GreedyBytes or isinstance(node, cs.GreedyRange):
        return True
    if isinstance(node, cs.Array):
        return not isinstance(node.count, int)
    return isinstance(node, cs.Bytes) and not isinstance(node.length, int)


def _find(node: cs.Construct, parts: tuple[str, ...], out: list[_Variable]) -> None:
    while isinstance(node, cs.Renamed):
        node = node.subcon
    if _is_variable(node):
        out.append(_Variable(parts, node))
    elif isinstance(node, cs.Struct):
        for sub in node.subcons:
            _find(sub, parts + ((sub.name,) if sub.name else ()), out)


def variable_parts(struct: cs.Construct) -> list[str]:
    """The dotted paths of a definition's variable-size parts, in wire order (empty: fixed-size)."""
    found: list[_Variable] = []
    _find(struct, (), found)
    return [v.path for v in found]


def _rebuild(node: cs.Construct, variables: list[_Variable], sizes: tuple[int, ...], counter: list[int]):
    """``node`` with its first ``len(sizes)`` variable parts fixed at those sizes; where the next
    variable part would begin, the definition is cut (``_CUT``, or a (struct, _CUT) pair from inside)."""
    renamed = node.name if isinstance(node, cs.Renamed) else None
    inner = node
    while isinstance(inner, cs.Renamed):
        inner = inner.subcon
    if _is_variable(inner):
        k = counter[0]
        counter[0] += 1
        if k >= len(sizes):
            return _CUT
        fixed = variables[k].fixed(sizes[k])
        return renamed / fixed if renamed else fixed
    if isinstance(inner, cs.Struct):
        subcons = []
        stopped = False
        for sub in inner.subcons:
            rebuilt = _rebuild(sub, variables, sizes, counter)
            if rebuilt is _CUT or isinstance(rebuilt, tuple):  # the cut is here, or inside this field
                if isinstance(rebuilt, tuple):
                    subcons.append(rebuilt[0])
                stopped = True
                break
            subcons.append(rebuilt)
        struct = cs.Struct(*subcons)
        result = renamed / struct if renamed else struct
        return (result, _CUT) if stopped else result
    return node


def fixed_layout(struct: cs.Construct, sizes: tuple[int, ...]) -> cs.Construct:
    """The definition with its variable parts fixed at ``sizes`` (element counts, in wire order);
    with fewer sizes than parts, cut where the next variable part begins."""
    variables: list[_Variable] = []
    _find(struct, (), variables)
    rebuilt = _rebuild(struct, variables, sizes, [0])
    definition = rebuilt[0] if isinstance(rebuilt, tuple) else rebuilt
    return cs.Struct() if definition is _CUT else definition


def minimum_size(struct: cs.Construct) -> int:
    """The octets of the definition with every variable part empty: no packet of it is shorter."""
    return fixed_layout(struct, (0,) * len(variable_parts(struct))).sizeof()


class VariablePacketCodec:
    """Decode many packets of a definition with variable-size parts (see the module docstring).

    Variable parts come back as :class:`Ragged` columns; fixed fields as ordinary columns.
    """

    def __init__(self, struct: cs.Construct, *, name: str | None = None, backend: str | None = None) -> None:
        self.struct = struct
        self.name = name or getattr(struct, "name", None) or "packet"
        self._backend = backend
        self.variables: list[_Variable] = []
        _find(struct, (), self.variables)
        if not self.variables:
            raise DefinitionError(f"{self.name}: no variable-size part found; use PacketCodec")
        for index, variable in enumerate(self.variables):
            variable.element_octets()
            if variable.greedy and index != len(self.variables) - 1:
                raise DefinitionError(f"{self.name}: field {variable.path!r} runs to the packet end but is not last")
        self._codecs: dict[tuple[tuple[int, ...], bool], PacketCodec] = {}
        # Build the first prefix now: a definition the table cannot express fails here, not on the first batch.
        self._codec((), cut=True)

    # ------------------------------------------------------------------ layouts

    def _codec(self, sizes: tuple[int, ...], cut: bool) -> PacketCodec:
        key = (sizes, cut)
        codec = self._codecs.get(key)
        if codec is None:
            definition = fixed_layout(self.struct, sizes)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                try:
                    codec = PacketCodec(definition, name=self.name, backend=self._backend)
                except RuntimeWarning as exc:  # a construct fallback would be per packet: say which field
                    raise DefinitionError(f"{self.name}: variable-size definition not table-decodable: {exc}") from exc
            self._codecs[key] = codec
        return codec

    # ------------------------------------------------------------------ decode

    def _bounds(self, data: np.ndarray, offsets, lengths) -> tuple[np.ndarray, np.ndarray]:
        if offsets is None:
            from protocols.codec.stream import split_packets

            split = split_packets(data, backend=self._backend)
            if split.error:
                raise ProtocolError(self.name, f"cannot split the buffer into space packets: {split.error}",
                                    offset=int(split.end))
            return split.offsets, split.lengths
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if lengths is None:  # space packets: the primary header says how long each one is
            if offsets.size and (offsets.min() < 0 or offsets.max() + 6 > data.size):
                raise TruncatedError(self.name, "a packet offset leaves no room for a primary header")
            lengths = (data[offsets + 4].astype(np.int64) << 8 | data[offsets + 5]) + 7
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        if lengths.shape != offsets.shape:
            raise ProtocolError(self.name, f"{lengths.size} lengths for {offsets.size} offsets")
        if offsets.size and (offsets.min() < 0 or (offsets + lengths).max() > data.size):
            raise TruncatedError(self.name, "a packet runs past the end of the buffer")
        return offsets, lengths

    def _sizes(self, variable: _Variable, prefix: PacketCodec, data, offsets, lengths) -> np.ndarray:
        """The element count of ``variable`` in every packet (whole columns; per packet only if the
        expression cannot take arrays)."""
        count = offsets.size
        if variable.greedy:
            room = lengths - prefix.size
            values = room // variable.element_octets()
            if np.any(room % variable.element_octets()):
                bad = int(np.flatnonzero(room % variable.element_octets())[0])
                raise ProtocolError(self.name, f"{room[bad]} octets left for {variable.element_octets()}-octet "
                                    "elements", field=variable.path, offset=int(offsets[bad]))
            return values
        expression = variable.node.count if isinstance(variable.node, cs.Array) else variable.node.length
        columns = prefix.decode_many(data, offsets=offsets) if prefix.size else {}
        scope = variable.parts[:-1]
        try:
            values = np.asarray(expression(prefix._context(columns, scope, None, None)) if callable(expression)
                                else expression)
            values = np.broadcast_to(values, (count,)).astype(np.int64)
        except Exception:  # noqa: BLE001 - an expression numpy cannot run: evaluate it as construct would
            values = np.array([int(expression(prefix._context(columns, scope, i, None))) for i in range(count)],
                              dtype=np.int64)
        if count and values.min() < 0:
            bad = int(np.flatnonzero(values < 0)[0])
            raise ProtocolError(self.name, f"negative size {values[bad]}", field=variable.path,
                                offset=int(offsets[bad]))
        return values

    def _groups(self, data, offsets, lengths, index: np.ndarray, sizes: tuple[int, ...]):
        if len(sizes) == len(self.variables):
            yield sizes, index
            return
        prefix = self._codec(sizes, cut=True)
        values = self._sizes(self.variables[len(sizes)], prefix, data, offsets[index], lengths[index])
        for value in np.unique(values).tolist():
            yield from self._groups(data, offsets, lengths, index[values == value], sizes + (int(value),))

    def decode_many(self, buffer, *, raw: bool = False, offsets=None, lengths=None,
                    exact: bool = False) -> dict[str, Any]:
        """Columns of every packet: fixed fields as arrays, variable parts as :class:`Ragged`.

        Packets are found with :func:`split_packets` (space packets back to back), or at
        ``offsets`` with ``lengths`` (default: each one's primary header packet length).
        ``exact``: a packet longer than its layout is an error too (octets no field accounts for),
        as a packet shorter than it always is.
        """
        data = _as_bytes_view(buffer)
        offsets, lengths = self._bounds(data, offsets, lengths)
        count = offsets.size
        decoded: list[tuple[np.ndarray, Columns]] = []
        for sizes, index in self._groups(data, offsets, lengths, np.arange(count), ()):
            codec = self._codec(sizes, cut=False)
            short = np.flatnonzero(lengths[index] < codec.size)
            if short.size:
                at = int(index[short[0]])
                raise TruncatedError(self.name, f"packet {at} is {lengths[at]} octets, its layout needs {codec.size}",
                                     offset=int(offsets[at]))
            if exact and (lengths[index] != codec.size).any():
                at = int(index[np.flatnonzero(lengths[index] != codec.size)[0]])
                raise ProtocolError(self.name, f"packet {at} is {lengths[at]} octets, its layout has {codec.size}",
                                    offset=int(offsets[at]))
            decoded.append((index, codec.decode_many(data, offsets=offsets[index], raw=raw)))
        return self._assemble(decoded, count)

    def _ragged_path(self, key: str) -> bool:
        return any(key == v.path or key.startswith(v.path + ".") for v in self.variables)

    def _assemble(self, decoded: list[tuple[np.ndarray, Columns]], count: int) -> dict[str, Any]:
        if not decoded:
            return {}
        out: dict[str, Any] = {}
        for key in decoded[0][1]:
            parts = [(index, columns[key]) for index, columns in decoded]
            dtype = np.result_type(*[column.dtype for _, column in parts])
            if not self._ragged_path(key):
                column = np.empty((count,) + parts[0][1].shape[1:], dtype=dtype)
                for index, values in parts:
                    column[index] = values
                out[key] = column
                continue
            starts = np.zeros(count, dtype=np.int64)
            lengths = np.zeros(count, dtype=np.int64)
            blocks = []
            position = 0
            for index, values in parts:
                width = values.shape[1]
                lengths[index] = width
                starts[index] = position + np.arange(index.size, dtype=np.int64) * width
                blocks.append(values.reshape((-1,) + values.shape[2:]))
                position += index.size * width
            flat = np.concatenate(blocks).astype(dtype, copy=False)
            out[key] = Ragged(flat, starts, lengths)
        return out
