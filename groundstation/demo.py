"""`groundstation demo`: the daemon with in-process emulators, over loopback UDP, no broker needed.

This is the one place that composes both programs: every spacecraft of the
mission database (or the --mission ones) runs as a flightsw emulator in this
process, sending frames to the daemon over 127.0.0.1 UDP, exactly as a board
on the network would.  Metrics appear at the HTTP address within seconds.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from groundstation.auth import new_token
from groundstation.config import (
    ArchiveConfig,
    CommandingConfig,
    Config,
    LinkConfig,
    MqttConfig,
    RemoteWriteConfig,
    SpacecraftConfig,
    StationConfig,
)
from groundstation.daemon import Daemon, StartupError, configure_logging, install_signal_handlers
from groundstation.parameter_history import DEMO_ARCHIVE_HELP, fresh_demo_archive
from groundstation.send import TOKEN_ENV
from links import parse_link_url
from links.keyfiles import new_associations, write_key_file
from protocols.missions import registry as mission_registry

log = logging.getLogger("queqiao.demo")

DEFAULT_HTTP = "127.0.0.1:9108"


def free_udp_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free UDP ports: each socket stays bound until all are chosen, so the kernel
    cannot hand out the same port twice (one at a time, a port just released could come back)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) for _ in range(count)]
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]


def demo_keys(missions: list[str], archive: Path) -> dict[str, Path]:
    """SDLS key files for the spacecraft that require SDLS, in a directory beside the archive (mode 0700,
    files 0600); kept from an earlier run with the same archive, so its sequence numbers go on."""
    reg = mission_registry()
    wanted = [m for m in missions if reg.spacecraft(m).sdls_required]
    if not wanted:
        return {}
    directory = archive.with_name(archive.name + "-keys")
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    keys = {}
    for mission in wanted:
        path = directory / f"{mission}.sdls.toml"
        if not path.exists():
            write_key_file(path, mission, new_associations({1: "HMAC-SHA-256", 2: "AES-256-GCM"}))
        keys[mission] = path
    return keys


def coded_missions(missions: Sequence[str]) -> list[str]:
    """The missions whose downlink is Reed-Solomon coded: the demo sends them as CADUs, one per
    datagram on a link of their own, so that the ground's RS stage corrects what the channel broke."""
    reg = mission_registry()
    return [m for m in missions if reg.spacecraft(m).profile.frame.rs is not None]


def demo_config(missions: list[str], *, http: str, archive: Path, downlink_port: int, uplink_ports: dict[str, int],
                mqtt: str | None, keys: dict[str, Path] | None = None, remote_write: Sequence[str] = (),
                cadu_ports: dict[str, int] | None = None) -> Config:
    keys = keys or {}
    cadu_links = tuple(LinkConfig(name=f"demo-{m}", url=parse_link_url(f"udp://127.0.0.1:{p}"), format="cadu",
                                  spacecraft=m) for m, p in (cadu_ports or {}).items())
    return Config(
        station=StationConfig(name="queqiao-demo", http_listen=http),
        links=(LinkConfig(name="demo-udp", url=parse_link_url(f"udp://127.0.0.1:{downlink_port}")), *cadu_links),
        # The ground authenticates with SA 1 (HMAC-SHA-256); the spacecraft also knows SA 2 (AES-256-GCM).
        spacecraft=tuple(SpacecraftConfig(name=m, uplink=parse_link_url(f"udp://127.0.0.1:{uplink_ports[m]}"),
                                          sdls_key_file=keys.get(m), sdls_spi=1 if m in keys else None)
                         for m in missions),
        mqtt=MqttConfig(enabled=True, url=mqtt) if mqtt else MqttConfig(),
        archive=ArchiveConfig(dir=archive, fsync="interval", segment_max_bytes=64 * 1024 * 1024,
                              retention_max_bytes=1024 * 1024 * 1024),
        commanding=CommandingConfig(enabled=True, history_file=archive.with_name(archive.name + "-commands.sqlite")),
        remote_write=tuple(RemoteWriteConfig(url=url) for url in remote_write),
    )


