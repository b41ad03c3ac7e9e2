"""Where the Sun is for each kind of spacecraft: Mars surface, Earth LEO, lunar south pole, Sun-Earth L1.

Every model gives a :class:`SunState` at sim time ``t`` (seconds since the model's
``epoch``, a UTC datetime) through ``at(t)``, and has the common ``step(dt)``/``state``
form (the state is the Sun at the model's current time).

``irradiance_wm2`` is the direct flux on a surface facing the Sun (after the
atmosphere on Mars); a panel multiplies it by its own cosine of incidence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flightsw.physics import ephemeris as eph

SOLAR_CONSTANT_WM2 = 1361.0        # at 1 AU (Kopp & Lean 2011)
EARTH_RADIUS_KM = 6378.137
EARTH_MU_KM3_S2 = 398_600.4418
EARTH_J2 = 1.08263e-3
SYNODIC_MONTH_S = 29.530589 * 86400.0
LUNAR_AXIS_TILT_DEG = 1.543        # to the ecliptic: sets the Sun's declination swing at the pole
ECLIPSE_YEAR_S = 346.620 * 86400.0  # period of the Sun's declination cycle seen from the Moon


@dataclass(frozen=True)
class SunState:
    lit: bool
    elevation_deg: float       # above the local horizon (surface) / 90 for a free-flying sun-pointer
    irradiance_wm2: float      # on a sun-facing surface, 0 in shadow
    distance_au: float         # Sun distance

    @property
    def sin_elevation(self) -> float:
        return max(0.0, math.sin(math.radians(self.elevation_deg)))


class _Stepped:
    """Common step/state plumbing: ``t`` advances with ``step(dt)``."""

    epoch: datetime
    t: float = 0.0

    def at(self, t: float) -> SunState:  # pragma: no cover - abstract
        raise NotImplementedError

    def utc(self, t: float | None = None) -> datetime:
        return self.epoch + timedelta(seconds=self.t if t is None else t)

    def step(self, dt: float) -> SunState:
        self.t += dt
        return self.at(self.t)

    @property
    def state(self) -> SunState:
        return self.at(self.t)


def _elevation(lat_deg: float, dec_deg: float, hour_angle_deg: float) -> float:
    lat, dec, h = (math.radians(v) for v in (lat_deg, dec_deg, hour_angle_deg))
    s = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(h)
    return math.degrees(math.asin(max(-1.0, min(1.0, s))))


# --------------------------------------------------------------------------- Mars surface


class MarsSurfaceIllumination(_Stepped):
    """Sol cycle at a Mars surface site (default: Zhurong, Utopia Planitia 25.066 N, 109.925 E).

    Sun position from Mars24 (season Ls, declination, local true solar time).
    Atmosphere: beam attenuation exp(-k * tau / sin(elevation)) with dust optical
    depth ``tau`` and an effective k = 0.4 that stands in for forward-scattered
    (diffuse) light — a coarse fit, good to ~20 % of global flux for tau <= 1.
    """

    SOL_S = eph.MARS_SOL_S

    def __init__(self, epoch: datetime, *, latitude_deg: float = 25.066, east_longitude_deg: float = 109.925,
                 tau: float = 0.5, scattering_k: float = 0.4) -> None:
        self.epoch = epoch
        self.latitude_deg = latitude_deg
        self.east_longitude_deg = east_longitude_deg
        self.tau = tau
        self.scattering_k = scattering_k
        self.t = 0.0

    def local_time_h(self, t: float | None = None) -> float:
        return eph.mars_local_true_solar_time_h(self.utc(t), self.east_longitude_deg)

    def solar_longitude_deg(self, t: float | None = None) -> float:
        return eph.mars_solar_longitude_deg(self.utc(t))

    def at(self, t: float) -> SunState:
        when = self.utc(t)
        ls = eph.mars_solar_longitude_deg(when)
        dec = eph.mars_solar_declination_deg(ls)
        hour_angle = (eph.mars_local_true_solar_time_h(when, self.east_longitude_deg) - 12.0) * 15.0
        el = _elevation(self.latitude_deg, dec, hour_angle)
        r = eph.mars_sun_distance_au(when)
        if el <= 0:
            return SunState(False, el, 0.0, r)
        top = SOLAR_CONSTANT_WM2 / (r * r)
        air_mass = 1.0 / max(math.sin(math.radians(el)), 0.05)  # flat-atmosphere, capped near the horizon
        return SunState(True, el, top * math.exp(-self.scattering_k * self.tau * air_mass), r)


# --------------------------------------------------------------------------- Earth LEO


class LeoIllumination(_Stepped):
    """Circular Earth orbit, day/eclipse from a cylindrical Earth shadow.

    The orbit plane precesses with J2 (sun-synchronous orbits follow the Sun), the
    Sun moves along the ecliptic, so the beta angle and the eclipse fraction vary
    with the season as they do in flight.  Eclipse fraction for beta below
    asin(R/(R+h)) is acos(sqrt(h^2+2Rh) / ((R+h) cos beta)) / pi (no eclipse above).
    """

    def __init__(self, epoch: datetime, *, altitude_km: float, inclination_deg: float, raan_deg: float = 0.0,
                 arg_latitude_deg: float = 0.0) -> None:
        self.epoch = epoch
        self.altitude_km = altitude_km
        self.inclination_deg = inclination_deg
        self.raan0_deg = raan_deg
        self.u0_deg = arg_latitude_deg
        self.a_km = EARTH_RADIUS_KM + altitude_km
        self.mean_motion = math.sqrt(EARTH_MU_KM3_S2 / self.a_km ** 3)  # rad/s
        self.period_s = 2 * math.pi / self.mean_motion
        self.raan_rate = (-1.5 * self.mean_motion * EARTH_J2 * (EARTH_RADIUS_KM / self.a_km) ** 2
                          * math.cos(math.radians(inclination_deg)))  # rad/s
        self.t = 0.0

    @staticmethod
    def sso_inclination_deg(altitude_km: float) -> float:
        """Inclination whose J2 nodal precession matches the Sun's mean motion (360 deg/365.2422 d)."""
        a = EARTH_RADIUS_KM + altitude_km
        n = math.sqrt(EARTH_MU_KM3_S2 / a ** 3)
        target = 2 * math.pi / (365.2422 * 86400.0)
        return math.degrees(math.acos(-target / (1.5 * n * EARTH_J2 * (EARTH_RADIUS_KM / a) ** 2)))

    @classmethod
    def sun_synchronous(cls, epoch: datetime, *, altitude_km: float, ltan_h: float) -> LeoIllumination:
        """A sun-synchronous orbit with local time of ascending node ``ltan_h`` (6.0 = dawn-dusk)."""
        ra_sun, _ = eph.sun_ra_dec_deg(epoch)
        return cls(epoch, altitude_km=altitude_km, inclination_deg=cls.sso_inclination_deg(altitude_km),
                   raan_deg=(ra_sun + (ltan_h - 12.0) * 15.0) % 360.0)

    @classmethod
    def hy2d(cls, epoch: datetime, *, raan_deg: float = 0.0) -> LeoIllumination:
        """HY-2D: ~971 km circular, 66 deg inclination (the non-sun-synchronous HY-2C/2D orbits; ILRS/NSOAS)."""
        return cls(epoch, altitude_km=971.0, inclination_deg=66.0, raan_deg=raan_deg)

    @classmethod
    def hy2b(cls, epoch: datetime) -> LeoIllumination:
        """HY-2B: 971 km sun-synchronous (99.35 deg), 06:00 descending node (dawn-dusk, LTAN 18:00)."""
        return cls.sun_synchronous(epoch, altitude_km=971.0, ltan_h=18.0)

    def _vectors(self, t: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        raan = math.radians(self.raan0_deg) + self.raan_rate * t
        inc = math.radians(self.inclination_deg)
        u = math.radians(self.u0_deg) + self.mean_motion * t
        cu, su, co, so, ci, si = math.cos(u), math.sin(u), math.cos(raan), math.sin(raan), math.cos(inc), math.sin(inc)
        sat = (co * cu - so * su * ci, so * cu + co * su * ci, su * si)  # unit position, ECI
        ra, dec = (math.radians(v) for v in eph.sun_ra_dec_deg(self.utc(t)))
        sun = (math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec))
        return sat, sun

    def beta_deg(self, t: float | None = None) -> float:
        """Angle between the orbit plane and the Sun direction."""
        t = self.t if t is None else t
        raan = math.radians(self.raan0_deg) + self.raan_rate * t
        inc = math.radians(self.inclination_deg)
        normal = (math.sin(inc) * math.sin(raan), -math.sin(inc) * math.cos(raan), math.cos(inc))
        _, sun = self._vectors(t)
        return math.degrees(math.asin(sum(a * b for a, b in zip(normal, sun, strict=True))))

    def eclipse_fraction(self, t: float | None = None) -> float:
        """Analytic fraction of the orbit in shadow at the current beta angle."""
        beta = math.radians(self.beta_deg(t))
        r, h = EARTH_RADIUS_KM, self.altitude_km
        if abs(beta) >= math.asin(r / (r + h)):
            return 0.0
        return math.acos(math.sqrt(h * h + 2 * r * h) / ((r + h) * math.cos(beta))) / math.pi

    def at(self, t: float) -> SunState:
        sat, sun = self._vectors(t)
        along = sum(a * b for a, b in zip(sat, sun, strict=True))
        perp = math.sqrt(max(0.0, 1.0 - along * along)) * self.a_km
        lit = along > 0 or perp > EARTH_RADIUS_KM
        d = eph.sun_earth_distance_au(self.utc(t))
        return SunState(lit, 90.0, SOLAR_CONSTANT_WM2 / (d * d) if lit else 0.0, d)


