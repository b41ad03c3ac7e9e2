"""The spacecraft runtime without I/O: core apps + mission database + a MissionModel.

:class:`FlightSoftware` composes the flight-software core (clocks, bus, scheduler
table, housekeeping, events, storage, faults) with one spacecraft of the mission
database and its physical model.  It turns housekeeping into PUS 3,25 packets
(fast path: one :class:`~protocols.codec.PacketCodec` per packet definition),
events into PUS 5 reports, multiplexes packets into transfer frames per virtual
channel at the downlink frame rate, and takes telecommands in (TC frames, FARM-1,
PUS 1 verification).  Time only moves through the scheduler, so with a virtual
clock a run is exactly reproducible; :class:`flightsw.runtime.Emulator` adds the
links and real time.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cython_ext import crc as _crc
from flightsw.core import (
    EventApp,
    Executive,
    FaultApp,
    FaultSet,
    HkPacket,
    HousekeepingApp,
    OnboardClock,
    OnboardStore,
    PassSchedule,
    ScheduleEntry,
    Scheduler,
    SimClock,
    StorageApp,
)
from flightsw.core.app import App
from flightsw.core.bus import Message
from flightsw.core.events import Event
from flightsw.core.faults import FaultSpec, parse_fault
from flightsw.core.msgids import (
    EVENT_FAULT_ACTIVATED,
    EVENT_FAULT_CLEARED,
    EVENT_HK_GENERATION_CHANGED,
    EVENT_HK_PERIOD_CHANGED,
    EVENT_LINK_STATE,
    EVENT_STORAGE_DUMP_COMPLETED,
    MID_FAULT_CHECK,
    MID_HK_WAKEUP,
    MID_LINK_CHECK,
    MID_MODEL_STEP,
)
from flightsw.model import RUNTIME_COMMANDS, CommandOutcome, MissionModel, NotMine
from flightsw.runtime.generic import GenericModel
from flightsw.runtime.reports import Ack, ReportTable
from flightsw.runtime.uplink import TcReceiver, TcSecurity
from protocols.ccsds.clcw import Clcw
from protocols.ccsds.sdls import DEFAULT_WINDOW, SecurityAssociation, SecurityError
from protocols.ccsds.sync import CaduEncoder
from protocols.ccsds.vcmux import FrameMux
from protocols.codec import PacketCodec
from protocols.errors import ProtocolError
from protocols.missions import Command, HousekeepingPacket, Spacecraft
from protocols.missions.common import EXECUTION_FAILURES, MISSION_FUNCTIONS
from protocols.parameters import States

_CONSTRAINT_VIOLATED = next(code for code, name in EXECUTION_FAILURES.items() if name == "CONSTRAINT_VIOLATED")

log = logging.getLogger("queqiao.flightsw.runtime")

#: Scheduler minor frame rate.
TICK_HZ = 10
#: Default downlink bit rate when the mission profile gives no symbol rate.
DEFAULT_BITRATE = 64_000.0
#: Subsystems whose mission commands still run in SAFE mode.
SAFE_SUBSYSTEMS = frozenset({"obdh", "power", "thermal", "comms"})
#: Commands the runtime executes itself (the model is asked first only for POWER_INSTRUMENT).
SECONDARY_TC_OFFSET = 6


@dataclass
class RuntimeConfig:
    """Everything about one emulated spacecraft's run that is not the links."""

    seed: int = 0
    #: UTC instant of sim time 0 (default: now, whole seconds).
    start: datetime | None = None
    time_scale: float = 1.0
    #: A virtual clock: time moves only when stepped (tests, benchmarks).
    virtual: bool = False
    #: Downlink bit rate (channel bits incl. ASM); None: the profile's symbol rate, else 64 kbit/s.
    bitrate: float | None = None
    faults: Sequence[str] = ()
    #: Ground passes as (start, end) sim seconds; None: the link is always up.
    passes: Sequence[tuple[float, float]] | None = None
    #: Capacity of each packet store in bytes.
    store_bytes: int = 4 << 20
    farm_window: int = 10
    tc_vcid: int = 0
    drift_ppm: float = 0.0
    #: Onboard time epoch: None = CCSDS 1958 TAI, else a UTC instant the counter starts from (UTC scale).
    epoch: datetime | None = None
    #: Housekeeping period overrides, packet name -> seconds.
    hk_periods: Mapping[str, float] = field(default_factory=dict)
    #: Housekeeping packets disabled at start.
    hk_disabled: Sequence[str] = ()
    #: SDLS security associations by SPI (CCSDS 355.0-B-2); given, every TC frame must pass them.
    sdls_associations: Mapping[int, SecurityAssociation] | None = None
    #: Whether TC frames must be authenticated; None: as the spacecraft's profile says.  Required
    #: without associations, every frame is refused.
    sdls_required: bool | None = None
    #: Anti-replay window: how far beyond the last accepted sequence number a frame may be.
    sdls_window: int = DEFAULT_WINDOW

    def start_utc(self) -> datetime:
        if self.start is not None:
            return self.start if self.start.tzinfo else self.start.replace(tzinfo=UTC)
        return datetime.now(UTC).replace(microsecond=0)


