"""The emulator end to end on every link type, loopback only, read by an independent decoder.

UDP (frames), TCP server and client (CADU stream down, CLTUs up on the same connection),
serial (a pseudo-terminal pair), file (a CADU capture) and MQTT (a real Mosquitto).
Each test commands PING and checks the PUS 1 reports and the 17,2 answer come back.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tty
from datetime import UTC, datetime
from pathlib import Path

import pytest
from spacepackets.ecss.tm import PusTm

from flightsw.runtime import Emulator
from links.keyfiles import write_key_file
from protocols.ccsds.cltu import encode_cltu
from protocols.ccsds.sdls import HMAC_SHA256, SecurityAssociation, apply_security
from protocols.ccsds.sync import ASM, CaduEncoder, FrameSynchronizer
from protocols.ccsds.tcframe import TcFrame
from protocols.ccsds.vcmux import FrameDemux
from protocols.missions import registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "realcomponents"))
from components import Mosquitto  # noqa: E402

MISSION = "zhurong"
START = datetime(2021, 6, 1, 4, 0, tzinfo=UTC)
SCALE = 20.0
TIMEOUT = 10.0


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ground:
    """Frames (or a CADU stream) in, PUS packets out: protocols' sync and demux, spacepackets' PusTm."""

    def __init__(self, mission: str = MISSION) -> None:
        self.sc = registry().spacecraft(mission)
        self.profile = self.sc.profile.frame
        # A CADU carries the codeblock: the frame and, where the profile has a code, its RS check symbols.
        self.encoder = CaduEncoder(self.profile)
        self.sync = FrameSynchronizer(self.encoder.codeblock_length, derandomize=self.profile.randomized)
        self.demux = FrameDemux(self.profile)
        self.frames = 0
        self.packets: list[PusTm] = []
        self.anomalies: list = []
        self.changed = asyncio.Event()

    def frame(self, frame: bytes) -> None:
        self._frames([frame])

    def datagram(self, data: bytes) -> None:
        """One UDP datagram or MQTT message: for a spacecraft with a Reed-Solomon code one CADU (the
        emulator's default there, as on the air), else one transfer frame."""
        if self.encoder.code is not None:
            assert len(data) == self.encoder.cadu_length and data[:4] == ASM
            self.stream(data)
        else:
            self.frame(data)

    def stream(self, chunk: bytes) -> None:
        blocks = [f.data for f in self.sync.feed(chunk).frames]
        code = self.encoder.code
        if code is not None and blocks:
            decoded = code.decode_many(b"".join(blocks))
            assert not decoded.uncorrectable.any() and not decoded.corrected_symbols.any()  # a clean channel
            blocks = [row.tobytes() for row in decoded.frames]
        self._frames(blocks)

    def _frames(self, frames: list[bytes]) -> None:
        if not frames:
            return
        self.frames += len(frames)
        result = self.demux.feed(frames)
        self.anomalies += result.anomalies
        self.packets += [PusTm.unpack(p.data, timestamp_len=6) for p in result.packets]
        self.changed.set()

    def subtypes(self, request: bytes) -> list[int]:
        """PUS 1 subtypes reported about one telecommand."""
        return [tm.message_subtype for tm in self.packets if tm.service == 1 and tm.source_data[:4] == request[:4]]

    def pongs(self) -> int:
        return sum(1 for tm in self.packets if (tm.service, tm.message_subtype) == (17, 2))

    async def wait_for(self, predicate, timeout: float = TIMEOUT) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), timeout)


def ping(sc, seq: int = 1) -> tuple[bytes, bytes]:
    """(the PING packet, its TC frame as a BD frame)."""
    packet = sc.command("PING").build(sequence_count=seq)
    return packet, TcFrame(sc.scid, 0, packet, bypass_flag=1).build()


def ping_answered(ground: Ground, request: bytes):
    return lambda: ground.subtypes(request) == [1, 3, 7] and ground.pongs() >= 1


def hk_seen(ground: Ground):
    return lambda: sum(1 for tm in ground.packets if tm.service == 3) >= 3


# --------------------------------------------------------------------------- UDP


