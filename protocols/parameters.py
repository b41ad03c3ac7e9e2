"""Calibrated, limit-checked parameter fields, written once inside the construct definition.

A mission packet is a construct ``Struct`` whose telemetry fields are wrapped in
:class:`Parameter`: parsing gives engineering values, building takes them, and the
unit, description, calibration and limits travel with the field.  Nothing else
holds a copy of this information: the registry, the generated docs, the fast path
(:mod:`protocols.codec`), the limit checker and the dashboards all read it from here.

    "battery_voltage" / Parameter(Int16ub, unit="V", description="Main bus battery voltage",
                                  calibration=Linear(0.001), limits=Limits(warning=(26, 33.5), critical=(24, 34)))

Every calibration has a scalar form (``to_eng``/``to_raw``, used by construct) and a
vectorised form (``to_eng_array``/``to_raw_array``, used by the fast path); both give
identical results, which the tests check.
"""
from __future__ import annotations

import copy
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

import construct as cs
import numpy as np

from protocols.errors import DefinitionError, ProtocolError


class LimitState(IntEnum):
    """Limit state as exported to Prometheus (``queqiao_parameter_limit_state``)."""

    NOMINAL = 0
    WARNING = 1
    CRITICAL = 2


# --------------------------------------------------------------------------- raw domains


@dataclass(frozen=True)
class RawDomain:
    """What the raw field can hold: integer range, or float."""

    is_float: bool
    minimum: float
    maximum: float

    def contains(self, raw: float) -> bool:
        return self.minimum <= raw <= self.maximum


