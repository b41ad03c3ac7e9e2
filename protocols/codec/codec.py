"""PacketCodec: decode/encode many fixed-size packets at once from their construct definition."""
from __future__ import annotations

import math
import struct as _struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import construct as cs
import numpy as np

import cython_ext
from protocols.ccsds.pus import PacketErrorControl
from protocols.codec.table import Layout, Leaf, Unsupported, derive, table_of
from protocols.errors import DefinitionError, ProtocolError, TruncatedError, build_with, parse_with
from protocols.parameters import Parameter

#: Column holding the packet error control verdict (next to the ``pec`` column).
CRC_OK = "crc_ok"

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class FieldInfo:
    """One output column: its dotted path, dtype and per-packet shape, and where it sits."""

    path: str
    dtype: np.dtype
    shape: tuple[int, ...]
    bit_offset: int  # of the first element, from the packet start
    bit_width: int  # of one element
    parameter: Parameter | None
    has_default: bool
    view: bool = False  # reads octets another field writes (Peek, a later Union member): encode ignores it


def _kernels(backend: str | None) -> tuple[ModuleType, ModuleType]:
    if backend is None:
        return cython_ext.fields, cython_ext.crc
    if backend == "pure":
        return cython_ext.twin("fields"), cython_ext.twin("crc")
    if backend == "compiled":
        fields, crc = cython_ext.compiled("fields"), cython_ext.compiled("crc")
        if fields is None or crc is None:
            raise RuntimeError("compiled kernels are not built; reinstall with a C compiler")
        return fields, crc
    raise ValueError(f"backend must be None, 'pure' or 'compiled', not {backend!r}")


def _as_bytes_view(buffer) -> np.ndarray:
    if isinstance(buffer, np.ndarray):
        return buffer.reshape(-1).view(np.uint8)
    return np.frombuffer(buffer, dtype=np.uint8)


