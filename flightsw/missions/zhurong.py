"""Zhurong, the Tianwen-1 Mars rover in Utopia Planitia.

Sol cycle from the Mars24 Sun at the landing site; four horizontal panels that
lose output to dust; a Li-ion battery on a 28.5 V bus; a thermal network of the
warm electronics box wrapped in the n-undecane heat store that the collector
window melts by day; six-wheel mobility over seeded terrain; six instruments
with power states and data rates; UHF relay passes of the orbiter.
Public: site, sol, n-undecane, ~1.921 km total odometry by May 2022 (used to
set the odometer at the start date).  Invented: sizes, loads, conductances.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flightsw.missions.common import RESOURCE_BUSY, Array, BaseModel, Ema, Heater, PowerSystem, refused
from flightsw.model import CommandOutcome, register_model
from flightsw.physics import (
    Battery,
    MarsSurfaceIllumination,
    PhaseChangeNode,
    RoverMobility,
    SolarArray,
    ThermalNetwork,
    ThermalNode,
    mars_surface_temperature_c,
)
from flightsw.physics.rover import ZHURONG_TOTAL_ODOMETRY_M
from protocols.missions.zhurong import DRIVE_SPEED_FACTOR, TURN_RATE_DEG_S, drive_duration

FIRST_DRIVE_UTC = datetime(2021, 5, 22, 2, 40, tzinfo=UTC)
LAST_DRIVE_UTC = datetime(2022, 5, 20, tzinfo=UTC)   # dormancy began around then
RELAY_PERIOD_S = 8.2 * 3600.0                         # the orbiter's relay orbit period
RELAY_PASS_S = 600.0
WHEEL_NAMES = ("LF", "LM", "LR", "RF", "RM", "RR")


def odometer_at(when: datetime) -> float:
    """Odometer for a start date: linear between the first drive and the 1921 m total (an estimate)."""
    span = (LAST_DRIVE_UTC - FIRST_DRIVE_UTC).total_seconds()
    done = (when - FIRST_DRIVE_UTC).total_seconds() / span
    return ZHURONG_TOTAL_ODOMETRY_M * min(1.0, max(0.0, done))


@register_model
class ZhurongModel(BaseModel):
    spacecraft_name = "zhurong"

    DEFAULT_START_UTC = FIRST_DRIVE_UTC
    INSTRUMENTS = {"ROPER": (10.0, 5.0), "ROMAG": (2.0, 0.2), "MCS": (3.0, 0.5), "MARSCODE": (25.0, 8.0),
                   "MSCAM": (8.0, 40.0), "NATECAM": (7.0, 30.0)}
    # RoPeR sounds in the background as it did on traverses (its mode reads IDLE, a warning, when off).
    INSTRUMENTS_ON = frozenset({"ROPER", "ROMAG", "MCS"})
    STORAGE_BITS = 32e9
    AVIONICS_W = 30.0
    MOTOR_BUS_V = 12.0

    def __init__(self, spacecraft, *, seed, start_utc, emit, faults=None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        self.sun = MarsSurfaceIllumination(start_utc)
        panels = [Array(f"panel_{i}", SolarArray(0.72, dust_loss_per_sol=0.002)) for i in range(1, 5)]
        self.panel_factor = [1.0, 0.985, 0.97, 0.99]  # slight tilts of the wings
        self.power = PowerSystem(panels, Battery(60.0, cells_series=8, internal_resistance_ohm=0.03, soc=0.8,
                                                 max_charge_a=8.0, max_soc=0.88, temperature_c=5.0), bus_v=28.5)
        self._build_thermal()
        self.rover = RoverMobility(seed=seed, odometer_m=odometer_at(start_utc), turn_rate_deg_s=TURN_RATE_DEG_S)
        self.drive_start_odo = self.rover.odometer_m
        self.drive_mode = "NORMAL"
        self._drives_seen = self.rover.drives_completed
        self._aborts_seen = self.rover.aborts
        self._hazard_hold = False   # a hazard stopped the last drive; cleared by the next DRIVE or STOP
        self.suspension_mm = 300.0
        self.hibernating = False
        self.wake_array_w, self.wake_temp_c = 60.0, -30.0
        self.power_mode_state = "NOMINAL"
        self.last_sun = self.sun.at(0.0)
        self.env_c = mars_surface_temperature_c(self.sun.local_time_h(0.0))
        self.dust_reported = 0
        # Instruments
        self.roper_mode, self.roper_until, self.roper_gain, self.roper_traces = "LOW_FREQUENCY", math.inf, 30.0, 0
        self.laser_shots, self.laser_energy, self.target_distance = 1800, 22.5, 2.5
        self.marscode_mode, self.marscode_busy_until = "STANDBY", 0.0
        self.mscam_filter, self.mscam_exposure, self.natecam_exposure = "PAN", 12.0, 8.0
        self.mast_yaw, self.mast_pitch, self.images = 0.0, -20.0, 40
        self.wind_dir = self.rng.uniform(0, 360)
        self.field_crust = (self.rng.uniform(-40, 40), self.rng.uniform(-40, 40), self.rng.uniform(-60, 60))
        self.field_rover = (self.rng.uniform(-150, 150), self.rng.uniform(-150, 150), self.rng.uniform(-100, 100))
        # Relay with the orbiter: passes every 8.2 h; link values are measured during a pass and then held.
        self.relay_phase = self.rng.uniform(0, RELAY_PERIOD_S)
        self.relay_state, self.relay_volume_kb = "IDLE", 0.0
        self.uhf_rx, self.uhf_lock, self.uhf_tx_power = -85.0, "BIT_LOCK", 9.8
        self.obdh.stored_bits = 0.2 * self.STORAGE_BITS
        self.load = Ema(120.0, self.AVIONICS_W)
        self._mcs_last: dict[str, Any] = {}
        self._romag_last: dict[str, Any] = {}

    def _build_thermal(self) -> None:
        net = ThermalNetwork(lambda t: self.env_c)
        self.net = net
        self.web = net.add(ThermalNode("electronics_box", 60_000.0, 5.0))
        self.bat = net.add(ThermalNode("battery", 15_000.0, 5.0))
        self.store = net.add(PhaseChangeNode.n_undecane("heat_store", 8.0, -25.6, container_j_per_k=2_000.0))
        self.store.add_energy(0.5 * self.store.latent_j)
        self.window = net.add(ThermalNode("collector_window", 3_000.0, -40.0))
        self.mast = net.add(ThermalNode("mast_head", 3_000.0, -40.0))
        self.motors = net.add(ThermalNode("mobility_motors", 8_000.0, -45.0))
        self.optics = net.add(ThermalNode("marscode_optics", 2_500.0, -35.0))
        self.roper_node = net.add(ThermalNode("roper_electronics", 4_000.0, -5.0))
        net.link("electronics_box", "battery", 1.2)
        net.link("electronics_box", "heat_store", 1.4)
        net.link("heat_store", "collector_window", 1.0)
        net.link("electronics_box", "roper_electronics", 0.6)
        net.link("electronics_box", "mobility_motors", 0.12)
        net.link("electronics_box", "marscode_optics", 0.05)
        net.link("electronics_box", "mast_head", 0.02)
        net.link_environment("electronics_box", conductance_w_per_k=0.08)
        net.link_environment("heat_store", conductance_w_per_k=0.35)
        net.link_environment("collector_window", conductance_w_per_k=0.2, emissivity_area_m2=0.1)
        net.link_environment("mast_head", conductance_w_per_k=0.06, emissivity_area_m2=0.02)
        net.link_environment("mobility_motors", conductance_w_per_k=0.12)
        net.link_environment("marscode_optics", conductance_w_per_k=0.06, emissivity_area_m2=0.01)
        net.link_environment("roper_electronics", conductance_w_per_k=0.05)
        self.heaters = {
            "battery": Heater(self.bat, 15.0, 0.0),
            "electronics_box": Heater(self.web, 25.0, -12.0),
            "mast": Heater(self.mast, 8.0, -48.0),
            "marscode": Heater(self.optics, 6.0, -40.0),
        }

    # -- physics ------------------------------------------------------------------------

    def step(self, t: float, dt: float) -> None:
        if dt <= 0:
            self.t = t
            return
        self.t = t
        sun = self.sun.at(t)
        self.last_sun = sun
        self.env_c = mars_surface_temperature_c(self.sun.local_time_h(t))
        # Mobility first: its currents are part of this step's load and heat.
        was_driving = self.rover.driving
        state = self.rover.step(dt)
        self._drive_events(was_driving)
        motor_w = sum(state.wheel_currents_a) * self.MOTOR_BUS_V if state.driving else 0.0
        # Instruments and radios
        self._instruments_step(dt)
        relay_w = self._relay_step(t, dt)
        heater_w = sum(h.update(dt) for h in self.heaters.values())
        inst_w = self.instrument_load_w()
        avionics = self.AVIONICS_W * (0.5 if self.hibernating else 1.0)
        load = avionics + inst_w + motor_w + heater_w + relay_w
        self.load.update(load, dt)
        sin_el = sun.sin_elevation
        self.power.step(dt, sun.irradiance_wm2, [sin_el * f for f in self.panel_factor],
                        self.env_c + 25.0 * sin_el, load, self.capacity_factor())
        self.bat_temp = self.bat.temperature_c
        self.power.battery.temperature_c = self.bat.temperature_c
        # Heat: electrical loads end up as heat where they are dissipated.
        self.web.internal_w = avionics + 0.7 * relay_w + 0.3 * inst_w + self.fault_heat("electronics_box")
        self.bat.internal_w = abs(self.power.state.current_a) ** 2 * self.power.battery.r_ohm \
            + self.fault_heat("battery")
        self.window.internal_w = 0.28 * sun.irradiance_wm2 * sin_el * 0.85 + self.fault_heat("collector_window")
        self.motors.internal_w = 0.3 * motor_w + self.fault_heat("mobility_motors")
        self.roper_node.internal_w = (6.0 if self.is_on("ROPER") else 0.0) + self.fault_heat("roper_electronics")
        self.optics.internal_w = (4.0 if self.is_on("MARSCODE") else 0.0) + self.fault_heat("marscode_optics")
        self.mast.internal_w = (3.0 * (self.is_on("MSCAM") + self.is_on("NATECAM"))) + self.fault_heat("mast_head")
        self.store.extra_w = self.fault_heat("heat_store")
        self.net.step(dt)
        self.obdh.cpu.update(18.0 + (25.0 if state.driving else 0.0), dt)
        self.obdh.step(dt, self.rng, produced_bits=self.science_bits(dt), downlink_bps=0.0, edac_per_hour=0.4)
        self._power_management()

    def _drive_events(self, was_driving: bool) -> None:
        r = self.rover
        if r.aborts != self._aborts_seen:
            self._aborts_seen = r.aborts
            self._hazard_hold = True
            self.emit("hazard_detected", hazard="SLOPE", range=0.5, bearing=0.0)
        if r.drives_completed != self._drives_seen:
            self._drives_seen = r.drives_completed
            self.emit("drive_completed", distance=r.odometer_m - self.drive_start_odo, heading=r.heading,
                      odometer=r.odometer_m)
        if r.driving:
            worst = max(range(6), key=lambda i: r.currents[i])
            if r.currents[worst] > 2.5:
                r.stop()
                self.emit("wheel_overcurrent", wheel=WHEEL_NAMES[worst], current=r.currents[worst])

    def _instruments_step(self, dt: float) -> None:
        if self.is_on("ROPER"):
            if self.t >= self.roper_until:
                self.roper_mode, self.roper_until = "LOW_FREQUENCY", math.inf
            self.roper_traces += int(round(dt * (20 if self.roper_mode == "DUAL" else 10)))
        if self.is_on("MARSCODE") and self.marscode_mode != "STANDBY" and self.t >= self.marscode_busy_until:
            self.marscode_mode = "STANDBY"
        if self.is_on("MCS"):
            self.wind_dir = (self.wind_dir + self.rng.gauss(0, 2.0) * math.sqrt(dt / 60)) % 360

    def _relay_step(self, t: float, dt: float) -> float:
        phase = (t + self.relay_phase) % RELAY_PERIOD_S
        if phase < RELAY_PASS_S:
            if self.relay_state == "IDLE":
                self.relay_volume_kb = 0.0
            self.relay_state = "HAILING" if phase < 30 else "TRANSFER"
            if self.relay_state == "TRANSFER":
                # Range shortest mid-pass: level follows a parabola over the pass.
                x = (phase - RELAY_PASS_S / 2) / (RELAY_PASS_S / 2)
                self.uhf_rx = -72.0 - 14.0 * x * x + self.noise(0.5)
                self.uhf_lock, self.uhf_tx_power = "BIT_LOCK", 9.8 + self.noise(0.05)
                sent = min(self.obdh.stored_bits, 256e3 * dt)
                self.obdh.stored_bits -= sent
                self.relay_volume_kb += sent / 8000.0
                self.images = max(0, self.images - int(sent // 4e6))
            return 55.0
        self.relay_state = "IDLE"
        return 0.0

    def _power_management(self) -> None:
        soc = 100.0 * self.power.battery.soc
        v = self.power.state.voltage_v
        if self.once("battery_low", soc < 40.0 or v < 25.0, soc > 50.0):
            self.emit("battery_low", battery_voltage=v, battery_soc=soc)
            for name in ("MARSCODE", "MSCAM", "NATECAM"):
                self.set_instrument(name, False)
        if not self.hibernating and soc < 25.0:
            self.hibernating = True
            self.rover.stop()
            for name in self.instruments:
                self.set_instrument(name, False)
            self.emit("hibernation_entered", reason="LOW_POWER", battery_soc=soc)
        elif self.hibernating and self.power.generated_w + self.power.state.shunted_w >= self.wake_array_w \
                and self.web.temperature_c >= self.wake_temp_c and soc > 30.0:
            self.hibernating = False
            self.emit("hibernation_left", array_power=sum(a.power_w for a in self.power.arrays),
                      temp_electronics_box=self.web.temperature_c)
        if soc < 20.0 and self.mode != "SAFE":
            self.autonomous_safe_mode("UNDERVOLTAGE")
        if self.web.temperature_c > 50.0 and self.mode != "SAFE":
            self.autonomous_safe_mode("OVERTEMPERATURE")
        dust = 100.0 * (1.0 - self.power.arrays[0].panel.dust_factor)
        if dust >= 10.0 * (self.dust_reported + 1):
            self.dust_reported = int(dust // 10)
            self.emit("dust_degradation", dust_obscuration=dust)

    def power_mode(self) -> str:
        soc = 100.0 * self.power.battery.soc
        if self.hibernating:
            return "SURVIVAL"
        if soc < 40.0:
            return "LOAD_SHED"
        if soc < 45.0:
            return "POWER_SAVING"
        return "NOMINAL"

    def instrument_changed(self, name: str, on: bool) -> None:
        if name == "ROPER":
            self.roper_mode, self.roper_until = ("LOW_FREQUENCY", math.inf) if on else ("IDLE", math.inf)
        elif name == "MARSCODE" and not on:
            self.marscode_mode = "STANDBY"

    def shed_loads(self) -> None:
        self.rover.stop()

    # -- housekeeping ---------------------------------------------------------------------

    def hk_power(self) -> dict[str, Any]:
        values = self.power.fields(self.rng, power_mode=self.power_mode(), battery_temp_c=self.bat.temperature_c,
                                   pcdu_temp_c=self.web.temperature_c + 4.0 + self.noise(0.1))
        values["dust_obscuration"] = 100.0 * (1.0 - self.power.arrays[0].panel.dust_factor)
        values["array_power"] = sum(a.power_w for a in self.power.arrays) - self.power.state.shunted_w
        return values

    def hk_thermal(self) -> dict[str, Any]:
        n = self.noise
        store = self.store
        frac = store.melt_fraction
        if store.temperature_c != store.melt_c:
            phase = "LIQUID" if frac >= 1.0 else "SOLID"
        else:
            phase = "MELTING" if self.window.temperature_c > store.melt_c else "FREEZING"
        return {
            "temp_electronics_box": self.web.temperature_c + n(0.05),
            "temp_imu": self.web.temperature_c + 2.0 + n(0.05),
            "temp_mast_head": self.mast.temperature_c + n(0.1),
            "temp_mobility_motors": self.motors.temperature_c + n(0.1),
            "temp_marscode_optics": self.optics.temperature_c + n(0.1),
            "temp_roper_electronics": self.roper_node.temperature_c + n(0.1),
            "temp_collector_window": self.window.temperature_c + n(0.1),
            "temp_heat_store": store.temperature_c + n(0.05),
            "heater_battery_duty": self.heaters["battery"].duty_percent,
            "heater_electronics_box_duty": self.heaters["electronics_box"].duty_percent,
            "heater_mast_duty": self.heaters["mast"].duty_percent,
            "heater_marscode_duty": self.heaters["marscode"].duty_percent,
            "heat_store_phase": phase,
            "heat_store_energy": frac * store.latent_j / 1000.0,
        }

    def rover_mode(self) -> str:
        if self.mode == "SAFE":
            return "SAFE"
        if self.hibernating:
            return "HIBERNATION"
        if self.rover.driving:
            return "DRIVING"
        if self.rover.aborts and self._hazard_hold:
            return "HAZARD_STOP"
        if self.marscode_mode != "STANDBY" or self.is_on("MSCAM") or self.is_on("NATECAM"):
            return "SCIENCE"
        return "STANDBY"

    def hk_mobility(self) -> dict[str, Any]:
        s = self.rover.state
        values: dict[str, Any] = {
            "rover_mode": self.rover_mode(),
            "drive_mode": self.drive_mode,
            "odometer": s.odometer_m,
            "drive_distance": s.odometer_m - self.drive_start_odo,
            "drive_speed": s.speed_m_h,
            "pose_east": s.x_m,
            "pose_north": s.y_m,
            "heading": s.heading_deg,
            "roll": s.roll_deg,
            "pitch": s.pitch_deg,
            "suspension_height": self.suspension_mm,
        }
        for name, current in zip(WHEEL_NAMES, s.wheel_currents_a, strict=True):
            values[f"wheel_{name.lower()}_current"] = current
        return values

    def hk_obdh(self) -> dict[str, Any]:
        activity = 1.0 if self.rover.driving else 0.2
        return self.obdh.fields(self.rng, mode=self.mode, temperature_c=self.web.temperature_c + 6.0,
                                activity=activity)

    def hk_comms(self) -> dict[str, Any]:
        in_session = self.relay_state != "IDLE"
        return {
            "uhf_transmitter": "ON" if in_session else "OFF",
            "uhf_lock": self.uhf_lock,
            "uhf_rx_level": self.uhf_rx,
            "uhf_tx_power": self.uhf_tx_power,
            "uhf_data_rate": "KBPS_256",
            "uhf_temperature": self.web.temperature_c + (8.0 if in_session else 2.0) + self.noise(0.1),
            "relay_session": self.relay_state,
            "relay_volume": self.relay_volume_kb,
            # Direct-to-Earth X-band is used only for commanded sessions: last session's figures held.
            "xband_transmitter": "OFF",
            "xband_lock": "BIT_LOCK",
            "xband_rx_level": -128.0,
            "xband_tx_power": 14.5,
            "xband_data_rate": "BPS_64",
            "xband_temperature": self.web.temperature_c + 1.5 + self.noise(0.1),
        }

    def hk_roper(self) -> dict[str, Any]:
        on = self.is_on("ROPER")
        mode = self.roper_mode if on else "IDLE"
        return {
            "roper_power": "ON" if on else "OFF",
            "roper_mode": mode,
            "roper_traces": self.roper_traces,
            "roper_low_tx_power": (850.0 + self.noise(5.0)) if mode in ("LOW_FREQUENCY", "DUAL") else 0.0,
            "roper_high_tx_power": (65.0 + self.noise(0.5)) if mode in ("HIGH_FREQUENCY", "DUAL") else 0.0,
            "roper_gain": self.roper_gain,
            "roper_noise_floor": -100.0 + 0.05 * (self.roper_node.temperature_c + 10) + self.noise(0.5),
            "roper_temperature": self.roper_node.temperature_c + 3.0 + self.noise(0.1),
        }

    def hk_romag(self) -> dict[str, Any]:
        # Switched off, the instrument sends nothing new: its last reading is held.
        if not self.is_on("ROMAG") and self._romag_last:
            return {**self._romag_last, "romag_power": "OFF",
                    "romag_sensor_temperature": 0.85 * self.env_c + 0.15 * self.web.temperature_c}
        h = math.radians(self.rover.heading)
        cx, cy, cz = self.field_crust
        # Crustal field seen in rover axes (rotates with heading) plus the rover's own field.
        bx = cx * math.cos(h) + cy * math.sin(h) + self.field_rover[0]
        by = -cx * math.sin(h) + cy * math.cos(h) + self.field_rover[1]
        bz = cz + self.field_rover[2]
        if self.rover.driving:  # motor currents disturb the mast sensor
            bx += 8.0 * sum(self.rover.currents)
        bx, by, bz = (b + self.noise(0.3) for b in (bx, by, bz))
        self._romag_last = {
            "romag_power": "ON" if self.is_on("ROMAG") else "OFF",
            "romag_range": "NT_2000",
            "field_x": bx, "field_y": by, "field_z": bz,
            "field_total": math.sqrt(bx * bx + by * by + bz * bz),
            "romag_sensor_temperature": 0.85 * self.env_c + 0.15 * self.web.temperature_c + self.noise(0.2),
        }
        return self._romag_last

    def hk_mcs(self) -> dict[str, Any]:
        if not self.is_on("MCS") and self._mcs_last:
            return {**self._mcs_last, "mcs_power": "OFF",
                    "mcs_temperature": 0.6 * self.web.temperature_c + 0.4 * self.env_c}
        lt = self.sun.local_time_h(self.t)
        # Thermal tide: pressure low in the afternoon; wind picks up with convection.
        pressure = 745.0 + 12.0 * math.cos(2 * math.pi * (lt - 5.0) / 24.0) + self.noise(0.8)
        day = max(0.0, self.last_sun.sin_elevation)
        wind = max(0.0, 2.0 + 6.0 * day + self.noise(0.8))
        self._mcs_last = {
            "mcs_power": "ON" if self.is_on("MCS") else "OFF",
            "air_temperature": self.env_c + 3.0 * day + self.noise(0.3),
            "air_pressure": pressure,
            "wind_speed": wind,
            "wind_direction": self.wind_dir,
            "sound_level": 25.0 + 1.5 * wind + (20.0 if self.rover.driving else 0.0) + self.noise(1.0),
            "mcs_temperature": 0.6 * self.web.temperature_c + 0.4 * self.env_c + self.noise(0.1),
        }
        return self._mcs_last

    def hk_marscode(self) -> dict[str, Any]:
        optics = self.optics.temperature_c
        on = self.is_on("MARSCODE")
        return {
            "marscode_power": "ON" if on else "OFF",
            "marscode_mode": self.marscode_mode if on else "STANDBY",
            "laser_shots": self.laser_shots,
            "laser_energy": self.laser_energy,
            "target_distance": self.target_distance,
            "focus_position": 400.0 + 500.0 * (self.target_distance - 1.6),
            "libs_detector_temperature": optics + 8.0 + self.noise(0.1),
            "swir_detector_temperature": (optics - 15.0 if on else optics - 5.0) + self.noise(0.1),
            "laser_temperature": optics + 14.0 + (6.0 if self.marscode_mode == "LIBS" else 0.0) + self.noise(0.1),
        }

    def hk_cameras(self) -> dict[str, Any]:
        mast = self.mast.temperature_c
        return {
            "mscam_power": "ON" if self.is_on("MSCAM") else "OFF",
            "mscam_filter": self.mscam_filter,
            "mscam_exposure": self.mscam_exposure,
            "mscam_temperature": mast + 3.0 + self.noise(0.1),
            "natecam_power": "ON" if self.is_on("NATECAM") else "OFF",
            "natecam_exposure": self.natecam_exposure,
            "natecam_temperature": mast + 2.0 + self.noise(0.1),
            "mast_yaw": self.mast_yaw,
            "mast_pitch": self.mast_pitch,
            "images_stored": self.images,
        }

    # -- commands -----------------------------------------------------------------------

    def _mobility_refusal(self) -> CommandOutcome | None:
        if self.mode == "SAFE":
            return refused("mobility is off in safe mode")
        if self.hibernating:
            return refused("mobility is off in hibernation")
        if self.power_mode() in ("LOAD_SHED", "SURVIVAL"):
            return refused(f"mobility is off while loads are shed ({self.power_mode()})")
        return None

    def cmd_drive(self, args: dict[str, Any]) -> CommandOutcome:
        problem = self._mobility_refusal()
        if problem:
            return problem
        if self.rover.driving:
            return refused("a drive is already under way", RESOURCE_BUSY)
        distance, heading = float(args["distance"]), float(args["heading"]) % 360.0
        speed = float(args.get("speed", 40.0))
        self.drive_mode = str(args.get("mode", "NORMAL"))
        self.rover.max_speed = speed * DRIVE_SPEED_FACTOR.get(self.drive_mode, 1.0) / 3600.0
        self.drive_start_odo = self.rover.odometer_m
        self._hazard_hold = False
        self.rover.command_drive(distance, heading)
        turn_deg = abs((heading - self.rover.heading + 180.0) % 360.0 - 180.0)
        # The same model the ground's DRIVE completion window is computed from (protocols.missions.zhurong).
        expected = drive_duration(distance, speed, self.drive_mode, turn_deg)
        return CommandOutcome(duration=expected, progress_step=max(10.0, expected / 10.0),
                              detail=f"drive {distance:g} m at {heading:g} deg",
                              data={"expected_s": expected})

    def cmd_stop(self, args: dict[str, Any]) -> CommandOutcome:
        was = self.rover.driving
        self.rover.stop()
        self._hazard_hold = False
        return CommandOutcome(detail="stopped" if was else "not driving",
                              data={"odometer": self.rover.odometer_m})

    def cmd_set_suspension(self, args: dict[str, Any]) -> CommandOutcome:
        problem = self._mobility_refusal()
        if problem:
            return problem
        if self.rover.driving:
            return refused("cannot change the suspension while driving", RESOURCE_BUSY)
        target = float(args["height"])
        duration = abs(target - self.suspension_mm) / 5.0 + 1.0  # 5 mm/s actuators
        self.suspension_mm = target
        return CommandOutcome(duration=duration, progress_step=max(1.0, duration / 5))

    def cmd_roper_sounding(self, args: dict[str, Any]) -> CommandOutcome:
        if not self.is_on("ROPER"):
            return refused("RoPeR is off")
        self.roper_mode = str(args["channels"])
        self.roper_gain = float(args["gain"])
        duration = float(args["duration"])
        self.roper_until = self.t + duration
        return CommandOutcome(duration=duration, progress_step=max(1.0, duration / 10))

    def cmd_marscode_libs(self, args: dict[str, Any]) -> CommandOutcome:
        if not self.is_on("MARSCODE"):
            return refused("MarSCoDe is off")
        if self.marscode_mode != "STANDBY":
            return refused("MarSCoDe is busy", RESOURCE_BUSY)
        shots = int(args["shots"])
        self.target_distance = float(args["target_distance"])
        self.laser_shots += shots
        # Pulse energy falls slowly with use (diode ageing) and with laser temperature.
        self.laser_energy = 23.0 - 1e-6 * self.laser_shots - 0.02 * (self.optics.temperature_c + 20.0) \
            + self.noise(0.1)
        duration = shots / 3.0 + (30.0 if args.get("with_swir") == "YES" else 0.0)  # 3 Hz bursts
        self.marscode_mode, self.marscode_busy_until = "LIBS", self.t + duration
        self.obdh.stored_bits += shots * 40e3
        return CommandOutcome(duration=duration, progress_step=max(1.0, duration / 5))

    def cmd_take_image(self, args: dict[str, Any]) -> CommandOutcome:
        camera = str(args["camera"])
        needed = "MSCAM" if camera == "MSCAM" else "NATECAM"
        if not self.is_on(needed):
            return refused(f"{needed} is off")
        yaw, pitch = float(args["yaw"]), float(args["pitch"])
        slew = max(abs(yaw - self.mast_yaw), abs(pitch - self.mast_pitch)) / 10.0  # 10 deg/s mast
        self.mast_yaw, self.mast_pitch = yaw, pitch
        exposure = float(args["exposure"])
        if needed == "MSCAM":
            self.mscam_filter, self.mscam_exposure = str(args["filter"]), exposure
        else:
            self.natecam_exposure = exposure
        frames = 2 if camera == "NATECAM_STEREO" else 1
        self.images += frames
        self.obdh.stored_bits += frames * 8e6
        return CommandOutcome(duration=slew + exposure / 1000.0 + 2.0, progress_step=1.0)

    def cmd_set_wake_thresholds(self, args: dict[str, Any]) -> CommandOutcome:
        self.wake_array_w, self.wake_temp_c = float(args["array_power"]), float(args["temperature"])
        return CommandOutcome()
