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
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from groundstation.archive import ArchiveWriter, FrameFlags
from groundstation.chain import ChainEvents, FrameChain, Sample
from groundstation.config import Config, LinkConfig, load_config
from groundstation.http import HttpServer
from groundstation.metrics import LATENCY_BUCKETS, Metrics
from groundstation.mqtt_sink import MqttPublisher
from links import Backoff, Link, LinkClosed, open_link
from protocols.ccsds.sync import FrameSynchronizer
from protocols.ccsds.tmframe import FrameProfile
from protocols.missions import Registry, registry as mission_registry

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


class Daemon:
    def __init__(self, config: Config, *, registry: Registry | None = None, http_listen: str | None = None,
                 extra_events: ChainEvents | None = None) -> None:
        self.config = config
        self.registry = registry or mission_registry()
        self.metrics = Metrics(config.metrics.latency_buckets or LATENCY_BUCKETS)
        enabled = [sc.name for sc in config.spacecraft if sc.enabled] or list(self.registry.names)
        unknown = [n for n in enabled if n not in self.registry]
        if unknown:
            raise StartupError(f"spacecraft {unknown} are not in the mission database; known: {self.registry.names}")
        overrides: dict[str, dict[str, tuple]] = {}
        for lim in config.limits:
            overrides.setdefault(lim.spacecraft, {})[lim.parameter] = (
                lim.warning, lim.critical, lim.persistence, lim.hysteresis)
        self.events = ChainEvents(on_event=self._on_event, on_parameter=self._on_parameter,
                                  on_report=extra_events.on_report if extra_events else None,
                                  on_clcw=extra_events.on_clcw if extra_events else None)
        self.chain = FrameChain(self.registry, self.metrics, spacecraft=enabled, events=self.events,
                                limit_overrides=overrides)
        for sc in config.spacecraft:
            if sc.light_time_s is not None and sc.name in self.chain.chains:
                self.chain.chains[sc.name].light_time_override = sc.light_time_s
                self.metrics.set("queqiao_light_time_seconds", (sc.name,), sc.light_time_s)
        self.http_listen = http_listen or config.station.http_listen
        self.http: HttpServer | None = None
        self.mqtt: MqttPublisher | None = None
        self.archive: ArchiveWriter | None = None
        self.links: list[LinkRuntime] = [self._link_runtime(lc) for lc in config.links if lc.enabled]
        self.started = time.time()
        self.metrics.add_source(self._refresh_gauges)
        #: Extra routes (the commanding API) register here before run().
        self.on_http_ready: list[Callable[[HttpServer], None]] = []

    # ------------------------------------------------------------------ set-up

    def _link_runtime(self, lc: LinkConfig) -> LinkRuntime:
        backoff = Backoff(initial=lc.reconnect_min_s, maximum=lc.reconnect_max_s)
        link = open_link(lc.url, role="in", spacecraft="+", name=lc.name, backoff=backoff)
        runtime = LinkRuntime(lc, link)
        if lc.format == "cadu":
            if lc.spacecraft is None:
                raise StartupError(f"link {lc.name}: a CADU stream carries one spacecraft's frames; set "
                                   f"links.spacecraft so the synchroniser knows the frame length")
            if lc.spacecraft not in self.registry:
                raise StartupError(f"link {lc.name}: unknown spacecraft {lc.spacecraft!r}")
            profile = FrameProfile.from_mission(self.registry.spacecraft(lc.spacecraft).profile)
            runtime.frame_length = profile.frame_length
            runtime.derandomize = profile.randomized
        return runtime

    # ------------------------------------------------------------------ run

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        try:
            self.archive = ArchiveWriter(cfg.archive.dir, inline_sync=False, **_writer_kwargs(cfg))
        except (OSError, RuntimeError) as exc:
            raise StartupError(f"archive {cfg.archive.dir}: {exc}") from exc
        try:
            async with contextlib.AsyncExitStack() as stack:
                if cfg.mqtt.enabled:
                    self.mqtt = await stack.enter_async_context(MqttPublisher(
                        cfg.mqtt.url, prefix=cfg.mqtt.topic_prefix, rate_hz=cfg.mqtt.rate_limit_hz,
                        on_change=cfg.mqtt.publish_on_change, buffer_size=cfg.mqtt.buffer_size,
                        client_options=_mqtt_options(cfg)))
                self.http = HttpServer(self.http_listen, self.metrics, self.health)
                for hook in self.on_http_ready:
                    hook(self.http)
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
                    tasks.append(group.create_task(self.archive.sync_periodically(), name="archive sync"))
                    if self.mqtt is not None:
                        tasks.append(group.create_task(self._publish_status(), name="mqtt status"))
                    await stop.wait()
                    log.info("stopping")
                    for task in tasks:
                        task.cancel()
        finally:
            self.archive.close()
            log.info("archive closed: %d frames appended this run", self.archive.frames_appended)

    async def _ingest(self, runtime: LinkRuntime) -> None:
        name = runtime.config.name
        link = runtime.link
        while True:
            try:
                items = await link.receive_many()
            except LinkClosed:
                log.info("link %s: end of data", name)
                return
            receipt = time.time()
            if runtime.frame_length is None:
                frames = [data for _, data in items]
                flags = 0
            else:
                frames, flags = self._synchronise(runtime, items)
                if not frames:
                    continue
            # Archive first: nothing below may lose a frame that was received.
            self.archive.append_many(frames, link=name, time_ns=int(receipt * 1e9), flags=flags)
            self.metrics.inc("queqiao_archive_records_total", (), len(frames))
            self.metrics.inc("queqiao_link_bytes_received_total", (name,), sum(len(d) for _, d in items))
            self.chain.process(name, frames, receipt)

    def _synchronise(self, runtime: LinkRuntime, items) -> tuple[list[bytes], list[int]]:
        frames: list[bytes] = []
        flags: list[int] = []
        for source, chunk in items:
            sync = runtime.synchronizers.get(source)
            if sync is None:
                sync = runtime.synchronizers[source] = FrameSynchronizer(
                    runtime.frame_length, derandomize=runtime.derandomize)
            result = sync.feed(chunk)
            for event in result.events:
                self.metrics.inc("queqiao_chain_stage_total", ("sync", event.kind))
                if event.kind != "lock":
                    log.warning("link %s (%s): sync %s: %s", runtime.config.name, source, event.kind, event.detail)
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

    def _on_event(self, spacecraft: str, event: dict) -> None:
        if self.mqtt is not None:
            self.mqtt.event(spacecraft, event)

    async def _publish_status(self) -> None:
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
        if self.mqtt is not None:
            metrics.set("queqiao_mqtt_connected", (), int(self.mqtt.connected))
            metrics.set("queqiao_mqtt_messages_published_total", (), self.mqtt.published)
            metrics.set("queqiao_mqtt_messages_dropped_total", (), self.mqtt.dropped)

    def health(self) -> dict:
        links = {r.config.name: ("up" if r.link.stats.up else "down") for r in self.links}
        status = "ok" if not links or any(state == "up" for state in links.values()) else "degraded"
        return {
            "status": status, "station": self.config.station.name, "uptime_s": round(time.time() - self.started, 1),
            "links": links, "spacecraft": sorted(self.chain.chains),
            "archive": {"dir": str(self.config.archive.dir),
                        "frames_appended": self.archive.frames_appended if self.archive else 0},
            "mqtt": None if self.mqtt is None else ("connected" if self.mqtt.connected else "disconnected"),
        }


def _writer_kwargs(config: Config) -> dict:
    return config.archive.writer_kwargs()


def _mqtt_options(config: Config) -> dict:
    import os
    import ssl

    mqtt = config.mqtt
    options: dict = {}
    if mqtt.username:
        options["username"] = mqtt.username
        password = mqtt.password or (os.environ.get(mqtt.password_env) if mqtt.password_env else None)
        if password:
            options["password"] = password
    if mqtt.tls is not None:
        context = ssl.create_default_context(cafile=str(mqtt.tls.ca) if mqtt.tls.ca else None)
        if mqtt.tls.cert:
            context.load_cert_chain(str(mqtt.tls.cert), str(mqtt.tls.key) if mqtt.tls.key else None)
        options["tls_context"] = context
    return options


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _run_daemon(config: Config, http: str | None) -> int:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    try:
        daemon = Daemon(config, http_listen=http)
        await daemon.run(stop)
    except StartupError as exc:
        log.error("%s", exc)
        return 2
    return 0


def run_command(args) -> int:
    from groundstation.config import ConfigError

    reg = mission_registry()
    try:
        config = load_config(args.config, known_spacecraft=reg.names,
                             known_parameters=lambda sc: [p.name for p in reg.parameters(sc)] if sc in reg else None)
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
