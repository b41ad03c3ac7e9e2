"""Shorthands and shared builders for mission modules.

Field shorthands keep a packet definition one line per parameter, like the spec
table it came from::

    "battery_voltage" / param(U16, "V", "Battery voltage", Linear(0.002), warn=(26, 33), crit=(24, 34)),
    "rover_mode"      / state(U8, ROVER_MODES, "Rover operating mode", warn={"SAFE"}),

Subsystems whose shape several spacecraft share (power, thermal, attitude, data
handling, radio) come from the builders below with per-mission values, and every
spacecraft gets the same standard events and commands (ping, instrument power,
housekeeping control, safe mode, storage dump) from :func:`standard_events` and
:func:`standard_commands`, so the emulator can execute them on any mission.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import construct as cs

from protocols.errors import DefinitionError
from protocols.missions.model import (
    Apid,
    Argument,
    Command,
    EventReport,
    HousekeepingPacket,
    Instrument,
    ServiceReport,
)
from protocols.parameters import Calibration, Limits, Linear, Parameter, StateLimits, States

U8, U16, U32 = cs.Int8ub, cs.Int16ub, cs.Int32ub
S8, S16, S32 = cs.Int8sb, cs.Int16sb, cs.Int32sb
F32 = cs.Float32b

Range = tuple[float | None, float | None]

# Common scalings, named once so packets agree on resolution.
#: 0.01 degC per count over a signed 16-bit field: -327.68 .. 327.67 degC.
CENTI = Linear(0.01)
#: 0.5 % per count over an unsigned byte: 0 .. 127.5 %.
HALF_PERCENT = Linear(0.5)


# --------------------------------------------------------------------------- field shorthands


@contextmanager
def _about(description: str):
    """Name the field in a definition error: the field's own name is attached only after this returns."""
    try:
        yield
    except DefinitionError as exc:
        raise DefinitionError(f"parameter {description!r}: {exc}") from exc


def _own(calibration: Calibration | None) -> Calibration | None:
    """A private copy: Parameter binds its calibration to the raw field (float or integer,
    polynomial domain), so a shared constant like CENTI must not be bound by two fields."""
    return copy.copy(calibration)


def param(raw: cs.Construct, unit: str, description: str, calibration: Calibration | None = None, *,
          warn: Range | None = None, crit: Range | None = None) -> Parameter:
    """A numeric telemetry parameter with warning/critical ranges (engineering units)."""
    with _about(description):
        return Parameter(raw, unit=unit, description=description, calibration=_own(calibration),
                         limits=Limits(warning=warn, critical=crit))


def state(raw: cs.Construct, states: Mapping[int, str] | States, description: str, *,
          warn: Iterable[str] = (), crit: Iterable[str] = ()) -> Parameter:
    """An enumerated telemetry parameter; ``warn``/``crit`` name the states that are off-nominal."""
    with _about(description):
        calibration = states if isinstance(states, States) else States(states)
        return Parameter(raw, unit="state", description=description, calibration=calibration,
                         limits=StateLimits(warning=warn, critical=crit))


def aux(raw: cs.Construct, unit: str, description: str, calibration: Calibration | None = None) -> Parameter:
    """Auxiliary data of an event report: typed and calibrated, no limits (an event is the alarm)."""
    return Parameter(raw, unit=unit, description=description, calibration=_own(calibration))


def aux_state(raw: cs.Construct, states: Mapping[int, str] | States, description: str) -> Parameter:
    calibration = states if isinstance(states, States) else States(states)
    return Parameter(raw, unit="state", description=description, calibration=calibration)


def arg(raw: cs.Construct, unit: str, description: str, calibration: Calibration | None = None, *,
        valid: tuple[float, float]) -> Argument:
    """A numeric command argument, refused outside ``valid`` (engineering units)."""
    with _about(description):
        return Argument(raw, unit=unit, description=description, calibration=_own(calibration), valid=valid)


def choice(raw: cs.Construct, states: Mapping[int, str] | States, description: str,
           valid: Iterable[str] | None = None) -> Argument:
    """An enumerated command argument; ``valid`` restricts the states a command may send."""
    with _about(description):
        calibration = states if isinstance(states, States) else States(states)
        return Argument(raw, unit="state", description=description, calibration=calibration, valid=valid)


