"""Spacecraft -> XTCE 1.2 document.

Layout of the document (every part is something Yamcs' XTCE loader and space_packet_parser
both read; nothing they document as unsupported is used):

- ``CCSDSPacket`` (abstract): the primary header, one parameter per field;
- ``PUSTelemetryPacket`` (abstract, ``ccsds_type == 0``): the PUS-C TM secondary header;
- per APID and PUS service/subtype that needs a key (SID, event ID): an abstract container
  holding the key, restricted on APID, service and subtype; below it one container per packet,
  restricted on the key; packets without a key are restricted on APID, service and subtype;
- each packet's fields as parameters with one type each (encoding, unit, calibrator,
  enumeration, alarms), then the packet error control as a plain 16-bit parameter;
- one MetaCommand per telecommand: typed arguments with valid ranges, the headers, key and
  fixed fields as FixedValueEntry (the sequence count and packet error control are left 0
  for the sender to fill, as Yamcs' CCSDS command post-processor does).
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import asdict

import construct as cs

from protocols.codec.table import Leaf, Unsupported, derive
from protocols.errors import DefinitionError
from protocols.missions.model import Argument, Command, HousekeepingPacket, PacketDef, Spacecraft
from protocols.parameters import Identity, Limits, Linear, Polynomial, StateLimits, States
from protocols.xtce import names as N

ET.register_namespace("xtce", N.NAMESPACE)


def _q(tag: str) -> str:
    return f"{{{N.NAMESPACE}}}{tag}"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    node = ET.SubElement(parent, _q(tag), {k: _attr(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        node.text = text
    return node


def _attr(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else repr(value)
    return str(value)


def _ancillary(parent: ET.Element, items: Iterable[tuple[str, str]]) -> None:
    items = list(items)
    if items:
        holder = _el(parent, "AncillaryDataSet")
        for name, value in items:
            _el(holder, "AncillaryData", value, name=name)


class _Document:
    """The sets of one SpaceSystem, filled packet by packet."""

    def __init__(self, spacecraft: Spacecraft) -> None:
        self.sc = spacecraft
        self.root = ET.Element(_q("SpaceSystem"), {"name": spacecraft.name})
        _el(self.root, "LongDescription", spacecraft.description)
        _ancillary(self.root, [(N.ANC_SPACECRAFT, json.dumps(_spacecraft_facts(spacecraft), sort_keys=True))])
        _el(self.root, "Header", validationStatus="Working", version="1.0",
            classification="NotClassified")
        tm = _el(self.root, "TelemetryMetaData")
        self.types = _el(tm, "ParameterTypeSet")
        self.parameters = _el(tm, "ParameterSet")
        self.containers = _el(tm, "ContainerSet")
        self.names: dict[str, str] = {}  # parameter name -> who defined it
        self.groups: dict[tuple, str] = {}  # (type, apid, service, subtype) -> abstract key container

    # -- parameters ---------------------------------------------------------------------

    def parameter(self, name: str, leaf: Leaf, where: str, *, description: str | None = None) -> str:
        if name in self.names:
            raise DefinitionError(f"XTCE export of {self.sc.name!r}: parameter name {name!r} of {where} is "
                                  f"already used by {self.names[name]}")
        self.names[name] = where
        type_name = f"{name}_t"
        if leaf.dims:
            element = f"{name}_element_t"
            _parameter_type(self.types, element, leaf)
            array = _el(self.types, "ArrayParameterType", name=type_name, arrayTypeRef=element)
            dims = _el(array, "DimensionList")
            for size in leaf.dims:
                dim = _el(dims, "Dimension")
                _el(_el(dim, "StartingIndex"), "FixedValue", "0")
                _el(_el(dim, "EndingIndex"), "FixedValue", str(size - 1))
        else:
            _parameter_type(self.types, type_name, leaf)
        prm = leaf.parameter
        text = description if description is not None else prm.description if prm is not None else None
        _el(self.parameters, "Parameter", name=name, parameterTypeRef=type_name, shortDescription=text)
        return name

    def shared(self, name: str, leaf: Leaf, where: str) -> str:
        """A header parameter all packets share (defined once; its layout must agree)."""
        key = ("shared", leaf.width, leaf.signed, leaf.kind)
        if name in self.names:
            if self.names[name] != repr(key):
                raise DefinitionError(f"XTCE export of {self.sc.name!r}: header field {name!r} of {where} differs "
                                      f"from the other packets' ({leaf.width} bits)")
            return name
        self.parameter(name, leaf, where)
        self.names[name] = repr(key)
        return name

    # -- containers ---------------------------------------------------------------------

    def layout(self, packet: PacketDef):
        """The packet's fixed layout (a variable-size packet is not exported: a DefinitionError)."""
        try:
            return derive(packet.construct)
        except Unsupported as exc:
            raise DefinitionError(f"XTCE export of {self.sc.name!r} packet {packet.name!r}: {exc}") from None

    def header_containers(self, sample: PacketDef) -> None:
        layout = self.layout(sample)
        root = _el(self.containers, "SequenceContainer", name=N.ROOT_CONTAINER, abstract=True)
        _el(root, "LongDescription", "CCSDS 133.0-B-2 space packet primary header")
        entries = _el(root, "EntryList")
        for leaf in layout.leaves:
            if leaf.parts[0] == "primary":
                _el(entries, "ParameterRefEntry", parameterRef=self.shared(N.PRIMARY[leaf.parts[1]], leaf, "header"))
        tm = _el(self.containers, "SequenceContainer", name=N.TM_CONTAINER, abstract=True)
        _el(tm, "LongDescription", "ECSS-E-ST-70-41C (PUS-C) telemetry secondary header")
        entries = _el(tm, "EntryList")
        for leaf in layout.leaves:
            if leaf.parts[0] == "secondary":
                _el(entries, "ParameterRefEntry", parameterRef=self.shared(N.secondary_name(leaf.parts), leaf,
                                                                           "secondary header"))
        _restrict(tm, N.ROOT_CONTAINER, [(N.PRIMARY["type"], 0), (N.PRIMARY["secondary_header_flag"], 1)])

    def telemetry(self, packet: PacketDef) -> None:
        layout = self.layout(packet)
        where = f"packet {packet.name!r}"
        for leaf in layout.leaves:  # the shared headers must be the ones the abstract containers hold
            if leaf.parts[0] == "primary":
                self.shared(N.PRIMARY[leaf.parts[1]], leaf, where)
            elif leaf.parts[0] == "secondary":
                self.shared(N.secondary_name(leaf.parts), leaf, where)
        header = [(N.PRIMARY["apid"], packet.apid), (N.secondary_name(("secondary", "service")), packet.service),
                  (N.secondary_name(("secondary", "subtype")), packet.subtype)]
        parent, criteria = N.TM_CONTAINER, header
        if packet.key is not None:
            group = (0, packet.apid, packet.service, packet.subtype)
            key_param = N.key_name(0, packet.apid, packet.service, packet.subtype, packet.key_name or "key")
            if group not in self.groups:
                key_leaf = next(leaf for leaf in layout.leaves if leaf.parts == (packet.key_name,))
                self.groups[group] = f"{key_param}_container"
                abstract = _el(self.containers, "SequenceContainer", name=self.groups[group], abstract=True)
                _el(abstract, "LongDescription", f"{packet.key_name} of APID {packet.apid} PUS "
                    f"{packet.service},{packet.subtype}")
                self.parameter(key_param, key_leaf, where, description=f"{packet.key_name} (packet discriminator)")
                _el(_el(abstract, "EntryList"), "ParameterRefEntry", parameterRef=key_param)
                _restrict(abstract, N.TM_CONTAINER, header)
            parent, criteria = self.groups[group], [(key_param, packet.key)]
        container = _el(self.containers, "SequenceContainer", name=packet.name, shortDescription=packet.description)
        facts = [(N.ANC_KIND, packet.kind), (N.ANC_SUBSYSTEM, packet.subsystem)]
        if isinstance(packet, HousekeepingPacket):
            facts.append((N.ANC_PERIOD, repr(packet.period)))
        _ancillary(container, facts)
        entries = _el(container, "EntryList")
        for leaf in layout.leaves:
            if leaf.parts[0] in ("primary", "secondary") or leaf.parts == (packet.key_name,):
                continue
            if leaf.kind == "pec":
                _el(entries, "ParameterRefEntry", parameterRef=self.shared(N.PEC, _pec_leaf(), where))
                continue
            if leaf.parts[0] != N.GROUPS[packet.kind]:
                raise DefinitionError(f"XTCE export of {self.sc.name!r} {where}: field {leaf.path!r} is outside "
                                      f"the packet's {N.GROUPS[packet.kind]!r} group")
            name = self.parameter(N.parameter_name(packet.name, leaf.path), leaf, where)
            _el(entries, "ParameterRefEntry", parameterRef=name)
        _restrict(container, parent, criteria)


