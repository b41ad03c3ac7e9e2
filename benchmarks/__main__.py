"""Fast-path benchmarks: ``python -m benchmarks [--packets N] [--repeats R] [--write docs/PERFORMANCE.md]``.

One run, one workload (200,000 housekeeping packets of 73 bytes, see
benchmarks/workload.py), one core (the process pins itself to one CPU).
Medians of several repeats.  Slow peers (construct, spacepackets) run on a
subset and are scaled to packets/s; the table says which.
"""
from __future__ import annotations

import argparse
import binascii
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

import cython_ext
from benchmarks import replay as replay_mod
from benchmarks import report
from benchmarks.workload import APID, HOUSEKEEPING, PACKET_LENGTH, packets
from protocols.codec import PacketCodec

TARGETS = {
    "compiled_decode_pps": 10_000_000,
    "compiled_vs_construct": 500,
    "pure_vs_construct": 20,
    "crc_gbps": 2.5,
    "replay_pps": 4_000_000,
}


#: The clock: CPU time of this (single-threaded, pinned) process.  The machine is shared, and
#: wall time would also count the slices other jobs get on our core.
clock = time.process_time


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def _idle_ticks() -> dict[int, int]:
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *values = line.split()
            ticks[int(name[3:])] = int(values[3]) + int(values[4])  # idle + iowait
    return ticks