async def test_udp_frames_down_commands_up():
    loop = asyncio.get_running_loop()
    ground = Ground()

    class Rx(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            ground.datagram(data)

    transport, _ = await loop.create_datagram_endpoint(Rx, local_addr=("127.0.0.1", 0))
    down = transport.get_extra_info("sockname")[1]
    up = free_port()
    try:
        async with Emulator(MISSION, downlink=f"udp://127.0.0.1:{down}", uplink=f"udp://127.0.0.1:{up}",
                            time_scale=SCALE, start=START) as emu:
            await ground.wait_for(hk_seen(ground))
            packet, frame = ping(ground.sc)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.sendto(frame, ("127.0.0.1", up))
                tx.sendto(encode_cltu(ping(ground.sc, 2)[1]), ("127.0.0.1", up))  # a CLTU in a datagram too
            await ground.wait_for(ping_answered(ground, packet))
            await ground.wait_for(lambda: emu.runtime.tc_accepted == 2)
    finally:
        transport.close()
    assert not ground.anomalies
    assert ground.frames >= 5


# --------------------------------------------------------------------------- TCP


async def _tcp_session(ground: Ground, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    async def pump() -> None:
        while data := await reader.read(65536):
            ground.stream(data)

    task = asyncio.create_task(pump())
    try:
        await ground.wait_for(hk_seen(ground))
        packet, frame = ping(ground.sc)
        writer.write(b"\x55\x55" + encode_cltu(frame) + b"\x00")  # noise around the CLTU is skipped
        await writer.drain()
        await ground.wait_for(ping_answered(ground, packet))
        return packet
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_tcp_listen_cadus_down_cltus_up_same_connection():
    ground = Ground()
    port = free_port(socket.SOCK_STREAM)
    async with Emulator(MISSION, downlink=f"tcp-listen://127.0.0.1:{port}", time_scale=SCALE, start=START):
        for _ in range(50):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        try:
            await _tcp_session(ground, reader, writer)
        finally:
            writer.close()
    assert not ground.anomalies


async def test_tcp_client_connects_to_ground():
    ground = Ground()
    done = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        try:
            done.set_result(await _tcp_session(ground, reader, writer))
        except Exception as exc:  # noqa: BLE001
            done.set_exception(exc)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        async with Emulator(MISSION, downlink=f"tcp://127.0.0.1:{port}", time_scale=SCALE, start=START):
            await asyncio.wait_for(done, TIMEOUT)
    assert not ground.anomalies


# --------------------------------------------------------------------------- serial


async def test_serial_pty():
    import serial  # noqa: F401 - the serial link needs pyserial
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    ground = Ground()
    loop = asyncio.get_running_loop()
    os.set_blocking(master, False)

    def readable() -> None:
        with contextlib.suppress(BlockingIOError):
            ground.stream(os.read(master, 65536))

    loop.add_reader(master, readable)
    try:
        async with Emulator(MISSION, downlink=f"serial://{path}?baud=115200", time_scale=SCALE, start=START):
            await ground.wait_for(hk_seen(ground))
            packet, frame = ping(ground.sc)
            os.write(master, encode_cltu(frame))
            await ground.wait_for(ping_answered(ground, packet))
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)
    assert not ground.anomalies


# --------------------------------------------------------------------------- file


async def test_file_capture(tmp_path):
    capture = tmp_path / "zhurong.cadu"
    emu = Emulator(MISSION, downlink=f"file://{capture}", time_scale=50, start=START, duration=20)
    await emu.run()
    ground = Ground()
    ground.stream(capture.read_bytes())
    assert not ground.anomalies
    rate = emu.runtime.frame_rate
    assert abs(ground.frames - 20 * rate) <= 3
    assert len(capture.read_bytes()) == ground.frames * ground.encoder.cadu_length
    names = {registry().resolve(MISSION, tm.pack()).name for tm in ground.packets}
    assert {"power", "mobility"} <= names


# --------------------------------------------------------------------------- MQTT


@pytest.mark.parametrize("separate_uplink", [False, True])
async def test_mqtt_frames_and_commands(tmp_path, separate_uplink):
    import aiomqtt

    broker = Mosquitto(tmp_path / "mosquitto")
    (tmp_path / "mosquitto").mkdir(exist_ok=True)
    broker.start()
    ground = Ground()
    try:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"queqiao/{MISSION}/downlink", qos=1)

            async def read() -> None:
                async for message in client.messages:
                    ground.datagram(bytes(message.payload))

            reader = asyncio.create_task(read())
            try:
                url = f"mqtt://{broker.host}:{broker.port}/queqiao"
                async with Emulator(MISSION, downlink=url, uplink=url if separate_uplink else None,
                                    time_scale=SCALE, start=START):
                    await ground.wait_for(hk_seen(ground))
                    packet, frame = ping(ground.sc)
                    await client.publish(f"queqiao/{MISSION}/uplink", frame, qos=1)
                    await ground.wait_for(ping_answered(ground, packet))
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    finally:
        broker.stop()
    assert not ground.anomalies


