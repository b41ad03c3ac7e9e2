"""Ground-station ingest benchmark.

    python -m benchmarks.ingest [--seconds S] [--rates R,R,...] [--write docs/PERFORMANCE.md]


A real daemon (``groundstation run``: one UDP link, archive on in a temporary
directory, HTTP on a free loopback port, the whole chain) runs as its own
process pinned to one core; a sender process pinned to the other core sends
haiyang2d TM frames (1115 octets, full of housekeeping packets built with the
mission database's ``encode_many`` and framed by ``FrameMux``, via the
emulator's flood mode) over loopback at a paced rate for a few seconds.

Measured per rate: frames sent, frames the daemon counted
(``queqiao_frames_received_total``) and archived (``queqiao_archive_records_total``)
=> loss; sustained frames/s; the daemon's CPU share; its resident memory
(VmRSS, max over the run).  Then, at 1,000 frames/s, the receipt-to-export
latency from the daemon's ``queqiao_export_latency_seconds`` histogram (datagram
arrival, as the kernel timestamps it, to the metric store update of the batch).
"""
from __future__ import annotations

import argparse
import binascii
import contextlib
import multiprocessing as mp
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks import report

FRAME_LENGTH = 1115
TARGET_FPS = 50_000
TARGET_P99 = 0.005
TARGET_RSS_MB = 150
#: Daemon CPU (share of one core) at ordinary rates (frames/s -> at most).
TARGET_CPU = {100: 0.03, 1000: 0.15}
BEGIN = "<!-- ingest:begin (python -m benchmarks.ingest --write docs/PERFORMANCE.md) -->"
END = "<!-- ingest:end -->"


# --------------------------------------------------------------------------- workload


def build_cycle(mission: str = "haiyang2d") -> np.ndarray:
    """(F, frame length) frames whose per-APID sequence counts wrap exactly, so the cycle repeats seamlessly."""
    from benchmarks.flood import runtime
    from protocols.missions import registry

    hk = [d for d in registry().spacecraft(mission).packets if d.kind == "housekeeping"]
    # Every HK definition gets 16384 packets: each APID's count ends where it started.
    per_batch = len(hk) * 1024
    rt = runtime(mission)
    data = b"".join(rt.flood(len(hk) * 16384, batch=per_batch, cadus=False))
    frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, rt.frame_profile.frame_length)
    return frames


def _crc_delta_table(position: int) -> np.ndarray:
    """FECF change when the octet at ``position`` changes by XOR d (the CRC is affine over GF(2))."""
    zero = bytes(FRAME_LENGTH - 2)
    base = binascii.crc_hqx(zero, 0xFFFF)
    table = np.zeros(256, dtype=np.uint16)
    for d in range(256):
        msg = bytearray(zero)
        msg[position] = d
        table[d] = binascii.crc_hqx(bytes(msg), 0xFFFF) ^ base
    return table