# --------------------------------------------------------------------------- shared state tables

#: Switched load (latching current limiter): TRIPPED means the limiter opened on over-current.
SWITCH = {0: "OFF", 1: "ON", 2: "TRIPPED"}
ON_OFF = {0: "OFF", 1: "ON"}
POWER_MODES = {0: "NOMINAL", 1: "POWER_SAVING", 2: "LOAD_SHED", 3: "SURVIVAL"}
OBC_MODES = {0: "BOOT", 1: "NOMINAL", 2: "SAFE", 3: "MAINTENANCE"}
LOCK = {0: "NO_LOCK", 1: "CARRIER_LOCK", 2: "SUBCARRIER_LOCK", 3: "BIT_LOCK"}
STAR_TRACKER = {0: "OFF", 1: "ACQUIRING", 2: "TRACKING", 3: "BLINDED", 4: "FAULT"}
ORBIT_SOURCE = {0: "GROUND_UPLOADED", 1: "ONBOARD_PROPAGATED", 2: "STALE"}
#: The Mars UHF relay link: both ends (Zhurong, Tianwen-1) share these tables.
RELAY_SESSION = {0: "IDLE", 1: "HAILING", 2: "LINKED", 3: "TRANSFER", 4: "FAILED"}
UHF_RATES = {0: "KBPS_8", 1: "KBPS_32", 2: "KBPS_256", 3: "KBPS_2048"}
SAFE_REASONS = {0: "COMMANDED", 1: "UNDERVOLTAGE", 2: "OVERTEMPERATURE", 3: "WATCHDOG", 4: "ATTITUDE_LOSS",
                5: "COMMUNICATION_LOSS"}


# --------------------------------------------------------------------------- platform builders


@dataclass(frozen=True)
class SolarArray:
    name: str
    description: str
    max_current: float  # A, beginning of life at the mission's design irradiance


def power_hk(*, apid: int, sid: int, period: float, bus: tuple[Range, Range], bus_current_max: float,
             battery: tuple[Range, Range], soc: tuple[Range, Range], arrays: Sequence[SolarArray] = (),
             battery_temperature: tuple[Range, Range] = ((0, 30), (-10, 40)),
             extra: Sequence[cs.Construct] = (), name: str = "power", description: str = "") -> HousekeepingPacket:
    """Power conditioning unit report: bus, battery, solar arrays, load; ``bus``/``battery`` are (warn, crit) V."""
    fields = [
        "power_mode" / state(U8, POWER_MODES, "Power management mode", warn={"POWER_SAVING"},
                             crit={"LOAD_SHED", "SURVIVAL"}),
        "bus_voltage" / param(U16, "V", "Primary bus voltage", Linear(0.002), warn=bus[0], crit=bus[1]),
        "bus_current" / param(U16, "A", "Primary bus load current", Linear(0.001),
                              warn=(0, bus_current_max * 0.9), crit=(0, bus_current_max)),
        "battery_voltage" / param(U16, "V", "Battery voltage", Linear(0.002), warn=battery[0], crit=battery[1]),
        "battery_current" / param(S16, "A", "Battery current (positive = charging)", Linear(0.002),
                                  warn=(-bus_current_max * 0.9, bus_current_max * 0.9),
                                  crit=(-bus_current_max, bus_current_max)),
        "battery_soc" / param(U8, "%", "Battery state of charge", HALF_PERCENT, warn=soc[0], crit=soc[1]),
        "battery_temperature" / param(S16, "degC", "Battery temperature", CENTI,
                                      warn=battery_temperature[0], crit=battery_temperature[1]),
    ]
    for array in arrays:
        fields.append(f"array_{array.name}_current" / param(
            U16, "A", f"{array.description} output current", Linear(0.001),
            warn=(0, array.max_current * 1.05), crit=(0, array.max_current * 1.2)))
    fields += [
        *extra,
        "pcdu_temperature" / param(S16, "degC", "Power conditioning and distribution unit temperature", CENTI,
                                   warn=(-20, 50), crit=(-30, 60)),
    ]
    return HousekeepingPacket(name, apid=apid, sid=sid, subsystem="power", period=period,
                              description=description or "Power subsystem: bus, battery, solar arrays", fields=fields)


