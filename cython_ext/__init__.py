"""Hot-path kernels: compiled Cython modules with pure-Python twins.

Each kernel family ``NAME`` exists twice with the same functions and identical
results: ``cython_ext/_NAME.pyx`` (compiled at install time) and
``cython_ext/pure/NAME.py`` (the twin, always importable).  This package picks
one per family at import:

- ``QUEQIAO_PURE_PYTHON=1`` forces every twin (no warning: it was asked for);
- otherwise the compiled module is used, and if it is missing (no compiler at
  install time) the twin is used with one ``RuntimeWarning`` naming what fell back.

Callers import the chosen module: ``from cython_ext import crc``.
Tests that compare both use :func:`twin` and :func:`compiled`.
"""
from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # For the type checker the chosen module of each family is its twin: the compiled kernel has the
    # same functions with the same signatures (tests/kernels prove they give the same results).
    from cython_ext.pure import crc, fields, packets, randomizer, rs, sync  # noqa: F401

#: Kernel families, in dependency order.  Each must exist as pure/NAME.py.
KERNELS: tuple[str, ...] = ("crc", "randomizer", "sync", "fields", "packets", "rs")

PURE_ENV = "QUEQIAO_PURE_PYTHON"


def pure_forced() -> bool:
    """True when the environment asks for the pure-Python twins."""
    return os.environ.get(PURE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def twin(name: str) -> ModuleType:
    """The pure-Python twin of kernel family ``name``."""
    return importlib.import_module(f"cython_ext.pure.{name}")


def compiled(name: str) -> ModuleType | None:
    """The compiled kernel ``name``, or None when it was not built."""
    try:
        return importlib.import_module(f"cython_ext._{name}")
    except ImportError:
        return None


def _select() -> dict[str, ModuleType]:
    chosen: dict[str, ModuleType] = {}
    missing: list[str] = []
    for name in KERNELS:
        twin_module = twin(name)
        module = None if pure_forced() else compiled(name)
        if module is None and not pure_forced():
            missing.append(name)
        chosen[name] = module or twin_module
    if missing:
        warnings.warn(
            "queqiao: compiled kernels not available for "
            + ", ".join(missing)
            + "; using the pure-Python twins (identical results, slower). "
            "Reinstall with a C compiler to build them, or set "
            f"{PURE_ENV}=1 to silence this warning.",
            RuntimeWarning,
            stacklevel=2,
        )
    return chosen


_CHOSEN = _select()
globals().update(_CHOSEN)

#: "compiled", "pure" or "mixed": which implementations this process runs.
BACKEND: str = (
    "pure"
    if all(m.__name__.startswith("cython_ext.pure.") for m in _CHOSEN.values())
    else "compiled"
    if not any(m.__name__.startswith("cython_ext.pure.") for m in _CHOSEN.values())
    else "mixed"
)


def backend_of(name: str) -> str:
    """Which implementation of kernel ``name`` this process uses."""
    module = _CHOSEN[name]
    return "pure" if module.__name__.startswith("cython_ext.pure.") else "compiled"
