"""ILRS lander: a notional long-lived station at the lunar south pole (85 S).

The Sun circles the horizon once per synodic month, a few degrees up at most;
a sun-tracking mast array and a flat deck array by day, an RTG day and night,
a battery for peaks.  At dusk the station sheds its science loads, opens the
valve of the radioisotope heater loop into the cabin and closes the radiator's
heat switch; it wakes when the Sun is back above the wake elevation.  The Earth
hangs ~5 deg above the horizon and swings with the libration in latitude, so the
X-band link has its own rise and set.  Seismometer with background noise and
seeded moonquakes; heat-flow probe hammered into the regolith (Apollo-like heat
flow); neutron, dose and dust sensors.  Everything is invented (no such station
flies yet); the lunar-night figures follow Chang'e-3/4 and Apollo heat-flow data.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flightsw.missions.common import (
    CONSTRAINT_VIOLATED,
    MOON_LIGHT_TIME_S,
    RESOURCE_BUSY,
    Array,
    BaseModel,
    Heater,
    PowerSystem,
    lunar_sink_c,
    refused,
)
from flightsw.model import CommandOutcome, register_model
from flightsw.physics import (
    Battery,
    LunarSurfaceIllumination,
    SolarArray,
    ThermalNetwork,
    ThermalNode,
    lunar_surface_temperature_c,
)

DRACONIC_MONTH_S = 27.212221 * 86400.0    # libration in latitude
ANOMALISTIC_MONTH_S = 27.554550 * 86400.0  # libration in longitude
PU238_HALF_LIFE_S = 87.7 * 365.25 * 86400.0
STROKE_S = 3.5
NIGHT_LOADS = frozenset({"SEISMOMETER"})  # what runs through the night on RTG power


@register_model
class IlrsLanderModel(BaseModel):
    spacecraft_name = "ilrs-lander"
    LOAD_SHED_SOC, POWER_SAVING_SOC = 40.0, 45.0

    DEFAULT_START_UTC = datetime(2030, 1, 10, tzinfo=UTC)
    INSTRUMENTS = {"SEISMOMETER": (3.0, 0.3), "HEAT_FLOW_PROBE": (6.0, 0.05), "NEUTRON_SPECTROMETER": (8.0, 0.2),
                   "DOSIMETER": (2.0, 0.05), "DUST_ANALYSER": (4.0, 0.1), "PANORAMIC_CAMERA": (10.0, 200.0)}
    INSTRUMENTS_ON = frozenset({"SEISMOMETER", "NEUTRON_SPECTROMETER", "DOSIMETER", "DUST_ANALYSER"})
    STORAGE_BITS = 64e9
    AVIONICS_W = 40.0

    def __init__(self, spacecraft, *, seed, start_utc, emit, faults=None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        self.sun = LunarSurfaceIllumination(start_utc, latitude_deg=-85.0, local_time_h=9.0)
        self.power = PowerSystem([Array("mast", SolarArray(0.62)), Array("deck", SolarArray(1.2))],
                                 Battery(40.0, cells_series=8, internal_resistance_ohm=0.04, soc=0.85,
                                         max_charge_a=8.0, max_soc=0.88, temperature_c=10.0), bus_v=28.2)
        self.rtg_p0, self.rtg_hot, self.rtg_cold, self.rtg_w = 112.0, 520.0, 140.0, 112.0
        net = ThermalNetwork(lambda t: self.sink_c)
        self.net = net
        self.sink_c = -120.0
        self.cabin = net.add(ThermalNode("electronics_cabin", 40_000.0, 15.0))
        self.radiator = net.add(ThermalNode("radiator", 6_000.0, -10.0))
        self.vault = net.add(ThermalNode("seismometer_vault", 3_000.0, -15.0))
        self.bat = net.add(ThermalNode("battery", 20_000.0, 12.0))
        net.link("electronics_cabin", "radiator", 5.0)
        self.heat_switch = net.links[-1]
        net.link_environment("radiator", emissivity_area_m2=0.8)
        net.link_environment("electronics_cabin", conductance_w_per_k=0.05)
        net.link("electronics_cabin", "battery", 1.0)
        net.link("electronics_cabin", "seismometer_vault", 0.03)
        net.link_environment("seismometer_vault", conductance_w_per_k=0.015)
        self.heaters = {"battery": Heater(self.bat, 10.0, 2.0), "cabin": Heater(self.cabin, 25.0, -12.0),
                        "seismometer": Heater(self.vault, 4.0, -22.0)}
        self.station_mode, self.mode_since = "DAY_NOMINAL", 0.0
        self.sleep_el, self.wake_el = 0.0, 1.0
        self.night_start, self.night_min_cabin = 0.0, self.cabin.temperature_c
        self.resume: set[str] = set()
        self.sun_el = self.sun.at(0.0).elevation_deg
        self.regolith_c = lunar_surface_temperature_c(self.sun_el)
        self.earth_phase = math.pi / 2  # Earth near its highest at the start (invented phase)
        self.gain, self.trigger = "X4", 50.0
        self.quakes: list[tuple[float, float, float]] = []   # (start, peak nm/s, decay s)
        self.tilt0 = (self.rng.uniform(-0.5, 0.5), self.rng.uniform(-0.5, 0.5))
        self.probe_depth = 0.0
        self.hammer: dict[str, float] | None = None
        self.dust0 = 12.0
        self.obdh.stored_bits = 0.1 * self.STORAGE_BITS
        self.load_w, self.rhu_w = self.AVIONICS_W + 70.0, 45.0

    # -- geometry -------------------------------------------------------------------------

    def earth_elevation(self, t: float | None = None) -> float:
        t = self.t if t is None else t
        return 5.0 + 6.68 * math.sin(2 * math.pi * t / DRACONIC_MONTH_S + self.earth_phase)

    def light_time_s(self) -> float:
        return MOON_LIGHT_TIME_S

    # -- physics --------------------------------------------------------------------------

    def step(self, t: float, dt: float) -> None:
        self.t = t
        if dt <= 0:
            return
        sun = self.sun.at(t)
        self.sun_el = sun.elevation_deg
        self.regolith_c = lunar_surface_temperature_c(self.sun_el)
        self.sink_c = lunar_sink_c(self.regolith_c)
        self._station_mode()
        self._seismic(dt)
        self._hammer_step(dt)
        night = self.station_mode == "NIGHT_SURVIVAL"
        # Night: heat switch open, RHU loop into the cabin.  Day: heat to the radiator.
        self.heat_switch.conductance = 4.0 if night else 5.0
        self.rhu_w = 110.0 if night else 45.0
        # RTG: Pu-238 decay and the thermocouples' temperature difference (colder fins at night).
        self.rtg_cold = 140.0 + 0.12 * (self.regolith_c + 100.0)
        self.rtg_hot = 520.0 + 0.5 * math.sin(t / 7200.0)
        decay = math.exp(-math.log(2) * t / PU238_HALF_LIFE_S)
        self.rtg_w = self.rtg_p0 * decay * (self.rtg_hot - self.rtg_cold) / (520.0 - 140.0)
        link = self.earth_elevation() > 0.5
        heater_w = sum(h.update(dt) for h in self.heaters.values())
        radio_w = (45.0 if night else 70.0) if link else 8.0
        avionics = self.AVIONICS_W * (0.75 if night else 1.0)
        load = avionics + radio_w + heater_w + self.instrument_load_w()
        self.power.step(dt, sun.irradiance_wm2, [math.cos(math.radians(self.sun_el)) if sun.lit else 0.0,
                                                  sun.sin_elevation], 30.0 if sun.lit else -100.0,
                        load - self.rtg_w, self.capacity_factor())
        self.load_w = load
        self.power.battery.temperature_c = self.bat.temperature_c
        self.cabin.internal_w = 0.9 * (avionics + radio_w + self.instrument_load_w()) + self.rhu_w \
            + self.fault_heat("electronics_cabin")
        self.radiator.internal_w = 0.15 * sun.irradiance_wm2 * sun.sin_elevation + self.fault_heat("radiator")
        self.vault.internal_w = (2.0 if self.is_on("SEISMOMETER") else 0.0) + self.fault_heat("seismometer_vault")
        self.bat.internal_w = self.power.state.current_a ** 2 * 0.04 + self.fault_heat("battery")
        self.net.step(dt)
        if night:
            self.night_min_cabin = min(self.night_min_cabin, self.cabin.temperature_c)
        self.obdh.step(dt, self.rng, produced_bits=self.science_bits(dt), downlink_bps=2e3 if link else 0.0,
                       edac_per_hour=0.6)
        self.obdh.cpu.update(12.0, dt)
        soc = 100.0 * self.power.battery.soc
        if self.once("battery_low", soc < 40.0, soc > 50.0):
            self.emit("battery_low", battery_voltage=self.power.state.voltage_v, battery_soc=soc)
        if self.once("rtg_low", self.rtg_w < 90.0, self.rtg_w > 95.0):
            self.emit("rtg_output_low", rtg_power=self.rtg_w, rtg_hot_junction=self.rtg_hot)
        if soc < 20.0:
            self.autonomous_safe_mode("UNDERVOLTAGE")
        if self.cabin.temperature_c > 55.0:
            self.autonomous_safe_mode("OVERTEMPERATURE")

    def _station_mode(self) -> None:
        el, mode = self.sun_el, self.station_mode
        if self.mode == "SAFE":
            self.station_mode = "SAFE"
            return
        if mode == "SAFE":  # back from safe mode: pick up the sun where it is
            mode = self.station_mode = "DAY_NOMINAL" if el > self.wake_el else "NIGHT_SURVIVAL"
            if mode == "NIGHT_SURVIVAL":
                self.night_start, self.night_min_cabin = self.t, self.cabin.temperature_c
        if mode in ("DAY_NOMINAL", "DAWN_WAKE") and el < self.sleep_el + 1.0:
            self._set_mode("DUSK")
        elif mode == "DUSK" and el < self.sleep_el:
            self._set_mode("NIGHT_SURVIVAL")
            self.night_start, self.night_min_cabin = self.t, self.cabin.temperature_c
            self.resume = {n for n, i in self.instruments.items() if i.on} - NIGHT_LOADS
            for name in self.resume:
                self.set_instrument(name, False)
            self.emit("lunar_night_entered", battery_soc=100.0 * self.power.battery.soc, rtg_power=self.rtg_w)
        elif mode == "DUSK" and el > self.sleep_el + 1.5:
            self._set_mode("DAY_NOMINAL")
        elif mode == "NIGHT_SURVIVAL" and el > self.wake_el:
            self._set_mode("DAWN_WAKE")
            self.emit("dawn_wake", night_hours=(self.t - self.night_start) / 3600.0,
                      min_cabin_temperature=self.night_min_cabin)
        elif mode == "DAWN_WAKE" and self.t - self.mode_since > 6 * 3600.0 and el > self.wake_el:
            self._set_mode("DAY_NOMINAL")
            for name in sorted(self.resume):
                self.set_instrument(name, True)
            self.resume = set()

    def _set_mode(self, mode: str) -> None:
        self.station_mode, self.mode_since = mode, self.t

    def _seismic(self, dt: float) -> None:
        if not self.is_on("SEISMOMETER"):
            return
        # Thermal moonquakes cluster when the surface heats or cools: more of them near sunrise and sunset.
        rate_per_day = 1.0 + 4.0 * math.exp(-(self.sun_el / 1.5) ** 2)
        if self.rng.random() < rate_per_day * dt / 86400.0:
            peak = min(900.0, 60.0 * math.exp(self.rng.gauss(0.0, 0.8)))
            decay = self.rng.uniform(300.0, 1500.0)
            self.quakes.append((self.t, peak, decay))
            if peak >= self.trigger:
                self.emit("moonquake_detected", peak_velocity=peak,
                          duration=decay * math.log(peak / 5.0))
        self.quakes = [q for q in self.quakes if self.t - q[0] < 8 * q[2]]

    def _hammer_step(self, dt: float) -> None:
        h = self.hammer
        if h is None:
            return
        strokes = int(min(h["left"], dt / STROKE_S + h.setdefault("carry", 0.0)))
        h["carry"] = (dt / STROKE_S + h["carry"]) % 1.0
        for _ in range(strokes):
            # Penetration slows with depth (denser regolith) and varies with the grains hit.
            self.probe_depth += 0.0015 * (1.0 - self.probe_depth / 3.5) * self.rng.uniform(0.6, 1.4)
            if self.probe_depth >= h["max"]:
                self.probe_depth = h["max"]
                h["left"] = 0
                break
            h["left"] -= 1
        if h["left"] <= 0 or not self.is_on("HEAT_FLOW_PROBE"):
            self.hammer = None

    def shed_loads(self) -> None:
        self.hammer = None

    # -- housekeeping ---------------------------------------------------------------------

    def hk_power(self) -> dict[str, Any]:
        v = self.power_fields(self.cabin.temperature_c + 5.0)
        v["bus_current"] = self.load_w / self.power.bus_v + self.noise(0.01)
        v.update({
            "station_mode": self.station_mode,
            "rtg_state": "NOMINAL",
            "rtg_power": self.rtg_w + self.noise(0.1),
            "rtg_voltage": 28.2 + self.noise(0.02),
            "rtg_hot_junction": self.rtg_hot + self.noise(0.3),
            "rtg_cold_junction": self.rtg_cold + self.noise(0.3),
            "sun_elevation": self.sun_el,
        })
        return v

    def hk_thermal(self) -> dict[str, Any]:
        night = self.station_mode == "NIGHT_SURVIVAL"
        return {
            "temp_electronics_cabin": self.cabin.temperature_c + self.noise(0.05),
            "temp_radiator": self.radiator.temperature_c + self.noise(0.1),
            "temp_rhu_loop": self.cabin.temperature_c + self.rhu_w / 4.0 + self.noise(0.1),
            "temp_seismometer_vault": self.vault.temperature_c + self.noise(0.02),
            "temp_regolith_surface": self.regolith_c + self.noise(0.3),
            "heater_battery_duty": self.heaters["battery"].duty_percent,
            "heater_cabin_duty": self.heaters["cabin"].duty_percent,
            "heater_seismometer_duty": self.heaters["seismometer"].duty_percent,
            "rhu_loop_valve": "OPEN" if night else "CLOSED",
            "rhu_heat": (110.0 if night else 45.0) + self.noise(0.2),
        }

    def hk_obdh(self) -> dict[str, Any]:
        return self.obdh.fields(self.rng, mode=self.mode, temperature_c=self.cabin.temperature_c + 6.0, activity=0.1)

    def hk_comms(self) -> dict[str, Any]:
        el = self.earth_elevation()
        link = el > 0.5
        night = self.station_mode == "NIGHT_SURVIVAL"
        return {
            "xband_transmitter": "ON" if link else "OFF",
            "xband_lock": "BIT_LOCK" if link else "NO_LOCK",
            "xband_rx_level": -118.0 + 0.3 * el + self.noise(0.4) if link else -140.0,
            "xband_tx_power": 30.0 + self.noise(0.1) if link else 30.0,
            "xband_data_rate": "KBPS_2" if night else "KBPS_64",
            "xband_temperature": self.cabin.temperature_c + (6.0 if link else 0.0) + self.noise(0.1),
            "earth_elevation": el,
            "hga_azimuth": (7.9 * math.sin(2 * math.pi * self.t / ANOMALISTIC_MONTH_S)) % 360.0,
            "hga_elevation": el,
            "uplink_count": self.obdh.tc_accepted + self.obdh.tc_rejected,
        }

    def hk_geophysics(self) -> dict[str, Any]:
        on = self.is_on("SEISMOMETER")
        day = self.sun_el > 0
        floor = 20.0 if day else 5.0   # thermal noise of the day
        signal = [self.noise(floor) for _ in range(3)]
        for start, peak, decay in self.quakes:
            age = self.t - start
            amp = peak * math.exp(-age / decay)
            for i, w in enumerate((1.0, 0.8, 0.6)):
                signal[i] += amp * w * math.sin(2 * math.pi * age / (1.3 + 0.4 * i))
        tilt = self.tilt0[0] + 0.02 * math.sin(2 * math.pi * self.t / 2_551_443.0)
        probe = self.is_on("HEAT_FLOW_PROBE")
        deployed = self.probe_depth > 0.3
        shallow = -150.0 + 0.1 * (self.regolith_c + 120.0)
        return {
            "seismometer_power": "ON" if on else "OFF",
            "seismic_east": signal[0] if on else 0.0,
            "seismic_north": signal[1] if on else 0.0,
            "seismic_up": signal[2] if on else 0.0,
            "seismometer_tilt": tilt,
            "heat_probe_power": "ON" if probe else "OFF",
            "heat_probe_depth": self.probe_depth,
            "regolith_temp_shallow": shallow + self.noise(0.05),
            # Below the thermal skin depth: a steady gradient of q/k (18 mW/m2, k ~ 0.01 W/m/K).
            "regolith_temp_deep": -154.0 + 1.8 * max(self.probe_depth, 0.5) + self.noise(0.02),
            "heat_flow": 18.0 + self.noise(0.5) if probe and deployed else 0.0,
        }

    def hk_environment(self) -> dict[str, Any]:
        day = self.sun_el > 0
        on = self.is_on
        return {
            "neutron_power": "ON" if on("NEUTRON_SPECTROMETER") else "OFF",
            "thermal_neutron_rate": max(0.0, 40.0 + self.noise(6.0)) if on("NEUTRON_SPECTROMETER") else 0.0,
            # Hydrogen (water ice) in the polar regolith moderates the epithermal flux.
            "epithermal_neutron_rate": max(0.0, 85.0 + self.noise(9.0)) if on("NEUTRON_SPECTROMETER") else 0.0,
            "dosimeter_power": "ON" if on("DOSIMETER") else "OFF",
            "dose_rate": 13.2 + self.noise(0.4) if on("DOSIMETER") else 0.0,   # Chang'e-4 LND level
            "dust_power": "ON" if on("DUST_ANALYSER") else "OFF",
            "dust_deposition": self.dust0 + 0.02 * self.t / 86400.0,
            "surface_field": (8.0 if day else -4.0) - 40.0 * math.exp(-(self.sun_el / 0.7) ** 2) + self.noise(0.5)
            if on("DUST_ANALYSER") else 0.0,
            "camera_power": "ON" if on("PANORAMIC_CAMERA") else "OFF",
            "camera_temperature": 0.8 * self.cabin.temperature_c + 0.2 * self.regolith_c + self.noise(0.1),
        }

    # -- commands -------------------------------------------------------------------------

    def cmd_power_instrument(self, args: dict[str, Any]) -> CommandOutcome:
        if args.get("state") == "ON" and self.station_mode == "NIGHT_SURVIVAL" and args.get("instrument") not in \
                NIGHT_LOADS:
            return refused(f"{args.get('instrument')} stays off in the lunar night")
        return super().cmd_power_instrument(args)

    def cmd_set_heater_setpoint(self, args: dict[str, Any]) -> CommandOutcome:
        heater = {"BATTERY": "battery", "CABIN": "cabin", "SEISMOMETER": "seismometer"}[str(args["heater"])]
        self.heaters[heater].setpoint_c = float(args["setpoint"])
        return CommandOutcome(detail=f"{heater} heater set point {float(args['setpoint']):g} degC")

    def cmd_set_night_thresholds(self, args: dict[str, Any]) -> CommandOutcome:
        self.sleep_el, self.wake_el = float(args["sleep_elevation"]), float(args["wake_elevation"])
        return CommandOutcome()

    def cmd_seismometer_gain(self, args: dict[str, Any]) -> CommandOutcome:
        if not self.is_on("SEISMOMETER"):
            return refused("the seismometer is off")
        self.gain, self.trigger = str(args["gain"]), float(args["trigger"])
        return CommandOutcome()

    def cmd_heat_probe_hammer(self, args: dict[str, Any]) -> CommandOutcome:
        if self.mode == "SAFE":
            return refused("no hammering in safe mode")
        if not self.is_on("HEAT_FLOW_PROBE"):
            return refused("the heat-flow probe is off")
        if self.hammer is not None:
            return refused("the probe is already hammering", RESOURCE_BUSY)
        strokes, depth = int(args["strokes"]), float(args["max_depth"])
        if self.probe_depth >= depth:
            return refused(f"the probe is already at {self.probe_depth:.3f} m", CONSTRAINT_VIOLATED)
        self.hammer = {"left": strokes, "max": depth}
        return CommandOutcome(duration=strokes * STROKE_S, progress_step=max(STROKE_S, strokes * STROKE_S / 10))
