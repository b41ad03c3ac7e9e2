"""Low-order ephemerides: Earth and Mars around the Sun, Mars seasons and clock.

* Planet positions: Keplerian elements with linear rates from E. M. Standish,
  "Keplerian Elements for Approximate Positions of the Major Planets" (JPL SSD,
  table 1, valid 1800-2050).  Stated accuracy for Mars/EM-barycentre: tens of
  arcseconds to a few arcminutes in heliocentric longitude, which keeps the
  Earth-Mars distance within about 1e-3 AU (~0.1 % at 1.3 AU).  We treat the
  Earth-Moon barycentre as the Earth (error <= 4,700 km, negligible here).
* Mars season (Ls), heliocentric distance, equation of time and Mean Solar Time:
  the Mars24 algorithm (Allison & McEwen 2000, Planet. Space Sci. 48, 215),
  without the small planetary perturbation terms (error ~0.01 deg in Ls).

Time arguments are UTC datetimes; TT = UTC + (TAI-UTC) + 32.184 s.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime

from flightsw.core.time import tai_minus_utc

AU_KM = 149_597_870.7
C_KM_S = 299_792.458
J2000_JD = 2451545.0
OBLIQUITY_DEG = 23.43928  # Earth's obliquity of the ecliptic at J2000

# name: (a, e, I, L, long.peri, long.node) and rates per Julian century (Standish table 1)
_ELEMENTS = {
    "earth": ((1.00000261, 0.01671123, -0.00001531, 100.46457166, 102.93768193, 0.0),
              (0.00000562, -0.00004392, -0.01294668, 35999.37244981, 0.32327364, 0.0)),
    "mars": ((1.52371034, 0.09339410, 1.84969142, -4.55343205, -23.94362959, 49.55953891),
             (0.00001847, 0.00007882, -0.00813131, 19140.30268499, 0.44441088, -0.29257343)),
}


def julian_date_tt(when: datetime) -> float:
    """Julian date (TT) of a UTC datetime."""
    when = when.astimezone(UTC)
    unix = when.timestamp()
    return 2440587.5 + (unix + tai_minus_utc(when) + 32.184) / 86400.0


def solve_kepler(mean_anomaly: float, e: float) -> float:
    """Eccentric anomaly E (rad) from M (rad) for an ellipse, by Newton iteration."""
    m = math.remainder(mean_anomaly, 2 * math.pi)
    ecc = m if e < 0.8 else math.copysign(math.pi, m)
    for _ in range(50):
        f = ecc - e * math.sin(ecc) - m
        step = f / (1 - e * math.cos(ecc))
        ecc -= step
        if abs(step) < 1e-14:
            break
    return ecc


def heliocentric_ecliptic(body: str, when: datetime) -> tuple[float, float, float]:
    """Heliocentric ecliptic J2000 position (AU) of "earth" or "mars"."""
    base, rate = _ELEMENTS[body]
    t = (julian_date_tt(when) - J2000_JD) / 36525.0
    a, e, inc, mean_long, peri, node = (b + r * t for b, r in zip(base, rate, strict=True))
    argp = math.radians(peri - node)
    m = math.radians(mean_long - peri)
    ecc = solve_kepler(m, e)
    xp = a * (math.cos(ecc) - e)
    yp = a * math.sqrt(1 - e * e) * math.sin(ecc)
    co, so = math.cos(argp), math.sin(argp)
    cn, sn = math.cos(math.radians(node)), math.sin(math.radians(node))
    ci, si = math.cos(math.radians(inc)), math.sin(math.radians(inc))
    x = (co * cn - so * sn * ci) * xp + (-so * cn - co * sn * ci) * yp
    y = (co * sn + so * cn * ci) * xp + (-so * sn + co * cn * ci) * yp
    z = (so * si) * xp + (co * si) * yp
    return x, y, z


def earth_mars_distance_au(when: datetime) -> float:
    ex, ey, ez = heliocentric_ecliptic("earth", when)
    mx, my, mz = heliocentric_ecliptic("mars", when)
    return math.dist((ex, ey, ez), (mx, my, mz))


def earth_mars_light_time_s(when: datetime) -> float:
    """One-way light time Earth-Mars (s), geometric (no light-time iteration; < 0.1 % effect)."""
    return earth_mars_distance_au(when) * AU_KM / C_KM_S


def sun_earth_distance_au(when: datetime) -> float:
    return math.hypot(*heliocentric_ecliptic("earth", when))


def sun_ecliptic_longitude_deg(when: datetime) -> float:
    """Geocentric ecliptic longitude of the Sun (deg)."""
    x, y, _ = heliocentric_ecliptic("earth", when)
    return math.degrees(math.atan2(-y, -x)) % 360.0


def sun_ra_dec_deg(when: datetime) -> tuple[float, float]:
    """Geocentric right ascension and declination of the Sun (deg, J2000 equator)."""
    lam = math.radians(sun_ecliptic_longitude_deg(when))
    eps = math.radians(OBLIQUITY_DEG)
    ra = math.degrees(math.atan2(math.cos(eps) * math.sin(lam), math.cos(lam))) % 360.0
    dec = math.degrees(math.asin(math.sin(eps) * math.sin(lam)))
    return ra, dec


# --------------------------------------------------------------------------- Mars24

MARS_SOL_S = 88775.244147  # mean solar day on Mars: 24 h 39 min 35.244 s


def _mars24(when: datetime) -> tuple[float, float, float]:
    """(days since J2000 TT, mean anomaly M deg, equation of centre nu-M deg)."""
    dt = julian_date_tt(when) - J2000_JD
    m = 19.3871 + 0.52402073 * dt
    mr = math.radians(m)
    eoc = ((10.691 + 3.0e-7 * dt) * math.sin(mr) + 0.623 * math.sin(2 * mr) + 0.050 * math.sin(3 * mr)
           + 0.005 * math.sin(4 * mr) + 0.0005 * math.sin(5 * mr))
    return dt, m, eoc


def mars_solar_longitude_deg(when: datetime) -> float:
    """Areocentric solar longitude Ls (deg): 0 northern spring equinox, 90 summer solstice."""
    dt, _, eoc = _mars24(when)
    alpha_fms = 270.3871 + 0.524038496 * dt
    return (alpha_fms + eoc) % 360.0


def mars_sun_distance_au(when: datetime) -> float:
    _, m, _ = _mars24(when)
    mr = math.radians(m)
    return 1.52367934 * (1.00436 - 0.09309 * math.cos(mr) - 0.004336 * math.cos(2 * mr)
                         - 0.00031 * math.cos(3 * mr) - 0.00003 * math.cos(4 * mr))


def mars_solar_declination_deg(ls_deg: float) -> float:
    ls = math.radians(ls_deg)
    return math.degrees(math.asin(0.42565 * math.sin(ls))) + 0.25 * math.sin(ls)


def mars_local_true_solar_time_h(when: datetime, east_longitude_deg: float) -> float:
    """Local true solar time (Mars hours, 0-24) at an east longitude."""
    dt, _, eoc = _mars24(when)
    mst = (24.0 * ((dt - 4.5) / 1.0274912517) + 44796.0 - 0.0009626) % 24.0
    ls = math.radians(mars_solar_longitude_deg(when))
    eot_deg = 2.861 * math.sin(2 * ls) - 0.071 * math.sin(4 * ls) + 0.002 * math.sin(6 * ls) - eoc
    return (mst + east_longitude_deg / 15.0 + eot_deg / 15.0) % 24.0
