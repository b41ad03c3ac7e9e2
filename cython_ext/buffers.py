"""What every kernel does first: see any bytes-like object as a flat run of uint8."""
from __future__ import annotations

import numpy as np


def as_u8(obj):
    """A flat uint8 view of ``obj`` (numpy array, bytes, bytearray, memoryview) without copying."""
    if isinstance(obj, np.ndarray):
        return obj.reshape(-1).view(np.uint8)
    if isinstance(obj, (bytes, bytearray)):
        return obj
    view = memoryview(obj)
    return view.cast("B") if view.nbytes else b""
