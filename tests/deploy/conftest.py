"""tests/deploy: the operations kit (Prometheus rules, systemd units, Mosquitto ACL, board scripts).

Helpers are in deploy_helpers.py (a unique module name: conftest modules are not importable by name).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REAL_COMPONENT_TESTS = {"test_mosquitto_acl.py", "test_prometheus_live.py"}
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath))
        if HERE in path.parents and path.name in REAL_COMPONENT_TESTS:
            item.add_marker(pytest.mark.realcomponents)
