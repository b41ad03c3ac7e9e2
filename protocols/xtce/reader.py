"""XTCE document -> Spacecraft, with construct definitions built at run time.

Two kinds of document are read:

- Queqiao's own exports (:mod:`protocols.xtce.writer`): their AncillaryData name each
  container's kind, so housekeeping, events, service reports and commands come back as the
  same :class:`~protocols.missions.model.PacketDef` classes with the same fields;
- anyone else's telemetry: every concrete SequenceContainer below a CCSDS primary header
  becomes a :class:`TelemetryPacket` selected by APID, its parameters wrapped in
  :class:`~protocols.parameters.Parameter` (calibration from the PolynomialCalibrator,
  enumeration, unit, description, limits from the DefaultAlarm), so the fast path, limits,
  Prometheus and MQTT treat it like a built-in housekeeping packet.

What the reader cannot express raises :class:`XtceError` naming the element.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import construct as cs

from protocols.ccsds.spacepacket import PacketType, fixed_primary_header
from protocols.ccsds.tmframe import InsertZoneTime, ReedSolomon
from protocols.errors import DefinitionError
from protocols.missions import model as M
from protocols.parameters import Calibration, Limits, Linear, Parameter, Polynomial, StateLimits, States
from protocols.xtce import names as N


class XtceError(DefinitionError):
    """An XTCE document the reader cannot turn into a spacecraft (the message names the element)."""


#: Frames of a spacecraft whose document says nothing about them (foreign XTCE carries no frame
#: profile): CCSDS TM frames of 1115 octets with OCF and FECF, randomized, realtime VC 0, playback VC 1.
DEFAULT_PROFILE = M.Downlink(
    frame=M.FrameProfile(kind="TM", frame_length=1115, has_ocf=True, has_fecf=True, randomized=True),
    virtual_channels=(M.VirtualChannel(0, "realtime", "Realtime telemetry"),
                      M.VirtualChannel(1, "playback", "Stored telemetry"),
                      M.VirtualChannel(7, "idle", "Fill")),
    realtime_vc=0, playback_vc=1, source="invented",
    notes="Default profile for a spacecraft imported from XTCE (the document defines no frames).")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node: ET.Element, name: str) -> Iterator[ET.Element]:
    return (c for c in node if _local(c.tag) == name)


def _child(node: ET.Element | None, name: str) -> ET.Element | None:
    return None if node is None else next(_children(node, name), None)


def _kids(node: ET.Element | None, name: str) -> list[ET.Element]:
    """The children of ``node``'s child ``name`` (none when it is missing): an Element without children is falsy."""
    holder = _child(node, name)
    return [] if holder is None else list(holder)


def _path(node: ET.Element, *names: str) -> ET.Element | None:
    for name in names:
        node = _child(node, name)  # type: ignore[assignment]
        if node is None:
            return None
    return node


def _ancillary(node: ET.Element) -> dict[str, str]:
    holder = _child(node, "AncillaryDataSet")
    return {} if holder is None else {a.get("name", ""): (a.text or "") for a in _children(holder, "AncillaryData")}


def _description(node: ET.Element) -> str:
    long = _child(node, "LongDescription")
    return (node.get("shortDescription") or (long.text if long is not None else None) or "").strip()


def snake(name: str) -> str:
    """An XTCE name in Queqiao's alphabet (MQTT topic levels, Prometheus labels): lower snake case."""
    text = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    return text if text and text[0].isalpha() else f"p_{text}"


# --------------------------------------------------------------------------- types


