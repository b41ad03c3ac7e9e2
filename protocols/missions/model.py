"""The shape of a mission definition: spacecraft, frame profile, packets, events, commands.

Everything here is plain data around construct definitions.  A spacecraft module
(``protocols/missions/zhurong.py`` and friends) fills these in; the registry
(:mod:`protocols.missions.registry`) indexes them; the emulator builds with them and
the ground station parses with them.  Validation that only needs one spacecraft
happens in :class:`Spacecraft` itself, so a broken definition fails at import with
a message naming the spacecraft, packet and field.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import construct as cs

from protocols.ccsds.pus import tc_packet, tm_packet
from protocols.ccsds.spacepacket import PacketType
from protocols.ccsds.tmframe import FrameProfile
from protocols.codec.variable import minimum_size, variable_parts
from protocols.errors import DefinitionError, ProtocolError, TruncatedError
from protocols.parameters import Limits, LimitState, Parameter, StateLimits, States, parameters_of

#: Names of spacecraft, packets, commands, events and fields: they become MQTT topic
#: levels and Prometheus label values, so keep them to one safe alphabet.
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SPACECRAFT_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
COMMAND_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")

#: Width of the discriminator after the PUS secondary header (SID, event ID, function ID).
KEY_LENGTH = 2


# --------------------------------------------------------------------------- frame profile


@dataclass(frozen=True)
class VirtualChannel:
    vcid: int
    name: str          # "realtime", "playback", ...
    description: str


@dataclass(frozen=True)
class Downlink:
    """How a spacecraft's packets travel: its transfer frames and the virtual channels on them.

    ``frame`` is the one frame profile type, :class:`protocols.ccsds.tmframe.FrameProfile` (frame
    kind and length, OCF, FECF, FHEC, insert zone and its time, Reed-Solomon, randomizer) that
    every frame builder, parser, the emulator and the ground take as it is.
    """

    frame: FrameProfile
    virtual_channels: tuple[VirtualChannel, ...]
    realtime_vc: int
    playback_vc: int
    #: The real spacecraft's Reed-Solomon code as published, as text (None = none or not known).  Our
    #: emulated frames carry a code only when ``frame.rs`` says so.
    reed_solomon: str | None = None
    #: Channel symbol rate of the low-rate downlink, symbols/s (None = unknown).
    symbol_rate: float | None = None
    #: Name of the spacecraft that relays this one's frames to Earth (None = direct to Earth).
    relay_via: str | None = None
    #: "public" when the figures come from public mission facts, "invented" otherwise.
    source: str = "invented"
    notes: str = ""

    def vc(self, key: int | str) -> VirtualChannel:
        for vc in self.virtual_channels:
            if key in (vc.vcid, vc.name):
                return vc
        raise KeyError(f"no virtual channel {key!r}")

    def check(self, scid: int, where: str) -> None:
        frame = self.frame
        if not isinstance(frame, FrameProfile):
            raise DefinitionError(f"{where}: the downlink's frame must be a FrameProfile, got {type(frame).__name__}")
        if not 0 <= scid <= frame.max_scid:
            raise DefinitionError(f"{where}: SCID {scid} does not fit the {frame.kind} frame's "
                                  f"{frame.max_scid.bit_length()}-bit field")
        # At least a few data octets, and the 16-bit frame length limit of the CCSDS books.
        if frame.zone_length < 8 or frame.frame_length > 2048:
            raise DefinitionError(f"{where}: frame length {frame.frame_length} leaves no room for data "
                                  f"(headers {frame.header_length} + trailers {frame.trailer_length}) or exceeds 2048")
        vcids: list[object] = [vc.vcid for vc in self.virtual_channels]
        names: list[object] = [vc.name for vc in self.virtual_channels]
        for label, seen in (("VCID", vcids), ("virtual channel name", names)):
            dup = sorted({x for x in seen if seen.count(x) > 1}, key=str)
            if dup:
                raise DefinitionError(f"{where}: duplicate {label} {dup}")
        for vc in self.virtual_channels:
            if not 0 <= vc.vcid <= frame.max_vcid:
                raise DefinitionError(f"{where}: VCID {vc.vcid} does not fit the {frame.kind} frame")
        for role, vcid in (("realtime", self.realtime_vc), ("playback", self.playback_vc)):
            if vcid not in vcids:
                raise DefinitionError(f"{where}: {role} VC {vcid} is not among the virtual channels {vcids}")
        if self.realtime_vc == self.playback_vc:
            raise DefinitionError(f"{where}: realtime and playback share VC {self.realtime_vc}")
        if self.source not in ("public", "invented", "mixed"):
            raise DefinitionError(f"{where}: profile source is 'public', 'invented' or 'mixed', not {self.source!r}")


# --------------------------------------------------------------------------- application processes


@dataclass(frozen=True)
class Apid:
    """One application process of the spacecraft (an APID and what it carries).  ``opaque``: its
    packets are real but what they hold is not public; the ground counts and archives them (per
    APID, with their sequence checks) and decodes nothing, instead of rejecting them as unknown."""

    number: int
    name: str
    description: str
    opaque: bool = False


# --------------------------------------------------------------------------- packets


def _check_fields(node: cs.Construct, where: str) -> None:
    """Reject duplicate or badly spelled field names anywhere in a struct.

    construct accepts ``Struct("a" / X, "a" / Y)`` silently and the second shadows
    the first in the parsed result, so two definitions would claim one name.
    """
    if isinstance(node, cs.Renamed):
        _check_fields(node.subcon, where)
    elif isinstance(node, (cs.Struct, cs.Sequence, cs.FocusedSeq)):
        names = [sc.name for sc in node.subcons if getattr(sc, "name", None)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DefinitionError(f"{where}: field names {dup} overlap (defined more than once in one struct)")
        for n in names:
            if not NAME.match(n):
                raise DefinitionError(f"{where}: field name {n!r} is not snake_case ([a-z][a-z0-9_]*)")
        for sc in node.subcons:
            _check_fields(sc, where)
    elif isinstance(node, Parameter):
        return
    elif isinstance(node, cs.Subconstruct) and hasattr(node, "subcon"):
        _check_fields(node.subcon, where)


def _check_limits(path: str, param: Parameter, where: str) -> None:
    """Limits must be reachable: inside the range the raw field can express."""
    limits = param.limits
    if not isinstance(limits, Limits) or param.domain.is_float:
        return
    ends = sorted((float(param.calibration.to_eng(param.domain.minimum)),
                   float(param.calibration.to_eng(param.domain.maximum))))
    for kind, bounds in (("warning", limits.warning), ("critical", limits.critical)):
        if bounds is None:
            continue
        for bound in bounds:
            if bound is not None and not (ends[0] - 1e-9 <= bound <= ends[1] + 1e-9):
                raise DefinitionError(f"{where} parameter {path!r}: {kind} limit {bound:g} lies outside what the "
                                      f"field can express ({ends[0]:g}..{ends[1]:g})")


class PacketDef:
    """A fixed-size PUS packet definition: one construct plus where it sits in the packet space.

    ``key`` is the 16-bit discriminator right after the secondary header (SID for
    housekeeping, event ID for event reports, function ID for PUS 8,1) or None.
    """

    kind = "packet"
    packet_type = PacketType.TM
    #: Whether definitions of this class may have variable-size parts (see :attr:`variable_paths`).
    allows_variable = False

    def __init__(self, *, name: str, apid: int, service: int, subtype: int, key: int | None, key_name: str | None,
                 body: Sequence[cs.Construct], subsystem: str, description: str) -> None:
        if not NAME.match(name) and not COMMAND_NAME.match(name):
            raise DefinitionError(f"packet name {name!r} must be snake_case (commands: UPPER_CASE)")
        if not description.strip():
            raise DefinitionError(f"packet {name!r} needs a description")
        if key is not None and not 0 <= key <= 0xFFFF:
            raise DefinitionError(f"packet {name!r}: {key_name} {key} outside 0..65535")
        self.name = name
        self.apid = apid
        self.service = service
        self.subtype = subtype
        self.key = key
        self.key_name = key_name
        self.subsystem = subsystem
        self.description = description
        fields = list(body)
        if key is not None:
            fields.insert(0, key_name / cs.Const(key, cs.Int16ub))
        try:
            self.construct: cs.Struct = self._factory(apid, service, subtype, fields)
        except cs.SizeofError as exc:
            raise DefinitionError(f"packet {name!r} is not fixed-size (variable-length field): {exc}") from exc
        except ValueError as exc:
            raise DefinitionError(f"packet {name!r}: {exc}") from exc
        _check_fields(self.construct, f"packet {name!r}")
        #: Dotted paths of the variable-size parts (an array counted by a field, octets sized by an
        #: expression, a trailing block to the packet's end), decoded by VariablePacketCodec; empty
        #: for a fixed-size definition.  Their Parameters are decoded but not exported (no latest value).
        self.variable_paths: tuple[str, ...] = tuple(variable_parts(self.construct))
        if self.variable_paths and not self.allows_variable:
            raise DefinitionError(f"packet {name!r} is not fixed-size (variable-length field "
                                  f"{self.variable_paths[0]!r}); a {type(self).__name__} is fixed-size")
        try:
            #: Octets of the packet; of a variable-size definition, the fewest (every variable part empty).
            self.size = minimum_size(self.construct) if self.variable_paths else self.construct.sizeof()
        except cs.SizeofError as exc:
            raise DefinitionError(f"packet {name!r} is not fixed-size (variable-length field): {exc}") from exc
        #: Byte offset of the 16-bit key in the packet (None when there is no key).
        self.key_offset = (self.construct.subcons[0].sizeof() + self.construct.subcons[1].sizeof()
                           if key is not None else None)

    def _factory(self, apid, service, subtype, fields):
        return tm_packet(apid, service, subtype, fields)

    @property
    def lookup_key(self) -> tuple[int, int, int, int, int | None]:
        return (int(self.packet_type), self.apid, self.service, self.subtype, self.key)

    @property
    def variable(self) -> bool:
        """Whether the definition has variable-size parts (its packets differ in length)."""
        return bool(self.variable_paths)

    def parameters(self) -> list[tuple[str, Parameter]]:
        """Every Parameter of the packet's data field as (dotted path, Parameter), in wire order;
        those inside a variable-size part are left out (a ragged column has no one latest value)."""
        if not hasattr(self, "_parameters"):
            inside = tuple(path + "." for path in self.variable_paths)
            self._parameters = [(path, param) for path, param in parameters_of(self.construct)
                                if path not in self.variable_paths and not path.startswith(inside)]
        return list(self._parameters)

    def parse(self, data: bytes) -> cs.Container:
        """Engineering values of one packet; ProtocolError (TruncatedError, ChecksumError) on bad bytes."""
        if len(data) < self.size:
            raise TruncatedError(f"packet {self.name}", f"{len(data)} octets, the packet has {self.size}", offset=0)
        try:
            return self.construct.parse(data)
        except ProtocolError:
            raise
        except cs.ConstructError as exc:
            raise ProtocolError(f"packet {self.name}", str(exc)) from exc

    def limit_states(self, parsed: Mapping[str, Any]) -> dict[str, LimitState]:
        """Limit state of every limited parameter of a parsed packet, by dotted path (slow path)."""
        states = {}
        for path, param in self.parameters():
            if param.limits is None:
                continue
            value: Any = parsed
            for part in path.split("."):
                value = value[part]
            states[path] = param.classify(value)
        return states

    def _build(self, group: str, values: Mapping[str, Any], **header: Any) -> bytes:
        """Build with a clear error for a missing or unknown value in the ``group`` struct."""
        body = next(sc for sc in self.construct.subcons if sc.name == group).subcon
        wanted = [sc.name for sc in body.subcons if sc.name and not sc.flagbuildnone]
        unknown = sorted(set(values) - {sc.name for sc in body.subcons if sc.name})
        missing = [n for n in wanted if n not in values]
        if unknown or missing:
            raise ProtocolError(f"packet {self.name}", (f"unknown value(s) {unknown}; " if unknown else "")
                                + (f"missing value(s) {missing}" if missing else ""), field=group)
        try:
            return self.construct.build({group: values, **header})
        except ProtocolError:
            raise
        except cs.ConstructError as exc:
            raise ProtocolError(f"packet {self.name}", str(exc)) from exc

    def __repr__(self) -> str:
        key = f" {self.key_name}={self.key}" if self.key is not None else ""
        return f"<{type(self).__name__} {self.name} APID {self.apid} PUS {self.service},{self.subtype}{key}>"


class HousekeepingPacket(PacketDef):
    """PUS 3,25 housekeeping parameter report: ``sid`` then ``hk`` (a Struct of Parameters)."""

    kind = "housekeeping"

    def __init__(self, name: str, *, apid: int, sid: int, subsystem: str, period: float, description: str,
                 fields: Sequence[cs.Construct]) -> None:
        if not (period > 0 and math.isfinite(period)):
            raise DefinitionError(f"housekeeping packet {name!r}: default period must be > 0 s, got {period}")
        self.period = float(period)
        self.sid = sid
        super().__init__(name=name, apid=apid, service=3, subtype=25, key=sid, key_name="sid",
                         body=["hk" / cs.Struct(*fields)], subsystem=subsystem, description=description)

    def build(self, values: Mapping[str, Any], *, sequence_count: int = 0, time: tuple[int, int] = (0, 0)) -> bytes:
        """Bytes of one report from engineering values ``{"battery_voltage": 28.1, ...}``."""
        return self._build("hk", values, primary=dict(sequence_count=sequence_count),
                           secondary=dict(time=dict(coarse=time[0], fine=time[1])))


class EventReport(PacketDef):
    """PUS 5,1..4 event report: ``event_id`` then ``aux`` (typed auxiliary data)."""

    kind = "event"
    SEVERITIES = {1: "informative", 2: "low", 3: "medium", 4: "high"}

    def __init__(self, name: str, *, apid: int, event_id: int, severity: int, subsystem: str, description: str,
                 aux: Sequence[cs.Construct] = ()) -> None:
        if severity not in self.SEVERITIES:
            raise DefinitionError(f"event {name!r}: severity is PUS 5 subtype 1..4, not {severity}")
        self.event_id = event_id
        self.severity = severity
        super().__init__(name=name, apid=apid, service=5, subtype=severity, key=event_id, key_name="event_id",
                         body=["aux" / cs.Struct(*aux)], subsystem=subsystem, description=description)

    @property
    def severity_name(self) -> str:
        return self.SEVERITIES[self.severity]

    def build(self, aux: Mapping[str, Any] | None = None, *, sequence_count: int = 0,
              time: tuple[int, int] = (0, 0)) -> bytes:
        return self._build("aux", dict(aux or {}), primary=dict(sequence_count=sequence_count),
                           secondary=dict(time=dict(coarse=time[0], fine=time[1])))


class ServiceReport(PacketDef):
    """A standard service report without a key (PUS 1 verification, PUS 17,2 ping reply).

    Built once per application process by :func:`protocols.missions.common.standard_reports`,
    so the emulator answers and the ground station recognises them on every APID.
    """

    kind = "report"

    def __init__(self, name: str, *, apid: int, service: int, subtype: int, subsystem: str, description: str,
                 fields: Sequence[cs.Construct] = ()) -> None:
        super().__init__(name=name, apid=apid, service=service, subtype=subtype, key=None, key_name=None,
                         body=["report" / cs.Struct(*fields)], subsystem=subsystem, description=description)

    def build(self, values: Mapping[str, Any] | None = None, *, request: bytes | None = None,
              sequence_count: int = 0, time: tuple[int, int] = (0, 0)) -> bytes:
        """Report bytes; ``request`` (the telecommand's bytes, or its first 4) fills the request ID."""
        report = dict(values or {})
        if request is not None:
            if len(request) < 4:
                raise ProtocolError(f"report {self.name}", "request needs the telecommand's first 4 octets")
            word, seq = int.from_bytes(request[0:2], "big"), int.from_bytes(request[2:4], "big")
            report["request"] = dict(version=word >> 13, type=(word >> 12) & 1, secondary_header_flag=(word >> 11) & 1,
                                     apid=word & 0x7FF, sequence_flags=seq >> 14, sequence_count=seq & 0x3FFF)
        return self._build("report", report, primary=dict(sequence_count=sequence_count),
                           secondary=dict(time=dict(coarse=time[0], fine=time[1])))


# --------------------------------------------------------------------------- commands


class Argument(Parameter):
    """A telecommand argument: a Parameter (calibration, unit, description) with a valid range.

    ``valid`` is (low, high) in engineering units for numbers, or the allowed state
    names for enumerations (default: every state).  The range is enforced on build
    (the ground refuses to send it) and on parse (the flight software refuses to run it),
    with a :class:`ProtocolError` naming the argument.
    """

    def __init__(self, subcon, *, unit: str, description: str, calibration=None,
                 valid: tuple[float, float] | Iterable[str] | None = None) -> None:
        super().__init__(subcon, unit=unit, description=description, calibration=calibration)
        if isinstance(self.calibration, States):
            allowed = {str(v) for v in valid} if valid is not None else set(self.calibration.codes)
            unknown = allowed - set(self.calibration.codes)
            if unknown:
                raise DefinitionError(f"argument allows unknown states {sorted(unknown)}")
            self.valid: tuple[float, float] | frozenset[str] = frozenset(allowed)
        else:
            if valid is None:
                raise DefinitionError(f"numeric argument {description!r} needs a valid (low, high) range")
            lo, hi = cast(tuple[float, float], valid)
            if lo > hi:
                raise DefinitionError(f"argument {description!r}: valid range is reversed: low {lo} > high {hi}")
            ends = sorted((float(self.calibration.to_eng(self.domain.minimum)),
                           float(self.calibration.to_eng(self.domain.maximum))))
            if lo < ends[0] - 1e-9 or hi > ends[1] + 1e-9:
                raise DefinitionError(f"argument {description!r}: valid range {fmt_number(lo)}..{fmt_number(hi)} "
                                      f"exceeds what the "
                                      f"field can express ({ends[0]:g}..{ends[1]:g})")
            self.valid = (float(lo), float(hi))

    def describe_range(self) -> str:
        if isinstance(self.valid, frozenset):
            assert isinstance(self.calibration, States)  # a set of names is only valid for an enumeration
            return ", ".join(n for n in self.calibration.codes if n in self.valid)
        return f"{fmt_number(self.valid[0])} .. {fmt_number(self.valid[1])} {self.unit}".rstrip()

    def check(self, value, name: str = "") -> None:
        """Raise ProtocolError unless ``value`` (engineering) is allowed."""
        label = name or self.description
        if isinstance(self.valid, frozenset):
            if value not in self.valid:
                raise ProtocolError("telecommand", f"argument {label!r} = {value!r} not allowed; allowed: "
                                    f"{self.describe_range()}", field=name)
            return
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ProtocolError("telecommand", f"argument {label!r} = {value!r} is not a number", field=name) from None
        lo, hi = self.valid
        if not lo <= number <= hi:
            raise ProtocolError("telecommand", f"argument {label!r} = {value!r} {self.unit} outside the valid "
                                f"range {self.describe_range()}", field=name)

    def quantise(self, value):
        """The engineering value the receiver will decode for ``value``."""
        if self.calibration.is_state:
            return value
        return self.calibration.to_eng(self.calibration.to_raw(value))

    def _encode(self, obj, context, path):
        self.check(obj, _field(path))
        return super()._encode(obj, context, path)

    def _decode(self, obj, context, path):
        value = super()._decode(obj, context, path)
        # Compare with half a raw step of slack: a valid bound may not be exactly representable.
        if isinstance(self.valid, tuple):
            slack = self.calibration.resolution() / 2
            lo, hi = self.valid
            if not lo - slack <= value <= hi + slack:
                raise ProtocolError("telecommand", f"argument {_field(path)!r} = {value:g} {self.unit} outside the "
                                    f"valid range {self.describe_range()}", field=_field(path))
            return value
        self.check(value, _field(path))
        return value


def fmt_number(value: float) -> str:
    """Whole numbers in full (4294967295, not 4.29497e+09), others in short form."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _field(path: str) -> str:
    return path.replace("(building)", "").replace("(parsing)", "").strip(" ->").replace(" -> ", ".")


#: The PUS 1 verification stages a ground waits for, in order.
VERIFICATION_STAGES = ("acceptance", "start", "completion")


@dataclass(frozen=True)
class VerificationWindows:
    """How long the ground waits for each PUS 1 verification stage of a command (seconds).

    ``acceptance`` runs from the first uplink to the acceptance report, ``start`` from
    acceptance to the start report, ``completion`` from the start report, and again
    from every progress report, to the completion report.  ``completion`` may be a
    function of the command's engineering arguments (a drive takes distance / speed);
    ``None`` leaves it to the ground station's configured default.
    """

    acceptance: float = 30.0
    start: float = 30.0
    completion: float | Callable[[Mapping[str, Any]], float] | None = None

    def window(self, stage: str, arguments: Mapping[str, Any], default_completion: float) -> float:
        if stage == "acceptance":
            return self.acceptance
        if stage == "start":
            return self.start
        if stage != "completion":
            raise ValueError(f"unknown verification stage {stage!r}; stages: {VERIFICATION_STAGES}")
        if self.completion is None:
            return default_completion
        return float(self.completion(arguments) if callable(self.completion) else self.completion)


class Command(PacketDef):
    """A telecommand: a fixed-size PUS TC packet with typed, range-checked ``args``.

    PUS 8,1 commands carry a ``function_id`` discriminator before their arguments.
    Build with engineering values: ``cmd.build(distance=12.5, heading=90)``.
    """

    kind = "command"
    packet_type = PacketType.TC

    def __init__(self, name: str, *, apid: int, service: int, subtype: int, description: str, subsystem: str,
                 function_id: int | None = None, arguments: Sequence[cs.Construct] = (),
                 prefix: Sequence[cs.Construct] = (),
                 constraint: Callable[[Mapping[str, Any]], str | None] | None = None,
                 verification: VerificationWindows = VerificationWindows()) -> None:
        if not COMMAND_NAME.match(name):
            raise DefinitionError(f"command name {name!r} must be UPPER_CASE")
        if (service, subtype) == (8, 1) and function_id is None:
            raise DefinitionError(f"command {name!r}: PUS 8,1 needs a function_id")
        for arg in arguments:
            if not isinstance(arg, cs.Renamed) or not isinstance(arg.subcon, Argument):
                raise DefinitionError(f"command {name!r}: every argument is a named Argument, not {arg!r}")
        self.function_id = function_id
        #: Cross-argument check (engineering values -> error text or None), e.g. start before end.
        self.constraint = constraint
        #: How long the ground waits for each verification stage (it mirrors what the spacecraft does).
        self.verification = verification
        self.arguments: dict[str, Argument] = {arg.name: arg.subcon for arg in arguments}
        super().__init__(name=name, apid=apid, service=service, subtype=subtype, key=function_id,
                         key_name="function_id" if function_id is not None else None,
                         body=[*prefix, "args" / cs.Struct(*arguments)], subsystem=subsystem,
                         description=description)

    def _factory(self, apid, service, subtype, fields):
        return tc_packet(apid, service, subtype, fields)

    def build(self, *, sequence_count: int = 0, source_id: int = 0, **arguments) -> bytes:
        """The command's bytes; arguments in engineering units, each range-checked."""
        unknown = set(arguments) - set(self.arguments)
        if unknown:
            raise ProtocolError(f"telecommand {self.name}", f"unknown argument(s) {sorted(unknown)}; "
                                f"{self.name} takes {list(self.arguments) or 'no arguments'}")
        missing = [n for n in self.arguments if n not in arguments]
        if missing:
            raise ProtocolError(f"telecommand {self.name}", f"missing argument(s) {missing}")
        for arg_name, arg in self.arguments.items():
            try:
                arg.check(arguments[arg_name], arg_name)
            except ProtocolError as exc:
                raise ProtocolError(f"telecommand {self.name}", exc.reason, field=f"args.{arg_name}") from None
        # Cross-argument checks see the values as they will arrive (after quantisation to raw steps).
        self._check_constraint({n: a.quantise(arguments[n]) for n, a in self.arguments.items()})
        return self.construct.build(dict(primary=dict(sequence_count=sequence_count),
                                         secondary=dict(source_id=source_id), args=arguments))

    def parse_arguments(self, data: bytes) -> dict[str, Any]:
        """Engineering argument values of a received command (range-checked)."""
        parsed = self.parse(data)
        values = {k: v for k, v in parsed.args.items() if not k.startswith("_")}
        self._check_constraint(values)
        return values

    def _check_constraint(self, values: Mapping[str, Any]) -> None:
        if self.constraint is not None:
            problem = self.constraint(values)
            if problem:
                raise ProtocolError(f"telecommand {self.name}", problem, field="args")

    def signature(self) -> str:
        args = ", ".join(f"{n}: {a.describe_range()}" for n, a in self.arguments.items())
        return f"{self.name}({args})"


# --------------------------------------------------------------------------- spacecraft


@dataclass(frozen=True)
class Instrument:
    """Something the POWER_INSTRUMENT command can switch (code = its argument value).

    ``power_parameter`` is the housekeeping parameter (leaf name) that reports its
    power state, so the emulator knows what to change and the ground what to check.
    """

    code: int
    name: str
    description: str
    power_parameter: str | None = None


@dataclass(eq=False)
class Spacecraft:
    """One spacecraft: identity, frame profile, application processes, packets, events, commands."""

    name: str
    scid: int
    description: str
    profile: Downlink
    apids: tuple[Apid, ...]
    housekeeping: tuple[HousekeepingPacket, ...]
    events: tuple[EventReport, ...]
    commands: tuple[Command, ...]
    instruments: tuple[Instrument, ...] = ()
    #: PUS 1 verification and 17,2 ping reports; None = the standard set for the APIDs that take commands.
    reports: tuple[ServiceReport, ...] | None = None
    #: Telecommand frames must be authenticated (CCSDS 355.0-B-2 SDLS); the emulator refuses all others.
    sdls_required: bool = False
    #: Where this definition came from (module name or file), filled by the registry.
    origin: str = field(default="", compare=False)
    #: Every housekeeping parameter must have limits (built-in missions); an imported XTCE
    #: database defines alarms where it has them, and its other parameters are exported unchecked.
    require_limits: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        self.apids = tuple(self.apids)
        self.housekeeping = tuple(self.housekeeping)
        self.events = tuple(self.events)
        self.commands = tuple(self.commands)
        self.instruments = tuple(self.instruments)
        if self.reports is None:
            from protocols.missions.common import standard_reports  # common builds on this module

            self.reports = tuple(standard_reports(self.apids, self.commands))
        self.reports = tuple(self.reports)
        self.validate()

    # -- validation (one spacecraft) --------------------------------------------------

    def validate(self) -> None:
        where = f"spacecraft {self.name!r}"
        if not SPACECRAFT_NAME.match(self.name or ""):
            raise DefinitionError(f"{where}: name must be lower-case letters, digits and '-'")
        if not isinstance(self.scid, int) or self.scid < 0:
            raise DefinitionError(f"{where}: SCID must be a non-negative integer, got {self.scid!r}")
        if not isinstance(self.profile, Downlink):
            raise DefinitionError(f"{where}: profile must be a Downlink, got {type(self.profile).__name__}")
        self.profile.check(self.scid, where)
        if self.profile.relay_via == self.name:
            raise DefinitionError(f"{where}: cannot relay through itself")
        _unique(where, "APID", [a.number for a in self.apids])
        _unique(where, "APID name", [a.name for a in self.apids])
        for a in self.apids:
            if not 0 <= a.number < 0x7FF:
                raise DefinitionError(f"{where}: APID {a.number} ({a.name}) outside 0..2046 (2047 is idle)")
        declared = {a.number for a in self.apids}
        packets = self.packets
        _unique(where, "packet name", [p.name for p in packets])
        _unique(where, "instrument code", [i.code for i in self.instruments])
        _unique(where, "instrument name", [i.name for i in self.instruments])
        for p in packets:
            if p.apid not in declared:
                raise DefinitionError(f"{where} packet {p.name!r}: APID {p.apid} is not one of the spacecraft's "
                                      f"APIDs {sorted(declared)}")
        keyed = [p for p in self.housekeeping if p.sid is not None]  # an imported packet may have no SID
        _unique(where, "housekeeping SID", [p.sid for p in keyed], names=[p.name for p in keyed])
        _unique(where, "event ID", [e.event_id for e in self.events], names=[e.name for e in self.events])
        _unique(where, "function ID", [c.function_id for c in self.commands if c.function_id is not None],
                names=[c.name for c in self.commands if c.function_id is not None])
        _unique(where, "packet identity (type, APID, service, subtype, key)", [p.lookup_key for p in packets],
                names=[p.name for p in packets])
        # A housekeeping parameter's leaf name is its MQTT topic level and Prometheus label:
        # two packets must not both claim one name.  An imported database (require_limits False)
        # names one subsystem per packet, so its names need only be unique within the packet.
        owners: dict[str, str] = {}
        for packet in self.housekeeping:
            for path, param in packet.parameters():
                leaf = path.removeprefix("hk.")
                if not self.require_limits:
                    leaf = f"{packet.subsystem}/{path.rsplit('.', 1)[-1]}"
                if leaf in owners:
                    raise DefinitionError(f"{where}: parameter name {leaf!r} overlaps: defined in packet "
                                          f"{owners[leaf]!r} and in packet {packet.name!r}")
                owners[leaf] = packet.name
                _check_limits(path, param, f"{where} packet {packet.name!r}")
                if param.limits is None and self.require_limits:
                    raise DefinitionError(f"{where} packet {packet.name!r} parameter {path!r} has no limits")
        for instrument in self.instruments:
            if instrument.power_parameter is None:
                continue
            if instrument.power_parameter not in owners:
                raise DefinitionError(f"{where}: instrument {instrument.name!r} reports its power in "
                                      f"{instrument.power_parameter!r}, which no housekeeping packet defines")
            param = self.parameter(instrument.power_parameter)
            if not isinstance(param.calibration, States) or not {"OFF", "ON"} <= set(param.calibration.codes):
                raise DefinitionError(f"{where}: power parameter {instrument.power_parameter!r} of instrument "
                                      f"{instrument.name!r} must be an enumeration with OFF and ON")

    # -- lookups ----------------------------------------------------------------------

    @property
    def packets(self) -> list[PacketDef]:
        return [*self.housekeeping, *self.events, *(self.reports or ()), *self.commands]

    def packet(self, name: str) -> PacketDef:
        for p in self.packets:
            if p.name == name:
                return p
        raise KeyError(f"spacecraft {self.name!r} has no packet {name!r}; "
                       f"known: {', '.join(p.name for p in self.packets)}")

    def parameter(self, name: str) -> Parameter:
        """A housekeeping parameter by leaf name (``battery_voltage``)."""
        for packet in self.housekeeping:
            for path, param in packet.parameters():
                if path.removeprefix("hk.") == name:
                    return param
        raise KeyError(f"spacecraft {self.name!r} has no housekeeping parameter {name!r}")

    def command(self, name: str) -> Command:
        for c in self.commands:
            if c.name == name.upper():
                return c
        raise KeyError(f"spacecraft {self.name!r} has no command {name!r}; "
                       f"known: {', '.join(c.name for c in self.commands)}")

    def event(self, key: int | str) -> EventReport:
        for e in self.events:
            if key in (e.event_id, e.name):
                return e
        raise KeyError(f"spacecraft {self.name!r} has no event {key!r}")

    def housekeeping_packet(self, key: int | str) -> HousekeepingPacket:
        for p in self.housekeeping:
            if key in (p.sid, p.name):
                return p
        raise KeyError(f"spacecraft {self.name!r} has no housekeeping packet {key!r}")

    def instrument(self, key: int | str) -> Instrument:
        for i in self.instruments:
            if key in (i.code, i.name):
                return i
        raise KeyError(f"spacecraft {self.name!r} has no instrument {key!r}")

    def apid(self, key: int | str) -> Apid:
        for a in self.apids:
            if key in (a.number, a.name):
                return a
        raise KeyError(f"spacecraft {self.name!r} has no APID {key!r}")

    @property
    def subsystems(self) -> list[str]:
        return list(dict.fromkeys(p.subsystem for p in self.housekeeping))

    def __repr__(self) -> str:
        return f"<Spacecraft {self.name} SCID {self.scid}>"


def _unique(where: str, what: str, values: list, names: list[str] | None = None) -> None:
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            who = f" (packets {names[seen[v]]!r} and {names[i]!r})" if names else ""
            raise DefinitionError(f"{where}: duplicate {what} {v!r}{who}")
        seen[v] = i


def states_of(items: Iterable[tuple[int, str]]) -> States:
    """A States calibration from (code, name) pairs (instrument or SID tables)."""
    return States(dict(items))


__all__ = [
    "Apid", "Argument", "Command", "Downlink", "EventReport", "FrameProfile", "HousekeepingPacket", "Instrument",
    "PacketDef", "ServiceReport", "Spacecraft", "StateLimits", "VirtualChannel", "states_of",
]
