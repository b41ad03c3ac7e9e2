"""Shared test configuration.

Wire-format suites (tests/protocols, tests/kernels, tests/missions, tests/codec) are
marked ``protocols``: `make test` runs them a second time with QUEQIAO_PURE_PYTHON=1.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI explores the same examples on every run (a red CI must mean a regression, not an
# unlucky draw); local runs keep drawing new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
    settings.load_profile("ci")

WIRE_FORMAT_SUITES = {"protocols", "kernels", "missions", "codec", "interop", "cli"}
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS).parts
        if parts and parts[0] in WIRE_FORMAT_SUITES:
            item.add_marker(pytest.mark.protocols)


def pytest_report_header(config):
    import cython_ext

    return f"queqiao kernels: {cython_ext.BACKEND}"
