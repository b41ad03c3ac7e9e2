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


def nominal_cpu(mission: str, seconds: float) -> tuple[float, int]:
    """CPU seconds per wall second of an emulator at its nominal rates on a UDP downlink to a local sink."""
    import asyncio
    import resource
    import socket

    from flightsw.runtime import Emulator

    async def run() -> tuple[float, int]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            emu = Emulator(mission, downlink=f"udp://127.0.0.1:{sink.getsockname()[1]}", seed=1)
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.monotonic()
            async with emu:
                await asyncio.sleep(seconds)
            after = resource.getrusage(resource.RUSAGE_SELF)
            wall = time.monotonic() - start
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            return cpu / wall, emu.frames_sent

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flood", description=__doc__.splitlines()[0])
    parser.add_argument("--mission", default="haiyang2d")
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nominal", type=float, metavar="SECONDS",
                        help="instead: CPU use of the emulator at its nominal rates over SECONDS of real time")
    args = parser.parse_args(argv)
    if args.nominal:
        share, frames = nominal_cpu(args.mission, args.nominal)
        print(f"nominal {args.mission}: {share * 100:.2f} % of one core over {args.nominal:g} s "
              f"({frames} frames sent, kernels: {cython_ext.BACKEND})")
        return 0
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