@dataclass(frozen=True)
class Zone:
    """A temperature sensor location and its (warn, crit) ranges in degC."""

    name: str
    description: str
    warn: Range
    crit: Range


def thermal_hk(*, apid: int, sid: int, period: float, zones: Sequence[Zone], heaters: Sequence[tuple[str, str]],
               extra: Sequence[cs.Construct] = (), name: str = "thermal",
               description: str = "") -> HousekeepingPacket:
    """Thermal control report: one temperature per zone, one duty cycle per heater line."""
    fields = [f"temp_{z.name}" / param(S16, "degC", z.description, CENTI, warn=z.warn, crit=z.crit) for z in zones]
    fields += [f"heater_{h}_duty" / param(U8, "%", f"{text} heater duty cycle", HALF_PERCENT,
                                          warn=(0, 90), crit=(0, 100)) for h, text in heaters]
    fields += list(extra)
    return HousekeepingPacket(name, apid=apid, sid=sid, subsystem="thermal", period=period,
                              description=description or "Thermal control: temperatures and heater duty cycles",
                              fields=fields)


def attitude_hk(*, apid: int, sid: int, period: float, modes: Mapping[int, str], mode_warn: Iterable[str],
                mode_crit: Iterable[str], wheels: int = 4, wheel_max_rpm: float = 6000,
                max_rate: float = 1.0, pointing: tuple[Range, Range] = ((0, 0.1), (0, 1.0)),
                extra: Sequence[cs.Construct] = (), description: str = "") -> HousekeepingPacket:
    """Attitude and orbit control report: mode, attitude quaternion, body rates, wheels, star tracker."""
    fields = [
        "aocs_mode" / state(U8, modes, "Attitude and orbit control mode", warn=mode_warn, crit=mode_crit),
        "star_tracker" / state(U8, STAR_TRACKER, "Star tracker state", warn={"ACQUIRING", "BLINDED"},
                               crit={"FAULT"}),
    ]
    # Quaternion components at 2^-30 per count: unit norm fits with margin, resolution ~1e-9.
    for axis, text in (("q0", "scalar"), ("q1", "x"), ("q2", "y"), ("q3", "z")):
        fields.append(f"attitude_{axis}" / param(S32, "", f"Attitude quaternion {text} component (J2000 to body)",
                                                Linear(2**-30), warn=(-1.0, 1.0), crit=(-1.001, 1.001)))
    for axis in "xyz":
        fields.append(f"rate_{axis}" / param(S16, "deg/s", f"Body rate about {axis}", Linear(0.0005),
                                             warn=(-max_rate, max_rate), crit=(-2 * max_rate, 2 * max_rate)))
    fields.append("pointing_error" / param(U16, "deg", "Pointing error from the commanded attitude",
                                           Linear(0.0005), warn=pointing[0], crit=pointing[1]))
    for i in range(1, wheels + 1):
        fields.append(f"wheel_{i}_speed" / param(S16, "rpm", f"Reaction wheel {i} speed", Linear(1),
                                                 warn=(-0.85 * wheel_max_rpm, 0.85 * wheel_max_rpm),
                                                 crit=(-wheel_max_rpm, wheel_max_rpm)))
    fields += list(extra)
    return HousekeepingPacket("attitude", apid=apid, sid=sid, subsystem="aocs", period=period,
                              description=description or "Attitude and orbit control", fields=fields)


def sdls_fields() -> list[cs.Construct]:
    """Uplink security counters (CCSDS 355.0-B-2) of a spacecraft that authenticates its telecommands."""
    counts = {"UNAUTHENTICATED": "without a security header of a known SA",
              "FORGED": "whose MAC did not verify", "REPLAYED": "whose sequence number was not beyond the last",
              "OUT_OF_WINDOW": "whose sequence number was beyond the anti-replay window"}
    fields = ["sdls_frames_accepted" / param(U16, "", "TC frames that passed security processing (wraps)",
                                             warn=(0, 65535), crit=(0, 65535))]
    fields += [f"sdls_rejected_{name.lower()}" / param(U16, "", f"TC frames refused: {what}", warn=(0, 0),
                                                       crit=(0, 100))
               for name, what in counts.items()]
    fields.append("sdls_last_sequence" / param(U32, "", "Last accepted SDLS sequence number (the ground's SA)",
                                               warn=(0, 4e9), crit=(0, 4294967295)))
    return fields