def raw_domain(subcon: cs.Construct) -> RawDomain:
    """The raw domain of a numeric field (FormatField, BytesInteger, BitsInteger)."""
    inner = subcon
    while isinstance(inner, (cs.Renamed, cs.Transformed, cs.Restreamed)) and hasattr(inner, "subcon"):
        inner = inner.subcon
    if isinstance(inner, cs.FormatField):
        code = inner.fmtstr[-1]
        if code in "efd":
            return RawDomain(True, -math.inf, math.inf)
        bits = 8 * inner.length
        signed = code.islower() and code != "?"
    elif isinstance(inner, (cs.BytesInteger, cs.BitsInteger)):
        if not isinstance(inner.length, int):
            raise DefinitionError(f"parameter field {subcon!r} has a variable length")
        bits = inner.length * (8 if isinstance(inner, cs.BytesInteger) else 1)
        signed = bool(inner.signed)
    else:
        raise DefinitionError(
            f"a Parameter wraps a numeric field (Int*/Float*/BitsInteger/BytesInteger), not {type(inner).__name__}"
        )
    if signed:
        return RawDomain(False, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return RawDomain(False, 0, (1 << bits) - 1)


# --------------------------------------------------------------------------- calibrations


class Calibration(ABC):
    """Raw <-> engineering conversion.  Subclasses are immutable."""

    #: True when engineering values are state names (str), not numbers.
    is_state = False

    def bind(self, domain: RawDomain) -> None:  # noqa: B027 - optional hook
        """Check the calibration against the raw field it converts (called once by Parameter)."""

    @abstractmethod
    def to_eng(self, raw):
        ...

    @abstractmethod
    def to_raw(self, eng):
        ...

    @abstractmethod
    def to_eng_array(self, raw: np.ndarray) -> np.ndarray:
        ...

    @abstractmethod
    def to_raw_array(self, eng: np.ndarray) -> np.ndarray:
        ...

    @abstractmethod
    def describe(self) -> str:
        """One line for the generated docs."""

    def resolution(self) -> float:
        """Engineering value of one raw step (0 for exact/float calibrations)."""
        return 0.0


class Identity(Calibration):
    """Engineering value == raw value (integer fields take the nearest integer, as Linear does)."""

    def __init__(self) -> None:
        self._integer_raw = False

    def bind(self, domain: RawDomain) -> None:
        self._integer_raw = not domain.is_float

    def to_eng(self, raw):
        return raw

    def to_raw(self, eng):
        if self._integer_raw and isinstance(eng, (float, np.floating)) and math.isfinite(eng):
            return int(round(eng))
        return eng

    def to_eng_array(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def to_raw_array(self, eng: np.ndarray) -> np.ndarray:
        eng = np.asarray(eng)
        return np.round(eng) if self._integer_raw and eng.dtype.kind == "f" else eng

    def describe(self) -> str:
        return "raw"

    def resolution(self) -> float:
        return 1.0


class Linear(Calibration):
    """eng = offset + scale * raw."""

    def __init__(self, scale: float, offset: float = 0.0) -> None:
        if not scale or not math.isfinite(scale) or not math.isfinite(offset):
            raise DefinitionError(f"Linear calibration needs a finite non-zero scale, got scale={scale} offset={offset}")
        self.scale = float(scale)
        self.offset = float(offset)
        self._integer_raw = True

    def bind(self, domain: RawDomain) -> None:
        self._integer_raw = not domain.is_float

    def to_eng(self, raw):
        return self.offset + self.scale * raw

    def to_raw(self, eng):
        raw = (float(eng) - self.offset) / self.scale
        return int(round(raw)) if self._integer_raw else raw

    def to_eng_array(self, raw: np.ndarray) -> np.ndarray:
        return self.offset + self.scale * raw.astype(np.float64)

    def to_raw_array(self, eng: np.ndarray) -> np.ndarray:
        raw = (np.asarray(eng, dtype=np.float64) - self.offset) / self.scale
        # np.round and Python's round() both round half to even: scalar and array agree.
        return np.round(raw) if self._integer_raw else raw

    def describe(self) -> str:
        return f"linear: {self.offset:g} + {self.scale:g} * raw"

    def resolution(self) -> float:
        return abs(self.scale) if self._integer_raw else 0.0


class Polynomial(Calibration):
    """eng = c0 + c1*raw + c2*raw^2 + ...; must be monotonic over the raw domain to be invertible.

    Encoding inverts by bisection (vectorised), then picks the nearer of the two
    neighbouring raw integers, so build(parse(x)) == x for every raw x.  On a float raw
    field (an XTCE PolynomialCalibrator over a FloatDataEncoding) the polynomial need not
    be monotonic everywhere: encoding solves it and takes the real root nearest the
    linear estimate.
    """

    def __init__(self, *coefficients: float) -> None:
        if len(coefficients) < 2 or not all(math.isfinite(c) for c in coefficients):
            raise DefinitionError(f"Polynomial calibration needs finite c0, c1, ... got {coefficients}")
        self.coefficients = tuple(float(c) for c in coefficients)
        self._domain = RawDomain(False, -(2**31), 2**31 - 1)
        self._increasing = True

    def bind(self, domain: RawDomain) -> None:
        self._domain = domain
        if domain.is_float:
            return
        grid = np.linspace(domain.minimum, domain.maximum, 4097)
        values = self._eval(grid)
        steps = np.diff(values)
        if np.all(steps > 0):
            self._increasing = True
        elif np.all(steps < 0):
            self._increasing = False
        else:
            raise DefinitionError(
                f"Polynomial{self.coefficients} is not monotonic over raw {domain.minimum:g}..{domain.maximum:g}; "
                "it cannot be inverted for commanding/encoding"
            )

    def _eval(self, raw):
        result = np.zeros_like(np.asarray(raw, dtype=np.float64))
        for c in reversed(self.coefficients):  # Horner
            result = result * raw + c
        return result

    def to_eng(self, raw):
        return float(self._eval(np.float64(raw)))

    def to_eng_array(self, raw: np.ndarray) -> np.ndarray:
        return self._eval(raw.astype(np.float64))

    def to_raw_array(self, eng: np.ndarray) -> np.ndarray:
        target = np.asarray(eng, dtype=np.float64)
        if self._domain.is_float:
            return self._solve(target)
        lo = np.full(target.shape, float(self._domain.minimum))
        hi = np.full(target.shape, float(self._domain.maximum))
        sign = 1.0 if self._increasing else -1.0
        for _ in range(64):
            mid = (lo + hi) / 2
            below = sign * (self._eval(mid) - target) < 0
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        floor = np.clip(np.floor(lo), self._domain.minimum, self._domain.maximum)
        ceil = np.clip(floor + 1, self._domain.minimum, self._domain.maximum)
        pick_ceil = np.abs(self._eval(ceil) - target) < np.abs(self._eval(floor) - target)
        raw = np.where(pick_ceil, ceil, floor)
        # Outside the calibrated range: report an out-of-domain raw so the range check fires.
        low_end, high_end = self._eval(np.float64(self._domain.minimum)), self._eval(np.float64(self._domain.maximum))
        span_lo, span_hi = min(low_end, high_end), max(low_end, high_end)
        step = self.resolution() or 1.0
        outside = (target < span_lo - step) | (target > span_hi + step)
        return np.where(outside, math.inf, raw)

    def _solve(self, target: np.ndarray) -> np.ndarray:
        """Float raws: a real root of poly(raw) = eng for each distinct value (NaN when there is none)."""
        unique, inverse = np.unique(target, return_inverse=True)
        c0, c1 = self.coefficients[0], self.coefficients[1]
        out = np.empty(unique.shape)
        for i, value in enumerate(unique.tolist()):
            if not math.isfinite(value):
                out[i] = value  # NaN and infinities stay what they are
                continue
            coefficients = [*self.coefficients]
            coefficients[0] -= value
            roots = np.roots(list(reversed(np.trim_zeros(coefficients, "b"))))
            real = roots[np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots.real))].real
            guess = (value - c0) / c1 if c1 else 0.0
            out[i] = real[np.argmin(np.abs(real - guess))] if real.size else math.nan
        return out[inverse].reshape(target.shape)

    def to_raw(self, eng):
        value = float(self.to_raw_array(np.array([eng], dtype=np.float64))[0])
        if self._domain.is_float:
            return value
        return int(value) if math.isfinite(value) else value

    def describe(self) -> str:
        terms = [f"{c:g}" if i == 0 else f"{c:g}*raw" if i == 1 else f"{c:g}*raw^{i}" for i, c in enumerate(self.coefficients)]
        return "polynomial: " + " + ".join(terms)

    def resolution(self) -> float:
        if self._domain.is_float:
            return 0.0  # a float raw has no step worth a tolerance
        mid = (self._domain.minimum + self._domain.maximum) / 2
        grid = np.linspace(self._domain.minimum, self._domain.maximum, 257)
        grid = np.append(grid, mid)
        return float(np.max(np.abs(self._eval(grid + 1) - self._eval(grid))))


