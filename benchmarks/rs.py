"""Reed-Solomon benchmark: ``python -m benchmarks.rs [--codewords N] [--repeats R] [--write docs/PERFORMANCE.md]``.

RS(255,223), E = 16, I = 1, dual basis (the CCSDS standard), one core, CPU time, medians of
the repeats.  Every implementation gets the same codewords: N random frames encoded once
(reedsolo, which has no dual basis, gets the conventional-basis codewords of the same
frames), and for correction the same 16 symbol errors in every codeword.  Our kernels run
over the whole batch in one call; libfec (ctypes) and reedsolo are called once per codeword,
as their APIs are, on a subset, and their rates are per codeword all the same.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

import cython_ext
from benchmarks import report
from benchmarks.__main__ import machine, median_time, pin_one_core
from benchmarks.rs_peers import LibFec, reedsolo_codec
from protocols.ccsds.rs import RsCode, RsStatus

TARGETS = {"check_cps": 1_000_000, "encode_cps": 1_000_000}
#: Tianwen-1's downlink: 16,384 symbols/s of 256-octet CADUs (0.25 s each).
TIANWEN1_CADUS_PER_SECOND = 4
ERRORS = 16


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def _workload(count: int, seed: int = 255) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (count, 223), dtype=np.uint8)
    dual = RsCode(16, 1, "dual").encode_many(frames)
    conventional = RsCode(16, 1, "conventional").encode_many(frames)
    where = np.argsort(rng.random((count, 255)), axis=1)[:, :ERRORS]   # 16 distinct symbols per word
    flips = rng.integers(1, 256, (count, ERRORS), dtype=np.uint8)
    bad_dual, bad_conventional = dual.copy(), conventional.copy()
    rows = np.arange(count)[:, None]
    bad_dual[rows, where] ^= flips
    bad_conventional[rows, where] ^= flips
    return {"frames": frames, "dual": dual, "conventional": conventional, "bad_dual": bad_dual,
            "bad_conventional": bad_conventional}


def _ours(kernel, work: dict[str, np.ndarray], repeats: int, correction_subset: int) -> dict[str, float]:
    frames, blocks, bad = work["frames"], work["dual"], work["bad_dual"][:correction_subset]
    assert np.array_equal(kernel.rs_encode_many(frames, 16, 1, True), blocks)
    out, status, symbols = kernel.rs_decode_many(bad, 16, 1, True)
    assert (status == RsStatus.CORRECTED).all() and (symbols == ERRORS).all()
    assert np.array_equal(out, blocks[:correction_subset])
    assert (kernel.rs_decode_many(blocks, 16, 1, True)[1] == RsStatus.CLEAN).all()
    return {
        "encode": _rate(len(frames), median_time(lambda: kernel.rs_encode_many(frames, 16, 1, True), repeats)),
        "check": _rate(len(blocks), median_time(lambda: kernel.rs_decode_many(blocks, 16, 1, True), repeats)),
        "correct": _rate(len(bad), median_time(lambda: kernel.rs_decode_many(bad, 16, 1, True), repeats)),
    }


def _per_call(fn: Callable[[int], object], count: int, repeats: int) -> float:
    def run() -> None:
        for i in range(count):
            fn(i)

    return _rate(count, median_time(run, repeats))


def _libfec(work: dict[str, np.ndarray], subset: int, repeats: int) -> dict[str, float]:
    fec = LibFec()
    lib = fec.lib
    frames = [bytes(f) for f in work["frames"][:subset]]
    parity = ctypes.create_string_buffer(32)
    clean = [ctypes.create_string_buffer(bytes(b), 255) for b in work["dual"][:subset]]
    assert all(lib.decode_rs_ccsds(b, None, 0, 0) == 0 for b in clean)
    bad_rows = [bytes(b) for b in work["bad_dual"][:subset]]
    sample = ctypes.create_string_buffer(bad_rows[0], 255)
    assert lib.decode_rs_ccsds(sample, None, 0, 0) == ERRORS and sample.raw == bytes(work["dual"][0])
    results = {
        "encode": _per_call(lambda i: lib.encode_rs_ccsds(frames[i], parity, 0), subset, repeats),
        "check": _per_call(lambda i: lib.decode_rs_ccsds(clean[i], None, 0, 0), subset, repeats),
    }
    # Correction changes the buffer: a fresh copy per call, made outside the timed loop.
    times = []
    for _ in range(repeats):
        buffers = [ctypes.create_string_buffer(b, 255) for b in bad_rows]

        def correct_all(buffers: list = buffers) -> None:
            for buffer in buffers:
                lib.decode_rs_ccsds(buffer, None, 0, 0)

        times.append(median_time(correct_all, 1))
    results["correct"] = _rate(subset, sorted(times)[len(times) // 2])
    # What one ctypes call costs by itself (included in the figures above).
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.abs.argtypes, libc.abs.restype = [ctypes.c_int], ctypes.c_int
    results["ctypes_us"] = 1e6 / _per_call(lambda i: libc.abs(i), subset, repeats)
    return results


def _reedsolo(work: dict[str, np.ndarray], subset: int, repeats: int) -> dict[str, float]:
    codec = reedsolo_codec(16)
    frames = [bytes(f) for f in work["frames"][:subset]]
    clean = [bytes(b) for b in work["conventional"][:subset]]
    bad = [bytes(b) for b in work["bad_conventional"][:subset]]
    assert bytes(codec.encode(frames[0])) == clean[0] and bytes(codec.decode(bad[0])[1]) == clean[0]
    return {
        "encode": _per_call(lambda i: codec.encode(frames[i]), subset, repeats),
        "check": _per_call(lambda i: codec.check(clean[i]), subset, repeats),
        "correct": _per_call(lambda i: codec.decode(bad[i]), subset, repeats),
    }


def _cell(rate: float) -> str:
    return "n/a" if rate != rate else f"{rate:,.0f}"


def _micro(rate: float) -> str:
    return "n/a" if rate != rate else f"{1e6 / rate:.2f}"


def build_section(count: int, repeats: int, command: str) -> tuple[str, list[tuple[str, str, str, bool]]]:
    pinned = pin_one_core()
    work = _workload(count)
    compiled = cython_ext.compiled("rs")
    ours = _ours(compiled, work, repeats, count) if compiled else None
    pure = _ours(cython_ext.twin("rs"), work, repeats, min(count, 400))
    fec = _libfec(work, min(count, 5000), repeats)
    solo = _reedsolo(work, min(count, 150), max(1, repeats // 2))
    info = machine()

    def ratio(rate: float, peer: float) -> str:
        if rate != rate or peer != peer:
            return "n/a"
        value = rate / peer
        return f"{value:,.0f}x" if value >= 100 else f"{value:.1f}x" if value >= 1 else f"{value:.3f}x"

    rows = []
    labels = {"check": "check of clean codewords", "encode": "encode",
              "correct": f"correct {ERRORS} symbol errors per codeword"}
    for op in ("check", "encode", "correct"):
        for name, result, note in (
            ("Queqiao compiled (`cython_ext/_rs.pyx`)", ours, f"{count:,} codewords per call"),
            ("Queqiao pure-Python twin (numpy)", pure,
             f"{count:,} codewords per call" if op != "correct" else "400 codewords per call"),
            ("libfec `{}` (ctypes)".format({"check": "decode_rs_ccsds", "encode": "encode_rs_ccsds",
                                           "correct": "decode_rs_ccsds"}[op]), fec, "one call per codeword"),
            ("reedsolo 1.7 (conventional basis)", solo, "one call per codeword, 150 codewords"),
        ):
            rate = result[op] if result else float("nan")
            rows.append(f"| {labels[op]} | {name} | {_cell(rate)} | {_micro(rate)} | {ratio(rate, fec[op])} | "
                        f"{ratio(rate, solo[op])} | {note} |")
    compiled_rates = ours or {"check": float("nan"), "encode": float("nan"), "correct": float("nan")}
    checks = [
        ("check of clean codewords, compiled", f">= {TARGETS['check_cps']:,}/s", _cell(compiled_rates["check"]),
         compiled_rates["check"] >= TARGETS["check_cps"]),
        ("encode, compiled", f">= {TARGETS['encode_cps']:,}/s", _cell(compiled_rates["encode"]),
         compiled_rates["encode"] >= TARGETS["encode_cps"]),
        (f"correction ({ERRORS} errors), compiled", f">= libfec ({_cell(fec['correct'])}/s)",
         _cell(compiled_rates["correct"]), compiled_rates["correct"] >= fec["correct"]),
        ("pure twin, correction vs Tianwen-1's 4 CADUs/s", "many times over",
         f"{pure['correct'] / TIANWEN1_CADUS_PER_SECOND:,.0f}x", pure["correct"] >= 10 * TIANWEN1_CADUS_PER_SECOND),
    ]
    lines = [
        f"<!-- rs:begin ({command}) -->",
        "## Reed-Solomon: RS(255,223), E = 16, dual basis",
        "",
        f"Generated by `{command}` ({pinned}; CPU time, median of {repeats}; {info['cpu']}, Python "
        f"{info['python']}, numpy {info['numpy']}).  The same {count:,} random frames for every implementation "
        f"(`benchmarks/rs.py`); correction: the same {ERRORS} random symbol errors in every codeword.  "
        "libfec's figures include one ctypes call per codeword, about "
        f"{fec['ctypes_us']:.2f} us by itself (a `libc.abs` call through ctypes, measured in the same run).",
        "",
        "| operation | implementation | codewords/s | us/codeword | vs libfec | vs reedsolo | notes |",
        "|---|---|---:|---:|---:|---:|---|",
        *rows,
        "",
        "| target | wanted | measured | |",
        "|---|---|---|---|",
        *[f"| {name} | {wanted} | {measured} | {'met' if ok else 'MISSED'} |" for name, wanted, measured, ok in checks],
        "",
        "The compiled check and encode are the remainder of the division by g(x), eight symbols per step "
        "through 256-entry tables (the dual basis folded into the tables); only words whose remainder is "
        "not zero go on to Berlekamp-Massey, Chien and Forney (docs/RS.md).",
        "<!-- rs:end -->",
    ]
    return "\n".join(lines), checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rs", description=__doc__.splitlines()[0])
    parser.add_argument("--codewords", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, help="replace the 'rs' section of this Markdown file")
    args = parser.parse_args(argv)
    if args.codewords <= 0 or args.repeats <= 0:
        parser.error("--codewords and --repeats must be positive")
    command = "python -m benchmarks.rs" + (f" --write {args.write}" if args.write else "")
    section, checks = build_section(args.codewords, args.repeats, command)
    print(section)
    if args.write:
        report.write_section(args.write, "rs", section)
        print(f"wrote the rs section of {args.write}", file=sys.stderr)
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
