"""Real `flightsw run` and `groundstation run` processes over UDP, haiyang2d (its profile requires SDLS):
the ground's authenticated commands complete over COP-1, while a replayed, a forged and an
unauthenticated TC frame sent straight to the emulator's uplink port are each refused, and the ground
decodes the refusals from the spacecraft's own telemetry (PUS 5 events in its log, obdh housekeeping in
its metrics)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from contextlib import ExitStack

import pytest

from cython_ext import crc as _crc
from protocols.ccsds.tcframe import TcFrame
from protocols.missions import registry
from tests.commanding.test_send_over_links import PY, TOKEN, free_port, sdls_keys, start, station_config, wait_ready

MISSION = "haiyang2d"


class CapturingRelay:
    """Forwards the ground's uplink datagrams to the emulator and keeps a copy: what an eavesdropper records."""

    def __init__(self, target: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", target)
        self.captured: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.captured.append(data)
            self.sock.sendto(data, self.target)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def parameter(http: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith("queqiao_parameter_value{") and f'spacecraft="{MISSION}"' in line \
                and f'parameter="{name}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def send_command(http: int, env: dict, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "groundstation.cli", "send", "--api", f"http://127.0.0.1:{http}", MISSION,
                           *command, "--wait", "--timeout", "40"], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("spi,encrypted", [(1, False), (2, True)], ids=["HMAC-SHA-256", "AES-256-GCM"])
def test_replayed_forged_and_unauthenticated_frames_are_refused_while_the_ground_commands(tmp_path, spi, encrypted):
    down, up, http = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM), free_port()
    env = dict(os.environ, QUEQIAO_API_TOKEN=TOKEN)
    key_args, key_line = sdls_keys(tmp_path, MISSION, spi)
    with ExitStack() as stack:
        relay = CapturingRelay(up)
        stack.callback(relay.close)
        config = station_config(tmp_path, http, f'url = "udp://127.0.0.1:{down}"', MISSION,
                                f"udp://127.0.0.1:{relay.port}", key_line)
        fsw = start(stack, [PY, "-m", "flightsw.cli", "run", "--mission", MISSION, "--bitrate", "256000",
                            "--downlink", f"udp://127.0.0.1:{down}", "--uplink", f"udp://127.0.0.1:{up}",
                            "--hk-period", "obdh=1", *key_args], env)
        time.sleep(0.3)
        gs = start(stack, [PY, "-m", "groundstation.cli", "run", "--config", str(config), "--log-level", "INFO"],
                   env)
        wait_ready(http, gs, MISSION)
        ping = send_command(http, env, "PING")
        power = send_command(http, env, "POWER_INSTRUMENT", "instrument=ALTIMETER", "state=ON")
        for out in (ping, power):
            assert out.returncode == 0 and out.stdout.splitlines()[-1].endswith(": completed"), out.stdout + out.stderr

        # What the eavesdropper recorded: secured AD frames (bypass flag 0) with a PUS packet inside.
        ad = [f for f in relay.captured if not f[0] & 0x20 and len(f) > 40]
        assert ad, [f.hex() for f in relay.captured]
        recorded = ad[0]
        sc = registry().spacecraft(MISSION)
        plain_packet = sc.command("PING").build(sequence_count=77)
        # The packet's identity and length words: in clear after SPI and sequence number with HMAC-SHA-256,
        # encrypted after SPI, IV and sequence number with AES-256-GCM.
        offset = 5 + 2 + (12 if encrypted else 0) + 4
        seen_words = recorded[offset:offset + 2] + recorded[offset + 4:offset + 6]
        assert (seen_words == plain_packet[:2] + plain_packet[4:6]) is not encrypted, recorded.hex()
        forged = bytearray(recorded)
        forged[-20] ^= 0x01  # a bit of the packet's error control changed, FECF redone: only the MAC can tell
        forged[-2:] = _crc.crc16(bytes(forged[:-2])).to_bytes(2, "big")
        unauthenticated = TcFrame(sc.scid, 0, plain_packet, bypass_flag=1).build()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for frame in (recorded, bytes(forged), unauthenticated):
                attacker.sendto(frame, ("127.0.0.1", up))
                time.sleep(0.2)
        after = send_command(http, env, "PING")
        assert after.returncode == 0 and after.stdout.splitlines()[-1].endswith(": completed"), after.stdout

        wanted = {"sdls_rejected_replayed": 1.0, "sdls_rejected_forged": 1.0, "sdls_rejected_unauthenticated": 1.0,
                  "tc_accepted": 3.0}
        seen: dict[str, float | None] = {}
        for _ in range(200):
            seen = {name: parameter(http, name) for name in wanted}
            if seen == wanted:
                break
            time.sleep(0.1)
        assert seen == wanted
        assert parameter(http, "sdls_frames_accepted") >= 3  # the ground's frames, BC frames included
        assert fsw.poll() is None and gs.poll() is None
    log = gs.stdout.read()
    events = re.findall(r"event haiyang2d: tc_frame_rejected_security (\{.*\})", log)
    reasons = [re.search(r"'reason': '(\w+)'", e).group(1) for e in events]
    assert reasons == ["REPLAYED", "FORGED", "UNAUTHENTICATED"], log[-3000:]
    assert f"'spi': {spi}" in events[0] and f"'spi': {spi}" in events[1]
