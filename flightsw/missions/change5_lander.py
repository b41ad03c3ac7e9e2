"""Chang'e-5 lander on the Moon: the lunar morning of surface sampling at Mons Rumker (43.1 N, 51.8 W).

The scenario starts at the landing (2020-12-01 15:11 UTC, local morning): the Sun climbs
slowly (a lunar day is 29.5 Earth days), the Earth stands about 27 deg up and nods with
the libration.  Two fixed solar wings and a battery; a small thermal network of the
cabin, radiator, battery, drill motor, arm shoulder and sample container over a regolith
in radiative equilibrium with the Sun.  Sampling: the drill cores the regolith at a rate
that falls with depth and stalls on a buried hard layer; the arm scoops surface regolith
into the container; the container is sealed for the ascender.
Public: the site, landing date, the drill-and-scoop sequence, about 1.7 kg of samples.
Invented: every rate, torque, force, mass, power and thermal figure, the hard layer's depth.
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

LATITUDE_DEG = 43.06
DRACONIC_MONTH_S = 27.212221 * 86400.0   # libration in latitude: the Earth nods in the site's sky
CORE_KG_PER_M = 0.26                      # regolith core in the bag, per metre drilled (invented)
SCOOP_KG = 0.12                           # one scoop of surface regolith (invented)
SCOOP_S, ARM_MOVE_S, SEAL_S, RETRACT_S = 150.0, 60.0, 120.0, 300.0
STALL_TORQUE = 22.0                       # N m: the drill stops above this
DRILL_RATE_MM_MIN = 30.0                  # in loose regolith at 120 rpm: about an hour per metre (invented)


@register_model
class Change5LanderModel(BaseModel):
    spacecraft_name = "change5-lander"
    LOAD_SHED_SOC, POWER_SAVING_SOC = 40.0, 45.0

    DEFAULT_START_UTC = datetime(2020, 12, 1, 15, 11, tzinfo=UTC)
    INSTRUMENTS = {"LANDING_CAMERA": (8.0, 400.0), "PANORAMIC_CAMERA": (10.0, 50.0),
                   "MINERALOGICAL_SPECTROMETER": (15.0, 20.0), "REGOLITH_RADAR": (20.0, 10.0)}
    INSTRUMENTS_ON = frozenset({"PANORAMIC_CAMERA", "MINERALOGICAL_SPECTROMETER", "REGOLITH_RADAR"})
    STORAGE_BITS = 32e9
    AVIONICS_W = 150.0

    def __init__(self, spacecraft, *, seed, start_utc, emit, faults=None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        self.sun = LunarSurfaceIllumination(start_utc, latitude_deg=LATITUDE_DEG, local_time_h=8.5)
        self.power = PowerSystem([Array("wing_a", SolarArray(1.6)), Array("wing_b", SolarArray(1.6))],
                                 Battery(30.0, cells_series=8, internal_resistance_ohm=0.05, soc=0.8,
                                         max_charge_a=8.0, max_soc=0.9, temperature_c=15.0), bus_v=28.5)
        self.sink_c = -100.0
        net = ThermalNetwork(lambda t: self.sink_c)
        self.net = net
        self.cabin = net.add(ThermalNode("electronics_cabin", 60_000.0, 18.0))
        self.radiator = net.add(ThermalNode("radiator", 6_000.0, 5.0))
        self.bat = net.add(ThermalNode("battery", 20_000.0, 15.0))
        self.drill_motor = net.add(ThermalNode("drill_motor", 3_000.0, 5.0))
        self.shoulder = net.add(ThermalNode("arm_shoulder", 2_000.0, 0.0))
        self.container = net.add(ThermalNode("sample_container", 8_000.0, 5.0))
        net.link("electronics_cabin", "radiator", 15.0)
        net.link_environment("radiator", emissivity_area_m2=1.0)
        net.link("electronics_cabin", "battery", 1.0)
        net.link("electronics_cabin", "drill_motor", 0.15)
        net.link_environment("drill_motor", conductance_w_per_k=0.03)
        net.link("electronics_cabin", "arm_shoulder", 0.05)
        net.link_environment("arm_shoulder", conductance_w_per_k=0.04)
        net.link("electronics_cabin", "sample_container", 0.3)
        net.link_environment("sample_container", conductance_w_per_k=0.03)
        self.heaters = {"battery": Heater(self.bat, 10.0, 5.0), "arm": Heater(self.shoulder, 12.0, -20.0),
                        "container": Heater(self.container, 6.0, -10.0)}
        self.sun_el = self.sun.at(0.0).elevation_deg
        self.regolith_c = lunar_surface_temperature_c(self.sun_el)
        self.load_w = self.AVIONICS_W
        self.earth_phase = 0.3  # invented libration phase at landing
        # Sampling state.
        self.drill_state, self.depth, self.target, self.speed = "STOWED", 0.0, 0.0, 0.0
        self.rate_mm_min, self.torque, self.core = 0.0, 0.0, 0.0
        self.retract_until = 0.0
        self.hard_layer_m = self.rng.uniform(0.9, 1.6)  # a buried rock or compacted layer (invented)
        self.arm_state, self.arm_until = "STOWED", 0.0
        self.arm_plan: list[str] = []  # timed moves still to do: reach, scoop, pour, stow
        self.arm_angles = [0.0, -80.0, 150.0, -70.0]
        self.scoop_loaded, self.scoops, self.scoop_site = False, 0, 0
        self.seal_state, self.seal_until, self.seal_force = "OPEN", 0.0, 0.0
        self.core_in_container = False
        self.scooped_kg = 0.0

    # -- geometry ---------------------------------------------------------------------------

    def earth_elevation(self, t: float | None = None) -> float:
        t = self.t if t is None else t
        return 27.0 + 6.7 * math.sin(2 * math.pi * t / DRACONIC_MONTH_S + self.earth_phase)

    def light_time_s(self) -> float:
        return MOON_LIGHT_TIME_S

    @property
    def sample_kg(self) -> float:
        return self.scooped_kg + (CORE_KG_PER_M * self.core if self.core_in_container else 0.0)

    def surface_phase(self) -> str:
        if self.mode == "SAFE":
            return "SAFE"
        if self.seal_state == "SEALED":
            return "SAMPLE_TRANSFERRED"
        if self.seal_state == "SEALING":
            return "SEALING"
        if self.drill_state in ("DRILLING", "RETRACTING"):
            return "DRILLING"
        if self.arm_state in ("MOVING", "SCOOPING", "AT_CONTAINER") and self.arm_plan:
            return "SCOOPING"
        return "POST_LANDING" if self.t < 2 * 3600.0 else "SURFACE_SURVEY"

    # -- physics ----------------------------------------------------------------------------

    def step(self, t: float, dt: float) -> None:
        self.t = t
        if dt <= 0:
            return
        sun = self.sun.at(t)
        self.sun_el = sun.elevation_deg
        self.regolith_c = lunar_surface_temperature_c(self.sun_el)
        self.sink_c = lunar_sink_c(self.regolith_c)
        drill_w = self._drill_step(dt)
        arm_w = self._arm_step()
        seal_w = self._seal_step()
        heater_w = sum(h.update(dt) for h in self.heaters.values())
        radio_w = 60.0
        load = self.AVIONICS_W + radio_w + heater_w + self.instrument_load_w() + drill_w + arm_w + seal_w
        # The wings are fixed, tilted 40 deg toward the morning Sun (invented geometry).
        cos_i = max(0.0, math.cos(math.radians(90.0 - self.sun_el - 40.0))) if sun.lit else 0.0
        self.power.step(dt, sun.irradiance_wm2, [cos_i, cos_i], 20.0 + 0.3 * self.regolith_c, load,
                        self.capacity_factor())
        self.load_w = load
        self.power.battery.temperature_c = self.bat.temperature_c
        self.cabin.internal_w = 0.8 * (self.AVIONICS_W + radio_w + self.instrument_load_w()) \
            + self.fault_heat("electronics_cabin")
        self.radiator.internal_w = 0.05 * sun.irradiance_wm2 * max(0.0, math.sin(math.radians(self.sun_el))) \
            + self.fault_heat("radiator")
        self.bat.internal_w = self.power.state.current_a ** 2 * 0.05 + self.fault_heat("battery")
        self.drill_motor.internal_w = 0.35 * drill_w + self.fault_heat("drill_motor")
        self.shoulder.internal_w = 0.3 * arm_w + self.fault_heat("arm_shoulder")
        self.container.internal_w = self.fault_heat("sample_container")
        self.net.step(dt)
        self.obdh.step(dt, self.rng, produced_bits=self.science_bits(dt), downlink_bps=64e3, edac_per_hour=0.5)
        self.obdh.cpu.update(18.0 + (10.0 if drill_w else 0.0), dt)
        soc = 100.0 * self.power.battery.soc
        if self.once("battery_low", soc < 40.0, soc > 50.0):
            self.emit("battery_low", battery_voltage=self.power.state.voltage_v, battery_soc=soc)
        if soc < 25.0:
            self.autonomous_safe_mode("UNDERVOLTAGE")
        if self.cabin.temperature_c > 55.0:
            self.autonomous_safe_mode("OVERTEMPERATURE")

    def _drill_step(self, dt: float) -> float:
        """Advance the drill; returns its electrical power (W)."""
        if self.drill_state == "RETRACTING":
            if self.t >= self.retract_until:
                self.drill_state = "DONE"
                self.emit("drilling_done", depth=self.depth, core_length=self.core)
            return 60.0
        if self.drill_state != "DRILLING":
            self.rate_mm_min, self.torque = 0.0, 0.0
            return 0.0
        # Harder with depth (compaction), much harder approaching the buried layer.
        to_layer = self.hard_layer_m - self.depth
        hardness = 1.0 + 1.5 * self.depth + (6.0 * math.exp(-to_layer / 0.04) if to_layer > 0 else 12.0)
        self.rate_mm_min = DRILL_RATE_MM_MIN * (self.speed / 120.0) / hardness
        self.torque = 3.0 + 2.5 * hardness + self.noise(0.1)
        if self.torque > STALL_TORQUE:
            self.drill_state, self.rate_mm_min = "STALLED", 0.0
            self.emit("drill_stalled", depth=self.depth, torque=self.torque)
            return 0.0
        step_m = self.rate_mm_min / 1000.0 * dt / 60.0
        self.depth = min(self.target, self.depth + step_m)
        self.core = 0.9 * self.depth  # the core bag keeps about 90 % of the column drilled (invented)
        if self.depth >= self.target - 1e-9:
            self.drill_state, self.retract_until = "RETRACTING", self.t + RETRACT_S
        return 80.0 + 4.0 * self.torque * self.speed / 60.0

    def _arm_step(self) -> float:
        """Advance the scoop sequence (a plan of timed moves); returns the arm's power (W)."""
        while self.arm_plan and self.t >= self.arm_until:
            action = self.arm_plan.pop(0)
            if action == "reach":
                self.arm_state, self.arm_angles = "SCOOPING", [30.0 + 12.0 * self.scoop_site, -20.0, 60.0, -40.0]
            elif action == "scoop":
                self.scoop_loaded = True
                self.arm_state = "MOVING"
            elif action == "pour":
                self.arm_state, self.arm_angles = "AT_CONTAINER", [-90.0, -45.0, 110.0, -120.0]
                self.scoop_loaded = False
                self.scoops += 1
                self.scooped_kg += SCOOP_KG * self.rng.uniform(0.85, 1.15)
                self.emit("scoop_delivered", site=self.scoop_site + 1, sample_mass=self.sample_kg)
            elif action == "stow":
                self.arm_state, self.arm_angles = "STOWED", [0.0, -80.0, 150.0, -70.0]
            self.arm_until += {"reach": SCOOP_S, "scoop": ARM_MOVE_S, "pour": ARM_MOVE_S}.get(action, 0.0)
        return 45.0 if self.arm_state in ("MOVING", "SCOOPING") or self.arm_plan else 0.0

    def _seal_step(self) -> float:
        if self.seal_state != "SEALING":
            return 0.0
        if self.t >= self.seal_until:
            self.seal_state = "SEALED"
            self.emit("container_sealed", sample_mass=self.sample_kg, container_pressure=self.container_pressure())
        return 40.0

    def container_pressure(self) -> float:
        # Sealed: the vacuum of the lunar surface trapped with the sample; open: it reads the outside (~0).
        return 0.02 + 0.002 * (self.container.temperature_c + 20.0) if self.seal_state == "SEALED" else 0.0

    def shed_loads(self) -> None:
        if self.drill_state == "DRILLING":
            self.drill_state = "STALLED"
        self.arm_plan = []
        if self.arm_state != "STOWED":
            self.arm_state = "MOVING"

    # -- housekeeping -----------------------------------------------------------------------

    def hk_power(self) -> dict[str, Any]:
        v = self.power_fields(self.cabin.temperature_c + 5.0)
        v["bus_current"] = self.load_w / self.power.bus_v + self.noise(0.01)
        v.update({"surface_phase": self.surface_phase(), "sun_elevation": self.sun_el})
        return v

    def hk_thermal(self) -> dict[str, Any]:
        n = self.noise
        return {
            "temp_electronics_cabin": self.cabin.temperature_c + n(0.05),
            "temp_radiator": self.radiator.temperature_c + n(0.1),
            "temp_drill_motor": self.drill_motor.temperature_c + n(0.1),
            "temp_arm_shoulder": self.shoulder.temperature_c + n(0.1),
            "temp_sample_container": self.container.temperature_c + n(0.05),
            "temp_regolith_surface": self.regolith_c + n(0.3),
            "heater_battery_duty": self.heaters["battery"].duty_percent,
            "heater_arm_duty": self.heaters["arm"].duty_percent,
            "heater_container_duty": self.heaters["container"].duty_percent,
        }

    def hk_obdh(self) -> dict[str, Any]:
        busy = self.drill_state == "DRILLING" or bool(self.arm_plan)
        return self.obdh.fields(self.rng, mode=self.mode, temperature_c=self.cabin.temperature_c + 6.0,
                                activity=0.6 if busy else 0.1)

    def hk_comms(self) -> dict[str, Any]:
        el = self.earth_elevation()
        return {
            "xband_transmitter": "ON",
            "xband_lock": "BIT_LOCK",
            "xband_rx_level": -112.0 + 0.1 * (el - 27.0) + self.noise(0.4),
            "xband_tx_power": 20.0 + self.noise(0.1),
            "xband_data_rate": "KBPS_64",
            "xband_temperature": self.cabin.temperature_c + 6.0 + self.noise(0.1),
            "earth_elevation": el,
        }

    def hk_payload(self) -> dict[str, Any]:
        on = self.is_on
        return {
            "landing_camera_power": "ON" if on("LANDING_CAMERA") else "OFF",
            "panoramic_camera_power": "ON" if on("PANORAMIC_CAMERA") else "OFF",
            "spectrometer_power": "ON" if on("MINERALOGICAL_SPECTROMETER") else "OFF",
            "spectrometer_temperature": 0.8 * self.cabin.temperature_c + 0.05 * self.regolith_c + self.noise(0.1),
            "radar_power": "ON" if on("REGOLITH_RADAR") else "OFF",
            # The radar sees the buried layer the drill will meet (to within its resolution).
            "radar_layer_depth": self.hard_layer_m + self.noise(0.01) if on("REGOLITH_RADAR") else 0.0,
        }

    def hk_drill(self) -> dict[str, Any]:
        drilling = self.drill_state == "DRILLING"
        return {
            "drill_state": self.drill_state,
            "drill_depth": self.depth,
            "drill_target_depth": self.target,
            "drill_speed": self.speed if drilling else 0.0,
            "drill_penetration_rate": self.rate_mm_min * 0.06 if drilling else 0.0,  # m/h
            "drill_torque": max(0.0, self.torque) if drilling else 0.0,
            "drill_motor_current": (80.0 + 4.0 * self.torque * self.speed / 60.0) / self.power.bus_v
            if drilling else 0.0,
            "core_length": self.core,
        }

    def hk_arm(self) -> dict[str, Any]:
        moving = self.arm_state in ("MOVING", "SCOOPING")
        angles = {f"arm_{j}_angle": a + (self.noise(0.02) if moving else 0.0)
                  for j, a in zip(("shoulder_yaw", "shoulder_pitch", "elbow", "wrist"), self.arm_angles, strict=True)}
        return {
            "arm_state": self.arm_state,
            **angles,
            "arm_motor_current": 1.6 + self.noise(0.02) if moving else 0.0,
            "scoop_state": "LOADED" if self.scoop_loaded else "EMPTY",
            "scoops_done": self.scoops,
        }

    def hk_sample_container(self) -> dict[str, Any]:
        return {
            "seal_state": self.seal_state,
            "seal_force": self.seal_force if self.seal_state in ("SEALING", "SEALED") else 0.0,
            "container_pressure": self.container_pressure(),
            "sample_mass": self.sample_kg,
            "core_in_container": "YES" if self.core_in_container else "NO",
        }

    # -- commands ---------------------------------------------------------------------------

    def _sampling_refusal(self) -> CommandOutcome | None:
        if self.mode == "SAFE":
            return refused("no sampling in safe mode")
        if self.seal_state in ("SEALING", "SEALED"):
            return refused("the sample container is sealed", CONSTRAINT_VIOLATED)
        return None

    def cmd_drill(self, args: dict[str, Any]) -> CommandOutcome:
        if (refusal := self._sampling_refusal()) is not None:
            return refusal
        if self.drill_state in ("DRILLING", "RETRACTING"):
            return refused("the drill is already at work", RESOURCE_BUSY)
        if self.arm_plan:
            return refused("the arm is scooping", RESOURCE_BUSY)
        target = float(args["target_depth"])
        if target <= self.depth:
            return refused(f"the drill is already at {self.depth:.3f} m", CONSTRAINT_VIOLATED)
        self.drill_state, self.target, self.speed = "DRILLING", target, float(args["speed"])
        # Rough: at half the loose-regolith rate all the way down (the layer may stop it sooner).
        estimate = (target - self.depth) * 1000.0 / (DRILL_RATE_MM_MIN / 2.0 * self.speed / 120.0) * 60.0
        return CommandOutcome(duration=estimate, progress_step=max(60.0, estimate / 10),
                              data={"target_depth": target})

    def cmd_scoop(self, args: dict[str, Any]) -> CommandOutcome:
        if (refusal := self._sampling_refusal()) is not None:
            return refusal
        if self.arm_plan:
            return refused("the arm is already scooping", RESOURCE_BUSY)
        if self.drill_state == "DRILLING":
            return refused("the drill is at work", RESOURCE_BUSY)
        count = int(args["scoops"])
        self.scoop_site = {"SITE_1": 0, "SITE_2": 1, "SITE_3": 2, "SITE_4": 3, "SITE_5": 4}[str(args["site"])]
        self.arm_state, self.arm_until = "MOVING", self.t + ARM_MOVE_S
        self.arm_plan = ["reach", "scoop", "pour"] * count  # then it waits at the container for STOW_ARM
        duration = ARM_MOVE_S + count * (SCOOP_S + 2 * ARM_MOVE_S)
        return CommandOutcome(duration=duration, progress_step=max(60.0, duration / 10))

    def cmd_stow_arm(self, args: dict[str, Any]) -> CommandOutcome:
        if self.arm_plan:
            return refused("the arm is scooping", RESOURCE_BUSY)
        if self.arm_state == "STOWED":
            return CommandOutcome(detail="already stowed")
        self.arm_state, self.arm_until, self.arm_plan = "MOVING", self.t + ARM_MOVE_S, ["stow"]
        return CommandOutcome(duration=ARM_MOVE_S)

    def cmd_seal_container(self, args: dict[str, Any]) -> CommandOutcome:
        if (refusal := self._sampling_refusal()) is not None:
            return refusal
        if self.arm_state != "STOWED" or self.arm_plan:
            return refused("stow the arm first", CONSTRAINT_VIOLATED)
        if self.drill_state in ("DRILLING", "RETRACTING"):
            return refused("the drill is at work", RESOURCE_BUSY)
        if self.core > 0 and self.drill_state in ("DONE", "STALLED"):
            self.core_in_container = True
        if self.sample_kg <= 0:
            return refused("the container is empty", CONSTRAINT_VIOLATED)
        self.seal_state, self.seal_until, self.seal_force = "SEALING", self.t + SEAL_S, float(args["force"])
        return CommandOutcome(duration=SEAL_S, progress_step=SEAL_S / 4)
