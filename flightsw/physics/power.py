"""Electrical power: solar array and battery.

Solar array output::

    P = irradiance * cos(incidence) * area * efficiency * dust_factor
        * (1 + temp_coeff * (T - T_ref)) * other_losses

``dust_factor`` decays exponentially per sol (Mars Pathfinder measured ~0.28 %
per sol, MER arrays 0.1-0.3 %/sol; Zhurong's output fell enough over a year to
end the mission in dusty winter) and a cleaning event restores part of the loss.

Battery: coulomb counting on state of charge; terminal voltage is the open
circuit voltage from a Li-ion SOC curve plus I*R (I > 0 charging).  A net power
request is turned into a current by solving ``P = I * (OCV + I*R)``, then clipped
to the charge/discharge limits; what cannot go into the battery is reported as
shunted (array power dumped) and what it cannot supply as unmet load.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

MARS_SOL_S = 88775.244147

# Li-ion cell open-circuit voltage vs state of charge (typical NMC/NCA space cell).
LI_ION_OCV: tuple[tuple[float, float], ...] = (
    (0.00, 3.00), (0.05, 3.30), (0.10, 3.45), (0.20, 3.56), (0.30, 3.63), (0.40, 3.69), (0.50, 3.75),
    (0.60, 3.82), (0.70, 3.90), (0.80, 3.98), (0.90, 4.06), (1.00, 4.15),
)


@dataclass
class SolarArray:
    """A solar array's electrical output for given illumination."""

    area_m2: float
    efficiency: float = 0.28                 # triple-junction GaAs at beginning of life
    temp_coeff_per_k: float = -0.0025        # relative power change per K (GaAs TJ ~ -0.2..-0.3 %/K)
    ref_temp_c: float = 28.0
    other_losses: float = 0.90               # wiring, mismatch, packing
    dust_factor: float = 1.0
    dust_loss_per_sol: float = 0.0           # fraction of the remaining output lost per sol
    power_w: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.area_m2 <= 0 or not 0 < self.efficiency <= 1:
            raise ValueError(f"solar array needs area > 0 and 0 < efficiency <= 1, got {self.area_m2}, {self.efficiency}")

    def output_w(self, irradiance_wm2: float, cos_incidence: float = 1.0, temperature_c: float | None = None) -> float:
        """Electrical power (W) for the given sun and panel temperature."""
        if irradiance_wm2 <= 0 or cos_incidence <= 0:
            return 0.0
        temp = self.ref_temp_c if temperature_c is None else temperature_c
        derate = max(0.0, 1.0 + self.temp_coeff_per_k * (temp - self.ref_temp_c))
        return (irradiance_wm2 * min(cos_incidence, 1.0) * self.area_m2 * self.efficiency * self.dust_factor
                * derate * self.other_losses)

    def step(self, dt: float, irradiance_wm2: float = 0.0, cos_incidence: float = 1.0,
             temperature_c: float | None = None) -> float:
        """Advance dust accumulation by ``dt`` seconds and return the power now."""
        if self.dust_loss_per_sol:
            self.dust_factor *= math.exp(math.log1p(-self.dust_loss_per_sol) * dt / MARS_SOL_S)
        self.power_w = self.output_w(irradiance_wm2, cos_incidence, temperature_c)
        return self.power_w

    def clean(self, recovered_fraction: float) -> float:
        """A dust-cleaning event (wind gust, panel tilt/shake): recover part of the lost output."""
        if not 0 <= recovered_fraction <= 1:
            raise ValueError(f"recovered fraction must be in [0, 1], got {recovered_fraction}")
        self.dust_factor += (1.0 - self.dust_factor) * recovered_fraction
        return self.dust_factor


@dataclass(frozen=True)
class BatteryState:
    soc: float            # 0..1 of the (degraded) capacity
    voltage_v: float      # terminal
    current_a: float      # > 0 charging, < 0 discharging
    power_w: float        # into the battery (terminal), > 0 charging
    shunted_w: float      # surplus the battery could not take
    unmet_w: float        # load the battery could not supply
    temperature_c: float


