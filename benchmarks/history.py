"""History benchmark: ``python -m benchmarks.history [--packets N] [--write docs/PERFORMANCE.md]``.

Three figures, on one pinned core:

1. Parameter archive while ingesting: the replay chain (``FrameChain.process`` on the frames of an
   emulator flood of haiyang2d, every housekeeping packet decoded) with the parameter archive
   taking every sample, flushes included; samples/s, and the chain's own rate without the archive
   for comparison.  Yamcs publishes a parameter-archive backfill of about 2 million samples/s on
   four cores (about 0.5 million per core): the ratio per core is in the table.
2. Remote write: the same samples encoded (protobuf + snappy) and sent to a local VictoriaMetrics
   (``victoria-metrics`` on the other core) until the receiver acknowledged all of them.
3. A query of one 1 Hz parameter over one day from an archive holding a whole day of haiyang2d at
   its nominal rates (every parameter, compacted per hour), warm cache: median of repeats.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.__main__ import machine, pin_one_core
from benchmarks.report import write_section
from flightsw.runtime import FlightSoftware, RuntimeConfig
from groundstation.chain import ChainEvents, FrameChain
from groundstation.metrics import Metrics
from groundstation.parameter_archive import ParameterArchive, ParameterReader
from groundstation.remote_write import Endpoint, RemoteWriter
from protocols.missions import registry

MISSION = "haiyang2d"
TARGETS = {"archive": 2_000_000, "remote_write": 500_000, "query_ms": 50.0}
YAMCS_PER_CORE = 2_000_000 / 4


def flood_frames(packets: int) -> list[bytes]:
    rt = FlightSoftware(registry().spacecraft(MISSION),
                        RuntimeConfig(virtual=True, start=datetime(2026, 12, 1, tzinfo=UTC), seed=1))
    length = rt.frame_profile.frame_length
    frames: list[bytes] = []
    for chunk in rt.flood(packets, cadus=False):
        frames += [chunk[i:i + length] for i in range(0, len(chunk), length)]
    return frames


def chain_run(frames: list[bytes], archive: ParameterArchive | None, batch: int = 1000) -> tuple[float, int]:
    """Seconds to push every frame through the chain (and the archive, flushes included); samples."""
    samples = [0]

    def count(sc, definition, raw, onboard, ground) -> None:
        samples[0] += len(next(iter(raw.values()))) * len(definition.parameters())
        if archive is not None:
            archive.add(sc, definition, raw, onboard, ground)

    chain = FrameChain(registry(), Metrics(), spacecraft=[MISSION], events=ChainEvents(on_samples=count))
    now = time.time()
    start = time.perf_counter()
    for i in range(0, len(frames), batch):
        chain.process("bench", frames[i:i + batch], now + i * 1e-3)
        if archive is not None and archive.pending_samples >= 2_000_000:
            archive.flush()
    if archive is not None:
        archive.flush()
    return time.perf_counter() - start, samples[0]


def bench_archive(frames: list[bytes], repeats: int) -> tuple[float, float, int]:
    plain = min(chain_run(frames, None)[0] for _ in range(repeats))
    with_archive = []
    samples = 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as root:
            seconds, samples = chain_run(frames, ParameterArchive(root))
            with_archive.append(seconds)
    return samples / min(with_archive), samples / plain, samples


def bench_remote_write(frames: list[bytes]) -> tuple[float, int, str]:
    from tests.realcomponents.components import VictoriaMetrics, find_binary

    if find_binary("victoria-metrics", "/usr/bin/victoria-metrics") is None:
        return float("nan"), 0, "victoria-metrics not installed"
    groups = []

    def keep(sc, definition, raw, onboard, ground) -> None:
        groups.append((sc, definition, raw, onboard, ground))

    chain = FrameChain(registry(), Metrics(), spacecraft=[MISSION], events=ChainEvents(on_samples=keep))
    now = time.time() - 600
    for i in range(0, len(frames), 1000):
        chain.process("bench", frames[i:i + 1000], now + i * 1e-3)
    with tempfile.TemporaryDirectory() as work:
        receiver = VictoriaMetrics(Path(work)).start()
        try:
            endpoint = Endpoint(receiver.write_url, name="victoria-metrics")
            writer = RemoteWriter([endpoint], interval=0.05)

            async def run() -> float:
                task = asyncio.create_task(writer.run())
                start = time.perf_counter()
                for g in groups:
                    writer.add(*g)
                while not writer.samples_encoded or endpoint.stats.samples_sent < writer.samples_encoded:
                    await asyncio.sleep(0.01)
                elapsed = time.perf_counter() - start
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return elapsed

            elapsed = asyncio.run(run())
            return endpoint.stats.samples_sent / elapsed, endpoint.stats.samples_sent, "victoria-metrics 1.79 (Debian)"
        finally:
            receiver.stop()


def bench_query(repeats: int) -> tuple[float, int, int]:
    """Median ms of a one-day query of one 1 Hz parameter; its rows; the day's samples in the archive."""
    sc = registry().spacecraft(MISSION)
    day = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        archive = ParameterArchive(root)
        total = 0
        for hour in range(24):
            for definition in sc.housekeeping:
                count = int(3600 / definition.period)
                onboard = day + hour * 3600 + np.arange(count) * definition.period
                raw = {path: rng.integers(0, 100, count) for path, _ in definition.parameters()}
                # One ground batch per packet period would be a million groups: batches of a minute.
                per_minute = max(1, int(60 / definition.period))
                for start in range(0, count, per_minute):
                    part = slice(start, start + per_minute)
                    archive.add(MISSION, definition, {k: v[part] for k, v in raw.items()}, onboard[part],
                                float(onboard[part][-1]) + 0.5)
                total += count * len(definition.parameters())
            archive.flush()
        archive.compact(all_hours=True)
        reader = ParameterReader(root)
        reader.samples(MISSION, ["altimeter_range"], start=day, end=day + 86400)  # warm the footers and page cache
        times, rows = [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            rows = reader.samples(MISSION, ["altimeter_range"], start=day, end=day + 86400).num_rows
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3, rows, total


def render(info, archive_rate, chain_rate, samples, rw_rate, rw_samples, rw_peer, query_ms, query_rows, day_samples):
    def mark(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        "<!-- history:begin (written by `python -m benchmarks.history --write docs/PERFORMANCE.md`) -->",
        "## Parameter archive and remote write",
        "",
        f"Machine: {info['cpu']}, Python {info['python']}, {info['pinned']}; measured {info['date']} "
        f"(load average {info['load']} when it started: other work shared the two cores).",
        "",
        "| measure | target | result | met |",
        "|---|---|---|---|",
        f"| replay chain + parameter archive, samples/s (every sample to Parquet, flushes included) | "
        f">= {TARGETS['archive']:,} | {archive_rate:,.0f} | {mark(archive_rate >= TARGETS['archive'])} |",
        f"| the same chain without the archive, samples/s | | {chain_rate:,.0f} | |",
        f"| against Yamcs' published backfill per core (2 M/s on 4 cores) | | "
        f"{archive_rate / YAMCS_PER_CORE:.1f}x | |",
        f"| remote write to a local receiver ({rw_peer}), samples/s | >= {TARGETS['remote_write']:,} | "
        f"{rw_rate:,.0f} | {mark(rw_rate >= TARGETS['remote_write'])} |",
        f"| one-day query of one 1 Hz parameter ({query_rows:,} rows of {day_samples:,} that day), warm, ms | "
        f"<= {TARGETS['query_ms']:g} | {query_ms:.1f} | {mark(query_ms <= TARGETS['query_ms'])} |",
        "",
        f"Workload: {samples:,} samples from an emulator flood of {MISSION} (every housekeeping definition in turn), "
        f"through `FrameChain` in batches of 1,000 frames; remote write of {rw_samples:,} samples, all acknowledged.",
        "The Yamcs figure is a backfill on four cores of a different machine: a rough scale, not a same-run peer.",
        "<!-- history:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)
    info = machine()
    info["pinned"] = pin_one_core()
    info["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    info["load"] = f"{os.getloadavg()[0]:.1f}"
    frames = flood_frames(args.packets)
    archive_rate, chain_rate, samples = bench_archive(frames, args.repeats)
    print(f"archive: {archive_rate:,.0f} samples/s (chain alone {chain_rate:,.0f})")
    rw_rate, rw_samples, peer = bench_remote_write(frames)
    print(f"remote write: {rw_rate:,.0f} samples/s ({rw_samples:,} samples, {peer})")
    query_ms, rows, day = bench_query(max(5, args.repeats))
    print(f"query: {query_ms:.1f} ms for {rows:,} rows of a {day:,}-sample day")
    if args.write:
        write_section(args.write, "history", render(info, archive_rate, chain_rate, samples, rw_rate, rw_samples,
                                                    peer, query_ms, rows, day))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
