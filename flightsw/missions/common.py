"""What the mission models share: housekeeping plumbing, power, heaters, data handling.

Every model is a :class:`BaseModel`: it writes one ``hk_<packet>()`` method per
housekeeping packet and one ``cmd_<command>()`` method per mission command.  The
base class clamps values into what each raw field can carry, answers
POWER_INSTRUMENT, raises :class:`~flightsw.model.NotMine` for the runtime's own
commands, sheds loads in safe mode and keeps the on-board computer counters.
Physics comes from :mod:`flightsw.physics`; nothing here reads the wall clock.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flightsw.core.time import epoch_seconds_us
from flightsw.model import RUNTIME_COMMANDS, CommandOutcome, MissionModel, NotMine
from flightsw.physics import Battery, BatteryState, SolarArray, ThermalNode
from protocols.missions import HousekeepingPacket, Spacecraft
from protocols.parameters import Limits

#: Commands the runtime executes itself (the standard set minus POWER_INSTRUMENT).

# PUS 1,8 completion failure codes of the mission database (protocols.missions.common.EXECUTION_FAILURES).
EXECUTION_FAILED, REFUSED_IN_MODE, TIMEOUT, RESOURCE_BUSY, CONSTRAINT_VIOLATED = range(5)

#: On-board times above this are CUC seconds since 1958 (CCSDS epoch); below it, seconds since the start.
_ABSOLUTE_ONBOARD_S = 1e9


#: One-way light time Earth-Moon at the mean distance (s).
MOON_LIGHT_TIME_S = 384_400.0 / 299_792.458
#: The cold sky a lunar lander sees beside the regolith (degC).
LUNAR_SKY_C = -230.0


def lunar_sink_c(regolith_c: float) -> float:
    """Radiative sink of a lander's surfaces: half their view is the regolith, half the cold sky."""
    return 0.5 * regolith_c + 0.5 * LUNAR_SKY_C


def refused(detail: str, code: int = REFUSED_IN_MODE) -> CommandOutcome:
    return CommandOutcome(ok=False, error_code=code, detail=detail)


def field_bounds(packet: HousekeepingPacket) -> list[tuple[str, float | None, float | None]]:
    """(leaf name, lowest, highest engineering value the raw field holds); None, None for enumerations."""
    rows: list[tuple[str, float | None, float | None]] = []
    for path, param in packet.parameters():
        if not path.startswith("hk."):
            continue
        leaf = path.removeprefix("hk.")
        if param.calibration.is_state or param.domain.is_float:
            rows.append((leaf, None, None))
            continue
        a = float(param.calibration.to_eng(param.domain.minimum))
        b = float(param.calibration.to_eng(param.domain.maximum))
        rows.append((leaf, min(a, b), max(a, b)))
    return rows


