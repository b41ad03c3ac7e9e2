"""Rover mobility: drive commands, odometry, pose over seeded terrain, wheel currents.

A drive command (distance, heading) is executed at up to ``max_speed_m_h``
(default 40 m/h, the pace of Zhurong's traverses; its design top speed was
200 m/h) slowed by slope and roughness.  The terrain is a deterministic height
field (a sum of seeded sinusoids, no numpy) from which pitch and roll follow the
rover's heading; roughness is a second seeded field in [0, 1].  Each of the six
wheel motors draws a current that grows with roughness, with climbing, and with
its own seeded noise, and ~0 A when parked.

Public figures to start from: Zhurong drove 1,921 m in total (CNSA, May 2022)
from its landing site in southern Utopia Planitia.
"""
from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

ZHURONG_TOTAL_ODOMETRY_M = 1921.0


class Terrain:
    """Seeded height field h(x, y) (m) and roughness r(x, y) in [0, 1]."""

    def __init__(self, seed: int = 0, *, relief_m: float = 1.5, wavelength_m: float = 40.0, waves: int = 8) -> None:
        rng = random.Random(f"terrain/{seed}")
        self.height_waves = []
        for i in range(waves):
            k = 2 * math.pi / (wavelength_m * rng.uniform(0.3, 1.5))
            direction = rng.uniform(0, 2 * math.pi)
            amp = relief_m / waves * rng.uniform(0.5, 1.5) * (1 + i) ** -0.5 * 2
            self.height_waves.append((k * math.cos(direction), k * math.sin(direction), amp, rng.uniform(0, 2 * math.pi)))
        self.rough_waves = [(rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0, 2 * math.pi))
                            for _ in range(4)]

    def height(self, x: float, y: float) -> float:
        return sum(a * math.sin(kx * x + ky * y + p) for kx, ky, a, p in self.height_waves)

    def gradient(self, x: float, y: float) -> tuple[float, float]:
        gx = sum(a * kx * math.cos(kx * x + ky * y + p) for kx, ky, a, p in self.height_waves)
        gy = sum(a * ky * math.cos(kx * x + ky * y + p) for kx, ky, a, p in self.height_waves)
        return gx, gy

    def roughness(self, x: float, y: float) -> float:
        s = sum(math.sin(kx * x + ky * y + p) for kx, ky, p in self.rough_waves) / len(self.rough_waves)
        return 0.5 + 0.5 * s


@dataclass(frozen=True)
class DriveCommand:
    distance_m: float
    heading_deg: float


@dataclass(frozen=True)
class RoverState:
    driving: bool
    odometer_m: float
    x_m: float
    y_m: float
    heading_deg: float
    pitch_deg: float          # > 0 nose up
    roll_deg: float           # > 0 right side down
    speed_m_h: float
    remaining_m: float
    wheel_currents_a: tuple[float, ...]
    roughness: float


