"""`groundstation watch` as an operator sees it: a 24-line tmux pane against a demo with an injected fault."""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "watch-test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pane(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                          check=True).stdout


def test_watch_shows_the_injected_alarm_with_state_names_on_the_first_screen(tmp_path):
    assert shutil.which("tmux"), "tmux is missing: scripts/ensure-system-deps.sh installs it"

    script = Path(sys.executable).with_name("groundstation")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QUEQIAO_API_TOKEN": TOKEN}
    demo = subprocess.Popen([str(script), "demo", "--mission", "zhurong", "--http", f"127.0.0.1:{port}",
                             "--archive", str(tmp_path / "archive"), "--duration", "60",
                             "--fault", "zhurong=stuck:power.battery_voltage=20@t=2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    session = f"qq-watch-{uuid.uuid4().hex[:8]}"
    command = " ".join(shlex.quote(a) for a in [
        "env", f"PYTHONPATH={ROOT}", f"QUEQIAO_API_TOKEN={TOKEN}", str(script), "watch", "--url",
        f"http://127.0.0.1:{port}", "--spacecraft", "zhurong", "--interval", "0.5"])
    try:
        time.sleep(4)  # the daemon binds and the emulator sends its first housekeeping
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "24", command], check=True)
        screen = ""
        for _ in range(60):
            time.sleep(0.5)
            screen = _pane(session)
            if "CRITICAL" in screen and "limit_critical" in screen:
                break
        lines = screen.splitlines()
        assert len(lines) <= 24
        assert lines[0].startswith("zhurong: ") and "1 critical" in lines[0], screen
        alarm = next(i for i, line in enumerate(lines) if "battery_voltage" in line)
        assert "CRITICAL" in lines[alarm] and " 20 " in lines[alarm] and alarm == 3, screen
        assert any(word in screen for word in ("IDLE", "OFF", "ON ")), screen  # state names, not codes
        assert "limit_critical" in screen and "fault_activated" in screen, screen  # the events pane
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        demo.terminate()
        demo.wait(10)