def obdh_hk(*, apid: int, sid: int, period: float, storage_gbit: float, sdls: bool = False) -> HousekeepingPacket:
    """On-board computer and mass memory report (same shape on every spacecraft; with ``sdls``, the
    uplink security counters follow)."""
    return HousekeepingPacket("obdh", apid=apid, sid=sid, subsystem="obdh", period=period,
                              description=f"On-board data handling: computer and {storage_gbit:g} Gbit mass memory",
                              fields=[
        "obc_mode" / state(U8, OBC_MODES, "On-board computer mode", warn={"BOOT", "MAINTENANCE"}, crit={"SAFE"}),
        "cpu_load" / param(U8, "%", "Processor load", HALF_PERCENT, warn=(0, 80), crit=(0, 95)),
        "memory_used" / param(U8, "%", "RAM in use", HALF_PERCENT, warn=(0, 85), crit=(0, 95)),
        "storage_used" / param(U8, "%", "Mass memory fill level", HALF_PERCENT, warn=(0, 85), crit=(0, 97)),
        "boot_count" / param(U16, "", "Processor boots since launch", warn=(0, 50), crit=(0, 200)),
        "watchdog_resets" / param(U16, "", "Watchdog resets since launch", warn=(0, 5), crit=(0, 20)),
        "edac_errors" / param(U16, "", "Memory single-bit errors corrected since boot", warn=(0, 1000),
                              crit=(0, 10000)),
        "tc_accepted" / param(U16, "", "Telecommands accepted since boot (wraps)", warn=(0, 65535), crit=(0, 65535)),
        "tc_rejected" / param(U16, "", "Telecommands rejected since boot", warn=(0, 10), crit=(0, 100)),
        "obc_temperature" / param(S16, "degC", "On-board computer board temperature", CENTI,
                                  warn=(-20, 55), crit=(-35, 70)),
        *(sdls_fields() if sdls else []),
    ])


def _open_below(limits: tuple[Range, Range], floor: float | None) -> tuple[Range, Range]:
    return tuple((floor, hi) for _, hi in limits)  # type: ignore[return-value]


def radio_fields(prefix: str, band: str, *, tx_power: tuple[Range, Range], rx_level: tuple[Range, Range] | None,
                 rates: Mapping[int, str], intermittent: bool = False) -> list[cs.Construct]:
    """One radio's fields, prefixed (``xband_...``) so several fit one spacecraft; ``rx_level=None``: transmit-only.

    ``intermittent``: a radio used in sessions (a relay, direct-to-Earth passes): idle between them is
    normal, so no lock, no received signal and no transmitted power are not limit violations; only
    the upper limits (overload, overheating transmitter) stay.
    """
    if intermittent:
        tx_power = _open_below(tx_power, 0)
        rx_level = None if rx_level is None else _open_below(rx_level, None)
    receiver = [] if rx_level is None else [
        f"{prefix}_lock" / (state(U8, LOCK, f"{band} receiver lock") if intermittent
                            else state(U8, LOCK, f"{band} receiver lock", warn={"NO_LOCK"})),
        f"{prefix}_rx_level" / param(S16, "dBm", f"{band} received signal level", Linear(0.1),
                                     warn=rx_level[0], crit=rx_level[1]),
    ]
    return [
        f"{prefix}_transmitter" / state(U8, SWITCH, f"{band} transmitter power", crit={"TRIPPED"}),
        *receiver,
        f"{prefix}_tx_power" / param(U16, "W", f"{band} transmitter RF output power", Linear(0.01),
                                     warn=tx_power[0], crit=tx_power[1]),
        f"{prefix}_data_rate" / state(U8, rates, f"{band} downlink data rate setting", warn={rates[min(rates)]}),
        f"{prefix}_temperature" / param(S16, "degC", f"{band} transceiver temperature", CENTI,
                                        warn=(-20, 50), crit=(-30, 65)),
    ]


