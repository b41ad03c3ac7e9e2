"""Soak benchmark: ``python -m benchmarks.soak [--duration S] [--write docs/PERFORMANCE.md]`` (`make soak`).

A real daemon (``groundstation run``, pinned to one core) gets mixed good and
bad input for ``--duration`` seconds (default 30 minutes) on every kind of
input it has:

- a UDP frames link: haiyang2d TM frames from the emulator's flood mode, one in
  ten with flipped bits, truncated, or replaced by random junk;
- a TCP CADU stream link (zhurong): CADUs with blocks of random noise between
  them (counted in ``queqiao_link_skipped_octets_total``);
- the HTTP API: malformed requests of every kind tests/groundstation/test_http_hardening.py
  knows (non-UTF-8 headers, nested JSON, huge numbers, bad ids) and a good PING now and then.

The daemon's resident memory (VmRSS) is sampled every ``--sample`` seconds.
The verdict compares the second half of the run with the first: memory that
keeps growing while the input does not is a leak.  Not part of CI: it takes
half an hour.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks import report
from benchmarks.flood import runtime
from benchmarks.ingest import free_port, scrape, total

BEGIN = "<!-- soak:begin (python -m benchmarks.soak --write docs/PERFORMANCE.md) -->"
END = "<!-- soak:end -->"
TOKEN = "soak-operator-token-0123456789"
#: Growth of VmRSS from the first to the second half of the run that still counts as bounded.
BOUNDED_MB = 5.0


def good_frames(mission: str, count: int, frame_length: int) -> np.ndarray:
    data = b"".join(runtime(mission).flood(count * 4, batch=4096, cadus=False))
    frames = np.frombuffer(data, dtype=np.uint8)
    return frames[: frames.size // frame_length * frame_length].reshape(-1, frame_length)


def bad_requests(rnd: random.Random) -> list[bytes]:
    auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    head = b" HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n"

    def post(body: bytes, extra: bytes = auth) -> bytes:
        return (b"POST /api/v1/commands" + head + extra + b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)

    return [
        b"GET /api/v1/spacecraft" + head + b"Authorization: Bearer \xff\xfe" + rnd.randbytes(8) + b"\r\n\r\n",
        post(b'{"spacecraft": "zhurong", "command": "PING", "arguments": ' + b'{"a": ' * 3000 + b"1"
             + b"}" * 3001),
        post(b'{"spacecraft": "zhurong", "command": "DRIVE", "arguments": {"distance": ' + b"9" * 5000 + b"}}"),
        b"GET /api/v1/commands/" + b"9" * 31 + head + auth + b"\r\n",
        b"GET /api/v1/commands/1%0Aforged" + head + auth + b"\r\n",
        b"GET /api/v1/spacecraft" + head + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n",
        post(rnd.randbytes(200)),
    ]


def send_http(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]) if answer else 0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(duration: float, sample: float, fps: float, seed: int) -> dict:
    from protocols.ccsds.sync import build_cadus

    rnd = random.Random(seed)
    hy = good_frames("haiyang2d", 20_000, 1115)
    zr = good_frames("zhurong", 20_000, 220)
    workdir = Path(tempfile.mkdtemp(prefix="queqiao-soak-"))
    udp, tcp, http, uplink = (free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM),
                              free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM))
    config = workdir / "soak.toml"
    config.write_text(f"""