_UNDEFINED = re.compile(r"^UNDEFINED_(-?\d+)$")


class States(Calibration):
    """Enumeration: raw code -> state name.  Unknown codes decode as ``UNDEFINED_<code>``.

    Keys are single codes or inclusive code ranges (``(lo, hi)`` or ``range(lo, hi + 1)``), as
    XTCE enumerations have; several codes or ranges may share one name.  Encoding a name
    writes its lowest code.
    """

    is_state = True

    def __init__(self, states: Mapping) -> None:
        if not states:
            raise DefinitionError("States calibration needs at least one state")
        intervals: list[tuple[int, int, str]] = []
        for key, name in states.items():
            if not isinstance(name, str) or not name or _UNDEFINED.match(name):
                raise DefinitionError(f"invalid state name {name!r}")
            low, high = self._interval(key)
            intervals.append((low, high, name))
        intervals.sort()
        for (lo1, hi1, n1), (lo2, hi2, n2) in zip(intervals, intervals[1:], strict=False):
            if lo2 <= hi1:
                raise DefinitionError(f"state codes {lo1}..{hi1} ({n1!r}) and {lo2}..{hi2} ({n2!r}) overlap")
        #: single codes -> name; ranges as (lo, hi, name)
        self.states = {lo: name for lo, hi, name in intervals if lo == hi}
        self.ranges = [(lo, hi, name) for lo, hi, name in intervals if lo != hi]
        self.codes: dict[str, int] = {}
        for lo, _hi, name in intervals:
            self.codes.setdefault(name, lo)  # sorted: the lowest code of a name
        names = [name for _, _, name in intervals]
        lowest, highest = intervals[0][0], intervals[-1][1]
        width = max(len(n) for n in names + [f"UNDEFINED_{lowest}"]) + 12
        self._dtype = np.dtype(f"<U{width}")
        # Sorted disjoint intervals: a code's state is found by one binary search.
        self._lows = np.array([lo for lo, _, _ in intervals], dtype=np.int64)
        self._highs = np.array([hi for _, hi, _ in intervals], dtype=np.int64)
        self._names = np.array(names, dtype=self._dtype)
        # Dense codes: a direct lookup table.  Sparse or wide codes (a 32-bit field with a few
        # far-apart values) would make that table huge: search the sorted intervals instead.
        self._lookup_base = min(0, lowest)
        self._lookup = None
        if highest - self._lookup_base + 1 <= 4096:
            self._lookup = self._search(np.arange(self._lookup_base, highest + 1, dtype=np.int64))

    @staticmethod
    def _interval(key) -> tuple[int, int]:
        if isinstance(key, range):
            if key.step != 1 or not len(key):
                raise DefinitionError(f"state code range {key!r} must be non-empty with step 1")
            return key.start, key.stop - 1
        if isinstance(key, tuple):
            if len(key) != 2 or not all(isinstance(k, (int, np.integer)) for k in key) or key[0] > key[1]:
                raise DefinitionError(f"state code range {key!r} must be (low, high) with low <= high")
            return int(key[0]), int(key[1])
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return int(key), int(key)
        raise DefinitionError(f"state code {key!r} is not an integer or a (low, high) range")

    def _search(self, codes: np.ndarray) -> np.ndarray:
        position = np.clip(np.searchsorted(self._lows, codes, side="right") - 1, 0, self._lows.size - 1)
        known = (codes >= self._lows[position]) & (codes <= self._highs[position])
        out = np.empty(codes.shape, dtype=self._dtype)
        out[known] = self._names[position[known]]
        out[~known] = [f"UNDEFINED_{int(c)}" for c in codes[~known]]
        return out

    def bind(self, domain: RawDomain) -> None:
        if domain.is_float:
            raise DefinitionError("States calibration applies to integer raw fields")
        bad = [c for lo, hi in zip(self._lows.tolist(), self._highs.tolist(), strict=True) for c in (lo, hi)
               if not domain.contains(c)]
        if bad:
            raise DefinitionError(f"state codes {bad} do not fit the raw field ({domain.minimum:g}..{domain.maximum:g})")

    def to_eng(self, raw):
        return str(self.to_eng_array(np.array([int(raw)]))[0])

    def to_raw(self, eng):
        if isinstance(eng, (int, np.integer)) and not isinstance(eng, bool):
            return int(eng)
        name = str(eng)
        if name in self.codes:
            return self.codes[name]
        match = _UNDEFINED.match(name)
        if match:
            return int(match.group(1))
        raise ProtocolError("parameter", f"unknown state {name!r}; allowed: {', '.join(self.codes)}")

    def to_eng_array(self, raw: np.ndarray) -> np.ndarray:
        codes = np.asarray(raw).astype(np.int64)
        if self._lookup is None:
            return self._search(codes)
        index = codes - self._lookup_base
        known = (index >= 0) & (index < self._lookup.size)
        if known.all():
            return self._lookup[index]
        out = np.empty(codes.shape, dtype=self._dtype)
        out[known] = self._lookup[index[known]]
        out[~known] = [f"UNDEFINED_{int(c)}" for c in codes[~known]]
        return out

    def to_raw_array(self, eng: np.ndarray) -> np.ndarray:
        eng = np.asarray(eng)
        if eng.dtype.kind in "iu":
            return eng.astype(np.int64)
        return np.array([self.to_raw(e) for e in eng.ravel()], dtype=np.int64).reshape(eng.shape)

    def intervals(self) -> list[tuple[int, int, str]]:
        """Every (lowest code, highest code, name), in code order."""
        return list(zip(self._lows.tolist(), self._highs.tolist(), self._names.tolist(), strict=True))

    def describe(self) -> str:
        pairs = zip(self._lows.tolist(), self._highs.tolist(), self._names.tolist(), strict=True)
        return "states: " + ", ".join(f"{lo}={name}" if lo == hi else f"{lo}..{hi}={name}" for lo, hi, name in pairs)


