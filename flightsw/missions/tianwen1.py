"""Tianwen-1 orbiter in its Mars capture orbit.

Two-body orbit from the capture elements (400 km periapsis, 10-day period, 10 deg),
phased by the time since capture; Earth distance and light time from the
ephemeris at the model's date; Mars shadow from the season; two sun-tracking
wings and a Li-ion battery on a 42 V bus; a thermal network of the structure,
propellant tanks and lines, HiRIC optics, star tracker and the exposed relay
antenna; the 3000 N engine with the rocket equation for burns; UHF relay
sessions with Zhurong from geometry (rover on the rotating Mars surface).
Invented: array and battery sizes, loads, conductances, propellant left, the
orbit's orientation (periapsis on the dawn side, eclipse ~1.3 h after periapsis).
"""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from flightsw.missions.common import (
    CONSTRAINT_VIOLATED,
    EXECUTION_FAILED,
    RESOURCE_BUSY,
    Array,
    BaseModel,
    Heater,
    PowerSystem,
    refused,
)
from flightsw.model import CommandOutcome, register_model
from flightsw.physics import AttitudeHold, Battery, KeplerOrbit, SolarArray, ThermalNetwork, ThermalNode
from flightsw.physics.ephemeris import C_KM_S, earth_mars_light_time_s, mars_sun_distance_au
from flightsw.physics.orbit import MARS_MU_KM3_S2, MARS_RADIUS_KM, TIANWEN1_CAPTURE_UTC
from flightsw.physics.thermal import SPACE_SINK_C

G0 = 9.80665
ENGINES = {"MAIN_3000N": (3000.0, 315.0), "THRUSTERS_120N": (8 * 120.0, 290.0)}  # thrust N, Isp s
DRY_MASS_KG = 2_600.0        # orbiter dry mass with the lander still attached (invented split)
MARS_SIDEREAL_DAY_S = 88_642.663
ZHURONG_LAT_DEG, ZHURONG_LON_DEG = 25.066, 109.925
UHF_FRAME_BITS = 220 * 8
RELAY_RATES_BPS = {"KBPS_8": 8e3, "KBPS_32": 32e3, "KBPS_256": 256e3, "KBPS_2048": 2048e3}


def capture_orbit(start_utc: datetime) -> KeplerOrbit:
    """The capture orbit as it stands at ``start_utc`` (phase from the time since capture)."""
    period = 10 * 86400.0
    a = (MARS_MU_KM3_S2 * (period / (2 * math.pi)) ** 2) ** (1 / 3)
    rp = MARS_RADIUS_KM + 400.0
    since = (start_utc - TIANWEN1_CAPTURE_UTC).total_seconds()
    return KeplerOrbit(semi_major_axis_km=a, eccentricity=1 - rp / a, inclination_deg=10.0, raan_deg=90.0,
                       arg_periapsis_deg=0.0, mean_anomaly_deg=math.degrees(2 * math.pi * since / period) % 360.0,
                       epoch=start_utc)


def elements_from_state(r: tuple[float, ...], v: tuple[float, ...], mu: float = MARS_MU_KM3_S2
                        ) -> tuple[float, float, float, float, float, float]:
    """(a, e, i, raan, argp, mean anomaly) in km and degrees from a position/velocity (km, km/s)."""
    def dot(x, y):
        return sum(p * q for p, q in zip(x, y, strict=True))

    def cross(x, y):
        return (x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0])

    rn, v2 = math.sqrt(dot(r, r)), dot(v, v)
    h = cross(r, v)
    hn = math.sqrt(dot(h, h))
    node = (-h[1], h[0], 0.0)
    nn = math.hypot(node[0], node[1])
    ev = tuple(((v2 - mu / rn) * ri - dot(r, v) * vi) / mu for ri, vi in zip(r, v, strict=True))
    e = math.sqrt(dot(ev, ev))
    a = 1.0 / (2.0 / rn - v2 / mu)
    inc = math.acos(max(-1.0, min(1.0, h[2] / hn)))
    raan = math.atan2(node[1], node[0]) if nn > 1e-9 else 0.0
    if nn > 1e-9 and e > 1e-9:
        argp = math.acos(max(-1.0, min(1.0, dot(node, ev) / (nn * e))))
        if ev[2] < 0:
            argp = 2 * math.pi - argp
    else:
        argp = math.atan2(ev[1], ev[0]) if e > 1e-9 else 0.0
    if e > 1e-9:
        nu = math.acos(max(-1.0, min(1.0, dot(ev, r) / (e * rn))))
        if dot(r, v) < 0:
            nu = 2 * math.pi - nu
    else:
        nu = 0.0
    ecc = 2 * math.atan2(math.sqrt(1 - e) * math.sin(nu / 2), math.sqrt(1 + e) * math.cos(nu / 2))
    mean = ecc - e * math.sin(ecc)
    return a, e, math.degrees(inc), math.degrees(raan) % 360, math.degrees(argp) % 360, math.degrees(mean) % 360


