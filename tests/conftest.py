"""Shared test configuration.

Wire-format suites (tests/protocols, tests/kernels, tests/missions, tests/codec) are
marked ``protocols``: `make test` runs them a second time with QUEQIAO_PURE_PYTHON=1.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
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


# ---------------------------------------------------------------------------- nothing outlives the run
# The long-running programs the suite starts. At the end of the session none of them may
# still run: a leftover fails the run (and is then stopped, so the machine is clean).
SERVER_PROGRAMS = {"mosquitto", "prometheus", "promtool", "victoria-metrics", "nats-server", "flightsw",
                   "groundstation"}
# Every process the suite starts inherits this variable (unless a test builds an environment
# from nothing), so even one that lost its parent is still recognised as ours.
SESSION_MARK = "QUEQIAO_TEST_SESSION"


def pytest_configure(config):
    os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)


def _program(cmdline: list[str]) -> str | None:
    """The server program a command line runs (``mosquitto -c ..``, ``python -m groundstation.cli ..``)."""
    for i, arg in enumerate(cmdline[:3]):
        name = os.path.basename(arg)
        if name in SERVER_PROGRAMS:
            return name
        if arg == "-m" and i + 1 < len(cmdline):
            module = cmdline[i + 1].split(".")[0]
            return module if module in SERVER_PROGRAMS else None
    return None


def _processes() -> dict[int, tuple[int, str, list[str], bytes]]:
    """pid -> (parent pid, start time, command line, environment) of every process we may read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        table[int(entry.name)] = (int(stat[1]), stat[19], [a.decode(errors="replace") for a in cmdline if a], environ)
    return table


def leftover_servers() -> dict[int, str]:
    """Server processes this session started (descendants, marked environment, or recorded) still running."""
    from tests.realcomponents.components import SPAWNED

    table = _processes()
    me = os.getpid()
    mark = f"\0{SESSION_MARK}={os.environ[SESSION_MARK]}\0".encode()

    def descends_from_us(pid: int) -> bool:
        seen = set()
        while pid > 1 and pid not in seen:
            seen.add(pid)
            if pid == me:
                return True
            pid = table[pid][0] if pid in table else 0
        return False

    found = {}
    for pid, (_ppid, started, cmdline, environ) in table.items():
        program = _program(cmdline)
        if pid == me or program is None:
            continue
        if (pid, started) in SPAWNED or mark in b"\0" + environ or descends_from_us(pid):
            found[pid] = " ".join(cmdline)
    return found


def pytest_sessionfinish(session, exitstatus):
    deadline = time.monotonic() + 5  # a process being stopped right now gets a moment
    left = leftover_servers()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = leftover_servers()
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  pid {pid}: {cmd}" for pid, cmd in sorted(left.items())]
    message = "\n".join(["", "FAILED: the test session left these processes running (now killed):", *lines])
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header(config):
    import cython_ext

    return f"queqiao kernels: {cython_ext.BACKEND}"