class CycleSource:
    """Repeats the cycle with continuous master/virtual channel frame counts (FECF patched, not recomputed).

    One TM frame (haiyang2d's 1115 octets) per datagram: ``count`` datagrams of ``size`` octets per block."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames
        self.count = frames.shape[0]
        self.size = frames.shape[1]
        self.mc0 = frames[:, 2].copy()
        self.vc0 = frames[:, 3].copy()
        self.fecf0 = (frames[:, -2].astype(np.uint16) << 8) | frames[:, -1]
        self.t2, self.t3 = _crc_delta_table(2), _crc_delta_table(3)
        self.repeat = 0

    def next_block(self) -> bytes:
        offset = (self.repeat * self.count) & 0xFF
        self.repeat += 1
        out = self.frames.copy()
        mc = ((self.mc0.astype(np.int64) + offset) & 0xFF).astype(np.uint8)
        vc = ((self.vc0.astype(np.int64) + offset) & 0xFF).astype(np.uint8)
        fecf = self.fecf0 ^ self.t2[mc ^ self.mc0] ^ self.t3[vc ^ self.vc0]
        out[:, 2], out[:, 3] = mc, vc
        out[:, -2], out[:, -1] = (fecf >> 8).astype(np.uint8), (fecf & 0xFF).astype(np.uint8)
        return out.tobytes()


class CaduCycleSource:
    """The cycle of a Reed-Solomon coded AOS spacecraft as it is on the air, one CADU per datagram
    (ASM + randomized codeblock, what ``flightsw --datagram-cadus`` sends): per repeat the 24-bit
    VC frame counts continue, then the block is RS-encoded and randomized again (the check symbols
    cover the header, so nothing can be patched in place)."""

    def __init__(self, frames: np.ndarray, profile) -> None:
        from protocols.ccsds.sync import CaduEncoder

        self.frames = frames
        self.count = frames.shape[0]
        self.encoder = CaduEncoder(profile)
        self.size = self.encoder.cadu_length
        vcids = frames[:, 1] & 0x3F
        self.vc0 = (frames[:, 2].astype(np.int64) << 16) | (frames[:, 3].astype(np.int64) << 8) | frames[:, 4]
        # Frames of each frame's VC in one cycle: how far its count moves per repeat.
        self.step = np.bincount(vcids, minlength=64)[vcids]
        self.repeat = 0

    def next_block(self) -> bytes:
        vc = (self.vc0 + self.repeat * self.step) & 0xFFFFFF
        self.repeat += 1
        out = self.frames.copy()
        out[:, 2], out[:, 3], out[:, 4] = (vc >> 16).astype(np.uint8), (vc >> 8).astype(np.uint8), vc.astype(np.uint8)
        return self.encoder.cadus([bytes(row) for row in out])


def source_for(mission: str, frames: np.ndarray) -> CycleSource | CaduCycleSource:
    """What the sender repeats: TM frames as they are, or CADUs for a spacecraft with a code."""
    from protocols.missions import registry

    profile = registry().spacecraft(mission).profile.frame
    return CaduCycleSource(frames, profile) if profile.rs is not None else CycleSource(frames)


def sender(address: tuple[str, int], rate: float, seconds: float, cpu: int | None,
           source: CycleSource | CaduCycleSource, result: mp.Queue) -> None:
    """Paced sender: keeps datagrams sent == rate * elapsed, in 1 ms slices."""
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    fl = source.size
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.connect(address)
    block, index = memoryview(source.next_block()), 0
    sent, behind = 0, 0.0
    send = sock.send
    start = time.perf_counter()
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * rate)
        if due - sent > rate * 0.01:
            behind = max(behind, (due - sent) / rate)
        while sent < due:
            if index == source.count:
                block, index = memoryview(source.next_block()), 0
            try:
                send(block[index * fl:(index + 1) * fl])
            except (BlockingIOError, ConnectionRefusedError):
                continue
            index += 1
            sent += 1
        time.sleep(0.0005)
    elapsed = time.perf_counter() - start
    result.put((sent, elapsed, behind))


# --------------------------------------------------------------------------- the daemon


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict[str, float]:
    """Flat samples of /metrics: ``name{labels}`` -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def total(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(name + "{"))


def latency_buckets(samples: dict[str, float]) -> dict[float, float]:
    out = {}
    for key, value in samples.items():
        m = re.match(r"queqiao_export_latency_seconds_bucket\{le=([^,}]+)", key)
        if m:
            out[float(m.group(1))] = value
    return out


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> tuple[float, int]:
    """Upper bucket bound at quantile q of the observations between two scrapes, and their number."""
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    n = cumulative[-1] if cumulative else 0
    if not n:
        return float("nan"), 0
    for b, c in zip(bounds, cumulative, strict=True):
        if c >= q * n:
            return b, int(n)
    return float("inf"), int(n)


