"""HY-2D ocean dynamics satellite: ~970 km circular orbit at 66 deg.

Circular orbit with J2 nodal drift and the Earth's shadow (LeoIllumination.hy2d);
sub-satellite latitude and longitude from the orbit and Greenwich sidereal
time, so the payload sees the ocean change along the track: geoid and sea
surface height, significant wave height (higher in the Southern Ocean), wind
from the three-cell circulation (trades, westerlies, polar easterlies), water
vapour path delay (wet tropics), ionospheric delay (day side).  Two sun-tracking
wings and a battery cycled by the eclipses; a thermal network with the
radiometer receiver held at 25 degC.  South Atlantic Anomaly crossings raise the
memory error rate.  Public: altitude ~970 km, 66 deg, the three instruments,
launch 2021-05-19.  Invented: the ocean fields (smooth analytic stand-ins; no
land mask), sizes, loads.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flightsw.missions.common import REFUSED_IN_MODE, RESOURCE_BUSY, Array, BaseModel, Heater, PowerSystem, refused
from flightsw.model import CommandOutcome, register_model
from flightsw.physics import AttitudeHold, Battery, LeoIllumination, SolarArray, ThermalNetwork, ThermalNode
from flightsw.physics.ephemeris import julian_date_tt, sun_ra_dec_deg
from flightsw.physics.illumination import EARTH_RADIUS_KM
from flightsw.physics.thermal import SPACE_SINK_C

LAUNCH_UTC = datetime(2021, 5, 19, 4, 3, tzinfo=UTC)
EARTH_FLATTENING = 1 / 298.257
MEAN_ALTITUDE_KM = 971.0
SPIN_ACCEL_RPM_S = 1.0
MASS_KG, THRUST_N = 1_575.0, 4 * 5.0      # hydrazine thrusters for orbit maintenance (invented)


def geoid_m(lat: float, lon: float) -> float:
    """A smooth stand-in for the geoid (m): the real one spans about -106..+85 m."""
    return 45.0 * math.cos(lat) * math.sin(2 * lon + 1.0) + 25.0 * math.sin(3 * lat) * math.cos(lon) - 10.0


def surface_wind(lat: float, lon: float) -> tuple[float, float]:
    """Mean surface wind (east, north) in m/s from the three-cell circulation, with a little longitude structure."""
    calm = 1.0 - math.exp(-(math.degrees(lat) / 6.0) ** 2)   # the doldrums where the trades meet
    u = -math.cos(3 * lat) * (1.0 + 0.15 * math.sin(2 * lon)) * calm
    v = -0.5 * math.sin(6 * lat) * calm
    scale = 10.0 if u > 0 else 7.0                          # westerlies blow harder than the trades
    boost = 1.3 if lat < math.radians(-40) else 1.0         # roaring forties
    return scale * u * boost, scale * v


@register_model
class Haiyang2dModel(BaseModel):
    spacecraft_name = "haiyang2d"
    LOAD_SHED_SOC, POWER_SAVING_SOC = 55.0, 58.0

    DEFAULT_START_UTC = datetime(2021, 6, 1, tzinfo=UTC)
    INSTRUMENTS = {"ALTIMETER": (90.0, 8.0), "SCATTEROMETER": (110.0, 30.0), "RADIOMETER": (60.0, 4.0)}
    # The operational payload runs all the time (a spun-down scatterometer reads 0 rpm, critical).
    INSTRUMENTS_ON = frozenset({"ALTIMETER", "SCATTEROMETER", "RADIOMETER"})
    STORAGE_BITS = 160e9
    PLATFORM_W = 330.0

    def __init__(self, spacecraft, *, seed, start_utc, emit, faults=None) -> None:
        super().__init__(spacecraft, seed=seed, start_utc=start_utc, emit=emit, faults=faults)
        # The orbit plane's node is invented (fixed, not seeded: the orbit is not noise).
        self.illum = LeoIllumination.hy2d(start_utc, raan_deg=120.0)
        self.jd0 = julian_date_tt(start_utc) - 69.184 / 86400.0  # UT1 ~ UTC for sidereal time
        wings = [Array("wing_a", SolarArray(1.9)), Array("wing_b", SolarArray(1.9))]
        self.power = PowerSystem(wings, Battery(80.0, cells_series=8, internal_resistance_ohm=0.03, soc=0.85,
                                                max_charge_a=15.0, max_soc=0.88, temperature_c=15.0), bus_v=28.5)
        net = ThermalNetwork(SPACE_SINK_C)
        self.net = net
        self.structure = net.add(ThermalNode("avionics", 120_000.0, 18.0))
        self.rfu = net.add(ThermalNode("altimeter_rfu", 6_000.0, 18.0))
        self.scat_tx = net.add(ThermalNode("scatterometer_tx", 5_000.0, 22.0))
        self.rad_rx = net.add(ThermalNode("radiometer_receiver", 4_000.0, 25.0))
        self.tank = net.add(ThermalNode("propellant_tank", 40_000.0, 18.0))
        self.bat = net.add(ThermalNode("battery", 30_000.0, 15.0))
        net.link_environment("avionics", emissivity_area_m2=1.5)
        for name, g, rad in (("altimeter_rfu", 0.8, 0.08), ("scatterometer_tx", 0.8, 0.12),
                             ("radiometer_receiver", 0.05, 0.01), ("propellant_tank", 0.4, 0.03),
                             ("battery", 1.5, 0.02)):
            net.link("avionics", name, g)
            net.link_environment(name, emissivity_area_m2=rad)
        self.heaters = {"radiometer": Heater(self.rad_rx, 12.0, 24.6, band_c=0.4),
                        "tank": Heater(self.tank, 15.0, 14.0), "battery": Heater(self.bat, 20.0, 8.0)}
        self.hold = AttitudeHold(deadband_deg=0.02, pulse_rate_deg_s=0.0005, disturbance_deg_s2=1e-6,
                                 sensor_noise_deg=0.001, seed=self.rng.randrange(2**31))
        self.aocs_mode = "YAW_STEERING"
        self.alt_offset_km = 0.0
        self.altimeter_mode, self.alt_target_mode, self.alt_mode_until = "TRACKING_KU_C", "TRACKING_KU_C", 0.0
        self.spin, self.spin_target = 96.0, 96.0
        self.burn: dict[str, Any] | None = None
        self.satellites = 10
        self.in_saa = False
        self.sun_lit = True
        self.scat_tripped = False   # over-temperature protection opened the transmitter's switch
        self.eddy_phase = (self.rng.uniform(0, 6.3), self.rng.uniform(0, 6.3))
        self.orbits0 = int((start_utc - LAUNCH_UTC).total_seconds() / self.illum.period_s)
        self.obdh.stored_bits = 0.25 * self.STORAGE_BITS
        self._geo(0.0)

    # -- geometry -------------------------------------------------------------------------

    def _geo(self, t: float) -> None:
        il = self.illum
        raan = math.radians(il.raan0_deg) + il.raan_rate * t
        inc = math.radians(il.inclination_deg)
        u = math.radians(il.u0_deg) + il.mean_motion * t
        x = math.cos(raan) * math.cos(u) - math.sin(raan) * math.sin(u) * math.cos(inc)
        y = math.sin(raan) * math.cos(u) + math.cos(raan) * math.sin(u) * math.cos(inc)
        z = math.sin(u) * math.sin(inc)
        gmst = math.radians(280.46061837 + 360.98564736629 * (self.jd0 + t / 86400.0 - 2451545.0))
        self.u = u
        self.lat = math.asin(max(-1.0, min(1.0, z)))
        self.lon = (math.atan2(y, x) - gmst + math.pi) % (2 * math.pi) - math.pi
        # Altitude above the ellipsoid: the circular orbit reads higher over the flattened poles.
        r_earth = EARTH_RADIUS_KM * (1 - EARTH_FLATTENING * math.sin(self.lat) ** 2)
        self.altitude = il.a_km + self.alt_offset_km - r_earth - 8.0
        # Sun in the orbit frame: beta above the plane, mu the satellite's angle from the Sun's projection.
        ra, dec = (math.radians(v) for v in sun_ra_dec_deg(il.utc(t)))
        sun = (math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec))
        normal = (math.sin(inc) * math.sin(raan), -math.sin(inc) * math.cos(raan), math.cos(inc))
        sn = sum(a * b for a, b in zip(sun, normal, strict=True))
        self.beta = math.asin(max(-1.0, min(1.0, sn)))
        proj = [a - sn * b for a, b in zip(sun, normal, strict=True)]
        norm = math.sqrt(sum(c * c for c in proj)) or 1.0
        proj = [c / norm for c in proj]
        cross = (normal[1] * proj[2] - normal[2] * proj[1], normal[2] * proj[0] - normal[0] * proj[2],
                 normal[0] * proj[1] - normal[1] * proj[0])
        sat = (x, y, z)
        self.mu = math.atan2(sum(a * b for a, b in zip(cross, sat, strict=True)),
                             sum(a * b for a, b in zip(proj, sat, strict=True)))

    # -- physics --------------------------------------------------------------------------

    def step(self, t: float, dt: float) -> None:
        self.t = t
        if dt <= 0:
            return
        self._geo(t)
        sun = self.illum.at(t)
        self.sun_lit = sun.lit
        self.hold.step(dt)
        self._instruments_step(dt)
        self._burn_step()
        heater_w = sum(h.update(dt) for h in self.heaters.values())
        load = self.PLATFORM_W + heater_w + self.instrument_load_w()
        # One-axis drives turn the wings about the pitch axis; yaw steering turns that axis square to the
        # Sun (the Jason-class attitude law of 66-degree altimetry orbits), else the beta angle is lost.
        if self.aocs_mode == "SAFE":
            cos_i = 1.0   # the safe attitude points the arrays at the Sun
        else:
            cos_i = 0.995 if self._steering() else abs(math.cos(self.beta))
        self.power.step(dt, sun.irradiance_wm2, [cos_i, cos_i], 50.0 if sun.lit else -60.0, load,
                        self.capacity_factor())
        self.power.battery.temperature_c = self.bat.temperature_c
        lit = 1.0 if sun.lit else 0.0
        self.structure.internal_w = 0.8 * (load - heater_w) + 100.0 * lit + 80.0 + self.fault_heat("avionics")
        self.rfu.internal_w = (25.0 if self.is_on("ALTIMETER") else 0.0) + self.fault_heat("altimeter_rfu")
        self.scat_tx.internal_w = (45.0 if self.is_on("SCATTEROMETER") else 0.0) + 15.0 * lit \
            + self.fault_heat("scatterometer_tx")
        self.rad_rx.internal_w = (4.0 if self.is_on("RADIOMETER") else 0.0) + self.fault_heat("radiometer_receiver")
        self.tank.extra_w = self.fault_heat("propellant_tank")
        self.bat.internal_w = self.power.state.current_a ** 2 * 0.03 + self.fault_heat("battery")
        self.net.step(dt)
        # Over-temperature protection trips the scatterometer transmitter.
        if self.is_on("SCATTEROMETER") and self.scat_tx.temperature_c > 55.0:
            self.set_instrument("SCATTEROMETER", False, emit=False)
            self.scat_tripped = True
            self.emit("instrument_power_changed", instrument="SCATTEROMETER", state="TRIPPED")
        saa = self._in_saa()
        if saa and not self.in_saa:
            self.emit("saa_entry", edac_errors=self.obdh.edac_errors)
        self.in_saa = saa
        self.obdh.step(dt, self.rng, produced_bits=self.science_bits(dt), downlink_bps=36e3,
                       edac_per_hour=25.0 if saa else 0.5)
        self.obdh.cpu.update(25.0, dt)
        if self.rng.random() < dt / 600.0:
            self.satellites = max(7, min(14, self.satellites + self.rng.choice((-1, 1))))
        soc = 100.0 * self.power.battery.soc
        if self.once("battery_low", soc < 55.0, soc > 65.0):
            self.emit("battery_low", battery_voltage=self.power.state.voltage_v, battery_soc=soc)
            self.set_instrument("SCATTEROMETER", False)
        if soc < 35.0:
            self.autonomous_safe_mode("UNDERVOLTAGE")

    def _steering(self) -> bool:
        """Yaw steering proper above 15 deg of beta; below it the law would flip 180 deg, so yaw stays fixed."""
        return self.aocs_mode == "YAW_STEERING" and abs(self.beta) > math.radians(15.0)

    def _in_saa(self) -> bool:
        dlat = (math.degrees(self.lat) + 25.0) / 25.0
        dlon = (math.degrees(self.lon) + 45.0) / 55.0
        return dlat * dlat + dlon * dlon < 1.0

    def _instruments_step(self, dt: float) -> None:
        target = self.spin_target if self.is_on("SCATTEROMETER") else 0.0
        step = SPIN_ACCEL_RPM_S * dt
        self.spin += max(-step, min(step, target - self.spin))
        if self.is_on("ALTIMETER") and self.altimeter_mode != self.alt_target_mode and self.t >= self.alt_mode_until:
            self.altimeter_mode = self.alt_target_mode

    def _burn_step(self) -> None:
        b = self.burn
        if b is None:
            return
        if self.t >= b["ignition"] and self.aocs_mode != "ORBIT_CONTROL":
            self.aocs_mode = "ORBIT_CONTROL"
        if self.t >= b["end"]:
            # Raising the circular orbit: dh = 2 a dv / v.
            v = self.illum.a_km * self.illum.mean_motion
            self.alt_offset_km += 2.0 * self.illum.a_km * b["dv"] / 1000.0 / v
            self.burn = None
            self.aocs_mode = "YAW_STEERING"

    def instrument_changed(self, name: str, on: bool) -> None:
        if name == "ALTIMETER":
            self.altimeter_mode = self.alt_target_mode = "ACQUISITION" if on else "STANDBY"
            if on:
                self.alt_target_mode, self.alt_mode_until = "TRACKING_KU_C", self.t + 8.0
        if name == "SCATTEROMETER" and on:
            self.scat_tripped = False

    def shed_loads(self) -> None:
        self.aocs_mode, self.burn = "SAFE", None

    def exit_safe_mode(self) -> None:
        super().exit_safe_mode()
        self.aocs_mode = "YAW_STEERING"

    # -- housekeeping ---------------------------------------------------------------------

    def hk_power(self) -> dict[str, Any]:
        return self.power_fields(self.structure.temperature_c + 5.0)

    def hk_thermal(self) -> dict[str, Any]:
        n = self.noise
        return {
            "temp_altimeter_rfu": self.rfu.temperature_c + n(0.05),
            "temp_scatterometer_tx": self.scat_tx.temperature_c + n(0.1),
            "temp_radiometer_receiver": self.rad_rx.temperature_c + n(0.01),
            "temp_avionics": self.structure.temperature_c + n(0.05),
            "temp_propellant_tank": self.tank.temperature_c + n(0.05),
            "heater_radiometer_duty": self.heaters["radiometer"].duty_percent,
            "heater_tank_duty": self.heaters["tank"].duty_percent,
            "heater_battery_duty": self.heaters["battery"].duty_percent,
        }

    def hk_attitude(self) -> dict[str, Any]:
        att = self.hold.state
        # Nadir pointing turns once per orbit about the orbit normal; yaw steering adds ~4 deg x cos(u).
        pitch = self.u
        # Ideal yaw steering: yaw = atan2(tan beta, sin mu) keeps the array axis perpendicular to the Sun.
        yaw = math.atan2(math.tan(self.beta), math.sin(self.mu)) if self._steering() else 0.0
        ex, ey, ez = (math.radians(e) / 2 for e in att.error_deg)
        q = (math.cos(pitch / 2) * math.cos(yaw / 2), ex, math.sin(pitch / 2) + ey, math.sin(yaw / 2) + ez)
        norm = math.sqrt(sum(x * x for x in q))
        rate = math.degrees(self.illum.mean_motion)
        values: dict[str, Any] = {
            "aocs_mode": self.aocs_mode,
            "star_tracker": "TRACKING",
            "attitude_q0": q[0] / norm, "attitude_q1": q[1] / norm, "attitude_q2": q[2] / norm,
            "attitude_q3": q[3] / norm,
            "rate_x": att.rate_deg_s[0], "rate_y": -rate + att.rate_deg_s[1], "rate_z": att.rate_deg_s[2],
            "pointing_error": math.sqrt(sum(e * e for e in att.error_deg)),
        }
        for i, bias in enumerate((1800.0, -1500.0, 1200.0, -1000.0)):
            values[f"wheel_{i + 1}_speed"] = bias + 200.0 * math.sin(self.u + i) + self.noise(2.0)
        return values

    def hk_navigation(self) -> dict[str, Any]:
        return {
            "gnss_fix": "PRECISE",
            "gnss_satellites": self.satellites,
            "latitude": math.degrees(self.lat),
            "longitude": math.degrees(self.lon),
            "altitude": self.altitude,
            "orbit_number": self.orbits0 + int((self.u - math.radians(self.illum.u0_deg)) / (2 * math.pi)),
            "position_error": 2.5 + abs(self.noise(0.8)),
        }

    def hk_obdh(self) -> dict[str, Any]:
        return self.obdh.fields(self.rng, mode=self.mode, temperature_c=self.structure.temperature_c + 6.0,
                                activity=0.3)

    def hk_comms(self) -> dict[str, Any]:
        # TT&C through the Tianlian data relay satellites: continuous S-band contact.
        return {
            "sband_transmitter": "ON",
            "sband_lock": "BIT_LOCK",
            "sband_rx_level": -95.0 + 3.0 * math.sin(self.u) + self.noise(0.5),
            "sband_tx_power": 4.0 + self.noise(0.05),
            "sband_data_rate": "KBPS_32",
            "sband_temperature": self.structure.temperature_c + 4.0 + self.noise(0.1),
            "xband_transmitter": "ON",
            "xband_tx_power": 15.0 + self.noise(0.1),
            "xband_data_rate": "MBPS_150",
            "xband_temperature": self.structure.temperature_c + 8.0 + self.noise(0.1),
        }

    def _ocean(self) -> dict[str, float]:
        lat, lon = self.lat, self.lon
        u, v = surface_wind(lat, lon)
        e1, e2 = self.eddy_phase
        gust = 1.0 + 0.12 * math.sin(7 * lon + e1) * math.cos(5 * lat + e2)
        speed = max(0.3, math.hypot(u, v) * gust + 2.0 + self.noise(0.3))
        swh = 1.5 + 3.0 * (abs(math.degrees(lat)) / 60.0) ** 2 + (1.0 if math.degrees(lat) < -40 else 0.0)
        swh = max(0.2, swh * (0.8 + 0.05 * speed) + self.noise(0.1))
        wet = 5.0 + 30.0 * math.cos(lat) ** 3 + self.noise(0.5)
        local_h = (self._utc_hour() + math.degrees(self.lon) / 15.0) % 24.0
        iono = 0.04 + 0.16 * max(0.0, math.cos(math.radians((local_h - 14.0) * 15.0))) * math.cos(lat)
        return {"u": u, "v": v, "speed": speed, "swh": swh, "wet": wet, "iono": iono,
                "ssha": 0.25 * math.sin(9 * lon + e1) * math.sin(11 * lat + e2) + self.noise(0.03)}

    def _utc_hour(self) -> float:
        when = self.illum.utc(self.t)
        return when.hour + when.minute / 60.0

    def hk_altimeter(self) -> dict[str, Any]:
        on = self.is_on("ALTIMETER")
        o = self._ocean()
        ssh = geoid_m(self.lat, self.lon) + 0.6 * math.cos(self.lat) + o["ssha"]
        tracking = on and self.altimeter_mode.startswith("TRACKING")
        sigma0 = 14.5 - 0.45 * o["speed"] + self.noise(0.1)
        return {
            "altimeter_power": "ON" if on else "OFF",
            "altimeter_mode": self.altimeter_mode if on else "STANDBY",
            "altimeter_range": self.altitude - ssh / 1000.0 + self.noise(0.00003),
            "sea_surface_height": ssh if tracking else 0.0,
            "ssh_anomaly": o["ssha"] if tracking else 0.0,
            "significant_wave_height": o["swh"] if tracking else 0.0,
            "sigma0_ku": sigma0 if tracking else 10.0,
            "sigma0_c": sigma0 + 1.5 if tracking and self.altimeter_mode == "TRACKING_KU_C" else 10.0,
            "ionosphere_delay": o["iono"] if self.altimeter_mode == "TRACKING_KU_C" else 0.1,
            "altimeter_agc": 32.0 + 0.3 * o["swh"] + self.noise(0.2),
        }

    def hk_scatterometer(self) -> dict[str, Any]:
        on = self.is_on("SCATTEROMETER")
        o = self._ocean()
        direction = (math.degrees(math.atan2(-o["u"], -o["v"])) + self.noise(5.0)) % 360.0  # "from"
        spinning = on and self.spin >= 94.0
        mode = "WIND" if spinning and not self.scat_tripped else "STANDBY"
        return {
            "scatterometer_power": "TRIPPED" if self.scat_tripped else "ON" if on else "OFF",
            "scatterometer_mode": mode,
            "wind_speed": o["speed"] if mode == "WIND" else 0.0,
            "wind_direction": direction if mode == "WIND" else 0.0,
            "antenna_spin_rate": self.spin + self.noise(0.05) if self.spin > 0.5 else 0.0,
            "scatterometer_tx_power": 120.0 - 0.2 * (self.scat_tx.temperature_c - 25.0) + self.noise(0.3)
            if on else 0.0,
            "scatterometer_sigma0": -22.0 + 0.9 * o["speed"] + self.noise(0.2) if mode == "WIND" else -30.0,
            "scatterometer_noise": -100.0 + 0.05 * self.scat_tx.temperature_c + self.noise(0.2),
        }

    def hk_radiometer(self) -> dict[str, Any]:
        on = self.is_on("RADIOMETER")
        o = self._ocean()
        cold = 2.7 if not on else None
        return {
            "radiometer_power": "ON" if on else "OFF",
            "tb_18": cold or 150.0 + 2.0 * o["speed"] + 0.8 * o["wet"] + self.noise(0.3),
            "tb_23": cold or 165.0 + 1.0 * o["speed"] + 2.0 * o["wet"] + self.noise(0.3),
            "tb_37": cold or 195.0 + 1.5 * o["speed"] + 0.6 * o["wet"] + self.noise(0.3),
            "wet_path_delay": o["wet"] if on else 0.0,
            "hot_load_temperature": 300.0 + 0.3 * (self.rad_rx.temperature_c - 25.0) + self.noise(0.05),
        }

    # -- commands -------------------------------------------------------------------------

    def cmd_altimeter_mode(self, args: dict[str, Any]) -> CommandOutcome:
        if not self.is_on("ALTIMETER"):
            return refused("the altimeter is off")
        mode = str(args["mode"])
        if mode == "STANDBY":
            self.altimeter_mode = self.alt_target_mode = "STANDBY"
            return CommandOutcome()
        if mode == "CALIBRATION":
            self.altimeter_mode, self.alt_target_mode = "CALIBRATION", "TRACKING_KU_C"
            self.alt_mode_until = self.t + 60.0
            return CommandOutcome(duration=60.0, progress_step=10.0)
        # Tracking modes re-acquire the echo first.
        self.altimeter_mode, self.alt_target_mode, self.alt_mode_until = "ACQUISITION", mode, self.t + 8.0
        return CommandOutcome(duration=8.0, progress_step=2.0)

    def cmd_scatterometer_spin(self, args: dict[str, Any]) -> CommandOutcome:
        if not self.is_on("SCATTEROMETER"):
            return refused("the scatterometer is off")
        rate = float(args["rate"])
        duration = abs(rate - self.spin) / SPIN_ACCEL_RPM_S
        self.spin_target = rate
        return CommandOutcome(duration=duration, progress_step=max(1.0, duration / 5))

    def cmd_orbit_maintenance(self, args: dict[str, Any]) -> CommandOutcome:
        if self.mode == "SAFE":
            return refused("no manoeuvres in safe mode", REFUSED_IN_MODE)
        if self.burn is not None:
            return refused("a manoeuvre is already planned", RESOURCE_BUSY)
        dv = float(args["delta_v"])
        delay = self.onboard_delay(float(args["ignition_time"]))
        burn_s = abs(dv) * MASS_KG / THRUST_N
        self.burn = {"dv": dv, "ignition": self.t + delay, "end": self.t + delay + burn_s}
        return CommandOutcome(duration=delay + burn_s, progress_step=max(1.0, (delay + burn_s) / 10),
                              data={"burn_s": burn_s})