@dataclass
class _Running:
    """A command whose execution takes simulated time."""

    command: Command
    request: bytes
    apid: int
    ack: Ack
    end: float
    step: float
    next_progress: float
    step_no: int = 0


class _ModelApp(App):
    """Steps the mission model at 1 Hz and watches the safe-mode fault."""

    subscriptions = (MID_MODEL_STEP,)

    def __init__(self, runtime: FlightSoftware) -> None:
        super().__init__("MODEL")
        self.runtime = runtime
        self.last = 0.0

    def handle_message(self, message: Message) -> None:
        t = self.now()
        dt, self.last = t - self.last, t
        rt = self.runtime
        rt.model.step(t, dt)
        if rt.faults.safe_mode_requested() and rt.model.mode != "SAFE":
            rt.enter_safe_mode("WATCHDOG")


def _eng_bounds(param) -> tuple[float, float] | None:
    """The engineering range the raw field can hold (None for floats and states)."""
    if param.calibration.is_state or param.domain.is_float:
        return None
    a = float(param.calibration.to_eng(param.domain.minimum))
    b = float(param.calibration.to_eng(param.domain.maximum))
    return (min(a, b), max(a, b))


class _HkEncoder:
    """One housekeeping packet definition on the fast path."""

    def __init__(self, packet: HousekeepingPacket) -> None:
        self.packet = packet
        self.codec = PacketCodec(packet.construct, name=packet.name)
        self.params = [(path.removeprefix("hk."), path, param, _eng_bounds(param))
                       for path, param in packet.parameters()]
        self.leaves = [leaf for leaf, *_ in self.params]

    def columns(self, values: Mapping[str, Any]) -> dict[str, Any]:
        cols: dict[str, Any] = {}
        for leaf, path, _param, bounds in self.params:
            v = values[leaf]
            if bounds is not None:
                v = float(v)
                if not math.isfinite(v):
                    v = bounds[0]
                v = min(max(v, bounds[0]), bounds[1])
            cols[path] = v
        return cols

    def encode(self, values: Mapping[str, Any], sequence_count: int, coarse: int, fine: int) -> bytes:
        cols = self.columns(values)
        cols["primary.sequence_count"] = sequence_count
        cols["secondary.time.coarse"] = coarse
        cols["secondary.time.fine"] = fine
        return self.codec.encode_many(cols, count=1)

    def encode_many(self, rows: Sequence[Mapping[str, Any]], sequence_counts, coarse, fine) -> bytes:
        """Many reports of this packet at once (the flood benchmark)."""
        cols: dict[str, Any] = {}
        for leaf, path, _param, bounds in self.params:
            values = [r[leaf] for r in rows]
            if bounds is not None:
                cols[path] = np.clip(np.asarray(values, dtype=float), *bounds)
            else:
                cols[path] = np.asarray(values)
        cols["primary.sequence_count"] = np.asarray(sequence_counts)
        cols["secondary.time.coarse"] = np.asarray(coarse)
        cols["secondary.time.fine"] = np.asarray(fine)
        return self.codec.encode_many(cols, count=len(rows))


