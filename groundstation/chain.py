"""The frame and packet chain: named stages, each with its own counters, from frames to parameters.

    route (version/SCID) -> length -> fecf -> vc gaps -> packets (demux, FHP, spanning packets)
    -> sequence (gaps, duplicates) -> resolve (mission database) -> decode (fast path)
    -> limits (alarms) -> export (Prometheus store, MQTT, events, verification reports)

The chain works on batches: a link hands over every frame that arrived since
the last wake-up, each stage handles the batch with vector operations where
it can, and the decode runs once per packet definition per batch through
:class:`protocols.codec.PacketCodec`.  Nothing raises past the chain on bad
input: every frame or packet that cannot go on is counted under its stage and
reason (``queqiao_frames_rejected_total``, ``queqiao_packets_rejected_total``,
``queqiao_chain_stage_total``) and logged at a bounded rate.  The raw archive
is written by the caller before the chain sees a frame.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from cython_ext import crc as _crc
from groundstation.alarms import AlarmPolicy, ParameterAlarm, Transition, override_limits
from groundstation.metrics import Metrics
from protocols.ccsds.cuc import cuc_to_unix
from protocols.ccsds.spacepacket import IDLE_APID, MAX_SEQUENCE_COUNT
from protocols.ccsds.tmframe import FrameProfile
from protocols.ccsds.vcmux import FrameDemux
from protocols.codec import CRC_OK, PacketCodec
from protocols.missions import PacketDef, Registry, Spacecraft
from protocols.parameters import LimitState, Parameter

log = logging.getLogger("queqiao.chain")

SEQUENCE_MODULUS = MAX_SEQUENCE_COUNT + 1
TIME_COARSE = "secondary.time.coarse"
TIME_FINE = "secondary.time.fine"


class RateLimitedLog:
    """At most ``burst`` lines per ``window`` seconds per key; the rest are counted and summarised."""

    def __init__(self, logger: logging.Logger, burst: int = 5, window: float = 10.0) -> None:
        self.logger, self.burst, self.window = logger, burst, window
        self._state: dict[str, list] = {}

    def warning(self, key: str, message: str, *args) -> None:
        now = time.monotonic()
        start, count, suppressed = self._state.get(key, (now, 0, 0))
        if now - start > self.window:
            if suppressed:
                self.logger.warning("%s: %d more like this suppressed", key, suppressed)
            start, count, suppressed = now, 0, 0
        if count < self.burst:
            self.logger.warning(message, *args)
            count += 1
        else:
            suppressed += 1
        self._state[key] = [start, count, suppressed]


@dataclass(frozen=True)
class ParameterExport:
    """How one parameter column of one packet definition is exported."""

    path: str  # column name, e.g. "hk.battery_voltage"
    name: str  # label value, e.g. "battery_voltage"
    subsystem: str
    unit: str
    parameter: Parameter


@dataclass
class Sample:
    """The latest value of one parameter (what /metrics, MQTT and `watch` show)."""

    value: object
    raw: object
    limit: LimitState
    ground_time: float
    onboard_time: float | None


@dataclass
class ChainEvents:
    """Hooks for what the chain produces besides metrics (all optional)."""

    #: (spacecraft, PacketDef, row values as a flat dict, ground time) for PUS 1 / 17 reports.
    on_report: Callable[[str, PacketDef, dict, float], None] | None = None
    #: (spacecraft, event dict) for onboard events (PUS 5) and limit transitions.
    on_event: Callable[[str, dict], None] | None = None
    #: (spacecraft, subsystem, ParameterExport name, Sample) for the latest value of a batch.
    on_parameter: Callable[[str, str, str, str, Sample], None] | None = None
    #: (spacecraft, CLCW fields) for the commanding side's FOP-1.
    on_clcw: Callable[[str, dict], None] | None = None


class SpacecraftChain:
    """The per-spacecraft part of the chain: demux, sequence tracking, decode, limits, latest values."""

    def __init__(self, spacecraft: Spacecraft, metrics: Metrics, events: ChainEvents, *,
                 limit_overrides: Mapping[str, tuple] | None = None, logger: RateLimitedLog | None = None) -> None:
        self.spacecraft = spacecraft
        self.name = spacecraft.name
        self.profile = FrameProfile.from_mission(spacecraft.profile)
        self.metrics = metrics
        self.events = events
        self.log = logger or RateLimitedLog(log)
        # The chain checks the FECF itself (in one batch) before the demux sees a frame.
        self.demux = FrameDemux(self.profile, check_fecf=False)
        self._vc_expected: dict[int, int] = {}
        self._seq_last: dict[int, int] = {}
        self._definitions: dict[int, list[PacketDef]] = defaultdict(list)
        for definition in spacecraft.packets:
            if definition.packet_type == 0:  # telemetry only
                self._definitions[definition.apid].append(definition)
        self._codecs: dict[str, PacketCodec] = {}
        self._exports: dict[str, list[ParameterExport]] = {}
        self._alarms: dict[tuple[str, str], ParameterAlarm] = {}
        self._overrides = dict(limit_overrides or {})
        self.latest: dict[tuple[str, str], Sample] = {}
        self.onboard_time: float | None = None
        self.last_frame_time: float | None = None
        self.light_time_override: float | None = None

    # ------------------------------------------------------------------ frames

    def feed(self, link: str, frames: list[bytes], receipt: float) -> None:
        fl = self.profile.frame_length
        good: list[bytes] = []
        for frame in frames:
            if len(frame) != fl:
                self._reject_frame(link, "length", f"{len(frame)} octets, {self.name} frames have {fl}")
            else:
                good.append(frame)
        if not good:
            return
        stage = self.metrics.inc
        if self.profile.has_fecf:
            buffer = b"".join(good)
            computed = _crc.crc16_strided(buffer, fl, fl - 2)
            rows = np.frombuffer(buffer, dtype=np.uint8).reshape(-1, fl)
            received = (rows[:, fl - 2].astype(np.uint16) << 8) | rows[:, fl - 1]
            ok = computed == received
            if not ok.all():
                for _ in range(int((~ok).sum())):
                    self._reject_frame(link, "fecf", "frame error control mismatch")
                good = [f for f, keep in zip(good, ok.tolist()) if keep]
            stage("queqiao_chain_stage_total", ("fecf", "ok"), len(good))
            if not good:
                return
        self.last_frame_time = receipt
        self._count_vc(good)
        if self.profile.has_ocf and self.events.on_clcw is not None:
            self._clcw(good[-1])
        result = self.demux.feed(good)
        for anomaly in result.anomalies:
            if anomaly.kind == "frame_gap":
                continue  # counted from the VC counters above, with the number of frames lost
            self.metrics.inc("queqiao_packets_rejected_total", (self.name, anomaly.kind))
            stage("queqiao_chain_stage_total", ("packets", anomaly.kind))
            self.log.warning(f"{self.name}:{anomaly.kind}", "%s VC%s: %s (%d octets dropped)", self.name,
                             anomaly.vcid, anomaly.detail, anomaly.dropped)
        packets = [p.data for p in result.packets]
        stage("queqiao_chain_stage_total", ("packets", "ok"), len(packets))
        if packets:
            self.decode_packets(packets, receipt)

    def _reject_frame(self, link: str, reason: str, detail: str) -> None:
        self.metrics.inc("queqiao_frames_rejected_total", (link, reason))
        self.metrics.inc("queqiao_chain_stage_total", (reason, "rejected"))
        self.log.warning(f"{link}:{reason}", "link %s: %s frame rejected (%s): %s", link, self.name, reason, detail)

    def _count_vc(self, frames: list[bytes]) -> None:
        """VC frame counter gaps, per virtual channel (idle frames counted but not gap-checked)."""
        aos = self.profile.kind == "AOS"
        modulus = self.profile.count_modulus
        idle = self.profile.idle_vcid
        per_vc: dict[int, int] = defaultdict(int)
        for frame in frames:
            if aos:
                vcid, count = frame[1] & 0x3F, (frame[2] << 16) | (frame[3] << 8) | frame[4]
            else:
                vcid, count = (frame[1] >> 1) & 0x7, frame[3]
            per_vc[vcid] += 1
            if vcid == idle:
                continue
            expected = self._vc_expected.get(vcid)
            if expected is not None and count != expected:
                lost = (count - expected) % modulus
                self.metrics.inc("queqiao_frame_gaps_total", (self.name, str(vcid)), lost)
                self.log.warning(f"{self.name}:vc{vcid}:gap", "%s VC%d: %d frame(s) lost (count %d, expected %d)",
                                 self.name, vcid, lost, count, expected)
            self._vc_expected[vcid] = (count + 1) % modulus
        for vcid, n in per_vc.items():
            self.metrics.inc("queqiao_frames_total", (self.name, str(vcid)), n)

    def _clcw(self, frame: bytes) -> None:
        start = self.profile.ocf_offset
        word = int.from_bytes(frame[start:start + 4], "big")
        if word >> 31:  # type 1: not a CLCW
            return
        self.events.on_clcw(self.name, {
            "vcid": (word >> 18) & 0x3F, "no_rf": (word >> 15) & 1, "no_bit_lock": (word >> 14) & 1,
            "lockout": (word >> 13) & 1, "wait": (word >> 12) & 1, "retransmit": (word >> 11) & 1,
            "farm_b_counter": (word >> 9) & 3, "report_value": word & 0xFF,
        })

    # ------------------------------------------------------------------ packets

    def decode_packets(self, packets: list[bytes], receipt: float) -> None:
        """Sequence checks, then one batch decode per packet definition."""
        groups: dict[str, list[bytes]] = defaultdict(list)
        by_name: dict[str, PacketDef] = {}
        for data in packets:
            if len(data) < 6:
                self._reject_packet("truncated", data)
                continue
            apid = ((data[0] & 0x07) << 8) | data[1]
            if apid == IDLE_APID:
                continue
            if not self._sequence_ok(apid, ((data[2] & 0x3F) << 8) | data[3]):
                continue
            definition = self._resolve(apid, data)
            if definition is None:
                continue
            if len(data) != definition.size:
                self._reject_packet("length", data, f"{definition.name} is {definition.size} octets, got {len(data)}")
                continue
            groups[definition.name].append(data)
            by_name[definition.name] = definition
        for name, rows in groups.items():
            self._decode_group(by_name[name], rows, receipt)

    def _reject_packet(self, reason: str, data: bytes, detail: str = "") -> None:
        self.metrics.inc("queqiao_packets_rejected_total", (self.name, reason))
        self.metrics.inc("queqiao_chain_stage_total", ("decode", reason))
        self.log.warning(f"{self.name}:{reason}", "%s packet rejected (%s) %s: %s", self.name, reason, detail,
                         bytes(data[:16]).hex())

    def _sequence_ok(self, apid: int, count: int) -> bool:
        """False for duplicates (not decoded twice); gaps are counted and the packet goes on."""
        labels = (self.name, str(apid))
        self.metrics.inc("queqiao_packets_total", labels)
        last = self._seq_last.get(apid)
        if last is None:
            self._seq_last[apid] = count
            return True
        step = (count - last) % SEQUENCE_MODULUS
        if step == 0 or step > SEQUENCE_MODULUS // 2:
            self.metrics.inc("queqiao_packet_duplicates_total", labels)
            self.metrics.inc("queqiao_chain_stage_total", ("sequence", "duplicate"))
            return False
        if step > 1:
            self.metrics.inc("queqiao_packet_gaps_total", labels, step - 1)
            self.metrics.inc("queqiao_chain_stage_total", ("sequence", "gap"))
        self._seq_last[apid] = count
        return True

    def _resolve(self, apid: int, data: bytes) -> PacketDef | None:
        candidates = self._definitions.get(apid)
        if not candidates:
            self._reject_packet("unknown_apid", data, f"APID {apid}")
            return None
        if len(candidates) == 1:
            return candidates[0]
        if len(data) < 9:
            self._reject_packet("truncated", data)
            return None
        service, subtype = data[7], data[8]
        for definition in candidates:
            if definition.service != service or definition.subtype != subtype:
                continue
            if definition.key is None:
                return definition
            at = definition.key_offset
            if len(data) >= at + 2 and ((data[at] << 8) | data[at + 1]) == definition.key:
                return definition
        self._reject_packet("unknown_packet", data, f"APID {apid} PUS {service},{subtype}")
        return None

    def _codec(self, definition: PacketDef) -> PacketCodec:
        codec = self._codecs.get(definition.name)
        if codec is None:
            codec = self._codecs[definition.name] = PacketCodec(definition.construct, name=definition.name)
            self._exports[definition.name] = [
                ParameterExport(path, path.rsplit(".", 1)[-1], definition.subsystem, param.unit, param)
                for path, param in definition.parameters()
            ]
        return codec

    def _decode_group(self, definition: PacketDef, rows: list[bytes], receipt: float) -> None:
        codec = self._codec(definition)
        buffer = b"".join(rows)
        raw = codec.raw_many(buffer)
        ok = raw.get(CRC_OK)
        if ok is not None and not ok.all():
            for _ in range(int((~ok).sum())):
                self._reject_packet("pec", b"", definition.name)
            keep = np.flatnonzero(ok)
            raw = {k: v[keep] for k, v in raw.items()}
        count = len(raw[TIME_COARSE]) if TIME_COARSE in raw else len(rows)
        if count == 0:
            return
        self.metrics.inc("queqiao_chain_stage_total", ("decode", "ok"), count)
        onboard = None
        if TIME_COARSE in raw:
            times = cuc_to_unix(raw[TIME_COARSE], raw.get(TIME_FINE, 0))
            onboard = float(times[-1])
            self.onboard_time = onboard
        eng = codec.calibrate(raw)
        if definition.kind == "housekeeping":
            self._export_parameters(definition, raw, eng, receipt, onboard)
        elif definition.kind == "event":
            self._events(definition, eng, count, receipt, onboard)
        elif self.events.on_report is not None:
            for i in range(count):
                self.events.on_report(self.name, definition, {k: v[i] for k, v in eng.items()}, receipt)

    def _export_parameters(self, definition: PacketDef, raw: dict, eng: dict, receipt: float,
                           onboard: float | None) -> None:
        metrics = self.metrics
        for export in self._exports[definition.name]:
            column = eng[export.path]
            alarm = self._alarm(export)
            state = LimitState.NOMINAL
            if alarm is not None:
                for transition in alarm.update(column):
                    self._transition(export, transition, receipt, onboard)
                state = alarm.state
            raw_last = raw[export.path][-1].item()
            value = column[-1].item()
            numeric = raw_last if export.parameter.calibration.is_state else value
            labels = (self.name, export.subsystem, export.name)
            metrics.set("queqiao_parameter_value", labels + (export.unit,), float(numeric))
            metrics.set("queqiao_parameter_limit_state", labels, int(state))
            metrics.set("queqiao_parameter_last_update_timestamp_seconds", labels, receipt)
            sample = Sample(value, raw_last, state, receipt, onboard)
            self.latest[(export.subsystem, export.name)] = sample
            if export.name == "light_time" and self.light_time_override is None:
                metrics.set("queqiao_light_time_seconds", (self.name,), float(value))
            if self.events.on_parameter is not None:
                self.events.on_parameter(self.name, export.subsystem, export.name, export.unit, sample)
        metrics.latency.observe_many(np.array([time.time() - receipt]))

    def _alarm(self, export: ParameterExport) -> ParameterAlarm | None:
        key = (export.subsystem, export.name)
        if key not in self._alarms:
            override = self._overrides.get(export.name)
            limits = export.parameter.limits
            policy = AlarmPolicy()
            if override is not None:
                warning, critical, persistence, hysteresis = override
                limits = override_limits(limits, warning, critical)
                policy = AlarmPolicy(persistence or 1, hysteresis or 0.0)
            self._alarms[key] = ParameterAlarm(limits, policy) if limits is not None else None
        return self._alarms[key]

    def _transition(self, export: ParameterExport, transition: Transition, receipt: float,
                    onboard: float | None) -> None:
        state = transition.state.name.lower()
        self.metrics.inc("queqiao_alarms_total", (self.name, export.subsystem, export.name, state))
        level = logging.WARNING if transition.state else logging.INFO
        log.log(level, "limit %s.%s.%s: %s -> %s (value %s %s)", self.name, export.subsystem, export.name,
                transition.previous.name.lower(), state, transition.value, export.unit)
        if self.events.on_event is not None:
            self.events.on_event(self.name, {
                "type": "limit", "subsystem": export.subsystem, "parameter": export.name,
                "from": transition.previous.name.lower(), "to": state, "value": transition.value,
                "unit": export.unit, "ground_time": receipt, "onboard_time": onboard,
            })

    def _events(self, definition: PacketDef, eng: dict, count: int, receipt: float, onboard: float | None) -> None:
        aux_columns = {k.split(".", 1)[1]: v for k, v in eng.items() if k.startswith("aux.")}
        for i in range(count):
            event = {"type": "onboard", "event": definition.name, "severity": definition.severity_name,
                     "subsystem": definition.subsystem, "ground_time": receipt, "onboard_time": onboard,
                     "data": {k: v[i].item() for k, v in aux_columns.items()}}
            log.log(logging.WARNING if definition.severity >= 3 else logging.INFO, "event %s: %s %s",
                    self.name, definition.name, event["data"])
            if self.events.on_event is not None:
                self.events.on_event(self.name, event)


class FrameChain:
    """Routes frames to their spacecraft's chain by transfer frame version and SCID."""

    def __init__(self, registry: Registry, metrics: Metrics, *, spacecraft: Iterable[str] | None = None,
                 events: ChainEvents | None = None,
                 limit_overrides: Mapping[str, Mapping[str, tuple]] | None = None) -> None:
        self.registry = registry
        self.metrics = metrics
        self.events = events or ChainEvents()
        self.log = RateLimitedLog(log)
        names = list(spacecraft) if spacecraft is not None else list(registry.names)
        self.chains: dict[str, SpacecraftChain] = {}
        self._routes: dict[tuple[int, int], SpacecraftChain] = {}
        for name in names:
            sc = registry.spacecraft(name)
            chain = SpacecraftChain(sc, metrics, self.events, limit_overrides=(limit_overrides or {}).get(name),
                                    logger=self.log)
            self.chains[name] = chain
            self._routes[(chain.profile.version, sc.scid)] = chain

    def process(self, link: str, frames: list[bytes], receipt: float | None = None) -> None:
        """One batch of whole transfer frames from ``link`` (already archived by the caller)."""
        receipt = time.time() if receipt is None else receipt
        self.metrics.inc("queqiao_frames_received_total", (link,), len(frames))
        self.metrics.set("queqiao_link_last_frame_timestamp_seconds", (link,), receipt)
        routed: dict[str, list[bytes]] = defaultdict(list)
        for frame in frames:
            if len(frame) < 6:
                self._reject(link, "truncated", f"{len(frame)} octets")
                continue
            version = frame[0] >> 6
            if version == 0:
                scid = ((frame[0] & 0x3F) << 4) | (frame[1] >> 4)
            elif version == 1:
                scid = ((frame[0] & 0x3F) << 2) | (frame[1] >> 6)
            else:
                self._reject(link, "version", f"transfer frame version {version}")
                continue
            chain = self._routes.get((version, scid))
            if chain is None:
                self._reject(link, "unknown_spacecraft", f"version {version} SCID {scid}")
                continue
            routed[chain.name].append(frame)
        self.metrics.inc("queqiao_chain_stage_total", ("route", "ok"), sum(map(len, routed.values())))
        for name, batch in routed.items():
            chain = self.chains[name]
            self.metrics.set("queqiao_spacecraft_last_frame_timestamp_seconds", (name,), receipt)
            try:
                chain.feed(link, batch, receipt)
            except Exception:  # noqa: BLE001 - a bug must not stop the daemon; it is logged with its trace
                log.exception("chain for %s failed on a batch of %d frames from %s", name, len(batch), link)
                self.metrics.inc("queqiao_frames_rejected_total", (link, "internal_error"), len(batch))
            if chain.onboard_time is not None:
                self.metrics.set("queqiao_spacecraft_onboard_time_seconds", (name,), chain.onboard_time)

    def _reject(self, link: str, reason: str, detail: str) -> None:
        self.metrics.inc("queqiao_frames_rejected_total", (link, reason))
        self.metrics.inc("queqiao_chain_stage_total", ("route", reason))
        self.log.warning(f"{link}:{reason}", "link %s: frame rejected (%s): %s", link, reason, detail)