# --------------------------------------------------------------------------- in-process API


async def test_several_emulators_in_one_loop_stop_event():
    loop = asyncio.get_running_loop()
    grounds = {name: Ground(name) for name in ("zhurong", "haiyang2d", "ilrs-lander")}
    transports = []
    emulators = []
    for name, ground in grounds.items():
        class Rx(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr, ground=ground):
                ground.datagram(data)

        transport, _ = await loop.create_datagram_endpoint(Rx, local_addr=("127.0.0.1", 0))
        transports.append(transport)
        emulators.append(Emulator(name, downlink=f"udp://127.0.0.1:{transport.get_extra_info('sockname')[1]}",
                                  time_scale=SCALE, start=START, seed=1))
    stop = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as group:
            for emu in emulators:
                group.create_task(emu.run(stop))
            for ground in grounds.values():
                await ground.wait_for(hk_seen(ground))
            stop.set()
    finally:
        for t in transports:
            t.close()
    for ground in grounds.values():
        assert not ground.anomalies
        assert {tm.apid for tm in ground.packets} <= {a.number for a in ground.sc.apids}


async def test_udp_down_tcp_listen_up(tmp_path):
    """haiyang2d requires SDLS: the CLTU carries an authenticated frame."""
    sa = SecurityAssociation(1, HMAC_SHA256, os.urandom(32))
    keys = write_key_file(tmp_path / "hy2d.toml", "haiyang2d", [sa])
    loop = asyncio.get_running_loop()
    ground = Ground("haiyang2d")

    class Rx(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            ground.datagram(data)

    transport, _ = await loop.create_datagram_endpoint(Rx, local_addr=("127.0.0.1", 0))
    down = transport.get_extra_info("sockname")[1]
    up = free_port(socket.SOCK_STREAM)
    try:
        async with Emulator("haiyang2d", downlink=f"udp://127.0.0.1:{down}", uplink=f"tcp-listen://127.0.0.1:{up}",
                            time_scale=SCALE, start=START, sdls_key_files=[str(keys)]) as emu:
            for _ in range(50):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", up)
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            packet, frame = ping(ground.sc)
            writer.write(encode_cltu(apply_security(TcFrame.parse(frame), sa, 1)))
            await writer.drain()
            await ground.wait_for(ping_answered(ground, packet))
            writer.close()
            assert emu.runtime.tc.security.accepted == 1
    finally:
        transport.close()
    assert not ground.anomalies


async def test_tcp_ground_late_loses_nothing():
    """The ground's server comes up after the emulator: the link retries and the queued frames follow."""
    ground = Ground()
    port = free_port(socket.SOCK_STREAM)
    got = asyncio.Event()

    async def handle(reader, writer):
        while data := await reader.read(65536):
            ground.stream(data)
            got.set()
        writer.close()

    # The server is closed after the emulator has hung up: since Python 3.12 closing it waits for its
    # connections, and the emulator's link would hold this one open for ever.
    server = None
    try:
        async with Emulator(MISSION, downlink=f"tcp://127.0.0.1:{port}", time_scale=SCALE, start=START):
            await asyncio.sleep(0.6)  # nobody listening: frames queue in the link
            server = await asyncio.start_server(handle, "127.0.0.1", port)
            await ground.wait_for(lambda: sum(1 for tm in ground.packets if tm.service == 3) >= 15)
    finally:
        if server is not None:
            server.close()
            await asyncio.wait_for(server.wait_closed(), TIMEOUT)
    assert not ground.anomalies
    first = {}
    for tm in ground.packets:
        first.setdefault(tm.apid, tm.seq_count)
    assert set(first.values()) == {0}  # every APID's stream from its first packet on
