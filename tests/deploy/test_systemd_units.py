"""deploy/systemd: the units are valid (systemd-analyze verify, where available) and hardened.

The hardening checks parse the unit files themselves and always run; ``systemd-analyze
verify`` and ``systemd-analyze security --offline`` run against a scratch root holding
the units, the host's stock units and stand-ins for /opt/queqiao/venv/bin/*.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_helpers import DEPLOY, explain, need_tool, run

SYSTEMD = DEPLOY / "systemd"
GROUNDSTATION = SYSTEMD / "queqiao-groundstation.service"
FLIGHTSW = SYSTEMD / "queqiao-flightsw@.service"
SERIAL_DROPIN = SYSTEMD / "queqiao-groundstation.service.d" / "serial.conf"
ENV_EXAMPLE = SYSTEMD / "flightsw.env.example"
VENV_BIN = "/opt/queqiao/venv/bin"
UNITS = [GROUNDSTATION, FLIGHTSW]
SERIAL_CLASSES = {"char-ttyS", "char-ttyUSB", "char-ttyACM", "char-ttyAMA"}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value in order (systemd keys may repeat; an empty value resets)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    text = path.read_text().replace("\\\n", " ")
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{lineno}: not a key=value line: {raw!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(path: Path) -> dict[str, list[str]]:
    return parse_unit(path)["Service"]


def last(values: dict[str, list[str]], key: str) -> str | None:
    return values[key][-1] if key in values else None


def seconds(value: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?", value):
        total += float(number) * {"ms": 0.001, "s": 1, "": 1, "min": 60, "m": 60, "h": 3600}[unit or ""]
    return total


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("yes", "true", "1", "on")


# ---------------------------------------------------------------------------- always: the files themselves


def test_unit_files_exist():
    for path in [*UNITS, SERIAL_DROPIN, ENV_EXAMPLE, SYSTEMD / "queqiao.sysusers.conf"]:
        assert path.is_file(), path


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_hardening_keys(unit):
    s = service(unit)
    assert truthy(last(s, "DynamicUser")) or last(s, "User") == "queqiao", "needs a dedicated user"
    assert last(s, "ProtectSystem") == "strict"
    assert truthy(last(s, "ProtectHome"))
    assert truthy(last(s, "PrivateTmp"))
    assert truthy(last(s, "NoNewPrivileges"))
    families = last(s, "RestrictAddressFamilies").split()
    assert set(families) == {"AF_INET", "AF_INET6", "AF_UNIX"}, families
    assert s.get("CapabilityBoundingSet") == [""], "CapabilityBoundingSet must be empty"
    assert s.get("AmbientCapabilities", [""]) == [""]
    assert "@system-service" in s["SystemCallFilter"][0].split()
    assert all(v.startswith("~") for v in s["SystemCallFilter"][1:]), "later filters may only deny"
    for key in ("ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "RestrictSUIDSGID",
                "RestrictNamespaces", "LockPersonality", "RestrictRealtime"):
        assert truthy(last(s, key)), key
    assert last(s, "Restart") == "on-failure"
    assert seconds(last(s, "RestartSec")) >= 1
    assert seconds(last(s, "TimeoutStopSec")) >= 30, "allow a clean flush before SIGKILL"
    assert last(s, "KillSignal") in (None, "SIGTERM", "SIGINT")
    assert "StateDirectory" in s and "LogsDirectory" in s
    assert parse_unit(unit)["Install"]["WantedBy"] == ["multi-user.target"]


def test_groundstation_unit():
    s = service(GROUNDSTATION)
    argv = shlex.split(last(s, "ExecStart"))
    assert argv == [f"{VENV_BIN}/groundstation", "run", "--config", "/etc/queqiao/groundstation.toml"]
    assert last(s, "User") == "queqiao" and last(s, "Group") == "queqiao"
    # The archive directory of the example configuration, created for the service user.
    assert "queqiao/archive" in last(s, "StateDirectory").split()
    assert "/var/lib/queqiao/archive" in (DEPLOY / "groundstation.example.toml").read_text()
    assert truthy(last(s, "PrivateDevices")), "no devices unless the serial drop-in is installed"
    assert last(s, "EnvironmentFile").lstrip("-") == "/etc/queqiao/groundstation.env"


def test_groundstation_serial_dropin():
    s = service(SERIAL_DROPIN)
    assert last(s, "PrivateDevices") == "no" and last(s, "DevicePolicy") == "closed"
    assert {v.split()[0] for v in s["DeviceAllow"]} == SERIAL_CLASSES
    assert last(s, "SupplementaryGroups") == "dialout"


def test_flightsw_template_unit():
    assert "@" in FLIGHTSW.name, "a template unit: queqiao-flightsw@<mission>.service"
    s = service(FLIGHTSW)
    argv = shlex.split(last(s, "ExecStart"))
    assert argv[:5] == [f"{VENV_BIN}/flightsw", "run", "--mission", "%i", "--downlink"]
    assert "${DOWNLINK}" in argv and "${UPLINK}" in argv and "$FLIGHTSW_OPTS" in argv
    assert last(s, "EnvironmentFile") == "/etc/queqiao/flightsw-%i.env"
    # Serial links: the real /dev, but only UARTs, and the group that owns them.
    assert last(s, "SupplementaryGroups") == "dialout"
    assert not truthy(last(s, "PrivateDevices")) and last(s, "DevicePolicy") == "closed"
    assert {v.split()[0] for v in s["DeviceAllow"]} == SERIAL_CLASSES
    assert "%i" in last(s, "StateDirectory")


def test_env_example_defines_what_the_unit_uses():
    values = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert {"DOWNLINK", "UPLINK", "FLIGHTSW_OPTS"} <= set(values)
    from links.url import parse_link_url

    parse_link_url(values["DOWNLINK"])
    parse_link_url(values["UPLINK"])


# ---------------------------------------------------------------------------- the CLIs the units run


def _cli_help(program: str, *args: str) -> str | None:
    exe = Path(sys.executable).with_name(program)  # the venv running the tests, activated or not
    if not exe.exists():
        exe = shutil.which(program)
    if not exe:
        return None
    proc = subprocess.run([str(exe), *args, "--help"], capture_output=True, text=True, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


@pytest.mark.parametrize("unit,program", [(GROUNDSTATION, "groundstation"), (FLIGHTSW, "flightsw")],
                         ids=["groundstation", "flightsw"])
def test_execstart_options_exist_in_the_cli(unit, program):
    argv = shlex.split(last(service(unit), "ExecStart"))
    text = _cli_help(program, "run")
    assert text is not None, f"`{program} run --help` failed"
    for option in (a for a in argv if a.startswith("--")):
        assert option in text, f"`{program} run --help` does not list {option} (used by {unit.name})"


# ---------------------------------------------------------------------------- systemd-analyze verify


@pytest.fixture(scope="module")
def systemd_root(tmp_path_factory) -> Path:
    """A scratch root: stock units from the host, our units in /etc, stand-in executables in the venv."""
    need_tool("systemd-analyze", "systemd", why="verify checks the unit files without a running systemd")
    stock = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                  if (p / "sysinit.target").exists()), None)
    assert stock is not None, "systemd-analyze is here but not the stock units (sysinit.target) of Debian's systemd"
    root = tmp_path_factory.mktemp("systemd-root")
    shutil.copytree(stock, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, etc / unit.name)
    shutil.copytree(SERIAL_DROPIN.parent, etc / SERIAL_DROPIN.parent.name)
    venv_bin = root / VENV_BIN.lstrip("/")
    venv_bin.mkdir(parents=True)
    for program in ("groundstation", "flightsw"):
        (venv_bin / program).write_text("#!/bin/sh\n")
        (venv_bin / program).chmod(0o755)
    (root / "etc/queqiao").mkdir()
    shutil.copy(ENV_EXAMPLE, root / "etc/queqiao/flightsw-zhurong.env")
    return root


@pytest.mark.parametrize("unit", ["queqiao-groundstation.service", "queqiao-flightsw@zhurong.service"])
def test_systemd_analyze_verify(systemd_root, unit):
    proc = run(["systemd-analyze", "verify", f"--root={systemd_root}", unit], timeout=60)
    # verify exits 0 on unknown keys and unparsable values: any message about our units is a failure.
    assert proc.returncode == 0, explain(proc)
    assert not (proc.stdout + proc.stderr).strip(), explain(proc)


@pytest.mark.parametrize("unit", ["queqiao-groundstation.service", "queqiao-flightsw@zhurong.service"])
def test_systemd_analyze_security_exposure_is_low(systemd_root, unit):
    proc = run(["systemd-analyze", "security", "--offline=yes", f"--root={systemd_root}", "--threshold=25",
                "--no-pager", unit], timeout=60)
    assert proc.returncode == 0, "exposure above 2.5 (systemd-analyze security):\n" + explain(proc)
    assert "Overall exposure level" in proc.stdout, explain(proc)


def test_systemd_analyze_catches_a_typo(systemd_root, tmp_path):
    """The verify test would notice a broken unit (verify itself exits 0 on these)."""
    broken = systemd_root / "etc/systemd/system/queqiao-typo.service"
    broken.write_text(GROUNDSTATION.read_text().replace("ProtectHome=yes", "ProtectHomme=yes"))
    try:
        proc = run(["systemd-analyze", "verify", f"--root={systemd_root}", broken.name], timeout=60)
        assert "ProtectHomme" in proc.stdout + proc.stderr, explain(proc)
    finally:
        broken.unlink()


def _systemd_argv(exec_start: str, env: dict[str, str], instance: str) -> list[str]:
    """ExecStart= as systemd expands it: ${VAR} is one word (even empty), $VAR splits at spaces."""
    argv: list[str] = []
    for word in shlex.split(exec_start.replace("%i", instance)):
        braced = re.fullmatch(r"\$\{(\w+)\}", word)
        bare = re.fullmatch(r"\$(\w+)", word)
        if braced:
            argv.append(env.get(braced.group(1), ""))
        elif bare:
            argv += env.get(bare.group(1), "").split()
        else:
            argv.append(word)
    return argv


@pytest.mark.parametrize("overrides", [{}, {"UPLINK": ""}, {"FLIGHTSW_OPTS": "--seed 7 --time-scale 2"}],
                         ids=["example", "empty-uplink", "opts"])
def test_flightsw_execstart_parses_with_the_env_example(overrides):
    """The unit's command line, expanded with the example env file, is accepted by `flightsw run`'s parser."""
    from flightsw.cli import main

    parser = main.build_parser()
    s = service(FLIGHTSW)
    env = dict(v.split("=", 1) for value in s.get("Environment", []) for v in value.split())
    env.update(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#"))
    env.update(overrides)
    argv = _systemd_argv(last(s, "ExecStart"), env, "zhurong")
    assert "run" in parser.format_help()
    args = parser.parse_args(argv[1:])
    assert args.mission == "zhurong" and args.downlink == env["DOWNLINK"]
    assert args.uplink == env["UPLINK"]