def _pec_leaf() -> Leaf:
    return Leaf(("pec",), "int", 16)


def _restrict(container: ET.Element, base: str, criteria: list[tuple[str, int]]) -> None:
    holder = _el(_el(container, "BaseContainer", containerRef=base), "RestrictionCriteria")
    comparisons = _el(holder, "ComparisonList")
    for name, value in criteria:
        _el(comparisons, "Comparison", parameterRef=name, value=str(value), useCalibratedValue=False)


# --------------------------------------------------------------------------- types


def _integer_encoding(parent: ET.Element, bits: int, signed: bool, little: bool) -> ET.Element:
    return _el(parent, "IntegerDataEncoding", sizeInBits=bits, encoding="twosComplement" if signed else "unsigned",
               byteOrder="leastSignificantByteFirst" if little and bits > 8 else None)


def _encoding(parent: ET.Element, leaf: Leaf) -> ET.Element:
    if leaf.kind == "float":
        return _el(parent, "FloatDataEncoding", sizeInBits=leaf.width, encoding="IEEE754_1985",
                   byteOrder="leastSignificantByteFirst" if leaf.little else None)
    if leaf.kind == "bytes":
        binary = _el(parent, "BinaryDataEncoding")
        _el(_el(binary, "SizeInBits"), "FixedValue", str(leaf.width))
        return binary
    return _integer_encoding(parent, leaf.width, leaf.signed, leaf.little)


