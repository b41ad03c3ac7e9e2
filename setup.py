"""Build the Cython kernels in cython_ext/ when a C compiler is available.

Every kernel has a pure-Python twin in cython_ext/pure/, so a machine without
a compiler (or without Cython) still installs; cython_ext warns once at import.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that turns a compile failure into a warning instead of an error."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any toolchain failure means "use the twins"
            self._warn(f"Cython kernels not built ({exc}); the pure-Python twins will be used.")

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"kernel {ext.name} not built ({exc}); its pure-Python twin will be used.")

    @staticmethod
    def _warn(message: str) -> None:
        print(f"WARNING: {message}", file=sys.stderr)


def extensions() -> list:
    if os.environ.get("QUEQIAO_NO_CYTHON") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("WARNING: Cython is not installed; the pure-Python twins will be used.", file=sys.stderr)
        return []
    sources = sorted(str(p) for p in Path("cython_ext").glob("*.pyx"))
    if not sources:
        return []
    return cythonize(
        sources,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
