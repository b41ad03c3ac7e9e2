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
and encoded once in a worker thread; each endpoint has its own bounded queue of encoded requests
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
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from groundstation.chain.limits import ParameterExport, exports_of
from groundstation.parameter_archive import SampleColumns
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
        self._pending: list[tuple[str, PacketDef, Mapping[str, np.ndarray], np.ndarray | None, float]] = []
        self._exports: dict[int, list[ParameterExport]] = {}  # by id(definition): names repeat across spacecraft
        self._labels: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}
        self.samples_encoded = 0

    # ------------------------------------------------------------------ hot path

    def add(self, spacecraft: str, definition: PacketDef, raw: Mapping[str, np.ndarray], onboard: np.ndarray | None,
            ground_time: float) -> None:
        self._pending.append((spacecraft, definition, raw, onboard, ground_time))

    # ------------------------------------------------------------------ encoding

    def encode_pending(self) -> list[tuple[bytes, int]]:
        """The pending samples as snappy-compressed WriteRequests (body, samples); clears what it took."""
        taken, self._pending = self._pending, []
        series: dict[tuple[str, str, str, str], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        for spacecraft, definition, raw, onboard, ground_time in taken:
            exports = self._exports.get(id(definition))
            if exports is None:
                exports = self._exports[id(definition)] = exports_of(definition)
            when = onboard if self.timestamp == "onboard" and onboard is not None else None
            for export in exports:
                columns = SampleColumns.of(export, raw[export.path], when, ground_time)
                stamps = columns.onboard_us if columns.onboard_us is not None else columns.ground_us
                values = columns.raw if columns.eng is None else columns.eng
                series[(spacecraft, export.subsystem, export.name, export.unit)].append((stamps // 1000, values))
        requests, request, count = [], WriteRequest(), 0
        for key, parts in series.items():
            stamps = np.concatenate([p[0] for p in parts])
            values = np.concatenate([p[1] for p in parts])
            order = np.argsort(stamps, kind="stable")
            stamps, values = _spread_duplicates(stamps[order]), values[order]
            for start in range(0, stamps.size, MAX_SAMPLES_PER_REQUEST):
                chunk = slice(start, start + MAX_SAMPLES_PER_REQUEST)
                ts = request.timeseries.add()
                for name, value in self._series_labels(key):
                    ts.labels.add(name=name, value=value)
                add = ts.samples.add
                for v, t in zip(values[chunk].tolist(), stamps[chunk].tolist(), strict=True):
                    add(value=v, timestamp=t)
                count += len(values[chunk])
                if count >= MAX_SAMPLES_PER_REQUEST:
                    requests.append((bytes(cramjam.snappy.compress_raw(request.SerializeToString())), count))
                    request, count = WriteRequest(), 0
        if count:
            requests.append((bytes(cramjam.snappy.compress_raw(request.SerializeToString())), count))
        self.samples_encoded += sum(n for _, n in requests)
        return requests

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
        for body, samples in await asyncio.to_thread(self.encode_pending):
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
    """Sorted millisecond timestamps with every run of equal values spaced 1 ms apart (see the module doc)."""
    if stamps.size < 2 or not (np.diff(stamps) == 0).any():
        return stamps
    out = stamps.copy()
    for i in range(1, out.size):
        if out[i] <= out[i - 1]:
            out[i] = out[i - 1] + 1
    return out