def _units(parent: ET.Element, unit: str) -> None:
    units = _el(parent, "UnitSet")
    if unit:
        _el(units, "Unit", unit)


def _polynomial(encoding: ET.Element, coefficients: Iterable[float]) -> None:
    poly = _el(_el(encoding, "DefaultCalibrator"), "PolynomialCalibrator")
    for exponent, coefficient in enumerate(coefficients):
        if coefficient or exponent < 2:
            _el(poly, "Term", coefficient=repr(float(coefficient)), exponent=exponent)


def _coefficients(calibration) -> tuple[float, ...] | None:
    if isinstance(calibration, Linear):
        return (calibration.offset, calibration.scale)
    if isinstance(calibration, Polynomial):
        return calibration.coefficients
    return None


def _parameter_type(types: ET.Element, name: str, leaf: Leaf) -> None:
    """One ParameterType for ``leaf``: raw fields as integers, floats or binary; Parameters with their metadata."""
    prm = leaf.parameter
    if prm is None:
        if leaf.kind == "bytes":
            node = _el(types, "BinaryParameterType", name=name)
        elif leaf.kind == "float":
            node = _el(types, "FloatParameterType", name=name, sizeInBits=64)
        elif leaf.kind == "bool":
            node = _el(types, "BooleanParameterType", name=name)
        else:
            node = _el(types, "IntegerParameterType", name=name, signed=leaf.signed, sizeInBits=_int_size(leaf))
        _units(node, "")
        _encoding(node, leaf)
        return
    cal = prm.calibration
    if isinstance(cal, States):
        node = _el(types, "EnumeratedParameterType", name=name)
        _units(node, "" if prm.unit == "state" else prm.unit)
        _encoding(node, leaf)
        listing = _el(node, "EnumerationList")
        for code, label in sorted(cal.states.items()):
            _el(listing, "Enumeration", value=code, label=label)
        if isinstance(prm.limits, StateLimits):
            # An empty alarm is Queqiao's explicit "every state nominal" (a mode word that is always normal).
            alarm = _el(node, "DefaultAlarm")
            alarms = _el(alarm, "EnumerationAlarmList") if prm.limits.warning or prm.limits.critical else alarm
            for _, label in sorted(cal.states.items()):
                level = ("critical" if label in prm.limits.critical else
                         "warning" if label in prm.limits.warning else None)
                if level:
                    _el(alarms, "EnumerationAlarm", alarmLevel=level, enumerationLabel=label)
        return
    coefficients = _coefficients(cal)
    if coefficients is None and not isinstance(cal, Identity):
        raise DefinitionError(f"XTCE export: parameter {name!r}: calibration {cal.describe()} has no XTCE form")
    if coefficients is None and leaf.kind != "float":
        node = _el(types, "IntegerParameterType", name=name, signed=leaf.signed, sizeInBits=_int_size(leaf))
    else:
        node = _el(types, "FloatParameterType", name=name, sizeInBits=64)
    _units(node, prm.unit)
    encoding = _encoding(node, leaf)
    if coefficients is not None:
        _polynomial(encoding, coefficients)
    if isinstance(prm.limits, Limits):
        ranges = _el(_el(node, "DefaultAlarm"), "StaticAlarmRanges")
        for tag, bounds in (("WarningRange", prm.limits.warning), ("CriticalRange", prm.limits.critical)):
            if bounds is not None:
                _el(ranges, tag, minInclusive=_bound(bounds[0]), maxInclusive=_bound(bounds[1]))


