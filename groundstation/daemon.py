"""The ground-station daemon: links in, archive first, the frame chain, sinks, HTTP.

    groundstation run --config /etc/queqiao/groundstation.toml

One asyncio TaskGroup holds everything: an ingest task per link, the archive's
periodic fsync (in a worker thread, never on the loop), the MQTT publisher,
status publishing and the HTTP listener.  SIGTERM/SIGINT end it cleanly: the
links close, the archive is synced and closed, MQTT flushes what it holds.

Ingest, per link and per wake-up: take every frame that arrived (datagram
links: one frame per message; stream links: CADUs through a frame
synchroniser, one per source), append them all to the archive in one write,
then hand the batch to the chain.  A frame is archived before anything that
could reject it runs.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from groundstation import safelog
from groundstation.api import CommandApi
from groundstation.archive import WRITE_ERROR_REASONS, ArchiveSpool, ArchiveWriter, FrameFlags
from groundstation.auth import Authenticator, Operator
from groundstation.chain import ChainEvents, FrameChain, RateLimitedLog, Sample
from groundstation.commanding import Commander, UplinkSettings
from groundstation.config import Config, ConfigError, LinkConfig, load_config
from groundstation.events import EventedHistory, EventRecorder, EventStore, LinkWatch, from_chain
from groundstation.events_api import EventApi
from groundstation.http import HttpServer
from groundstation.labels import LabelDomains
from groundstation.metrics import LATENCY_BUCKETS, Metrics
from groundstation.mqtt_sink import MqttPublisher
from groundstation.network.consumer import MergeConsumer
from groundstation.network.merge import FrameMerger, Released
from groundstation.network.station import Route, StationForwarder
from groundstation.network.uplink import NetworkUplink, NetworkUplinks, UplinkRelay, UplinkRouter
from groundstation.parameter_archive import SUBDIR as PARAMETERS_SUBDIR
from groundstation.parameter_archive import ParameterArchive
from groundstation.parameter_history import HistoryApi
from groundstation.remote_write import Endpoint, RemoteWriter
from groundstation.uplink_security import FrameSecurity, UplinkSecurityError
from links import Backoff, Link, LinkClosed, open_link
from protocols.ccsds.sync import DatagramCadus, FrameSynchronizer
from protocols.errors import DefinitionError
from protocols.missions import Registry, load_xtce_file
from protocols.missions import registry as mission_registry

log = logging.getLogger("queqiao.daemon")

STATUS_PERIOD_S = 10.0


class StartupError(Exception):
    """The daemon cannot start as configured; the message says why."""


@dataclass
class LinkRuntime:
    config: LinkConfig
    link: Link
    frame_length: int | None = None
    derandomize: bool = True
    synchronizers: dict[str, FrameSynchronizer] = field(default_factory=dict)
    #: A byte stream of back-to-back frames (``format = "frames"`` on tcp, serial, file): their length,
    #: and per source the octets of a frame not yet complete.
    cut_length: int | None = None
    partial: dict[str, bytes] = field(default_factory=dict)
    #: Per source: the synchroniser's skipped_octets already added to queqiao_link_skipped_octets_total.
    skipped_counted: dict[str, int] = field(default_factory=dict)


def freeze_startup_objects() -> None:
    """Keep what start-up built (the mission database's constructs, codecs, the chain: about 100,000
    objects) out of the collector's full passes.  A full pass over them took 40-55 ms on the
    benchmark machine, in which the loop reads nothing: at 50,000 frames/s the socket overflows.
    Frozen, they are never scanned again; what ingest allocates is collected as before."""
    gc.collect()
    gc.freeze()


class Daemon:
    def __init__(self, config: Config, *, registry: Registry | None = None, http_listen: str | None = None,
                 tokens: dict[str, tuple[str, str]] | None = None, own_process: bool = False) -> None:
        """``tokens``: extra API tokens (token -> (operator, role)), e.g. the demo's generated one.
        ``own_process``: the daemon is the process (``groundstation run``), so it may freeze what
        start-up built out of the garbage collector's passes (:func:`freeze_startup_objects`);
        a daemon inside another program (tests, the demo) leaves that program's collector alone."""
        self._extra_tokens = dict(tokens or {})
        self.own_process = own_process
        self.config = config
        self.registry = self._with_xtce(registry or mission_registry(), config)
        self.metrics = Metrics(config.metrics.latency_buckets or LATENCY_BUCKETS)
        enabled = [sc.name for sc in config.spacecraft if sc.enabled] or list(self.registry.names)
        unknown = [n for n in enabled if n not in self.registry]
        if unknown:
            raise StartupError(f"spacecraft {unknown} are not in the mission database; known: {self.registry.names}")
        overrides: dict[str, dict[str, tuple]] = {}
        for lim in config.limits:
            overrides.setdefault(lim.spacecraft, {})[lim.parameter] = (
                lim.warning, lim.critical, lim.persistence, lim.hysteresis)
        self.commanders: dict[str, Commander] = {}
        self.events = ChainEvents(on_event=self._on_event, on_parameter=self._on_parameter,
                                  on_report=self._on_report, on_clcw=self._on_clcw)
        self.auth = self._authenticator() if config.commanding.enabled else None
        self.uplink_security = self._uplink_security() if config.commanding.enabled else {}
        self.chain = FrameChain(self.registry, self.metrics, spacecraft=enabled, events=self.events,
                                limit_overrides=overrides)
        # A frames link takes datagrams that carry a CADU too (a coded spacecraft's emulator sends them).
        self.datagram_cadus = DatagramCadus(chain.profile for chain in self.chain.chains.values())
        for sc in config.spacecraft:
            if sc.light_time_s is not None and sc.name in self.chain.chains:
                self.chain.chains[sc.name].light_time_override = sc.light_time_s
                self.metrics.set("queqiao_light_time_seconds", (sc.name,), sc.light_time_s)
        self.http_listen = http_listen or config.station.http_listen
        self.http: HttpServer | None = None
        self.mqtt: MqttPublisher | None = None
        self.archive: ArchiveWriter | None = None
        self.parameters: ParameterArchive | None = None
        self.remote_writers: list[RemoteWriter] = []
        self.archive_spool: ArchiveSpool | None = None  # in front of the writer: a full disk never stops ingest
        self.links: list[LinkRuntime] = [self._link_runtime(lc) for lc in config.links if lc.enabled]
        self.started = time.time()
        self.sync_log = RateLimitedLog(log)  # noise on a stream link must not flood the log
        # Every counter series exists at 0 from the start (dashboards, rate() and alerts need them).
        via_sites = list(config.merge.uplink) if config.merge.enabled and config.commanding.enabled else []
        commanded = [sc.name for sc in config.spacecraft if sc.enabled and config.commanding.enabled
                     and (sc.uplink is not None or sc.name in via_sites)]
        relayed = [sc.name for sc in config.spacecraft if sc.enabled and sc.uplink is not None
                   and config.network.relay_uplink]
        LabelDomains(links=[r.config.name for r in self.links],
                     spacecraft=[self.registry.spacecraft(n) for n in self.chain.chains], commanded=commanded,
                     limit_overrides={n: list(o) for n, o in overrides.items()},
                     remote_write=[rw.label for rw in config.remote_write],
                     merge_sites=list(config.merge.stations) if config.merge.enabled else [],
                     network_commanded=via_sites, relay_site=config.station.name if relayed else None,
                     relayed=relayed).declare(self.metrics)
        self.metrics.add_source(self._refresh_gauges)
        self.history: EventedHistory | None = None
        self.event_store: EventStore | None = None
        self.recorder = EventRecorder(self.metrics)
        served = {lc.name: [lc.spacecraft] if lc.spacecraft else list(self.chain.chains)
                  for lc in config.links if lc.enabled}
        self.link_watch = LinkWatch(self.recorder, served)
        self.forwarder: StationForwarder | None = None
        self.merger: FrameMerger | None = None
        self.merge_consumer: MergeConsumer | None = None
        self.network_uplinks: NetworkUplinks | None = None  # the merge's: telecommands through the sites
        self.uplink_relay: UplinkRelay | None = None  # a site's: the merge's telecommands to its uplinks
        self.uplink_links: dict[str, Link] = {}  # open uplink links, by spacecraft
        self._network_setup()

    def _network_setup(self) -> None:
        cfg = self.config
        routes = {(chain.profile.version, self.registry.spacecraft(name).scid): name
                  for name, chain in self.chain.chains.items()}
        if cfg.network.enabled:
            self.forwarder = StationForwarder(
                cfg.network, cfg.station.name,
                {key: Route(name, self.chain.chains[name].profile.has_fecf) for key, name in routes.items()},
                cfg.archive.dir, self.metrics, [r.config.name for r in self.links])
        if cfg.merge.enabled:
            self.merger = FrameMerger(routes, stations=cfg.merge.stations, wait_s=cfg.merge.wait_s,
                                      max_age_s=cfg.merge.max_age_s, clock_skew_s=cfg.merge.clock_skew_s)
            self.merge_consumer = MergeConsumer(cfg.network, cfg.merge, self.merger, self.metrics, self._merged)
            if cfg.merge.uplink and cfg.commanding.enabled:
                router = UplinkRouter({name: chain.profile.has_ocf for name, chain in self.chain.chains.items()},
                                      default=cfg.merge.stations[0] if cfg.merge.stations else None)
                self.network_uplinks = NetworkUplinks(cfg.network, router, self.metrics)

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _with_xtce(registry: Registry, config: Config) -> Registry:
        """The mission database plus the spacecraft that ``[[spacecraft]] xtce = "FILE"`` entries define
        (a new Registry: the process-wide one stays as loaded)."""
        entries = [(sc, sc.xtce) for sc in config.spacecraft if sc.xtce is not None]
        if not entries:
            return registry
        combined = Registry(list(registry))
        for sc, path in entries:
            try:
                combined.register(load_xtce_file(path, name=sc.name, scid=sc.scid), origin=str(path))
            except DefinitionError as exc:
                raise StartupError(f"spacecraft {sc.name!r} xtce = {str(path)!r}: {exc}") from None
        combined.check_relays()
        return combined

    def _link_runtime(self, lc: LinkConfig) -> LinkRuntime:
        backoff = Backoff(initial=lc.reconnect_min_s, maximum=lc.reconnect_max_s)
        link = open_link(lc.url, role="in", spacecraft="+", name=lc.name, backoff=backoff)
        runtime = LinkRuntime(lc, link)
        if lc.format == "frames" and lc.url.framing == "stream":
            if lc.spacecraft is None or lc.spacecraft not in self.registry:  # the config check requires it
                raise StartupError(f"link {lc.name}: unknown spacecraft {lc.spacecraft!r}")
            # Frames as a station that decoded the code stores them, back to back: no marker to find.
            runtime.cut_length = self.registry.spacecraft(lc.spacecraft).profile.frame.frame_length
        if lc.format == "cadu":
            if lc.spacecraft is None:
                raise StartupError(f"link {lc.name}: a CADU stream carries one spacecraft's frames; set "
                                   f"links.spacecraft so the synchroniser knows the frame length")
            if lc.spacecraft not in self.registry:
                raise StartupError(f"link {lc.name}: unknown spacecraft {lc.spacecraft!r}")
            profile = self.registry.spacecraft(lc.spacecraft).profile.frame
            # With a Reed-Solomon code a CADU carries the codeblock (frame + check symbols); the chain's
            # RS stage turns it into the frame, after the archive has kept it as received.
            runtime.frame_length = profile.codeblock_length
            runtime.derandomize = profile.randomized
        return runtime

    def _authenticator(self) -> Authenticator:
        auth = Authenticator()
        commanding = self.config.commanding
        try:
            token = os.environ.get(commanding.api_token_env)
            if token:
                auth.add(token, Operator("station", "operator"))
            for op in commanding.operators:
                auth.add(op.resolve_token(), Operator(op.name, op.role))
            for token, (name, role) in self._extra_tokens.items():
                auth.add(token, Operator(name, role))
        except (ValueError, ConfigError) as exc:
            raise StartupError(f"commanding: {exc}") from exc
        if not len(auth):
            raise StartupError(f"commanding is enabled but no token is configured: set {commanding.api_token_env} "
                               "or give [[commanding.operators]]")
        return auth

    def _uplink_security(self) -> dict[str, FrameSecurity]:
        """SDLS for every commanded spacecraft with a key file; one whose profile requires SDLS needs one."""
        out = {}
        via_sites = self.config.merge.uplink if self.config.merge.enabled else ()
        for sc in self.config.spacecraft:
            if not sc.enabled or (sc.uplink is None and sc.name not in via_sites):
                continue
            if sc.sdls_key_file is None:
                if self.registry.spacecraft(sc.name).sdls_required:
                    raise StartupError(f"spacecraft {sc.name} requires SDLS (its profile): its telecommands would all "
                                       "be refused; set sdls_key_file in its [[spacecraft]] (docs/OPERATIONS.md)")
                continue
            try:
                out[sc.name] = FrameSecurity.open(sc.name, sc.sdls_key_file, sc.sdls_spi, self._history_path().parent)
            except UplinkSecurityError as exc:
                raise StartupError(f"spacecraft {sc.name}: {exc}") from None
        return out

    def _history_path(self) -> Path:
        return self.config.commanding.history_file or self.config.archive.dir.parent / "commands.sqlite"

    def _events_path(self) -> Path:
        return self.config.events.file or self._history_path().parent / "events.sqlite"

    async def _start_commanding(self, stack: contextlib.AsyncExitStack, group: asyncio.TaskGroup
                                ) -> list[asyncio.Task]:
        """Uplinks and commanders for every spacecraft with an uplink; returns their timer tasks."""
        tasks = []
        commanding = self.config.commanding
        settings = UplinkSettings(fop_window=commanding.fop_window, fop_timeout_s=commanding.fop_timeout_s,
                                  fop_transmission_limit=commanding.fop_transmission_limit,
                                  verification_timeout_s=commanding.verification_timeout_s)
        assert self.history is not None, "commanding starts only with [auth], which opens the command history"
        for sc in self.config.spacecraft:
            link: Link | NetworkUplink
            if not sc.enabled:
                continue
            if self.network_uplinks is not None and sc.name in self.config.merge.uplink:
                link = self.network_uplinks.uplink(sc.name)
            elif sc.uplink is not None:
                link = await self._open_uplink(stack, sc)
            else:
                continue
            commander = Commander(self.registry.spacecraft(sc.name), link, self.history, self.metrics,
                                  dataclasses.replace(settings, tc_vcid=sc.tc_vcid),
                                  security=self.uplink_security.get(sc.name))
            self.commanders[sc.name] = commander
            tasks.append(group.create_task(commander.run_timers(), name=f"commanding {sc.name}"))
        log.info("commanding enabled for %s", ", ".join(sorted(self.commanders)) or "no spacecraft (no uplinks)")
        return tasks

    async def _open_uplink(self, stack: contextlib.AsyncExitStack, sc) -> Link:
        """The spacecraft's uplink link, opened once (commanding and a site's relay share it)."""
        link = self.uplink_links.get(sc.name)
        if link is None:
            link = self.uplink_links[sc.name] = await stack.enter_async_context(open_link(
                sc.uplink, role="out", spacecraft=sc.name, end="ground", name=f"{sc.name}-uplink", receive=False))
        return link

    async def _start_relay(self, stack: contextlib.AsyncExitStack, group: asyncio.TaskGroup) -> list[asyncio.Task]:
        """A site that relays the merge's telecommands: its uplinks, and the subscription."""
        if not self.config.network.relay_uplink:
            return []
        links = {sc.name: await self._open_uplink(stack, sc) for sc in self.config.spacecraft
                 if sc.enabled and sc.uplink is not None}
        self.uplink_relay = UplinkRelay(self.config.network, self.config.station.name, links, self.metrics)
        return [group.create_task(self.uplink_relay.run(), name="network uplink relay")]

    # ------------------------------------------------------------------ run

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        try:
            self.archive = ArchiveWriter(cfg.archive.dir, inline_sync=False, **_writer_kwargs(cfg))
        except (OSError, RuntimeError) as exc:
            raise StartupError(f"archive {cfg.archive.dir}: {exc}") from exc
        self.archive_spool = ArchiveSpool(self.archive, max_bytes=cfg.archive.buffer_max_bytes)
        if cfg.parameters.enabled:
            try:
                self.parameters = ParameterArchive(cfg.archive.dir / PARAMETERS_SUBDIR, **_parameter_kwargs(cfg))
            except OSError as exc:
                raise StartupError(f"parameter archive {cfg.archive.dir / PARAMETERS_SUBDIR}: {exc}") from exc
        self.remote_writers = _remote_writers(cfg)
        self.events.on_samples = self._on_samples
        try:
            async with contextlib.AsyncExitStack() as stack:
                if cfg.mqtt.enabled:
                    self.mqtt = await stack.enter_async_context(MqttPublisher(
                        cfg.mqtt.url, prefix=cfg.mqtt.topic_prefix, rate_hz=cfg.mqtt.rate_limit_hz,
                        on_change=cfg.mqtt.publish_on_change, buffer_size=cfg.mqtt.buffer_size,
                        client_options=_mqtt_options(cfg), qos=cfg.mqtt.qos))
                self.http = HttpServer(self.http_listen, self.metrics, self.health)
                self.event_store = self.recorder.store = EventStore(
                    self._events_path(), retention_s=cfg.events.retention_s)
                stack.callback(self.event_store.close)
                if self.auth is not None:
                    self.history = EventedHistory(self._history_path(), self.recorder)
                    stack.callback(self.history.close)
                    CommandApi(self.commanders, self.history, self.auth).install(self.http.app)
                    EventApi(self.event_store, self.auth).install(self.http.app)
                    HistoryApi(self.registry, cfg.archive.dir, self.auth).install(self.http.app)
                try:
                    await stack.enter_async_context(self.http)
                except OSError as exc:
                    raise StartupError(f"cannot listen on {self.http_listen}: {exc}") from exc
                for runtime in self.links:
                    await stack.enter_async_context(runtime.link)
                log.info("daemon running: %d link(s), %d spacecraft, metrics at %s/metrics",
                         len(self.links), len(self.chain.chains), self.http.url)
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._ingest(r), name=f"ingest {r.config.name}") for r in self.links]
                    if self.auth is not None:
                        tasks += await self._start_commanding(stack, group)
                    tasks += await self._start_relay(stack, group)
                    if self.network_uplinks is not None:
                        tasks.append(group.create_task(self.network_uplinks.run(), name="network uplink"))
                    tasks.append(group.create_task(self.archive_spool.sync_periodically(), name="archive sync"))
                    tasks.append(group.create_task(self.archive_spool.retry_periodically(), name="archive retry"))
                    tasks.append(group.create_task(self._watch_links(), name="link events"))
                    if self.forwarder is not None:
                        tasks.append(group.create_task(self.forwarder.run(), name="network forward"))
                    if self.merge_consumer is not None:
                        tasks.append(group.create_task(self.merge_consumer.run(sorted(self.chain.chains)),
                                                       name="merge"))
                    if self.parameters is not None:
                        tasks.append(group.create_task(self.parameters.run(), name="parameter archive"))
                    tasks += [group.create_task(w.run(), name=f"remote write ({w.timestamp} time)")
                              for w in self.remote_writers]
                    if self.mqtt is not None:
                        tasks.append(group.create_task(self._publish_status(), name="mqtt status"))
                    if self.own_process:
                        freeze_startup_objects()
                    await stop.wait()
                    log.info("stopping")
                    for task in tasks:
                        task.cancel()
        finally:
            self.archive_spool.close()
            log.info("archive closed: %d frames appended this run", self.archive.frames_appended)

    async def _ingest(self, runtime: LinkRuntime) -> None:
        name = runtime.config.name
        link = runtime.link
        archive = self.archive_spool
        assert archive is not None, "run() opens the archive before the links"
        while True:
            try:
                items = await link.receive_many()
            except LinkClosed:
                left = sum(len(octets) for octets in runtime.partial.values())
                if left:  # a frame stream that ended inside a frame: the octets belong to no whole frame
                    self.metrics.inc("queqiao_link_skipped_octets_total", (name,), left)
                    log.warning("link %s: the data ended %d octets into a frame; they are not a frame", name, left)
                    runtime.partial.clear()
                log.info("link %s: end of data", name)
                return
            # Ground receipt: the kernel's arrival time of the batch's first datagram where the link
            # knows it (UDP), so the export latency includes the time frames waited to be read.
            receipt = getattr(link, "last_receipt", None) or time.time()
            flags: int | list[int]  # one for the whole batch, or per synchronised frame
            if runtime.cut_length is not None:
                frames, flags = self._cut(runtime, items), 0
                if not frames:
                    continue
            elif runtime.frame_length is None:
                frames, cadus = self.datagram_cadus.unwrap([data for _, data in items])
                if cadus:
                    self.metrics.inc("queqiao_link_cadu_datagrams_total", (name,), cadus)
                flags = 0
            else:
                frames, flags = self._synchronise(runtime, items)
                if not frames:
                    continue
            # Archive first: nothing below may lose a frame that was received.  The chain is given
            # the archived receipt time, not the float it came from, so that a replay of the archive
            # derives exactly the same ground times (to the microsecond) as the live run did.
            receipt_ns = int(receipt * 1e9)
            receipt = receipt_ns / 1e9
            archive.append_many(frames, link=name, time_ns=receipt_ns, flags=flags)
            if self.forwarder is not None:
                self.forwarder.offer(frames, name, receipt_ns, flags)
            self.metrics.inc("queqiao_link_bytes_received_total", (name,), sum(len(d) for _, d in items))
            # A CADU link is pinned to its spacecraft: no routing by a header RS has not yet corrected.
            cut_or_synced = runtime.frame_length is not None or runtime.cut_length is not None
            pinned = runtime.config.spacecraft if cut_or_synced else None
            self.chain.process(name, frames, receipt, spacecraft=pinned)

    def _merged(self, released: list[Released]) -> None:
        """The merge's output: archived under the site that carried each frame, then one chain for all."""
        archive = self.archive_spool
        assert archive is not None, "run() opens the archive before the merge"
        start = 0
        for i in range(1, len(released) + 1):
            if i == len(released) or (released[i].message.station, released[i].message.receipt_ns) != \
                    (released[start].message.station, released[start].message.receipt_ns):
                first = released[start].message
                archive.append_many([r.message.frame for r in released[start:i]], link=first.station,
                                    time_ns=first.receipt_ns)
                start = i
        receipt = min(r.message.receipt_ns for r in released) / 1e9
        if self.network_uplinks is not None:  # which site carries each spacecraft's freshest CLCW
            self.network_uplinks.router.observe(released)
        self.chain.process("merge", [r.message.frame for r in released], receipt)

    @staticmethod
    def _cut(runtime: LinkRuntime, items) -> list[bytes]:
        """Whole frames of a back-to-back frame stream; a frame's first octets wait for the rest."""
        size = runtime.cut_length
        assert size is not None, "only frame streams are cut"
        frames: list[bytes] = []
        for source, chunk in items:
            data = runtime.partial.pop(source, b"") + chunk
            whole = len(data) - len(data) % size
            frames += [data[i:i + size] for i in range(0, whole, size)]
            if whole < len(data):
                runtime.partial[source] = data[whole:]
        return frames

    def _synchronise(self, runtime: LinkRuntime, items) -> tuple[list[bytes], list[int]]:
        assert runtime.frame_length is not None, "only stream links with a frame length are synchronised"
        frames: list[bytes] = []
        flags: list[int] = []
        for source, chunk in items:
            sync = runtime.synchronizers.get(source)
            if sync is None:
                sync = runtime.synchronizers[source] = FrameSynchronizer(
                    runtime.frame_length, derandomize=runtime.derandomize)
            result = sync.feed(chunk)
            name = runtime.config.name
            for event in result.events:
                self.metrics.inc("queqiao_chain_stage_total", ("sync", event.kind))
                if event.kind != "lock":
                    self.sync_log.warning(f"{name}:sync:{event.kind}", "link %s (%s): sync %s: %s", name,
                                          safelog.escape(source, 100), event.kind, event.detail)
            # Octets that belong to no frame (noise, garbage, dropped frames), counted as the synchroniser goes.
            skipped = sync.counters["skipped_octets"]
            self.metrics.inc("queqiao_link_skipped_octets_total", (name,),
                             skipped - runtime.skipped_counted.get(source, 0))
            runtime.skipped_counted[source] = skipped
            for frame in result.frames:
                frames.append(frame.data)
                flags.append(int(FrameFlags.SYNC_ERROR) if frame.flywheel else 0)
        return frames, flags

    # ------------------------------------------------------------------ sinks

    def _on_parameter(self, spacecraft: str, subsystem: str, name: str, unit: str, sample: Sample) -> None:
        if self.mqtt is not None:
            self.mqtt.parameter(spacecraft, subsystem, name, value=sample.value, raw=sample.raw, unit=unit,
                                onboard_time=sample.onboard_time, ground_time=sample.ground_time,
                                limit=int(sample.limit))

    def _on_report(self, spacecraft: str, definition, values: dict, ground_time: float) -> None:
        commander = self.commanders.get(spacecraft)
        if commander is not None:
            commander.on_report(definition, values)

    def _on_clcw(self, spacecraft: str, clcw: dict) -> None:
        commander = self.commanders.get(spacecraft)
        if commander is not None:
            commander.on_clcw(clcw)

    def _on_samples(self, spacecraft: str, definition, raw, onboard, ground_time: float) -> None:
        """Every decoded housekeeping group: to the parameter archive and every remote-write endpoint."""
        if self.parameters is not None:
            self.parameters.add(spacecraft, definition, raw, onboard, ground_time)
        for writer in self.remote_writers:
            writer.add(spacecraft, definition, raw, onboard, ground_time)

    def _on_event(self, spacecraft: str, event: dict) -> None:
        self.recorder.record(from_chain(spacecraft, event))
        if self.mqtt is not None:
            self.mqtt.event(spacecraft, event)

    async def _watch_links(self) -> None:
        """Link up/down and bursts of rejected frames as events (polled: neither is on the hot path)."""
        while True:
            self.link_watch.poll({r.config.name: r.link.stats.up for r in self.links},
                                 self.metrics.series("queqiao_frames_rejected_total"), time.time())
            await asyncio.sleep(1.0)

    async def _publish_status(self) -> None:
        assert self.mqtt is not None, "started only with [mqtt] enabled"
        while True:
            for name, chain in self.chain.chains.items():
                states = [s.limit for s in chain.latest.values()]
                self.mqtt.status(name, {
                    "spacecraft": name, "time": time.time(), "last_frame_time": chain.last_frame_time,
                    "onboard_time": chain.onboard_time,
                    "links": {r.config.name: r.link.stats.up for r in self.links
                              if r.config.spacecraft in (None, name)},
                    "alarms": {"warning": sum(1 for s in states if s == 1), "critical": sum(1 for s in states if s == 2)},
                })
            await asyncio.sleep(STATUS_PERIOD_S)

    def _refresh_gauges(self, metrics: Metrics) -> None:
        for runtime in self.links:
            metrics.set("queqiao_link_up", (runtime.config.name,), int(runtime.link.stats.up))
        if self.archive is not None:
            stats = self.archive.stats()
            metrics.set("queqiao_archive_bytes", (), stats.bytes)
            metrics.set("queqiao_archive_segments", (), stats.segments)
            metrics.set("queqiao_archive_records_total", (), self.archive.frames_appended)
            metrics.set("queqiao_archive_damaged_regions_total", (), self.archive.damaged_regions)
            metrics.set("queqiao_archive_quarantined_files_total", (), self.archive.quarantined)
        if self.parameters is not None:
            samples = self.parameters.stats
            metrics.set("queqiao_parameter_archive_samples_total", (), samples.samples_written)
            metrics.set("queqiao_parameter_archive_samples_dropped_total", (), samples.samples_dropped)
            metrics.set("queqiao_parameter_archive_write_errors_total", (), samples.write_errors)
            metrics.set("queqiao_parameter_archive_pending_samples", (), self.parameters.pending_samples)
        if self.archive_spool is not None:
            spool = self.archive_spool
            metrics.set("queqiao_archive_buffered_frames", (), spool.held_frames)
            metrics.set("queqiao_archive_buffered_bytes", (), spool.held_bytes)
            metrics.set("queqiao_archive_dropped_frames_total", (), spool.dropped_frames)
            for reason in WRITE_ERROR_REASONS:
                metrics.set("queqiao_archive_write_errors_total", (reason,), spool.write_errors[reason])
        if self.merger is not None:
            metrics.set("queqiao_merge_pending_frames", (), self.merger.pending)
            for labels, counts in self.merger.counts.items():
                metrics.set("queqiao_merge_frames_offered_total", labels, counts.offered)
                metrics.set("queqiao_merge_frames_chosen_total", labels, counts.chosen)
                metrics.set("queqiao_merge_duplicates_dropped_total", labels, counts.duplicates)
                metrics.set("queqiao_merge_gaps_filled_total", labels, counts.gaps_filled)
                metrics.set("queqiao_merge_clock_skew_total", labels, counts.clock_skew)
                metrics.set("queqiao_merge_late_frames_total", labels, counts.late)
                metrics.set("queqiao_merge_lateness_seconds", labels, counts.lateness_s)
                for reason, n in counts.rejected.items():
                    metrics.set("queqiao_merge_rejected_total", (*labels, reason), n)
        for writer in self.remote_writers:
            for endpoint in writer.endpoints:
                label = (endpoint.name,)
                metrics.set("queqiao_remote_write_samples_sent_total", label, endpoint.stats.samples_sent)
                metrics.set("queqiao_remote_write_samples_retried_total", label, endpoint.stats.samples_retried)
                metrics.set("queqiao_remote_write_samples_dropped_total", label, endpoint.stats.samples_dropped)
                metrics.set("queqiao_remote_write_queue_samples", label, endpoint.queued_samples)
        if self.mqtt is not None:
            metrics.set("queqiao_mqtt_connected", (), int(self.mqtt.connected))
            metrics.set("queqiao_mqtt_messages_published_total", (), self.mqtt.published)
            metrics.set("queqiao_mqtt_messages_dropped_total", (), self.mqtt.dropped)

    def health(self) -> dict:
        links = {r.config.name: ("up" if r.link.stats.up else "down") for r in self.links}
        status = "ok" if not links or any(state == "up" for state in links.values()) else "degraded"
        archive = self._archive_health()
        if archive["status"] != "ok":
            status = "degraded"
        return {
            "status": status, "station": self.config.station.name, "uptime_s": round(time.time() - self.started, 1),
            "links": links, "spacecraft": sorted(self.chain.chains),
            "archive": archive,
            "mqtt": None if self.mqtt is None else ("connected" if self.mqtt.connected else "disconnected"),
        }

    def _archive_health(self) -> dict:
        # No filesystem paths here: /healthz may be reachable by more people than the host.
        spool = self.archive_spool
        if spool is None:
            return {"status": "ok", "frames_appended": 0}
        health: dict[str, object] = {"status": "degraded" if spool.degraded else "ok",
                                     "frames_appended": spool.writer.frames_appended,
                                     "buffered_frames": spool.held_frames, "dropped_frames": spool.dropped_frames}
        if spool.degraded:
            health["reason"] = spool.reason
            health["detail"] = spool.detail
        return health


