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


@pytest.mark.parametrize("state,status", [("completed", 0), ("failed", 1), ("timed_out", 1), ("unreported", 3)])
def test_wait_exits_by_the_final_state(monkeypatch, capsys, state, status):
    """`send --wait` against canned daemon answers: on board but unreported is neither success nor failure."""
    import argparse

    from groundstation import send

    answers = iter([(202, {"id": 7, "stages": [{"stage": "queued", "time": 1.0}]}),
                    (200, {"id": 7, "final": True, "state": state,
                           "stages": [{"stage": "queued", "time": 1.0}, {"stage": state, "time": 2.0}]})])
    monkeypatch.setattr(send, "api_request", lambda *a, **k: next(answers))
    monkeypatch.setenv("QUEQIAO_API_TOKEN", "t" * 20)
    args = argparse.Namespace(arguments=[], api="http://127.0.0.1:9", spacecraft="haiyang2d", command="PING",
                              wait=True, timeout=None, config=None)
    assert send.run(args) == status
    assert capsys.readouterr().out.splitlines()[-1] == f"command 7: {state}"