@dataclass
class _Type:
    """What a ParameterType / ArgumentType says, in construct terms."""

    name: str
    kind: str              # "int" | "float" | "bytes"
    bits: int
    signed: bool = False
    little: bool = False
    unit: str = ""
    calibration: Calibration | None = None
    limits: Limits | StateLimits | None = None
    valid: tuple[float, float] | None = None
    enumerated: bool = False
    #: A binary whose size in bits is ``slope * parameter + intercept`` (a DynamicValue):
    #: (parameter name, slope, intercept, from its calibrated value); ``bits`` is then 0.
    dynamic: tuple[str, int, int, bool] | None = None

    def raw(self, bitwise: bool, where: str) -> cs.Construct:
        if self.kind == "bytes":
            if bitwise or self.bits % 8:
                raise XtceError(f"{where}: binary/string field of {self.bits} bits is not whole octets")
            return cs.Bytes(self.bits // 8)
        if self.kind == "float":
            if self.bits not in (32, 64):
                raise XtceError(f"{where}: float encoding of {self.bits} bits (32 and 64 are read)")
            ieee = cs.FormatField("<" if self.little else ">", "f" if self.bits == 32 else "d")
            return cs.Bytewise(ieee) if bitwise else ieee
        if bitwise:
            if self.little:
                raise XtceError(f"{where}: little-endian integer inside a run of bit fields")
            return cs.BitsInteger(self.bits, signed=self.signed)
        if self.bits in (8, 16, 32, 64):
            code = {8: "b", 16: "h", 32: "l", 64: "q"}[self.bits]
            return cs.FormatField("<" if self.little else ">", code if self.signed else code.upper())
        return cs.BytesInteger(self.bits // 8, signed=self.signed, swapped=self.little)


def _read_type(node: ET.Element) -> _Type:
    where = f"{_local(node.tag)} {node.get('name')!r}"
    units = [u.text or "" for u in _kids(node, "UnitSet") if _local(u.tag) == "Unit"]
    integer = _child(node, "IntegerDataEncoding")
    floating = _child(node, "FloatDataEncoding")
    binary = _child(node, "BinaryDataEncoding") or _child(node, "StringDataEncoding")
    if integer is not None:
        encoding = integer.get("encoding", "unsigned")
        if encoding not in ("unsigned", "twosComplement"):
            raise XtceError(f"{where}: integer encoding {encoding!r} (unsigned and twosComplement are read)")
        t = _Type(node.get("name", ""), "int", int(integer.get("sizeInBits", "8")), encoding == "twosComplement",
                  integer.get("byteOrder") == "leastSignificantByteFirst")
        enc = integer
    elif floating is not None:
        encoding = floating.get("encoding", "IEEE754_1985")
        if encoding not in ("IEEE754_1985", "IEEE754"):
            raise XtceError(f"{where}: float encoding {encoding!r} (IEEE 754 is read)")
        t = _Type(node.get("name", ""), "float", int(floating.get("sizeInBits", "32")),
                  little=floating.get("byteOrder") == "leastSignificantByteFirst")
        enc = floating
    elif binary is not None:
        size = _path(binary, "SizeInBits", "FixedValue")
        if size is None:
            size = _path(binary, "SizeInBits", "Fixed", "FixedValue")
        dynamic = _path(binary, "SizeInBits", "DynamicValue")
        if size is not None:
            t = _Type(node.get("name", ""), "bytes", int(size.text or "0"))
        elif dynamic is not None and _local(binary.tag) == "BinaryDataEncoding":
            t = _Type(node.get("name", ""), "bytes", 0, dynamic=_dynamic_size(dynamic, where))
        else:
            raise XtceError(f"{where}: only fixed-size strings, and binaries of a fixed size or a DynamicValue "
                            "size, are read")
        enc = binary
    else:
        raise XtceError(f"{where}: no IntegerDataEncoding, FloatDataEncoding, BinaryDataEncoding or "
                        "StringDataEncoding")
    t.unit = " ".join(u for u in units if u)
    poly = _path(enc, "DefaultCalibrator", "PolynomialCalibrator")
    if _path(enc, "DefaultCalibrator") is not None and poly is None:
        raise XtceError(f"{where}: only the PolynomialCalibrator is read")
    if poly is not None:
        terms = {int(term.get("exponent", "0")): float(term.get("coefficient", "0"))
                 for term in _children(poly, "Term")}
        coefficients = [terms.get(i, 0.0) for i in range(max(terms) + 1)] if terms else [0.0]
        while len(coefficients) > 2 and coefficients[-1] == 0.0:
            coefficients.pop()
        if len(coefficients) == 2 and coefficients[1] != 0.0:
            t.calibration = Linear(coefficients[1], coefficients[0])
        elif len(coefficients) > 2:
            t.calibration = Polynomial(*coefficients)
        elif coefficients != [0.0, 1.0]:
            raise XtceError(f"{where}: polynomial {coefficients} is constant")
    enumeration = _child(node, "EnumerationList")
    if enumeration is not None:
        states = {}
        for item in _children(enumeration, "Enumeration"):
            if item.get("maxValue") not in (None, item.get("value")):
                raise XtceError(f"{where}: enumeration ranges (maxValue) are not read")
            states[int(item.get("value", "0"))] = item.get("label", "")
        t.calibration, t.enumerated = States(states), True
        alarm = _child(node, "DefaultAlarm")
        if alarm is not None:
            alarms = _child(alarm, "EnumerationAlarmList")
            alarms = alarms if alarms is not None else alarm
            levels: dict[str, list[str]] = {"warning": [], "critical": []}
            for alarm in _children(alarms, "EnumerationAlarm"):
                level = alarm.get("alarmLevel", "normal")
                if level in ("watch", "warning"):
                    levels["warning"].append(alarm.get("enumerationLabel", ""))
                elif level in ("distress", "critical", "severe"):
                    levels["critical"].append(alarm.get("enumerationLabel", ""))
            t.limits = StateLimits(warning=levels["warning"], critical=levels["critical"])
    ranges = _path(node, "DefaultAlarm", "StaticAlarmRanges")
    if ranges is not None:
        found = {}
        for tag in ("WarningRange", "CriticalRange"):
            r = _child(ranges, tag)
            if r is not None:
                found[tag] = (_number(r.get("minInclusive")), _number(r.get("maxInclusive")))
        if found:
            t.limits = Limits(warning=found.get("WarningRange"), critical=found.get("CriticalRange"))
    valid = _path(node, "ValidRangeSet", "ValidRange")
    if valid is not None:
        t.valid = (float(valid.get("minInclusive", "-inf")), float(valid.get("maxInclusive", "inf")))
    return t


def _dynamic_size(node: ET.Element, where: str) -> tuple[str, int, int, bool]:
    """(parameter, slope, intercept, from the calibrated value) of a DynamicValue size in bits: a whole
    number of octets per value of the parameter and a whole number of octets besides, or the packet
    could not be read."""
    ref = _child(node, "ParameterInstanceRef")
    if ref is None or not ref.get("parameterRef"):
        raise XtceError(f"{where}: a DynamicValue size without a ParameterInstanceRef")
    adjustment = _child(node, "LinearAdjustment")
    try:
        slope = float(adjustment.get("slope", "1")) if adjustment is not None else 1.0
        intercept = float(adjustment.get("intercept", "0")) if adjustment is not None else 0.0
    except ValueError as exc:
        raise XtceError(f"{where}: LinearAdjustment {exc}") from None
    if slope != int(slope) or intercept != int(intercept) or int(slope) % 8 or int(intercept) % 8 or slope <= 0:
        raise XtceError(f"{where}: a size of {slope:g} x {ref.get('parameterRef')} + {intercept:g} bits is not "
                        "a whole number of octets for every value")
    return ref.get("parameterRef", ""), int(slope), int(intercept), ref.get("useCalibratedValue", "true") == "true"


def _number(text: str | None) -> float | None:
    return None if text is None else float(text)


# --------------------------------------------------------------------------- containers


@dataclass
class _Container:
    name: str
    node: ET.Element
    entries: list[str]
    base: str | None
    criteria: dict[str, int]
    abstract: bool
    facts: dict[str, str] = field(default_factory=dict)


class _Document:
    def __init__(self, data: bytes | str, origin: str) -> None:
        try:
            self.root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise XtceError(f"{origin}: not well-formed XML: {exc}") from None
        if _local(self.root.tag) != "SpaceSystem":
            raise XtceError(f"{origin}: the root element is {_local(self.root.tag)}, not an XTCE SpaceSystem")
        self.origin = origin
        tm = _child(self.root, "TelemetryMetaData")
        if tm is None:
            raise XtceError(f"{origin}: no TelemetryMetaData")
        self.types = {t.get("name", ""): t for t in _kids(tm, "ParameterTypeSet")}
        self.parameters = {p.get("name", ""): p for p in _kids(tm, "ParameterSet")}
        self.containers: dict[str, _Container] = {}
        for node in _kids(tm, "ContainerSet"):
            if _local(node.tag) != "SequenceContainer":
                continue
            entries = []
            for entry in _kids(node, "EntryList"):
                kind = _local(entry.tag)
                if kind == "ParameterRefEntry":
                    entries.append(entry.get("parameterRef", ""))
                elif kind == "ContainerRefEntry":
                    entries.append("@" + entry.get("containerRef", ""))
                else:
                    raise XtceError(f"{origin}: container {node.get('name')!r}: {kind} is not read "
                                    "(ParameterRefEntry and ContainerRefEntry are)")
                if _child(entry, "IncludeCondition") is not None or _child(entry, "RepeatEntry") is not None:
                    raise XtceError(f"{origin}: container {node.get('name')!r}: entries with an IncludeCondition "
                                    "or RepeatEntry (variable layouts) are not read")
            base = _child(node, "BaseContainer")
            criteria: dict[str, int] = {}
            if base is not None:
                for comparison in base.iter():
                    if _local(comparison.tag) == "Comparison":
                        if comparison.get("comparisonOperator", "==") != "==":
                            raise XtceError(f"{origin}: container {node.get('name')!r}: only == restrictions are read")
                        criteria[comparison.get("parameterRef", "")] = int(comparison.get("value", "0"), 0)
            self.containers[node.get("name", "")] = _Container(
                node.get("name", ""), node, entries, base.get("containerRef") if base is not None else None,
                criteria, node.get("abstract") == "true", _ancillary(node))
        self._type_cache: dict[str, _Type] = {}

    def type_of(self, parameter: str, where: str) -> _Type:
        node = self.parameters.get(parameter)
        if node is None:
            raise XtceError(f"{self.origin}: {where} refers to parameter {parameter!r}, which is not defined")
        ref = node.get("parameterTypeRef", "")
        if ref not in self._type_cache:
            tnode = self.types.get(ref)
            if tnode is None:
                raise XtceError(f"{self.origin}: parameter {parameter!r} has type {ref!r}, which is not defined")
            if _local(tnode.tag) in ("ArrayParameterType", "AggregateParameterType"):
                raise XtceError(f"{self.origin}: parameter {parameter!r}: {_local(tnode.tag)} is not read")
            try:
                self._type_cache[ref] = _read_type(tnode)
            except DefinitionError as exc:
                raise XtceError(f"{self.origin}: parameter {parameter!r}: {exc}") from None
        return self._type_cache[ref]

    def flat_entries(self, name: str, seen: tuple[str, ...] = ()) -> list[str]:
        """The parameters of a container's own entry list, ContainerRefEntry expanded in place."""
        if name in seen:
            raise XtceError(f"{self.origin}: container {name!r} includes itself")
        out: list[str] = []
        for entry in self.containers[name].entries:
            if entry.startswith("@"):
                if entry[1:] not in self.containers:
                    raise XtceError(f"{self.origin}: container {name!r} refers to container {entry[1:]!r}, "
                                    "which is not defined")
                out += self.flat_entries(entry[1:], seen + (name,))
            else:
                out.append(entry)
        return out

    def chain(self, name: str) -> list[_Container]:
        """The container and its bases, root first."""
        out: list[_Container] = []
        while name is not None:
            if name not in self.containers:
                raise XtceError(f"{self.origin}: base container {name!r} is not defined")
            if any(c.name == name for c in out):
                raise XtceError(f"{self.origin}: container {name!r} inherits from itself")
            out.insert(0, self.containers[name])
            name = self.containers[name].base  # type: ignore[assignment]
        return out


# --------------------------------------------------------------------------- fields


def _parameter(t: _Type, description: str, raw: cs.Construct) -> cs.Construct:
    """The field as a Parameter; a field without a description (raw header bits such as a report's
    request ID, which Queqiao defines without one) stays the raw construct."""
    if not description:
        return raw
    unit = "state" if t.enumerated and not t.unit else t.unit
    return Parameter(raw, unit=unit, description=description, calibration=t.calibration, limits=t.limits)


def _nest(leaves: list[tuple[tuple[str, ...], _Type, str]], where: str) -> list[cs.Construct]:
    """Named constructs from (path parts, type, description) in wire order; shared prefixes become structs,
    a struct of bit fields a BitStruct."""
    out: list[cs.Construct] = []
    i = 0
    while i < len(leaves):
        parts, t, text = leaves[i]
        if len(parts) == 1:
            out.append(parts[0] / _parameter(t, text, t.raw(False, f"{where} field {parts[0]!r}")))
            i += 1
            continue
        j = i
        while j < len(leaves) and len(leaves[j][0]) > 1 and leaves[j][0][0] == parts[0]:
            j += 1
        members = [(p[1:], tt, d) for p, tt, d in leaves[i:j]]
        if any(tt.bits % 8 for _, tt, _ in members):
            if any(len(p) > 1 for p, _, _ in members):
                raise XtceError(f"{where}: nested structures inside bit fields {parts[0]!r}")
            out.append(parts[0] / cs.BitStruct(*[p[0] / _parameter(tt, d, tt.raw(True, f"{where} field {p[0]!r}"))
                                                 for p, tt, d in members]))
        else:
            out.append(parts[0] / cs.Struct(*_nest(members, where)))
        i = j
    return out


def _in_bit_runs(leaves: list[tuple[str, _Type, str]]) -> set[str]:
    """The fields :func:`_bit_runs` puts inside a BitStruct."""
    inside: set[str] = set()
    offset = 0
    for name, t, _ in leaves:
        if offset or t.bits % 8:
            inside.add(name)
            offset = (offset + t.bits) % 8
    return inside


#: The primary header's fields in TelemetryPacket's construct, in the order of _PRIMARY_BITS.
_PRIMARY_FIELDS = ("version", "type", "secondary_header_flag", "apid", "sequence_flags", "sequence_count",
                   "data_length")


def _sized_binaries(doc: _Document, header: list[str], rest: list[str], leaves: list[tuple[str, _Type, str]],
                    where: str) -> dict[str, cs.Construct]:
    """The construct of each binary field whose size is a DynamicValue, by field name.

    The size may come from the primary header (the packet length) or from an integer field before
    it, outside a run of bit fields.  A binary sized by the packet length to exactly the packet's
    end, with only fixed-size fields before it, is read as running to the end (GreedyBytes): that
    is what it says, and the packet can then also be built from its values.
    """
    sized: dict[str, cs.Construct] = {}
    fields = {p: leaf[0] for p, leaf in zip(rest, leaves, strict=True)}
    in_runs = _in_bit_runs(leaves)
    fixed_bits: int | None = 48  # bits before the field, while every field before it has a fixed size
    for k, (name, t, _) in enumerate(leaves):
        if t.dynamic is None:
            fixed_bits = None if fixed_bits is None else fixed_bits + t.bits
            continue
        ref, slope, intercept, calibrated = t.dynamic
        what = f"{where} field {name!r}"
        if ref in header:
            source = getattr(cs.this._.primary, _PRIMARY_FIELDS[header.index(ref)])
        elif ref in rest[:k] and fields[ref] not in in_runs and doc.type_of(ref, what).kind == "int":
            source = getattr(cs.this, fields[ref])
        else:
            raise XtceError(f"{what}: its size comes from {ref!r}, which is not the primary header or a whole-octet "
                            "integer field before it")
        if calibrated and doc.type_of(ref, what).calibration is not None:
            raise XtceError(f"{what}: its size comes from the calibrated value of {ref!r} "
                            "(useCalibratedValue=\"false\" is read)")
        runs_to_end = (ref == header[6] and k == len(rest) - 1 and fixed_bits is not None and slope == 8
                       and intercept == 56 - fixed_bits)
        sized[name] = cs.GreedyBytes if runs_to_end else cs.Bytes(source * (slope // 8) + intercept // 8)
        fixed_bits = None
    return sized


def _bit_runs(leaves: list[tuple[str, _Type, str]], where: str,
              sized: dict[str, cs.Construct] | None = None) -> list[cs.Construct]:
    """A foreign container's fields: octet-aligned ones as they are, runs of bit fields as BitStructs;
    ``sized`` the binaries whose size another field gives (:func:`_sized_binaries`)."""
    sized = sized or {}
    out: list[cs.Construct] = []
    run: list[tuple[str, _Type, str]] = []
    offset = 0
    for name, t, text in leaves:
        if run or t.bits % 8:
            run.append((name, t, text))
            offset += t.bits
            if offset % 8 == 0:
                out.append(f"{run[0][0]}_bits" / cs.BitStruct(
                    *[n / _parameter(tt, d, tt.raw(True, f"{where} field {n!r}")) if tt.kind != "bytes"
                      else n / tt.raw(True, f"{where} field {n!r}") for n, tt, d in run]))
                run, offset = [], 0
            continue
        raw = sized[name] if name in sized else t.raw(False, f"{where} field {name!r}")
        out.append(name / (raw if t.kind == "bytes" else _parameter(t, text, raw)))
    if run:
        # The definition stops inside an octet (the packet on the wire is whole octets): the rest of
        # that octet is padding, as space_packet_parser leaves those bits unread.
        pad = 8 - offset % 8
        out.append(f"{run[0][0]}_bits" / cs.BitStruct(
            *[n / _parameter(tt, d, tt.raw(True, f"{where} field {n!r}")) for n, tt, d in run],
            cs.Padding(pad)))
    return out


class TelemetryPacket(M.HousekeepingPacket):
    """A telemetry packet defined by a foreign XTCE container: primary header, then ``data``, selected by APID.

    It has no PUS secondary header, SID or packet error control; the chain exports its
    parameters as it does housekeeping (``kind`` is "housekeeping").  Its binaries may be sized by
    another field (variable-size packets, decoded by VariablePacketCodec).
    """

    allows_variable = True

    def __init__(self, name: str, *, apid: int, subsystem: str, description: str,
                 fields: list[cs.Construct], secondary_header: bool, sources: Sequence[str] = ()) -> None:
        self.period = 0.0
        self.sid = None  # type: ignore[assignment]
        self.secondary_header = secondary_header
        M.PacketDef.__init__(self, name=name, apid=apid, service=None, subtype=None, key=None,  # type: ignore[arg-type]
                           key_name=None, body=["data" / cs.Struct(*fields)], subsystem=subsystem,
                           description=description)
        #: The XTCE parameter name of each Parameter, by dotted path (what other tools call the field).
        self.xtce_names: dict[str, str] = dict(zip((path for path, _ in self.parameters()), sources, strict=True))

    def _factory(self, apid, service, subtype, fields):
        try:
            size = 6 + sum(f.sizeof() for f in fields)
        except cs.SizeofError:
            size = 7  # variable-size: the data length is read from the wire, and set by build
        return cs.Struct("primary" / fixed_primary_header(apid, PacketType.TM, self.secondary_header, size), *fields)

    def build(self, values, *, sequence_count: int = 0, time=(0, 0)) -> bytes:
        packet = self._build("data", values, primary=dict(sequence_count=sequence_count))
        if self.variable:  # the header's data length, now that the packet's size is known
            packet = packet[:4] + (len(packet) - 7).to_bytes(2, "big") + packet[6:]
        return packet


# --------------------------------------------------------------------------- the two readers


_PRIMARY_BITS = [3, 1, 1, 11, 2, 14, 16]


def _header_params(doc: _Document, chain: list[_Container]) -> tuple[list[str], list[str]]:
    """The primary header's 7 parameter names, and the rest of the container chain's parameters."""
    params: list[str] = []
    for c in chain:
        params += doc.flat_entries(c.name)
    header, rest = params[:7], params[7:]
    bits = [doc.type_of(p, f"container {chain[-1].name!r}").bits for p in header]
    if bits != _PRIMARY_BITS:
        raise XtceError(f"{doc.origin}: container {chain[-1].name!r} does not start with a CCSDS primary header "
                        f"(fields of {_PRIMARY_BITS} bits); it starts with {list(zip(header, bits, strict=True))}")
    return header, rest


def _foreign(doc: _Document, name: str | None, scid: int | None, profile: M.Downlink | None) -> M.Spacecraft:
    sc_name = name or snake(doc.root.get("name", "xtce")).replace("_", "-")
    if scid is None:
        raise XtceError(f"{doc.origin}: the document names no SCID (Queqiao's AncillaryData "
                        f"{N.ANC_SPACECRAFT!r}); give one (config: [[spacecraft]] scid = N)")
    packets: list[TelemetryPacket] = []
    apids: dict[int, str] = {}
    for container in doc.containers.values():
        if container.abstract:
            continue
        chain = doc.chain(container.name)
        header, rest = _header_params(doc, chain)
        criteria: dict[str, int] = {}
        for c in chain:
            criteria.update(c.criteria)
        apid_param, type_param, secondary_param = header[3], header[1], header[2]
        if apid_param not in criteria:
            raise XtceError(f"{doc.origin}: container {container.name!r} is not restricted to one APID "
                            f"({apid_param} == N)")
        others = set(criteria) - {apid_param, type_param, header[0], secondary_param}
        if others:
            raise XtceError(f"{doc.origin}: container {container.name!r} is selected by {sorted(others)} besides "
                            "the APID: only APID selection is read for foreign documents")
        if criteria.get(type_param, 0) != 0:
            continue  # telecommand containers: the import reads telemetry
        leaves = []
        used: dict[str, int] = {}
        for p in rest:
            t = doc.type_of(p, f"container {container.name!r}")
            # A parameter may appear twice in one container (spares): the later ones get a suffix.
            field_name = snake(p)
            used[field_name] = used.get(field_name, 0) + 1
            if used[field_name] > 1:
                field_name = f"{field_name}_{used[field_name]}"
            leaves.append((field_name, t, _description(doc.parameters[p]) or p))
        where = f"{doc.origin}: container {container.name!r}"
        packet_name = snake(container.name)
        try:
            packets.append(TelemetryPacket(
                packet_name, apid=criteria[apid_param], subsystem=packet_name,
                description=_description(container.node) or container.name,
                fields=_bit_runs(leaves, where, _sized_binaries(doc, header, rest, leaves, where)),
                secondary_header=bool(criteria.get(secondary_param, 1)),
                sources=[p for p, (_, t, _) in zip(rest, leaves, strict=True) if t.kind != "bytes"]))
        except XtceError:
            raise
        except DefinitionError as exc:
            raise XtceError(f"{where}: {exc}") from None
        apids.setdefault(criteria[apid_param], packet_name)
    if not packets:
        raise XtceError(f"{doc.origin}: no concrete telemetry container below a CCSDS primary header")
    return M.Spacecraft(
        name=sc_name, scid=scid, description=_description(doc.root) or f"Imported from {doc.origin}",
        profile=profile or DEFAULT_PROFILE,
        apids=tuple(M.Apid(a, f"apid{a}", f"APID {a} ({n})") for a, n in sorted(apids.items())),
        housekeeping=tuple(packets), events=(), commands=(), reports=(), require_limits=False, origin=doc.origin)


def _queqiao(doc: _Document, facts: dict[str, Any], name: str | None, scid: int | None,
             profile: M.Downlink | None) -> M.Spacecraft:
    housekeeping: list[M.HousekeepingPacket] = []
    events: list[M.EventReport] = []
    reports: list[M.ServiceReport] = []
    for container in doc.containers.values():
        if container.abstract:
            continue
        kind = container.facts.get(N.ANC_KIND)
        if kind not in N.GROUPS:
            raise XtceError(f"{doc.origin}: container {container.name!r} has no {N.ANC_KIND!r} "
                            "(a Queqiao document names the kind of every packet)")
        chain = doc.chain(container.name)
        criteria: dict[str, int] = {}
        for c in chain:
            criteria.update(c.criteria)
        key = next(((k, v) for k, v in criteria.items() if k.startswith(("tm_apid", "tc_apid"))), None)
        apid, subtype = criteria[N.PRIMARY["apid"]], criteria[N.secondary_name(("secondary", "subtype"))]
        where = f"{doc.origin}: packet {container.name!r}"
        leaves = []
        for p in doc.flat_entries(container.name):
            if p == N.PEC:
                continue
            parts = p.split(N.SEPARATOR)
            if parts[0] != container.name:
                raise XtceError(f"{where}: parameter {p!r} is not named after its packet")
            leaves.append((tuple(parts[1:]), doc.type_of(p, where), _description(doc.parameters[p])))
        fields = _nest(leaves, where)
        subsystem = container.facts.get(N.ANC_SUBSYSTEM, "xtce")
        text = _description(container.node)
        try:
            if kind == "housekeeping":
                housekeeping.append(M.HousekeepingPacket(
                    container.name, apid=apid, sid=key[1] if key else 0, subsystem=subsystem,
                    period=float(container.facts.get(N.ANC_PERIOD, "1")), description=text, fields=fields))
            elif kind == "event":
                events.append(M.EventReport(container.name, apid=apid, event_id=key[1] if key else 0, severity=subtype,
                                          subsystem=subsystem, description=text, aux=fields))
            else:
                service = criteria[N.secondary_name(("secondary", "service"))]
                reports.append(M.ServiceReport(container.name, apid=apid, service=service, subtype=subtype,
                                             subsystem=subsystem, description=text, fields=fields))
        except DefinitionError as exc:
            raise XtceError(f"{where}: {exc}") from None
    commands = _commands(doc)
    frames: dict[str, Any] = dict(facts["profile"])
    frame = dict(frames["frame"])
    frame["rs"] = ReedSolomon(**frame["rs"]) if frame.get("rs") else None
    frame["insert_zone_time"] = InsertZoneTime(**frame["insert_zone_time"]) if frame.get("insert_zone_time") else None
    frames["frame"] = M.FrameProfile(**frame)
    frames["virtual_channels"] = tuple(M.VirtualChannel(**vc) for vc in frames["virtual_channels"])
    return M.Spacecraft(
        name=name or doc.root.get("name") or "", scid=facts["scid"] if scid is None else scid,
        description=_description(doc.root), profile=profile or M.Downlink(**frames),
        apids=tuple(M.Apid(**a) for a in facts["apids"]), housekeeping=tuple(housekeeping), events=tuple(events),
        commands=tuple(commands), instruments=tuple(M.Instrument(**i) for i in facts["instruments"]),
        reports=tuple(reports), origin=doc.origin)


def _commands(doc: _Document) -> list[M.Command]:
    meta = _child(doc.root, "CommandMetaData")
    if meta is None:
        return []
    types = {t.get("name", ""): t for t in _kids(meta, "ArgumentTypeSet")}
    out = []
    for node in _kids(meta, "MetaCommandSet"):
        name = node.get("name", "")
        where = f"{doc.origin}: MetaCommand {name!r}"
        arguments = {}
        for arg in _kids(node, "ArgumentList"):
            ref = arg.get("argumentTypeRef", "")
            if ref not in types:
                raise XtceError(f"{where}: argument type {ref!r} is not defined")
            arguments[arg.get("name", "")] = (arg, _read_type(types[ref]))
        fixed: dict[str, int] = {}
        sizes: dict[str, int] = {}
        order: list[str] = []
        for entry in _kids(_child(node, "CommandContainer"), "EntryList"):
            kind = _local(entry.tag)
            if kind == "FixedValueEntry":
                fixed[entry.get("name", "")] = int(entry.get("binaryValue", "0"), 16)
                sizes[entry.get("name", "")] = int(entry.get("sizeInBits", "0"))
                order.append("=" + entry.get("name", ""))
            elif kind == "ArgumentRefEntry":
                order.append(entry.get("argumentRef", ""))
            else:
                raise XtceError(f"{where}: {kind} in the command container is not read")
        known = {"ccsds_packet_id", "ccsds_sequence_control", "ccsds_data_length", "pus_tc_flags", "pus_tc_service",
                 "pus_tc_subtype", "pus_tc_source_id", "pus_packet_error_control", "function_id"}
        prefix = [n[1:] / cs.Const(fixed[n[1:]], _Type(n, "int", sizes[n[1:]]).raw(False, where))
                  for n in order if n.startswith("=") and n[1:] not in known]
        args = []
        for arg_name in (n for n in order if not n.startswith("=")):
            anode, t = arguments[arg_name]
            valid: Any = t.valid
            facts = _ancillary(anode)
            if t.enumerated and N.ANC_VALID in facts:
                valid = facts[N.ANC_VALID].split(",")
            args.append(arg_name / M.Argument(t.raw(False, f"{where} argument {arg_name!r}"),
                                            unit="state" if t.enumerated and not t.unit else t.unit,
                                            description=_description(anode), calibration=t.calibration, valid=valid))
        facts = _ancillary(node)
        try:
            command = M.Command(name, apid=fixed["ccsds_packet_id"] & 0x7FF, service=fixed["pus_tc_service"],
                              subtype=fixed["pus_tc_subtype"], description=_description(node),
                              subsystem=facts.get(N.ANC_SUBSYSTEM, "xtce"), function_id=fixed.get("function_id"),
                              arguments=args, prefix=prefix)
        except KeyError as exc:
            raise XtceError(f"{where}: no FixedValueEntry {exc.args[0]!r}") from None
        except DefinitionError as exc:
            raise XtceError(f"{where}: {exc}") from None
        if command.size - 7 != fixed.get("ccsds_data_length", command.size - 7):
            raise XtceError(f"{where}: data length {fixed['ccsds_data_length']} does not match the "
                            f"{command.size}-octet command its entries make")
        out.append(command)
    return out


def from_xtce(data: bytes | str, *, origin: str = "<xtce>", name: str | None = None, scid: int | None = None,
              profile: M.Downlink | None = None) -> M.Spacecraft:
    """A Spacecraft from an XTCE 1.2 document (``origin`` names it in errors).

    ``name``, ``scid`` and ``profile`` override what the document says (a foreign document
    says nothing of SCID or frames: ``scid`` is then required, ``profile`` defaults to
    :data:`DEFAULT_PROFILE`).
    """
    doc = _Document(data, origin)
    facts = _ancillary(doc.root).get(N.ANC_SPACECRAFT)
    try:
        if facts is not None:
            return _queqiao(doc, json.loads(facts), name, scid, profile)
        return _foreign(doc, name, scid, profile)
    except XtceError:
        raise
    except DefinitionError as exc:
        raise XtceError(f"{origin}: {exc}") from None


__all__ = ["DEFAULT_PROFILE", "TelemetryPacket", "XtceError", "from_xtce"]
