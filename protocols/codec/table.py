"""Derive a flat field table from a fixed-size construct definition.

The walk turns a ``Struct`` into *leaves* (one per named value construct would
return), each with the bit positions of its elements in the record, and then
into the int64 table the ``fields`` kernels run (layout in
:mod:`cython_ext.pure.fields`).  Positions are kept in bits throughout so that
byte fields, ``BitStruct`` members and bit fields that straddle bytes are one
case, not three.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import construct as cs
import numpy as np
from construct.lib import binary as _cs_binary

from cython_ext.pure import fields as F
from protocols.ccsds.pus import PacketErrorControl
from protocols.errors import DefinitionError
from protocols.parameters import Parameter


class Unsupported(Exception):
    """The table cannot express this construct; ``path`` names the field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path or '<root>'}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class Leaf:
    """One output column: a value construct returns, at one or more positions in the record."""

    parts: tuple[str, ...]
    kind: str  # "int" | "float" | "bool" | "bytes" | "pec"
    width: int  # bits of one element (bytes: 8 * nbytes)
    signed: bool = False
    little: bool = False
    positions: list[int] = field(default_factory=lambda: [0])  # bit offset of each element, C order
    dims: tuple[int, ...] = ()
    hidden: bool = False  # inside an unnamed field: construct does not return it
    parameter: Parameter | None = None
    fill: tuple | None = None  # ("const", v) | ("default", v) | ("rebuild", func)
    scope: tuple[str, ...] = ()  # path of the Struct whose context a this-expression sees
    absolute: bool = False  # under a Pointer: positions count from the packet start, not the parent
    view: bool = False  # a second view of octets another field writes (Peek, later Union members): not encoded

    @property
    def path(self) -> str:
        return ".".join(self.parts)

    @property
    def nbytes(self) -> int:
        return self.width // 8

    @property
    def dtype(self) -> np.dtype:
        if self.kind == "float":
            return np.dtype({16: np.float16, 32: np.float32, 64: np.float64}[self.width])
        if self.kind == "bool":
            return np.dtype(np.bool_)
        if self.kind == "bytes":
            return np.dtype(np.uint8)
        if self.kind == "pec":
            return np.dtype(np.uint16)
        size = 8 if self.width > 32 else 4 if self.width > 16 else 2 if self.width > 8 else 1
        return np.dtype(f"{'i' if self.signed else 'u'}{size}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one packet's value (the column is ``(count, *shape)``)."""
        return self.dims + ((self.nbytes,) if self.kind == "bytes" else ())


@dataclass
class Layout:
    """What the walk found: leaves in wire order, record size, padding template, PEC."""

    size: int
    leaves: list[Leaf]
    template: bytes
    pec: Leaf | None


def _int_length(value, path: str, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Unsupported(path, f"{what} is not a fixed integer ({value!r})")
    return value


_FORMATS = {"b": ("int", True), "B": ("int", False), "h": ("int", True), "H": ("int", False), "i": ("int", True),
            "I": ("int", False), "l": ("int", True), "L": ("int", False), "q": ("int", True), "Q": ("int", False),
            "e": ("float", False), "f": ("float", False), "d": ("float", False), "?": ("bool", False)}


class _Walker:
    def __init__(self) -> None:
        self.template_bits: list[tuple[int, int, int]] = []  # (bit position, bits, pattern byte) of padding

    def walk(self, node: cs.Construct, parts: tuple[str, ...], scope: tuple[str, ...], bits: bool,
             in_array: bool) -> tuple[int, list[Leaf]]:
        """Size in bits and the leaves (positions relative to the node's start)."""
        path = ".".join(parts)
        unit = 1 if bits else 8
        if isinstance(node, Parameter):
            if type(node)._decode is not Parameter._decode or type(node)._encode is not Parameter._encode:
                # A subclass that checks or transforms values on parse/build (e.g. telecommand
                # arguments with valid ranges): only construct knows what it does.
                raise Unsupported(path, f"{type(node).__name__} adds its own parse/build logic")
            size, leaves = self.walk(node.subcon, parts, scope, bits, in_array)
            self._single(leaves, path, "a Parameter").parameter = node
            return size, leaves
        if isinstance(node, PacketErrorControl):
            if bits:
                raise Unsupported(path, "packet error control inside a bit structure")
            return 16, [Leaf(parts, "pec", 16, scope=scope)]
        if isinstance(node, cs.Renamed):
            return self.walk(node.subcon, parts, scope, bits, in_array)
        if isinstance(node, cs.Struct):
            return self._struct(node, parts, bits, in_array)
        if isinstance(node, cs.Transformed) and node.decodefunc is _cs_binary.bytes2bits:
            if bits:
                raise Unsupported(path, "Bitwise inside a bit structure")
            size, leaves = self.walk(node.subcon, parts, scope, True, in_array)
            if size % 8:
                # construct would accept it and then fail on every packet with a raw StreamError.
                last = leaves[-1].path if leaves else path
                raise DefinitionError(
                    f"field {path or '<root>'!r}: bit structure of {size} bits is not a whole number of octets "
                    f"(its fields end at bit {size}, last {last!r}); pad it to {size + 8 - size % 8} bits")
            return size, leaves
        if isinstance(node, cs.Transformed) and node.decodefunc is _cs_binary.bits2bytes:
            if not bits:
                raise Unsupported(path, "Bytewise outside a bit structure")
            return self.walk(node.subcon, parts, scope, False, in_array)
        if isinstance(node, cs.FormatField):
            if bits:
                raise Unsupported(path, "a byte-format field inside a bit structure (wrap it in Bytewise)")
            order, code = node.fmtstr[0], node.fmtstr[-1]
            if code not in _FORMATS:
                raise Unsupported(path, f"format {node.fmtstr!r}")
            kind, signed = _FORMATS[code]
            little = order == "<" or (order in "=@" and np.little_endian)
            return 8 * node.length, [Leaf(parts, kind, 8 * node.length, signed, little, scope=scope)]
        if isinstance(node, cs.BytesInteger):
            if bits:
                raise Unsupported(path, "BytesInteger inside a bit structure")
            length = _int_length(node.length, path, "BytesInteger length")
            if not isinstance(node.swapped, bool) or not isinstance(node.signed, bool):
                raise Unsupported(path, "BytesInteger with computed signedness or byte order")
            if length > 8:
                raise Unsupported(path, f"{length}-byte integer (the table holds up to 8 bytes)")
            return 8 * length, [Leaf(parts, "int", 8 * length, node.signed, node.swapped, scope=scope)]
        if isinstance(node, cs.BitsInteger):
            if not bits:
                raise Unsupported(path, "BitsInteger outside a bit structure")
            length = _int_length(node.length, path, "BitsInteger length")
            if not isinstance(node.swapped, bool) or not isinstance(node.signed, bool):
                raise Unsupported(path, "BitsInteger with computed signedness or byte order")
            if length > 64 or (node.swapped and length % 8):
                raise Unsupported(path, f"{length}-bit integer{' (swapped)' if node.swapped else ''}")
            return length, [Leaf(parts, "int", length, node.signed, node.swapped, scope=scope)]
        if node is cs.Flag:
            return unit, [Leaf(parts, "bool", unit, scope=scope)]
        if isinstance(node, cs.Bytes):
            if bits:
                raise Unsupported(path, "Bytes inside a bit structure")
            length = _int_length(node.length, path, "Bytes length")
            return 8 * length, [Leaf(parts, "bytes", 8 * length, scope=scope)]
        if isinstance(node, cs.Padded):
            length = _int_length(node.length, path, "padding length") * unit
            inner, leaves = (0, []) if node.subcon is cs.Pass else self.walk(node.subcon, parts, scope, bits, in_array)
            if inner > length:
                raise Unsupported(path, "padded field larger than its padding")
            pattern = node.pattern[0] if node.pattern else 0
            if pattern and bits:
                raise Unsupported(path, "non-zero padding pattern inside a bit structure")
            if pattern and in_array:
                raise Unsupported(path, "non-zero padding pattern inside an Array")
            if pattern:
                self.template_bits.append((inner, length - inner, pattern))  # relative; fixed up by _struct
            return length, leaves
        if node is cs.Pass:
            return 0, []
        if isinstance(node, cs.Peek):
            # A second view of the octets that follow: read them, consume nothing.
            _, leaves = self.walk(node.subcon, parts, scope, bits, in_array)
            for leaf in leaves:
                leaf.view = True
            return 0, leaves
        if isinstance(node, cs.Pointer):
            offset = node.offset
            if bits or in_array:
                raise Unsupported(path, "Pointer inside a bit structure or an Array")
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise Unsupported(path, f"Pointer offset is not a fixed non-negative integer ({offset!r})")
            _, leaves = self.walk(node.subcon, parts, scope, bits, in_array)
            for leaf in leaves:
                leaf.positions = [8 * offset + p for p in leaf.positions]
                leaf.absolute = True
            return 0, leaves
        if isinstance(node, cs.Union):
            return self._union(node, parts, bits, in_array)
        if isinstance(node, cs.Const):
            size, leaves = self.walk(node.subcon, parts, scope, bits, in_array)
            self._single(leaves, path, "Const").fill = ("const", node.value)
            return size, leaves
        if isinstance(node, (cs.Default, cs.Rebuild)):
            size, leaves = self.walk(node.subcon, parts, scope, bits, in_array)
            leaf = self._single(leaves, path, type(node).__name__)
            value = node.value if isinstance(node, cs.Default) else node.func
            leaf.fill = ("default", value) if isinstance(node, cs.Default) else ("rebuild", value)
            return size, leaves
        if isinstance(node, cs.Array):
            count = _int_length(node.count, path, "Array count")
            if node.discard:
                raise Unsupported(path, "Array(discard=True)")
            size, leaves = self.walk(node.subcon, parts, scope, bits, True)
            for leaf in leaves:
                if leaf.absolute:
                    raise Unsupported(leaf.path, "Pointer inside an Array")
                leaf.positions = [i * size + p for i in range(count) for p in leaf.positions]
                leaf.dims = (count,) + leaf.dims
            return count * size, leaves
        raise Unsupported(path, f"{type(node).__name__} has no table form")

    @staticmethod
    def _single(leaves: list[Leaf], path: str, what: str) -> Leaf:
        if len(leaves) != 1 or leaves[0].dims:
            raise Unsupported(path, f"{what} around something other than one scalar field")
        return leaves[0]

    def _struct(self, node: cs.Struct, parts: tuple[str, ...], bits: bool, in_array: bool) -> tuple[int, list[Leaf]]:
        position = 0
        out: list[Leaf] = []
        for sub in node.subcons:
            name = sub.name
            if name is not None and name.startswith("_"):
                raise Unsupported(".".join(parts + (name,)), "field names starting with '_' are construct's own")
            before = len(self.template_bits)
            size, leaves = self.walk(sub, parts + ((name,) if name else ()), parts, bits, in_array)
            for leaf in leaves:
                if not leaf.absolute:
                    leaf.positions = [position + p for p in leaf.positions]
                if not name:
                    leaf.hidden = True
            self.template_bits[before:] = [(position + p, n, pat) for p, n, pat in self.template_bits[before:]]
            out.extend(leaves)
            position += size
        return position, out


    def _union(self, node: cs.Union, parts: tuple[str, ...], bits: bool, in_array: bool) -> tuple[int, list[Leaf]]:
        """Every member reads the same octets; construct then moves on by the ``parsefrom`` member's size.

        Building writes only the first member (construct builds the first one whose key it is
        given; encode_many asks for that one), so the others are views.
        """
        sizes: list[int] = []
        out: list[Leaf] = []
        for index, sub in enumerate(node.subcons):
            if not sub.name:
                raise Unsupported(".".join(parts), "unnamed Union member")
            size, leaves = self.walk(sub, parts + (sub.name,), parts, bits, in_array)
            for leaf in leaves:
                leaf.view = leaf.view or index > 0
            sizes.append(size)
            out.extend(leaves)
        chosen = node.parsefrom
        if chosen is None:
            return 0, out
        if isinstance(chosen, str):
            names = [sub.name for sub in node.subcons]
            if chosen not in names:
                raise Unsupported(".".join(parts), f"Union parsefrom {chosen!r} is not a member")
            return sizes[names.index(chosen)], out
        if isinstance(chosen, int) and not isinstance(chosen, bool) and 0 <= chosen < len(sizes):
            return sizes[chosen], out
        raise Unsupported(".".join(parts), f"Union parsefrom {chosen!r} is not a fixed member")


def derive(struct: cs.Construct) -> Layout:
    """Walk ``struct``; raises :class:`Unsupported` naming the first field the table cannot express."""
    walker = _Walker()
    bits, leaves = walker.walk(struct, (), (), False, False)
    if bits % 8:
        raise Unsupported("", f"size of {bits} bits is not whole bytes")
    size = bits // 8
    template = bytearray(size)
    for start, count, pattern in walker.template_bits:
        template[start // 8 : (start + count) // 8] = bytes([pattern]) * (count // 8)
    pecs = [leaf for leaf in leaves if leaf.kind == "pec"]
    pec = None
    if pecs:
        pec = pecs[0]
        if len(pecs) > 1 or pec.dims or pec.positions[0] != 8 * (size - 2) or len(pec.parts) != 1:
            raise Unsupported(pec.path, "packet error control that is not the last top-level field")
        if "primary" not in {leaf.parts[0] for leaf in leaves if leaf.parts}:
            raise Unsupported(pec.path, "packet error control without a 'primary' header")
    for leaf in leaves:
        if leaf.kind != "bytes" and leaf.width > 64:
            raise Unsupported(leaf.path, f"{leaf.width}-bit field")
        if leaf.positions and max(leaf.positions) + leaf.width > bits:
            raise DefinitionError(
                f"field {leaf.path!r} reads bits {max(leaf.positions)}..{max(leaf.positions) + leaf.width} "
                f"of a {size}-octet packet (a Pointer or Peek past its end)")
    return Layout(size, leaves, bytes(template), pec)


def table_of(leaves: list[Leaf]) -> np.ndarray:
    """The kernel table: one row per element of every leaf (output index = leaf index)."""
    rows: list[list[int]] = []
    for index, leaf in enumerate(leaves):
        itemsize = leaf.nbytes if leaf.kind == "bytes" else leaf.dtype.itemsize
        sign = F.SIGN_BOOL if leaf.kind == "bool" else F.SIGN_SIGNED if leaf.signed else F.SIGN_UNSIGNED
        for element, bit in enumerate(leaf.positions):
            byte, inner = divmod(bit, 8)
            out_offset = element * itemsize
            if leaf.kind == "bytes":
                if inner:
                    raise Unsupported(leaf.path, "Bytes at a bit offset")
                rows.append([byte, leaf.nbytes, F.KIND_BYTES, 0, leaf.width, 0, index, out_offset, itemsize])
            elif inner == 0 and leaf.width % 8 == 0:
                kind = F.KIND_LE if leaf.little else F.KIND_BE
                rows.append([byte, leaf.width // 8, kind, 0, leaf.width, sign, index, out_offset, itemsize])
            else:
                nbytes = math.ceil((inner + leaf.width) / 8)
                if nbytes > 9:
                    raise Unsupported(leaf.path, f"{leaf.width}-bit field at bit offset {inner} spans {nbytes} bytes")
                shift = 8 * nbytes - inner - leaf.width
                kind = F.KIND_BITS_SWAPPED if leaf.little else F.KIND_BITS
                rows.append([byte, nbytes, kind, shift, leaf.width, sign, index, out_offset, itemsize])
    table = np.array(rows, dtype=np.int64).reshape(-1, F.TABLE_COLUMNS)
    return np.ascontiguousarray(table)


def octets(con: cs.Construct) -> int:
    """Octets a fixed definition advances by (construct's sizeof, also for a Union, which construct cannot size)."""
    bits, _ = _Walker().walk(con, (), (), False, False)
    return bits // 8