class DaemonProcess:
    """``groundstation run`` with one UDP link for ``mission``: frames, or (``cadus``) one CADU per
    datagram on a link pinned to the spacecraft, as the demo runs a coded spacecraft."""

    def __init__(self, workdir: Path, cpu: int | None, mission: str = "haiyang2d", cadus: bool = False,
                 remote_write: str | None = None) -> None:
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port(socket.SOCK_STREAM)
        self.url = f"http://127.0.0.1:{self.http_port}"
        config = workdir / "ingest.toml"
        config.write_text(f"""
[station]
name = "ingest-bench"
log_level = "WARNING"

[[spacecraft]]
name = "{mission}"

[[links]]
name = "udp-in"
url = "udp://127.0.0.1:{self.udp_port}"
{f'format = "cadu"{chr(10)}spacecraft = "{mission}"' if cadus else ""}

[archive]
dir = "{workdir / 'archive'}"
{f'{chr(10)}[[remote_write]]{chr(10)}url = "{remote_write}"{chr(10)}name = "bench"' if remote_write else ""}
""")
        self.log = open(workdir / "daemon.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "groundstation.cli", "run", "--config", str(config), "--http",
             f"127.0.0.1:{self.http_port}"], stdout=self.log, stderr=subprocess.STDOUT)
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, {cpu})
        self.rss_max_kb = 0
        deadline = time.monotonic() + 60
        while True:
            try:
                scrape(self.url)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daemon did not start: see {workdir / 'daemon.log'}") from None
                time.sleep(0.2)

    def rss_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    kb = int(line.split()[1])
                    self.rss_max_kb = max(self.rss_max_kb, kb)
                    return kb
        return 0

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def profile_summary(raw: Path, top: int = 25) -> str:
    """py-spy raw stacks -> inclusive share per function (where the daemon's time goes)."""
    total = background = 0
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        if "_bootstrap_inner" in stack:  # a worker thread (the background writers): counted apart
            background += count
            continue
        total += count
        names = [re.sub(r":\d+\)$", ")", re.sub(r" \((?:.*/)?", " (", f)) for f in stack.split(";") if f]
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + count
        if names:
            own[names[-1]] = own.get(names[-1], 0) + count
    if not total:
        return "no samples"
    lines = [f"{total} samples of the event loop's thread ({background} more of worker threads, left out); "
             "inclusive share (self share) per function, event loop frames left out:"]
    plumbing = ("(base_events.py)", "(runners.py)", "(events.py)", "(cli.py)", "<frozen runpy>", "run_command (")
    ranked = [(n, c) for n, c in sorted(inclusive.items(), key=lambda kv: -kv[1]) if not any(p in n for p in plumbing)]
    for name, count in ranked[:top]:
        lines.append(f"  {100 * count / total:5.1f} % ({100 * own.get(name, 0) / total:4.1f} %)  {name}")
    return "\n".join(lines)


@contextlib.contextmanager
def remote_write_receiver(workdir: Path, cpu: int | None, wanted: bool):
    """A VictoriaMetrics for the daemon's remote write, on ``cpu`` (its write URL), or None when not wanted."""
    if not wanted:
        yield None
        return
    from tests.realcomponents.components import VictoriaMetrics

    receiver = VictoriaMetrics(workdir / "victoria-metrics").start()  # needs victoria-metrics (make system-deps)
    try:
        if cpu is not None and receiver.proc is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(receiver.proc.pid, {cpu})
        yield receiver.write_url
    finally:
        receiver.stop()


