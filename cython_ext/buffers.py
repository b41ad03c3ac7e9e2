"""What every kernel does first: see any bytes-like object as a flat run of uint8, and check its arguments.

The compiled kernels index raw pointers without bounds checks, so every public
entry validates starts, lengths and markers here before it touches memory; the
twins call the same checks so that both raise the same project error.
"""
from __future__ import annotations

import numpy as np

from protocols.errors import ProtocolError


class KernelArgumentError(ProtocolError):
    """A kernel was called with a start, length or marker outside what its buffer allows."""

    def __init__(self, kernel: str, argument: str, message: str) -> None:
        super().__init__(f"kernel {kernel}", message, field=argument)


def as_u8(obj):
    """A flat uint8 view of ``obj`` (numpy array, bytes, bytearray, memoryview) without copying."""
    if isinstance(obj, np.ndarray):
        return obj.reshape(-1).view(np.uint8)
    if isinstance(obj, (bytes, bytearray)):
        return obj
    view = memoryview(obj)
    return view.cast("B") if view.nbytes else b""


def check_start(kernel: str, start, size: int, argument: str = "start") -> int:
    """``start`` as an int in 0..size (a start at the end is an empty search), else KernelArgumentError."""
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
        raise KernelArgumentError(kernel, argument, f"must be an integer, not {type(start).__name__}")
    start = int(start)
    if not 0 <= start <= size:
        raise KernelArgumentError(kernel, argument, f"{start} is outside the buffer of {size} octets")
    return start


def check_length(kernel: str, value, argument: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in minimum..maximum, else KernelArgumentError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise KernelArgumentError(kernel, argument, f"must be an integer, not {type(value).__name__}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise KernelArgumentError(kernel, argument, f"{value} is out of range ({bound})")
    return value


def check_marker(kernel: str, marker) -> bytes:
    """A non-empty marker as bytes."""
    if not isinstance(marker, (bytes, bytearray, memoryview)) or not len(marker):
        raise KernelArgumentError(kernel, "marker", "must be a non-empty bytes object")
    return bytes(marker)


def check_slices(kernel: str, offsets: np.ndarray, lengths: np.ndarray | int, size: int) -> None:
    """Every ``[offset, offset + length)`` lies inside a buffer of ``size`` octets."""
    if offsets.size and (offsets.min() < 0 or np.min(lengths) < 0 or (offsets + lengths).max() > size):
        raise KernelArgumentError(kernel, "offsets", f"a slice runs outside the buffer of {size} octets")
