"""Merge benchmark: ``python -m benchmarks.merge [--frames N] [--write docs/PERFORMANCE.md]``.

A private nats-server (JetStream), three stations' copies of one downlink (each with its
own independent 20 % loss) published to the spacecraft's stream, then the merge
(``MergeConsumer`` + ``FrameMerger``, the daemon's own classes) pinned to one core drains
it.  Throughput: messages offered per second of merge time, with the merged output checked
against the union of what the stations sent (zero loss, no duplicate, in order).
Latency: the three stations then publish live at a steady rate and each released frame's
delay from its first copy's receipt time is recorded; the merge's wait is ``--wait``.
The merged frames go to a counting sink, not the chain: the chain's cost is
benchmarks.ingest's subject.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.flood import pin_one_core
from groundstation.config import MergeConfig, NetworkConfig
from groundstation.metrics import Metrics
from groundstation.network.broker import connect, ensure_streams
from groundstation.network.consumer import MergeConsumer
from groundstation.network.merge import FrameMerger, Released
from groundstation.network.message import AOS_COUNT_MODULUS, FrameMessage, Quality, encode, subject
from protocols.ccsds.tmframe import pack_aos_header

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "realcomponents"))
from components import NatsServer  # noqa: E402

SITES = ("perth", "kourou", "kiruna")
SCID, VCID, SPACECRAFT = 66, 1, "benchsat"
FRAME_LENGTH = 1115
TARGET_FPS = 20_000
TARGET_P99_S = 0.050
BEGIN = "<!-- merge:begin (python -m benchmarks.merge --write docs/PERFORMANCE.md) -->"


def downlink(count: int, start: int = 0) -> list[bytes]:
    body = bytes(FRAME_LENGTH - 6)
    return [pack_aos_header(SCID, VCID, (start + i) % AOS_COUNT_MODULUS) + body for i in range(count)]


def keeps(seed: int, count: int) -> dict[str, list[bool]]:
    """Which frames each station received (independent 20 % loss), the same in both processes."""
    rng = random.Random(seed)
    return {s: [rng.random() >= 0.2 for _ in range(count)] for s in SITES}


async def publish(url: str, start: int, count: int, seed: int, rate: float | None) -> None:
    """The three stations, interleaved as live stations are (in 50-frame steps), at ``rate`` frames/s each."""
    network = NetworkConfig(url=url, duplicate_window_s=10.0)
    nc = await connect(network, "bench-stations")
    js = nc.jetstream(publish_async_max_pending=20_000)
    await ensure_streams(js, network, [SPACECRAFT])
    frames = downlink(count, start)
    kept = keeps(seed, count)
    step = 50
    for first in range(0, count, step):
        received_ns = time.time_ns()  # the three antennas hear a frame at (nearly) the same moment
        for offset, site in enumerate(SITES):
            for i in range(first, min(first + step, count)):
                if kept[site][i]:
                    message = FrameMessage(site, f"{site}-rx", received_ns + offset * 1_000_000, Quality(),
                                           frames[i])
                    await js.publish_async(subject("queqiao", SPACECRAFT, VCID), encode(message),
                                           headers={"Nats-Msg-Id": f"{site}.{start + i}"})
        if rate is not None:
            await asyncio.sleep(step / rate)
    await js.publish_async_completed()
    await nc.close()


def stations_process(url: str, start: int, count: int, seed: int, rate: float | None) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # not the merge's core
    asyncio.run(publish(url, start, count, seed, rate))


def run_stations(url: str, start: int, count: int, seed: int, rate: float | None):
    proc = multiprocessing.get_context("spawn").Process(target=stations_process, args=(url, start, count, seed, rate))
    proc.start()
    return proc


async def run(frames_total: int, wait_s: float, live_seconds: float, live_rate: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="queqiao-bench-merge-") as tmp:
        server = NatsServer(Path(tmp)).start()
        try:
            network = NetworkConfig(url=server.url, duplicate_window_s=10.0)
            merge = MergeConfig(enabled=True, stations=SITES, wait_s=wait_s, fetch_batch=2000)
            loader = run_stations(server.url, 0, frames_total, 1, None)  # the flood: stored before the merge runs
            await asyncio.to_thread(loader.join, 600)
            kept = keeps(1, frames_total)
            offered = sum(sum(k) for k in kept.values())
            expected = [i for i in range(frames_total) if any(kept[s][i] for s in SITES)]

            delivered: list[int] = []
            latencies: list[float] = []
            done = asyncio.Event()

            def deliver(released: list[Released]) -> None:
                now = time.time_ns()
                delivered.extend(r.absolute for r in released)
                latencies.extend((now - r.message.receipt_ns) / 1e9 for r in released)
                if len(delivered) >= len(expected):
                    done.set()

            merger = FrameMerger({(1, SCID): SPACECRAFT}, stations=SITES, wait_s=wait_s)
            consumer = MergeConsumer(network, merge, merger, Metrics(), deliver)
            pinned = pin_one_core()
            cpu0, t0 = time.process_time(), time.perf_counter()
            task = asyncio.create_task(consumer.run([SPACECRAFT]))
            await asyncio.wait_for(done.wait(), timeout=600)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            flood = outcome(delivered, expected)
            # Live: three stations at a steady rate, the merge keeping up; latency per released frame.
            delivered.clear()
            latencies.clear()
            done.clear()
            live = int(live_seconds * live_rate)
            live_kept = keeps(2, live)
            expected = [frames_total + i for i in range(live) if any(live_kept[s][i] for s in SITES)]
            stations = run_stations(server.url, frames_total, live, 2, live_rate)
            await asyncio.wait_for(done.wait(), timeout=60 + 4 * live_seconds)
            await asyncio.to_thread(stations.join, 30)
            live_outcome = outcome(delivered, expected)
            task.cancel()
        finally:
            server.stop()
    lat = np.asarray(latencies)
    return {"offered": offered, "elapsed": elapsed, "cpu": cpu, "fps": offered / elapsed, "flood": flood,
            "live": live_outcome, "load": os.getloadavg()[0], "live_rate": live_rate * len(SITES) * 0.8,
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "wait": wait_s,
            "pinned": pinned}


def outcome(delivered: list[int], expected: list[int]) -> str:
    """Lost, duplicated and out-of-order frames of the merged output against what the stations sent."""
    lost = len(set(expected) - set(delivered))
    duplicated = len(delivered) - len(set(delivered))
    out_of_order = sum(1 for a, b in itertools.pairwise(delivered) if b < a)
    if not (lost or duplicated or out_of_order):
        return "none lost, none duplicated, in order"
    return f"{lost} lost, {duplicated} duplicated, {out_of_order} out of order"


def section(r: dict) -> str:
    return "\n".join([
        BEGIN,
        "## Network merge (three stations, one core)",
        "",
        f"Generated by `python -m benchmarks.merge --write docs/PERFORMANCE.md` (the merge {r['pinned']}; a private "
        "nats-server and the three stations (another process, on the other core) on the same machine; the merged "
        "frames go to a counting sink, not the chain).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| frames offered through the merge (3 stations, 20 % loss each) | {r['fps']:,.0f} frames/s "
        f"({r['offered']:,} in {r['elapsed']:.2f} s, CPU {r['cpu']:.2f} s) | >= {TARGET_FPS:,} frames/s |",
        f"| merge CPU per offered frame (flood) | {r['cpu'] / r['offered'] * 1e6:.0f} µs "
        f"(= {r['offered'] / r['cpu']:,.0f} frames/s of one core's time) | |",
        f"| merged output (flood) | {r['flood']} | zero loss |",
        f"| merge latency p50 / p99, live at {r['live_rate']:,.0f} frames/s offered "
        f"(wait {r['wait'] * 1000:.0f} ms) | {r['p50'] * 1000:.1f} / {r['p99'] * 1000:.1f} ms "
        f"({r['live']}) | <= wait + {TARGET_P99_S * 1000:.0f} ms |",
        "",
        "Latency is release time minus the first copy's ground receipt time (publish, JetStream, fetch, merge). "
        "Frames every station has passed leave without waiting, so p99 stays under the wait itself when all "
        "stations are alive.",
        "",
        f"Load average during the run: {r['load']:.1f} on this machine's cores (shared with other work): the "
        "wall-clock rate is the machine's, the CPU line is the merge's own cost.",
        "<!-- merge:end -->",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.merge", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40_000, help="frames of the downlink (each station keeps 80 %%)")
    parser.add_argument("--wait", type=float, default=0.2, help="[merge] wait_s")
    parser.add_argument("--live-seconds", type=float, default=5.0)
    parser.add_argument("--live-rate", type=float, default=2000.0, help="frames/s per station in the live phase")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help="update the 'merge' section of this file")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.frames, args.wait, args.live_seconds, args.live_rate))
    text = section(result)
    print(text)
    if args.write:
        from benchmarks import report

        report.write_section(args.write, "merge", text)
    return 0 if result["flood"] == result["live"] == outcome([], []) else 1


if __name__ == "__main__":
    sys.exit(main())