def run_rate(daemon: DaemonProcess, source: CycleSource | CaduCycleSource, rate: float, seconds: float,
             cpu: int | None, spy: Path | None = None) -> dict:
    before = scrape(daemon.url)
    cpu0 = daemon.cpu_seconds()
    spy_proc = None
    if spy is not None:
        exe = Path(sys.executable).with_name("py-spy")
        spy_proc = subprocess.Popen([str(exe if exe.exists() else "py-spy"), "record", "--nonblocking", "-p",
                                     str(daemon.proc.pid), "-d", str(max(1, int(seconds))), "-r", "250", "-o",
                                     str(spy), "--format", "raw"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    queue: mp.Queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=sender, args=(("127.0.0.1", daemon.udp_port), rate, seconds, cpu,
                                                               source, queue))
    t0 = time.monotonic()
    proc.start()
    while proc.is_alive():
        daemon.rss_kb()
        time.sleep(0.1)
    sent, elapsed, behind = queue.get()
    proc.join()
    if spy_proc is not None:
        spy_proc.wait(30)
    cpu_send = daemon.cpu_seconds() - cpu0  # CPU over the sending window (scrapes below cost some too)
    wall_send = time.monotonic() - t0
    # Wait until the daemon has worked through what it took in (the counter stops moving).
    last, stable = -1.0, 0
    while stable < 3 and time.monotonic() - t0 < seconds + 30:
        time.sleep(0.2)
        daemon.rss_kb()
        now = total(scrape(daemon.url), "queqiao_frames_received_total")
        stable = stable + 1 if now == last else 0
        last = now
    after = scrape(daemon.url)
    received = total(after, "queqiao_frames_received_total") - total(before, "queqiao_frames_received_total")
    archived = total(after, "queqiao_archive_records_total") - total(before, "queqiao_archive_records_total")
    p99, n = quantile(latency_buckets(before), latency_buckets(after), 0.99)
    p50, _ = quantile(latency_buckets(before), latency_buckets(after), 0.50)
    rejected = total(after, "queqiao_frames_rejected_total") - total(before, "queqiao_frames_rejected_total")
    packets = total(after, "queqiao_packets_total") - total(before, "queqiao_packets_total")
    # The parameter archive's share: samples written and (a flood beyond its writer) dropped, counted.
    written = total(after, "queqiao_parameter_archive_samples_total") - total(before, "queqiao_parameter_archive_samples_total")
    dropped = (total(after, "queqiao_parameter_archive_samples_dropped_total")
               - total(before, "queqiao_parameter_archive_samples_dropped_total"))
    # Remote write's share, the same way (zero when it is off).
    remote = {key: int(total(after, f"queqiao_remote_write_samples_{key}_total")
                       - total(before, f"queqiao_remote_write_samples_{key}_total")) for key in ("sent", "dropped")}
    return {"rate": rate, "sent": sent, "elapsed": elapsed, "received": int(received), "archived": int(archived),
            "lost": sent - int(received), "fps": received / elapsed, "cpu": cpu_send / wall_send,
            "sender_behind_s": behind, "p50": p50, "p99": p99, "latency_n": n, "rejected": int(rejected),
            "packets": int(packets), "rss_mb": daemon.rss_max_kb / 1024, "samples_written": int(written),
            "samples_dropped": int(dropped), "remote_sent": remote["sent"], "remote_dropped": remote["dropped"]}


def rmem() -> tuple[int, int]:
    def read(p: str) -> int:
        try:
            return int(Path(p).read_text().split()[0])
        except OSError:
            return -1
    return read("/proc/sys/net/core/rmem_default"), read("/proc/sys/net/core/rmem_max")


def machine() -> dict:
    import cython_ext

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": f"{cpu} (nproc {os.cpu_count()})", "os": platform.platform(), "load_start": os.getloadavg()[0],
            "python": platform.python_version(), "numpy": np.__version__, "kernels": cython_ext.BACKEND}