def aux_bounds(spacecraft: Spacecraft) -> dict[str, dict[str, tuple[float, float]]]:
    """Per event, the engineering range of each numeric auxiliary field (what the raw field holds)."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for event in spacecraft.events:
        fields = {}
        for path, param in event.parameters():
            if param.calibration.is_state or param.domain.is_float:
                continue
            a = float(param.calibration.to_eng(param.domain.minimum))
            b = float(param.calibration.to_eng(param.domain.maximum))
            fields[path.rsplit(".", 1)[-1]] = (min(a, b), max(a, b))
        out[event.name] = fields
    return out


def event_recorder(spacecraft: Spacecraft, sink: list) -> Callable[..., None]:
    """An ``emit`` for tests and tools: builds each event with the mission database (so a wrong name or
    out-of-range data fails at once) and appends ``(name, aux)`` to ``sink``."""
    def emit(event: str, **aux: Any) -> None:
        spacecraft.event(event).build(aux)
        sink.append((event, aux))
    return emit


def nominal_range(spacecraft: Spacecraft, name: str) -> tuple[float | None, float | None]:
    """The warning (else critical) range of a numeric housekeeping parameter: used to pick thresholds."""
    limits = spacecraft.parameter(name).limits
    if isinstance(limits, Limits):
        return limits.warning or limits.critical or (None, None)
    return (None, None)


class Ema:
    """Exponential moving average with time constant ``tau`` (seconds): heater duty cycles, loads."""

    def __init__(self, tau: float, value: float = 0.0) -> None:
        self.tau = tau
        self.value = value

    def update(self, sample: float, dt: float) -> float:
        a = 1.0 - math.exp(-dt / self.tau) if self.tau > 0 else 1.0
        self.value += (sample - self.value) * a
        return self.value


class Heater:
    """A proportional (PWM) heater on a thermal node: full power at ``setpoint``, none ``band`` above it.

    Flight thermostats of this kind switch fast enough that the node sees the
    mean power; the duty cycle telemetry is that fraction averaged over minutes.
    """

    def __init__(self, node: ThermalNode, power_w: float, setpoint_c: float, *, band_c: float = 2.0,
                 duty_tau_s: float = 600.0) -> None:
        self.node = node
        self.power_w = power_w
        self.setpoint_c = setpoint_c
        self.band_c = band_c
        self.enabled = True
        self.fraction = 0.0
        node.heater_on = True
        self.duty = Ema(duty_tau_s)

    @property
    def on(self) -> bool:
        return self.fraction > 0.0

    def update(self, dt: float) -> float:
        """Set the heater power for the coming ``dt``; returns the electrical power drawn (W)."""
        f = (self.setpoint_c + self.band_c - self.node.temperature_c) / self.band_c
        self.fraction = min(1.0, max(0.0, f)) if self.enabled else 0.0
        self.node.heater_w = self.power_w * self.fraction
        self.duty.update(self.fraction, dt)
        return self.node.heater_w

    @property
    def duty_percent(self) -> float:
        return 100.0 * self.duty.value


@dataclass
class Array:
    """A named solar array (or wing/panel) and how squarely it faces the Sun."""

    name: str
    panel: SolarArray
    power_w: float = 0.0


class PowerSystem:
    """Arrays into a regulated bus with a battery on it; the battery takes the difference."""

    def __init__(self, arrays: Sequence[Array], battery: Battery, *, bus_v: float) -> None:
        self.arrays = list(arrays)
        self.battery = battery
        self.bus_v = bus_v
        self.load_w = 0.0
        self.generated_w = 0.0
        self.state: BatteryState = battery.state

    def step(self, dt: float, irradiance: float, cos_incidence: Sequence[float], array_temp_c: float,
             load_w: float, capacity_factor: float) -> BatteryState:
        battery = self.battery
        battery.set_capacity_factor(max(1e-3, min(1.0, capacity_factor)))
        # Fade shrinks the capacity under a full battery; the charge regulator still stops at max_soc.
        battery.charge_ah = min(battery.charge_ah, battery.max_soc * battery.capacity_ah)
        total = 0.0
        for array, cos_i in zip(self.arrays, cos_incidence, strict=True):
            array.power_w = array.panel.step(dt, irradiance, cos_i, array_temp_c)
            total += array.power_w
        self.load_w = load_w
        self.state = self.battery.step(total - load_w, dt)
        # Power the battery could not absorb is shunted: the arrays deliver only what is used.
        self.generated_w = total - self.state.shunted_w
        return self.state

    def array_current(self, array: Array) -> float:
        """Current an array delivers into the bus (its share of what is used, not shunted)."""
        total = sum(a.power_w for a in self.arrays)
        if total <= 0 or self.generated_w <= 0:
            return 0.0
        return array.power_w * (self.generated_w / total) / self.bus_v

    def fields(self, rng: random.Random, *, power_mode: str, battery_temp_c: float, pcdu_temp_c: float,
               prefix: str = "array_") -> dict[str, Any]:
        s = self.state
        values: dict[str, Any] = {
            "power_mode": power_mode,
            "bus_voltage": self.bus_v + rng.gauss(0.0, 0.02),
            "bus_current": max(0.0, self.load_w / self.bus_v + rng.gauss(0.0, 0.01)),
            "battery_voltage": s.voltage_v,
            "battery_current": s.current_a,
            "battery_soc": 100.0 * self.battery.soc,
            "battery_temperature": battery_temp_c,
            "pcdu_temperature": pcdu_temp_c,
        }
        for array in self.arrays:
            current = self.array_current(array)  # dark arrays read exactly zero
            values[f"{prefix}{array.name}_current"] = max(0.0, current + rng.gauss(0.0, 0.005)) if current else 0.0
        return values


@dataclass
class InstrumentState:
    """Power state, draw and science data rate of one instrument."""

    name: str
    power_w: float
    data_kbps: float
    on: bool = False
    on_since: float = 0.0


@dataclass
class Obdh:
    """On-board computer counters and mass memory fill."""

    storage_bits: float
    boot_count: int = 3
    watchdog_resets: int = 0
    edac_errors: int = 0
    tc_accepted: int = 0
    tc_rejected: int = 0
    stored_bits: float = 0.0
    cpu: Ema = field(default_factory=lambda: Ema(60.0, 20.0))

    def fields(self, rng: random.Random, *, mode: str, temperature_c: float, activity: float) -> dict[str, Any]:
        return {
            "obc_mode": "SAFE" if mode == "SAFE" else "NOMINAL",
            "cpu_load": max(1.0, self.cpu.value + 10.0 * activity + rng.gauss(0.0, 1.5)),
            "memory_used": 38.0 + 8.0 * activity + rng.gauss(0.0, 0.5),
            "storage_used": 100.0 * self.stored_bits / self.storage_bits,
            "boot_count": self.boot_count,
            "watchdog_resets": self.watchdog_resets,
            "edac_errors": self.edac_errors,
            "tc_accepted": self.tc_accepted % 65536,
            "tc_rejected": self.tc_rejected,
            "obc_temperature": temperature_c,
            # The uplink security counters belong to the runtime's TC receiver, which fills them in.
            "sdls_frames_accepted": 0, "sdls_rejected_unauthenticated": 0, "sdls_rejected_forged": 0,
            "sdls_rejected_replayed": 0, "sdls_rejected_out_of_window": 0, "sdls_last_sequence": 0,
        }

    def step(self, dt: float, rng: random.Random, *, produced_bits: float, downlink_bps: float,
             edac_per_hour: float) -> None:
        self.stored_bits = min(self.storage_bits, max(0.0, self.stored_bits + produced_bits - downlink_bps * dt))
        # Single-event upsets arrive as a Poisson process: draw the count for this step.
        lam = edac_per_hour * dt / 3600.0
        if lam > 0:
            k, p = 0, math.exp(-lam)
            u, acc = rng.random(), p
            while u > acc and k < 50:
                k += 1
                p *= lam / k
                acc += p
            self.edac_errors = min(65535, self.edac_errors + k)


class BaseModel(MissionModel):
    """Plumbing every mission model shares; subclasses give the physics, ``hk_*`` and ``cmd_*`` methods."""

    #: Instrument power draw (W) and science data rate (kbit/s) while on, by instrument name.
    INSTRUMENTS: Mapping[str, tuple[float, float]] = {}
    #: Instruments on at start (their mode parameters would read off-nominal when off).
    INSTRUMENTS_ON: frozenset[str] = frozenset()
    #: Mass memory size (bits).
    STORAGE_BITS: float = 32e9
    #: Set by the subclasses that have a power system (power_mode, power_fields use them).
    power: PowerSystem
    bat: ThermalNode

    def __init__(self, spacecraft: Spacecraft, *, seed: int, start_utc: datetime, emit: Callable[..., None],
                 faults: Any = None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        self.rng = random.Random(f"{self.spacecraft_name}/{seed}")
        self.t = 0.0
        self._bounds = {p.name: field_bounds(p) for p in spacecraft.housekeeping}
        self.instruments = {i.name: InstrumentState(i.name, *self.INSTRUMENTS.get(i.name, (5.0, 1.0)),
                                                    on=i.name in self.INSTRUMENTS_ON)
                            for i in spacecraft.instruments}
        self.obdh = Obdh(storage_bits=self.STORAGE_BITS)
        self.safe_reason = ""
        self._onboard0 = epoch_seconds_us(start_utc) / 1e6
        self._latched: set[str] = set()
        self._aux_bounds = aux_bounds(spacecraft)
        self._emit_raw = emit
        self.emit = self._emit_clamped

    def _emit_clamped(self, event: str, **aux: Any) -> None:
        """Raise an event with its numeric auxiliary data clamped into what the event's fields hold."""
        bounds = self._aux_bounds.get(event, {})
        for key, value in aux.items():
            if key in bounds and isinstance(value, (int, float)) and not isinstance(value, bool):
                lo, hi = bounds[key]
                aux[key] = min(hi, max(lo, value)) if value == value else lo
        self._emit_raw(event, **aux)

    # -- helpers for subclasses -------------------------------------------------------

    def fault_heat(self, node: str) -> float:
        return self.faults.extra_heat_w(node) if self.faults is not None else 0.0

    def capacity_factor(self) -> float:
        return self.faults.battery_capacity_factor(self.t) if self.faults is not None else 1.0

    def instrument_load_w(self) -> float:
        return sum(i.power_w for i in self.instruments.values() if i.on)

    def science_bits(self, dt: float) -> float:
        return sum(i.data_kbps for i in self.instruments.values() if i.on) * 1000.0 * dt

    def is_on(self, name: str) -> bool:
        return self.instruments[name].on

    def noise(self, sigma: float) -> float:
        return self.rng.gauss(0.0, sigma)

    def once(self, key: str, condition: bool, clear: bool) -> bool:
        """Edge detector with hysteresis: True the first time ``condition`` holds, re-armed when ``clear``."""
        if key in self._latched:
            if clear:
                self._latched.discard(key)
            return False
        if condition:
            self._latched.add(key)
            return True
        return False

    def onboard_delay(self, onboard_time: float) -> float:
        """Seconds from now until an on-board time (CUC seconds since 1958, or since start when small); >= 0."""
        now = self._onboard0 + self.t if onboard_time > _ABSOLUTE_ONBOARD_S else self.t
        return max(0.0, float(onboard_time) - now)

    def set_instrument(self, name: str, on: bool, *, emit: bool = True) -> None:
        inst = self.instruments[name]
        if inst.on == on:
            return
        inst.on = on
        inst.on_since = self.t
        self.instrument_changed(name, on)
        if emit:
            self.emit("instrument_power_changed", instrument=name, state="ON" if on else "OFF")

    def instrument_changed(self, name: str, on: bool) -> None:
        """Hook: an instrument was switched (stop its activity when off)."""

    def shed_loads(self) -> None:
        """Hook: stop mobility, burns, sessions... (instruments are switched off by the base class)."""

    def autonomous_safe_mode(self, reason: str) -> None:
        """The spacecraft protects itself (undervoltage, overtemperature, requested by a fault)."""
        if self.mode == "SAFE":
            return
        self.enter_safe_mode(reason)
        self.emit("safe_mode_entered", reason=reason)

    # -- MissionModel -----------------------------------------------------------------

    def housekeeping(self, packet: str) -> dict[str, Any]:
        try:
            bounds = self._bounds[packet]
        except KeyError:
            raise KeyError(f"{self.spacecraft_name} has no housekeeping packet {packet!r}; "
                           f"known: {', '.join(self._bounds)}") from None
        values = getattr(self, f"hk_{packet}")()
        out: dict[str, Any] = {}
        for name, lo, hi in bounds:
            value = values[name]
            if lo is not None:
                value = float(value)
                if value != value:  # NaN: a sensor that reads nothing reads the low end
                    value = lo
                value = min(hi, max(lo, value))  # type: ignore[type-var]
            out[name] = value
        return out

    def execute(self, command: str, arguments: Mapping[str, Any]) -> CommandOutcome:
        name = command.upper()
        if name in RUNTIME_COMMANDS:
            raise NotMine(name)
        handler = getattr(self, f"cmd_{name.lower()}", None)
        if handler is None:
            raise NotMine(name)
        outcome: CommandOutcome = handler(dict(arguments))
        if outcome.ok:
            self.obdh.tc_accepted += 1
        else:
            self.obdh.tc_rejected += 1
        return outcome

    def cmd_power_instrument(self, args: dict[str, Any]) -> CommandOutcome:
        name, state = str(args["instrument"]), str(args["state"])
        if name not in self.instruments:
            return refused(f"no instrument {name!r}", CONSTRAINT_VIOLATED)
        if state == "ON" and self.mode == "SAFE":
            return refused(f"{name} stays off in safe mode")
        if state == "ON" and self.power_mode() in ("LOAD_SHED", "SURVIVAL"):
            return refused(f"{name} stays off while loads are shed ({self.power_mode()})")
        self.set_instrument(name, state == "ON")
        return CommandOutcome(detail=f"{name} {state}")

    #: Battery state of charge (%) under which loads are shed / power saving begins; None: no such logic.
    LOAD_SHED_SOC: float | None = None
    POWER_SAVING_SOC: float | None = None

    def power_mode(self) -> str:
        if self.LOAD_SHED_SOC is None or self.POWER_SAVING_SOC is None:
            return "NOMINAL"
        soc = 100.0 * self.power.battery.soc
        return ("LOAD_SHED" if soc < self.LOAD_SHED_SOC
                else "POWER_SAVING" if soc < self.POWER_SAVING_SOC else "NOMINAL")

    def power_fields(self, pcdu_temp_c: float) -> dict[str, Any]:
        """The power subsystem's housekeeping common to every spacecraft with a PowerSystem."""
        return self.power.fields(self.rng, power_mode=self.power_mode(), battery_temp_c=self.bat.temperature_c,
                                 pcdu_temp_c=pcdu_temp_c)

    def enter_safe_mode(self, reason: str) -> None:
        super().enter_safe_mode(reason)
        self.safe_reason = reason
        for name, inst in self.instruments.items():
            if inst.on:
                self.set_instrument(name, False)
        self.shed_loads()

    def exit_safe_mode(self) -> None:
        super().exit_safe_mode()
        self.safe_reason = ""
