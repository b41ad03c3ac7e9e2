"""``groundstation run`` freezes what start-up built out of the collector's full passes (a pass over
them stalled the loop for 40-55 ms, longer than the socket's buffer lasts at 50,000 frames/s); a daemon
inside another program leaves that program's collector alone."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.protocols

PROBE = r"""
import asyncio, gc, json, sys, tempfile
from groundstation.config import parse_config
from groundstation.daemon import Daemon

async def main(own_process):
    root = tempfile.mkdtemp()
    config = parse_config(f'''
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:0"
[archive]
dir = "{root}/archive"
''')
    daemon = Daemon(config, http_listen="127.0.0.1:0", own_process=own_process)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    for _ in range(400):
        await asyncio.sleep(0.025)
        if daemon.http is not None and daemon.http.port and (gc.get_freeze_count() or not own_process):
            break
    await asyncio.sleep(0.2)  # the tasks are all started by now
    frozen = gc.get_freeze_count()
    garbage = []
    garbage.append(garbage)  # a cycle made after start-up: still collected
    del garbage
    collected = gc.collect()
    stop.set()
    await asyncio.wait_for(task, 10)
    print(json.dumps({"frozen": frozen, "collected": collected}))

asyncio.run(main(sys.argv[1] == "own"))
"""


@pytest.mark.parametrize("own", [True, False])
def test_the_daemon_process_freezes_its_start_up_objects_and_still_collects_later_garbage(own):
    out = subprocess.run([sys.executable, "-c", PROBE, "own" if own else "library"], capture_output=True,
                         text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if own:
        assert result["frozen"] > 20_000  # the mission database and the chain, at least
    else:
        assert result["frozen"] == 0
    assert result["collected"] >= 1
