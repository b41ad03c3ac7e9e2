"""The daemon's Prometheus metrics: declared once here, updated in batches, read at scrape time.

prometheus-client's ``Counter.labels(...).inc()`` costs microseconds a call;
at tens of thousands of frames a second with hundreds of parameters that is
the whole budget.  So the hot path only adds to plain dicts (one update per
batch, not per packet) and a custom collector turns them into metric families
when Prometheus scrapes.  Every label value comes from the configuration or the
mission database (links, spacecraft, APIDs, parameters, reasons from a fixed
list), so label sets stay bounded.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class MetricSpec:
    name: str  # full name; counters end in _total
    kind: str  # "counter" | "gauge"
    help: str
    labels: tuple[str, ...]


#: Every metric the daemon exports: the contract with dashboards and alert rules.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("queqiao_frames_received_total", "counter", "Frames received on a link (good or bad).", ("link",)),
    MetricSpec("queqiao_frames_rejected_total", "counter", "Frames rejected, by reason.", ("link", "reason")),
    MetricSpec("queqiao_link_up", "gauge", "1 while the link is connected/bound, else 0.", ("link",)),
    MetricSpec("queqiao_link_bytes_received_total", "counter", "Bytes received on a link.", ("link",)),
    MetricSpec("queqiao_link_cadu_datagrams_total", "counter",
               "Datagrams of a frames link that carried a CADU (ASM + codeblock) and were unwrapped.", ("link",)),
    MetricSpec("queqiao_link_skipped_octets_total", "counter",
               "Octets of a stream link that belong to no frame (noise, garbage, lost lock, a frame cut short by "
               "the end of the data).", ("link",)),
    MetricSpec("queqiao_link_last_frame_timestamp_seconds", "gauge", "Ground receipt time of the last frame on a link.",
               ("link",)),
    MetricSpec("queqiao_rs_codewords_total", "counter",
               "Reed-Solomon codewords decoded, by result (clean, corrected, uncorrectable).", ("spacecraft", "result")),
    MetricSpec("queqiao_rs_corrected_symbols_total", "counter", "Symbols the Reed-Solomon decoder corrected.",
               ("spacecraft",)),
    MetricSpec("queqiao_frame_gaps_total", "counter", "Frames lost, from virtual channel frame count gaps.",
               ("spacecraft", "vc")),
    MetricSpec("queqiao_frame_count_resyncs_total", "counter",
               "VC frame count jumps beyond what the link rate allows: resynchronised, not counted as lost.",
               ("spacecraft", "vc")),
    MetricSpec("queqiao_frames_total", "counter", "Good frames per spacecraft and virtual channel.", ("spacecraft", "vc")),
    MetricSpec("queqiao_packets_total", "counter", "Packets extracted, per spacecraft and APID.", ("spacecraft", "apid")),
    MetricSpec("queqiao_packet_gaps_total", "counter", "Packets lost, from sequence count gaps.", ("spacecraft", "apid")),
    MetricSpec("queqiao_packet_duplicates_total", "counter",
               "Packets seen twice (a sequence count at most 16 behind the last).",
               ("spacecraft", "apid")),
    MetricSpec("queqiao_packet_sequence_resets_total", "counter",
               "Sequence count jumps back or resets, accepted after a few packets in a row agreed.",
               ("spacecraft", "apid")),
    MetricSpec("queqiao_packets_rejected_total", "counter", "Packets rejected, by reason.", ("spacecraft", "reason")),
    MetricSpec("queqiao_chain_stage_total", "counter", "Items through each named chain stage, by outcome.",
               ("stage", "outcome")),
    MetricSpec("queqiao_parameter_value", "gauge", "Latest engineering value of a numeric parameter.",
               ("spacecraft", "subsystem", "parameter", "unit")),
    MetricSpec("queqiao_parameter_limit_state", "gauge", "Limit state: 0 nominal, 1 warning, 2 critical.",
               ("spacecraft", "subsystem", "parameter")),
    MetricSpec("queqiao_parameter_last_update_timestamp_seconds", "gauge", "Ground time of the parameter's last sample.",
               ("spacecraft", "subsystem", "parameter")),
    MetricSpec("queqiao_spacecraft_onboard_time_seconds", "gauge", "Latest onboard time (Unix seconds, UTC).",
               ("spacecraft",)),
    MetricSpec("queqiao_spacecraft_last_frame_timestamp_seconds", "gauge", "Ground receipt time of the last good frame.",
               ("spacecraft",)),
    MetricSpec("queqiao_light_time_seconds", "gauge", "One-way light time to the spacecraft.", ("spacecraft",)),
    MetricSpec("queqiao_alarms_total", "counter", "Limit transitions into a state, per parameter.",
               ("spacecraft", "subsystem", "parameter", "state")),
    MetricSpec("queqiao_archive_bytes", "gauge", "Bytes held in the raw archive.", ()),
    MetricSpec("queqiao_archive_segments", "gauge", "Segment files in the raw archive.", ()),
    MetricSpec("queqiao_archive_records_total", "counter", "Frames appended to the raw archive.", ()),
    MetricSpec("queqiao_parameter_archive_samples_total", "counter", "Samples written to the parameter archive.", ()),
    MetricSpec("queqiao_parameter_archive_samples_dropped_total", "counter",
               "Samples the parameter archive dropped (memory bound reached while it could not write).", ()),
    MetricSpec("queqiao_parameter_archive_write_errors_total", "counter",
               "Parameter archive flushes that failed (retried at the next flush).", ()),
    MetricSpec("queqiao_parameter_archive_pending_samples", "gauge", "Samples waiting for the next flush.", ()),
    MetricSpec("queqiao_remote_write_samples_sent_total", "counter",
               "Samples a remote-write receiver acknowledged.", ("endpoint",)),
    MetricSpec("queqiao_remote_write_samples_retried_total", "counter",
               "Samples sent again after the receiver was away or answered 5xx/429.", ("endpoint",)),
    MetricSpec("queqiao_remote_write_samples_dropped_total", "counter",
               "Samples never delivered: the queue overflowed or the receiver refused them (4xx).", ("endpoint",)),
    MetricSpec("queqiao_remote_write_queue_samples", "gauge", "Samples queued for a remote-write receiver.",
               ("endpoint",)),
    MetricSpec("queqiao_archive_write_errors_total", "counter",
               "Archive writes (and fsyncs) the disk refused, by reason.", ("reason",)),
    MetricSpec("queqiao_archive_buffered_frames", "gauge",
               "Frames held in memory while the archive cannot be written.", ()),
    MetricSpec("queqiao_archive_buffered_bytes", "gauge",
               "Bytes of frames held in memory while the archive cannot be written.", ()),
    MetricSpec("queqiao_archive_dropped_frames_total", "counter",
               "Frames never archived: the memory buffer was full while the disk refused writes.", ()),
    MetricSpec("queqiao_archive_damaged_regions_total", "counter",
               "Damaged stretches in segments that recovery skipped at start (each cost at least one record).", ()),
    MetricSpec("queqiao_archive_quarantined_files_total", "counter",
               "Files named like archive segments that recovery moved to quarantine/ at start.", ()),
    MetricSpec("queqiao_events_total", "counter",
               "Events recorded: onboard (PUS 5, declared in the mission database) and the ground's own.",
               ("spacecraft", "severity", "event")),
    MetricSpec("queqiao_commands_total", "counter", "Telecommands by final result.", ("spacecraft", "command", "result")),
    MetricSpec("queqiao_mqtt_messages_published_total", "counter", "Messages published to the MQTT broker.", ()),
    MetricSpec("queqiao_mqtt_messages_dropped_total", "counter", "MQTT messages dropped (buffer full while away).", ()),
    MetricSpec("queqiao_mqtt_connected", "gauge", "1 while connected to the MQTT broker.", ()),
    MetricSpec("queqiao_network_connected", "gauge", "1 while connected to the NATS network.", ()),
    MetricSpec("queqiao_network_frames_published_total", "counter",
               "Frames the network's JetStream stored from this site.", ()),
    MetricSpec("queqiao_network_duplicates_total", "counter",
               "Frames JetStream already held (a catch-up's overlap), dropped by message id.", ()),
    MetricSpec("queqiao_network_publish_failures_total", "counter",
               "Publishes not acknowledged (the archive resends them).", ()),
    MetricSpec("queqiao_network_catchup_frames_total", "counter", "Frames republished from the archive.", ()),
    MetricSpec("queqiao_network_unsent_frames_total", "counter",
               "Frames not forwarded: no routable transfer frame header.", ("reason",)),
    MetricSpec("queqiao_network_consume_failures_total", "counter", "Merge fetches from JetStream that failed.", ()),
    MetricSpec("queqiao_network_uplink_frames_total", "counter",
               "Telecommand frames the merge sent to a site for a spacecraft.", ("site", "spacecraft")),
    MetricSpec("queqiao_network_uplink_unsent_total", "counter",
               "Telecommand frames the merge could not hand to any site, by reason.", ("spacecraft", "reason")),
    MetricSpec("queqiao_network_uplink_relayed_total", "counter",
               "Telecommand frames a site relayed from the merge to its uplink.", ("site", "spacecraft")),
    MetricSpec("queqiao_network_uplink_refused_total", "counter",
               "Telecommand frames a site refused to relay, by reason.", ("site", "reason")),
    MetricSpec("queqiao_merge_frames_offered_total", "counter", "Frames a site offered the merge.",
               ("site", "spacecraft")),
    MetricSpec("queqiao_merge_frames_chosen_total", "counter", "Frames of a site the merge chose (the best copy).",
               ("site", "spacecraft")),
    MetricSpec("queqiao_merge_duplicates_dropped_total", "counter", "A site's copies dropped for a better or earlier one.",
               ("site", "spacecraft")),
    MetricSpec("queqiao_merge_gaps_filled_total", "counter", "Frames chosen from a site that another site missed.",
               ("site", "spacecraft")),
    MetricSpec("queqiao_merge_late_frames_total", "counter",
               "Frames that came after the merge's wait (passed on out of order, not lost).", ("site", "spacecraft")),
    MetricSpec("queqiao_merge_lateness_seconds", "gauge", "Merge arrival minus the site's receipt time (last frame).",
               ("site", "spacecraft")),
    MetricSpec("queqiao_merge_clock_skew_total", "counter",
               "Frames whose receipt time was in the future (ranked by arrival instead).", ("site", "spacecraft")),
    MetricSpec("queqiao_merge_rejected_total", "counter", "Messages the merge refused, by reason.",
               ("site", "spacecraft", "reason")),
    MetricSpec("queqiao_merge_pending_frames", "gauge", "Frames waiting for late sites.", ()),
)

SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}

#: Receipt-to-export latency buckets (seconds).
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LATENCY_NAME = "queqiao_export_latency_seconds"


class LatencyHistogram:
    """A histogram fed with whole numpy arrays of observations."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.buckets = np.asarray(sorted(buckets), dtype=np.float64)
        self.counts = np.zeros(self.buckets.size + 1, dtype=np.int64)  # last slot: +Inf
        self.total = 0.0
        self.count = 0

    def observe_many(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        index = np.searchsorted(self.buckets, values, side="left")
        self.counts += np.bincount(index, minlength=self.counts.size)
        self.total += float(values.sum())
        self.count += int(values.size)

    def quantile(self, q: float) -> float:
        """Upper bucket bound at quantile q (what Prometheus's histogram_quantile approximates)."""
        if not self.count:
            return float("nan")
        cumulative = np.cumsum(self.counts)
        slot = int(np.searchsorted(cumulative, q * self.count, side="left"))
        return float(self.buckets[slot]) if slot < self.buckets.size else float("inf")


class Metrics(Collector):
    """The daemon's metric store and its Prometheus collector (one per daemon, no globals)."""

    def __init__(self, latency_buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self._values: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)
        self._sources: list[Callable[[Metrics], None]] = []
        self.latency = LatencyHistogram(latency_buckets)
        self._lock = threading.Lock()  # scrapes may run on another thread than the loop
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # ------------------------------------------------------------------ updates (hot path)

    def inc(self, name: str, labels: tuple[str, ...] = (), amount: float = 1) -> None:
        series = self._values[name]
        series[labels] = series.get(labels, 0) + amount

    def set(self, name: str, labels: tuple[str, ...], value: float) -> None:
        self._values[name][labels] = value

    def get(self, name: str, labels: tuple[str, ...] = ()) -> float:
        return self._values.get(name, {}).get(labels, 0)

    def series(self, name: str) -> dict[tuple[str, ...], float]:
        return dict(self._values.get(name, {}))

    def add_source(self, refresh: Callable[[Metrics], None]) -> None:
        """Register a callable that sets gauges from live state (links, archive) just before a scrape."""
        self._sources.append(refresh)

    # ------------------------------------------------------------------ scrape

    def describe(self):
        return []

    def collect(self):
        with self._lock:
            for refresh in self._sources:
                refresh(self)
            for spec in METRICS:
                series = self._values.get(spec.name)
                if spec.kind == "counter":
                    family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
                else:
                    family = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
                for labels, value in (series or {}).items():
                    family.add_metric(list(labels), value)
                yield family
            cumulative = np.cumsum(self.latency.counts)
            buckets = [(f"{bound:g}", int(cumulative[i])) for i, bound in enumerate(self.latency.buckets)]
            buckets.append(("+Inf", int(cumulative[-1])))
            yield HistogramMetricFamily(
                LATENCY_NAME, "Ground receipt to export (Prometheus/MQTT) latency.",
                buckets=buckets, sum_value=self.latency.total,
            )

    def render(self) -> bytes:
        """The text exposition format, as served on /metrics."""
        return generate_latest(self.registry)
