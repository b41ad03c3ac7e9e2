"""`groundstation send` argument parsing and its refusal without a token."""
from __future__ import annotations

import subprocess
import sys

import pytest

from groundstation.send import parse_arguments


def test_arguments_keep_json_types():
    assert parse_arguments(["state=ON", "distance=12.5", "count=3", "enable=true", "name=\"x\""]) == {
        "state": "ON", "distance": 12.5, "count": 3, "enable": True, "name": "x"}


@pytest.mark.parametrize("bad", ["novalue", "=5"])
def test_bad_arguments(bad):
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_arguments([bad])


def test_no_token_is_a_clear_error(monkeypatch):
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "groundstation.cli", "send", "zhurong", "PING"],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 2
    assert "QUEQIAO_API_TOKEN" in result.stderr
