"""Random fixed-size construct definitions for differential tests (hypothesis strategies).

Every strategy draws a (construct, needs) pair: a field and whether it holds a
Const (so the test patches those bytes before parsing random data).
"""
from __future__ import annotations

import construct as cs
from hypothesis import strategies as st

from protocols.codec.table import octets
from protocols.parameters import Identity, Linear, Parameter, Polynomial, States

_FORMATS = ["b", "B", "h", "H", "l", "L", "q", "Q", "e", "f", "d", "?"]
_INT_CODES = ["b", "B", "h", "H", "l", "L", "q", "Q"]


@st.composite
def byte_leaf(draw) -> cs.Construct:
    kind = draw(st.sampled_from(["fmt", "fmt", "bytesint", "flag", "bytes", "param", "default", "rebuild", "padded"]))
    if kind == "padded":
        return cs.Padded(draw(st.integers(2, 6)), cs.FormatField(draw(st.sampled_from("<>")), "H"))
    if kind == "fmt":
        return cs.FormatField(draw(st.sampled_from("<>")), draw(st.sampled_from(_FORMATS)))
    if kind == "bytesint":
        return cs.BytesInteger(draw(st.integers(1, 8)), signed=draw(st.booleans()), swapped=draw(st.booleans()))
    if kind == "flag":
        return cs.Flag
    if kind == "bytes":
        return cs.Bytes(draw(st.integers(1, 5)))
    if kind == "param":
        return draw(parameter(byte_mode=True))
    if kind == "default":
        return cs.Default(cs.FormatField(draw(st.sampled_from("<>")), draw(st.sampled_from(_INT_CODES))),
                          draw(st.integers(0, 100)))
    return cs.Rebuild(cs.Int16ub, lambda ctx: 4660)  # a computed value construct always writes


@st.composite
def parameter(draw, byte_mode: bool) -> cs.Construct:
    signed = draw(st.booleans())
    if byte_mode and draw(st.integers(0, 5)) == 0:  # a polynomial on a float raw value
        return Parameter(cs.FormatField(draw(st.sampled_from("<>")), draw(st.sampled_from("fd"))), unit="u",
                         description="synthetic float parameter", calibration=Polynomial(0.5, -2.0))  # exact both ways on floats
    if byte_mode:
        nbytes = draw(st.sampled_from([1, 2, 3, 4]))
        code = {1: "b", 2: "h", 4: "l"}.get(nbytes, "b")
        raw = cs.BytesInteger(nbytes, signed=signed, swapped=draw(st.booleans())) if nbytes == 3 else \
            cs.FormatField(draw(st.sampled_from("<>")), code if signed else code.upper())
        bits = 8 * nbytes
    else:
        bits = draw(st.integers(2, 16))
        raw = cs.BitsInteger(bits, signed=signed)
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    choice = draw(st.sampled_from(["identity", "linear", "states", "poly"]))
    if choice == "identity":
        cal = Identity()
    elif choice == "linear":
        cal = Linear(draw(st.sampled_from([0.001, 0.5, -2.0, 0.1])), draw(st.sampled_from([0.0, -40.0, 3.25])))
    elif choice == "states":
        # States builds a lookup table spanning its codes: keep them close together.  Every other
        # code is a range, and names repeat (several codes, one state), as XTCE enumerations allow.
        codes = sorted(draw(st.lists(st.integers(max(lo, -100), min(hi, 100)), min_size=1, max_size=4, unique=True)))
        keys: list = [c if i % 2 == 0 or c + 1 >= (codes + [hi + 1])[i + 1] else (c, c + 1)
                      for i, c in enumerate(codes)]
        cal = States({k: f"S{i % 2}" for i, k in enumerate(keys)})
    else:
        span = max(abs(lo), abs(hi)) or 1
        cal = Polynomial(1.5, 0.25, 0.1 / span)  # monotonic increasing over the raw domain
    return Parameter(raw, unit="u", description="synthetic parameter", calibration=cal)