def _bound(value: float | None) -> str | None:
    return None if value is None else repr(float(value))


def _int_size(leaf: Leaf) -> int:
    """The engineering integer's size: the smallest of 8/16/32/64 bits that holds the raw value."""
    return next(size for size in (8, 16, 32, 64) if size >= leaf.width)


# --------------------------------------------------------------------------- commands


def _argument_type(types: ET.Element, name: str, argument: Argument, bits: int, signed: bool, little: bool) -> None:
    cal = argument.calibration
    if isinstance(cal, States):
        node = _el(types, "EnumeratedArgumentType", name=name)
        _units(node, "")
        _integer_encoding(node, bits, signed, little)
        listing = _el(node, "EnumerationList")
        for code, label in sorted(cal.states.items()):
            _el(listing, "Enumeration", value=code, label=label)
        return
    coefficients = _coefficients(cal)
    lo, hi = argument.valid
    if argument.domain.is_float:
        node = _el(types, "FloatArgumentType", name=name, sizeInBits=64)
        _units(node, argument.unit)
        _el(node, "FloatDataEncoding", sizeInBits=bits, encoding="IEEE754_1985",
            byteOrder="leastSignificantByteFirst" if little else None)
    elif coefficients is None:
        node = _el(types, "IntegerArgumentType", name=name, signed=signed, sizeInBits=_int_size(Leaf((), "int", bits)))
        _units(node, argument.unit)
        _integer_encoding(node, bits, signed, little)
        holder = _el(node, "ValidRangeSet", validRangeAppliesToCalibrated=True)
        _el(holder, "ValidRange", minInclusive=int(lo), maxInclusive=int(hi))
        return
    else:
        node = _el(types, "FloatArgumentType", name=name, sizeInBits=64)
        _units(node, argument.unit)
        encoding = _integer_encoding(node, bits, signed, little)
        _polynomial(encoding, coefficients)
    holder = _el(node, "ValidRangeSet", validRangeAppliesToCalibrated=True)
    _el(holder, "ValidRange", minInclusive=repr(float(lo)), maxInclusive=repr(float(hi)))


def _raw_field(node: cs.Construct) -> tuple[int, bool, bool]:
    """(bits, signed, little-endian) of a byte-aligned integer or float field."""
    layout = derive(cs.Struct("x" / node))
    leaf = layout.leaves[0]
    return leaf.width, leaf.signed, leaf.little


