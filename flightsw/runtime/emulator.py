"""The emulator in a process: :class:`FlightSoftware` plus links and real (scaled) time.

    async with Emulator("zhurong", downlink="udp://127.0.0.1:10015", uplink="udp://127.0.0.1:10016") as emu:
        await emu.wait()            # until stop() / duration

    await Emulator("haiyang2d", downlink="tcp-listen://127.0.0.1:10020", time_scale=10).run(stop_event)

Several emulators can share one event loop (``groundstation demo`` does).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from flightsw.model import MissionModel
from flightsw.runtime.core import FlightSoftware, RuntimeConfig
from flightsw.runtime.uplink import CltuExtractor
from links import Link, LinkClosed, LinkUrl, LinkUrlError, open_link, parse_link_url
from links.keyfiles import KeyFileError, read_key_file
from protocols.ccsds.cltu import START_SEQUENCE, decode_cltu
from protocols.ccsds.sdls import SecurityAssociation
from protocols.errors import ProtocolError
from protocols.missions import Spacecraft, registry

log = logging.getLogger("queqiao.flightsw.emulator")


class EmulatorError(ValueError):
    """A configuration the emulator cannot start with (bad URL, unknown mission, port in use...)."""


def resolve_spacecraft(mission: str | Spacecraft) -> Spacecraft:
    if isinstance(mission, Spacecraft):
        return mission
    try:
        return registry().spacecraft(mission)
    except KeyError:
        raise EmulatorError(f"unknown mission {mission!r}; known: {', '.join(sc.name for sc in registry())}") from None


def check_link(url: str, *, binds: bool) -> LinkUrl:
    """Parse ``url`` and check at once what can be checked: a listening or bound port is free,
    a serial device exists, a capture file's directory exists.  Raises :class:`EmulatorError`."""
    try:
        spec = parse_link_url(url)
    except LinkUrlError as exc:
        raise EmulatorError(str(exc)) from None
    if spec.scheme == "tcp-listen" or (spec.scheme == "udp" and binds):
        kind = socket.SOCK_STREAM if spec.scheme == "tcp-listen" else socket.SOCK_DGRAM
        try:
            infos = socket.getaddrinfo(spec.host, spec.port, type=kind)
        except OSError as exc:
            raise EmulatorError(f"link {url}: cannot resolve {spec.host!r}: {exc}") from None
        family, _, _, _, address = infos[0]
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(address)
            except OSError as exc:
                raise EmulatorError(f"link {url}: cannot use port {spec.port} on {spec.host} ({exc.strerror}); "
                                    "is another program (or emulator) using it?") from None
    elif spec.scheme == "serial" and not os.path.exists(spec.path):
        raise EmulatorError(f"link {url}: no serial device {spec.path}")
    elif spec.scheme == "file":
        directory = os.path.dirname(os.path.abspath(spec.path))
        if not os.path.isdir(directory):
            raise EmulatorError(f"link {url}: directory {directory} does not exist")
    return spec


def load_associations(spacecraft: str, paths: Sequence[str]) -> dict[int, SecurityAssociation]:
    """The security associations of ``spacecraft`` in the key files ``paths``; EmulatorError on a bad file."""
    associations: dict[int, SecurityAssociation] = {}
    for path in paths:
        try:
            keys = read_key_file(path, spacecraft)
        except KeyFileError as exc:
            raise EmulatorError(str(exc)) from None
        clash = sorted(set(keys.associations) & set(associations))
        if clash:
            raise EmulatorError(f"SDLS key file {path}: SPI {clash} already given by another key file")
        associations.update(keys.associations)
    return associations


def _write_command(log_file: TextIO, entry: dict[str, Any]) -> None:
    """One line of the onboard command log: a telecommand handed to execution, as JSON."""
    log_file.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


class _Stop(Exception):
    """Ends the emulator's task group."""