@st.composite
def bit_fields(draw, depth: int) -> list:
    """Named bit-mode fields whose total is a whole number of bytes."""
    fields = []
    total = 0
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["bits", "bits", "flag", "pad", "array", "param", "struct", "default", "bytewise"]))
        if kind == "struct" and depth < 1:
            inner = draw(bit_fields(depth + 1))
            sub = cs.Struct(*inner)
        elif kind == "array":
            sub = cs.Array(draw(st.integers(1, 3)), cs.BitsInteger(draw(st.integers(1, 12)), signed=draw(st.booleans())))
        elif kind == "flag":
            sub = cs.Flag
        elif kind == "bytewise":  # a byte-format field at whatever bit offset the walk has reached
            sub = cs.Bytewise(cs.FormatField(draw(st.sampled_from("<>")), draw(st.sampled_from(["H", "h", "f", "Q"]))))
        elif kind == "pad":
            pad = cs.Padding(draw(st.integers(1, 5)))
            fields.append(pad)
            total += pad.sizeof()  # in bit mode sizes count bits
            continue
        elif kind == "param":
            sub = draw(parameter(byte_mode=False))
        elif kind == "default":
            sub = cs.Default(cs.BitsInteger(draw(st.integers(1, 10))), 1)
        else:
            width = draw(st.integers(1, 64))
            swapped = width % 8 == 0 and draw(st.booleans())
            sub = cs.BitsInteger(width, signed=draw(st.booleans()), swapped=swapped)
        fields.append(f"b{depth}_{i}" / sub)
        total += sub.sizeof()
    if total % 8:
        fields.append(f"b{depth}_fill" / cs.BitsInteger(8 - total % 8))
    return fields


@st.composite
def byte_fields(draw, depth: int) -> list:
    fields = []
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["leaf", "leaf", "leaf", "bitstruct", "array", "struct", "padding", "pstruct",
                                     "peek", "union", "pointer"]))
        name = f"f{depth}_{i}"
        if kind == "peek":
            # An overlapping view: the octets read twice, as two different definitions.
            whole = cs.Struct(*draw(byte_fields(depth + 1))) if depth < 2 else draw(byte_leaf())
            size = size_of(whole)
            aggregate = cs.BytesInteger(size, signed=draw(st.booleans())) if size <= 8 else cs.Bytes(size)
            fields.append(f"{name}_whole" / cs.Peek(aggregate))
            fields.append(name / whole)
        elif kind == "union" and depth >= 1:
            # An aggregate and its sub-fields; construct moves on by the parsefrom member.
            parts = cs.Struct(*draw(byte_fields(depth + 1))) if depth < 2 else draw(byte_leaf())
            alias = cs.Bytes(draw(st.integers(1, 2)))
            fields.append(name / cs.Union(0, "parts" / parts, "alias" / alias))
            fields.append(f"{name}_tail" / cs.Int16ub)  # so that the alias never runs past the packet
        elif kind == "pointer" and depth == 0:
            high = draw(st.integers(1, 15))
            fields.append(name / cs.Pointer(0, cs.BitStruct("high" / cs.BitsInteger(high),
                                                            "low" / cs.BitsInteger(16 - high))))
            fields.append(f"{name}_at0" / cs.Bytes(2))  # what the pointer reads is always there
        elif kind == "bitstruct":
            fields.append(name / cs.BitStruct(*draw(bit_fields(0))))
        elif kind == "array":
            element = draw(byte_leaf()) if draw(st.booleans()) or depth >= 1 else cs.Struct(*draw(byte_fields(depth + 1)))
            if isinstance(element, cs.Rebuild) or isinstance(element, cs.Default):
                element = cs.Int16sl
            fields.append(name / cs.Array(draw(st.integers(1, 3)), element))
        elif kind in ("struct", "pstruct") and depth < 2:
            fields.append(name / cs.Struct(*draw(byte_fields(depth + 1))))
        elif kind == "padding":
            fields.append(cs.Padding(draw(st.integers(1, 3))))
        else:
            fields.append(name / draw(byte_leaf()))
    return fields


def size_of(con: cs.Construct) -> int:
    """Octets of a fixed definition; construct cannot size a Union, the codec's table walk can."""
    return octets(con)


@st.composite
def synthetic_struct(draw) -> tuple[cs.Struct, list[tuple[int, bytes]]]:
    """A random fixed-size Struct and the (offset, bytes) of its top-level Consts."""
    fields = draw(byte_fields(0))
    consts: list[tuple[int, bytes]] = []
    if draw(st.booleans()):
        value = draw(st.integers(0, 0xFFFF))
        at = draw(st.integers(0, len(fields)))
        offset = sum(size_of(f) for f in fields[:at])
        fields.insert(at, "magic" / cs.Const(value, cs.Int16ub))
        consts.append((offset, value.to_bytes(2, "big")))
    return cs.Struct(*fields), consts
