"""Bash completion of `groundstation send`: the completers' answers, and argcomplete driving the real parser."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from groundstation.send import complete_argument, complete_command, complete_spacecraft

REPO = Path(__file__).resolve().parents[2]


def parsed(spacecraft="zhurong", command="DRIVE", arguments=()):
    return argparse.Namespace(spacecraft=spacecraft, command=command, arguments=list(arguments))


def test_spacecraft_and_command_names_complete_from_the_mission_database():
    assert complete_spacecraft("zh") == ["zhurong"]
    assert sorted(complete_spacecraft("change5")) == ["change5-lander", "change5-orbiter"]
    assert complete_command("DR", parsed()) == ["DRIVE"]
    assert complete_command("set_s", parsed()) == ["SET_SUSPENSION"]
    assert complete_command("", parsed(spacecraft="voyager")) == []


def test_argument_names_then_state_values_complete():
    assert complete_argument("", parsed()) == ["distance=", "heading=", "speed=", "mode="]
    assert complete_argument("", parsed(arguments=["distance=5", "mode=CRAB"])) == ["heading=", "speed="]
    assert complete_argument("mode=", parsed()) == ["mode=NORMAL", "mode=CRAB", "mode=WHEEL_WALK"]
    assert complete_argument("mode=c", parsed()) == ["mode=CRAB"]
    assert complete_argument("distance=", parsed()) == []  # a number: nothing to offer
    assert complete_argument("", parsed(command="NOPE")) == []


def test_the_console_script_answers_the_bash_completion_protocol(tmp_path):
    line = "groundstation send zhurong DRIVE distance=5 mo"
    out = tmp_path / "answers"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "groundstation.cli"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert out.read_text().split("\n") == ["mode="]
