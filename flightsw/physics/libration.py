"""Sun-Earth L1 libration-point orbit and attitude hold (Chang'e-5 orbiter's extended mission).

After delivering the samples (Dec 2020) the Chang'e-5 orbiter flew to Sun-Earth
L1 and entered a libration-point orbit in March 2021.  We model the orbit with the
linearised circular restricted three-body motion about L1 (Richardson 1980;
Szebehely): with gamma the L1-Earth distance in units of the Sun-Earth distance,

    c2 = (mu + (1 - mu) gamma^3 / (1 - gamma)^3) / gamma^3
    in-plane frequency  lam = sqrt((2 - c2 + sqrt(9 c2^2 - 8 c2)) / 2)     (~2.087 /year*2pi)
    out-of-plane        nu  = sqrt(c2)                                       (~2.015)
    y/x amplitude ratio k   = (lam^2 + 1 + 2 c2) / (2 lam)                   (~3.23)

    x = -Ax cos(lam t + phi),  y = k Ax sin(lam t + phi),  z = Az sin(nu t + psi)

which gives periods of ~175 d in plane and ~181 d out of plane: a Lissajous orbit
(a halo orbit is the non-linear case where both coincide).  Rotating frame centred
on L1: x from the Sun towards the Earth, z along the ecliptic pole.  Accuracy: the
linear model is fine for amplitudes of a few 100,000 km over months (it ignores
the unstable mode, which stationkeeping removes in flight).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from flightsw.physics.ephemeris import AU_KM

SUN_EARTH_MU = 3.040423e-6       # (M_earth + M_moon) / (M_sun + M_earth + M_moon)
YEAR_S = 365.25636 * 86400.0     # sidereal year: the rotating frame's period


def l1_gamma(mu: float = SUN_EARTH_MU) -> float:
    """L1-Earth distance over the Sun-Earth distance (solves the quintic by Newton)."""
    g = (mu / 3) ** (1 / 3)
    for _ in range(50):
        f = g ** 5 - (3 - mu) * g ** 4 + (3 - 2 * mu) * g ** 3 - mu * g ** 2 + 2 * mu * g - mu
        df = 5 * g ** 4 - 4 * (3 - mu) * g ** 3 + 3 * (3 - 2 * mu) * g ** 2 - 2 * mu * g + 2 * mu
        step = f / df
        g -= step
        if abs(step) < 1e-15:
            break
    return g


@dataclass(frozen=True)
class LibrationState:
    t: float
    position_km: tuple[float, float, float]   # from L1, rotating frame
    earth_range_km: float
    sep_angle_deg: float                      # Sun-Earth-probe angle (radio interference below ~5 deg)


class L1LissajousOrbit:
    """Linearised Lissajous orbit about Sun-Earth L1."""

    def __init__(self, *, ay_km: float = 600_000.0, az_km: float = 300_000.0, phase_xy_deg: float = 90.0,
                 phase_z_deg: float = 0.0, mu: float = SUN_EARTH_MU) -> None:
        self.gamma = l1_gamma(mu)
        g = self.gamma
        self.c2 = (mu + (1 - mu) * g ** 3 / (1 - g) ** 3) / g ** 3
        self.lam = math.sqrt((2 - self.c2 + math.sqrt(9 * self.c2 ** 2 - 8 * self.c2)) / 2)
        self.nu = math.sqrt(self.c2)
        self.kappa = (self.lam ** 2 + 1 + 2 * self.c2) / (2 * self.lam)
        self.ay_km, self.az_km = ay_km, az_km
        self.ax_km = ay_km / self.kappa
        self.phi, self.psi = math.radians(phase_xy_deg), math.radians(phase_z_deg)
        self.l1_earth_km = g * AU_KM
        self.t = 0.0

    @property
    def in_plane_period_s(self) -> float:
        return YEAR_S / self.lam

    @property
    def out_of_plane_period_s(self) -> float:
        return YEAR_S / self.nu

    def at(self, t: float) -> LibrationState:
        tau = 2 * math.pi * t / YEAR_S  # non-dimensional time
        x = -self.ax_km * math.cos(self.lam * tau + self.phi)
        y = self.kappa * self.ax_km * math.sin(self.lam * tau + self.phi)
        z = self.az_km * math.sin(self.nu * tau + self.psi)
        # Earth sits at +l1_earth_km on the x axis; the Sun far along -x.
        dx = x - self.l1_earth_km
        rng = math.sqrt(dx * dx + y * y + z * z)
        sep = math.degrees(math.acos(max(-1.0, min(1.0, -dx / rng))))
        return LibrationState(t, (x, y, z), rng, sep)

    def step(self, dt: float) -> LibrationState:
        self.t += dt
        return self.at(self.t)

    @property
    def state(self) -> LibrationState:
        return self.at(self.t)


@dataclass(frozen=True)
class AttitudeState:
    error_deg: tuple[float, float, float]
    rate_deg_s: tuple[float, float, float]
    thruster_pulses: int


class AttitudeHold:
    """Three-axis attitude hold in a deadband: drift under a small disturbance, thruster pulses at the edges.

    Each axis drifts (constant disturbance acceleration plus seeded noise) until
    its error reaches the deadband, where a pulse sets the rate back inward: the
    classic limit cycle of a thruster-controlled spacecraft.  Sensor noise is added
    to the reported error.  Same seed, same sequence.
    """

    def __init__(self, *, deadband_deg: float = 0.1, pulse_rate_deg_s: float = 0.002,
                 disturbance_deg_s2: float = 2e-6, sensor_noise_deg: float = 0.002, seed: int = 0) -> None:
        if deadband_deg <= 0 or pulse_rate_deg_s <= 0:
            raise ValueError("deadband and pulse rate must be > 0")
        self.deadband = deadband_deg
        self.pulse_rate = pulse_rate_deg_s
        self.disturbance = disturbance_deg_s2
        self.sensor_noise = sensor_noise_deg
        self.rng = random.Random(seed)
        self.error = [self.rng.uniform(-deadband_deg, deadband_deg) / 2 for _ in range(3)]
        self.rate = [self.rng.uniform(-pulse_rate_deg_s, pulse_rate_deg_s) for _ in range(3)]
        self.accel = [disturbance_deg_s2 * self.rng.choice((-1.0, 1.0)) for _ in range(3)]
        self.pulses = 0
        self._state = self._measure()

    def _measure(self) -> AttitudeState:
        noise = self.sensor_noise
        measured = tuple(e + self.rng.gauss(0, noise) if noise else e for e in self.error)
        return AttitudeState(measured, tuple(self.rate), self.pulses)  # type: ignore[arg-type]

    def step(self, dt: float) -> AttitudeState:
        for i in range(3):
            a = self.accel[i] * (1 + 0.3 * self.rng.gauss(0, 1))
            self.rate[i] += a * dt
            self.error[i] += self.rate[i] * dt
            if abs(self.error[i]) >= self.deadband:
                self.error[i] = math.copysign(self.deadband, self.error[i])
                self.rate[i] = -math.copysign(self.pulse_rate, self.error[i])
                self.pulses += 1
        self._state = self._measure()
        return self._state

    @property
    def state(self) -> AttitudeState:
        """The last measurement (reading it draws no random numbers)."""
        return self._state