# --------------------------------------------------------------------------- lunar surface


class LunarSurfaceIllumination(_Stepped):
    """Lunar day/night at a (south-polar) site.

    The Sun circles the sky once per synodic month (29.53 d); its declination
    swings +-1.54 deg over an eclipse year (346.6 d), which at high latitude
    decides how high it climbs: at 85 S the Sun grazes the horizon at a few degrees.
    ``local_time_h`` is the lunar local solar time at the epoch (12 = noon, 24 h per lunation).
    """

    def __init__(self, epoch: datetime, *, latitude_deg: float = -85.0, local_time_h: float = 6.0,
                 declination_phase_deg: float = 90.0) -> None:
        self.epoch = epoch
        self.latitude_deg = latitude_deg
        self.local_time0_h = local_time_h
        self.declination_phase_deg = declination_phase_deg
        self.t = 0.0

    def local_time_h(self, t: float | None = None) -> float:
        t = self.t if t is None else t
        return (self.local_time0_h + 24.0 * t / SYNODIC_MONTH_S) % 24.0

    def declination_deg(self, t: float | None = None) -> float:
        t = self.t if t is None else t
        return LUNAR_AXIS_TILT_DEG * math.sin(2 * math.pi * t / ECLIPSE_YEAR_S
                                              + math.radians(self.declination_phase_deg))

    def at(self, t: float) -> SunState:
        el = _elevation(self.latitude_deg, self.declination_deg(t), (self.local_time_h(t) - 12.0) * 15.0)
        d = eph.sun_earth_distance_au(self.utc(t))
        lit = el > 0
        return SunState(lit, el, SOLAR_CONSTANT_WM2 / (d * d) if lit else 0.0, d)


# --------------------------------------------------------------------------- Sun-Earth L1


class L1Illumination(_Stepped):
    """Sun-Earth L1: never eclipsed; flux from the Sun distance (Earth's minus 0.01 AU)."""

    L1_OFFSET_AU = 0.01001

    def __init__(self, epoch: datetime) -> None:
        self.epoch = epoch
        self.t = 0.0

    def at(self, t: float) -> SunState:
        d = eph.sun_earth_distance_au(self.utc(t)) - self.L1_OFFSET_AU
        return SunState(True, 90.0, SOLAR_CONSTANT_WM2 / (d * d), d)