class Battery:
    """A Li-ion battery of ``cells_series`` cells, coulomb-counted."""

    def __init__(self, capacity_ah: float, *, cells_series: int = 8, internal_resistance_ohm: float = 0.08,
                 soc: float = 0.8, max_charge_a: float | None = None, max_discharge_a: float | None = None,
                 min_soc: float = 0.05, max_soc: float = 1.0, charge_efficiency: float = 0.98,
                 ocv_curve: tuple[tuple[float, float], ...] = LI_ION_OCV, temperature_c: float = 20.0) -> None:
        if capacity_ah <= 0 or cells_series < 1 or internal_resistance_ohm < 0:
            raise ValueError("battery needs capacity > 0 Ah, >= 1 cell, resistance >= 0")
        if not 0 <= min_soc < max_soc <= 1 or not 0 <= soc <= 1:
            raise ValueError(f"battery SOC bounds must satisfy 0 <= min_soc < max_soc <= 1 and 0 <= soc <= 1, "
                             f"got min_soc={min_soc}, max_soc={max_soc}, soc={soc}")
        self.nameplate_ah = capacity_ah
        self.cells_series = cells_series
        self.r_ohm = internal_resistance_ohm
        self.charge_ah = soc * capacity_ah
        self.max_charge_a = max_charge_a if max_charge_a is not None else 0.5 * capacity_ah   # C/2
        self.max_discharge_a = max_discharge_a if max_discharge_a is not None else 1.0 * capacity_ah  # 1C
        self.min_soc = min_soc
        self.max_soc = max_soc
        self.charge_efficiency = charge_efficiency
        self._soc_pts = [s for s, _ in ocv_curve]
        self._v_pts = [v for _, v in ocv_curve]
        self.capacity_factor = 1.0  # capacity fade (battery-degradation fault, ageing)
        self.temperature_c = temperature_c
        self.energy_in_j = 0.0      # terminal energy into the battery (for balance checks)
        self.loss_j = 0.0           # I^2 R heat
        self.state = self._state(0.0, 0.0, 0.0)

    @property
    def capacity_ah(self) -> float:
        return self.nameplate_ah * self.capacity_factor

    @property
    def soc(self) -> float:
        return min(1.0, max(0.0, self.charge_ah / self.capacity_ah))

    def set_capacity_factor(self, factor: float) -> None:
        """Capacity fade; the charge held is clipped to the smaller capacity."""
        if not 0 < factor <= 1:
            raise ValueError(f"capacity factor must be in (0, 1], got {factor}")
        self.capacity_factor = factor
        self.charge_ah = min(self.charge_ah, self.capacity_ah)

    def ocv(self, soc: float | None = None) -> float:
        """Open-circuit voltage of the pack (V) by linear interpolation on the cell curve."""
        s = min(1.0, max(0.0, self.soc if soc is None else soc))
        i = min(max(bisect.bisect_right(self._soc_pts, s) - 1, 0), len(self._soc_pts) - 2)
        s0, s1 = self._soc_pts[i], self._soc_pts[i + 1]
        v = self._v_pts[i] + (self._v_pts[i + 1] - self._v_pts[i]) * (s - s0) / (s1 - s0)
        return v * self.cells_series

    def current_for_power(self, power_w: float) -> float:
        """Current (A) that makes the terminal power ``power_w``: P = I (OCV + I R)."""
        ocv = self.ocv()
        if self.r_ohm == 0 or power_w == 0:
            return power_w / ocv
        disc = ocv * ocv + 4 * self.r_ohm * power_w
        if disc < 0:  # more than the battery can deliver at all: max power point
            return -ocv / (2 * self.r_ohm)
        return (-ocv + math.sqrt(disc)) / (2 * self.r_ohm)

    def _state(self, current: float, shunted: float, unmet: float, ocv: float | None = None) -> BatteryState:
        v = (self.ocv() if ocv is None else ocv) + current * self.r_ohm
        return BatteryState(self.soc, v, current, current * v, shunted, unmet, self.temperature_c)

    def step(self, net_power_w: float, dt: float) -> BatteryState:
        """Apply ``net_power_w`` (generation minus load; > 0 charges) for ``dt`` seconds."""
        if dt <= 0:
            return self.state
        current = self.current_for_power(net_power_w)
        # Rate limits, then energy limits: the SOC window for this step.
        current = max(-self.max_discharge_a, min(self.max_charge_a, current))
        if current > 0:
            room_ah = max(0.0, self.max_soc * self.capacity_ah - self.charge_ah)
            current = min(current, room_ah * 3600.0 / (dt * self.charge_efficiency))
        else:
            avail_ah = max(0.0, self.charge_ah - self.min_soc * self.capacity_ah)
            current = max(current, -avail_ah * 3600.0 / dt)
        ocv = self.ocv()
        terminal_w = current * (ocv + current * self.r_ohm)
        shunted = max(0.0, net_power_w - terminal_w) if net_power_w > 0 else 0.0
        unmet = max(0.0, terminal_w - net_power_w) if net_power_w < 0 else 0.0
        self.charge_ah += current * dt / 3600.0 * (self.charge_efficiency if current > 0 else 1.0)
        self.charge_ah = min(max(self.charge_ah, 0.0), self.capacity_ah)
        self.energy_in_j += terminal_w * dt
        self.loss_j += current * current * self.r_ohm * dt
        # Terminal values of this step (at the OCV the current was solved for).
        self.state = self._state(current, shunted, unmet, ocv)
        return self.state
