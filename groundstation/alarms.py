"""Limit checking with persistence and hysteresis, over whole columns of samples.

The limits come from the mission database (``Parameter.limits``), optionally
overridden by the daemon's configuration.  A transition (nominal -> warning ->
critical and back) happens only after ``persistence`` consecutive samples agree,
and leaving a worse state needs the value back inside the limit by
``hysteresis`` engineering units, so a value sitting on a limit does not flap.

The common case (every sample in the current state) costs one vectorised
comparison per column; only columns that cross a limit are walked sample by sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.parameters import Limits, LimitState, StateLimits, classify_ranges

Bounds = tuple[float | None, float | None] | None


@dataclass(frozen=True)
class AlarmPolicy:
    persistence: int = 1
    hysteresis: float = 0.0

    def __post_init__(self) -> None:
        if self.persistence < 1:
            raise ValueError(f"persistence must be >= 1 sample, not {self.persistence}")
        if self.hysteresis < 0:
            raise ValueError(f"hysteresis must be >= 0, not {self.hysteresis}")


@dataclass(frozen=True)
class Transition:
    """One limit transition: sample ``index`` of the batch moved the state from ``previous`` to ``state``."""

    index: int
    previous: LimitState
    state: LimitState
    value: object


def _narrow(bounds: Bounds, margin: float) -> Bounds:
    if bounds is None or margin == 0:
        return bounds
    lo, hi = bounds
    lo = None if lo is None else lo + margin
    hi = None if hi is None else hi - margin
    if lo is not None and hi is not None and lo > hi:
        lo = hi = (lo + hi) / 2
    return (lo, hi)


class ParameterAlarm:
    """The limit state of one parameter, advanced by batches of engineering values."""

    def __init__(self, limits: Limits | StateLimits, policy: AlarmPolicy = AlarmPolicy()) -> None:
        self.limits = limits
        self.policy = policy
        self.state = LimitState.NOMINAL
        self._candidate: int | None = None
        self._count = 0

    @property
    def settled(self) -> bool:
        """Nominal with no transition pending: samples inside the nominal range change nothing."""
        return self.state == LimitState.NOMINAL and self._candidate is None

    def nominal_range(self) -> tuple[float, float] | None:
        """(low, high) of the values a settled numeric alarm keeps nominal (None for enumerations)."""
        if isinstance(self.limits, StateLimits):
            return None
        bounds = self.limits.warning or self.limits.critical
        lo, hi = bounds if bounds is not None else (None, None)
        return (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))

    def off_nominal_states(self) -> frozenset[str] | None:
        """The states that are not nominal for an enumeration's alarm (None for numeric limits)."""
        if isinstance(self.limits, StateLimits):
            return self.limits.warning | self.limits.critical
        return None

    def _escalate_and_recover(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: the state a rise would go to, and the state a fall may go to (with hysteresis)."""
        if isinstance(self.limits, StateLimits):
            plain = self.limits.classify_array(values)
            return plain, plain
        values = np.asarray(values, dtype=np.float64)
        plain = classify_ranges(values, self.limits.warning, self.limits.critical)
        if self.policy.hysteresis == 0:
            return plain, plain
        margin = self.policy.hysteresis
        return plain, classify_ranges(values, _narrow(self.limits.warning, margin), _narrow(self.limits.critical, margin))

    def update(self, values: np.ndarray) -> list[Transition]:
        values = np.asarray(values)
        if values.size == 0:
            return []
        rise, fall = self._escalate_and_recover(values)
        current = int(self.state)
        if self._candidate is None and not (rise > current).any() and not (fall < current).any():
            return []  # the common case: nothing moves
        transitions: list[Transition] = []
        for i in range(values.size):
            up, down = int(rise[i]), int(fall[i])
            target = up if up > current else down if down < current else current
            if target == current:
                self._candidate, self._count = None, 0
                continue
            if target == self._candidate:
                self._count += 1
            else:
                self._candidate, self._count = target, 1
            if self._count >= self.policy.persistence:
                transitions.append(Transition(i, LimitState(current), LimitState(target), values[i].item()))
                current = target
                self._candidate, self._count = None, 0
        self.state = LimitState(current)
        return transitions


def override_limits(base: Limits | StateLimits | None, warning: Bounds = None, critical: Bounds = None
                    ) -> Limits | StateLimits | None:
    """Numeric limits with the configured ranges replacing the mission database's."""
    if warning is None and critical is None:
        return base
    if isinstance(base, StateLimits):
        raise ValueError("numeric limit overrides do not apply to an enumeration")
    return Limits(warning=warning if warning is not None else (base.warning if base else None),
                  critical=critical if critical is not None else (base.critical if base else None))