class PacketCodec:
    """Decode/encode many packets of one fixed-size construct definition at once.

    ``PacketCodec(struct)`` walks the definition into a flat field table; when a
    field cannot be expressed as a table row, the codec falls back to construct
    per packet (same results, slower) and warns once naming that field.

    ``backend``: None (the process default from :mod:`cython_ext`), ``"pure"`` or ``"compiled"``.
    """

    def __init__(self, struct: cs.Construct, *, name: str | None = None, backend: str | None = None) -> None:
        self.struct = struct
        self.name = name or getattr(struct, "name", None) or "packet"
        self._fields_kernel, self._crc_kernel = _kernels(backend)
        self.fallback: str | None = None
        try:
            self.size: int = struct.sizeof()
        except cs.SizeofError as exc:
            # construct cannot size a Union (it builds from whichever member it is given); the table can.
            self.size = self._table_size(struct, exc)
        try:
            layout = derive(struct)
            if layout.size != self.size:
                raise Unsupported("", f"table size {layout.size} differs from construct's sizeof {self.size}")
            self._table = table_of(layout.leaves)
            views = [index for index, leaf in enumerate(layout.leaves) if leaf.view]
            # Views (Peek, later Union members) read octets another field writes: encoding skips their rows.
            self._encode_table = np.ascontiguousarray(self._table[~np.isin(self._table[:, 6], views)])
        except Unsupported as exc:
            self.fallback = exc.path or "<root>"
            warnings.warn(
                f"PacketCodec({self.name}): field {self.fallback!r} cannot be table-decoded ({exc.reason}); "
                "falling back to construct per packet",
                RuntimeWarning,
                stacklevel=2,
            )
            layout = None
            self._table = self._encode_table = np.empty((0, 9), dtype=np.int64)
        self._layout: Layout | None = layout
        self._pec_path = None
        self._pec_offset = None
        if layout is not None:
            self._visible = [leaf for leaf in layout.leaves if not leaf.hidden]
            # Per-packet shape and dtype of every column, worked out once (decode runs per batch).
            self._leaf_specs = [(leaf.shape, leaf.dtype) for leaf in layout.leaves]
            self._leaf_outputs = [(leaf.path, leaf.hidden, leaf.parameter) for leaf in layout.leaves]
            if layout.pec is not None:
                self._pec_path = layout.pec.path
                self._pec_offset = layout.pec.positions[0] // 8
        else:
            self._pec_offset = self._fallback_pec_offset()

    def _table_size(self, struct: cs.Construct, error: Exception) -> int:
        try:
            return derive(struct).size
        except Unsupported as exc:
            raise DefinitionError(f"{self.name}: PacketCodec needs a fixed-size definition ({error})") from exc

    # ------------------------------------------------------------------ description

    @property
    def table(self) -> np.ndarray:
        """The kernel's field table (empty when the codec runs on construct)."""
        return self._table

    @property
    def fields(self) -> list[FieldInfo]:
        """The output columns in wire order (empty when the codec runs on construct)."""
        if self._layout is None:
            return []
        return [
            FieldInfo(leaf.path, self._eng_dtype(leaf), leaf.shape, leaf.positions[0], leaf.width, leaf.parameter,
                      leaf.fill is not None, leaf.view)
            for leaf in self._visible
        ]

    @staticmethod
    def _eng_dtype(leaf: Leaf) -> np.dtype:
        cal = leaf.parameter.calibration if leaf.parameter is not None else None
        if cal is None or type(cal).__name__ == "Identity":
            return leaf.dtype
        return cal.to_eng_array(np.zeros(1, dtype=leaf.dtype)).dtype

    def __repr__(self) -> str:
        mode = f"construct fallback at {self.fallback!r}" if self.fallback else f"{len(self._table)} table rows"
        return f"<PacketCodec {self.name}: {self.size} bytes, {mode}>"

    # ------------------------------------------------------------------ decode

    def count_of(self, buffer, offsets=None) -> int:
        """Number of packets in ``buffer``; raises ProtocolError when it is not whole packets."""
        if offsets is not None:
            return len(offsets)
        length = _as_bytes_view(buffer).size
        count, rest = divmod(length, self.size)
        if rest:
            raise TruncatedError(
                self.name,
                f"buffer of {length} bytes is not a whole number of {self.size}-byte packets "
                f"({count} packets and {rest} bytes left over)",
                offset=count * self.size,
            )
        return count

    def raw_many(self, buffer, *, offsets=None) -> Columns:
        """Raw (uncalibrated) columns of every packet in ``buffer`` (or at ``offsets``)."""
        return self.decode_many(buffer, raw=True, offsets=offsets)

    def decode_many(self, buffer, *, raw: bool = False, offsets=None) -> Columns:
        """Columns (one numpy array per leaf field, named by dotted path) of every packet.

        ``buffer`` holds packets back to back (its length must be a multiple of
        the packet size), or ``offsets`` gives each packet's start in it.
        Engineering values where a Parameter calibrates, unless ``raw``.
        With packet error control: a ``pec`` column and a boolean ``crc_ok`` column.
        """
        count = self.count_of(buffer, offsets)
        if offsets is not None:
            offsets = np.ascontiguousarray(offsets, dtype=np.int64)
            data = _as_bytes_view(buffer)
            if count and (offsets.min() < 0 or offsets.max() + self.size > data.size):
                raise TruncatedError(self.name, "a packet offset runs past the end of the buffer")
        if self._layout is None:
            return self._fallback_decode(buffer, count, offsets, raw)
        outputs = _allocate([((count,) + shape, dtype) for shape, dtype in self._leaf_specs])
        crc = np.empty(count, dtype=np.uint16) if self._pec_offset is not None else None
        # The PEC's CRC is computed in the same pass, while each block of packets is in cache.
        self._fields_kernel.decode(buffer, self.size, count, offsets, self._table, outputs,
                                   -1 if crc is None else self._pec_offset, crc)
        columns: Columns = {}
        for (path, hidden, parameter), out in zip(self._leaf_outputs, outputs, strict=True):
            if hidden:
                continue
            if not raw and parameter is not None:
                out = parameter.calibration.to_eng_array(out)
            columns[path] = out
        if crc is not None:
            columns[CRC_OK] = crc == columns[self._pec_path]  # type: ignore[index]  # set whenever crc is
        return columns

    def calibrate(self, raw_columns: Mapping[str, np.ndarray]) -> Columns:
        """Engineering columns from raw ones (uncalibrated columns are passed through)."""
        params = self._parameters()
        return {k: (params[k].calibration.to_eng_array(v) if k in params else v) for k, v in raw_columns.items()}

    def _parameters(self) -> dict[str, Parameter]:
        if self._layout is not None:
            return {leaf.path: leaf.parameter for leaf in self._visible if leaf.parameter is not None}
        from protocols.parameters import parameters_of

        return dict(parameters_of(self.struct))

    # ------------------------------------------------------------------ encode

    def encode_many(self, columns: Mapping[str, Any], *, raw: bool = False, count: int | None = None) -> bytes:
        """Packets built from ``columns`` (the inverse of :meth:`decode_many`), back to back.

        Columns of Default/Const/Rebuild fields may be omitted; Rebuild and Const
        are always what the definition says; the packet error control is computed.
        Scalars broadcast.  ``raw``: Parameter columns hold raw values.
        """
        count = self._count_from(columns, count)
        if self._layout is None:
            return self._fallback_encode(columns, count, raw)
        resolved = self._resolve(columns, count)
        inputs = []
        for leaf in self._layout.leaves:
            if leaf.kind == "pec" or leaf.view:
                inputs.append(np.zeros((count,), dtype=np.uint16))  # not read: no encode row points here
                continue
            inputs.append(self._to_raw(leaf, resolved[leaf.path], count, raw))
        out = np.frombuffer(self._layout.template * count, dtype=np.uint8).copy()
        self._fields_kernel.encode(out, self.size, count, self._encode_table, inputs)
        if self._pec_offset is not None and count:
            crc = self._crc_kernel.crc16_strided(out, self.size, self._pec_offset)
            rows = out.reshape(count, self.size)
            rows[:, self._pec_offset] = (crc >> 8).astype(np.uint8)
            rows[:, self._pec_offset + 1] = (crc & 0xFF).astype(np.uint8)
        return out.tobytes()

    def _count_from(self, columns: Mapping[str, Any], count: int | None) -> int:
        for key, value in columns.items():
            if isinstance(value, (bytes, bytearray, str)):
                continue
            array = np.asarray(value) if not isinstance(value, np.ndarray) else value
            if array.ndim >= 1:
                if count is None:
                    count = len(array)
                elif len(array) != count:
                    raise ProtocolError(self.name, f"column has {len(array)} rows, expected {count}", field=key)
        if count is None:
            raise ProtocolError(self.name, "cannot tell the packet count from scalar columns; pass count=")
        return count

    def _resolve(self, columns: Mapping[str, Any], count: int) -> dict[str, Any]:
        """The value of every leaf (as given, i.e. engineering for Parameters) in wire order."""
        assert self._layout is not None
        known = {leaf.path for leaf in self._visible}
        unknown = sorted(set(columns) - known - {CRC_OK})
        if unknown:
            raise ProtocolError(self.name, f"unknown column(s) {unknown}; known: {sorted(known)}")
        resolved: dict[str, Any] = {}
        for leaf in self._layout.leaves:
            given = None if leaf.hidden else columns.get(leaf.path)
            if leaf.kind == "pec" or leaf.view:
                resolved[leaf.path] = 0
                continue
            if leaf.fill is None:
                if given is None:
                    raise ProtocolError(self.name, "column missing (the field has no default)", field=leaf.path)
                resolved[leaf.path] = given
                continue
            how, value = leaf.fill
            if how == "const":
                if given is not None and not self._all_equal(given, value, leaf):
                    raise ProtocolError(self.name, f"value differs from the constant {value!r}", field=leaf.path)
                resolved[leaf.path] = value
            elif how == "default" and given is not None:
                resolved[leaf.path] = given
            else:
                resolved[leaf.path] = self._evaluate(value, leaf, resolved, count) if callable(value) else value
        return resolved

    @staticmethod
    def _all_equal(given, value, leaf: Leaf) -> bool:
        if leaf.kind == "bytes":
            return all(bytes(row) == value for row in _bytes_rows(given, leaf))
        return bool(np.all(np.asarray(given) == value))

    def _context(self, resolved: dict[str, Any], scope: tuple[str, ...], row: int | None, index: tuple | None):
        """A construct context for a this-expression in ``scope``: whole columns, or one packet (and element)."""
        root = cs.Container()
        containers: dict[tuple[str, ...], Any] = {(): root}
        for leaf in self._layout.leaves:  # type: ignore[union-attr]
            if leaf.hidden or leaf.path not in resolved:
                continue
            parent: tuple[str, ...] = ()
            for depth in range(1, len(leaf.parts)):
                key = leaf.parts[:depth]
                if key not in containers:
                    child = cs.Container(_=containers[parent], _root=root)
                    containers[parent][key[-1]] = child
                    containers[key] = child
                parent = key
            value = resolved[leaf.path]
            if row is not None and isinstance(value, np.ndarray) and value.ndim:
                value = value[row]
                if index is not None and leaf.dims and leaf.scope == scope:
                    value = value[index]
                value = value.item() if isinstance(value, np.generic) else value
            containers[parent][leaf.parts[-1]] = value
        root["_root"] = root
        return containers.get(scope, root)

    def _evaluate(self, func, leaf: Leaf, resolved: dict[str, Any], count: int):
        """Default/Rebuild expressions: vectorised when the expression allows it, else per packet (and element)."""
        shape = (count,) + leaf.dims
        if count == 0:
            return np.zeros(shape)
        first_index = (0,) * len(leaf.dims) if leaf.dims else None
        try:
            vector = np.broadcast_to(np.asarray(func(self._context(resolved, leaf.scope, None, None))), shape)
            first = func(self._context(resolved, leaf.scope, 0, first_index))
            if vector[(0,) + (first_index or ())] == first:
                return vector
        except Exception:  # noqa: BLE001 - any failure means "evaluate it the way construct does"
            pass
        out = np.empty(shape, dtype=object)
        for row in range(count):
            for index in np.ndindex(*leaf.dims):
                out[(row,) + index] = func(self._context(resolved, leaf.scope, row, index if leaf.dims else None))
        return np.array(out.tolist())

    def _to_raw(self, leaf: Leaf, value, count: int, raw: bool) -> np.ndarray:
        shape = (count,) + leaf.shape
        if leaf.kind == "bytes":
            rows = _bytes_rows(value, leaf)
            return np.ascontiguousarray(np.broadcast_to(rows, shape), dtype=np.uint8)
        array = np.asarray(value)
        if leaf.parameter is not None and not raw:
            cal = leaf.parameter.calibration
            if cal.is_state and array.dtype.kind in "USO":
                unique, inverse = np.unique(array, return_inverse=True)
                array = np.array([cal.to_raw(u) for u in unique.tolist()], dtype=np.int64)[inverse].reshape(array.shape)
            else:
                array = cal.to_raw_array(array)
        array = np.broadcast_to(array, shape)
        if leaf.kind == "bool":
            return np.ascontiguousarray(array.astype(bool))
        if leaf.kind == "float":
            return _float_column(array, leaf)
        self._range_check(leaf, array)
        return np.ascontiguousarray(array.astype(leaf.dtype))

    def _range_check(self, leaf: Leaf, array: np.ndarray) -> None:
        if array.size == 0:
            return
        lo = -(1 << (leaf.width - 1)) if leaf.signed else 0
        hi = (1 << (leaf.width - 1)) - 1 if leaf.signed else (1 << leaf.width) - 1
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
                raise ProtocolError(self.name, "non-integer value for an integer field", field=leaf.path)
            low, high = float(array.min()), float(array.max())
        elif array.dtype.kind in "iub":
            low, high = int(array.min()), int(array.max())
        else:
            raise ProtocolError(self.name, f"cannot encode {array.dtype} values into an integer field", field=leaf.path)
        if low < lo or high > hi:
            raise ProtocolError(self.name, f"value outside {lo}..{hi} (got {low}..{high})", field=leaf.path)

    # ------------------------------------------------------------------ construct fallback

    def _fallback_pec_offset(self) -> int | None:
        last = self.struct.subcons[-1] if isinstance(self.struct, cs.Struct) and self.struct.subcons else None
        if last is not None and isinstance(last.subcon if isinstance(last, cs.Renamed) else last, PacketErrorControl):
            return self.size - 2
        return None

    def _fallback_decode(self, buffer, count: int, offsets, raw: bool) -> Columns:
        data = _as_bytes_view(buffer)
        starts = np.arange(count, dtype=np.int64) * self.size if offsets is None else offsets
        rows = data[starts[:, None] + np.arange(self.size)] if count else np.zeros((0, self.size), np.uint8)
        pec = None
        if self._pec_offset is not None and count:
            # Parse a copy whose PEC is right, so construct does not raise; report the real one in crc_ok.
            pec = rows[:, self._pec_offset].astype(np.uint16) << 8 | rows[:, self._pec_offset + 1]
            crc = self._crc_kernel.crc16_strided(rows.tobytes(), self.size, self._pec_offset)
            rows = rows.copy()
            rows[:, self._pec_offset] = crc >> 8
            rows[:, self._pec_offset + 1] = crc & 0xFF
        parsed = [flatten(self._parse_one(rows[i].tobytes(), int(starts[i]))) for i in range(count)]
        if not parsed:
            return {}
        columns = {key: _column([p[key] for p in parsed]) for key in parsed[0]}
        if pec is not None:
            columns["pec"] = pec
            columns[CRC_OK] = crc == pec
        if raw:
            params = self._parameters()
            for key, param in params.items():
                if key in columns:
                    columns[key] = _to_raw_array(param, columns[key])
        return columns

    def _fallback_encode(self, columns: Mapping[str, Any], count: int, raw: bool) -> bytes:
        cols = dict(columns)
        cols.pop(CRC_OK, None)
        if raw:
            for key, param in self._parameters().items():
                if key in cols:
                    cols[key] = param.calibration.to_eng_array(np.asarray(cols[key]))
        out = bytearray()
        for i in range(count):
            try:
                out += build_with(self.name, self.struct, unflatten(self.struct, cols, i))
            except (ValueError, TypeError, ArithmeticError, KeyError, IndexError) as exc:
                if isinstance(exc, ProtocolError):
                    raise
                raise ProtocolError(self.name, f"packet {i} cannot be built: {exc}") from exc
        return bytes(out)

    def _parse_one(self, packet: bytes, start: int):
        """construct's parse of one packet starting at byte ``start`` of the caller's buffer, with every
        failure (a Const that differs, a bad enum, a bad string) a ProtocolError at that packet."""
        try:
            return parse_with(self.name, self.struct, packet)
        except ProtocolError as exc:
            offset = None if exc.offset is None else start + exc.offset
            raise type(exc)(self.name, exc.reason, field=exc.field, offset=offset) from exc
        except (ValueError, TypeError, ArithmeticError, KeyError, IndexError, UnicodeError) as exc:
            raise ProtocolError(self.name, f"cannot parse: {exc}", offset=start) from exc



