"""Helpers for the operations-kit tests (deploy/): paths and the external tools they run.

The tools come from Debian packages (promtool from ``prometheus``, ``mosquitto``,
``systemd-analyze`` from ``systemd``).  A missing tool fails the test under CI
(CI=true) and skips it elsewhere with the apt command; scripts/ensure-system-deps.sh
installs all of them as root.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# The real-component helpers (private Mosquitto/Prometheus on loopback) live next door.
_REALCOMPONENTS = REPO / "tests" / "realcomponents"
if _REALCOMPONENTS.is_dir() and str(_REALCOMPONENTS) not in sys.path:
    sys.path.insert(0, str(_REALCOMPONENTS))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def need_tool(command: str, package: str, *, debian_path: str | None = None, why: str = "") -> str:
    """The tool's path; if missing: fail under CI=true, else skip naming the Debian package."""
    path = shutil.which(command)
    if path is None and debian_path and os.access(debian_path, os.X_OK):
        path = debian_path
    if path:
        return path
    message = f"{command} not found{(' (' + why + ')') if why else ''}; install it with `sudo apt-get install {package}`"
    if package in ("prometheus", "mosquitto"):
        message += " or run scripts/ensure-system-deps.sh as root"
    if in_ci():
        pytest.fail(f"CI=true and a required tool is missing: {message}", pytrace=False)
    pytest.skip(message)


def run(argv: list[str], *, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run a tool, capturing its output as text (never raising on a non-zero status)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


@contextlib.contextmanager
def groundstation_process(argv: list[str], address: str, log_path: Path, *, what: str, cwd: Path,
                          env: dict | None = None):
    """Run a groundstation command until its /healthz answers at ``address``; stop it on exit."""
    from tests.realcomponents import components

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env=env, start_new_session=True)

    def healthy():
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            return None

    try:
        components.wait_until(healthy, timeout=30, interval=0.2, what=f"{what} /healthz")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
