"""A ground-station network on one machine, all real processes.

A three-node nats-server cluster (JetStream, replicas 3), three station daemons each
fed the same spacecraft downlink through its own lossy relay (independent 10, 20 and
30 % loss), and a merge daemon.  The merged archive must hold every frame that at
least one station received, once, in the downlink's order — also when a NATS node is
killed in the middle of the pass.
"""
from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from components import NatsCluster, free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families

from groundstation.archive import ArchiveReader
from tests.groundstation.test_chain import frames_for, hk_packets

GS = [sys.executable, "-m", "groundstation.cli"]
SITES = {"perth": 0.10, "kourou": 0.20, "kiruna": 0.30}
SPACECRAFT = "zhurong"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.read().decode()


def _metrics(url: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(_get(url + "/metrics")):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _common(tmp: Path, name: str, http: int, cluster: NatsCluster) -> str:
    return f"""
[station]
name = "{name}"
http_listen = "127.0.0.1:{http}"
[[spacecraft]]
name = "{SPACECRAFT}"
[archive]
dir = "{tmp / name / 'archive'}"
fsync = "always"
[network]
url = "{cluster.url}"
replicas = 3
publish_timeout_s = 1.0
"""


class Daemon:
    def __init__(self, argv: list[str], log: Path, http: int) -> None:
        self.http = http
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return json.loads(_get(self.url + "/healthz"))["status"] in ("ok", "degraded")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def test_three_lossy_stations_merge_into_the_whole_pass_through_a_node_loss(nats_cluster, tmp_path):
    daemons: list[Daemon] = []
    try:
        stations: dict[str, tuple[Daemon, int]] = {}
        for name in SITES:
            (tmp_path / name).mkdir()
            udp, http = free_port(), free_port()
            config = _write(tmp_path / name / "gs.toml", _common(tmp_path, name, http, nats_cluster) + f"""
enabled = true
[[links]]
name = "{name}-rx"
url = "udp://127.0.0.1:{udp}"
""")
            daemon = Daemon([*GS, "run", "--config", str(config)], tmp_path / name / "daemon.log", http)
            daemons.append(daemon)
            stations[name] = (daemon, udp)
        (tmp_path / "merge").mkdir()
        http = free_port()
        config = _write(tmp_path / "merge" / "gs.toml", _common(tmp_path, "merge", http, nats_cluster) + f"""
[merge]
stations = {json.dumps(list(SITES))}
wait_s = 10.0  # above the stream leader re-election and a station's catch-up after the node loss
""")
        merge = Daemon([*GS, "merge", "--config", str(config)], tmp_path / "merge" / "daemon.log", http)
        daemons.append(merge)
        for daemon in daemons:
            wait_until(daemon.healthy, timeout=30, what="daemon /healthz")
        wait_until(lambda: all(_metrics(d.url).get(("queqiao_network_connected", ()), 0) == 1 for d in daemons),
                   timeout=30, what="every daemon connected to NATS")

        # The downlink: housekeeping packets in TM frames; 8-bit frame counts wrap several times.
        packets, _ = hk_packets(SPACECRAFT, 320)
        frames, _ = frames_for(SPACECRAFT, packets)
        assert len(frames) > 600
        rng = random.Random(17)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as relay:
            for i, frame in enumerate(frames):
                if i == len(frames) // 2:
                    nats_cluster.nodes[0].kill()  # a broker node lost mid-pass, without warning
                for name, loss in SITES.items():
                    if rng.random() >= loss:
                        relay.sendto(frame, ("127.0.0.1", stations[name][1]))
                time.sleep(0.004)

        def archived(name: str) -> list[bytes]:
            return [r.frame for r in ArchiveReader(tmp_path / name / "archive").records()]

        wait_until(lambda: all(_metrics(stations[n][0].url).get(("queqiao_frames_received_total", (("link", f"{n}-rx"),)))
                               == len(archived(n)) for n in SITES), timeout=10, what="stations archived all")
        time.sleep(0.5)
        received = {name: archived(name) for name in SITES}
        union = set().union(*map(set, received.values()))
        expected = [f for f in frames if f in union]
        assert len(expected) > 0.95 * len(frames)
        for name, loss in SITES.items():  # each site really missed its share
            assert len(received[name]) < (1 - loss / 2) * len(frames)

        wait_until(lambda: len(archived("merge")) >= len(expected), timeout=60, interval=0.5,
                   what="the merge archiving every frame some station received")
        # Every copy a station archived reaches the merge, the last ones possibly late (a station
        # catching up after the node loss): wait until each was dropped as a duplicate; a copy
        # archived as an extra frame instead shows in the comparison below.
        copies = sum(map(len, received.values())) - len(expected)

        def dropped() -> float:
            metrics = _metrics(merge.url)
            return sum(metrics.get(("queqiao_merge_duplicates_dropped_total", (("site", n), ("spacecraft", SPACECRAFT))),
                                   0) for n in SITES)

        wait_until(lambda: dropped() >= copies, timeout=30, interval=0.5, what="every station's copy at the merge")
        time.sleep(0.5)
        merged = archived("merge")
        counts = {f: i for i, f in enumerate(frames)}
        merge_metrics = {k: v for k, v in _metrics(merge.url).items()
                         if k[0].startswith(("queqiao_merge_late", "queqiao_merge_rejected"))}
        assert [counts.get(f, -1) for f in merged] == [counts[f] for f in expected], \
            f"merged frames (indices in the downlink) differ from every frame some station received, in order; " \
            f"merge: {merge_metrics}"
        assert merged == expected  # all, once each, in the downlink's order

        # The packets decoded downstream of the merge: one spacecraft, no duplicate packet.
        metrics = _metrics(merge.url)
        sc = (("spacecraft", SPACECRAFT),)
        chosen = {name: metrics.get(("queqiao_merge_frames_chosen_total", (("site", name), *sc)), 0)
                  for name in SITES}
        assert sum(chosen.values()) == len(expected)
        assert all(chosen.values())
        filled = {name: metrics.get(("queqiao_merge_gaps_filled_total", (("site", name), *sc)), 0) for name in SITES}
        assert all(filled.values()), filled
        duplicates = sum(metrics.get(("queqiao_merge_duplicates_dropped_total", (("site", n), *sc)), 0) for n in SITES)
        assert duplicates == copies
        dup_packets = sum(v for (name, _), v in metrics.items() if name == "queqiao_packet_duplicates_total")
        assert dup_packets == 0
        got_packets = sum(v for (name, labels), v in metrics.items()
                          if name == "queqiao_packets_total" and dict(labels).get("spacecraft") == SPACECRAFT)
        assert got_packets > 0.9 * len(packets)
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