def groundstation_command() -> str:
    """How to run this groundstation from a fresh shell: the venv's script (no activation needed)."""
    script = Path(sys.executable).with_name("groundstation")
    if not script.exists():
        return shlex.join([sys.executable, "-m", "groundstation.cli"])
    try:
        return shlex.quote(str(script.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(script))


def banner(daemon: Daemon, missions: list[str], archive: Path, token: str | None, out=sys.stdout,
           keys: dict[str, Path] | None = None) -> None:
    assert daemon.http is not None  # the banner is printed once the daemon listens
    url = daemon.http.url
    keys_line = (f"  SDLS keys   {next(iter(keys.values())).parent}  (uplink of {', '.join(keys)} authenticated)\n"
                 if keys else "")
    gs = groundstation_command()
    shown_token = shlex.quote(token) if token else f'"${TOKEN_ENV}"'
    token_line = (f"  API token   {token}   (generated for this run; export {TOKEN_ENV}=... to choose one)\n"
                  if token else f"  API token   from ${TOKEN_ENV}\n")
    address = url.split("://", 1)[-1]
    scrape = (f"it scrapes {DEFAULT_HTTP}" if address == DEFAULT_HTTP
              else f"it scrapes {DEFAULT_HTTP}: change the target to {address}")
    print(f"""
Queqiao demo: {len(missions)} spacecraft ({', '.join(missions)}) -> UDP -> ground station

  metrics     {url}/metrics
  health      {url}/healthz
  live view   {gs} watch --url {url} --spacecraft {missions[0]}
  command     {TOKEN_ENV}={shown_token} {gs} send --api {url} {missions[0]} PING --wait
  events      {TOKEN_ENV}={shown_token} {gs} events --api {url} --follow
{token_line}  archive     {archive}
{keys_line}
  Grafana: run Prometheus with deploy/prometheus/prometheus.yml ({scrape}),
  then Grafana with deploy/grafana/provisioning; see docs/GRAFANA.md.
  Stop with Ctrl-C.
""", file=out, flush=True)


async def run_demo(missions: list[str], *, http: str, archive: Path, mqtt: str | None, duration: float | None,
                   time_scale: float, faults: list[str], remote_write: Sequence[str] = (), out=sys.stdout) -> int:
    from flightsw.runtime import Emulator

    coded = coded_missions(missions)
    port, *ports = free_udp_ports(1 + len(missions) + len(coded))
    uplinks = dict(zip(missions, ports[:len(missions)], strict=True))
    cadu_ports = dict(zip(coded, ports[len(missions):], strict=True))
    keys = demo_keys(missions, archive)
    config = demo_config(missions, http=http, archive=archive, downlink_port=port, uplink_ports=uplinks, mqtt=mqtt,
                         keys=keys, remote_write=remote_write, cadu_ports=cadu_ports)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    # The demo always commands: QUEQIAO_API_TOKEN when set, else a token made for this run and printed.
    generated = None if os.environ.get(TOKEN_ENV) else new_token()
    try:
        daemon = Daemon(config, tokens={generated: ("demo-operator", "operator")} if generated else None)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    daemon_task = asyncio.create_task(daemon.run(stop), name="daemon")
    # The daemon binds its UDP port first so the emulators' first frames are not lost.
    for _ in range(200):
        if daemon_task.done() or (daemon.http is not None and all(r.link.stats.up for r in daemon.links)):
            break
        await asyncio.sleep(0.025)
    if daemon_task.done():
        return await _daemon_result(daemon_task)
    banner(daemon, missions, archive, generated, out, keys)
    async with contextlib.AsyncExitStack() as stack:
        for seed, mission in enumerate(missions):
            emulator = Emulator(mission, downlink=f"udp://127.0.0.1:{cadu_ports.get(mission, port)}",
                                datagram_cadus=mission in cadu_ports,
                                uplink=f"udp://127.0.0.1:{uplinks[mission]}", seed=seed, time_scale=time_scale,
                                faults=[f.split("=", 1)[1] for f in faults if f.split("=", 1)[0] == mission],
                                sdls_key_files=[str(keys[mission])] if mission in keys else ())
            await stack.enter_async_context(emulator)
        try:
            await asyncio.wait_for(stop.wait(), timeout=duration)
        except TimeoutError:
            pass
        stop.set()
    return await _daemon_result(daemon_task)


async def _daemon_result(task: asyncio.Task) -> int:
    try:
        await task
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run(args) -> int:
    configure_logging(args.log_level)
    reg = mission_registry()
    missions = args.mission or list(reg.names)
    unknown = [m for m in missions if m not in reg]
    if unknown:
        print(f"error: unknown mission(s) {unknown}; known: {', '.join(reg.names)}", file=sys.stderr)
        return 2
    for fault in args.fault:
        if "=" not in fault or fault.split("=", 1)[0] not in missions:
            print(f"error: --fault takes MISSION=SPEC for one of {missions}, not {fault!r}", file=sys.stderr)
            return 2
    archive = Path(args.archive) if args.archive else fresh_demo_archive()
    try:
        return asyncio.run(run_demo(missions, http=args.http, archive=archive, mqtt=args.mqtt, remote_write=args.remote_write,
                                    duration=args.duration, time_scale=args.time_scale, faults=args.fault))
    except KeyboardInterrupt:
        return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="the daemon with embedded emulators over loopback UDP")
    parser.add_argument("--mission", action="append", help="spacecraft to emulate (repeatable; default: all)")
    parser.add_argument("--http", default=DEFAULT_HTTP, help="HOST:PORT for /metrics, /healthz and the API")
    parser.add_argument("--mqtt", help="also publish decoded values to this broker (mqtt://host:port)")
    parser.add_argument("--archive", help="archive directory, frames and parameters (default: "
                        f"{DEMO_ARCHIVE_HELP}, emptied at each start; `groundstation history` reads it by default)")
    parser.add_argument("--remote-write", action="append", default=[], metavar="URL",
                        help="also send every sample to this Prometheus remote-write receiver (repeatable), e.g. "
                             "http://127.0.0.1:8428/api/v1/write")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second (default 1)")
    parser.add_argument("--fault", action="append", default=[], metavar="MISSION=SPEC",
                        help="inject a fault into one emulator, e.g. zhurong=stuck:power.battery_voltage")
    parser.add_argument("--log-level", default=os.environ.get("QUEQIAO_LOG_LEVEL", "WARNING"))
    parser.set_defaults(func=run)
