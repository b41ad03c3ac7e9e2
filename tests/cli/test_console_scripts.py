"""Both console scripts answer --help and --version, and list their sub-commands."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

COMMANDS = {
    "groundstation": ["run", "demo", "replay", "inspect", "send", "watch", "check-config", "mdb"],
    "flightsw": ["missions", "run"],
}


@pytest.mark.parametrize("program", sorted(COMMANDS))
def test_version_and_help(program):
    version = subprocess.run([str(BIN / program), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"{program} {metadata.version('queqiao')}"
    helptext = subprocess.run([str(BIN / program), "--help"], capture_output=True, text=True, timeout=60)
    assert helptext.returncode == 0
    for command in COMMANDS[program]:
        assert f"    {command}" in helptext.stdout, (command, helptext.stdout)
        sub = subprocess.run([str(BIN / program), command, "--help"], capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0 and "usage:" in sub.stdout


@pytest.mark.parametrize("program", sorted(COMMANDS))
def test_no_command_prints_help_and_fails(program):
    result = subprocess.run([str(BIN / program)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage:" in result.stdout