class RoverMobility:
    """Executes queued drive commands over a :class:`Terrain`; ``step(dt)`` advances the drive."""

    WHEELS = 6

    def __init__(self, *, seed: int = 0, terrain: Terrain | None = None, odometer_m: float = 0.0,
                 max_speed_m_h: float = 40.0, turn_rate_deg_s: float = 1.0, idle_current_a: float = 0.02,
                 base_current_a: float = 0.6, rough_current_a: float = 0.8, slope_current_a_per_deg: float = 0.06,
                 max_slope_deg: float = 20.0) -> None:
        self.terrain = terrain if terrain is not None else Terrain(seed)
        self.rng = random.Random(f"rover/{seed}")
        self.max_speed = max_speed_m_h / 3600.0   # m/s
        self.turn_rate = turn_rate_deg_s
        self.idle_current = idle_current_a
        self.base_current = base_current_a
        self.rough_current = rough_current_a
        self.slope_current = slope_current_a_per_deg
        self.max_slope = max_slope_deg
        self.wheel_bias = [self.rng.uniform(0.9, 1.1) for _ in range(self.WHEELS)]
        self.queue: deque[DriveCommand] = deque()
        self.odometer_m = odometer_m
        self.x = self.y = 0.0
        self.heading = 0.0
        self.remaining = 0.0
        self.target_heading = 0.0
        self.speed = 0.0
        self.currents = tuple(idle_current_a for _ in range(self.WHEELS))
        self.drives_completed = 0
        self.aborts = 0

    def command_drive(self, distance_m: float, heading_deg: float) -> None:
        """Queue a drive: turn to ``heading_deg`` (0 = north, clockwise), then go ``distance_m``."""
        if not 0 < distance_m <= 1000:
            raise ValueError(f"drive distance must be in (0, 1000] m, got {distance_m}")
        self.queue.append(DriveCommand(float(distance_m), float(heading_deg) % 360.0))

    def stop(self) -> None:
        """Abort the current drive and clear the queue."""
        self.queue.clear()
        self.remaining = 0.0
        self.speed = 0.0

    @property
    def driving(self) -> bool:
        return self.remaining > 0 or bool(self.queue)

    def attitude(self) -> tuple[float, float]:
        """(pitch, roll) in degrees from the terrain slope under the rover and its heading."""
        gx, gy = self.terrain.gradient(self.x, self.y)  # x east, y north
        h = math.radians(self.heading)
        fwd = (math.sin(h), math.cos(h))
        right = (math.cos(h), -math.sin(h))
        pitch = math.degrees(math.atan(gx * fwd[0] + gy * fwd[1]))
        roll = -math.degrees(math.atan(gx * right[0] + gy * right[1]))
        return pitch, roll

    def step(self, dt: float) -> RoverState:
        remaining_dt = dt
        while remaining_dt > 1e-9 and self.driving:
            if self.remaining <= 0:
                cmd = self.queue.popleft()
                self.target_heading, self.remaining = cmd.heading_deg, cmd.distance_m
            # Turn in place first (skid steering), then drive.
            dh = (self.target_heading - self.heading + 180.0) % 360.0 - 180.0
            if abs(dh) > 1e-6:
                turn = min(abs(dh), self.turn_rate * remaining_dt)
                self.heading = (self.heading + math.copysign(turn, dh)) % 360.0
                remaining_dt -= turn / self.turn_rate
                self.speed = 0.0
                continue
            pitch, roll = self.attitude()
            slope = math.hypot(pitch, roll)
            if slope > self.max_slope:  # hazard avoidance: stop, let the ground replan
                self.aborts += 1
                self.stop()
                break
            rough = self.terrain.roughness(self.x, self.y)
            self.speed = self.max_speed * (1 - 0.5 * rough) * max(0.3, 1 - max(pitch, 0.0) / self.max_slope)
            h = min(remaining_dt, 1.0)  # 1 s integration steps keep pose on the terrain
            d = min(self.remaining, self.speed * h)
            self.x += d * math.sin(math.radians(self.heading))
            self.y += d * math.cos(math.radians(self.heading))
            self.odometer_m += d
            self.remaining -= d
            remaining_dt -= d / self.speed if self.speed > 0 else h
            if self.remaining <= 1e-9:
                self.remaining = 0.0
                self.drives_completed += 1
        self._update_currents()
        return self.state

    def _update_currents(self) -> None:
        if not (self.driving and self.speed > 0):
            self.speed = 0.0 if not self.driving else self.speed
            self.currents = tuple(self.idle_current for _ in range(self.WHEELS))
            return
        pitch, _ = self.attitude()
        rough = self.terrain.roughness(self.x, self.y)
        load = self.base_current + self.rough_current * rough + self.slope_current * max(pitch, -5.0)
        self.currents = tuple(max(0.0, load * bias * (1 + 0.08 * self.rng.gauss(0, 1)))
                              for bias in self.wheel_bias)

    @property
    def state(self) -> RoverState:
        pitch, roll = self.attitude()
        return RoverState(self.driving, self.odometer_m, self.x, self.y, self.heading, pitch, roll,
                          self.speed * 3600.0, self.remaining + sum(c.distance_m for c in self.queue),
                          self.currents, self.terrain.roughness(self.x, self.y))
