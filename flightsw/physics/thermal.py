"""Lumped-node thermal model, a phase-change heat store, and environment temperatures.

Nodes have a heat capacity C (J/K), internal dissipation and heater power (W).
Links carry heat between nodes (conductance G, W/K) or to the environment, by
conduction (G (T_env - T)) and/or radiation (eps sigma A (T_env^4 - T^4)).
Integration is explicit Euler with automatic sub-steps kept below half the
smallest node time constant, so any ``step(dt)`` is stable.

The phase-change node is written in enthalpy form: its stored energy u sets the
temperature (T = T_melt - while u is between 0 and the latent heat L the node is
melting and stays at T_melt).  Zhurong carried n-undecane (C11H24, melting point
-25.6 degC, latent heat ~141 kJ/kg) in its body to store daytime heat for the night.

Energy bookkeeping (``energy_in_j``) lets tests check that sum(C dT) + latent
equals the integrated heat flows.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

SIGMA = 5.670374419e-8
KELVIN = 273.15

N_UNDECANE_MELT_C = -25.6
N_UNDECANE_LATENT_J_PER_KG = 141_000.0
N_UNDECANE_CP_J_PER_KG_K = 2_200.0


@dataclass
class ThermalNode:
    name: str
    heat_capacity_j_per_k: float
    temperature_c: float
    internal_w: float = 0.0
    heater_w: float = 0.0
    heater_on: bool = False
    extra_w: float = 0.0          # injected heat (faults: thermal runaway)

    def __post_init__(self) -> None:
        if self.heat_capacity_j_per_k <= 0:
            raise ValueError(f"thermal node {self.name!r}: heat capacity must be > 0")

    def power_in(self) -> float:
        return self.internal_w + (self.heater_w if self.heater_on else 0.0) + self.extra_w

    def add_energy(self, joules: float) -> None:
        self.temperature_c += joules / self.heat_capacity_j_per_k

    @property
    def stored_j(self) -> float:
        """Energy relative to 0 degC (sensible only)."""
        return self.heat_capacity_j_per_k * self.temperature_c


@dataclass
class PhaseChangeNode(ThermalNode):
    """A node that melts at ``melt_c`` absorbing ``latent_j`` (and freezes releasing it)."""

    melt_c: float = N_UNDECANE_MELT_C
    latent_j: float = 0.0
    # energy above "fully solid at melt_c": < 0 solid below melt, 0..L melting, > L liquid above
    _u: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent_j < 0:
            raise ValueError(f"phase-change node {self.name!r}: latent heat must be >= 0")
        c = self.heat_capacity_j_per_k
        if self.temperature_c < self.melt_c:
            self._u = (self.temperature_c - self.melt_c) * c
        elif self.temperature_c > self.melt_c:
            self._u = self.latent_j + (self.temperature_c - self.melt_c) * c
        else:
            self._u = 0.0

    @classmethod
    def n_undecane(cls, name: str, mass_kg: float, temperature_c: float, *, container_j_per_k: float = 0.0,
                   **kwargs) -> PhaseChangeNode:
        """An n-undecane heat store of ``mass_kg`` (plus its container's heat capacity)."""
        return cls(name, mass_kg * N_UNDECANE_CP_J_PER_KG_K + container_j_per_k, temperature_c,
                   melt_c=N_UNDECANE_MELT_C, latent_j=mass_kg * N_UNDECANE_LATENT_J_PER_KG, **kwargs)

    def add_energy(self, joules: float) -> None:
        self._u += joules
        c = self.heat_capacity_j_per_k
        if self._u < 0:
            self.temperature_c = self.melt_c + self._u / c
        elif self._u > self.latent_j:
            self.temperature_c = self.melt_c + (self._u - self.latent_j) / c
        else:
            self.temperature_c = self.melt_c

    @property
    def melt_fraction(self) -> float:
        if self.latent_j == 0:
            return 1.0 if self.temperature_c > self.melt_c else 0.0
        return min(1.0, max(0.0, self._u / self.latent_j))

    @property
    def stored_j(self) -> float:
        return self._u + self.melt_c * self.heat_capacity_j_per_k  # same reference slope as sensible nodes


NodeT = TypeVar("NodeT", bound="ThermalNode")
Environment = Callable[[float], float]   # sim time (s) -> sink temperature (degC)


@dataclass
class _Link:
    a: str
    b: str | None          # None: the environment
    conductance: float     # W/K
    radiative: float       # eps * sigma-less area factor (eps * A, m^2)


class ThermalNetwork:
    """Nodes, links and an environment; ``step(dt)`` advances all temperatures."""

    def __init__(self, environment: Environment | float = -270.0) -> None:
        if callable(environment):
            self.environment: Environment = environment
        else:
            constant = float(environment)
            self.environment = lambda t: constant
        self.nodes: dict[str, ThermalNode] = {}
        self.links: list[_Link] = []
        self.t = 0.0
        self.energy_in_j = 0.0       # heat that entered the nodes from outside (env, heaters, internal)
        self.substeps = 0

    def add(self, node: NodeT) -> NodeT:
        if node.name in self.nodes:
            raise ValueError(f"thermal node {node.name!r} already exists")
        self.nodes[node.name] = node
        return node

    def node(self, name: str) -> ThermalNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no thermal node {name!r}; nodes: {', '.join(self.nodes)}") from None

    def link(self, a: str, b: str, conductance_w_per_k: float) -> None:
        """Conductive link between two nodes."""
        self.node(a), self.node(b)
        self.links.append(_Link(a, b, conductance_w_per_k, 0.0))

    def link_environment(self, node: str, *, conductance_w_per_k: float = 0.0, emissivity_area_m2: float = 0.0) -> None:
        """Couple a node to the environment by conduction/convection and/or radiation."""
        self.node(node)
        self.links.append(_Link(node, None, conductance_w_per_k, emissivity_area_m2))

    def temperatures(self) -> dict[str, float]:
        return {name: n.temperature_c for name, n in self.nodes.items()}

    def _flows(self, t_env: float) -> tuple[dict[str, float], dict[str, float], float]:
        """Heat flow into each node (W), its effective conductance (W/K) and the external inflow (W)."""
        q = {name: n.power_in() for name, n in self.nodes.items()}
        g = dict.fromkeys(self.nodes, 0.0)
        external = sum(q.values())
        te = t_env + KELVIN
        for link in self.links:
            ta = self.nodes[link.a].temperature_c
            if link.b is not None:
                flow = link.conductance * (self.nodes[link.b].temperature_c - ta)
                q[link.a] += flow
                q[link.b] -= flow
                g[link.a] += link.conductance
                g[link.b] += link.conductance
                continue
            flow = link.conductance * (t_env - ta)
            g_eff = link.conductance
            if link.radiative:
                tk = ta + KELVIN
                flow += link.radiative * SIGMA * (te ** 4 - tk ** 4)
                g_eff += 4 * link.radiative * SIGMA * max(tk, te) ** 3
            q[link.a] += flow
            g[link.a] += g_eff
            external += flow
        return q, g, external

    def step(self, dt: float) -> dict[str, float]:
        """Advance ``dt`` seconds; returns the node temperatures."""
        remaining = dt
        while remaining > 1e-12:
            t_env = self.environment(self.t)
            q, g, external = self._flows(t_env)
            tau = min((n.heat_capacity_j_per_k / g[name] for name, n in self.nodes.items() if g[name] > 0),
                      default=math.inf)
            h = min(remaining, 0.5 * tau)
            for name, node in self.nodes.items():
                node.add_energy(q[name] * h)
            self.energy_in_j += external * h
            self.t += h
            remaining -= h
            self.substeps += 1
        return self.temperatures()

    def stored_energy_j(self) -> float:
        return sum(n.stored_j for n in self.nodes.values())


# --------------------------------------------------------------------------- environments


def mars_surface_temperature_c(local_time_h: float, *, t_min_c: float = -100.0, t_max_c: float = -10.0,
                               t_min_h: float = 5.5, t_max_h: float = 14.0) -> float:
    """Near-surface air/ground sink temperature over a sol (Mars hours).

    Asymmetric cycle: quick warm-up from the pre-dawn minimum to the early-afternoon
    maximum, slow cooling through the night.  Defaults span -100..-10 degC, the range
    seen at Utopia Planitia in northern spring/summer (Viking 2, Zhurong MCS).
    """
    h = local_time_h % 24.0
    warm = (t_max_h - t_min_h) % 24.0
    since_min = (h - t_min_h) % 24.0
    if since_min <= warm:
        phase = since_min / warm                    # 0 at min, 1 at max
    else:
        phase = 1.0 - (since_min - warm) / (24.0 - warm)
    return t_min_c + (t_max_c - t_min_c) * (1 - math.cos(math.pi * phase)) / 2


def lunar_surface_temperature_c(sun_elevation_deg: float, *, albedo: float = 0.12, emissivity: float = 0.95,
                                night_c: float = -170.0, flux_wm2: float = 1361.0) -> float:
    """Regolith surface temperature: radiative equilibrium with the Sun, floored at the night value.

    At 3-5 deg sun elevation (south-polar region) this gives about -75..-60 degC;
    the night floor of -170 degC is the polar-region figure (Diviner).
    """
    if sun_elevation_deg <= 0:
        return night_c
    absorbed = flux_wm2 * math.sin(math.radians(sun_elevation_deg)) * (1 - albedo)
    return max(night_c, (absorbed / (emissivity * SIGMA)) ** 0.25 - KELVIN)


SPACE_SINK_C = -270.45  # 2.7 K
