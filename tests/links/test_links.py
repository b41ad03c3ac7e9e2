"""Links carry bytes unchanged over real loopback sockets, a pseudo-terminal and files, and survive reconnects."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from links import Backoff, LinkClosed, LinkUrlError, open_link, parse_link_url

FAST = Backoff(initial=0.05, maximum=0.2)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url,scheme,framing", [
    ("udp://127.0.0.1:10015", "udp", "datagram"),
    ("udp://[::1]:10015", "udp", "datagram"),
    ("tcp://localhost:5000", "tcp", "stream"),
    ("tcp-listen://0.0.0.0:5000", "tcp-listen", "stream"),
    ("serial:///dev/ttyUSB0?baud=9600", "serial", "stream"),
    ("file:///tmp/x.cadu", "file", "stream"),
    ("mqtt://127.0.0.1/queqiao", "mqtt", "datagram"),
])
def test_good_urls(url, scheme, framing):
    spec = parse_link_url(url)
    assert (spec.scheme, spec.framing) == (scheme, framing)


def test_url_details():
    assert parse_link_url("udp://[::1]:10015").address == ("::1", 10015)
    assert parse_link_url("serial:///dev/ttyS0").query["baud"] == "115200"
    mqtt = parse_link_url("mqtt://broker:1884/ops/station?username=gs&password_env=MQTT_PW")
    assert (mqtt.port, mqtt.path, mqtt.query["username"]) == (1884, "ops/station", "gs")


@pytest.mark.parametrize("url,message", [
    ("127.0.0.1:10015", "no scheme"),
    ("ftp://host:21", "unknown scheme"),
    ("udp://127.0.0.1", "needs a port"),
    ("udp://127.0.0.1:99999", "port must be a number"),
    ("tcp://:5000", "needs a host"),
    ("serial://dev/ttyUSB0", "three slashes"),
    ("serial:///dev/ttyUSB0?baud=fast", "baud must be"),
    ("udp://127.0.0.1:1?bogus=1", "unknown option"),
    ("mqtt://u:secret@host:1883/p", "no password in a URL"),
    ("mqtt://host:1883/", "topic prefix"),
    ("mqtt://host:1883/a/#", "not allowed"),
    ("mqtt://host:1883/a/+", "topic prefix"),
    ("udp://[::1:10015", "IPv6 hosts are written"),  # found by tests/fuzz: urlsplit's ValueError escaped
])
def test_bad_urls_say_what_is_wrong(url, message):
    with pytest.raises(LinkUrlError, match=message):
        parse_link_url(url)


async def test_udp_datagrams_arrive_whole():
    port = free_port(socket.SOCK_DGRAM)
    frames = [bytes([i]) * (100 + i) for i in range(20)]
    async with open_link(f"udp://127.0.0.1:{port}", role="in") as rx, \
            open_link(f"udp://127.0.0.1:{port}", role="out") as tx:
        await asyncio.sleep(0.05)
        for frame in frames:
            tx.send(frame)
        got = [await asyncio.wait_for(rx.receive(), 5) for _ in frames]
        assert await tx.drain(5)
    assert got == frames
    assert rx.stats.messages_in == 20 and tx.stats.bytes_out == sum(map(len, frames))


async def _read_exactly(link, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await asyncio.wait_for(link.receive(), 5)
    return data


async def test_tcp_client_queues_until_server_appears_then_streams_both_ways():
    port = free_port()
    payload = os.urandom(200_000)
    async with open_link(f"tcp://127.0.0.1:{port}", role="out", backoff=FAST) as client:
        client.send(payload)  # queued: no server yet
        await asyncio.sleep(0.3)
        assert not client.stats.up and client.pending_out == 1
        async with open_link(f"tcp-listen://127.0.0.1:{port}", role="in", backoff=FAST) as server:
            assert await _read_exactly(server, len(payload)) == payload
            server.send(b"uplink")
            assert await _read_exactly(client, 6) == b"uplink"
            assert client.stats.up and server.stats.up
        # server gone: the client notices and goes on retrying
        for _ in range(50):
            if not client.stats.up:
                break
            await asyncio.sleep(0.05)
        assert not client.stats.up and client.stats.disconnects >= 1


async def _wait_until(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_tcp_client_reconnects_and_loses_nothing_queued_while_down():
    # TCP acknowledges nothing to the application: bytes written just as a peer vanishes
    # can be lost (onboard storage and playback recover those).  What a link guarantees is
    # that frames queued while it is down are kept and sent after the reconnect.
    port = free_port()
    async with open_link(f"tcp://127.0.0.1:{port}", role="out", backoff=FAST) as client:
        async with open_link(f"tcp-listen://127.0.0.1:{port}", role="in", backoff=FAST) as server:
            client.send(b"A" * 10)
            assert await _read_exactly(server, 10) == b"A" * 10
        await _wait_until(lambda: not client.stats.up)
        client.send(b"B" * 10)  # queued while the server is away
        async with open_link(f"tcp-listen://127.0.0.1:{port}", role="in", backoff=FAST) as server:
            assert await _read_exactly(server, 10) == b"B" * 10
        assert client.stats.connects >= 2


async def test_serial_over_pseudo_terminal():
    master, slave = os.openpty()
    try:
        async with open_link(f"serial://{os.ttyname(slave)}?baud=115200", role="out", backoff=FAST) as link:
            link.send(b"\x1a\xcf\xfc\x1d" + bytes(range(200)))
            assert await link.drain(5)
            loop = asyncio.get_running_loop()
            got = b""
            while len(got) < 204:
                got += await loop.run_in_executor(None, os.read, master, 4096)
            assert got == b"\x1a\xcf\xfc\x1d" + bytes(range(200))
            os.write(master, b"uplink-bytes")
            assert await _read_exactly(link, 12) == b"uplink-bytes"
    finally:
        os.close(master)
        os.close(slave)


async def test_file_written_then_replayed(tmp_path):
    path = tmp_path / "capture.cadu"
    chunks = [os.urandom(1000) for _ in range(100)]
    async with open_link(f"file://{path}", role="out") as out:
        for chunk in chunks:
            out.send(chunk)
        assert await out.drain(5)
    data = b""
    async with open_link(f"file://{path}", role="in") as replay:
        with pytest.raises(LinkClosed):
            while True:
                data += await asyncio.wait_for(replay.receive(), 5)
    assert data == b"".join(chunks)


def test_mqtt_needs_a_spacecraft_for_its_topics():
    with pytest.raises(LinkUrlError, match="spacecraft"):
        open_link("mqtt://127.0.0.1:1883/queqiao", role="in")


async def test_a_send_only_link_drops_what_the_peer_sends():
    port = free_port()
    async with open_link(f"tcp-listen://127.0.0.1:{port}", role="out", backoff=FAST) as server, \
            open_link(f"tcp://127.0.0.1:{port}", role="out", backoff=FAST, receive=False) as client:
        await _wait_until(lambda: server.stats.up and client.stats.up)
        server.send(b"downlink" * 1000)  # the server talks back; nobody reads it on the client
        client.send(b"uplink")
        assert await _read_exactly(server, 6) == b"uplink"
        await _wait_until(lambda: client.stats.bytes_in == 8000)
        assert client._incoming.empty()


def test_mqtt_topics_follow_the_end_of_the_space_link():
    ground_in = open_link("mqtt://127.0.0.1:1883/qq", role="in", spacecraft="zhurong")
    ground_up = open_link("mqtt://127.0.0.1:1883/qq", role="out", spacecraft="zhurong", end="ground", receive=False)
    spacecraft = open_link("mqtt://127.0.0.1:1883/qq", role="out", spacecraft="zhurong")
    assert ground_in.subscribe_topics == ("qq/zhurong/downlink",)
    assert (ground_up.publish_topic, ground_up.subscribe_topics) == ("qq/zhurong/uplink", ())
    assert (spacecraft.publish_topic, spacecraft.subscribe_topics) == ("qq/zhurong/downlink", ("qq/zhurong/uplink",))


async def test_tcp_server_link_closes_its_clients_when_it_stops():
    """Leaving the link with a client connected ends promptly on 3.11 and 3.12+ (where a server's
    wait_closed() waits for every client) and the client sees the connection closed."""
    port = free_port()
    link = open_link(f"tcp-listen://127.0.0.1:{port}", role="in", backoff=FAST)
    await link.__aenter__()
    await _wait_until(lambda: link.local_address is not None)  # listening
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _wait_until(lambda: link.stats.up)
        writer.write(b"still here")
        await writer.drain()
        assert await _read_exactly(link, 10) == b"still here"
        await asyncio.wait_for(link.__aexit__(None, None, None), 5)  # before the fix: ~10 s on 3.12+
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert not link.stats.up
    finally:
        writer.close()


@pytest.mark.parametrize("url", ["udp://127.0.0.1:{port}", "tcp-listen://127.0.0.1:{port}"])
async def test_a_listening_link_is_bound_once_open_even_with_the_executor_busy(url):
    """The emulator's uplink and the daemon's downlink are listening links: a peer may send the moment
    they are open.  Name resolution runs on the loop's default executor, which a busy process can hold
    up; the link must not return from opening before its socket is bound (a bypass telecommand sent to
    an unbound port is lost for good)."""
    import concurrent.futures
    import threading
    import time

    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(executor)
    release = threading.Event()
    busy = loop.run_in_executor(None, release.wait, 2.0)  # the one worker is busy for a while
    try:
        port = free_port(socket.SOCK_DGRAM if url.startswith("udp") else socket.SOCK_STREAM)
        opened = time.monotonic()
        threading.Timer(0.3, release.set).start()
        async with open_link(url.format(port=port), role="in", backoff=FAST) as link:
            if url.startswith("udp"):  # its resolution goes through the executor (a TCP server's numeric one does not)
                assert time.monotonic() - opened >= 0.25
            assert link.local_address == ("127.0.0.1", port)
            if url.startswith("udp"):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(b"\x1a\xcf\xfc\x1d first", ("127.0.0.1", port))
                source, data = await asyncio.wait_for(link.receive_from(), 2)
                assert data == b"\x1a\xcf\xfc\x1d first"
            else:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
                writer.close()
    finally:
        release.set()
        await busy
        executor.shutdown()


async def test_a_listening_link_whose_address_is_taken_opens_at_once_and_retries():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        loop = asyncio.get_running_loop()
        opened = loop.time()
        async with open_link(f"udp://127.0.0.1:{port}", role="in", backoff=FAST) as link:
            assert loop.time() - opened < 2.0  # the first bind failed: no waiting out LISTEN_WAIT_S
            assert link.local_address is None and not link.stats.up
            holder.close()  # the address is free again: the supervisor's retry binds it
            for _ in range(100):
                if link.local_address is not None:
                    break
                await asyncio.sleep(0.02)
            assert link.local_address == ("127.0.0.1", port)
