"""Chang'e-5 orbiter in its extended mission at Sun-Earth L1 (from March 2021).

Lissajous orbit about L1 (linearised CR3BP, the unstable mode left to station
keeping); never eclipsed, so the battery floats and the power margin is what
the arrays give beyond the load; attitude held by thrusters in a deadband (the
limit cycle is what the pointing error and pulse count show); a small thermal
network of the structure, sunlit panel, tank, valves and transponder.
Public: at SE-L1 in 2021.  Invented: the Lissajous amplitudes and phase,
propellant left, array and battery sizes, loads, conductances.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flightsw.missions.common import CONSTRAINT_VIOLATED, RESOURCE_BUSY, Array, BaseModel, Heater, PowerSystem, refused
from flightsw.model import CommandOutcome, register_model
from flightsw.physics import (
    AttitudeHold,
    Battery,
    L1Illumination,
    L1LissajousOrbit,
    SolarArray,
    ThermalNetwork,
    ThermalNode,
)
from flightsw.physics.ephemeris import C_KM_S
from flightsw.physics.thermal import SPACE_SINK_C

G0 = 9.80665
THRUST_N, ISP_S = 2 * 25.0, 220.0    # two 25 N thrusters fire for station keeping (invented)
DRY_MASS_KG = 2_300.0
L1_ARRIVAL_UTC = datetime(2021, 3, 15, tzinfo=UTC)


@register_model
class Change5OrbiterModel(BaseModel):
    spacecraft_name = "change5-orbiter"
    LOAD_SHED_SOC, POWER_SAVING_SOC = 60.0, 65.0

    DEFAULT_START_UTC = datetime(2021, 6, 1, tzinfo=UTC)
    INSTRUMENTS = {"MONITOR_CAMERA": (6.0, 50.0), "MICROWAVE_RADAR": (40.0, 1.0), "LASER_RANGER": (15.0, 0.5)}
    STORAGE_BITS = 8e9
    PLATFORM_W = 380.0
    DEADBAND_DEG = 0.1

    def __init__(self, spacecraft, *, seed, start_utc, emit, faults=None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        self.sun = L1Illumination(start_utc)
        self.orbit = L1LissajousOrbit(ay_km=600_000.0, az_km=300_000.0)
        self.t0 = (start_utc - L1_ARRIVAL_UTC).total_seconds()  # orbit phase runs from the arrival
        wings = [Array("wing_a", SolarArray(1.1)), Array("wing_b", SolarArray(1.1))]
        self.power = PowerSystem(wings, Battery(40.0, cells_series=8, internal_resistance_ohm=0.04, soc=0.85,
                                                max_charge_a=6.0, max_soc=0.88, temperature_c=15.0), bus_v=28.5)
        net = ThermalNetwork(SPACE_SINK_C)
        self.net = net
        self.structure = net.add(ThermalNode("avionics", 150_000.0, 18.0))
        self.panel = net.add(ThermalNode("sun_panel", 20_000.0, 45.0))
        self.tank = net.add(ThermalNode("propellant_tank", 120_000.0, 20.0))
        self.valves = net.add(ThermalNode("thruster_valves", 2_000.0, 15.0))
        self.xpdr = net.add(ThermalNode("transponder", 4_000.0, 20.0))
        self.bat = net.add(ThermalNode("battery", 30_000.0, 15.0))
        self.deck = net.add(ThermalNode("sensor_deck", 5_000.0, 5.0))
        net.link_environment("avionics", emissivity_area_m2=0.95)
        net.link_environment("sun_panel", emissivity_area_m2=0.9)
        net.link("avionics", "sun_panel", 0.5)
        for name, g, rad in (("propellant_tank", 0.5, 0.04), ("thruster_valves", 0.15, 0.01),
                             ("transponder", 2.0, 0.0), ("battery", 1.5, 0.0), ("sensor_deck", 0.3, 0.02)):
            net.link("avionics", name, g)
            if rad:
                net.link_environment(name, emissivity_area_m2=rad)
        self.heaters = {"tank": Heater(self.tank, 40.0, 17.0), "valves": Heater(self.valves, 8.0, 12.0),
                        "battery": Heater(self.bat, 15.0, 10.0)}
        self.hold = AttitudeHold(deadband_deg=self.DEADBAND_DEG, pulse_rate_deg_s=0.002, disturbance_deg_s2=2e-6,
                                 sensor_noise_deg=0.002, seed=self.rng.randrange(2**31))
        self.aocs_mode, self.slew_until = "SUN_POINT", 0.0
        self.propellant_kg, self.helium_mpa = 165.0, 14.0
        self.pulses0 = 212_000
        self.last_maneuver_t = -23 * 86400.0
        self.burn: dict[str, Any] | None = None
        self.margin_w = 0.0
        self._state = self.orbit.at(self.t0)

    def light_time_s(self) -> float:
        return self._state.earth_range_km / C_KM_S

    # -- physics ----------------------------------------------------------------------

    def step(self, t: float, dt: float) -> None:
        self.t = t
        if dt <= 0:
            return
        self._state = self.orbit.at(self.t0 + t)
        att = self.hold.step(dt)
        self._burn_step(dt)
        err = max(abs(e) for e in att.error_deg)
        if self.once("sun_lost", err > 2.0, err < 1.0):
            self.emit("sun_acquisition_lost", sun_angle=err)
        sun = self.sun.at(t)
        # Arrays face the Sun within the pointing error; Earth pointing tilts them by the Sun-Earth-probe angle.
        tilt = self._state.sep_angle_deg if self.aocs_mode == "EARTH_POINT" else 0.0
        cos_i = math.cos(math.radians(tilt + err))
        heater_w = sum(h.update(dt) for h in self.heaters.values())
        load = self.PLATFORM_W * (0.8 if self.mode == "SAFE" else 1.0) + heater_w + self.instrument_load_w() \
            + (30.0 if self.burn and self.burn["firing"] else 0.0)
        self.power.step(dt, sun.irradiance_wm2, [cos_i, cos_i], self.panel.temperature_c, load,
                        self.capacity_factor())
        available = sum(a.power_w for a in self.power.arrays)
        self.margin_w = available - load
        if self.once("power_negative", self.margin_w < 0.0, self.margin_w > 20.0):
            self.emit("power_negative", power_margin=self.margin_w)
        self.power.battery.temperature_c = self.bat.temperature_c
        self.structure.internal_w = 0.85 * (load - heater_w) + 60.0 + self.fault_heat("avionics")
        self.panel.internal_w = 0.35 * sun.irradiance_wm2 * cos_i * 0.6 + self.fault_heat("sun_panel")
        self.xpdr.internal_w = 25.0 + self.fault_heat("transponder")
        self.bat.internal_w = self.power.state.current_a ** 2 * 0.04 + self.fault_heat("battery")
        firing = bool(self.burn and self.burn["firing"])
        self.valves.internal_w = (5.0 if firing else 0.0) + self.fault_heat("thruster_valves")
        self.tank.extra_w = self.fault_heat("propellant_tank")
        self.deck.internal_w = 4.0 * sum(i.on for i in self.instruments.values()) + self.fault_heat("sensor_deck")
        self.net.step(dt)
        self.obdh.step(dt, self.rng, produced_bits=self.science_bits(dt), downlink_bps=16e3, edac_per_hour=1.0)
        self.obdh.cpu.update(15.0, dt)
        soc = 100.0 * self.power.battery.soc
        if self.once("battery_low", soc < 60.0, soc > 70.0):
            self.emit("battery_low", battery_voltage=self.power.state.voltage_v, battery_soc=soc)
            for name in self.instruments:
                self.set_instrument(name, False)
        if soc < 40.0:
            self.autonomous_safe_mode("UNDERVOLTAGE")

    def _burn_step(self, dt: float) -> None:
        b = self.burn
        if b is None or self.t < b["ignition"]:
            return
        if not b["firing"]:
            b["firing"] = True
            self.aocs_mode = "ORBIT_CONTROL"
        mass = DRY_MASS_KG + self.propellant_kg
        need = mass * (1 - math.exp(-(b["dv"] - b["achieved"]) / (ISP_S * G0)))
        dm = min(THRUST_N / (ISP_S * G0) * dt, need, self.propellant_kg)
        b["achieved"] += ISP_S * G0 * math.log(mass / (mass - dm)) if dm > 0 else 0.0
        b["used"] += dm
        self.propellant_kg -= dm
        self.helium_mpa -= dm * 0.02
        self.pulses0 += int(dt * 4)
        if b["achieved"] >= b["dv"] - 1e-6 or self.propellant_kg <= 0:
            self.burn = None
            self.aocs_mode = "SUN_POINT"
            self.last_maneuver_t = self.t
            self.emit("station_keeping_done", delta_v=b["achieved"], propellant_used=b["used"])

    def shed_loads(self) -> None:
        self.aocs_mode, self.burn = "SUN_SAFE", None

    def exit_safe_mode(self) -> None:
        super().exit_safe_mode()
        self.aocs_mode = "SUN_POINT"

    # -- housekeeping ---------------------------------------------------------------------

    def hk_power(self) -> dict[str, Any]:
        v = self.power_fields(self.structure.temperature_c + 5.0)
        v["power_margin"] = self.margin_w
        return v

    def hk_thermal(self) -> dict[str, Any]:
        n = self.noise
        return {
            "temp_propellant_tank": self.tank.temperature_c + n(0.05),
            "temp_thruster_valves": self.valves.temperature_c + n(0.1),
            "temp_avionics": self.structure.temperature_c + n(0.05),
            "temp_transponder": self.xpdr.temperature_c + n(0.1),
            "temp_sun_panel": self.panel.temperature_c + n(0.2),
            "heater_tank_duty": self.heaters["tank"].duty_percent,
            "heater_valves_duty": self.heaters["valves"].duty_percent,
            "heater_battery_duty": self.heaters["battery"].duty_percent,
        }

    def hk_attitude(self) -> dict[str, Any]:
        att = self.hold.state
        # Sun pointing in the rotating frame: the attitude turns once a year about the ecliptic pole.
        angle = 2 * math.pi * (self.t0 + self.t) / (365.25636 * 86400.0)
        if self.aocs_mode == "EARTH_POINT":
            angle += math.radians(self._state.sep_angle_deg)
        ex, ey, ez = (math.radians(e) / 2 for e in att.error_deg)
        q = (math.cos(angle / 2), ex, ey, math.sin(angle / 2) + ez)
        norm = math.sqrt(sum(x * x for x in q))
        slewing = self.t < self.slew_until
        values: dict[str, Any] = {
            "aocs_mode": self.aocs_mode,
            "star_tracker": "TRACKING",
            "attitude_q0": q[0] / norm, "attitude_q1": q[1] / norm, "attitude_q2": q[2] / norm,
            "attitude_q3": q[3] / norm,
            "rate_x": att.rate_deg_s[0] + (0.2 if slewing else 0.0), "rate_y": att.rate_deg_s[1],
            "rate_z": att.rate_deg_s[2],
            "pointing_error": max(abs(e) for e in att.error_deg) + (1.0 if slewing else 0.0),
        }
        for i, bias in enumerate((1200.0, -900.0, 600.0)):
            values[f"wheel_{i + 1}_speed"] = bias + 150.0 * math.sin(self.t / 20_000.0 + i) + self.noise(2.0)
        return values

    def hk_orbit(self) -> dict[str, Any]:
        s = self._state
        ahead = self.orbit.at(self.t0 + self.t + 60.0)
        vel = [(b - a) / 60.0 * 1000.0 for a, b in zip(s.position_km, ahead.position_km, strict=True)]
        x, y, _ = s.position_km
        return {
            "l1_x": s.position_km[0], "l1_y": s.position_km[1], "l1_z": s.position_km[2],
            "l1_vx": vel[0], "l1_vy": vel[1], "l1_vz": vel[2],
            "earth_distance": s.earth_range_km,
            "light_time": s.earth_range_km / C_KM_S,
            "orbit_phase": math.degrees(math.atan2(y / self.orbit.kappa, -x)) % 360.0,
            "days_since_maneuver": (self.t - self.last_maneuver_t) / 86400.0,
            "orbit_source": "ONBOARD_PROPAGATED",
        }

    def hk_propulsion(self) -> dict[str, Any]:
        return {
            "propellant_pressure": 1.55 + 0.002 * (self.tank.temperature_c - 20.0) + self.noise(0.002),
            "propellant_mass": self.propellant_kg,
            "helium_pressure": self.helium_mpa,
            "thruster_pulses": self.pulses0 + self.hold.state.thruster_pulses,
        }

    def hk_obdh(self) -> dict[str, Any]:
        return self.obdh.fields(self.rng, mode=self.mode, temperature_c=self.structure.temperature_c + 7.0,
                                activity=0.1)

    def hk_comms(self) -> dict[str, Any]:
        rng = self._state.earth_range_km
        return {
            "sband_transmitter": "ON",
            "sband_lock": "BIT_LOCK",
            "sband_rx_level": -112.0 - 20.0 * math.log10(rng / 1.5e6) + self.noise(0.4),
            "sband_tx_power": 20.0 + self.noise(0.1),
            "sband_data_rate": "KBPS_16",
            "sband_temperature": self.xpdr.temperature_c + self.noise(0.1),
        }

    def hk_rendezvous(self) -> dict[str, Any]:
        return {
            "camera_power": "ON" if self.is_on("MONITOR_CAMERA") else "OFF",
            "radar_power": "ON" if self.is_on("MICROWAVE_RADAR") else "OFF",
            "laser_ranger_power": "ON" if self.is_on("LASER_RANGER") else "OFF",
            "sensor_deck_temperature": self.deck.temperature_c + self.noise(0.1),
        }

    # -- commands -------------------------------------------------------------------------

    def cmd_station_keeping(self, args: dict[str, Any]) -> CommandOutcome:
        if self.mode == "SAFE":
            return refused("no station keeping in safe mode")
        if self.burn is not None:
            return refused("a manoeuvre is already planned", RESOURCE_BUSY)
        dv = float(args["delta_v"])
        mass = DRY_MASS_KG + self.propellant_kg
        need = mass * (1 - math.exp(-dv / (ISP_S * G0)))
        if need > self.propellant_kg - 5.0:
            return refused(f"needs {need:.1f} kg, {self.propellant_kg:.1f} kg left", CONSTRAINT_VIOLATED)
        delay = self.onboard_delay(float(args["ignition_time"]))
        burn_s = need / (THRUST_N / (ISP_S * G0))
        self.burn = {"dv": dv, "ignition": self.t + delay, "firing": False, "achieved": 0.0, "used": 0.0}
        return CommandOutcome(duration=delay + burn_s + 1.0, progress_step=max(1.0, (delay + burn_s) / 10),
                              data={"burn_s": burn_s, "propellant_kg": need})

    def cmd_set_attitude_mode(self, args: dict[str, Any]) -> CommandOutcome:
        if self.mode == "SAFE":
            return refused("attitude stays sun-safe in safe mode")
        if self.burn is not None and self.burn["firing"]:
            return refused("a burn is under way", RESOURCE_BUSY)
        mode = str(args["mode"])
        slew = 0.0
        if mode != self.aocs_mode:
            slew = max(10.0, self._state.sep_angle_deg / 0.2) if "EARTH_POINT" in (mode, self.aocs_mode) else 10.0
        self.aocs_mode, self.slew_until = mode, self.t + slew
        return CommandOutcome(duration=slew, progress_step=max(1.0, slew / 5))