class FlightSoftware:
    """One emulated spacecraft, without I/O.  See the module docstring.

    Drive it with :meth:`advance_to` (virtual clock) or let :class:`Emulator` run
    :attr:`scheduler` in real time; take frames with :meth:`frames_until` and give
    it uplink data with :meth:`receive_tc_frame`.
    """

    def __init__(self, spacecraft: Spacecraft, config: RuntimeConfig | None = None, *,
                 model_class: type[MissionModel] | None = None) -> None:
        self.spacecraft = sc = spacecraft
        self.config = cfg = config or RuntimeConfig()
        self.counters: Counter[str] = Counter()
        start = cfg.start_utc()
        self.clock = SimClock(start, time_scale=cfg.time_scale, virtual=cfg.virtual)
        if cfg.epoch is None:
            self.onboard = OnboardClock(self.clock, drift_ppm=cfg.drift_ppm)
        else:
            self.onboard = OnboardClock.mission_epoch(self.clock, cfg.epoch, drift_ppm=cfg.drift_ppm)
        self.executive = ex = Executive(self.clock, self.onboard, spacecraft=sc.name)
        # Apps may report events while the runtime is still being built (the store's first link
        # state): they wait here until packets can be built and framed.
        self._early_events: list[Event] | None = []
        self.events_app = ex.add(EventApp(self._event_sink))
        self.faults = FaultSet([sensor_target(parse_fault(f) if isinstance(f, str) else f, sc.name)
                                for f in cfg.faults], seed=cfg.seed)
        ex.add(FaultApp(self.faults))
        # Packet stores: one per store the database names (DUMP_STORAGE's choices).
        try:
            store_states = sc.command("DUMP_STORAGE").arguments["store"].calibration
        except KeyError:
            store_states = None
        store_names = list(store_states.codes) if isinstance(store_states, States) else ["HOUSEKEEPING"]
        self.link_schedule = PassSchedule(cfg.passes or (), default_up=cfg.passes is None)
        self.stores = {name: OnboardStore(cfg.store_bytes, link=self.link_schedule, name=name,
                                          on_event=ex.reporter("STO")) for name in store_names}
        self.storage_app = ex.add(StorageApp(self.stores[store_names[0]]))
        # The model.
        if model_class is None:
            from flightsw.model import MODELS

            load_models()
            model_class = MODELS.get(sc.name, GenericModel)
        self.model: MissionModel = model_class(sc, seed=cfg.seed, start_utc=start, emit=self._model_event,
                                               faults=self.faults)
        ex.add(_ModelApp(self))
        # Housekeeping.
        self.encoders = {p.name: _HkEncoder(p) for p in sc.housekeeping}
        names = {p.name for p in sc.housekeeping}
        unknown = sorted((set(cfg.hk_periods) | set(cfg.hk_disabled)) - names)
        if unknown:
            raise ValueError(f"{sc.name} has no housekeeping packet(s) {unknown}; known: {', '.join(sorted(names))}")
        hk = []
        for p in sc.housekeeping:
            period = float(cfg.hk_periods.get(p.name, p.period))
            hk.append(HkPacket(p.name, period, p.name not in cfg.hk_disabled))
        self.hk_app: HousekeepingApp = ex.add(HousekeepingApp(hk, self._hk_provider, self._hk_sink))
        self.scheduler = Scheduler.for_executive(ex, [
            ScheduleEntry("MODEL", MID_MODEL_STEP, TICK_HZ),
            ScheduleEntry("FLT", MID_FAULT_CHECK, TICK_HZ),
            ScheduleEntry("STO", MID_LINK_CHECK, TICK_HZ),
            ScheduleEntry("HK", MID_HK_WAKEUP, 1),
        ], tick_hz=TICK_HZ)
        self.scheduler.on_tick(self._on_tick)
        # Packets and frames.
        self.sequence: dict[int, int] = {}
        self.reports = ReportTable(sc)
        self.mission_profile = sc.profile
        self.frame_profile = sc.profile.frame
        self.mux = FrameMux(self.frame_profile, sc.scid)
        self.realtime_vc = sc.profile.realtime_vc
        self.playback_vc = sc.profile.playback_vc
        self.bitrate = float(cfg.bitrate or sc.profile.symbol_rate or DEFAULT_BITRATE)
        # Reed-Solomon where the profile has it: the CADU carries the codeblock (frame + check symbols).
        self.cadu_encoder = CaduEncoder(self.frame_profile)
        self.cadu_length = self.cadu_encoder.cadu_length
        self.frame_rate = self.bitrate / (8 * self.cadu_length)
        self._frame_index = 0
        self.frames_skipped = 0
        # Telecommands.
        required = sc.sdls_required if cfg.sdls_required is None else cfg.sdls_required
        security = (TcSecurity(cfg.sdls_associations or {}, window=cfg.sdls_window)
                    if required or cfg.sdls_associations else None)
        self.tc = TcReceiver(sc.scid, vcid=cfg.tc_vcid, window=cfg.farm_window, security=security)
        self._security_reported: dict[str, float] = {}
        self.commands_by_header: dict[tuple[int, int, int], list[Command]] = {}
        for c in sc.commands:
            self.commands_by_header.setdefault((c.apid, c.service, c.subtype), []).append(c)
        self.tc_apids = sorted({c.apid for c in sc.commands})
        #: Called with each telecommand handed to execution (the onboard command log, e.g. JSON lines).
        self.command_log: Callable[[dict[str, Any]], None] | None = None
        self.running: list[_Running] = []
        self.safe_reason: str | None = None
        self.overrides: dict[str, Any] = {}
        self.tc_accepted = 0
        self.tc_rejected = 0
        self._update_clcw()
        for name in store_names:
            self.stores[name].on_event = ex.reporter("STO")
        early, self._early_events = self._early_events, None
        for event in early:
            self._event_sink(event)

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        return self.clock.now()

    def rebase_clock(self) -> None:
        """A real clock starts counting now (the emulator calls this as it starts, so the time spent
        between construction and start does not show up as scheduler overruns)."""
        clock = self.clock
        if not clock.virtual and self.scheduler.tick == 0:
            clock._anchor_wall = clock._monotonic()  # noqa: SLF001 - SimClock has no public re-anchor
            clock._anchor_sim = clock._last  # noqa: SLF001

    def advance_to(self, t: float) -> list[bytes]:
        """Virtual clock: run every scheduler tick up to ``t`` and return the frames due meanwhile."""
        frames: list[bytes] = []
        while self.scheduler.tick_time() <= t + 1e-9:
            tick_t = self.scheduler.tick_time()
            frames += self.frames_until(tick_t - 1e-9)
            self.scheduler.step()
        frames += self.frames_until(t)
        return frames

    def _on_tick(self, tick: int, t: float) -> None:
        if not self.running:
            return
        for run in list(self.running):
            while run.step and run.next_progress < run.end - 1e-9 and run.next_progress <= t + 1e-9:
                run.step_no += 1
                if run.ack & Ack.PROGRESS:
                    self._report(run.apid, "progress", run.request, step=run.step_no)
                run.next_progress += run.step
            if t + 1e-9 >= run.end:
                self.running.remove(run)
                if run.ack & Ack.COMPLETION:
                    self._report(run.apid, "completed", run.request)

    # ------------------------------------------------------------------ packets out

    def _next_seq(self, apid: int) -> int:
        n = self.sequence.get(apid, 0)
        self.sequence[apid] = (n + 1) & 0x3FFF
        return n

    def _store_for(self, kind: str, subsystem: str, name: str) -> OnboardStore:
        """HK of a payload with its own store goes there, other payload HK to SCIENCE, platform HK to
        HOUSEKEEPING; events and reports to EVENTS; the first store when a named one does not exist."""
        stores = self.stores
        if kind == "housekeeping":
            wanted = [name.upper(), "SCIENCE" if subsystem == "payload" else "HOUSEKEEPING", "HOUSEKEEPING"]
        else:
            wanted = ["EVENTS", "HOUSEKEEPING"]
        for key in wanted:
            if key in stores:
                return stores[key]
        return next(iter(stores.values()))

    def emit_packet(self, packet: bytes, apid: int, *, kind: str = "report", subsystem: str = "obdh",
                    name: str = "") -> None:
        """Route one TM packet: live on the realtime VC during a pass, else into a packet store."""
        self.counters["packets"] += 1
        if self.link_schedule.link_up(self.clock.now()):
            self.mux.push(self.realtime_vc, packet)
            self.counters["packets_live"] += 1
        else:
            self._store_for(kind, subsystem, name).store(packet, self.onboard.seconds(), apid)
            self.counters["packets_stored"] += 1

    def _hk_provider(self, name: str) -> Mapping[str, Any]:
        values = dict(self.model.housekeeping(name))
        enc = self.encoders[name]
        if "obc_mode" in enc.leaves:
            values["obc_mode"] = "SAFE" if self.model.mode == "SAFE" else values.get("obc_mode", "NOMINAL")
        if "tc_accepted" in enc.leaves:
            values["tc_accepted"] = self.tc_accepted & 0xFFFF
            values["tc_rejected"] = min(self.tc_rejected, 0xFFFF)
        security = self.tc.security
        if security is not None and "sdls_frames_accepted" in enc.leaves:
            values["sdls_frames_accepted"] = security.accepted & 0xFFFF
            for reason in ("unauthenticated", "forged", "replayed", "out_of_window"):
                values[f"sdls_rejected_{reason}"] = min(security.rejected[reason], 0xFFFF)
            values["sdls_last_sequence"] = security.last_sequence & 0xFFFFFFFF
        if "storage_used" in enc.leaves:
            used = sum(s.used_bytes for s in self.stores.values())
            cap = sum(s.capacity_bytes for s in self.stores.values())
            values["storage_used"] = 100.0 * used / cap
        for key, value in self.overrides.items():
            if key in values:
                values[key] = value
        if self.faults.faults:
            values = self.faults.apply_all(values, prefix=f"{self.spacecraft.name}.{name}")
        return values

    def _hk_sink(self, name: str, values: Mapping[str, Any], onboard) -> None:
        enc = self.encoders[name]
        p = enc.packet
        try:
            data = enc.encode(values, self._next_seq(p.apid), onboard.coarse, onboard.fine)
        except (ProtocolError, KeyError, ValueError, TypeError) as exc:
            self.counters["hk_build_errors"] += 1
            log.error("housekeeping %s not built: %s", name, exc)
            return
        self.emit_packet(data, p.apid, kind="housekeeping", subsystem=p.subsystem, name=name)

    # -- events

    def _model_event(self, name: str, **aux: Any) -> None:
        try:
            ev = self.spacecraft.event(name)
        except KeyError:
            self.counters["unknown_model_events"] += 1
            log.warning("model raised event %r, which %s does not define", name, self.spacecraft.name)
            return
        self.executive.report_event("MODEL", ev.event_id, ev.severity, ev.description, aux)

    def _event_sink(self, event: Event) -> None:
        if self._early_events is not None:
            self._early_events.append(event)
            return
        try:
            ev = self.spacecraft.event(event.event_id)
        except KeyError:
            # A mission that does not define one of the core's events: it is logged only.
            self.counters["events_not_in_database"] += 1
            return
        data = dict(event.data)
        if event.event_id == EVENT_HK_PERIOD_CHANGED and "packet" in data:
            aux = {"sid": data["packet"].upper(), "period": data["period_s"]}
        elif event.event_id == EVENT_HK_GENERATION_CHANGED and "packet" in data:
            aux = {"sid": data["packet"].upper(), "enabled": "ENABLED" if data["enabled"] else "DISABLED"}
        elif event.event_id == EVENT_STORAGE_DUMP_COMPLETED and "packets" in data:
            aux = {"store": str(data.get("store", "HOUSEKEEPING")).upper(), "packets": data["packets"]}
        elif event.event_id in (EVENT_FAULT_ACTIVATED, EVENT_FAULT_CLEARED) and "fault" in data:
            slot = next((i for i, f in enumerate(self.faults.faults) if f.name == data["fault"]), 0)
            aux = {"slot": slot, "kind": str(data.get("kind", "stuck")).upper().replace("-", "_")}
        elif event.event_id == EVENT_LINK_STATE and "up" in data:
            aux = {"up": "UP" if data["up"] else "DOWN", "stored": data.get("items", 0),
                   "stored_bytes": data.get("used_bytes", 0)}
        else:
            aux = data
        body = next(s for s in ev.construct.subcons if s.name == "aux").subcon
        wanted = [s.name for s in body.subcons if s.name]
        aux = {k: aux.get(k, 0) for k in wanted}
        ot = event.onboard
        try:
            packet = ev.build(aux, sequence_count=self._next_seq(ev.apid), time=(ot.coarse, ot.fine))
        except ProtocolError as exc:
            self.counters["event_build_errors"] += 1
            log.error("event %s not built: %s", ev.name, exc)
            return
        self.counters["events"] += 1
        self.emit_packet(packet, ev.apid, kind="event", subsystem=ev.subsystem, name=ev.name)

    def _report(self, apid: int, role: str, request: bytes, **values: Any) -> None:
        report = self.reports.get(apid, role)
        if report is None:
            self.counters[f"report_{role}_undefined"] += 1
            return
        ot = self.onboard.now()
        fields = [s.name for s in next(s for s in report.construct.subcons if s.name == "report").subcon.subcons
                  if s.name]
        try:
            data = report.build({k: v for k, v in values.items() if k in fields},
                                request=request if "request" in fields else None,
                                sequence_count=self._next_seq(report.apid), time=(ot.coarse, ot.fine))
        except ProtocolError as exc:
            self.counters["report_build_errors"] += 1
            log.error("report %s not built: %s", report.name, exc)
            return
        self.counters[f"report_{role}"] += 1
        self.emit_packet(data, report.apid, kind="report", name=report.name)

    # ------------------------------------------------------------------ frames out

    def _update_clcw(self) -> None:
        if self.frame_profile.has_ocf:
            self.mux.ocf = Clcw(vcid=self.config.tc_vcid, **self.tc.farm.clcw_fields())

    def frame_time(self, index: int | None = None) -> float:
        return (self._frame_index if index is None else index) / self.frame_rate

    def frames_until(self, t: float, *, max_catchup: int = 1000) -> list[bytes]:
        """Frames of every frame slot with time <= ``t`` (after link faults; none outside passes)."""
        behind = int(t * self.frame_rate + 1e-9) + 1 - self._frame_index
        if behind <= 0:
            return []
        if behind > max_catchup:  # a stalled loop does not burst: skip the slots
            skip = behind - max_catchup
            self._frame_index += skip
            self.frames_skipped += skip
            behind = max_catchup
        out: list[bytes] = []
        for _ in range(behind):
            slot_t = self._frame_index / self.frame_rate
            self._frame_index += 1
            if not self.link_schedule.link_up(slot_t):
                continue
            if self.frame_profile.insert_zone_time is not None:
                self.mux.insert_zone = self.frame_profile.insert_zone_at(self.onboard_unix(slot_t))
            frame = self.mux.next_frame()
            self.counters["frames"] += 1
            fate = self.faults.frame_fate(frame) if self.faults.faults else frame
            if fate is None:
                self.counters["frames_lost"] += 1
                continue
            out.append(fate)
        return out

    def onboard_unix(self, t: float | None = None) -> float:
        """What the onboard clock reads at sim time ``t``, as Unix seconds (its drift and offset included)."""
        return self.clock.utc(t).timestamp() + self.onboard.error(t)

    def codeblocks(self, frames: Sequence[bytes]) -> list[bytes]:
        """What follows the ASM: each frame with its Reed-Solomon check symbols (as it is without RS)."""
        return self.cadu_encoder.codeblocks(frames)

    def cadu(self, frame: bytes) -> bytes:
        return self.cadu_encoder.cadus([frame])

    # ------------------------------------------------------------------ telecommands in

    def receive_tc_frame(self, data: bytes) -> None:
        verdict = self.tc.receive(data)
        if verdict.security is not None:
            self._security_rejected(verdict.security)
        if verdict.deliver:
            self._packets_of(verdict.frame.data)  # type: ignore[union-attr]
        self._update_clcw()

    #: Security rejection events: the first of each reason at once, then at most one per this many seconds.
    SECURITY_EVENT_INTERVAL_S = 1.0

    def _security_rejected(self, exc: SecurityError) -> None:
        """Report a frame refused by SDLS: a PUS 5 event and a log line, each bounded in rate (a flood
        of forged frames must not flood the downlink or the log); the counts in HK stay exact."""
        now = self.clock.now()
        last = self._security_reported.get(exc.cause)
        if last is not None and now - last < self.SECURITY_EVENT_INTERVAL_S:
            self.counters["sdls_events_suppressed"] += 1
            return
        self._security_reported[exc.cause] = now
        count = self.tc.security.rejected[exc.cause] if self.tc.security else 0
        log.warning("TC frame refused by SDLS (%s, %d since boot): %s", exc.cause, count, exc)
        try:
            ev = self.spacecraft.event("tc_frame_rejected_security")
        except KeyError:
            return
        self.executive.report_event("TC", ev.event_id, ev.severity, ev.description, {
            "reason": exc.cause.upper(), "spi": exc.spi or 0, "sequence_number": exc.sequence_number or 0,
            "rejected": count})

    def _packets_of(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            if len(data) - pos < 7:
                self._reject(data[pos:pos + 4].ljust(4, b"\0"), None, "INCOMPLETE_OR_BAD_LENGTH", len(data) - pos)
                return
            total = ((data[pos + 4] << 8) | data[pos + 5]) + 7
            self.handle_tc_packet(data[pos:pos + total])
            pos += total

    def _reject(self, request: bytes, apid: int | None, code: str, value: int = 0) -> None:
        self.tc_rejected += 1
        self.counters[f"tc_rejected_{code.lower()}"] += 1
        log.warning("telecommand rejected: %s (data %d)", code, value)
        self._report(apid if apid is not None else self.reports.default_apid, "rejected", request,
                     code=code, data=value & 0xFFFFFFFF)

    def handle_tc_packet(self, packet: bytes) -> None:
        """Verify and execute one PUS TC packet, with the PUS 1 reports its flags ask for."""
        request = bytes(packet[:4]).ljust(4, b"\0")
        word = int.from_bytes(packet[:2], "big") if len(packet) >= 2 else 0
        apid = word & 0x7FF
        report_apid = apid if apid in self.tc_apids else None
        if len(packet) < 13 or ((packet[4] << 8) | packet[5]) + 7 != len(packet):
            return self._reject(request, report_apid, "INCOMPLETE_OR_BAD_LENGTH", len(packet))
        if not (word >> 12) & 1 or not (word >> 11) & 1:
            return self._reject(request, report_apid, "ILLEGAL_TYPE", word >> 11)
        if apid not in self.tc_apids:
            return self._reject(request, None, "ILLEGAL_APID", apid)
        if _crc.crc16(bytes(packet[:-2])) != int.from_bytes(packet[-2:], "big"):
            return self._reject(request, apid, "BAD_CHECKSUM", int.from_bytes(packet[-2:], "big"))
        ack = Ack(packet[SECONDARY_TC_OFFSET] & 0x0F)
        service, subtype = packet[SECONDARY_TC_OFFSET + 1], packet[SECONDARY_TC_OFFSET + 2]
        candidates = self.commands_by_header.get((apid, service, subtype))
        if not candidates:
            known = any(k[0] == apid and k[1] == service for k in self.commands_by_header)
            return self._reject(request, apid, "ILLEGAL_SUBTYPE" if known else "ILLEGAL_TYPE", (service << 8) | subtype)
        command = None
        for c in candidates:
            if c.key_offset is None:
                command = c
                break
            key_at = c.key_offset
            if len(packet) >= key_at + 2 and int.from_bytes(packet[key_at:key_at + 2], "big") == c.key:
                command = c
                break
        if command is None:
            off = candidates[0].key_offset or 0
            return self._reject(request, apid, "ILLEGAL_ARGUMENT", int.from_bytes(packet[off:off + 2], "big"))
        if len(packet) != command.size:
            return self._reject(request, apid, "INCOMPLETE_OR_BAD_LENGTH", len(packet))
        try:
            arguments = command.parse_arguments(bytes(packet))
        except ProtocolError as exc:
            return self._reject(request, apid, "ILLEGAL_ARGUMENT", _argument_offset(command, exc))
        self.tc_accepted += 1
        self.counters["tc_accepted"] += 1
        log.info("telecommand %s %s accepted", command.name, arguments)
        if self.command_log is not None:
            self.command_log({"sim_time": self.clock.now(), "apid": apid,
                              "sequence_count": int.from_bytes(packet[2:4], "big") & 0x3FFF,
                              "command": command.name, "arguments": arguments})
        if ack & Ack.ACCEPTANCE:
            self._report(apid, "accepted", request)
        self._execute(command, arguments, request, apid, ack)

    def _refused_in_mode(self, command: Command, arguments: Mapping[str, Any]) -> bool:
        if self.model.mode != "SAFE":
            return False
        if command.name == "POWER_INSTRUMENT":
            return arguments.get("state") == "ON"
        if command.function_id is not None and command.function_id >= MISSION_FUNCTIONS:
            return command.subsystem not in SAFE_SUBSYSTEMS
        return False

    def _fail(self, apid: int, request: bytes, stage: str, code: str, data: int = 0) -> None:
        # Failures are always reported, at the stage where they happen.
        self.counters[f"tc_failed_{code.lower()}"] += 1
        self._report(apid, stage, request, code=code, data=data & 0xFFFFFFFF)

    def _execute(self, command: Command, arguments: dict[str, Any], request: bytes, apid: int, ack: Ack) -> None:
        if self._refused_in_mode(command, arguments):
            return self._fail(apid, request, "start_failed", "REFUSED_IN_MODE")
        name = command.name
        outcome: CommandOutcome | None = None
        if name == "POWER_INSTRUMENT" or name not in RUNTIME_COMMANDS:
            try:
                outcome = self.model.execute(name, arguments)
            except NotMine:
                outcome = None
            except Exception:  # noqa: BLE001 - a model bug fails the command, not the spacecraft
                log.exception("model failed executing %s", name)
                return self._fail(apid, request, "start_failed", "EXECUTION_FAILED")
        if outcome is None:
            try:
                outcome = self._execute_runtime(command, arguments, apid)
            except (KeyError, ValueError) as exc:
                log.warning("telecommand %s failed: %s", name, exc)
                return self._fail(apid, request, "start_failed", "EXECUTION_FAILED")
        if not outcome.ok:
            return self._fail(apid, request, "start_failed", _failure_name(outcome.error_code),
                              int(outcome.data.get("value", 0)) if outcome.data else 0)
        if ack & Ack.START:
            self._report(apid, "started", request)
        if name == "PING":
            self._report(apid, "ping_reply", request)
        if outcome.duration > 0:
            now = self.clock.now()
            step = outcome.progress_step if outcome.progress_step > 0 else 0.0
            self.running.append(_Running(command, request, apid, ack, now + outcome.duration, step,
                                         now + step if step else math.inf))
            return
        if ack & Ack.COMPLETION:
            self._report(apid, "completed", request)

    def _execute_runtime(self, command: Command, args: Mapping[str, Any], apid: int) -> CommandOutcome:
        name = command.name
        if name == "PING":
            return CommandOutcome()
        if name in ("SET_HK_PERIOD", "ENABLE_HK", "DISABLE_HK"):
            packet = self.spacecraft.housekeeping_packet(str(args["sid"]).lower()).name
            if name == "SET_HK_PERIOD":
                self.hk_app.set_period(packet, float(args["period"]))
            else:
                self.hk_app.set_enabled(packet, name == "ENABLE_HK")
            return CommandOutcome()
        if name == "ENTER_SAFE_MODE":
            self.enter_safe_mode("COMMANDED")
            return CommandOutcome()
        if name == "LEAVE_SAFE_MODE":
            self.leave_safe_mode()
            return CommandOutcome()
        if name == "DUMP_STORAGE":
            self.dump_storage(str(args["store"]), float(args["start_time"]), float(args["end_time"]) + 1)
            return CommandOutcome()
        if name == "SET_FAULT":
            slot = int(args["slot"])
            if slot >= len(self.faults.faults):
                return CommandOutcome(ok=False, error_code=_CONSTRAINT_VIOLATED, data={"value": slot},
                                      detail=f"no fault in slot {slot}; {len(self.faults.faults)} defined")
            fault = self.faults.faults[slot]
            if args["state"] == "ACTIVE":
                self.faults.activate(fault.name, self.clock.now())
            else:
                self.faults.deactivate(fault.name, self.clock.now())
            return CommandOutcome(detail=f"fault {fault.name} {args['state'].lower()}")
        if name == "POWER_INSTRUMENT":
            inst = self.spacecraft.instrument(args["instrument"])
            if inst.power_parameter:
                self.overrides[inst.power_parameter] = args["state"]
            self._model_event("instrument_power_changed", instrument=inst.name, state=args["state"])
            return CommandOutcome()
        raise KeyError(f"no handler for {name}")

    # ------------------------------------------------------------------ operations

    def enter_safe_mode(self, reason: str = "COMMANDED") -> None:
        if self.model.mode == "SAFE":
            return
        self.model.enter_safe_mode(reason)
        self.model.mode = "SAFE"
        self.safe_reason = reason
        for inst in self.spacecraft.instruments:
            if inst.power_parameter and inst.power_parameter in self.overrides:
                self.overrides[inst.power_parameter] = "OFF"
        self._model_event("safe_mode_entered", reason=reason)

    def leave_safe_mode(self) -> None:
        if self.model.mode != "SAFE":
            return
        self.model.exit_safe_mode()
        self.safe_reason = None
        self._model_event("safe_mode_left")

    def dump_storage(self, store: str = "HOUSEKEEPING", start: float | None = None, end: float | None = None) -> int:
        """Queue a store's packets (onboard time in [start, end)) on the playback VC; returns the count."""
        target = self.stores[store.upper()]
        n = 0
        for item in target.dump(start=start, end=end):
            self.mux.push(self.playback_vc, item.data)
            n += 1
        self.counters["packets_dumped"] += n
        return n

    def flood(self, count: int, *, batch: int = 8192, cadus: bool = True) -> Iterator[bytes]:
        """Flood mode: ``count`` housekeeping reports as fast as the CPU allows, framed on the realtime VC.

        The packets cycle through the housekeeping definitions; each batch samples the model once
        per definition and builds every report of that definition with one ``encode_many`` call
        (per-APID sequence counts continue, time stamps are the onboard time of the batch).  Yields
        the CADU stream (``cadus``) or the concatenated frames of each batch.  Ignores the pass
        schedule, the frame rate and the link faults: it measures the packet and frame path.
        """
        defs = list(self.encoders.values())
        done = 0
        while done < count:
            n = min(batch, count - done)
            ot = self.onboard.now()
            share = [n // len(defs) + (1 if i < n % len(defs) else 0) for i in range(len(defs))]
            for enc, k in zip(defs, share, strict=True):
                if not k:
                    continue
                apid = enc.packet.apid
                first = self.sequence.get(apid, 0)
                self.sequence[apid] = (first + k) & 0x3FFF
                values = self._hk_provider(enc.packet.name)
                blob = enc.encode_many([values] * k, (np.arange(first, first + k) & 0x3FFF),
                                       np.full(k, ot.coarse), np.full(k, ot.fine))
                size = enc.codec.size
                push = self.mux.push
                vc = self.realtime_vc
                for i in range(0, k * size, size):
                    push(vc, blob[i:i + size])
            if self.frame_profile.insert_zone_time is not None:
                self.mux.insert_zone = self.frame_profile.insert_zone_at(self.onboard_unix())
            frames = self.mux.frames(flush=done + n >= count)
            self.counters["packets"] += n
            self.counters["frames"] += len(frames)
            done += n
            if cadus:
                yield self.cadu_encoder.cadus(frames)
            else:
                yield b"".join(frames)

    def set_link(self, state: str) -> None:
        """Force the downlink "up" or "down", or back to the pass schedule ("auto")."""
        self.link_schedule.force(state)  # type: ignore[arg-type]

    def link_up(self) -> bool:
        return self.link_schedule.link_up(self.clock.now())

    def status(self) -> dict[str, Any]:
        return {
            "spacecraft": self.spacecraft.name, "sim_time": self.clock.now(), "mode": self.model.mode,
            "frame_rate": self.frame_rate, "bitrate": self.bitrate, "counters": dict(self.counters),
            "tc": dict(self.tc.counters), "farm": self.tc.farm.clcw_fields(),
            "sdls": None if self.tc.security is None else {
                "associations": sorted(self.tc.security.associations), "accepted": self.tc.security.accepted,
                "rejected": dict(self.tc.security.rejected), "last_sequence": dict(self.tc.security.replay.last)},
            "stores": {n: s.housekeeping() for n, s in self.stores.items()},
            "faults": self.faults.describe(),
        }


#: Fault kinds that act on housekeeping values (their targets are parameter names).
SENSOR_FAULTS = frozenset({"stuck", "noise", "bias"})


def sensor_target(spec: FaultSpec, spacecraft: str) -> FaultSpec:
    """Sensor fault targets are ``<spacecraft>.<packet>.<parameter>``; ``<packet>.<parameter>`` and a bare
    ``<parameter>`` (any packet) are accepted and completed with this spacecraft's name."""
    target = spec.target
    if spec.kind not in SENSOR_FAULTS or not target or target.startswith(f"{spacecraft}."):
        return spec
    full = f"{spacecraft}.{target}" if "." in target else f"{spacecraft}.*.{target}"
    return dataclasses.replace(spec, target=full)


def load_models() -> None:
    """Import ``flightsw.missions`` (the physical models register themselves) if it exists."""
    import importlib

    try:
        importlib.import_module("flightsw.missions")
    except ModuleNotFoundError as exc:
        if exc.name not in ("flightsw.missions",):
            raise


def _failure_name(code: int) -> str:
    from protocols.missions.common import EXECUTION_FAILURES

    return EXECUTION_FAILURES.get(code, "EXECUTION_FAILED")


def _argument_offset(command: Command, exc: ProtocolError) -> int:
    """Octet offset of the argument a ProtocolError names (0 when unknown)."""
    name = str(getattr(exc, "field", "") or "").split(".")[-1]
    offset = 0
    for sc in command.construct.subcons:
        if sc.name == "args":
            inner = 0
            for arg in sc.subcon.subcons:
                if arg.name == name:
                    return offset + inner
                inner += arg.sizeof()
            return offset
        offset += sc.sizeof()
    return 0


def spacecraft_summary(sc: Spacecraft) -> dict[str, Any]:
    """What ``flightsw missions --json`` prints for one spacecraft."""
    tc_apids = sorted({c.apid for c in sc.commands})
    tc_apid: int | None
    try:
        tc_apid = sc.command("PING").apid
    except KeyError:
        tc_apid = tc_apids[0] if tc_apids else None
    p = sc.profile
    return {
        "name": sc.name, "scid": sc.scid, "description": sc.description,
        "tm_apids": sorted({pk.apid for pk in [*sc.housekeeping, *sc.events, *(sc.reports or ())]}),
        "tc_apid": tc_apid, "tc_apids": tc_apids,
        "vcids": [vc.vcid for vc in p.virtual_channels],
        "realtime_vc": p.realtime_vc, "playback_vc": p.playback_vc,
        "frame": {"type": p.frame.kind, "length": p.frame.frame_length, "ocf": p.frame.has_ocf,
                  "fecf": p.frame.has_fecf, "randomized": p.frame.randomized},
        "housekeeping": [{"name": h.name, "apid": h.apid, "sid": h.sid, "period": h.period, "size": h.size}
                         for h in sc.housekeeping],
        "commands": [c.name for c in sc.commands],
        "sdls_required": sc.sdls_required,
    }