def pin_one_core() -> str:
    """Run on one CPU: the one that was idlest over the last half second (the machine is shared)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
        try:
            before = _idle_ticks()
            time.sleep(0.5)
            after = _idle_ticks()
            cpu = max(allowed, key=lambda c: after.get(c, 0) - before.get(c, 0))
        except (OSError, ValueError, IndexError):
            cpu = allowed[-1]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("numpy", "construct", "Cython", "spacepackets", "ccsdspy"):
        try:
            from importlib.metadata import version

            versions[name] = version(name if name != "Cython" else "cython")
        except Exception:  # noqa: BLE001 - not installed is reported, not fatal
            versions[name] = "not installed"
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(), **versions}


# --------------------------------------------------------------------------- peers


def bench_construct(data: bytes, subset: int, repeats: int, compiled: bool) -> tuple[float, str]:
    struct = HOUSEKEEPING
    note = ""
    if compiled:
        try:
            struct = HOUSEKEEPING.compile()
        except Exception as exc:  # noqa: BLE001
            return float("nan"), f"compile() failed: {exc}"
    views = [data[i * PACKET_LENGTH : (i + 1) * PACKET_LENGTH] for i in range(subset)]

    def run() -> None:
        for v in views:
            struct.parse(v)

    seconds = median_time(run, repeats)
    return subset / seconds, note


def bench_spacepackets(data: bytes, subset: int, repeats: int) -> tuple[float, str]:
    try:
        from spacepackets.ecss import PusTm
    except ImportError:
        return float("nan"), "not installed"
    views = [data[i * PACKET_LENGTH : (i + 1) * PACKET_LENGTH] for i in range(subset)]

    def run() -> None:
        for v in views:
            PusTm.unpack(v, timestamp_len=6)

    return subset / median_time(run, repeats), "headers + CRC only; the 8 housekeeping fields stay bytes"


def bench_ccsdspy(data: bytes, count: int, repeats: int) -> tuple[float, str]:
    try:
        import logging

        import ccsdspy
        from ccsdspy import PacketArray, PacketField

        logging.getLogger("ccsdspy").setLevel(logging.ERROR)  # it warns about wrapped sequence counts
    except ImportError:
        return float("nan"), "not installed"
    fields = [
        PacketField("pus_version", "uint", 4), PacketField("time_reference_status", "uint", 4),
        PacketField("service", "uint", 8), PacketField("subtype", "uint", 8),
        PacketField("message_counter", "uint", 16), PacketField("destination_id", "uint", 16),
        PacketField("coarse", "uint", 32), PacketField("fine", "uint", 16),
        PacketField("sid", "uint", 16), PacketField("battery_voltage", "uint", 16),
        PacketField("battery_current", "int", 16), PacketField("panel_temperature", "float", 32),
        PacketField("wheel_speed", "float", 64), PacketField("mode", "uint", 8), PacketField("uptime", "uint", 32),
        PacketArray("payload_status", "uint", 8, array_shape=29), PacketField("pec", "uint", 16),
    ]
    definition = ccsdspy.FixedLength(fields)
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as handle:
        handle.write(data[: count * PACKET_LENGTH])
        path = handle.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = definition.load(path, include_primary_header=True)
            assert int(result["uptime"][5]) == 5
            seconds = median_time(lambda: definition.load(path, include_primary_header=True), repeats)
    finally:
        os.unlink(path)
    return count / seconds, "vectorised, from a file; raw values, no calibration, no CRC check"


# --------------------------------------------------------------------------- ours


def bench_codec(data: bytes, count: int, repeats: int, backend: str, raw: bool = False) -> float:
    codec = PacketCodec(HOUSEKEEPING, backend=backend)
    columns = codec.decode_many(data, raw=raw)
    assert columns["crc_ok"].all() and columns["hk.uptime"][-1] == count - 1
    return count / median_time(lambda: codec.decode_many(data, raw=raw), repeats)


def bench_encode(data: bytes, count: int, repeats: int, backend: str) -> float:
    codec = PacketCodec(HOUSEKEEPING, backend=backend)
    raw = codec.raw_many(data)
    del raw["crc_ok"]
    assert codec.encode_many(raw, raw=True) == data
    return count / median_time(lambda: codec.encode_many(raw, raw=True), repeats)


def bench_crc(repeats: int) -> dict[str, float]:
    data = np.random.default_rng(3).integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
    size = len(data)
    out = {"binascii.crc_hqx": size / median_time(lambda: binascii.crc_hqx(data, 0xFFFF), repeats) / 1e9}
    built = cython_ext.compiled("crc")
    if built is not None:
        assert built.crc16(data) == binascii.crc_hqx(data, 0xFFFF)
        out["compiled crc16"] = size / median_time(lambda: built.crc16(data), repeats) / 1e9
    out["pure twin crc16"] = size / median_time(lambda: cython_ext.twin("crc").crc16(data), repeats) / 1e9
    return out


def bench_crc_strided(data: bytes, repeats: int, backend: str) -> float:
    module = cython_ext.compiled("crc") if backend == "compiled" else cython_ext.twin("crc")
    seconds = median_time(lambda: module.crc16_strided(data, PACKET_LENGTH, PACKET_LENGTH - 2), repeats)
    return len(data) / seconds / 1e9


def build_cadu_stream(data: bytes, frame_length: int, vcid: int) -> tuple[bytes, str]:
    """CADUs carrying the packets on one VC, built by the project's own mux (protocols.ccsds.vcmux)."""
    from protocols.ccsds.sync import build_cadus
    from protocols.ccsds.tmframe import FrameProfile
    from protocols.ccsds.vcmux import mux_packets

    profile = FrameProfile(frame_length=frame_length, has_fecf=True, randomized=True)
    pkts = [data[i : i + PACKET_LENGTH] for i in range(0, len(data), PACKET_LENGTH)]
    frames = mux_packets(pkts, profile, 245, vcid)
    return build_cadus(frames, randomize=True), "protocols.ccsds.vcmux.mux_packets + protocols.ccsds.sync.build_cadus"


def bench_replay(stream: bytes, count: int, frame_length: int, vcid: int, repeats: int, backend: str
                 ) -> tuple[float, dict[str, float], int]:
    codec = PacketCodec(HOUSEKEEPING, backend=backend)
    k = replay_mod.kernels(backend)
    first = replay_mod.replay(stream, frame_length, vcid, codec, APID, k)
    decoded = first.columns["hk.uptime"].size
    assert decoded == count and first.columns["crc_ok"].all() and first.lost == 0 and first.bad_fecf == 0
    frames = first.frames
    del first
    runs = []
    for _ in range(repeats):
        # Keep the stage times only: holding every run's columns would make each run allocate fresh memory.
        runs.append(replay_mod.replay(stream, frame_length, vcid, codec, APID, k).stages)
    total = statistics.median(sum(r.values()) for r in runs)
    stages = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
    return decoded / total, stages, frames


# --------------------------------------------------------------------------- report


def fmt_rate(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.0f}"