class Emulator:
    """One emulated spacecraft on links; an async context manager.

    ``mission``: a spacecraft name (or Spacecraft); ``downlink``: link URL the frames go to;
    ``uplink``: link URL telecommands come from (None: the downlink's own return direction
    for TCP, serial and MQTT links).  ``duration``: stop after this many simulated seconds.
    Other keywords are :class:`RuntimeConfig` fields (``bitrate``, ``passes``, ``store_bytes``,
    ``farm_window``, ``tc_vcid``, ``drift_ppm``, ``epoch``, ``hk_periods``, ``virtual``, ``sdls_required``,
    ``sdls_window``...).  ``sdls_key_files``: SDLS key files whose security associations the
    spacecraft accepts (each must be this spacecraft's and readable by no one else).
    ``datagram_cadus``: on a datagram downlink (UDP, MQTT) send one CADU per datagram, as on the air
    (True), or the transfer frame, as a station that has decoded it would (False); None (default):
    CADUs for a spacecraft whose frames have a Reed-Solomon code, frames otherwise.  The ground's
    frames links take either; a ``format = "cadu"`` link pinned to the spacecraft also corrects a
    header before routing.
    """

    def __init__(self, mission: str | Spacecraft, *, downlink: str, uplink: str | None = None, seed: int = 0,
                 time_scale: float = 1.0, faults: Sequence[str] = (), start: datetime | None = None,
                 duration: float | None = None, model_class: type[MissionModel] | None = None,
                 tc_randomized: bool = False, flood: bool = False, sdls_key_files: Sequence[str] = (),
                 command_log: str | os.PathLike[str] | None = None, datagram_cadus: bool | None = None,
                 **config: Any) -> None:
        self.spacecraft = resolve_spacecraft(mission)
        associations = load_associations(self.spacecraft.name, sdls_key_files)
        if associations:
            config["sdls_associations"] = associations
        if not time_scale > 0:
            raise EmulatorError(f"time scale must be > 0, not {time_scale}")
        self.downlink_url = check_link(downlink, binds=False)
        self.uplink_url = check_link(uplink, binds=True) if uplink else None
        if self.uplink_url is not None and self.uplink_url.framing == "stream" and (
                self.uplink_url.scheme, self.uplink_url.address, self.uplink_url.path) == (
                self.downlink_url.scheme, self.downlink_url.address, self.downlink_url.path):
            self.uplink_url = None  # the same connection both ways: the downlink's return direction
        if self.uplink_url is not None and self.uplink_url.scheme == "file":
            raise EmulatorError(f"uplink {uplink}: a file cannot carry telecommands; use udp, tcp, serial or mqtt")
        try:
            cfg = RuntimeConfig(seed=seed, time_scale=time_scale, faults=tuple(faults), start=start, **config)
            self.runtime = FlightSoftware(self.spacecraft, cfg, model_class=model_class)
        except TypeError as exc:
            raise EmulatorError(f"emulator option: {exc}") from None
        except ValueError as exc:  # fault specs, pass windows, periods
            raise EmulatorError(str(exc)) from None
        if self.runtime.tc.security is not None and not associations:
            log.warning("%s requires SDLS but was given no key file: every telecommand will be refused "
                        "(give --sdls-keys FILE; docs/EMULATOR.md)", self.spacecraft.name)
        self.duration = duration
        self.tc_randomized = tc_randomized
        self.flood = flood
        self.downlink: Link | None = None
        self.uplink: Link | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._task: asyncio.Task | None = None
        self._stopped = asyncio.Event()
        self._extractors: dict[str, CltuExtractor] = {}
        self.frames_sent = 0
        self.bytes_sent = 0
        if command_log is not None and not os.path.isdir(os.path.dirname(os.path.abspath(command_log))):
            raise EmulatorError(f"command log {command_log}: its directory does not exist")
        self.command_log_path = command_log
        #: On a datagram downlink, one CADU (ASM + randomized codeblock) per datagram instead of the frame.
        self.datagram_cadus = self.spacecraft.profile.frame.rs is not None if datagram_cadus is None else datagram_cadus

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Emulator:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            self.downlink = await stack.enter_async_context(
                open_link(self.downlink_url, role="out", spacecraft=self.spacecraft.name,
                          name=f"{self.spacecraft.name} downlink"))
            if self.uplink_url is not None:
                # An MQTT link's "out" end is the spacecraft's: it reads <prefix>/<sc>/uplink.
                role = "out" if self.uplink_url.scheme in ("mqtt", "mqtts") else "in"
                self.uplink = await stack.enter_async_context(
                    open_link(self.uplink_url, role=role, spacecraft=self.spacecraft.name,
                              name=f"{self.spacecraft.name} uplink"))
            elif self.downlink_url.scheme != "file":
                self.uplink = self.downlink
        except BaseException:
            await stack.aclose()
            raise
        if self.command_log_path is not None:
            try:
                log_file = stack.enter_context(await asyncio.to_thread(
                    open, self.command_log_path, "a", buffering=1, encoding="utf-8"))
            except OSError:
                await stack.aclose()
                raise
            # One short line per telecommand, written as it runs: rare enough to write on the loop.
            self.runtime.command_log = functools.partial(_write_command, log_file)
            stack.callback(setattr, self.runtime, "command_log", None)
        self._stack = stack
        self.runtime.rebase_clock()
        self._task = asyncio.create_task(self._main(), name=f"flightsw {self.spacecraft.name}")
        log.info("%s emulator started: downlink %s, uplink %s, %.1f frames/s at %.0f bit/s, time scale %g",
                 self.spacecraft.name, self.downlink_url, self.uplink_url or (
                     "(downlink)" if self.uplink is self.downlink else "none"),
                 self.runtime.frame_rate, self.runtime.bitrate, self.runtime.clock.time_scale)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush()
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        log.info("%s emulator stopped: %d frames sent", self.spacecraft.name, self.frames_sent)

    def stop(self) -> None:
        """Ask the emulator to stop (safe to call more than once)."""
        self._stopped.set()
        self.runtime.scheduler.stop()

    async def wait(self) -> None:
        """Until :meth:`stop` is called or the duration is over."""
        await self._stopped.wait()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self, stop_event: asyncio.Event | None = None) -> None:
        """Run until ``stop_event`` is set, :meth:`stop` is called or the duration is over."""
        async with self:
            if stop_event is None:
                await self.wait()
                return
            waiter = asyncio.create_task(stop_event.wait())
            stopper = asyncio.create_task(self._stopped.wait())
            try:
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ loops

    async def _main(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._schedule())
                group.create_task(self._frames())
                if self.uplink is not None:
                    group.create_task(self._receive())
                group.create_task(self._watch())
        except* _Stop:
            pass
        except* Exception as failure:
            log.error("%s emulator failed: %r", self.spacecraft.name, failure.exceptions)
            raise
        finally:
            self._stopped.set()

    async def _watch(self) -> None:
        await self._stopped.wait()
        raise _Stop

    async def _schedule(self) -> None:
        await self.runtime.scheduler.run(until=self.duration)
        self._stopped.set()

    async def _frames(self) -> None:
        rt = self.runtime
        if self.flood:
            return await self._flood()
        wall_rate = rt.frame_rate * rt.clock.time_scale
        interval = min(0.05, max(0.002, 1.0 / wall_rate))
        while not self._stopped.is_set():
            now = rt.clock.now()
            self._send(rt.frames_until(now if self.duration is None else min(now, self.duration)))
            await asyncio.sleep(interval)

    async def _flood(self) -> None:
        """Housekeeping as fast as the CPU allows (``flood=True``), ignoring the frame rate."""
        rt = self.runtime
        stream = self.downlink_url.framing == "stream"
        cadus = stream or self.datagram_cadus
        length = rt.cadu_length if cadus else rt.frame_profile.frame_length
        assert self.downlink is not None
        while not self._stopped.is_set():
            for chunk in rt.flood(4096, cadus=cadus):
                if stream:
                    self.downlink.send(chunk)
                else:
                    for i in range(0, len(chunk), length):
                        self.downlink.send(chunk[i:i + length])
                self.frames_sent += len(chunk) // length
                self.bytes_sent += len(chunk)
            # Let the link writer drain (its queue is bounded: the oldest are dropped and counted).
            await asyncio.sleep(0.001)

    def _send(self, frames: list[bytes]) -> None:
        if not frames or self.downlink is None:
            return
        self.frames_sent += len(frames)
        channel = self.runtime.faults.channel_errors  # ber faults: on what goes on the air
        if self.downlink_url.framing == "datagram":
            items: list[bytes] = frames
            if self.datagram_cadus:
                size = self.runtime.cadu_length
                stream = self.runtime.cadu_encoder.cadus(frames)
                items = [stream[i:i + size] for i in range(0, len(stream), size)]
            for item in items:
                item = channel(item)
                self.downlink.send(item)
                self.bytes_sent += len(item)
        else:
            data = channel(self.runtime.cadu_encoder.cadus(frames))
            self.bytes_sent += len(data)
            self.downlink.send(data)

    async def _flush(self) -> None:
        """Frame what is still queued (no idle frames) and give the links a moment to write it."""
        if self.downlink is None:
            return
        rt = self.runtime
        end = rt.clock.now() if self.duration is None else min(rt.clock.now(), self.duration)
        self._send(rt.frames_until(end))  # the frame slots up to the end, idle ones included
        if rt.link_up():
            frames = rt.mux.frames(flush=True)
            if frames:
                self._send(frames)
        with contextlib.suppress(Exception):
            await self.downlink.drain(timeout=2.0)

    async def _receive(self) -> None:
        assert self.uplink is not None
        datagram = (self.uplink_url or self.downlink_url).framing == "datagram"
        while True:
            try:
                items = await self.uplink.receive_many(256)
            except LinkClosed:
                return
            for source, data in items:
                try:
                    if datagram:
                        self._datagram(data)
                    else:
                        ex = self._extractors.get(source)
                        if ex is None:
                            ex = self._extractors[source] = CltuExtractor(randomized=self.tc_randomized)
                        for frame in ex.feed(data):
                            self.runtime.receive_tc_frame(frame)
                except Exception:  # noqa: BLE001 - one bad message must not stop the spacecraft
                    log.exception("uplink data from %s not handled", source)

    def _datagram(self, data: bytes) -> None:
        if data[:2] == START_SEQUENCE:
            try:
                data = decode_cltu(data, randomized=self.tc_randomized, correct=True).data
            except ProtocolError as exc:
                log.warning("uplink CLTU dropped: %s", exc)
                return
        self.runtime.receive_tc_frame(data)

    # ------------------------------------------------------------------ operations

    def dump_storage(self, store: str = "HOUSEKEEPING") -> int:
        return self.runtime.dump_storage(store)

    def set_link(self, state: str) -> None:
        self.runtime.set_link(state)

    def status(self) -> dict[str, Any]:
        status = self.runtime.status()
        status["frames_sent"] = self.frames_sent
        status["bytes_sent"] = self.bytes_sent
        if self.downlink is not None:
            status["downlink"] = vars(self.downlink.stats)
        return status