def batch_cost(frames: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """The chain's CPU per frame in process (``FrameChain.process``) with one frame per batch and with
    64, and from the two the fixed cost per batch (seconds): what ordinary rates pay for every batch."""
    from groundstation.chain import FrameChain
    from groundstation.metrics import Metrics
    from protocols.missions import registry

    data = [bytes(r) for r in frames[:4096]]

    def per_frame(batch: int, n: int) -> float:
        chain = FrameChain(registry(), Metrics(), spacecraft=["haiyang2d"])
        for i in range(0, 256, batch):
            chain.process("udp", data[i:i + batch], 1.0)
        start = time.process_time()
        for i in range(256, 256 + n, batch):
            chain.process("udp", data[i:i + batch], 1.0)
        return (time.process_time() - start) / n

    one = min(per_frame(1, 1500) for _ in range(repeats))
    many = min(per_frame(64, 3840) for _ in range(max(1, repeats // 2)))
    return {"one": one, "many": many, "fixed": (one - many) / (1 - 1 / 64)}


# --------------------------------------------------------------------------- report


def render(info: dict, rows: list[dict], latency: dict | None, best: float | None, rss_mb: float,
           args: argparse.Namespace, profile: str, sustained: dict | None = None,
           cost: dict[str, float] | None = None) -> str:
    rd, rm = rmem()
    lines = [BEGIN, "## Ground-station ingest", "",
             f"Generated by `python -m benchmarks.ingest --write docs/PERFORMANCE.md` on "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", "",
             "A real daemon (`groundstation run`: one UDP link, archive on, HTTP for /metrics, the whole chain) "
             "pinned to one core; a separate sender process pinned to the other core sends haiyang2d TM frames "
             "(1115 octets, full of housekeeping packets: `encode_many` + `FrameMux` via the emulator's flood "
             f"mode) over loopback, paced, for {args.seconds:g} s per rate. Loss = frames sent - "
             "`queqiao_frames_received_total`; the archive count is checked too. "
             + ("The parameter archive is on, and remote write sends every sample to a VictoriaMetrics (Debian's "
                "`victoria-metrics`) on the sender's core. " if args.remote_write else
                "The parameter archive is on; remote write is off (`--no-remote-write`). ") +
             "The machine is shared with other engineers' jobs (2 cores): expect noise.", "",
             f"- CPU: {info['cpu']}; {info['os']}",
             f"- Python {info['python']}, numpy {info['numpy']}, kernels: {info['kernels']}",
             f"- UDP: the daemon asks for an 8 MiB SO_RCVBUF; net.core.rmem_max = {rm} "
             f"(rmem_default {rd}) caps it at {rm} octets (the kernel doubles it for bookkeeping)",
             f"- load average (1 min) of the shared machine: {info['load_start']:.1f} at the start, "
             f"{os.getloadavg()[0]:.1f} at the end (2 cores: above 1, other jobs took part of the daemon's core)",
             f"- command: `{args.command}`", "",
             "| target | measured | met |", "|---|---|---|"]
    search = (f"highest zero-loss rate in {args.seconds:g} s runs: {best:,.0f} frames/s" if best
              else "no zero-loss rate")
    met = bool(best and best >= TARGET_FPS)
    if sustained is not None:
        search += (f"; {sustained['seconds']:g} s at {TARGET_FPS:,}/s: {sustained['sent']:,} sent, "
                   f"{sustained['lost']:,} lost ({100 * sustained['lost'] / max(sustained['sent'], 1):.2f} %), "
                   f"daemon CPU {sustained['cpu'] * 100:.0f} %")
        met = met and sustained["lost"] == 0 and sustained["received"] == sustained["archived"]
    lines.append(f"| sustained ingest >= {TARGET_FPS:,} frames/s, zero loss, one core | {search} | "
                 f"{'yes' if met else 'no'} |")
    if latency:
        lines.append(f"| receipt-to-export p99 <= 5 ms at 1,000 frames/s | p99 <= {latency['p99'] * 1e3:g} ms "
                     f"(p50 <= {latency['p50'] * 1e3:g} ms; bucket bounds, {latency['latency_n']:,} batches) | "
                     f"{'yes' if latency['p99'] <= TARGET_P99 else 'no'} |")
    lines.append(f"| resident memory <= {TARGET_RSS_MB} MB | max VmRSS {rss_mb:.0f} MB over all runs | "
                 f"{'yes' if rss_mb <= TARGET_RSS_MB else 'no'} |")
    for rate, limit in TARGET_CPU.items():
        measured = [r for r in rows if r["rate"] == rate]
        if measured:
            cpu = measured[0]["cpu"]
            lines.append(f"| daemon CPU <= {limit * 100:g} % of a core at {rate:,} frames/s | {cpu * 100:.1f} % "
                         f"({cpu / limit:.2f} x the target) | {'yes' if cpu <= limit else 'no'} |")
    if cost:
        lines.append(f"| chain cost per batch (in process, CPU time; no target) | fixed {cost['fixed'] * 1e6:.0f} µs "
                     f"per batch; {cost['one'] * 1e6:.0f} µs per frame in 1-frame batches, "
                     f"{cost['many'] * 1e6:.0f} µs in 64-frame batches | - |")
    lines += ["", "| rate asked (frames/s) | sent | received | archived | lost | frames/s received | packets | "
              "parameter samples archived / dropped | remote write sent / dropped | daemon CPU | RSS max (MB) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['rate']:,.0f} | {r['sent']:,} | {r['received']:,} | {r['archived']:,} | {r['lost']:,} | "
                     f"{r['fps']:,.0f} | {r['packets']:,} | {r['samples_written']:,} / {r['samples_dropped']:,} | "
                     f"{r['remote_sent']:,} / {r['remote_dropped']:,} | {r['cpu'] * 100:.0f} % | {r['rss_mb']:.0f} |")
    lines += ["", "Parameter samples are counted between the scrapes before and after each run; the archive writes at "
              "its flush interval or once `parameters.flush_samples` are pending, and remote write encodes every "
              "second, so a run's last samples may land in the next row.  Both write from a background thread at "
              "a lower priority than the event loop (groundstation/background.py): a flood beyond what the core "
              "leaves them drops the oldest pending samples, counted, while every frame is received, archived "
              "and decoded (docs/HISTORY.md, \"Floods\")."]
    if profile:
        lines += ["", profile.strip()]
    lines += [END, ""]
    return "\n".join(lines)


def search(run, start: float, steps: int) -> list[dict]:
    """Bisect between a rate that kept up and one that lost frames, from ``start`` (x1.5 while it keeps up)."""
    rows = []
    low, high, rate = 0.0, None, start
    for _ in range(steps):
        r = run(rate)
        rows.append(r)
        if r["lost"] == 0:
            low = rate
        else:
            high = rate
        rate = low * 1.5 if high is None else (low + high) / 2 if low else high / 2
        if high is not None and high - low < 0.05 * high:
            break
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="send time per rate")
    parser.add_argument("--rates", help="comma-separated rates (frames/s) instead of the search")
    parser.add_argument("--max-steps", type=int, default=6, help="rates tried by the search")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--profile-notes", type=Path, help="Markdown appended to the section (profile summary)")
    parser.add_argument("--py-spy", action="store_true", help="sample the daemon with py-spy at each rate")
    parser.add_argument("--sustain", type=float, metavar="SECONDS",
                        help="after the search, one long run at the target rate (50,000 frames/s)")
    parser.add_argument("--profile-rate", type=float,
                        help="after the search, one more run at this rate sampled with py-spy (in the report)")
    parser.add_argument("--ordinary-rates", default="100",
                        help="comma-separated low rates measured for CPU share (besides 1,000/s)")
    parser.add_argument("--mission", default="haiyang2d",
                        help="the spacecraft sent; one with a Reed-Solomon code (tianwen1) goes as CADUs, one per "
                             "datagram, measured against 20,000 CADUs/s in its own section ('ingest-rs')")
    parser.add_argument("--no-remote-write", dest="remote_write", action="store_false",
                        help="run the daemon without remote write (by default it sends every sample to a local "
                             "VictoriaMetrics, as the full-rate history target asks)")
    parser.add_argument("--write", type=Path, help="update the 'Ground-station ingest' section of this file")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    daemon_cpu, sender_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    info = machine()
    print("building the frame cycle ... ", end="", flush=True)
    frames = build_cycle(args.mission)
    print(f"{frames.shape[0]} frames of {frames.shape[1]} octets")
    source = source_for(args.mission, frames)
    if isinstance(source, CaduCycleSource):
        return coded_main(args, info, source, daemon_cpu, sender_cpu)
    cost = batch_cost(frames)
    print(f"chain: fixed cost {cost['fixed'] * 1e6:.0f} us per batch ({cost['one'] * 1e6:.0f} us/frame one per batch, "
          f"{cost['many'] * 1e6:.0f} us/frame 64 per batch)", flush=True)
    rows: list[dict] = []
    latency = None
    profiled = sustained = None
    with tempfile.TemporaryDirectory(prefix="queqiao-ingest-") as tmp, \
            remote_write_receiver(Path(tmp), sender_cpu, args.remote_write) as receiver:
        daemon = DaemonProcess(Path(tmp), daemon_cpu, args.mission, remote_write=receiver)
        try:
            def run(rate: float, profiled: bool = False) -> dict:
                spy = Path(tmp) / f"spy-{rate:.0f}.txt" if args.py_spy or profiled else None
                r = run_rate(daemon, source, rate, args.seconds, sender_cpu, spy)
                if spy is not None and spy.exists():
                    r["profile"] = profile_summary(spy)
                    print(r["profile"])
                print(f"  {rate:>9,.0f}/s asked: sent {r['sent']:,} received {r['received']:,} archived "
                      f"{r['archived']:,} lost {r['lost']:,}  {r['fps']:,.0f} frames/s  CPU {r['cpu'] * 100:.0f} %  "
                      f"RSS {r['rss_mb']:.0f} MB  p99 {r['p99'] * 1e3:g} ms  "
                      f"sender behind {r['sender_behind_s']:.3f} s",
                      flush=True)
                return r

            if not args.no_latency:
                latency = run(1000)
                rows.append(latency)
            for rate in (float(x) for x in args.ordinary_rates.split(",") if x):
                rows.append(run(rate))
            if args.rates:
                for rate in (float(x) for x in args.rates.split(",")):
                    rows.append(run(rate))
            else:
                rows += search(run, float(TARGET_FPS), args.max_steps)
            if args.sustain:
                sustained = run_rate(daemon, source, TARGET_FPS, args.sustain, sender_cpu)
                sustained["seconds"] = args.sustain
                print(f"  sustained {TARGET_FPS:,}/s for {args.sustain:g} s: sent {sustained['sent']:,} received "
                      f"{sustained['received']:,} archived {sustained['archived']:,} lost {sustained['lost']:,} "
                      f"CPU {sustained['cpu'] * 100:.0f} % RSS {sustained['rss_mb']:.0f} MB", flush=True)
            if args.profile_rate:
                profiled = run(args.profile_rate, profiled=True)
        finally:
            daemon.close()
    rows_sorted = sorted(rows, key=lambda r: r["rate"])
    zero = [r["rate"] for r in rows_sorted if r["lost"] == 0 and r["received"] == r["archived"]]
    best = max(zero) if zero else None
    rss = daemon.rss_max_kb / 1024  # over every run, the sustained and profiled ones too
    print(f"highest zero-loss rate: {best}; RSS max {rss:.0f} MB; "
          f"p99 at 1,000/s: {latency['p99'] * 1e3 if latency else float('nan'):g} ms")
    if args.write:
        notes = ""
        if profiled is not None and "profile" in profiled:
            notes += (f"### Profile at {profiled['rate']:,.0f} frames/s (py-spy, {args.seconds:g} s, not part of the "
                      f"search: sent {profiled['sent']:,}, lost {profiled['lost']:,}, daemon CPU "
                      f"{profiled['cpu'] * 100:.0f} %)\n\n```\n{profiled['profile']}\n```\n\n")
        if args.profile_notes:
            notes += args.profile_notes.read_text()
        args.command = "python -m benchmarks.ingest " + " ".join(sys.argv[1:] if argv is None else argv)
        report.write_section(args.write, "ingest", render(info, rows_sorted, latency, best, rss, args, notes, sustained,
                                                          cost))
        print(f"wrote the ingest section of {args.write}")
    return 0


def coded_main(args: argparse.Namespace, info: dict, source: CaduCycleSource, daemon_cpu: int | None,
               sender_cpu: int | None) -> int:
    """The daemon on a coded spacecraft's CADUs over UDP (RS on): the rates asked, or a search from
    the target; each row checks zero loss and that every codeword was clean (nothing lost to RS)."""
    rates = [float(x) for x in args.rates.split(",")] if args.rates else None
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="queqiao-ingest-rs-") as tmp:
        daemon = DaemonProcess(Path(tmp), daemon_cpu, args.mission, cadus=True)
        try:
            def run(rate: float) -> dict:
                before = scrape(daemon.url)
                r = run_rate(daemon, source, rate, args.seconds, sender_cpu)
                after = scrape(daemon.url)
                r["rs"] = {result: int(total_where(after, "queqiao_rs_codewords_total", f"result={result}")
                                       - total_where(before, "queqiao_rs_codewords_total", f"result={result}"))
                           for result in ("clean", "corrected", "uncorrectable")}
                print(f"  {rate:>9,.0f}/s asked: sent {r['sent']:,} received {r['received']:,} archived "
                      f"{r['archived']:,} lost {r['lost']:,}  RS {r['rs']}  {r['packets']:,} packets  "
                      f"CPU {r['cpu'] * 100:.0f} %", flush=True)
                return r

            rows = [run(rate) for rate in rates] if rates else search(run, float(TARGET_CADUS), args.max_steps)
        finally:
            daemon.close()
    rows.sort(key=lambda r: r["rate"])
    zero = [r["rate"] for r in rows if r["lost"] == 0 and r["received"] == r["archived"]]
    best = max(zero) if zero else None
    args.command = "python -m benchmarks.ingest " + " ".join(sys.argv[1:])
    section = render_coded(info, rows, best, args, source)
    print(section)
    if args.write:
        report.write_section(args.write, "ingest-rs", section)
    return 0


TARGET_CADUS = 20_000


def total_where(samples: dict[str, float], name: str, label: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(name + "{") and label in k)


def render_coded(info: dict, rows: list[dict], best: float | None, args: argparse.Namespace,
                 source: CaduCycleSource) -> str:
    met = bool(best and best >= TARGET_CADUS)
    lines = [f"<!-- ingest-rs:begin ({args.command}) -->", f"## Ground-station ingest of RS-coded CADUs ({args.mission})",
             "",
             f"Generated by `{args.command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {info['cpu']}, Python "
             f"{info['python']}, kernels: {info['kernels']}.  The daemon as in the section above, with its one UDP "
             f"link pinned to {args.mission} with `format = \"cadu\"`: each datagram one {source.size}-octet CADU "
             "(ASM + randomized RS codeblock) as `flightsw --datagram-cadus` sends them, the cycle RS-encoded again "
             "per repeat so the VC counts continue.  The daemon synchronises, derandomizes, RS-checks, "
             f"demultiplexes and decodes every CADU; {args.seconds:g} s per rate; load average at the end "
             f"{os.getloadavg()[0]:.1f}.", "",
             f"Target: the daemon sustains >= {TARGET_CADUS:,} CADUs/s over UDP with zero loss, RS on: "
             f"highest zero-loss rate measured {best or 0:,.0f}/s, {'met' if met else 'MISSED'}.", "",
             "| rate asked (CADUs/s) | sent | received | archived | lost | RS clean / corrected / uncorrectable | "
             "packets | daemon CPU | RSS max (MB) |", "|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        rs = r["rs"]
        lines.append(f"| {r['rate']:,.0f} | {r['sent']:,} | {r['received']:,} | {r['archived']:,} | {r['lost']:,} | "
                     f"{rs['clean']:,} / {rs['corrected']:,} / {rs['uncorrectable']:,} | {r['packets']:,} | "
                     f"{r['cpu'] * 100:.0f} % | {r['rss_mb']:.0f} |")
    lines += ["", "The resident memory grows with the rate because the parameter archive holds every decoded sample "
              "until its next flush (bounded by `max_pending_samples`, docs/HISTORY.md): about 4.5 housekeeping "
              "packets per CADU here, each with its parameters.", "<!-- ingest-rs:end -->", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
