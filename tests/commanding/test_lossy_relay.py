"""What the ground says against what the spacecraft did, over a bad link: real `flightsw run` and
`groundstation run` processes with a `links.relay` process in each direction (20 % loss, 5 %
duplication, 10 % reordering), 50 distinct commands submitted without pause and 50 with pauses.
The emulator's own command log (``--command-log``) is the truth the ground's final states are
compared with.

- haiyang2d (COP-1): every command executes exactly once, in order, and every ground final
  state agrees with the board: ``completed`` when the completion report came down,
  ``unreported`` when it did not (the FARM or a PUS 1 report proved it on board).
- zhurong (type-BD frames only, its AOS downlink has no CLCW): exactly-once is not promised; a
  lost frame is never sent again and a duplicated one runs twice.  The ground never claims a
  command that did not run: each command it reports completed or unreported ran on board, and
  each one that never arrived is ``timed_out``.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import ExitStack

import pytest

from protocols.missions import registry
from tests.commanding.test_send_over_links import PY, TOKEN, free_port, sdls_keys, start, station_config, wait_ready

IMPAIRMENT = ["--loss", "0.2", "--duplicate", "0.05", "--reorder", "0.1"]
COUNT = 50  # commands per round: one round back to back, one with pauses
PAUSE_S = 0.3
ON_BOARD = ("completed", "unreported")  # the final states that say the spacecraft ran the command


def api(http: int, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{http}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def distinct_commands(mission: str, count: int) -> list[tuple[str, dict]]:
    """PINGs and housekeeping period changes, each with its own arguments: every execution on board
    can be told apart from every other one."""
    sc = registry().spacecraft(mission)
    sid = sorted(sc.command("SET_HK_PERIOD").arguments["sid"].valid)[0]
    return [("PING", {}) if i % 2 else ("SET_HK_PERIOD", {"sid": sid, "period": 30 + i}) for i in range(count)]


def relay(stack: ExitStack, listen: int, to: int, seed: int) -> subprocess.Popen:
    return start(stack, [PY, "-m", "links.relay", "--listen", f"127.0.0.1:{listen}", "--to", f"127.0.0.1:{to}",
                         *IMPAIRMENT, "--seed", str(seed)], dict(os.environ))


def relay_counts(process: subprocess.Popen) -> dict:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    return json.loads(out.strip().splitlines()[-1])


def run_over_the_relays(tmp_path, mission: str) -> tuple[list[dict], list[dict], dict]:
    """(the ground's final records in submission order, the emulator's command log, relay counts)."""
    emu_down, gs_down, gs_up, emu_up = (free_port(socket.SOCK_DGRAM) for _ in range(4))
    http = free_port()
    env = dict(os.environ, QUEQIAO_API_TOKEN=TOKEN)
    key_args, key_line = sdls_keys(tmp_path, mission)
    command_log = tmp_path / "onboard-commands.jsonl"
    config = station_config(tmp_path, http, f'url = "udp://127.0.0.1:{gs_down}"', mission,
                            f"udp://127.0.0.1:{gs_up}", key_line, verification_timeout_s=20)
    ids: list[int] = []
    with ExitStack() as stack:
        down = relay(stack, emu_down, gs_down, seed=1)
        up = relay(stack, gs_up, emu_up, seed=2)
        start(stack, [PY, "-m", "flightsw.cli", "run", "--mission", mission, "--bitrate", "256000",
                      "--downlink", f"udp://127.0.0.1:{emu_down}", "--uplink", f"udp://127.0.0.1:{emu_up}",
                      "--command-log", str(command_log), *key_args], env)
        time.sleep(0.3)
        gs = start(stack, [PY, "-m", "groundstation.cli", "run", "--config", str(config)], env)
        wait_ready(http, gs, mission)
        commands = distinct_commands(mission, 2 * COUNT)
        for i, (name, arguments) in enumerate(commands):
            sent = api(http, "POST", "/api/v1/commands", {"spacecraft": mission, "command": name,
                                                          "arguments": arguments})
            ids.append(sent["id"])
            if i >= COUNT:
                time.sleep(PAUSE_S)
        records: dict[int, dict] = {}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            listed = api(http, "GET", f"/api/v1/commands?spacecraft={mission}&limit={len(ids)}")["commands"]
            records = {r["id"]: r for r in listed}
            if all(records.get(i, {}).get("final") for i in ids):
                break
            time.sleep(0.5)
        # Every window has closed: anything still on its way would be too late to matter.
        counts = {"down": relay_counts(down), "up": relay_counts(up)}
        assert gs.poll() is None
    log = [json.loads(line) for line in command_log.read_text().splitlines()]
    ordered = [records[i] for i in ids]
    for record, (name, arguments) in zip(ordered, commands, strict=True):
        assert (record["command"], record["arguments"]) == (name, arguments)
    return ordered, log, counts


def executions(records: list[dict], log: list[dict]) -> list[int]:
    """How many times the spacecraft ran each command (matched by APID and packet sequence count)."""
    runs = collections.Counter((entry["apid"], entry["sequence_count"]) for entry in log)
    return [runs[(r["apid"], r["sequence_count"])] for r in records]


def assert_impaired(counts: dict) -> None:
    for direction in ("down", "up"):
        c = counts[direction]
        assert c["dropped"] > 0 and c["duplicated"] > 0 and c["reordered"] > 0, counts


@pytest.mark.slow
def test_cop1_runs_every_command_exactly_once_in_order_and_the_ground_agrees_with_the_board(tmp_path):
    records, log, counts = run_over_the_relays(tmp_path, "haiyang2d")
    assert_impaired(counts)
    runs = executions(records, log)
    assert runs == [1] * len(records), [(r["id"], n) for r, n in zip(records, runs, strict=True) if n != 1]
    assert len(log) == len(records)  # nothing else ran on board
    assert [(e["apid"], e["sequence_count"]) for e in log] == [(r["apid"], r["sequence_count"]) for r in records]
    for record, entry in zip(records, log, strict=True):
        assert entry["arguments"] == record["arguments"]
    states = collections.Counter(r["state"] for r in records)
    assert set(states) <= set(ON_BOARD), (states, [(r["id"], r["state"], r["detail"]) for r in records
                                                   if r["state"] not in ON_BOARD])


@pytest.mark.slow
def test_bypass_commanding_over_the_same_link_never_claims_a_command_that_did_not_run(tmp_path):
    records, log, counts = run_over_the_relays(tmp_path, "zhurong")
    assert_impaired(counts)
    runs = executions(records, log)
    for record, ran in zip(records, runs, strict=True):
        if record["state"] in ON_BOARD:
            assert ran >= 1, record
        if ran == 0:
            assert record["state"] == "timed_out", record
    # What a bypass uplink costs on this link, for the record: some commands never arrived.
    assert runs.count(0) > 0
    assert sum(state in ON_BOARD for state in (r["state"] for r in records)) > len(records) // 2