def _writer_kwargs(config: Config) -> dict:
    return config.archive.writer_kwargs()


def _parameter_kwargs(config: Config) -> dict:
    """By default the parameter archive keeps its samples as long as the frame archive keeps frames."""
    p = config.parameters
    age = p.retention_max_age_s if p.retention_max_age_s is not None else config.archive.retention_max_age_s
    return {"retention": timedelta(seconds=age) if age is not None else None, "flush_interval": p.flush_interval_s,
            "max_pending_samples": p.max_pending_samples, "flush_samples": p.flush_samples}


def _remote_writers(config: Config) -> list[RemoteWriter]:
    """One writer per timestamp choice (a request is encoded once for all its endpoints)."""
    by_time: dict[str, list[Endpoint]] = {}
    for i, rw in enumerate(config.remote_write):
        try:
            headers = rw.headers(i)
        except ConfigError as exc:
            raise StartupError(str(exc)) from exc
        by_time.setdefault(rw.timestamp, []).append(
            Endpoint(rw.url, name=rw.label, headers=headers, queue_max_samples=rw.queue_max_samples))
    return [RemoteWriter(endpoints, timestamp=timestamp, external_labels={"station": config.station.name})
            for timestamp, endpoints in by_time.items()]


def _mqtt_options(config: Config) -> dict:
    mqtt = config.mqtt
    options: dict = {}
    if mqtt.username:
        options["username"] = mqtt.username
        password = mqtt.password or (os.environ.get(mqtt.password_env) if mqtt.password_env else None)
        if password:
            options["password"] = password
    if mqtt.tls is not None:
        options["tls_context"] = mqtt.tls.context()
    return options


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    safelog.install()  # outside input in any line comes out escaped, one line per record


