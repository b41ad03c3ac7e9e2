"""`groundstation replay ARCHIVE`: archived frames through the same chain as live ones.

    groundstation replay /var/lib/queqiao/archive --from 2026-11-24T10:00:00Z --spacecraft zhurong
    groundstation replay ARCHIVE --mqtt mqtt://127.0.0.1:1883 --http 127.0.0.1:9109 --hold

Each frame keeps its archived ground receipt time.  With --mqtt the decoded
values are published again; with --http the metrics are served (add --hold to
keep serving after the replay, for a Prometheus to scrape).
"""
from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime
from pathlib import Path

from groundstation.archive import ArchiveReader
from groundstation.chain import ChainEvents, FrameChain, Sample
from groundstation.http import HttpServer
from groundstation.metrics import Metrics
from groundstation.mqtt_sink import MqttPublisher
from groundstation.parameter_archive import SUBDIR as PARAMETERS_SUBDIR
from groundstation.parameter_archive import ParameterArchive, remove_range
from protocols.missions import Registry
from protocols.missions import registry as mission_registry

log = logging.getLogger("queqiao.replay")

#: A replay flushes the parameter archive whenever this many samples are pending (memory stays bounded).
REPLAY_FLUSH_SAMPLES = 2_000_000


def parse_time(text: str) -> int:
    """ISO 8601 (UTC if no zone) or Unix seconds -> ns since the Unix epoch."""
    try:
        return int(float(text) * 1e9)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r}: use ISO 8601 (2026-11-24T10:00:00Z) or Unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1e9)


def frame_route(frame: bytes) -> tuple[int, int] | None:
    """(transfer frame version, SCID) of a frame, or None when it is too short or of another version."""
    if len(frame) < 2:
        return None
    version = frame[0] >> 6
    if version == 0:
        return 0, ((frame[0] & 0x3F) << 4) | (frame[1] >> 4)
    if version == 1:
        return 1, ((frame[0] & 0x3F) << 2) | (frame[1] >> 6)
    return None


def replay(archive: Path, chain: FrameChain, *, start_ns: int | None = None, end_ns: int | None = None,
           only: set[tuple[int, int]] | None = None, progress=None) -> int:
    """Feed archived frames to ``chain``, batch by batch; returns the number of frames replayed."""
    reader = ArchiveReader(archive)
    replayed = 0
    for batch in reader.batches(start_ns=start_ns, end_ns=end_ns):
        # Frames that arrived together (same link, same receipt time) go through as one batch.
        group: list[bytes] = []
        key = None
        for record in batch:
            if only is not None and frame_route(record.frame) not in only:
                continue
            this = (record.link, record.time_ns)
            if key is not None and this != key:
                chain.process(key[0], group, key[1] / 1e9)
                replayed += len(group)
                group = []
            key = this
            group.append(record.frame)
        if group:
            assert key is not None  # set with the group's first record
            chain.process(key[0], group, key[1] / 1e9)
            replayed += len(group)
        if progress is not None:
            progress(len(batch))
    return replayed


async def replay_command_async(args, registry: Registry) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    try:
        start_ns = parse_time(args.start) if args.start else None
        end_ns = parse_time(args.end) if args.end else None
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    names = args.spacecraft or list(registry.names)
    for name in names:
        if name not in registry:
            print(f"error: unknown spacecraft {name!r}; known: {', '.join(registry.names)}")
            return 2
    metrics = Metrics()
    mqtt = MqttPublisher(args.mqtt, rate_hz=math.inf if args.all_values else 1.0) if args.mqtt else None

    def on_parameter(sc: str, subsystem: str, name: str, unit: str, sample: Sample) -> None:
        if mqtt is not None:
            mqtt.parameter(sc, subsystem, name, value=sample.value, raw=sample.raw, unit=unit,
                           onboard_time=sample.onboard_time, ground_time=sample.ground_time, limit=int(sample.limit))

    events = ChainEvents(on_parameter=on_parameter,
                         on_event=(lambda sc, event: mqtt.event(sc, event)) if mqtt is not None else None)
    parameters = None
    if args.parameters:
        # Rebuild: the range's samples are removed first, so a replay never doubles a sample.
        parameters = ParameterArchive(Path(args.archive) / PARAMETERS_SUBDIR)
        for name in names:
            removed = remove_range(parameters.root, name, start_ns / 1e9 if start_ns is not None else None,
                                   end_ns / 1e9 if end_ns is not None else None)
            if removed:
                print(f"{name}: {removed} archived samples of the range removed, to be written again")

        def on_samples(sc: str, definition, raw, onboard, ground_time: float) -> None:
            assert parameters is not None
            parameters.add(sc, definition, raw, onboard, ground_time)
            if parameters.pending_samples >= REPLAY_FLUSH_SAMPLES:
                parameters.flush()

        events.on_samples = on_samples
    chain = FrameChain(registry, metrics, spacecraft=names, events=events)
    only = None
    if args.spacecraft:
        only = {(chain.chains[n].profile.version, chain.chains[n].spacecraft.scid) for n in names}
    total = ArchiveReader(args.archive).stats().records
    http = HttpServer(args.http, metrics, lambda: {"status": "ok", "mode": "replay"}) if args.http else None
    try:
        if http is not None:
            await http.__aenter__()
            print(f"metrics at {http.url}/metrics")
        if mqtt is not None:
            await mqtt.__aenter__()
        with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      disable=args.quiet) as bar:
            task = bar.add_task("frames", total=total)
            count = await asyncio.to_thread(replay, Path(args.archive), chain, start_ns=start_ns, end_ns=end_ns,
                                            only=only, progress=lambda n: bar.advance(task, n))
        values = len(metrics.series("queqiao_parameter_value"))
        print(f"replayed {count} frames; {values} parameters decoded")
        if parameters is not None:
            await asyncio.to_thread(parameters.flush)
            await asyncio.to_thread(parameters.compact, all_hours=True)
            print(f"parameter archive: {parameters.stats.samples_written} samples written")
        if http is not None and args.hold:
            print("serving metrics until interrupted (Ctrl-C)")
            await asyncio.Event().wait()
    finally:
        if mqtt is not None:
            await mqtt.__aexit__(None, None, None)
        if http is not None:
            await http.__aexit__(None, None, None)
    return 0


def run(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not Path(args.archive).is_dir():
        print(f"error: {args.archive} is not an archive directory")
        return 2
    try:
        return asyncio.run(replay_command_async(args, mission_registry()))
    except KeyboardInterrupt:
        return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("replay", help="feed archived frames through the chain again")
    parser.add_argument("archive", help="the archive directory")
    parser.add_argument("--from", dest="start", help="first receipt time (ISO 8601 UTC or Unix seconds)")
    parser.add_argument("--to", dest="end", help="receipt time to stop before")
    parser.add_argument("--spacecraft", action="append", help="only this spacecraft (repeatable)")
    parser.add_argument("--mqtt", help="republish decoded values to this broker (mqtt://host:port)")
    parser.add_argument("--all-values", action="store_true", help="with --mqtt: no per-parameter rate limit")
    parser.add_argument("--http", help="HOST:PORT to serve the replay's /metrics on")
    parser.add_argument("--hold", action="store_true", help="with --http: keep serving after the replay")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--parameters", action="store_true",
                        help="rebuild the parameter archive (ARCHIVE/parameters) for the range from the frames")
    parser.set_defaults(func=run)