# --------------------------------------------------------------------------- limits


def classify_ranges(values, warning, critical) -> np.ndarray:
    """Limit state (uint8) of each value against (low, high) warning and critical ranges (None: open)."""
    values = np.asarray(values, dtype=np.float64)
    state = np.zeros(values.shape, dtype=np.uint8)
    for bounds, level in ((warning, LimitState.WARNING), (critical, LimitState.CRITICAL)):
        if bounds is None:
            continue
        lo, hi = bounds
        outside = np.zeros(values.shape, dtype=bool)
        if lo is not None:
            outside |= values < lo
        if hi is not None:
            outside |= values > hi
        state[outside] = level
    return state


class Limits:
    """Numeric limits: nominal inside ``warning``, warning inside ``critical``, critical outside.

    Either range may be omitted; a bound may be None (open on that side).
    """

    def __init__(self, *, warning: tuple[float | None, float | None] | None = None,
                 critical: tuple[float | None, float | None] | None = None) -> None:
        if warning is None and critical is None:
            raise DefinitionError("Limits needs a warning range, a critical range, or both")
        self.warning = self._check("warning", warning)
        self.critical = self._check("critical", critical)
        if self.warning and self.critical:
            (wlo, whi), (clo, chi) = self.warning, self.critical
            if (clo is not None and (wlo is None or wlo < clo)) or (chi is not None and (whi is None or whi > chi)):
                raise DefinitionError(f"critical range {self.critical} must contain warning range {self.warning}")

    @staticmethod
    def _check(kind: str, bounds):
        if bounds is None:
            return None
        lo, hi = bounds
        if lo is not None and hi is not None and lo > hi:
            raise DefinitionError(f"{kind} limit range is reversed: low {lo} > high {hi}")
        return (lo, hi)

    @staticmethod
    def _outside(bounds, value) -> bool:
        lo, hi = bounds
        return (lo is not None and value < lo) or (hi is not None and value > hi)

    def classify(self, value: float) -> LimitState:
        if self.critical and self._outside(self.critical, value):
            return LimitState.CRITICAL
        if self.warning and self._outside(self.warning, value):
            return LimitState.WARNING
        return LimitState.NOMINAL

    def classify_array(self, values: np.ndarray) -> np.ndarray:
        return classify_ranges(values, self.warning, self.critical)

    def describe(self) -> str:
        def fmt(b):
            lo, hi = b
            return f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
        parts = []
        if self.warning:
            parts.append(f"warning outside {fmt(self.warning)}")
        if self.critical:
            parts.append(f"critical outside {fmt(self.critical)}")
        return "; ".join(parts)