def profile_decode(data: bytes) -> list[tuple[str, float]]:
    """Where the compiled decode's time goes (ms per 200k-packet call, medians)."""
    codec = PacketCodec(HOUSEKEEPING, backend="compiled")
    count = len(data) // PACKET_LENGTH
    fields = cython_ext.compiled("fields")
    crc = cython_ext.compiled("crc")
    outputs = [np.empty((count,) + leaf.shape, leaf.dtype) for leaf in codec._layout.leaves]  # noqa: SLF001
    raw = codec.raw_many(data)
    calibrated = [(leaf.path, leaf) for leaf in codec._layout.leaves if leaf.parameter]  # noqa: SLF001
    return [
        ("field-table kernel (24 fields, outputs reused)", median_time(
            lambda: fields.decode(data, PACKET_LENGTH, count, None, codec.table, outputs), 7) * 1e3),
        ("PEC: CRC-16 of 71 bytes per packet", median_time(
            lambda: crc.crc16_strided(data, PACKET_LENGTH, PACKET_LENGTH - 2), 7) * 1e3),
        ("calibrations (numpy, parameters.py)", median_time(
            lambda: [leaf.parameter.calibration.to_eng_array(raw[p]) for p, leaf in calibrated], 7) * 1e3),
        ("whole decode_many (fresh output arrays each call)", median_time(lambda: codec.decode_many(data), 7) * 1e3),
    ]


