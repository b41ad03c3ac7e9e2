"""deploy/board and the other operations scripts: syntax, options, the sdist, a private install.

The SSH transport of install.sh is shown with --dry-run; the board side (board-setup.sh)
really installs into a private venv (slow: pip downloads the dependencies).  The arm64
check itself (make arm-check) is too heavy for the test suite: docs/ARM-CHECK.md.
"""
from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from deploy_helpers import DEPLOY, REPO, explain, run

BOARD = DEPLOY / "board"
INSTALL = BOARD / "install.sh"
SETUP = BOARD / "board-setup.sh"
ARM_CHECK = BOARD / "arm-check.sh"
SCRIPTS = [INSTALL, SETUP, ARM_CHECK, DEPLOY / "mosquitto" / "make-passwords.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_strict_executable_bash(script):
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n"), script
    assert "\nset -euo pipefail\n" in text, f"{script.name}: needs set -euo pipefail"
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    proc = run(["bash", "-n", str(script)])
    assert proc.returncode == 0, explain(proc)


@pytest.mark.parametrize("script,options", [
    (INSTALL, ["--host", "--user", "--mission", "--downlink", "--uplink", "--dry-run"]),
    (SETUP, ["--sdist", "--mission", "--downlink", "--no-compiler", "--no-systemd"]),
    (ARM_CHECK, ["--cache", "--mission", "--duration", "--fresh"]),
], ids=lambda v: v.name if isinstance(v, Path) else "")
def test_help(script, options):
    proc = run([str(script), "--help"])
    assert proc.returncode == 0, explain(proc)
    for option in options:
        assert option in proc.stdout, f"{script.name} --help does not mention {option}"


def test_unknown_option_is_an_error():
    for script in (INSTALL, SETUP, ARM_CHECK):
        proc = run([str(script), "--frobnicate"])
        assert proc.returncode != 0 and "unknown option --frobnicate" in proc.stderr, explain(proc)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    proc = run([str(INSTALL), "--sdist-only", str(out)], timeout=300)
    assert proc.returncode == 0, explain(proc)
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out, proc.stdout
    return path


def test_sdist_has_sources_and_no_build_products(sdist):
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    for required in ("setup.py", "pyproject.toml", "cython_ext/__init__.py", "flightsw/cli.py",
                     "groundstation/cli.py", "protocols/__init__.py", "links/__init__.py"):
        assert required in names, f"sdist lacks {required}"
    pyx = {Path(p).name for p in (REPO / "cython_ext").glob("*.pyx")}
    assert pyx and pyx <= {Path(n).name for n in names if n.startswith("cython_ext/")}, "kernel sources missing"
    twins = {n for n in names if n.startswith("cython_ext/pure/")}
    assert len([t for t in twins if t.endswith(".py")]) >= len(pyx), "pure-Python twins missing"
    assert not [n for n in names if n.endswith((".so", ".pyd", ".o"))], "compiled objects in the sdist"
    assert not [n for n in names if n.startswith((".venv/", "build/", "tests/"))]


def test_sdist_build_leaves_the_checkout_alone(sdist):
    """The sdist is built from a copy: no dist/, egg-info or generated C files appear in the checkout."""
    proc = run(["git", "-C", str(REPO), "status", "--porcelain", "--ignored", "--", "dist", "cython_ext/*.c"])
    assert proc.returncode == 0, explain(proc)
    assert "dist/" not in proc.stdout, proc.stdout


def test_install_dry_run_shows_the_ssh_steps():
    proc = run([str(INSTALL), "--host", "pi.example", "--user", "pi", "--mission", "haiyang2d",
                "--downlink", "udp://192.0.2.10:10015", "--uplink", "udp://192.0.2.20:10016", "--opts", "--rate 2",
                "--dry-run"], timeout=300)
    assert proc.returncode == 0, explain(proc)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert len(lines) == 2, proc.stdout
    scp, ssh = lines
    assert scp.startswith("+ scp ") and "pi@pi.example:" in scp
    for shipped in ("queqiao-0.1.0.tar.gz", "board-setup.sh", "queqiao-flightsw@.service", "flightsw.env.example"):
        assert shipped in scp
    assert ssh.startswith("+ ssh ") and "pi@pi.example" in ssh
    assert "sudo\\ bash" in ssh and "--mission\\ haiyang2d" in ssh and "udp://192.0.2.10:10015" in ssh
    assert "nothing was copied" in proc.stdout and "udp://192.0.2.20:10016" in ssh


def test_install_requires_an_uplink_address_and_refuses_readable_keys(tmp_path):
    base = [str(INSTALL), "--host", "pi.example", "--mission", "haiyang2d", "--downlink", "udp://192.0.2.10:10015"]
    proc = run([*base, "--dry-run"])
    assert proc.returncode == 1 and "--uplink URL is required (no all-interfaces default)" in proc.stderr, explain(proc)
    keys = tmp_path / "hy2d.toml"
    keys.write_text("secret")
    keys.chmod(0o644)
    proc = run([*base, "--uplink", "udp://192.0.2.20:10016", "--sdls-keys", str(keys), "--dry-run"])
    assert proc.returncode == 1 and "readable by others" in proc.stderr, explain(proc)


@pytest.mark.parametrize("args,message", [
    ([], "--sdist FILE is required"),
    (["--sdist", "/nonexistent/queqiao.tar.gz"], "no such sdist"),
    (["--sdist", "{sdist}", "--mission", "Bad Name"], "--mission 'Bad Name'"),
    (["--sdist", "{sdist}", "--downlink", "192.0.2.10:10015"], "is not a link URL"),
], ids=["no-sdist", "missing-sdist", "bad-mission", "bad-url"])
def test_board_setup_refuses_bad_arguments_before_doing_anything(args, message, tmp_path):
    fake = tmp_path / "queqiao-0.1.0.tar.gz"
    fake.write_bytes(b"")
    argv = [a.replace("{sdist}", str(fake)) for a in args]
    proc = run([str(SETUP), *argv])
    assert proc.returncode == 1 and message in proc.stderr, explain(proc)
    assert list(tmp_path.iterdir()) == [fake]


@pytest.mark.slow
def test_board_setup_private_install_without_compiler_falls_back_to_pure_python(sdist, tmp_path):
    """The board side, for real, into a private venv: no apt, no systemd, kernels not compiled."""
    venv, etc = tmp_path / "venv", tmp_path / "etc"
    env = {**os.environ, "QUEQIAO_NO_CYTHON": "1"}  # as on a board without a compiler
    proc = subprocess.run(
        [str(SETUP), "--sdist", str(sdist), "--no-apt", "--no-systemd", "--venv", str(venv), "--etc", str(etc),
         "--mission", "haiyang2d", "--downlink", "udp://192.0.2.10:10015", "--uplink", "udp://192.0.2.20:10016",
         "--opts", "--seed 7"],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout + proc.stderr
    assert "kernels: pure" in out and "RuntimeWarning" in out, out
    assert (venv / "bin" / "flightsw").exists() and (venv / "bin" / "groundstation").exists()
    version = subprocess.run([str(venv / "bin" / "flightsw"), "--version"], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert version.returncode == 0 and "0." in version.stdout, explain(version)
    unit = (etc / "systemd/system/queqiao-flightsw@.service").read_text()
    assert f"ExecStart={venv}/bin/flightsw run --mission %i" in unit
    env_file = etc / "queqiao/flightsw-haiyang2d.env"
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                  if line and not line.startswith("#"))
    assert values == {"DOWNLINK": "udp://192.0.2.10:10015", "UPLINK": "udp://192.0.2.20:10016",
                      "FLIGHTSW_OPTS": "--seed 7"}
    assert env_file.stat().st_mode & 0o777 == 0o640


def test_makefile_has_arm_check_target():
    proc = run(["make", "-n", "-C", str(REPO), "arm-check"], timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert "deploy/board/arm-check.sh" in proc.stdout


def test_arm_check_keeps_its_cache_out_of_the_repository():
    text = ARM_CHECK.read_text()
    assert "cache=/var/cache/queqiao-arm-check" in text
    proc = run([str(ARM_CHECK), "--cache", str(REPO / "var" / "cache")])
    assert proc.returncode != 0
    if os.geteuid() == 0:
        assert "outside the repository" in proc.stderr, explain(proc)
    else:
        assert "needs root" in proc.stderr, explain(proc)