class StateLimits:
    """Limits of an enumeration: states that are a warning, states that are critical.

    Both empty is an explicit "every state is nominal" (a mode word whose every value is normal).
    """

    def __init__(self, *, warning: Iterable[str] = (), critical: Iterable[str] = ()) -> None:
        self.warning = frozenset(warning)
        self.critical = frozenset(critical)
        both = self.warning & self.critical
        if both:
            raise DefinitionError(f"states {sorted(both)} are both warning and critical")

    def bind(self, states: States) -> None:
        unknown = (self.warning | self.critical) - set(states.codes)
        if unknown:
            raise DefinitionError(f"state limits name unknown states {sorted(unknown)}; known: {sorted(states.codes)}")

    def classify(self, value: str) -> LimitState:
        if value in self.critical:
            return LimitState.CRITICAL
        if value in self.warning:
            return LimitState.WARNING
        return LimitState.NOMINAL

    def classify_array(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        state = np.zeros(values.shape, dtype=np.uint8)
        if self.warning:
            state[np.isin(values, list(self.warning))] = LimitState.WARNING
        if self.critical:
            state[np.isin(values, list(self.critical))] = LimitState.CRITICAL
        return state

    def describe(self) -> str:
        if not self.warning and not self.critical:
            return "every state nominal"
        parts = []
        if self.warning:
            parts.append("warning in " + ", ".join(sorted(self.warning)))
        if self.critical:
            parts.append("critical in " + ", ".join(sorted(self.critical)))
        return "; ".join(parts)


# --------------------------------------------------------------------------- the field


class Parameter(cs.Adapter):
    """A telemetry field with calibration, unit, description and limits.

    Parse gives the engineering value, build takes it (range-checked against the raw field).
    """

    def __init__(self, subcon, *, unit: str, description: str, calibration: Calibration | None = None,
                 limits: Limits | StateLimits | None = None) -> None:
        super().__init__(subcon)
        if not description or not description.strip():
            raise DefinitionError("every parameter needs a description")
        if unit is None:
            raise DefinitionError("every parameter needs a unit ('' for dimensionless, 'state' for enumerations)")
        self.unit = unit
        self.description = description
        self.domain = raw_domain(subcon)
        # A calibration object may be shared by several fields (a module constant): bind a copy,
        # since binding records this field's raw domain.
        self.calibration = copy.copy(calibration) if calibration is not None else Identity()
        self.calibration.bind(self.domain)
        if self.calibration.is_state:
            if limits is not None and not isinstance(limits, StateLimits):
                raise DefinitionError("an enumeration takes StateLimits, not numeric Limits")
            if limits is not None:
                assert isinstance(self.calibration, States)  # the only calibration with is_state
                limits.bind(self.calibration)
        elif isinstance(limits, StateLimits):
            raise DefinitionError("a numeric parameter takes Limits, not StateLimits")
        self.limits = limits

    def _decode(self, obj, context, path):
        return self.calibration.to_eng(obj)

    def _encode(self, obj, context, path):
        raw = self.calibration.to_raw(obj)
        if not self.domain.is_float and not (isinstance(raw, (int, np.integer)) and self.domain.contains(raw)):
            raise ProtocolError(
                "parameter",
                f"engineering value {obj!r} is raw {raw} outside the field's range "
                f"{self.domain.minimum:g}..{self.domain.maximum:g}",
                field=path.replace("(building)", "").lstrip(" ->") or "",
            )
        return int(raw) if not self.domain.is_float else float(raw)

    def classify(self, value) -> LimitState:
        """Limit state of an engineering value (NOMINAL when the parameter has no limits)."""
        return self.limits.classify(value) if self.limits is not None else LimitState.NOMINAL


def parameters_of(struct: cs.Construct, prefix: str = "") -> list[tuple[str, Parameter]]:
    """Every Parameter in a (nested) construct, as (dotted path, Parameter), in wire order."""
    found: list[tuple[str, Parameter]] = []

    def walk(node: cs.Construct, path: str) -> None:
        if isinstance(node, cs.Renamed):
            walk(node.subcon, f"{path}.{node.name}" if path and node.name else node.name or path)
        elif isinstance(node, Parameter):
            found.append((path, node))
        elif isinstance(node, (cs.Struct, cs.Sequence, cs.FocusedSeq)):
            for sub in node.subcons:
                walk(sub, path)
        elif isinstance(node, (cs.Subconstruct,)) and hasattr(node, "subcon"):
            walk(node.subcon, path)

    walk(struct, prefix)
    return found