@dataclass(frozen=True)
class Tank:
    """A propellant tank: pressure (warn, crit) in MPa and gauged mass (warn, crit) in kg."""

    name: str
    description: str
    pressure: tuple[Range, Range]
    mass: tuple[Range, Range]


def propulsion_hk(*, apid: int, sid: int, period: float, tanks: Sequence[Tank], helium: tuple[Range, Range],
                  engine: Sequence[cs.Construct] = (), burn: Sequence[cs.Construct] = (),
                  description: str) -> HousekeepingPacket:
    """Pressure-fed propulsion: ``engine`` fields, each tank's pressure and mass, pressurant, ``burn`` fields."""
    fields = list(engine)
    for tank in tanks:
        fields += [
            f"{tank.name}_pressure" / param(U16, "MPa", f"{tank.description} tank pressure", Linear(0.001),
                                            warn=tank.pressure[0], crit=tank.pressure[1]),
            f"{tank.name}_mass" / param(U16, "kg", f"{tank.description} remaining (gauged)", Linear(0.1),
                                        warn=tank.mass[0], crit=tank.mass[1]),
        ]
    fields += [
        "helium_pressure" / param(U16, "MPa", "Helium pressurant pressure", Linear(0.01), warn=helium[0],
                                  crit=helium[1]),
        *burn,
        "thruster_pulses" / param(U32, "", "Attitude thruster pulses since launch", warn=(0, 500000),
                                  crit=(0, 1000000)),
    ]
    return HousekeepingPacket("propulsion", apid=apid, sid=sid, subsystem="propulsion", period=period,
                              description=description, fields=fields)


# --------------------------------------------------------------------------- standard events and commands

#: Function IDs of the standard PUS 8,1 functions; mission functions start at 0x0100.
FID_POWER_INSTRUMENT = 0x0001
FID_ENTER_SAFE_MODE = 0x0002
FID_LEAVE_SAFE_MODE = 0x0003
FID_SET_FAULT = 0x0004
#: Fault slots the SET_FAULT test hook can address (the emulator's --fault list, in order).
FAULT_SLOTS = 32
#: Kinds of injected fault, as the emulator's fault grammar names them (upper case).
FAULT_KINDS = {0: "STUCK", 1: "NOISE", 2: "BIAS", 3: "BATTERY_DEGRADATION", 4: "THERMAL_RUNAWAY",
               5: "SAFE_MODE", 6: "DROP_FRAMES", 7: "CORRUPT_FRAMES", 8: "LINK_OUTAGE"}
MISSION_FUNCTIONS = 0x0100
#: Why the spacecraft refused a TC frame's security (CCSDS 355.0-B-2), as its event and housekeeping name it.
SDLS_REASONS = {1: "UNAUTHENTICATED", 2: "FORGED", 3: "REPLAYED", 4: "OUT_OF_WINDOW"}

#: Event IDs of the standard events; mission events start at 0x0100.
MISSION_EVENTS = 0x0100


def instrument_states(instruments: Sequence[Instrument]) -> States:
    return States({i.code: i.name for i in instruments})


def sid_states(housekeeping: Sequence[HousekeepingPacket]) -> States:
    return States({p.sid: p.name.upper() for p in housekeeping})


def store_states(stores: Sequence[str]) -> States:
    return States({i + 1: s.upper() for i, s in enumerate(stores)})


#: Housekeeping collection interval: 0.1 s per count (PUS 3,31 takes it in the mission's time unit).
PERIOD = Linear(0.1)