@register_model
class Tianwen1Model(BaseModel):
    spacecraft_name = "tianwen1"
    LOAD_SHED_SOC, POWER_SAVING_SOC = 50.0, 55.0

    #: Two days after capture: far from periapsis, so the first day has no eclipse.
    DEFAULT_START_UTC = TIANWEN1_CAPTURE_UTC + timedelta(days=2)
    INSTRUMENTS = {"MORIC": (15.0, 2.0), "HIRIC": (45.0, 1.0), "MOSIR": (120.0, 80.0), "MMS": (25.0, 20.0),
                   "MOMAG": (4.0, 0.5), "MINPA": (6.0, 2.0), "MEPA": (5.0, 1.0)}
    # MMS stays on: its cooled detector reads off-nominal (warmer than -60 degC) when off.
    INSTRUMENTS_ON = frozenset({"MOMAG", "MINPA", "MEPA", "MMS"})
    STORAGE_BITS = 512e9
    PLATFORM_W = 620.0

    def __init__(self, spacecraft, *, seed, start_utc, emit, faults=None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        self.orbit = capture_orbit(start_utc)
        wings = [Array("wing_a", SolarArray(6.5)), Array("wing_b", SolarArray(6.5))]
        self.power = PowerSystem(wings, Battery(60.0, cells_series=10, internal_resistance_ohm=0.04, soc=0.85,
                                                max_charge_a=12.0, max_soc=0.88, temperature_c=15.0), bus_v=42.0)
        self._build_thermal()
        self.hold = AttitudeHold(deadband_deg=0.04, pulse_rate_deg_s=0.001, disturbance_deg_s2=5e-7,
                                 sensor_noise_deg=0.002, seed=self.rng.randrange(2**31))
        self.aocs_mode, self.slew_until = "MARS_POINT", 0.0
        self.wheel_bias = [1500.0, -1200.0, 900.0, -700.0]
        self.thruster_pulses = 41_200
        self.fuel_kg, self.oxidizer_kg = 420.0, 690.0
        self.helium_mpa = 21.0
        self.burn: dict[str, Any] | None = None
        self.engine_fault = False
        self.last_dv, self.last_burn_s = 0.0, 0.0
        self.sun_lit = True
        self.relay: dict[str, Any] | None = None
        self.relay_state = "IDLE"
        self.rover_range, self.rover_elev = 1850.0, 38.0
        self.uhf_rx, self.uhf_lock, self.uhf_tx = -88.0, "BIT_LOCK", 8.5
        self.uhf_rate = "KBPS_256"
        self.rover_frames, self.rover_lost, self.relay_queue_kb = 0, 0, 0.0
        self.images, self.mms_spectra = 120, 0
        self.mms_det = -75.0
        self.hiric_line_us, self.hiric_tdi, self.moric_exposure = 80.0, 32, 4.0
        self.hiric_busy_until = 0.0
        self.obdh.stored_bits = 0.15 * self.STORAGE_BITS
        self.field_phase = self.rng.uniform(0, 2 * math.pi)
        self._update_geometry()

    def _build_thermal(self) -> None:
        net = ThermalNetwork(SPACE_SINK_C)
        self.net = net
        self.structure = net.add(ThermalNode("electronics_panel", 200_000.0, 18.0))
        self.fuel_tank = net.add(ThermalNode("fuel_tank", 400_000.0, 20.0))
        self.ox_tank = net.add(ThermalNode("oxidizer_tank", 600_000.0, 20.0))
        self.lines = net.add(ThermalNode("propellant_lines", 3_000.0, 18.0))
        self.valve = net.add(ThermalNode("engine_valve", 2_000.0, 15.0))
        self.hiric = net.add(ThermalNode("hiric_optics", 8_000.0, 20.0))
        self.tracker = net.add(ThermalNode("star_tracker", 2_000.0, 0.0))
        self.antenna = net.add(ThermalNode("relay_antenna", 6_000.0, -20.0))
        self.bat = net.add(ThermalNode("battery", 40_000.0, 15.0))
        net.link_environment("electronics_panel", emissivity_area_m2=1.75)
        for name, g, rad in (("fuel_tank", 0.6, 0.05), ("oxidizer_tank", 0.6, 0.05), ("propellant_lines", 0.2, 0.02),
                             ("hiric_optics", 0.05, 0.03), ("star_tracker", 0.15, 0.02), ("relay_antenna", 0.05, 0.3),
                             ("battery", 1.5, 0.0)):
            net.link("electronics_panel", name, g)
            if rad:
                net.link_environment(name, emissivity_area_m2=rad)
        net.link("propellant_lines", "engine_valve", 0.8)
        net.link_environment("engine_valve", emissivity_area_m2=0.01)
        self.heaters = {
            "tanks": Heater(self.fuel_tank, 60.0, 17.0),
            "tanks_ox": Heater(self.ox_tank, 60.0, 17.0),
            "lines": Heater(self.lines, 24.0, 14.0),
            "hiric": Heater(self.hiric, 32.0, 19.5, band_c=0.5),
            "battery": Heater(self.bat, 20.0, 10.0),
        }

    # -- geometry ---------------------------------------------------------------------------

    def _rover_position(self, t: float) -> tuple[float, float, float]:
        # Mars rotation from the IAU prime meridian angle; the frame offset is ignored (approximate).
        days = (self.start_utc + timedelta(seconds=t) - datetime(2000, 1, 1, 12, tzinfo=UTC)).total_seconds() / 86400
        w = math.radians(176.630 + 350.89198226 * days + ZHURONG_LON_DEG)
        lat = math.radians(ZHURONG_LAT_DEG)
        r = MARS_RADIUS_KM
        return (r * math.cos(lat) * math.cos(w), r * math.cos(lat) * math.sin(w), r * math.sin(lat))

    def _update_geometry(self) -> None:
        self.ostate = self.orbit.at(self.t)
        rov = self._rover_position(self.t)
        d = tuple(p - q for p, q in zip(self.ostate.position_km, rov, strict=True))
        rng = math.sqrt(sum(x * x for x in d))
        up = tuple(x / MARS_RADIUS_KM for x in rov)
        self.geo_range = rng
        self.geo_elev = math.degrees(math.asin(sum(a * b for a, b in zip(d, up, strict=True)) / rng))

    def light_time_s(self) -> float:
        return earth_mars_light_time_s(self.start_utc + timedelta(seconds=self.t))

    # -- physics ----------------------------------------------------------------------------

    def step(self, t: float, dt: float) -> None:
        self.t = t
        if dt <= 0:
            return
        self._burn_step(dt)
        self._update_geometry()
        sun = self.orbit.sun_state(t)
        if self.sun_lit and not sun.lit:
            self.emit("eclipse_entry", predicted_duration=self._predict_eclipse(t))
        self.sun_lit = sun.lit
        self._relay_step(dt)
        att = self.hold.step(dt)
        self.thruster_pulses = 41_200 + att.thruster_pulses // 8
        heater_w = sum(h.update(dt) for h in self.heaters.values())
        relay_w = 60.0 if self.relay_state in ("HAILING", "LINKED", "TRANSFER") else 0.0
        load = self.PLATFORM_W * (0.75 if self.mode == "SAFE" else 1.0) + heater_w + self.instrument_load_w() \
            + relay_w + (150.0 if self.burn and self.burn["firing"] else 0.0)
        cos_i = 0.985 if self.aocs_mode != "SUN_SAFE" else 1.0
        self.power.step(dt, sun.irradiance_wm2, [cos_i, cos_i], 55.0 if sun.lit else -60.0, load,
                        self.capacity_factor())
        self.power.battery.temperature_c = self.bat.temperature_c
        lit = 1.0 if sun.lit else 0.0
        self.structure.internal_w = 0.85 * (load - heater_w) + 180.0 * lit + self.fault_heat("electronics_panel")
        self.antenna.internal_w = 75.0 * lit + self.fault_heat("relay_antenna")
        self.tracker.internal_w = 6.0 + self.fault_heat("star_tracker")
        self.hiric.internal_w = (12.0 if self.is_on("HIRIC") else 0.0) + self.fault_heat("hiric_optics")
        self.valve.internal_w = (250.0 if self.burn and self.burn["firing"] else 0.0) + self.fault_heat("engine_valve")
        self.bat.internal_w = self.power.state.current_a ** 2 * 0.04 + self.fault_heat("battery")
        self.fuel_tank.extra_w, self.ox_tank.extra_w = self.fault_heat("fuel_tank"), self.fault_heat("oxidizer_tank")
        self.lines.extra_w = self.fault_heat("propellant_lines")
        self.net.step(dt)
        # MMS cooler pulls the detector down while on; off, the detector warms toward the structure.
        target = -75.0 if self.is_on("MMS") else self.structure.temperature_c
        self.mms_det += (target - self.mms_det) * (1 - math.exp(-dt / 900.0))
        if self.is_on("MMS"):
            self.mms_spectra += int(dt // 2)
        downlink = 16e3 if self.mode != "SAFE" else 2e3
        self.obdh.step(dt, self.rng, produced_bits=self.science_bits(dt), downlink_bps=downlink, edac_per_hour=1.5)
        self.relay_queue_kb = max(0.0, self.relay_queue_kb - downlink * 0.25 * dt / 8000.0)
        self.obdh.cpu.update(22.0 + (20.0 if self.burn else 0.0), dt)
        soc = 100.0 * self.power.battery.soc
        if self.once("battery_low", soc < 50.0 or self.power.state.voltage_v < 34.0, soc > 60.0):
            self.emit("battery_low", battery_voltage=self.power.state.voltage_v, battery_soc=soc)
            for name in ("MOSIR", "HIRIC", "MORIC", "MMS"):
                self.set_instrument(name, False)
        if soc < 30.0:
            self.autonomous_safe_mode("UNDERVOLTAGE")

    def _predict_eclipse(self, t: float) -> float:
        end = t
        while end - t < 6 * 3600 and not self.orbit.sun_state(end).lit:
            end += 30.0
        return end - t

    def _burn_step(self, dt: float) -> None:
        b = self.burn
        if b is None:
            return
        if not b["firing"]:
            if self.t < b["ignition"]:
                return
            b["firing"], b["start"] = True, self.t
            self.aocs_mode = "ORBIT_CONTROL"
            self.emit("maneuver_started", engine=b["engine"], planned_delta_v=b["dv"])
        thrust, isp = ENGINES[b["engine"]]
        h = min(dt, b["max"] - b["elapsed"])
        mass = DRY_MASS_KG + self.fuel_kg + self.oxidizer_kg
        mdot = thrust / (isp * G0)
        # Burn only as long as needed for the planned delta-v: dv = Isp g0 ln(m0/m1).
        need_dm = mass * (1 - math.exp(-(b["dv"] - b["achieved"]) / (isp * G0)))
        dm = min(mdot * h, need_dm, self.fuel_kg + self.oxidizer_kg)
        b["achieved"] += isp * G0 * math.log(mass / (mass - dm)) if dm > 0 else 0.0
        b["used"] += dm
        self.fuel_kg -= dm / 2.65   # mixture ratio 1.65 (oxidizer : fuel)
        self.oxidizer_kg -= dm * 1.65 / 2.65
        self.helium_mpa -= dm * 0.004
        b["elapsed"] += h
        # An overheated engine valve (thermal runaway) trips the engine's protection: the burn stops short.
        anomaly = b["engine"] == "MAIN_3000N" and self.valve.temperature_c > 80.0
        if anomaly:
            self.engine_fault = True
            self.emit("engine_anomaly", chamber_pressure=0.82, burn_elapsed=b["elapsed"])
        if anomaly or b["achieved"] >= b["dv"] - 1e-6 or b["elapsed"] >= b["max"] or self.fuel_kg <= 0:
            self._apply_dv(b["achieved"])
            self.last_dv, self.last_burn_s = b["achieved"], b["elapsed"]
            self.burn = None
            self.aocs_mode = "MARS_POINT"
            self.emit("maneuver_completed", achieved_delta_v=self.last_dv, burn_elapsed=self.last_burn_s,
                      propellant_used=b["used"])

    def _apply_dv(self, dv_m_s: float, t: float | None = None) -> tuple[float, ...]:
        """Retrograde impulse (orbit lowering, the phase's manoeuvres): new elements; applied when ``t`` is None."""
        s = self.orbit.at(self.t if t is None else t)
        speed = math.sqrt(sum(x * x for x in s.velocity_km_s))
        k = (speed - dv_m_s / 1000.0) / speed
        v = tuple(x * k for x in s.velocity_km_s)
        el = elements_from_state(s.position_km, v)
        if t is None:
            self.orbit.set_elements(*el, at_t=self.t)
        return el

    def _relay_step(self, dt: float) -> None:
        r = self.relay
        if r is None:
            return
        if self.t < r["start"]:
            return
        if self.relay_state == "IDLE":
            self.relay_state = "HAILING"
            r["hail"] = self.t
        visible = self.geo_elev > 5.0
        if self.relay_state == "HAILING":
            if visible:
                self.relay_state = "LINKED"
                self.emit("relay_session_started", rover_range=self.geo_range, data_rate=r["rate"])
            elif self.t - r["hail"] > 120.0:
                self.relay_state, self.relay = "FAILED", None
                self.uhf_lock = "NO_LOCK"
                self.emit("relay_session_ended", frames_received=0, frames_lost=0)
                return
        if self.relay_state in ("LINKED", "TRANSFER"):
            self.relay_state = "TRANSFER"
            self.rover_range, self.rover_elev = self.geo_range, self.geo_elev
            self.uhf_rx = -40.0 - 20.0 * math.log10(max(self.geo_range, 300.0) / 300.0) * 1.6 + self.noise(0.5)
            self.uhf_lock, self.uhf_tx = "BIT_LOCK", 8.5 + self.noise(0.05)
            frames = RELAY_RATES_BPS[r["rate"]] * dt / UHF_FRAME_BITS
            lost = frames * (0.001 if visible else 1.0)
            self.rover_frames += int(frames - lost)
            self.rover_lost = min(65535, self.rover_lost + int(lost + self.rng.random()))
            self.relay_queue_kb += (frames - lost) * 220 / 1000.0
            r["got"] += int(frames - lost)
            r["lost"] += int(lost)
        if self.t >= r["start"] + r["duration"]:
            self.emit("relay_session_ended", frames_received=r["got"], frames_lost=r["lost"])
            self.relay_state, self.relay = "IDLE", None

    def shed_loads(self) -> None:
        self.aocs_mode = "SUN_SAFE"
        if self.burn is not None:
            self.burn = None
        self.relay, self.relay_state = None, "IDLE"

    def exit_safe_mode(self) -> None:
        super().exit_safe_mode()
        self.aocs_mode = "MARS_POINT"

    # -- housekeeping ---------------------------------------------------------------------

    def hk_power(self) -> dict[str, Any]:
        v = self.power_fields(self.structure.temperature_c + 6.0)
        # The drives keep the wings on the Sun: their angle turns once per orbit when Mars-pointing.
        angle = (self.ostate.true_anomaly_deg + 90.0) % 360.0 if self.aocs_mode == "MARS_POINT" else 90.0
        v["sada_a_angle"], v["sada_b_angle"] = angle, (360.0 - angle) % 360.0
        return v

    def hk_thermal(self) -> dict[str, Any]:
        n = self.noise
        return {
            "temp_fuel_tank": self.fuel_tank.temperature_c + n(0.05),
            "temp_oxidizer_tank": self.ox_tank.temperature_c + n(0.05),
            "temp_engine_valve": self.valve.temperature_c + n(0.1),
            "temp_propellant_lines": self.lines.temperature_c + n(0.1),
            "temp_electronics_panel": self.structure.temperature_c + n(0.05),
            "temp_hiric_optics": self.hiric.temperature_c + n(0.02),
            "temp_star_tracker": self.tracker.temperature_c + n(0.1),
            "temp_relay_antenna": self.antenna.temperature_c + n(0.2),
            "heater_tanks_duty": (self.heaters["tanks"].duty_percent + self.heaters["tanks_ox"].duty_percent) / 2,
            "heater_lines_duty": self.heaters["lines"].duty_percent,
            "heater_hiric_duty": self.heaters["hiric"].duty_percent,
            "heater_battery_duty": self.heaters["battery"].duty_percent,
        }

    def hk_attitude(self) -> dict[str, Any]:
        att = self.hold.state
        s = self.ostate
        if self.aocs_mode in ("MARS_POINT", "RELAY_TRACK", "ORBIT_CONTROL"):
            angle = math.radians(s.true_anomaly_deg)
            rate_z = math.degrees(math.sqrt(MARS_MU_KM3_S2 * self.orbit.a * (1 - self.orbit.e ** 2)) / s.radius_km ** 2)
        else:
            angle, rate_z = math.radians(30.0), 0.0
        ex, ey, ez = (math.radians(e) / 2 for e in att.error_deg)
        q = (math.cos(angle / 2), ex, ey, math.sin(angle / 2) + ez)
        norm = math.sqrt(sum(x * x for x in q))
        slewing = self.t < self.slew_until
        err = math.sqrt(sum(e * e for e in att.error_deg)) + (0.5 if slewing else 0.0)
        values: dict[str, Any] = {
            "aocs_mode": self.aocs_mode,
            "star_tracker": "TRACKING",
            "attitude_q0": q[0] / norm, "attitude_q1": q[1] / norm, "attitude_q2": q[2] / norm,
            "attitude_q3": q[3] / norm,
            "rate_x": att.rate_deg_s[0], "rate_y": att.rate_deg_s[1], "rate_z": rate_z + att.rate_deg_s[2],
            "pointing_error": err,
        }
        phase = 2 * math.pi * self.t / self.orbit.period_s
        for i, bias in enumerate(self.wheel_bias):
            values[f"wheel_{i + 1}_speed"] = bias + 300.0 * math.sin(phase + i) + self.noise(2.0)
        return values

    def hk_orbit(self) -> dict[str, Any]:
        s = self.ostate
        lt = self.light_time_s()
        when = self.start_utc + timedelta(seconds=self.t)
        return {
            "periapsis_altitude": self.orbit.periapsis_alt_km,
            "apoapsis_altitude": self.orbit.apoapsis_alt_km,
            "orbital_period": self.orbit.period_s / 3600.0,
            "inclination": math.degrees(self.orbit.inc),
            "true_anomaly": s.true_anomaly_deg,
            "altitude": s.altitude_km,
            "earth_distance": lt * C_KM_S,
            "light_time": lt,
            "sun_distance": mars_sun_distance_au(when),
            "eclipse": "SUNLIT" if self.sun_lit else "UMBRA",
            "orbit_source": "ONBOARD_PROPAGATED",
        }

    def hk_propulsion(self) -> dict[str, Any]:
        b = self.burn
        firing = bool(b and b["firing"])
        main = firing and b["engine"] == "MAIN_3000N"  # type: ignore[index]
        return {
            "engine_state": "FAULT" if self.engine_fault else "FIRING" if firing else "ARMED" if b else "SAFED",
            "engine_thrust": 3000.0 + self.noise(8.0) if main else 0.0,
            "chamber_pressure": 0.82 + self.noise(0.003) if main else 0.0,
            "fuel_pressure": 1.80 - (0.06 if firing else 0.0) + self.noise(0.002),
            "fuel_mass": self.fuel_kg,
            "oxidizer_pressure": 1.82 - (0.06 if firing else 0.0) + self.noise(0.002),
            "oxidizer_mass": self.oxidizer_kg,
            "helium_pressure": self.helium_mpa,
            "burn_delta_v": b["achieved"] if firing else self.last_dv,  # type: ignore[index]
            "burn_elapsed": b["elapsed"] if firing else self.last_burn_s,  # type: ignore[index]
            "thruster_pulses": self.thruster_pulses,
        }

    def hk_obdh(self) -> dict[str, Any]:
        return self.obdh.fields(self.rng, mode=self.mode, temperature_c=self.structure.temperature_c + 8.0,
                                activity=0.6 if self.burn else 0.2)

    def hk_comms(self) -> dict[str, Any]:
        lt = self.light_time_s()
        au = lt * C_KM_S / 149_597_870.7
        s = self.ostate
        earth_az = (180.0 - s.true_anomaly_deg) % 360.0 - 180.0 if self.aocs_mode == "MARS_POINT" else 0.0
        return {
            "xband_transmitter": "ON",
            "xband_lock": "BIT_LOCK",
            "xband_rx_level": -118.0 - 20.0 * math.log10(au / 1.5) + self.noise(0.4),
            "xband_tx_power": 100.0 + self.noise(0.3),
            "xband_data_rate": "KBPS_16",
            "xband_temperature": self.structure.temperature_c + 9.0 + self.noise(0.1),
            "hga_azimuth": earth_az,
            "hga_elevation": 12.0 * math.sin(math.radians(s.true_anomaly_deg)),
        }

    def hk_relay(self) -> dict[str, Any]:
        active = self.relay_state in ("HAILING", "LINKED", "TRANSFER")
        return {
            "relay_session": self.relay_state,
            "uhf_transmitter": "ON" if active else "OFF",
            # Lock, level, power and rover geometry are measured while linked and held in between.
            "uhf_lock": self.uhf_lock,
            "uhf_rx_level": self.uhf_rx,
            "uhf_tx_power": self.uhf_tx,
            "uhf_data_rate": self.uhf_rate,
            "uhf_temperature": self.antenna.temperature_c * 0.2 + self.structure.temperature_c * 0.8 + 4.0,
            "rover_range": self.rover_range,
            "rover_elevation": self.rover_elev,
            "rover_frames_received": self.rover_frames,
            "rover_frames_lost": self.rover_lost,
            "relay_queue": self.relay_queue_kb,
        }

    def hk_cameras(self) -> dict[str, Any]:
        return {
            "moric_power": "ON" if self.is_on("MORIC") else "OFF",
            "moric_exposure": self.moric_exposure,
            "moric_temperature": self.structure.temperature_c + 2.0 + self.noise(0.1),
            "hiric_power": "ON" if self.is_on("HIRIC") else "OFF",
            "hiric_line_period": self.hiric_line_us,
            "hiric_tdi_stages": self.hiric_tdi,
            "hiric_temperature": self.hiric.temperature_c + 1.0 + self.noise(0.05),
            "images_stored": self.images,
        }

    def hk_spectrometers(self) -> dict[str, Any]:
        on = self.is_on("MMS")
        return {
            "mms_power": "ON" if on else "OFF",
            "mms_detector_temperature": self.mms_det + self.noise(0.1),
            "mms_cooler_power": 8.0 + self.noise(0.1) if on else 0.0,
            "mms_spectra": self.mms_spectra,
            "mosir_power": "ON" if self.is_on("MOSIR") else "OFF",
            "mosir_tx_power": 330.0 + self.noise(2.0) if self.is_on("MOSIR") else 0.0,
            "mosir_temperature": self.structure.temperature_c + 3.0 + self.noise(0.1),
        }

    def hk_fields_particles(self) -> dict[str, Any]:
        alt = self.ostate.altitude_km
        # Induced magnetosphere near periapsis (tens of nT), interplanetary field (a few nT) far out.
        b = 3.0 + 45.0 * math.exp(-alt / 1500.0)
        ph = self.field_phase + self.t / 3600.0
        on_mag, on_ions, on_mepa = self.is_on("MOMAG"), self.is_on("MINPA"), self.is_on("MEPA")
        return {
            "momag_power": "ON" if on_mag else "OFF",
            "momag_bx": b * math.cos(ph) + self.noise(0.2) if on_mag else 0.0,
            "momag_by": b * math.sin(ph) + self.noise(0.2) if on_mag else 0.0,
            "momag_bz": 0.4 * b * math.sin(0.7 * ph) + self.noise(0.2) if on_mag else 0.0,
            "momag_temperature": self.antenna.temperature_c * 0.5 + self.structure.temperature_c * 0.5,
            "minpa_power": "ON" if on_ions else "OFF",
            "minpa_ion_rate": (2e4 + 3e5 * math.exp(-alt / 2000.0)) * (1 + self.noise(0.05)) if on_ions else 0.0,
            "minpa_neutral_rate": (500.0 + 2e4 * math.exp(-alt / 1000.0)) * (1 + self.noise(0.05))
            if on_ions else 0.0,
            "minpa_mcp_voltage": 2400.0 if on_ions else 0.0,
            "mepa_power": "ON" if on_mepa else "OFF",
            "mepa_electron_rate": 4000.0 * (1 + self.noise(0.05)) if on_mepa else 0.0,
            "mepa_proton_rate": 300.0 * (1 + self.noise(0.05)) if on_mepa else 0.0,
            "mepa_dose_rate": 13.0 + self.noise(0.3) if on_mepa else 0.0,  # GCR level in Mars orbit
        }

    # -- commands -------------------------------------------------------------------------

    def cmd_orbit_maneuver(self, args: dict[str, Any]) -> CommandOutcome:
        if self.mode == "SAFE":
            return refused("no manoeuvres in safe mode")
        if self.burn is not None:
            return refused("a manoeuvre is already planned", RESOURCE_BUSY)
        engine, dv, max_s = str(args["engine"]), float(args["delta_v"]), float(args["max_duration"])
        if engine == "MAIN_3000N" and self.engine_fault:
            return refused("the 3000 N engine is in fault; use the 120 N thrusters", EXECUTION_FAILED)
        thrust, isp = ENGINES[engine]
        mass = DRY_MASS_KG + self.fuel_kg + self.oxidizer_kg
        need = mass * (1 - math.exp(-dv / (isp * G0)))
        if need > self.fuel_kg + self.oxidizer_kg - 30.0:
            return refused(f"needs {need:.0f} kg of propellant, {self.fuel_kg + self.oxidizer_kg:.0f} kg left",
                           CONSTRAINT_VIOLATED)
        delay = self.onboard_delay(float(args["ignition_time"]))
        a, e, *_ = self._apply_dv(dv, self.t + delay)
        if a * (1 - e) - MARS_RADIUS_KM < 120.0:
            return refused(f"periapsis would fall to {a * (1 - e) - MARS_RADIUS_KM:.0f} km", CONSTRAINT_VIOLATED)
        burn_s = min(max_s, need / (thrust / (isp * G0)))
        self.burn = {"engine": engine, "dv": dv, "max": max_s, "ignition": self.t + delay, "firing": False,
                     "achieved": 0.0, "used": 0.0, "elapsed": 0.0, "start": 0.0}
        return CommandOutcome(duration=delay + burn_s + 1.0, progress_step=max(1.0, (delay + burn_s) / 10),
                              data={"burn_s": burn_s, "propellant_kg": need})

    def cmd_set_attitude_mode(self, args: dict[str, Any]) -> CommandOutcome:
        if self.mode == "SAFE":
            return refused("attitude stays sun-safe in safe mode")
        if self.burn is not None and self.burn["firing"]:
            return refused("a burn is under way", RESOURCE_BUSY)
        mode = str(args["mode"])
        slew = 0.0 if mode == self.aocs_mode else 90.0 / 0.5  # a quarter turn at 0.5 deg/s
        self.aocs_mode, self.slew_until = mode, self.t + slew
        return CommandOutcome(duration=slew, progress_step=max(1.0, slew / 6))

    def cmd_relay_session(self, args: dict[str, Any]) -> CommandOutcome:
        if self.mode == "SAFE":
            return refused("no relay sessions in safe mode")
        if self.relay is not None:
            return refused("a relay session is already planned", RESOURCE_BUSY)
        delay = self.onboard_delay(float(args["start_time"]))
        duration = float(args["duration"])
        self.uhf_rate = str(args["data_rate"])
        self.relay = {"start": self.t + delay, "duration": duration, "rate": self.uhf_rate, "got": 0, "lost": 0}
        self.relay_state = "IDLE"
        return CommandOutcome(duration=delay + duration, progress_step=max(1.0, duration / 10))

    def cmd_hiric_image(self, args: dict[str, Any]) -> CommandOutcome:
        if not self.is_on("HIRIC"):
            return refused("HiRIC is off")
        if self.t < self.hiric_busy_until:
            return refused("HiRIC is imaging", RESOURCE_BUSY)
        delay = self.onboard_delay(float(args["start_time"]))
        lines, tdi = int(args["lines"]), int(args["tdi_stages"])
        # Line period from ground speed and 0.5 m pixels (periapsis ~4.7 km/s -> ~100 us).
        self.hiric_line_us = min(500.0, max(20.0, 0.5 / max(self.ostate.speed_km_s * 1000.0, 1.0) * 1e6))
        self.hiric_tdi = tdi
        duration = delay + lines * self.hiric_line_us * 1e-6
        self.hiric_busy_until = self.t + duration
        self.images += 1
        self.obdh.stored_bits += lines * 6144 * 8
        return CommandOutcome(duration=duration, progress_step=max(1.0, duration / 5))