def write_report(path: Path, info: dict[str, str], rows: list[tuple[str, float, str]], construct_pps: float,
                 crc: dict[str, float], strided: dict[str, float], replay_rows: list[tuple[str, float]],
                 stages: dict[str, float], frames: int, profile: list[tuple[str, float]], command: str,
                 count: int, subset: int, pin: str, cadu_note: str, checks: list[tuple[str, str, str, bool]]) -> None:
    lines = [
        "# Performance of the fast path",
        "",
        "Generated by `make bench` (`python -m benchmarks --write docs/PERFORMANCE.md`); edit the generator,",
        "not this file. Every number is the median of several repeats on one core, timed as the process's CPU",
        "time (`time.process_time`): the machine is shared, and wall time would also count the time slices",
        "other jobs take on our core (page faults and cache misses are still counted).",
        "",
        "## Machine and software",
        "",
        f"- CPU: {info['cpu']} (nproc {info['nproc']}; benchmark {pin}); {info['platform']}",
        f"- Python {info['python']}, numpy {info['numpy']}, Cython {info['Cython']}, construct {info['construct']},"
        f" spacepackets {info['spacepackets']}, ccsdspy {info['ccsdspy']}",
        f"- kernels: {cython_ext.BACKEND} by default in this process",
        f"- command: `{command}`",
        "",
        "The machine is shared (2 cores, other jobs running): expect some noise between runs.",
        "",
        "## Decode: 200,000 housekeeping packets",
        "",
        f"Workload: {count:,} PUS-C housekeeping packets of {PACKET_LENGTH} bytes (`benchmarks/workload.py`:",
        "primary header, PUS-C secondary header with CUC 4+2 time, 8 housekeeping parameters with linear and",
        "state calibrations, packet error control; 24 fields). \"Engineering\" includes the calibrations and the",
        "PEC check (`crc_ok` column), as construct's parse does.",
        "",
        "| decoder | packets/s | vs construct interpreted | notes |",
        "|---|---:|---:|---|",
    ]
    for name, pps, note in rows:
        ratio = pps / construct_pps if construct_pps == construct_pps and pps == pps else float("nan")
        lines.append(f"| {name} | {fmt_rate(pps)} | {'n/a' if ratio != ratio else f'{ratio:,.1f}x'} | {note} |")
    lines += [
        "",
        f"Subset runs: construct and spacepackets parse {subset:,} of the packets, one Python call per packet,",
        "and the rate is scaled (per-packet cost does not depend on the count).",
        "",
        "## CRC-16/CCITT-FALSE",
        "",
        "| implementation | GB/s |",
        "|---|---:|",
    ]
    for name, gbps in crc.items():
        lines.append(f"| {name} (one 64 MiB buffer) | {gbps:.2f} |")
    for name, gbps in strided.items():
        lines.append(f"| {name} crc16_strided (71 of every 73 bytes, 200k packets) | {gbps:.2f} |")
    lines += [
        "",
        "## Replay chain: CADU stream to decoded columns",
        "",
        f"{count:,} packets muxed into {frames:,} TM frames of 1115 bytes (FECF, randomized, ASM) on one VC by",
        f"{cadu_note}; the timed chain is `benchmarks/replay.py`: ASM lock (2 bit errors tolerated), gather +",
        "derandomize + FECF check (one pass), frame header columns and VC continuity, packet extraction with first header",
        "pointers (packets span frames), group by APID, decode_many (engineering, PEC checked).",
        "",
        "| kernels | packets/s |",
        "|---|---:|",
    ]
    for name, pps in replay_rows:
        lines.append(f"| {name} | {fmt_rate(pps)} |")
    lines += ["", "Where the compiled chain's time goes (ms per run):", "", "| stage | ms |", "|---|---:|"]
    for name, seconds in stages.items():
        lines.append(f"| {name} | {seconds * 1e3:.2f} |")
    lines += ["", "## Profile of the compiled decode (ms per 200k-packet call)", "", "| part | ms |", "|---|---:|"]
    for name, ms in profile:
        lines.append(f"| {name} | {ms:.2f} |")
    lines += ["", "## Targets", "", "| target | wanted | measured | met |", "|---|---:|---:|---|"]
    for name, wanted, measured, ok in checks:
        lines.append(f"| {name} | {wanted} | {measured} | {'yes' if ok else '**no**'} |")
    missed = [c for c in checks if not c[3]]
    lines += ["", "## Notes", ""]
    if missed:
        lines.append("Missed targets in this run: " + ", ".join(c[0] for c in missed) + ". The profile above "
                     "shows where the time goes; the notes below say what would close the gap.")
    else:
        lines.append("All targets met in this run.")
    lines += [
        "",
        "- The compiled decode is bounded by three things of similar size (see the profile): the field-table",
        "  kernel (one specialised loop per field over blocks of 256 packets), the PEC CRC (slice-by-16, four",
        "  packets interleaved, computed in the same pass while each block is in cache; a 71-byte CRC is a",
        "  dependency chain of ~5 table rounds) and the numpy calibrations (the state calibration materialises",
        "  a fixed-width unicode array). The columns of one call are carved from one block, so numpy can back",
        "  it with huge pages: filling fresh memory would otherwise cost thousands of page faults per call.",
        "- The profile's parts are measured one by one (outputs reused); the whole call also pays for fresh",
        "  output memory, and its time varies with what else the shared machine is doing.",
        "- Replay chain: measured first in the run, and each run's columns are dropped before the next, as",
        "  a daemon decoding batch after batch would; the derandomize kernel checks the FECF in the same",
        "  pass. Frames are built by the project's multiplexer (`protocols.ccsds.vcmux`), not timed.",
        "- ccsdspy reads raw values only (no calibration, no CRC check); spacepackets' `PusTm.unpack` checks",
        "  the CRC and decodes the headers but leaves the housekeeping fields as bytes.",
        "- construct compiled (`Struct.compile()`) still calls the Parameter adapters and the PEC construct",
        "  in Python per packet.",
        "",
    ]
    report.write_report(path, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--subset", type=int, default=3_000, help="packets for the slow per-packet peers")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, help="write the Markdown report here")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    pin = pin_one_core()
    info = machine()
    count = args.packets
    data = packets(count)
    log = sys.stderr

    def say(text: str) -> None:
        print(text, file=log, flush=True)

    say(f"workload: {count} packets of {PACKET_LENGTH} bytes; {pin}")
    # The replay chain first, while the process's memory is fresh (it allocates the most).
    have_compiled = cython_ext.compiled("fields") is not None
    stream, cadu_note = build_cadu_stream(data, 1115, 1)
    replay_rows = []
    stages: dict[str, float] = {}
    frames = 0
    if have_compiled:
        rpps, stages, frames = bench_replay(stream, count, 1115, 1, args.repeats, "compiled")
        replay_rows.append(("compiled", rpps))
    ppps, pstages, frames = bench_replay(stream, count, 1115, 1, 3, "pure")
    replay_rows.append(("pure-Python twins", ppps))
    if not stages:
        stages = pstages
    say("replay: " + ", ".join(f"{k} {v:,.0f} packets/s" for k, v in replay_rows))
    construct_pps, _ = bench_construct(data, args.subset, 3, compiled=False)
    say(f"construct interpreted: {construct_pps:,.0f} packets/s")
    construct_c, cnote = bench_construct(data, args.subset, 3, compiled=True)
    say(f"construct compiled: {construct_c:,.0f} packets/s {cnote}")
    sp_pps, sp_note = bench_spacepackets(data, args.subset, 3)
    say(f"spacepackets: {sp_pps:,.0f} packets/s")
    cc_pps, cc_note = bench_ccsdspy(data, count, 3)
    say(f"ccsdspy: {cc_pps:,.0f} packets/s")
    pure_pps = bench_codec(data, count, 3, "pure")
    pure_raw = bench_codec(data, count, 3, "pure", raw=True)
    say(f"pure twin: {pure_pps:,.0f} packets/s (raw {pure_raw:,.0f})")
    comp_pps = bench_codec(data, count, args.repeats + 2, "compiled") if have_compiled else float("nan")
    comp_raw = bench_codec(data, count, args.repeats + 2, "compiled", raw=True) if have_compiled else float("nan")
    comp_enc = bench_encode(data, count, args.repeats, "compiled") if have_compiled else float("nan")
    pure_enc = bench_encode(data, count, 3, "pure")
    say(f"compiled: {comp_pps:,.0f} packets/s (raw {comp_raw:,.0f}; encode {comp_enc:,.0f})")
    rows = [
        ("construct, interpreted (`parse` per packet)", construct_pps, f"subset of {args.subset:,}, scaled"),
        ("construct, compiled (`Struct.compile()`)", construct_c, f"subset of {args.subset:,}, scaled {cnote}".strip()),
        ("spacepackets `PusTm.unpack`", sp_pps, f"subset of {args.subset:,}, scaled; {sp_note}"),
        ("ccsdspy `FixedLength.load`", cc_pps, cc_note),
        ("Queqiao pure-Python twin, engineering", pure_pps, "numpy, `QUEQIAO_PURE_PYTHON=1` path"),
        ("Queqiao pure-Python twin, raw", pure_raw, "`raw_many`"),
        ("Queqiao compiled, engineering", comp_pps, "`decode_many`"),
        ("Queqiao compiled, raw", comp_raw, "`raw_many`"),
        ("Queqiao compiled, encode", comp_enc, "`encode_many` (raw columns, PEC computed)"),
        ("Queqiao pure-Python twin, encode", pure_enc, "`encode_many` (raw columns, PEC computed)"),
    ]
    crc = bench_crc(args.repeats)
    strided = {"compiled": bench_crc_strided(data, args.repeats, "compiled")} if have_compiled else {}
    strided["pure twin"] = bench_crc_strided(data, 3, "pure")
    say("crc: " + ", ".join(f"{k} {v:.2f} GB/s" for k, v in crc.items()))

    profile = profile_decode(data) if have_compiled else []
    crc_compiled = crc.get("compiled crc16", float("nan"))
    replay_compiled = replay_rows[0][1] if have_compiled else float("nan")
    checks = [
        ("compiled decode packets/s", f"{TARGETS['compiled_decode_pps']:,}", fmt_rate(comp_pps),
         comp_pps >= TARGETS["compiled_decode_pps"]),
        ("compiled decode vs construct interpreted", f"{TARGETS['compiled_vs_construct']}x",
         f"{comp_pps / construct_pps:,.0f}x", comp_pps / construct_pps >= TARGETS["compiled_vs_construct"]),
        ("compiled decode vs ccsdspy", "faster", f"{comp_pps / cc_pps:.1f}x" if cc_pps == cc_pps else "n/a",
         cc_pps != cc_pps or comp_pps > cc_pps),
        ("pure twin vs construct interpreted", f"{TARGETS['pure_vs_construct']}x", f"{pure_pps / construct_pps:,.0f}x",
         pure_pps / construct_pps >= TARGETS["pure_vs_construct"]),
        ("CRC compiled GB/s", f"{TARGETS['crc_gbps']}", f"{crc_compiled:.2f}", crc_compiled >= TARGETS["crc_gbps"]),
        ("replay chain packets/s", f"{TARGETS['replay_pps']:,}", fmt_rate(replay_compiled),
         replay_compiled >= TARGETS["replay_pps"]),
    ]
    for name, wanted, measured, ok in checks:
        say(f"target {name}: wanted {wanted}, measured {measured}: {'met' if ok else 'MISSED'}")
    if args.write:
        command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
        write_report(args.write, info, rows, construct_pps, crc, strided, replay_rows, stages, frames, profile,
                     command.strip(), count, args.subset, pin, cadu_note, checks)
        say(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