def standard_events(*, apid: int, instruments: Sequence[Instrument], housekeeping: Sequence[HousekeepingPacket],
                    stores: Sequence[str], battery_voltage: float) -> list[EventReport]:
    """Events every spacecraft reports, with IDs 1..0xFF; the emulator raises them the same way everywhere."""
    sids = sid_states(housekeeping)
    events = [
        EventReport("safe_mode_entered", apid=apid, event_id=0x0001, severity=4, subsystem="obdh",
                    description="The spacecraft entered safe mode",
                    aux=["reason" / aux_state(U8, SAFE_REASONS, "Why safe mode was entered")]),
        EventReport("safe_mode_left", apid=apid, event_id=0x0002, severity=1, subsystem="obdh",
                    description="The spacecraft left safe mode on command"),
        EventReport("hk_period_changed", apid=apid, event_id=0x0004, severity=1, subsystem="obdh",
                    description="A housekeeping report's collection period was changed",
                    aux=["sid" / aux_state(U16, sids, "Housekeeping report"),
                         "period" / aux(U16, "s", "New collection period", PERIOD)]),
        EventReport("hk_generation_changed", apid=apid, event_id=0x0005, severity=1, subsystem="obdh",
                    description="A housekeeping report was enabled or disabled",
                    aux=["sid" / aux_state(U16, sids, "Housekeeping report"),
                         "enabled" / aux_state(U8, {0: "DISABLED", 1: "ENABLED"}, "New generation state")]),
        EventReport("battery_low", apid=apid, event_id=0x0006, severity=3, subsystem="power",
                    description=f"Battery below its warning level (voltage under {battery_voltage:g} V or "
                                "state of charge low): loads are being shed",
                    aux=["battery_voltage" / aux(U16, "V", "Battery voltage at detection", Linear(0.002)),
                         "battery_soc" / aux(U8, "%", "State of charge at detection", HALF_PERCENT)]),
        EventReport("storage_dump_completed", apid=apid, event_id=0x0007, severity=1, subsystem="obdh",
                    description="A packet store dump finished",
                    aux=["store" / aux_state(U8, store_states(stores), "Packet store dumped"),
                         "packets" / aux(U32, "", "Packets sent")]),
        # The on-board software's own health events (0x10..0x1F).
        EventReport("software_error", apid=apid, event_id=0x0010, severity=3, subsystem="obdh",
                    description="An on-board application failed while handling a message"),
        EventReport("hk_collection_failed", apid=apid, event_id=0x0011, severity=3, subsystem="obdh",
                    description="A housekeeping report could not be collected"),
        EventReport("store_overflow", apid=apid, event_id=0x0012, severity=2, subsystem="obdh",
                    description="The on-board store was full: its oldest packets were dropped",
                    aux=["dropped" / aux(U32, "", "Packets dropped"),
                         "dropped_bytes" / aux(U32, "B", "Octets dropped")]),
        EventReport("store_item_too_large", apid=apid, event_id=0x0013, severity=3, subsystem="obdh",
                    description="A packet larger than the whole on-board store was not stored",
                    aux=["size" / aux(U32, "B", "Packet size")]),
        EventReport("link_state_changed", apid=apid, event_id=0x0014, severity=1, subsystem="comms",
                    description="The downlink was acquired or lost (pass start or end)",
                    aux=["up" / aux_state(U8, {0: "DOWN", 1: "UP"}, "New link state"),
                         "stored" / aux(U32, "", "Packets held in the on-board store"),
                         "stored_bytes" / aux(U32, "B", "Octets held in the on-board store")]),
        EventReport("fault_activated", apid=apid, event_id=0x0015, severity=3, subsystem="obdh",
                    description="A fault defined at start was activated (test hook, by time or by SET_FAULT)",
                    aux=["slot" / aux(U8, "", "Fault slot (position in the emulator's --fault list)"),
                         "kind" / aux_state(U8, FAULT_KINDS, "Kind of fault")]),
        EventReport("fault_cleared", apid=apid, event_id=0x0016, severity=1, subsystem="obdh",
                    description="A fault was cleared (by command or at the end of its duration)",
                    aux=["slot" / aux(U8, "", "Fault slot (position in the emulator's --fault list)")]),
        EventReport("tc_frame_rejected_security", apid=apid, event_id=0x0017, severity=3, subsystem="comms",
                    description="A TC frame failed security processing (CCSDS 355.0-B-2): unauthenticated, forged "
                                "or replayed; the first of each reason at once, then at most one a second",
                    aux=["reason" / aux_state(U8, SDLS_REASONS, "Why the frame was refused"),
                         "spi" / aux(U16, "", "Security parameter index of the frame (0: none)"),
                         "sequence_number" / aux(U32, "", "The frame's sequence number (0: none)"),
                         "rejected" / aux(U32, "", "Frames refused for this reason since boot")]),
    ]
    if instruments:
        events.append(EventReport(
            "instrument_power_changed", apid=apid, event_id=0x0003, severity=1, subsystem="payload",
            description="An instrument was switched on or off",
            aux=["instrument" / aux_state(U8, instrument_states(instruments), "Instrument"),
                 "state" / aux_state(U8, SWITCH, "New power state")]))
    return events


