"""Deterministic physical models that mission models compose (pure Python, stdlib only).

Each model has a ``step(dt)`` that advances it and a ``state`` (or ``at(t)``) to read
it; randomness, where a model has any, comes from a seeded ``random.Random``.
Sources and assumptions: docs/EMULATOR.md.
"""
from __future__ import annotations

from flightsw.physics.ephemeris import (
                                        earth_mars_distance_au,
                                        earth_mars_light_time_s,
                                        mars_solar_longitude_deg,
                                        sun_earth_distance_au,
)
from flightsw.physics.illumination import (
                                        L1Illumination,
                                        LeoIllumination,
                                        LunarSurfaceIllumination,
                                        MarsSurfaceIllumination,
                                        SunState,
)
from flightsw.physics.libration import AttitudeHold, AttitudeState, L1LissajousOrbit, LibrationState
from flightsw.physics.orbit import KeplerOrbit, OrbitState
from flightsw.physics.power import Battery, BatteryState, SolarArray
from flightsw.physics.rover import RoverMobility, RoverState, Terrain
from flightsw.physics.thermal import (
                                        PhaseChangeNode,
                                        ThermalNetwork,
                                        ThermalNode,
                                        lunar_surface_temperature_c,
                                        mars_surface_temperature_c,
)

__all__ = [
    "earth_mars_distance_au", "earth_mars_light_time_s", "mars_solar_longitude_deg", "sun_earth_distance_au",
    "L1Illumination", "LeoIllumination", "LunarSurfaceIllumination", "MarsSurfaceIllumination", "SunState",
    "AttitudeHold", "AttitudeState", "L1LissajousOrbit", "LibrationState",
    "KeplerOrbit", "OrbitState",
    "Battery", "BatteryState", "SolarArray",
    "RoverMobility", "RoverState", "Terrain",
    "PhaseChangeNode", "ThermalNetwork", "ThermalNode", "lunar_surface_temperature_c", "mars_surface_temperature_c",
]