[station]
name = "soak"
log_level = "INFO"
http_listen = "127.0.0.1:{http}"
[[spacecraft]]
name = "haiyang2d"
[[spacecraft]]
name = "zhurong"
uplink = "udp://127.0.0.1:{uplink}"
[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{udp}"
[[links]]
name = "tcp-cadu"
url = "tcp-listen://127.0.0.1:{tcp}"
spacecraft = "zhurong"
[archive]
dir = "{workdir / 'archive'}"
segment_max_bytes = "16MiB"
retention_max_bytes = "200MiB"
[commanding]
enabled = true
api_token_env = "QUEQIAO_SOAK_TOKEN"
""")
    log_path = workdir / "daemon.log"
    env = {**os.environ, "QUEQIAO_SOAK_TOKEN": TOKEN}
    cpus = sorted(os.sched_getaffinity(0))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "groundstation.cli", "run", "--config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(proc.pid, {cpus[-1]})
        os.sched_setaffinity(0, {cpus[0]})
    url = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                scrape(url)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daemon did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stream = socket.create_connection(("127.0.0.1", tcp))
        requests = bad_requests(rnd)
        samples: list[tuple[float, int]] = []
        sent = {"frames": 0, "bad_frames": 0, "cadus": 0, "noise_octets": 0, "http_bad": 0, "http_good": 0,
                "http_5xx": 0}
        start = time.monotonic()
        next_sample = start
        tick = 0
        hi = zi = 0
        while (now := time.monotonic()) - start < duration:
            if now >= next_sample:
                samples.append((now - start, rss_kb(proc.pid)))
                next_sample += sample
            # One tick = 10 ms of input: fps/100 datagrams, a few CADUs with noise, an HTTP request every 50 ms.
            for _ in range(max(1, int(fps / 100))):
                frame = hy[hi % len(hy)].tobytes()
                hi += 1
                kind = rnd.random()
                if kind < 0.04:
                    pos = rnd.randrange(len(frame))
                    frame = frame[:pos] + bytes([frame[pos] ^ (1 << rnd.randrange(8))]) + frame[pos + 1:]
                elif kind < 0.07:
                    frame = frame[: rnd.randrange(len(frame))]
                elif kind < 0.10:
                    frame = rnd.randbytes(rnd.randrange(1, 1500))
                sent["bad_frames" if kind < 0.10 else "frames"] += 1
                sender.sendto(frame, ("127.0.0.1", udp))
            batch = [zr[(zi + k) % len(zr)].tobytes() for k in range(4)]
            zi += 4
            noise = rnd.randbytes(rnd.randrange(0, 300))
            stream.sendall(noise + build_cadus(batch, randomize=True))
            sent["cadus"] += 4
            sent["noise_octets"] += len(noise)
            if tick % 5 == 0:
                if tick % 500 == 0:
                    body = b'{"spacecraft": "zhurong", "command": "PING"}'
                    status = send_http(http, b"POST /api/v1/commands HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n"
                                       b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Type: "
                                       b"application/json\r\nContent-Length: " + str(len(body)).encode()
                                       + b"\r\n\r\n" + body)
                    sent["http_good"] += status == 202
                else:
                    status = send_http(http, rnd.choice(requests))
                    sent["http_bad"] += 1
                sent["http_5xx"] += status >= 500
            tick += 1
            time.sleep(max(0.0, start + tick * 0.01 - time.monotonic()))
        samples.append((time.monotonic() - start, rss_kb(proc.pid)))
        time.sleep(1.0)
        metrics = scrape(url)
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    log_text = log_path.read_text(errors="replace")
    return {
        "duration_s": duration, "samples": samples, "sent": sent, "alive": alive,
        "received": total(metrics, "queqiao_frames_received_total"),
        "rejected": total(metrics, "queqiao_frames_rejected_total"),
        "internal_errors": sum(v for k, v in metrics.items()
                               if k.startswith("queqiao_frames_rejected_total") and "internal_error" in k),
        "skipped_octets": total(metrics, "queqiao_link_skipped_octets_total"),
        "archived": total(metrics, "queqiao_archive_records_total"),
        "log_lines": log_text.count("\n"), "log_bytes": len(log_text.encode()),
        "tracebacks": log_text.count("Traceback"),
    }


def verdict(samples: list[tuple[float, int]]) -> tuple[float, float, float, bool]:
    """(median MB of the first half, of the second half, max MB, bounded?)"""
    half = samples[-1][0] / 2
    first = [kb for t, kb in samples if t <= half] or [samples[0][1]]
    second = [kb for t, kb in samples if t > half] or [samples[-1][1]]
    a, b = statistics.median(first) / 1024, statistics.median(second) / 1024
    return a, b, max(kb for _, kb in samples) / 1024, b - a <= BOUNDED_MB


def render(result: dict, fps: float) -> str:
    samples = result["samples"]
    a, b, peak, bounded = verdict(samples)
    s = result["sent"]
    minutes = result["duration_s"] / 60
    lines = [BEGIN, "## Soak: mixed good and bad input", "",
             f"`python -m benchmarks.soak --duration {result['duration_s']:.0f}` "
             f"({datetime.now(UTC):%Y-%m-%d}): a real `groundstation run` pinned to one core, "
             f"{minutes:.0f} minutes of input on a shared 2-core machine (other jobs were running).", "",
             f"Input: {s['frames'] + s['bad_frames']:,} UDP datagrams at ~{fps:.0f}/s ({s['bad_frames']:,} bad: "
             f"flipped bits, truncated, random junk), {s['cadus']:,} zhurong CADUs over TCP with "
             f"{s['noise_octets']:,} octets of noise between them, {s['http_bad']:,} malformed HTTP requests and "
             f"{s['http_good']:,} good commands.", "",
             "| measured | value |", "|---|---|",
             f"| daemon alive at the end | {'yes' if result['alive'] else 'NO'} |",
             f"| frames received / archived | {result['received']:,.0f} / {result['archived']:,.0f} |",
             f"| frames rejected (with a reason) | {result['rejected']:,.0f} (internal errors: "
             f"{result['internal_errors']:.0f}) |",
             f"| queqiao_link_skipped_octets_total | {result['skipped_octets']:,.0f} "
             f"(noise sent: {s['noise_octets']:,}) |",
             f"| HTTP 5xx answers | {s['http_5xx']} |",
             f"| log | {result['log_lines']:,} lines, {result['log_bytes'] / 1024:.0f} KiB, "
             f"{result['tracebacks']} tracebacks |",
             f"| VmRSS median, first half -> second half | {a:.1f} MB -> {b:.1f} MB (max {peak:.1f} MB) |",
             f"| verdict | {'bounded' if bounded else 'GROWING'} (growth <= {BOUNDED_MB:g} MB counts as bounded) |",
             "", "VmRSS over time:", "", "| minute | MB |", "|---|---|"]
    step = max(1, len(samples) // 12)
    for t, kb in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        lines.append(f"| {t / 60:.1f} | {kb / 1024:.1f} |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds of input (default 1800)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--fps", type=float, default=500.0, help="UDP datagrams per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, help="replace the soak section of this Markdown file")
    parser.add_argument("--json", type=Path, help="also write the raw result here")
    args = parser.parse_args(argv)
    result = run(args.duration, args.sample, args.fps, args.seed)
    text = render(result, args.fps)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.write:
        report.write_section(args.write, "soak", text)
    return 0 if result["alive"] and verdict(result["samples"])[3] else 1


if __name__ == "__main__":
    raise SystemExit(main())
