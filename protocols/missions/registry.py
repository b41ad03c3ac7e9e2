"""The mission registry: find a spacecraft, a packet, a command or a parameter.

A :class:`Registry` is a plain object (no hidden global state); :func:`registry`
returns the process-wide default one, built once from

1. the built-in mission modules (:data:`BUILTIN_MODULES`),
2. modules named by entry points in the ``queqiao.missions`` group,
3. modules, ``.py`` files or XTCE ``.xml`` files listed in ``QUEQIAO_MISSION_PATH``
   (``os.pathsep``-separated),

so users add a spacecraft without editing project code.  A mission module exposes
``SPACECRAFT`` (one :class:`Spacecraft`) or ``SPACECRAFTS`` (several); an entry
point may also name a Spacecraft object directly.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from protocols.ccsds.spacepacket import PRIMARY_HEADER_LENGTH, PacketType
from protocols.errors import DefinitionError, ProtocolError, TruncatedError
from protocols.missions.model import Command, EventReport, HousekeepingPacket, PacketDef, Spacecraft
from protocols.parameters import Calibration, Limits, Parameter, StateLimits

ENTRY_POINT_GROUP = "queqiao.missions"
PATH_VARIABLE = "QUEQIAO_MISSION_PATH"
BUILTIN_MODULES = (
    "protocols.missions.zhurong",
    "protocols.missions.tianwen1",
    "protocols.missions.change5_orbiter",
    "protocols.missions.haiyang2d",
    "protocols.missions.ilrs_lander",
    # Last: the demo seeds each emulator by its place in this list, and the older scenarios keep theirs.
    "protocols.missions.change5_lander",
)
#: Octets needed to identify a packet: primary header, PUS flags/service/subtype.
_SERVICE_OFFSET = PRIMARY_HEADER_LENGTH + 1


@dataclass(frozen=True)
class ParameterInfo:
    """One telemetry parameter with everything known about it."""

    spacecraft: str
    subsystem: str
    packet: str
    path: str            # in the parsed packet, e.g. "hk.battery_voltage"
    name: str            # the leaf name, unique per spacecraft for housekeeping
    data_type: str       # raw wire type, e.g. "uint16", "int32", "float32", "uint3 (bits)"
    unit: str
    calibration: Calibration
    limits: Limits | StateLimits | None
    description: str
    parameter: Parameter
    kind: str            # "housekeeping" or "event"

    @property
    def qualified_name(self) -> str:
        return f"{self.spacecraft}.{self.packet}.{self.name}"


def data_type(param: Parameter) -> str:
    """The raw wire type of a parameter as short text."""
    d = param.domain
    if d.is_float:
        inner = param.subcon
        return f"float{8 * inner.sizeof()}"
    bits = int(d.maximum - d.minimum).bit_length()
    kind = "int" if d.minimum < 0 else "uint"
    try:
        bytewise = param.subcon.sizeof() * 8 == bits
    except Exception:  # noqa: BLE001 - BitsInteger outside a Bitwise has no byte size
        bytewise = False
    return f"{kind}{bits}" if bytewise else f"{kind}{bits} (bits)"


def describe_command(command: Command) -> dict[str, Any]:
    """A command and its arguments as JSON-ready data (names, wire types, units, ranges or states)."""
    arguments = []
    for name, arg in command.arguments.items():
        entry: dict[str, Any] = {"name": name, "data_type": data_type(arg), "description": arg.description}
        if isinstance(arg.valid, frozenset):
            codes = arg.calibration.codes  # type: ignore[attr-defined]  # a state calibration's names, in code order
            entry.update(type="state", states=[n for n in codes if n in arg.valid])
        else:
            entry.update(type="number", unit=arg.unit, range=list(arg.valid))
        arguments.append(entry)
    return {"name": command.name, "description": command.description, "subsystem": command.subsystem,
            "arguments": arguments}


class Registry:
    """Spacecraft indexed by name and SCID, packets by (SCID, type, APID, service, subtype, key)."""

    def __init__(self, spacecraft: Iterable[Spacecraft] = ()) -> None:
        self._by_name: dict[str, Spacecraft] = {}
        self._by_scid: dict[int, Spacecraft] = {}
        self._packets: dict[int, dict[tuple, PacketDef]] = {}
        for sc in spacecraft:
            self.register(sc)

    # -- registration -------------------------------------------------------------------

    def register(self, spacecraft: Spacecraft, origin: str = "") -> Spacecraft:
        """Add a spacecraft after checking it against the ones already known."""
        if not isinstance(spacecraft, Spacecraft):
            raise DefinitionError(f"{origin or 'registration'}: expected a Spacecraft, got {type(spacecraft).__name__}")
        if origin and not spacecraft.origin:
            spacecraft.origin = origin
        spacecraft.validate()  # again: the object may have been changed after construction
        where = f"spacecraft {spacecraft.name!r}" + (f" (from {spacecraft.origin})" if spacecraft.origin else "")
        other = self._by_name.get(spacecraft.name)
        if other is not None:
            raise DefinitionError(f"{where}: duplicate spacecraft name, already defined by {other.origin or other!r}")
        other = self._by_scid.get(spacecraft.scid)
        if other is not None:
            raise DefinitionError(f"{where}: duplicate SCID {spacecraft.scid}, already used by {other.name!r}")
        # relay_via may name a spacecraft registered later: check_relays() runs after loading.
        self._by_name[spacecraft.name] = spacecraft
        self._by_scid[spacecraft.scid] = spacecraft
        self._packets[spacecraft.scid] = {p.lookup_key: p for p in spacecraft.packets}
        return spacecraft

    def check_relays(self) -> None:
        """Every ``relay_via`` names a registered spacecraft."""
        for sc in self:
            relay = sc.profile.relay_via
            if relay is not None and relay not in self._by_name:
                raise DefinitionError(f"spacecraft {sc.name!r}: relays via {relay!r}, which is not registered")

    def load_module(self, module: ModuleType | Any, origin: str) -> list[Spacecraft]:
        """Register what a mission module (or an entry point's object) provides."""
        found = list(_spacecraft_in(module, origin))
        return [self.register(sc, origin) for sc in found]

    # -- spacecraft ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[Spacecraft]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, key: object) -> bool:
        return key in self._by_name or key in self._by_scid

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def spacecraft(self, key: str | int | Spacecraft) -> Spacecraft:
        """A spacecraft by name (``"tianwen1"``) or SCID (``245``)."""
        if isinstance(key, Spacecraft):
            return key
        found = self._by_scid.get(key) if isinstance(key, int) else self._by_name.get(key)
        if found is None:
            raise KeyError(f"no spacecraft {key!r}; known: "
                           + ", ".join(f"{sc.name} (SCID {sc.scid})" for sc in self))
        return found

    # -- packets ------------------------------------------------------------------------

    def packet(self, spacecraft: str | int | Spacecraft, apid: int, service: int | None = None,
               subtype: int | None = None, key: int | None = None,
               packet_type: PacketType = PacketType.TM) -> PacketDef:
        """The one packet definition that matches; ``key`` is the SID / event ID / function ID.

        Leave out what you do not know: the answer must still be unique.
        """
        sc = self.spacecraft(spacecraft)
        matches = [p for (ptype, p_apid, svc, sub, k), p in self._packets[sc.scid].items()
                   if ptype == packet_type and p_apid == apid
                   and (service is None or svc == service) and (subtype is None or sub == subtype)
                   and (key is None or k == key)]
        what = (f"{sc.name}: {packet_type.name} APID {apid}"
                + (f" PUS {service},{subtype}" if service is not None else "")
                + (f" key {key}" if key is not None else ""))
        if not matches:
            raise KeyError(f"no packet for {what}")
        if len(matches) > 1:
            raise KeyError(f"{len(matches)} packets match {what}: {', '.join(p.name for p in matches)}; "
                           "give service/subtype/key")
        return matches[0]

    def packet_for_header(self, spacecraft: str | int | Spacecraft, primary: Any, secondary: Any = None,
                          key: int | None = None) -> PacketDef:
        """The packet definition for an already parsed header.

        ``primary`` has ``apid`` and ``type`` (a parsed :data:`PrimaryHeader`), ``secondary``
        has ``service`` and ``subtype`` (a parsed PUS secondary header) or is None;
        ``key`` is the SID / event ID / function ID when the packet needs one.
        """
        service = getattr(secondary, "service", None) if secondary is not None else None
        subtype = getattr(secondary, "subtype", None) if secondary is not None else None
        return self.packet(spacecraft, int(primary.apid), service, subtype, key, PacketType(int(primary.type)))

    def resolve(self, spacecraft: str | int | Spacecraft, data: bytes | bytearray | memoryview) -> PacketDef:
        """The definition of the packet at the start of ``data`` (raw bytes, header onwards).

        Reads the primary header (type, APID), the PUS service/subtype and, where the
        candidate needs it, the 16-bit key after the secondary header.
        """
        sc = self.spacecraft(spacecraft)
        data = bytes(data[:64])
        if len(data) < _SERVICE_OFFSET + 2:
            raise TruncatedError("space packet", f"{len(data)} octets are too few to identify a packet", offset=0)
        word = int.from_bytes(data[:2], "big")
        ptype, apid = (word >> 12) & 1, word & 0x7FF
        service, subtype = data[_SERVICE_OFFSET], data[_SERVICE_OFFSET + 1]
        candidates = [p for (t, a, s, st, _), p in self._packets[sc.scid].items()
                      if (t, a, s, st) == (ptype, apid, service, subtype)]
        # Packets without a PUS secondary header (imported XTCE definitions) are known by APID alone.
        candidates += [p for (t, a, s, _, _), p in self._packets[sc.scid].items()
                       if s is None and (t, a) == (ptype, apid)]
        for p in candidates:
            if p.key_offset is None:
                return p
            if len(data) < p.key_offset + 2:
                raise TruncatedError("space packet", f"too short to hold the {p.key_name}", offset=p.key_offset)
            if int.from_bytes(data[p.key_offset:p.key_offset + 2], "big") == p.key:
                return p
        key = ""
        if candidates and candidates[0].key_offset is not None:
            off = candidates[0].key_offset
            key = f" {candidates[0].key_name} {int.from_bytes(data[off:off + 2], 'big')}"
        raise ProtocolError("space packet", f"{sc.name} has no {PacketType(ptype).name} packet with APID {apid} "
                            f"PUS {service},{subtype}{key}", field="primary.apid", offset=0)

    def command(self, spacecraft: str | int | Spacecraft, name: str) -> Command:
        return self.spacecraft(spacecraft).command(name)

    # -- parameters ---------------------------------------------------------------------

    def parameters(self, spacecraft: str | int | Spacecraft | None = None, *,
                   include_events: bool = False) -> list[ParameterInfo]:
        """Telemetry parameters with their metadata, in spacecraft, packet and wire order."""
        crafts = [self.spacecraft(spacecraft)] if spacecraft is not None else list(self)
        out: list[ParameterInfo] = []
        for sc in crafts:
            packets: list[HousekeepingPacket | EventReport] = list(sc.housekeeping)
            if include_events:
                packets += list(sc.events)
            for p in packets:
                for path, prm in p.parameters():
                    out.append(ParameterInfo(
                        spacecraft=sc.name, subsystem=p.subsystem, packet=p.name, path=path,
                        name=path.rsplit(".", 1)[-1], data_type=data_type(prm),
                        unit=prm.unit, calibration=prm.calibration, limits=prm.limits,
                        description=prm.description, parameter=prm, kind=p.kind))
        return out

    def parameter(self, spacecraft: str | int | Spacecraft, name: str) -> ParameterInfo:
        """A housekeeping parameter by leaf name (``battery_voltage``) or path (``power.hk.battery_voltage``)."""
        for info in self.parameters(spacecraft):
            if name in (info.name, info.path, f"{info.packet}.{info.path}"):
                return info
        raise KeyError(f"{self.spacecraft(spacecraft).name} has no parameter {name!r}")


# --------------------------------------------------------------------------- loading


def _spacecraft_in(obj: Any, origin: str) -> Iterator[Spacecraft]:
    if isinstance(obj, Spacecraft):
        yield obj
        return
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _spacecraft_in(item, origin)
        return
    single = getattr(obj, "SPACECRAFT", None)
    several = getattr(obj, "SPACECRAFTS", None)
    if single is None and several is None:
        raise DefinitionError(f"mission module {origin}: defines neither SPACECRAFT nor SPACECRAFTS")
    if single is not None:
        yield from _spacecraft_in(single, origin)
    if several is not None:
        yield from _spacecraft_in(list(several), origin)


def import_mission_file(path: str | os.PathLike[str]) -> ModuleType:
    """Import a mission module from a ``.py`` file under a private, stable module name."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise DefinitionError(f"{PATH_VARIABLE}: mission file {file} does not exist")
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:10]
    name = f"queqiao_user_mission_{file.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{PATH_VARIABLE}: cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_xtce_file(path: str | os.PathLike[str], *, name: str | None = None, scid: int | None = None) -> Spacecraft:
    """A spacecraft from an XTCE file (``name``/``scid`` override or complete what the document says).

    The ``[[spacecraft]] xtce = "FILE"`` configuration entry and ``QUEQIAO_MISSION_PATH``
    entries ending in ``.xml`` both come here.  A foreign document names no SCID: without
    ``scid`` the file must carry Queqiao's own spacecraft facts (an exported file does).
    """
    from protocols.xtce import from_xtce  # the XTCE reader builds on the mission model

    file = Path(path).expanduser().resolve()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"XTCE file {file}: cannot read it: {exc.strerror}") from None
    return from_xtce(data, origin=str(file), name=name, scid=scid)


def _path_entries(value: str | None) -> list[str]:
    return [e.strip() for e in (value or "").split(os.pathsep) if e.strip()]


def _is_file_entry(entry: str) -> bool:
    return entry.endswith(".py") or os.sep in entry or (os.altsep is not None and os.altsep in entry)


def load_registry(*, builtins: bool = True, entry_points: bool = True,
                  mission_path: str | None = None) -> Registry:
    """A fresh registry: built-ins, then entry points, then ``mission_path``.

    ``mission_path`` defaults to the ``QUEQIAO_MISSION_PATH`` environment variable.
    Any definition error names the module or file it came from.
    """
    reg = Registry()
    sources: list[tuple[str, Any]] = []
    if builtins:
        sources += [(name, lambda name=name: importlib.import_module(name)) for name in BUILTIN_MODULES]
    if entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            sources.append((f"entry point {ep.name} = {ep.value}", ep.load))
    path = os.environ.get(PATH_VARIABLE) if mission_path is None else mission_path
    for entry in _path_entries(path):
        if entry.endswith(".xml"):
            sources.append((entry, lambda entry=entry: load_xtce_file(entry)))
        elif _is_file_entry(entry):
            sources.append((entry, lambda entry=entry: import_mission_file(entry)))
        else:
            sources.append((entry, lambda entry=entry: importlib.import_module(entry)))
    for origin, load in sources:
        try:
            module = load()
        except DefinitionError as exc:
            raise DefinitionError(f"{origin}: {exc}") from exc
        except ImportError as exc:
            raise DefinitionError(f"{origin}: cannot import mission module: {exc}") from exc
        reg.load_module(module, origin)
    reg.check_relays()
    return reg


def builtin_registry() -> Registry:
    """Only the missions shipped with Queqiao (what docs/missions.md documents)."""
    return load_registry(entry_points=False, mission_path="")


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry: built-ins + entry points + ``QUEQIAO_MISSION_PATH`` (loaded once)."""
    return load_registry()


def reload_registry() -> Registry:
    """Forget the cached registry (after changing ``QUEQIAO_MISSION_PATH``) and load it again."""
    registry.cache_clear()
    return registry()


# Convenience functions over the default registry.


def get_spacecraft(key: str | int) -> Spacecraft:
    return registry().spacecraft(key)


def get_packet(spacecraft: str | int, apid: int, service: int | None = None, subtype: int | None = None,
               key: int | None = None, packet_type: PacketType = PacketType.TM) -> PacketDef:
    return registry().packet(spacecraft, apid, service, subtype, key, packet_type)


def resolve_packet(spacecraft: str | int, data: bytes) -> PacketDef:
    return registry().resolve(spacecraft, data)


def get_command(spacecraft: str | int, name: str) -> Command:
    return registry().command(spacecraft, name)


def list_parameters(spacecraft: str | int | None = None, *, include_events: bool = False) -> list[ParameterInfo]:
    return registry().parameters(spacecraft, include_events=include_events)
