"""Comparison helpers shared by the codec tests."""
from __future__ import annotations

import numpy as np

from protocols.codec import flatten


def _normal(value):
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(bytes(value), dtype=np.uint8)
    if isinstance(value, list):
        return np.array([_normal(v) for v in value])
    return np.asarray(value)


def same(expected, actual) -> bool:
    """Equal values, NaN equal to NaN, float32 compared after widening."""
    e, a = _normal(expected), np.asarray(actual)
    if isinstance(expected, list) and not expected:
        return a.size == 0  # construct's empty list carries no element shape; a 0-row column does
    if e.dtype.kind in "US" or a.dtype.kind in "US":
        return e.shape == a.shape and bool(np.all(e.astype(str) == a.astype(str)))
    if e.dtype.kind == "f" or a.dtype.kind == "f":
        return e.shape == a.shape and bool(np.array_equal(e.astype(np.float64), a.astype(np.float64), equal_nan=True))
    return e.shape == a.shape and bool(np.array_equal(e, a))


def assert_matches_construct(struct, packets: list[bytes], columns: dict) -> None:
    """decode_many columns == construct.parse of each packet, field by field."""
    parsed = [flatten(struct.parse(p)) for p in packets]
    if not parsed:
        return
    keys = {k for k, v in parsed[0].items() if v is not None}
    assert keys <= set(columns), f"missing columns {sorted(keys - set(columns))}"
    for key in sorted(keys):
        for i, item in enumerate(parsed):
            assert same(item[key], columns[key][i]), f"{key}[{i}]: construct {item[key]!r} codec {columns[key][i]!r}"


def assert_same_columns(left: dict, right: dict) -> None:
    assert set(left) == set(right)
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        assert same(left[key], right[key]), key
