"""Hypothesis strategies that produce engineering values for any mission packet."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from protocols.missions import Argument, Command, PacketDef
from protocols.parameters import Parameter


def eng_range(prm: Parameter) -> tuple[float, float]:
    """Engineering values a parameter can carry (an argument: its valid range)."""
    if isinstance(prm, Argument) and isinstance(prm.valid, tuple):
        return prm.valid
    ends = sorted((float(prm.calibration.to_eng(prm.domain.minimum)),
                   float(prm.calibration.to_eng(prm.domain.maximum))))
    return ends[0], ends[1]


def value_strategy(prm: Parameter) -> st.SearchStrategy:
    cal = prm.calibration
    if cal.is_state:
        allowed = prm.valid if isinstance(prm, Argument) else cal.codes
        return st.sampled_from(sorted(allowed))
    if prm.domain.is_float:
        return st.floats(-1e30, 1e30, width=32, allow_nan=False)
    lo, hi = eng_range(prm)
    if cal.describe() == "raw":
        return st.integers(math.ceil(lo), math.floor(hi))
    return st.floats(lo, hi, allow_nan=False)


def nested(pairs: dict[str, Any]) -> dict[str, Any]:
    """{"hk.a": 1, "hk.b.c": 2} -> {"hk": {"a": 1, "b": {"c": 2}}}"""
    out: dict[str, Any] = {}
    for path, value in pairs.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def lookup(container, path: str):
    for part in path.split("."):
        container = container[part]
    return container


def values_strategy(packet: PacketDef) -> st.SearchStrategy[dict[str, Any]]:
    """A flat {path: engineering value} for every parameter (or argument) of ``packet``."""
    params = packet.parameters()
    strategy = st.fixed_dictionaries({path: value_strategy(prm) for path, prm in params})
    if isinstance(packet, Command) and packet.constraint is not None:
        # The constraint judges values as they arrive, i.e. after quantisation to raw steps.
        args = packet.arguments
        strategy = strategy.filter(lambda v: packet.constraint(
            {k.split(".", 1)[1]: args[k.split(".", 1)[1]].quantise(x) for k, x in v.items()}) is None)
    return strategy


def tolerance(prm: Parameter, value: float) -> float:
    """How far a decoded value may be from the one encoded: half a raw step (plus float noise)."""
    if prm.domain.is_float:
        return abs(value) * 2**-23 + 1e-30
    return prm.calibration.resolution() / 2 * (1 + 1e-9) + 1e-9 * max(1.0, abs(value))


def same(prm: Parameter, sent, got) -> bool:
    if prm.calibration.is_state:
        return sent == got
    return abs(float(got) - float(sent)) <= tolerance(prm, float(sent)) and np.isfinite(got)
