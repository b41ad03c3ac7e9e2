"""Keplerian orbit propagation (two-body), with the Tianwen-1 Mars capture orbit as a preset.

Tianwen-1 was captured by Mars on 2021-02-10 (~11:52 UTC) into a ~10-day orbit:
periapsis altitude ~400 km, apoapsis altitude ~180,000 km, inclination ~10 deg
(CNSA).  The preset derives the semi-major axis from the 10-day period, which
gives an apoapsis altitude of ~179,000 km — consistent with the published figure.
Two-body only: no J2, no third-body perturbations, no manoeuvres (a mission
model changes elements with :meth:`KeplerOrbit.set_elements` when it burns).
:meth:`KeplerOrbit.sun_state` adds the Mars shadow (cylindrical) for power models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flightsw.physics import ephemeris as eph
from flightsw.physics.illumination import SOLAR_CONSTANT_WM2, SunState

MARS_MU_KM3_S2 = 42_828.375214
MARS_RADIUS_KM = 3_389.5
MARS_OBLIQUITY_DEG = 25.19
TIANWEN1_CAPTURE_UTC = datetime.fromisoformat("2021-02-10T11:52:00+00:00")


@dataclass(frozen=True)
class OrbitState:
    t: float
    radius_km: float
    altitude_km: float
    true_anomaly_deg: float
    speed_km_s: float
    position_km: tuple[float, float, float]   # body-centred inertial (equator of the body)
    velocity_km_s: tuple[float, float, float]


class KeplerOrbit:
    """An elliptic orbit about a central body; ``step(dt)`` or ``at(t)`` give the state."""

    def __init__(self, *, semi_major_axis_km: float, eccentricity: float, inclination_deg: float = 0.0,
                 raan_deg: float = 0.0, arg_periapsis_deg: float = 0.0, mean_anomaly_deg: float = 0.0,
                 mu_km3_s2: float = MARS_MU_KM3_S2, body_radius_km: float = MARS_RADIUS_KM,
                 epoch: datetime | None = None) -> None:
        self.mu = mu_km3_s2
        self.body_radius_km = body_radius_km
        self.epoch = epoch
        self.t = 0.0
        self.set_elements(semi_major_axis_km, eccentricity, inclination_deg, raan_deg, arg_periapsis_deg,
                          mean_anomaly_deg)

    def set_elements(self, a_km: float, e: float, inc_deg: float, raan_deg: float, argp_deg: float,
                     mean_anomaly_deg: float, at_t: float | None = None) -> None:
        """(Re)define the orbit; the mean anomaly refers to time ``at_t`` (default: now)."""
        if a_km <= 0 or not 0 <= e < 1:
            raise ValueError(f"elliptic orbit needs a > 0 and 0 <= e < 1, got a={a_km}, e={e}")
        if a_km * (1 - e) <= self.body_radius_km:
            raise ValueError(f"periapsis radius {a_km * (1 - e):.0f} km is inside the body ({self.body_radius_km} km)")
        self.a, self.e = a_km, e
        self.inc, self.raan, self.argp = (math.radians(v) for v in (inc_deg, raan_deg, argp_deg))
        self.n = math.sqrt(self.mu / a_km ** 3)
        self.m0 = math.radians(mean_anomaly_deg)
        self.t0 = self.t if at_t is None else at_t

    @classmethod
    def from_apsides(cls, periapsis_alt_km: float, apoapsis_alt_km: float, **kwargs) -> KeplerOrbit:
        r = kwargs.get("body_radius_km", MARS_RADIUS_KM)
        rp, ra = r + periapsis_alt_km, r + apoapsis_alt_km
        return cls(semi_major_axis_km=(rp + ra) / 2, eccentricity=(ra - rp) / (ra + rp), **kwargs)

    @classmethod
    def tianwen1_capture(cls, *, mean_anomaly_deg: float = 0.0) -> KeplerOrbit:
        """Mars capture orbit: 400 km periapsis altitude, 10-day period, 10 deg inclination (starts at periapsis)."""
        period = 10 * 86400.0
        a = (MARS_MU_KM3_S2 * (period / (2 * math.pi)) ** 2) ** (1 / 3)
        rp = MARS_RADIUS_KM + 400.0
        return cls(semi_major_axis_km=a, eccentricity=1 - rp / a, inclination_deg=10.0,
                   mean_anomaly_deg=mean_anomaly_deg, epoch=TIANWEN1_CAPTURE_UTC)

    @property
    def period_s(self) -> float:
        return 2 * math.pi / self.n

    @property
    def periapsis_alt_km(self) -> float:
        return self.a * (1 - self.e) - self.body_radius_km

    @property
    def apoapsis_alt_km(self) -> float:
        return self.a * (1 + self.e) - self.body_radius_km

    def at(self, t: float) -> OrbitState:
        m = self.m0 + self.n * (t - self.t0)
        ecc_anom = eph.solve_kepler(m, self.e)
        cos_e = math.cos(ecc_anom)
        r = self.a * (1 - self.e * cos_e)
        nu = 2 * math.atan2(math.sqrt(1 + self.e) * math.sin(ecc_anom / 2), math.sqrt(1 - self.e) * math.cos(ecc_anom / 2))
        # Perifocal position/velocity, then rotate to inertial.
        p = self.a * (1 - self.e ** 2)
        h = math.sqrt(self.mu * p)
        xp, yp = r * math.cos(nu), r * math.sin(nu)
        vxp, vyp = -self.mu / h * math.sin(nu), self.mu / h * (self.e + math.cos(nu))
        co, so = math.cos(self.raan), math.sin(self.raan)
        cw, sw = math.cos(self.argp), math.sin(self.argp)
        ci, si = math.cos(self.inc), math.sin(self.inc)
        rot = ((co * cw - so * sw * ci, -co * sw - so * cw * ci),
               (so * cw + co * sw * ci, -so * sw + co * cw * ci),
               (sw * si, cw * si))
        pos = tuple(row[0] * xp + row[1] * yp for row in rot)
        vel = tuple(row[0] * vxp + row[1] * vyp for row in rot)
        speed = math.sqrt(self.mu * (2 / r - 1 / self.a))  # vis-viva
        return OrbitState(t, r, r - self.body_radius_km, math.degrees(nu) % 360.0, speed, pos, vel)  # type: ignore[arg-type]

    def step(self, dt: float) -> OrbitState:
        self.t += dt
        return self.at(self.t)

    @property
    def state(self) -> OrbitState:
        return self.at(self.t)

    def sun_state(self, t: float | None = None) -> SunState:
        """Illumination of the spacecraft: Mars shadow (cylindrical) and Sun distance.

        Needs ``epoch``.  The orbit's reference frame is taken as Mars' equator and
        equinox (RAAN counted from the Mars vernal equinox), so the Sun direction
        follows from the season: (cos Ls, cos e sin Ls, sin e sin Ls), e = 25.19 deg.
        """
        if self.epoch is None:
            raise ValueError("sun_state needs the orbit's epoch (a UTC datetime)")
        t = self.t if t is None else t
        when = self.epoch + timedelta(seconds=t)
        ls = math.radians(eph.mars_solar_longitude_deg(when))
        obl = math.radians(MARS_OBLIQUITY_DEG)
        sun = (math.cos(ls), math.cos(obl) * math.sin(ls), math.sin(obl) * math.sin(ls))
        pos = self.at(t).position_km
        along = sum(a * b for a, b in zip(pos, sun, strict=True))
        perp = math.sqrt(max(0.0, sum(p * p for p in pos) - along * along))
        lit = along > 0 or perp > self.body_radius_km
        r = eph.mars_sun_distance_au(when)
        return SunState(lit, 90.0, SOLAR_CONSTANT_WM2 / (r * r) if lit else 0.0, r)

    def earth_light_time_s(self, t: float | None = None) -> float:
        """One-way light time to Earth at sim time ``t`` (needs ``epoch``); the orbit itself is < 1 light-second."""
        if self.epoch is None:
            raise ValueError("earth_light_time_s needs the orbit's epoch (a UTC datetime)")
        return eph.earth_mars_light_time_s(self.epoch + timedelta(seconds=self.t if t is None else t))
