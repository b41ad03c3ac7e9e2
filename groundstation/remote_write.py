"""Prometheus remote write (protocol 1.0) of every decoded sample, to one or more receivers.

/metrics shows the latest value of each parameter, and a scrape every few seconds keeps one
sample in several.  Remote write sends every sample, with its own timestamp, to a store built
for it: Prometheus with ``--web.enable-remote-write-receiver``, VictoriaMetrics, Mimir, Thanos
receive.  The series are those of /metrics (``queqiao_parameter_value{spacecraft, subsystem,
parameter, unit}``; a state parameter's value is its raw code, as on /metrics), so the same
dashboards work against the full-resolution store.

The wire format is ``WriteRequest`` protobuf, snappy block-compressed (the protocol's own
choice), built with the ``protobuf`` runtime from a descriptor declared here (no generated code
to keep in step) and compressed with ``cramjam``.

Flow: the chain hands every decoded housekeeping group to :meth:`RemoteWriter.add` (references
only, on the event loop); every ``interval`` the pending groups are calibrated, grouped by series
and encoded once in a background thread at a lower priority than the event loop
(:mod:`groundstation.background`: under a flood, frames are received first); the samples waiting
for it are bounded by the largest endpoint's ``queue_max_samples`` (past it the oldest are dropped
and counted for every endpoint); each endpoint has its own bounded queue of encoded requests
and sends them in order.  A receiver that is down or answers 5xx/429 is retried with capped
exponential backoff, the request staying at the head of its queue (nothing is lost while the queue
has room); past ``queue_max_samples`` the oldest requests are dropped and counted.  A 4xx other
than 429 means the receiver refuses that data for good: it is dropped, counted and logged.

Timestamps: the ground receipt time by default, or the onboard time (``timestamp = "onboard"``).
Receipt times are per batch, so several samples of one series in one batch (a burst, a replay)
share one; they are spaced 1 ms apart so that no receiver discards them as duplicates.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from groundstation.background import shared_worker, yield_to_ingest
from groundstation.chain.limits import ParameterExport, exports_of
from groundstation.parameter_archive import SampleColumns, merge_groups
from protocols.missions import PacketDef

log = logging.getLogger("queqiao.remote_write")

METRIC = "queqiao_parameter_value"
#: Samples per WriteRequest: about 1 MB before compression.
MAX_SAMPLES_PER_REQUEST = 50_000


def _write_request_class():
    """prometheus.WriteRequest of remote write 1.0 (prompb/types.proto, remote.proto), declared at run time."""
    field_type = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="queqiao_prompb.proto", package="prometheus", syntax="proto3")

    def message(name: str, fields: Sequence[tuple[str, int, int, str | None]]) -> None:
        declared = proto.message_type.add(name=name)
        for number, (field_name, kind, label, type_name) in enumerate(fields, 1):
            entry = declared.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = type_name

    one, many = field_type.LABEL_OPTIONAL, field_type.LABEL_REPEATED
    message("Label", [("name", field_type.TYPE_STRING, one, None), ("value", field_type.TYPE_STRING, one, None)])
    message("Sample", [("value", field_type.TYPE_DOUBLE, one, None), ("timestamp", field_type.TYPE_INT64, one, None)])
    message("TimeSeries", [("labels", field_type.TYPE_MESSAGE, many, ".prometheus.Label"),
                           ("samples", field_type.TYPE_MESSAGE, many, ".prometheus.Sample")])
    message("WriteRequest", [("timeseries", field_type.TYPE_MESSAGE, many, ".prometheus.TimeSeries")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))


WriteRequest = _write_request_class()


@dataclass
class EndpointStats:
    samples_sent: int = 0
    samples_retried: int = 0
    samples_dropped: int = 0
    requests_sent: int = 0


@dataclass
class Endpoint:
    """One receiver: its URL, extra headers (e.g. Authorization) and its own queue of encoded requests."""

    url: str
    name: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    queue_max_samples: int = 5_000_000
    timeout_s: float = 10.0
    stats: EndpointStats = field(default_factory=EndpointStats)
    queue: deque[tuple[bytes, int]] = field(default_factory=deque)
    queued_samples: int = 0

    def __post_init__(self) -> None:
        self.name = self.name or self.url
        self._ready = asyncio.Event()    # something is queued
        self._drained = asyncio.Event()  # nothing is queued
        self._drained.set()

    def put(self, body: bytes, samples: int) -> None:
        self.queue.append((body, samples))
        self.queued_samples += samples
        self._drained.clear()
        while self.queued_samples > self.queue_max_samples and len(self.queue) > 1:
            _, lost = self.queue.popleft()
            self.queued_samples -= lost
            self.stats.samples_dropped += lost
        self._ready.set()


class RemoteWriter:
    """Every sample it is given, to every endpoint.  ``async with`` it, or run :meth:`run` in a task."""

    def __init__(self, endpoints: Sequence[Endpoint], *, timestamp: str = "ground", interval: float = 1.0,
                 external_labels: Mapping[str, str] | None = None, backoff_initial: float = 0.25,
                 backoff_max: float = 30.0) -> None:
        if timestamp not in ("ground", "onboard"):
            raise ValueError(f"remote write timestamp is 'ground' or 'onboard', not {timestamp!r}")
        if not endpoints:
            raise ValueError("remote write needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.timestamp = timestamp
        self.interval = interval
        self.external = dict(external_labels or {})
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self._pending: deque[tuple[str, PacketDef, Mapping[str, np.ndarray], np.ndarray | None, float, int]] = deque()
        self._pending_samples = 0
        self._lock = threading.Lock()  # add() on the event loop, encode_pending() on the background thread
        self._worker = shared_worker()
        #: Samples waiting to be encoded, at most (the oldest beyond are dropped for every endpoint).
        self.max_pending_samples = max(e.queue_max_samples for e in self.endpoints)
        self._exports: dict[int, list[ParameterExport]] = {}  # by id(definition): names repeat across spacecraft
        self._labels: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}
        self._prefixes: dict[tuple[str, str, str, str], bytes] = {}
        self.samples_encoded = 0

    # ------------------------------------------------------------------ hot path

    def exports(self, definition: PacketDef) -> list[ParameterExport]:
        exports = self._exports.get(id(definition))
        if exports is None:
            exports = self._exports[id(definition)] = exports_of(definition)
        return exports

    def add(self, spacecraft: str, definition: PacketDef, raw: Mapping[str, np.ndarray], onboard: np.ndarray | None,
            ground_time: float) -> None:
        samples = (len(next(iter(raw.values()))) if raw else 0) * len(self.exports(definition))
        if not samples:
            return
        with self._lock:
            self._pending.append((spacecraft, definition, raw, onboard, ground_time, samples))
            self._pending_samples += samples
            while self._pending_samples > self.max_pending_samples and len(self._pending) > 1:
                lost = self._pending.popleft()[-1]
                self._pending_samples -= lost
                for endpoint in self.endpoints:
                    endpoint.stats.samples_dropped += lost

    # ------------------------------------------------------------------ encoding

    def encode_pending(self) -> list[tuple[bytes, int]]:
        """The pending samples as snappy-compressed WriteRequests (body, samples); clears what it took."""
        with self._lock:
            taken, self._pending, self._pending_samples = list(self._pending), deque(), 0
        series: dict[tuple[str, str, str, str], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        spacecraft_groups: dict[str, list] = defaultdict(list)
        for spacecraft, definition, raw, onboard, ground_time, _ in taken:
            when = onboard if self.timestamp == "onboard" and onboard is not None else None
            spacecraft_groups[spacecraft].append((definition, raw, when, ground_time))
        for spacecraft, groups in spacecraft_groups.items():
            for group in merge_groups(groups, self.exports):
                yield_to_ingest()  # between pieces: the links first, under a flood
                for export in self.exports(group.definition):
                    columns = SampleColumns.of(export, group.raw[export.path], group.onboard, group.ground_time)
                    stamps = columns.onboard_us if columns.onboard_us is not None else columns.ground_us
                    values = columns.raw if columns.eng is None else columns.eng
                    series[(spacecraft, export.subsystem, export.name, export.unit)].append((stamps // 1000, values))
        requests: list[tuple[bytes, int]] = []
        request: list[bytes] = []  # the WriteRequest's encoded timeseries fields
        count = 0
        for key, parts in series.items():
            yield_to_ingest()
            stamps = np.concatenate([p[0] for p in parts])
            values = np.concatenate([p[1] for p in parts]).astype(np.float64, copy=False)
            order = np.argsort(stamps, kind="stable")
            stamps, values = _spread_duplicates(stamps[order]), values[order]
            for start in range(0, stamps.size, MAX_SAMPLES_PER_REQUEST):
                chunk = slice(start, start + MAX_SAMPLES_PER_REQUEST)
                series_bytes = self._series_prefix(key) + encode_samples(values[chunk], stamps[chunk])
                request.append(_TIMESERIES_TAG + _varint(len(series_bytes)) + series_bytes)
                count += len(values[chunk])
                if count >= MAX_SAMPLES_PER_REQUEST:
                    requests.append((bytes(cramjam.snappy.compress_raw(b"".join(request))), count))
                    request, count = [], 0
        if count:
            requests.append((bytes(cramjam.snappy.compress_raw(b"".join(request))), count))
        self.samples_encoded += sum(n for _, n in requests)
        return requests

    def _series_prefix(self, key: tuple[str, str, str, str]) -> bytes:
        """A TimeSeries' labels, encoded once per series by the protobuf runtime (its samples follow)."""
        prefix = self._prefixes.get(key)
        if prefix is None:
            series = WriteRequest().timeseries.add()
            for name, value in self._series_labels(key):
                series.labels.add(name=name, value=value)
            prefix = self._prefixes[key] = series.SerializeToString()
        return prefix

    def _series_labels(self, key: tuple[str, str, str, str]) -> list[tuple[str, str]]:
        labels = self._labels.get(key)
        if labels is None:
            spacecraft, subsystem, parameter, unit = key
            merged = {**self.external, "__name__": METRIC, "spacecraft": spacecraft, "subsystem": subsystem,
                      "parameter": parameter, "unit": unit}
            labels = self._labels[key] = sorted(merged.items())  # the protocol wants them sorted by name
        return labels

    # ------------------------------------------------------------------ sending

    async def run(self) -> None:
        """Encode every interval and keep every endpoint's sender going, until cancelled; then one last
        encode and a bounded attempt to send what is queued."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            senders = [asyncio.create_task(self._send_loop(session, e), name=f"remote write {e.name}")
                       for e in self.endpoints]
            try:
                while True:
                    await asyncio.sleep(self.interval)
                    await self._encode_and_queue()
            finally:
                await asyncio.shield(self._drain(senders))

    async def _encode_and_queue(self) -> None:
        if not self._pending:
            return
        for body, samples in await self._worker.run(self.encode_pending):
            for endpoint in self.endpoints:
                endpoint.put(body, samples)

    async def _drain(self, senders: list[asyncio.Task], seconds: float = 5.0) -> None:
        """At stop: what is pending is queued, and the senders get ``seconds`` to empty their queues."""
        await self._encode_and_queue()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await asyncio.gather(*(e._drained.wait() for e in self.endpoints))
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)

    async def _send_loop(self, session, endpoint: Endpoint) -> None:
        import aiohttp

        headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                   "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "queqiao", **endpoint.headers}
        delay = self.backoff_initial
        while True:
            if not endpoint.queue:
                endpoint._drained.set()
                endpoint._ready.clear()
                await endpoint._ready.wait()
                continue
            body, samples = endpoint.queue[0]
            try:
                async with session.post(endpoint.url, data=body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=endpoint.timeout_s)) as response:
                    status = response.status
                    detail = (await response.text())[:200] if status >= 300 else ""
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status, detail = 0, str(exc) or type(exc).__name__
            if 200 <= status < 300 or (400 <= status < 500 and status != 429):
                if endpoint.queue and endpoint.queue[0][0] is body:
                    endpoint.queue.popleft()
                    endpoint.queued_samples -= samples
                if status >= 400:
                    endpoint.stats.samples_dropped += samples
                    log.warning("remote write %s: the receiver refused %d samples (%d %s); dropped",
                                endpoint.name, samples, status, detail.replace("\n", " "))
                else:
                    endpoint.stats.samples_sent += samples
                    endpoint.stats.requests_sent += 1
                delay = self.backoff_initial
                continue
            endpoint.stats.samples_retried += samples
            log.warning("remote write %s: %s; retrying %d samples in %.1f s", endpoint.name,
                        f"HTTP {status} {detail}" if status else detail, samples, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(self.backoff_max, delay * 2)


def _spread_duplicates(stamps: np.ndarray) -> np.ndarray:
    """Sorted millisecond timestamps with every run of equal values spaced 1 ms apart (see the module doc):
    ``out[i] = max(stamps[i], out[i - 1] + 1)``, which is a running maximum of ``stamps[i] - i``, plus ``i``."""
    if stamps.size < 2 or not (np.diff(stamps) == 0).any():
        return stamps
    index = np.arange(stamps.size, dtype=np.int64)
    return np.maximum.accumulate(stamps.astype(np.int64) - index) + index


# --------------------------------------------------------------------------- the samples' wire format

#: WriteRequest.timeseries is field 1, length-delimited.
_TIMESERIES_TAG = b"\x0a"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode_samples(values: np.ndarray, stamps: np.ndarray) -> bytes:
    """The ``samples`` fields of a TimeSeries (protobuf wire format) for every (value, timestamp), in order.

    Each is field 2, length-delimited, holding ``Sample{value = 1 (double), timestamp = 2 (int64
    varint)}``: ``12 LL 09 <8 octets LE> 10 <varint>``.  Built with whole-array operations, because
    the protobuf runtime's one call per sample held remote write to about a million samples/s (and
    the interpreter lock for as long); the runtime still encodes the labels, and the tests parse
    these octets back with it.  Both fields are always written (proto3 would leave out a zero):
    a parser reads the same message.
    """
    count = stamps.size
    if count == 0:
        return b""
    unsigned = np.ascontiguousarray(stamps, dtype=np.int64).view(np.uint64)  # a negative int64 takes 10 octets
    width = np.ones(count, dtype=np.int64)
    for k in range(1, 10):
        width += unsigned >= np.uint64(1 << (7 * k))
    value_octets = np.ascontiguousarray(values, dtype="<f8").view(np.uint8).reshape(count, 8)
    if width.min() == width.max():  # the usual case (every time stamp of a run in one varint width): one table
        w = int(width[0])
        table = np.empty((count, 12 + w), dtype=np.uint8)
        table[:, 0], table[:, 1], table[:, 2], table[:, 11] = 0x12, 10 + w, 0x09, 0x10
        table[:, 3:11] = value_octets
        for j in range(w):
            table[:, 12 + j] = ((unsigned >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8) | (
                0x80 if j < w - 1 else 0)
        return table.tobytes()
    row = 12 + width  # tag, length, value tag, 8 value octets, timestamp tag, varint
    start = np.zeros(count, dtype=np.int64)
    np.cumsum(row[:-1], out=start[1:])
    out = np.empty(int(start[-1] + row[-1]), dtype=np.uint8)
    out[start] = 0x12
    out[start + 1] = (10 + width).astype(np.uint8)
    out[start + 2] = 0x09
    for j in range(8):
        out[start + 3 + j] = value_octets[:, j]
    out[start + 11] = 0x10
    for j in range(int(width.max())):
        more = width > j + 1
        has = width > j
        septet = ((unsigned >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8) | (more * 0x80).astype(np.uint8)
        out[(start + 12 + j)[has]] = septet[has]
    return out.tobytes()
