"""Flood benchmark of the emulator: ``python -m benchmarks.flood [--mission NAME] [--packets N] [--repeats R]``.

The emulator's flood mode (:meth:`flightsw.runtime.FlightSoftware.flood`): housekeeping
reports built with ``PacketCodec.encode_many``, multiplexed into transfer frames by
``FrameMux`` and turned into CADUs (ASM, randomized when the profile says so), on one core.
Prints packets/s (median of the repeats) and checks a sample with the demultiplexer.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime

import cython_ext
from flightsw.runtime import FlightSoftware, RuntimeConfig
from protocols.ccsds.sync import FrameSynchronizer
from protocols.ccsds.vcmux import FrameDemux
from protocols.missions import registry

TARGET_PPS = 200_000


def pin_one_core() -> str:
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned"


def runtime(mission: str) -> FlightSoftware:
    return FlightSoftware(registry().spacecraft(mission),
                          RuntimeConfig(virtual=True, start=datetime(2021, 6, 1, tzinfo=UTC), seed=1))


def check(mission: str, packets: int) -> tuple[int, int]:
    """(packets the demultiplexer finds, anomalies) in a flood of ``packets``."""
    rt = runtime(mission)
    stream = b"".join(rt.flood(packets))
    sync = FrameSynchronizer(rt.frame_profile.frame_length, derandomize=rt.frame_profile.randomized)
    result = FrameDemux(rt.frame_profile).feed(f.data for f in sync.feed(stream).frames)
    return len(result.packets), len(result.anomalies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flood", description=__doc__.splitlines()[0])
    parser.add_argument("--mission", default="haiyang2d")
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    pinned = pin_one_core()
    backend = f"kernels: {cython_ext.BACKEND}"
    found, anomalies = check(args.mission, 20_000)
    times = []
    octets = 0
    for _ in range(args.repeats):
        rt = runtime(args.mission)
        start = time.perf_counter()
        octets = sum(len(chunk) for chunk in rt.flood(args.packets))
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    pps = args.packets / median
    print(f"flood {args.mission}: {args.packets} housekeeping packets -> {octets} CADU octets "
          f"({octets / args.packets:.1f} per packet), {pinned}, {backend}")
    print(f"  {pps:,.0f} packets/s (median of {args.repeats}; best {args.packets / best:,.0f}), "
          f"{octets * 8 / median / 1e6:,.1f} Mbit/s of CADUs")
    print(f"  check: 20000 flooded, {found} decoded by the demultiplexer, {anomalies} anomalies")
    print(f"  target >= {TARGET_PPS:,} packets/s: {'met' if pps >= TARGET_PPS else 'NOT met'}")
    return 0 if found == 20_000 and not anomalies else 1


if __name__ == "__main__":
    raise SystemExit(main())