def _allocate(specs: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
    """Empty C-contiguous arrays carved from one block.

    One large allocation instead of dozens of medium ones: numpy backs large blocks with
    huge pages where the OS allows it, so filling the columns costs a handful of page
    faults instead of thousands (the dominant cost of a decode into fresh memory).
    """
    # math.prod, not np.prod: this runs for every column of every call, and the shapes are tiny tuples.
    sizes = [math.prod(shape) * dtype.itemsize for shape, dtype in specs]
    offsets = []
    total = 0
    for size in sizes:
        offsets.append(total)
        total += (size + 63) // 64 * 64  # each column starts on a cache line
    block = np.empty(max(total, 1), dtype=np.uint8)
    return [np.ndarray(shape, dtype=dtype, buffer=block, offset=offset)
            for (shape, dtype), offset in zip(specs, offsets, strict=True)]


def _float_column(array: np.ndarray, leaf: Leaf) -> np.ndarray:
    """Float column as construct writes it: NaNs go through Python's float packing like construct's build
    (which quiets signalling NaNs and, for half floats, drops the payload)."""
    out = np.array(array, dtype=leaf.dtype, order="C", copy=True)
    nan = np.isnan(out)
    if nan.any():
        code = {16: "e", 32: "f", 64: "d"}[leaf.width]
        bits = out.reshape(-1).view(f"u{leaf.dtype.itemsize}")
        for i in np.flatnonzero(nan.reshape(-1)).tolist():
            packed = _struct.pack("=" + code, float(out.reshape(-1)[i]))
            bits[i] = np.frombuffer(packed, dtype=bits.dtype)[0]
    return out


def _to_raw_array(param: Parameter, eng: np.ndarray) -> np.ndarray:
    cal = param.calibration
    if cal.is_state:
        return np.array([cal.to_raw(e) for e in np.asarray(eng).ravel().tolist()], dtype=np.int64).reshape(np.shape(eng))
    raw = cal.to_raw_array(np.asarray(eng))
    return raw if param.domain.is_float else np.asarray(raw).astype(np.int64)


def _bytes_rows(value, leaf: Leaf) -> np.ndarray:
    """Bytes column as uint8 (…, nbytes): accepts bytes, a list of bytes, an 'S' array or uint8 rows."""
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(bytes(value), dtype=np.uint8)
    array = np.asarray(value)
    if array.dtype.kind in "SO":
        flat = [bytes(v).ljust(leaf.nbytes, b"\x00") for v in array.ravel().tolist()]
        if any(len(v) != leaf.nbytes for v in flat):
            raise ProtocolError("packet", f"bytes value is not {leaf.nbytes} bytes long", field=leaf.path)
        return np.frombuffer(b"".join(flat), dtype=np.uint8).reshape(array.shape + (leaf.nbytes,))
    return array.astype(np.uint8)


def _column(values: list) -> np.ndarray:
    if values and isinstance(values[0], (bytes, bytearray)):
        return np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), -1)
    return np.array(values)