async def _run_daemon(config: Config, http: str | None) -> int:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    try:
        daemon = Daemon(config, http_listen=http, own_process=True)
        await daemon.run(stop)
    except StartupError as exc:
        log.error("%s", exc)
        return 2
    return 0


def run_command(args) -> int:
    from groundstation.config import ConfigError

    reg = mission_registry()
    try:
        config = load_config(args.config, missions=reg)
        if getattr(args, "merge", False):
            config = dataclasses.replace(config, merge=dataclasses.replace(config.merge, enabled=True))
    except ConfigError as exc:
        print(exc)
        return 2
    except OSError as exc:
        print(f"cannot read {args.config}: {exc}")
        return 2
    configure_logging(args.log_level or config.station.log_level)
    return asyncio.run(_run_daemon(config, args.http))


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the ground-station daemon from a TOML configuration")
    parser.add_argument("--config", required=True, type=Path, help="the daemon's TOML configuration file")
    parser.add_argument("--http", help="HOST:PORT for /metrics, /healthz and the API (overrides station.http_listen)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (overrides station.log_level)")
    parser.set_defaults(func=run_command)
    merge = subparsers.add_parser("merge", help="run the daemon as the network's merge (the [merge] section, enabled)")
    merge.add_argument("--config", required=True, type=Path, help="the merge's TOML configuration file")
    merge.add_argument("--http", help="HOST:PORT for /metrics, /healthz (overrides station.http_listen)")
    merge.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (overrides station.log_level)")
    merge.set_defaults(func=run_command, merge=True)
