"""Physical models of the mission database's spacecraft, registered in :data:`flightsw.model.MODELS`.

Importing this package imports every model module, and each registers itself
with :func:`flightsw.model.register_model`.  Shared plumbing: :mod:`flightsw.missions.common`.
"""
from __future__ import annotations

from flightsw.missions import change5_lander, change5_orbiter, haiyang2d, ilrs_lander, tianwen1, zhurong  # noqa: F401

__all__ = ["change5_lander", "change5_orbiter", "haiyang2d", "ilrs_lander", "tianwen1", "zhurong"]