def flatten(value, prefix: str = "") -> dict[str, Any]:
    """A parsed construct Container as {dotted path: value}; lists of Containers become lists per key."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("_"):
                continue
            out.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    elif isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        per = [flatten(item, prefix) for item in value]
        for key in per[0]:
            out[key] = [p[key] for p in per]
    elif isinstance(value, list) and value and isinstance(value[0], (bytes, bytearray)):
        out[prefix] = [np.frombuffer(v, dtype=np.uint8) for v in value]
    else:
        out[prefix] = value
    return out


def unflatten(node: cs.Construct, columns: Mapping[str, Any], row: int, prefix: str = "", index: tuple = ()):
    """The construct build value of packet ``row`` from columns, guided by the definition's shape."""
    while isinstance(node, cs.Renamed):
        node = node.subcon
    if isinstance(node, cs.Transformed):
        return unflatten(node.subcon, columns, row, prefix, index)
    if isinstance(node, cs.Struct):
        obj = cs.Container()
        for sub in node.subcons:
            if sub.name:
                path = f"{prefix}.{sub.name}" if prefix else sub.name
                obj[sub.name] = unflatten(sub, columns, row, path, index)
        return obj
    if isinstance(node, cs.Array) and isinstance(node.count, int):
        return [unflatten(node.subcon, columns, row, prefix, index + (i,)) for i in range(node.count)]
    if prefix not in columns:
        return None
    value = columns[prefix]
    if isinstance(value, (bytes, bytearray, str, int, float)):
        return value
    value = np.asarray(value)
    if value.ndim == 0:
        return value.item()
    item = value[(row,) + index]
    if isinstance(item, np.ndarray):
        return item.tobytes() if item.dtype == np.uint8 else item.tolist()
    return item.item() if isinstance(item, np.generic) else item