def standard_commands(*, apid: int, instruments: Sequence[Instrument], housekeeping: Sequence[HousekeepingPacket],
                      stores: Sequence[str]) -> list[Command]:
    """Commands every spacecraft accepts and the emulator executes."""
    sids = sid_states(housekeeping)
    # PUS-C 3,5 / 3,6 / 3,31 take N repetitions; Queqiao fixes N = 1 so the command stays fixed-size.
    one = ["n" / cs.Const(1, U8)]
    commands = [
        Command("PING", apid=apid, service=17, subtype=1, subsystem="obdh",
                description="Are-you-alive test; answered by a PUS 17,2 report"),
        Command("SET_HK_PERIOD", apid=apid, service=3, subtype=31, subsystem="obdh", prefix=one,
                description="Change the collection period of one housekeeping report",
                arguments=["sid" / choice(U16, sids, "Housekeeping report"),
                           "period" / arg(U16, "s", "New collection period", PERIOD, valid=(0.5, 3600))]),
        Command("ENABLE_HK", apid=apid, service=3, subtype=5, subsystem="obdh", prefix=one,
                description="Enable periodic generation of one housekeeping report",
                arguments=["sid" / choice(U16, sids, "Housekeeping report")]),
        Command("DISABLE_HK", apid=apid, service=3, subtype=6, subsystem="obdh", prefix=one,
                description="Disable periodic generation of one housekeeping report",
                arguments=["sid" / choice(U16, sids, "Housekeeping report")]),
        Command("ENTER_SAFE_MODE", apid=apid, service=8, subtype=1, function_id=FID_ENTER_SAFE_MODE,
                subsystem="obdh", description="Switch to safe mode: payloads off, minimum power, Sun/Earth safe"),
        Command("LEAVE_SAFE_MODE", apid=apid, service=8, subtype=1, function_id=FID_LEAVE_SAFE_MODE,
                subsystem="obdh", description="Return from safe mode to nominal operations"),
        Command("DUMP_STORAGE", apid=apid, service=15, subtype=9, subsystem="obdh",
                description="Downlink a packet store's content between two on-board times (playback VC)",
                arguments=["store" / choice(U8, store_states(stores), "Packet store"),
                           "start_time" / arg(U32, "s", "From on-board time (CUC coarse seconds)",
                                              valid=(0, 2**32 - 1)),
                           "end_time" / arg(U32, "s", "To on-board time (CUC coarse seconds)",
                                            valid=(0, 2**32 - 1))],
                constraint=lambda a: None if a["start_time"] <= a["end_time"]
                else f"start_time {a['start_time']} is after end_time {a['end_time']}"),
        # A test hook, as flight software has for FDIR campaigns: faults are defined when the software
        # starts (the emulator's --fault list; "@cmd" arms one without activating it) and switched here.
        Command("SET_FAULT", apid=apid, service=8, subtype=1, function_id=FID_SET_FAULT, subsystem="obdh",
                description="Test hook: activate or clear a fault defined at start (emulator --fault list)",
                arguments=["slot" / arg(U8, "", "Position of the fault in the --fault list (0 = first)",
                                        valid=(0, FAULT_SLOTS - 1)),
                           "state" / choice(U8, {0: "CLEAR", 1: "ACTIVE"}, "What to do with the fault")]),
    ]
    if instruments:
        commands.append(Command(
            "POWER_INSTRUMENT", apid=apid, service=8, subtype=1, function_id=FID_POWER_INSTRUMENT,
            subsystem="payload", description="Switch an instrument on or off",
            arguments=["instrument" / choice(U8, instrument_states(instruments), "Instrument"),
                       "state" / choice(U8, SWITCH, "Power state", valid={"OFF", "ON"})]))
    return commands


# --------------------------------------------------------------------------- standard service reports