def _fixed(entries: ET.Element, name: str, value: int, bits: int) -> None:
    digits = max(1, (bits + 3) // 4)
    _el(entries, "FixedValueEntry", name=name, binaryValue=f"{value:0{digits + digits % 2}X}", sizeInBits=bits)


def _commands(root: ET.Element, commands: Iterable[Command], sc: Spacecraft) -> None:
    commands = list(commands)
    if not commands:
        return
    meta = _el(root, "CommandMetaData")
    types = _el(meta, "ArgumentTypeSet")
    metas = _el(meta, "MetaCommandSet")
    for cmd in commands:
        node = _el(metas, "MetaCommand", name=cmd.name, shortDescription=cmd.description)
        _ancillary(node, [(N.ANC_KIND, "command"), (N.ANC_SUBSYSTEM, cmd.subsystem)])
        if cmd.arguments:
            args = _el(node, "ArgumentList")
            for arg_name, argument in cmd.arguments.items():
                type_name = f"{cmd.name}{N.SEPARATOR}{arg_name}_t"
                bits, signed, little = _raw_field(argument.subcon)
                _argument_type(types, type_name, argument, bits, signed, little)
                holder = _el(args, "Argument", name=arg_name, argumentTypeRef=type_name,
                             shortDescription=argument.description)
                states = argument.calibration
                if isinstance(argument.valid, frozenset) and isinstance(states, States) \
                        and argument.valid != frozenset(states.codes):
                    _ancillary(holder, [(N.ANC_VALID, ",".join(n for n in states.codes if n in argument.valid))])
        container = _el(node, "CommandContainer", name=f"{cmd.name}_packet")
        entries = _el(container, "EntryList")
        data_length = cmd.size - 7
        _fixed(entries, "ccsds_packet_id", (0b0001_1 << 11) | cmd.apid, 16)
        _fixed(entries, "ccsds_sequence_control", 0b11 << 14, 16)  # unsegmented; the sender sets the count
        _fixed(entries, "ccsds_data_length", data_length, 16)
        _fixed(entries, "pus_tc_flags", (2 << 4) | 0xF, 8)  # PUS-C, every acknowledgement requested
        _fixed(entries, "pus_tc_service", cmd.service, 8)
        _fixed(entries, "pus_tc_subtype", cmd.subtype, 8)
        _fixed(entries, "pus_tc_source_id", 0, 16)
        for sub in cmd.construct.subcons[2:]:
            if sub.name in ("args", "pec"):
                continue
            inner = sub.subcon if isinstance(sub, cs.Renamed) else sub
            if not isinstance(inner, cs.Const):
                raise DefinitionError(f"XTCE export of {sc.name!r} command {cmd.name!r}: field {sub.name!r} is "
                                      "neither an argument nor a constant")
            bits, _, _ = _raw_field(inner.subcon)
            _fixed(entries, sub.name, int(inner.value), bits)
        for arg_name in cmd.arguments:
            _el(entries, "ArgumentRefEntry", argumentRef=arg_name)
        _fixed(entries, "pus_packet_error_control", 0, 16)  # CRC-16 over the packet, set by the sender


# --------------------------------------------------------------------------- spacecraft


def _spacecraft_facts(sc: Spacecraft) -> dict:
    profile = asdict(sc.profile)  # the Downlink with its FrameProfile (and its RS and insert-zone time), as plain data
    return {"scid": sc.scid, "profile": profile,
            "apids": [asdict(a) for a in sc.apids],
            "instruments": [asdict(i) for i in sc.instruments]}


def to_xtce(spacecraft: Spacecraft) -> bytes:
    """The XTCE 1.2 document (UTF-8 bytes) of one spacecraft: telemetry, events, reports and commands."""
    doc = _Document(spacecraft)
    telemetry: list[PacketDef] = [*spacecraft.housekeeping, *spacecraft.events, *(spacecraft.reports or ())]
    if telemetry:
        doc.header_containers(telemetry[0])
    for packet in telemetry:
        doc.telemetry(packet)
    _commands(doc.root, spacecraft.commands, spacecraft)
    ET.indent(doc.root)
    return ET.tostring(doc.root, encoding="utf-8", xml_declaration=True) + b"\n"


__all__ = ["to_xtce"]