#: PUS-C 1,2 acceptance failure codes (the classic PUS set).
ACCEPTANCE_FAILURES = {0: "ILLEGAL_APID", 1: "INCOMPLETE_OR_BAD_LENGTH", 2: "BAD_CHECKSUM", 3: "ILLEGAL_TYPE",
                       4: "ILLEGAL_SUBTYPE", 5: "ILLEGAL_ARGUMENT"}
#: PUS-C 1,8 completion failure codes (Queqiao's set).
EXECUTION_FAILURES = {0: "EXECUTION_FAILED", 1: "REFUSED_IN_MODE", 2: "TIMEOUT", 3: "RESOURCE_BUSY",
                      4: "CONSTRAINT_VIOLATED"}


def _request_id() -> list[cs.Construct]:
    """The request ID of a verification report: the telecommand's packet ID and sequence control."""
    return ["request" / cs.BitStruct(
        "version" / cs.BitsInteger(3),
        "type" / cs.BitsInteger(1),
        "secondary_header_flag" / cs.BitsInteger(1),
        "apid" / cs.BitsInteger(11),
        "sequence_flags" / cs.BitsInteger(2),
        "sequence_count" / cs.BitsInteger(14),
    )]


def standard_reports(apids: Sequence[Apid], commands: Sequence[Command]) -> list[ServiceReport]:
    """PUS 1,1 to 1,8 on every APID that takes commands, and 17,2 where PING is accepted."""
    reports: list[ServiceReport] = []
    names = {a.number: a.name for a in apids}
    for apid in dict.fromkeys(c.apid for c in commands):
        prefix = names.get(apid, f"apid{apid}")
        reports += [
            ServiceReport(f"{prefix}_tc_accepted", apid=apid, service=1, subtype=1, subsystem="obdh",
                          description="Telecommand acceptance success", fields=_request_id()),
            ServiceReport(f"{prefix}_tc_rejected", apid=apid, service=1, subtype=2, subsystem="obdh",
                          description="Telecommand acceptance failure", fields=[
                *_request_id(),
                "code" / aux_state(U16, ACCEPTANCE_FAILURES, "Why the command was not accepted"),
                "data" / aux(U32, "", "Failure data (offending field offset or value)"),
            ]),
            ServiceReport(f"{prefix}_tc_started", apid=apid, service=1, subtype=3, subsystem="obdh",
                          description="Telecommand execution started", fields=_request_id()),
            ServiceReport(f"{prefix}_tc_start_failed", apid=apid, service=1, subtype=4, subsystem="obdh",
                          description="Telecommand execution start failed", fields=[
                *_request_id(),
                "code" / aux_state(U16, EXECUTION_FAILURES, "Why execution could not start"),
                "data" / aux(U32, "", "Failure data"),
            ]),
            ServiceReport(f"{prefix}_tc_progress", apid=apid, service=1, subtype=5, subsystem="obdh",
                          description="Telecommand execution progress", fields=[
                *_request_id(),
                "step" / aux(U16, "", "Progress step number"),
            ]),
            ServiceReport(f"{prefix}_tc_progress_failed", apid=apid, service=1, subtype=6, subsystem="obdh",
                          description="Telecommand execution progress failed", fields=[
                *_request_id(),
                "step" / aux(U16, "", "Progress step number"),
                "code" / aux_state(U16, EXECUTION_FAILURES, "Why execution stopped"),
                "data" / aux(U32, "", "Failure data"),
            ]),
            ServiceReport(f"{prefix}_tc_completed", apid=apid, service=1, subtype=7, subsystem="obdh",
                          description="Telecommand execution completed", fields=_request_id()),
            ServiceReport(f"{prefix}_tc_failed", apid=apid, service=1, subtype=8, subsystem="obdh",
                          description="Telecommand execution failed", fields=[
                *_request_id(),
                "code" / aux_state(U16, EXECUTION_FAILURES, "Why execution failed"),
                "data" / aux(U32, "", "Failure data"),
            ]),
        ]
    for c in commands:
        if (c.service, c.subtype) == (17, 1):
            reports.append(ServiceReport(f"{names.get(c.apid, f'apid{c.apid}')}_ping_reply", apid=c.apid,
                                         service=17, subtype=2, subsystem="obdh",
                                         description="Are-you-alive answer to PING"))
    return reports
