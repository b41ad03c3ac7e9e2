"""The concrete links: UDP, TCP client and server, serial, file, MQTT.

Each implements one connection's life in ``_session``; the base class does
reconnection, queues and counters.  Which side binds is the caller's choice of
``role``: ``"in"`` receives (UDP binds, a file is read), ``"out"`` sends (UDP
targets the address, a file is appended to).  TCP, serial and MQTT carry both
directions on one connection whatever the role.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import ssl
import struct
import sys
import time

from links.base import Link
from links.pressure import PRESSURE
from links.url import LinkUrl

READ_CHUNK = 65536

#: Receive buffer a receiving UDP link asks for: at 50,000 frames/s it holds ~70 ms of frames
#: (each datagram costs ~2x its size in the kernel); net.core.rmem_max may cap it (see receive_buffer).
UDP_RECEIVE_BUFFER = 8 << 20
#: Datagrams read per wake-up before the loop gets a turn (the rest wait for the next one).
UDP_READS_PER_WAKEUP = 4096
#: Under load (a batch of at least LINGER_FROM datagrams), receive_many waits LINGER_S for more before
#: handing the batch over: the consumer's per-batch costs are then shared by more frames.  A quiet link
#: (a few frames per wake-up) never waits, so its latency is unchanged.
LINGER_FROM = 32
LINGER_S = 0.004
#: At ordinary rates (a frame every millisecond or so) a batch is coalesced for up to COALESCE_S after
#: its first datagram arrived, when the recent rate says another should come in that time: the
#: chain's fixed cost per batch is shared, within the 5 ms receipt-to-export budget.  A link slower
#: than one frame per COALESCE_S never waits.
COALESCE_S = 0.003
#: Linux SO_TIMESTAMPNS (not exported by the socket module): the kernel's arrival time of each datagram.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")


class UdpLink(Link):
    """One frame per datagram.  role "in": bind to the address; role "out": send to it."""

    def __init__(self, url: LinkUrl, *, role: str, **kwargs) -> None:
        super().__init__(url, **kwargs)
        self.role = role
        self.local_address: tuple[str, int] | None = None
        #: SO_RCVBUF the kernel granted the receiving socket (octets; Linux reports twice what it accounts).
        self.receive_buffer: int | None = None
        #: Arrival time (Unix seconds) of the oldest datagram of the last receive_many batch.
        self.last_receipt: float | None = None
        self._arrivals: collections.deque = collections.deque()  # [datagrams queued, arrival of the first]
        self._previous_receipt: float | None = None  # arrival of the previous batch's first datagram
        self._previous_count = 1  # datagrams in the previous batch
        self._interval = 1.0  # smoothed time between datagrams (seconds)

    @property
    def listens(self) -> bool:
        return self.role == "in"

    async def receive_many(self, limit: int = 4096) -> list[tuple[str, bytes]]:
        items = await super().receive_many(limit)
        if self.role == "in" and len(items) < limit and items[-1] is not None:
            wait = self._wait(len(items))
            if wait > 0:
                await asyncio.sleep(wait)
                queue = self._incoming
                while len(items) < limit and not queue.empty():
                    item = queue.get_nowait()
                    if item is None:
                        queue.put_nowait(None)  # the end: reported by the next call
                        break
                    items.append(item)
            self._previous_count = len(items)
        arrivals = self._arrivals
        self.last_receipt = arrivals[0][1] if arrivals else None
        taken = len(items)
        while taken and arrivals:
            if arrivals[0][0] <= taken:
                taken -= arrivals.popleft()[0]
            else:
                arrivals[0][0] -= taken  # the rest of that read arrived no earlier: keep its time
                taken = 0
        return items

    def _wait(self, queued: int) -> float:
        """How long to wait for more datagrams before handing over a batch of ``queued``."""
        if queued >= LINGER_FROM:
            return LINGER_S
        first = self._arrivals[0][1] if self._arrivals else None
        if first is None:
            return 0.0
        if self._previous_receipt is not None:
            # The previous batch's datagrams all arrived between its first and this batch's first.
            interval = max(first - self._previous_receipt, 0.0) / self._previous_count
            self._interval += 0.25 * (interval - self._interval)
        self._previous_receipt = first
        return max(first + COALESCE_S - time.time(), 0.0) if self._interval < COALESCE_S else 0.0

    async def _session(self) -> None:
        if self.role == "in":
            await self._receive_session()
            return
        loop = asyncio.get_running_loop()
        link = self

        class Protocol(asyncio.DatagramProtocol):
            def __init__(self) -> None:
                self.lost: asyncio.Future = loop.create_future()

            def datagram_received(self, data: bytes, addr) -> None:
                link._deliver(data, f"{addr[0]}:{addr[1]}")

            def error_received(self, exc: Exception) -> None:
                # ICMP port unreachable while the peer is not listening yet: not fatal for UDP.
                link.stats.last_error = str(exc)

            def connection_lost(self, exc) -> None:
                if not self.lost.done():
                    self.lost.set_result(exc)

        if self.role == "in":
            transport, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=self.url.address)
        else:
            transport, protocol = await loop.create_datagram_endpoint(Protocol, remote_addr=self.url.address)
        self.local_address = transport.get_extra_info("sockname")[:2]
        self._set_up(True)
        writer = asyncio.create_task(self._writer(transport.sendto))
        try:
            exc = await protocol.lost
            raise ConnectionError(f"UDP socket closed: {exc}")
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            transport.close()

    async def _receive_session(self) -> None:
        """Bind and read datagrams straight from the socket: every datagram waiting is read in one
        wake-up (asyncio's datagram transport reads one per loop iteration), with a large receive
        buffer and the kernel's arrival time of the first one."""
        loop = asyncio.get_running_loop()
        host, port = self.url.address
        info = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = info[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        arrivals = self._arrivals
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            self.receive_buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            if sys.platform.startswith("linux"):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            sock.bind(address)
            sock.setblocking(False)
            self.local_address = sock.getsockname()[:2]
            self._listening()
            lost: asyncio.Future = loop.create_future()
            sources: dict = {}
            recvfrom, recvmsg, deliver = sock.recvfrom, sock.recvmsg, self._deliver
            note_wait = PRESSURE.note_wait
            stats = self.stats
            ancillary = socket.CMSG_SPACE(_TIMESPEC.size)

            def readable() -> None:
                before = stats.messages_in
                first = None
                for _ in range(UDP_READS_PER_WAKEUP):
                    try:
                        if first is None:
                            data, anc, _, addr = recvmsg(READ_CHUNK, ancillary)
                            first = time.time()
                            for level, kind, value in anc:
                                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                                    sec, nsec = _TIMESPEC.unpack_from(value)
                                    first = sec + nsec * 1e-9
                        else:
                            data, addr = recvfrom(READ_CHUNK)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:
                        # ICMP errors (a peer not listening) are not fatal for UDP; anything else ends the session.
                        stats.last_error = str(exc)
                        if not isinstance(exc, ConnectionError) and not lost.done():
                            lost.set_result(exc)
                        break
                    source = sources.get(addr)
                    if source is None:
                        source = sources[addr] = f"{addr[0]}:{addr[1]}"
                    deliver(data, source)
                queued = stats.messages_in - before
                if queued and first is not None:
                    arrivals.append([queued, first])
                    note_wait(time.time() - first)  # how long the oldest waited: is the loop behind?

            loop.add_reader(sock.fileno(), readable)
            self._set_up(True)

            def send(data: bytes) -> None:
                # A receiving link answers whoever sent last (there is no fixed peer).
                if sources:
                    sock.sendto(data, next(reversed(sources)))

            writer = asyncio.create_task(self._writer(send))
            try:
                exc = await lost
                raise ConnectionError(f"UDP socket failed: {exc}")
            finally:
                loop.remove_reader(sock.fileno())
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        finally:
            arrivals.clear()
            sock.close()


async def _pump_reader(link: Link, reader: asyncio.StreamReader, source: str) -> None:
    while True:
        data = await reader.read(READ_CHUNK)
        if not data:
            raise ConnectionResetError(f"{source} closed the connection")
        await link._deliver_wait(data, source)


class TcpClientLink(Link):
    """Connects to a server; a CADU stream both ways."""

    async def _session(self) -> None:
        reader, writer = await asyncio.open_connection(*self.url.address)
        self._set_up(True)
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pump_reader(self, reader, peer))
                group.create_task(self._writer(write))
        except* (ConnectionError, OSError) as failure:
            raise failure.exceptions[0] from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


SERVER_CLOSE_TIMEOUT = 5.0  # seconds for closed client connections to finish on shutdown


class TcpServerLink(Link):
    """Listens; sends to every connected client, receives each client's stream separately.

    The link is "up" while at least one client is connected.  Frames queue while
    nobody is connected, so a ground station that connects late still gets them
    (up to the queue bound).
    """

    def __init__(self, url: LinkUrl, **kwargs) -> None:
        super().__init__(url, **kwargs)
        self._clients: dict[str, asyncio.StreamWriter] = {}
        self._have_client = asyncio.Event()
        self.local_address: tuple[str, int] | None = None

    @property
    def listens(self) -> bool:
        return True

    async def _session(self) -> None:
        server = await asyncio.start_server(self._client, *self.url.address)
        self.local_address = server.sockets[0].getsockname()[:2]
        self._listening()
        try:
            await self._writer(self._broadcast)
        finally:
            # Clients first: since Python 3.12 the server's wait_closed() (and leaving
            # `async with server:`) waits for every client connection to end.
            server.close()
            for peer in list(self._clients):
                self._drop_client(peer)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), SERVER_CLOSE_TIMEOUT)

    async def _broadcast(self, data: bytes) -> None:
        while not self._clients:
            self._have_client.clear()
            await self._have_client.wait()
        for peer, writer in list(self._clients.items()):
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                self._drop_client(peer)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        self._clients[peer] = writer
        self._have_client.set()
        self._set_up(True)
        try:
            await _pump_reader(self, reader, peer)
        except (ConnectionError, OSError):
            pass
        finally:
            self._drop_client(peer)

    def _drop_client(self, peer: str) -> None:
        writer = self._clients.pop(peer, None)
        if writer is not None:
            writer.close()
        if not self._clients:
            self._set_up(False, "no client connected")


class SerialLink(Link):
    """A UART carrying a CADU stream (pyserial; the fd is watched by the event loop)."""

    async def _session(self) -> None:
        import serial  # imported here: only serial links need pyserial

        loop = asyncio.get_running_loop()
        port = await asyncio.to_thread(
            serial.Serial, self.url.path, int(self.url.query["baud"]), timeout=0, write_timeout=None
        )
        lost: asyncio.Future = loop.create_future()

        def readable() -> None:
            try:
                data = port.read(port.in_waiting or 1)
            except (OSError, serial.SerialException) as exc:
                if not lost.done():
                    lost.set_exception(exc)
                return
            if data:
                self._deliver(data, self.url.path)

        loop.add_reader(port.fileno(), readable)
        self._set_up(True)
        writer = asyncio.create_task(self._writer(lambda data: asyncio.to_thread(port.write, data)))
        try:
            done, _ = await asyncio.wait({writer, lost}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            loop.remove_reader(port.fileno())
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            port.close()


class FileLink(Link):
    """role "out": append the stream to a file; role "in": read it (``?follow=1`` keeps tailing)."""

    def __init__(self, url: LinkUrl, *, role: str, **kwargs) -> None:
        super().__init__(url, **kwargs)
        self.role = role

    async def _session(self) -> None:
        if self.role == "out":
            # open() blocks on a FIFO until the other end appears: off the event loop.
            with await asyncio.to_thread(open, self.url.path, "ab", buffering=0) as handle:
                self._set_up(True)
                await self._writer(handle.write)
            return
        follow = self.url.query.get("follow", "0") in {"1", "true", "yes"}
        with await asyncio.to_thread(open, self.url.path, "rb") as handle:
            self._set_up(True)
            while True:
                data = handle.read(READ_CHUNK)
                if data:
                    await self._deliver_wait(data, self.url.path)
                elif follow:
                    await asyncio.sleep(0.2)
                else:
                    self._finish()
                    return


class MqttLink(Link):
    """One frame per MQTT message: publishes to ``publish_topic``, subscribes to ``subscribe_topics``."""

    def __init__(self, url: LinkUrl, *, publish_topic: str | None = None,
                 subscribe_topics: tuple[str, ...] = (), client_options: dict | None = None, **kwargs) -> None:
        super().__init__(url, **kwargs)
        self.publish_topic = publish_topic
        self.subscribe_topics = subscribe_topics
        self.qos = int(url.query.get("qos", "1"))
        self._extra_options = dict(client_options or {})

    def send(self, data: bytes) -> None:
        if self.publish_topic is None:
            raise RuntimeError(f"link {self.name} has no publish topic")
        self._enqueue((self.publish_topic, bytes(data), False))

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue a message for any topic (kept while the broker is away, bounded)."""
        self._enqueue((topic, bytes(payload), retain))

    def _client_options(self) -> dict:
        options: dict = {"hostname": self.url.host, "port": self.url.port}
        options.update(self._extra_options)
        if "client_id" in self.url.query:
            options["identifier"] = self.url.query["client_id"]
        if "username" in self.url.query:
            options["username"] = self.url.query["username"]
            variable = self.url.query.get("password_env")
            if variable:
                if variable not in os.environ:
                    raise RuntimeError(f"link {self.name}: environment variable {variable} (MQTT password) is not set")
                options["password"] = os.environ[variable]
        if self.url.scheme == "mqtts" and "tls_context" not in options:  # the caller's context wins
            context = ssl.create_default_context(cafile=self.url.query.get("ca"))
            if "cert" in self.url.query:
                context.load_cert_chain(self.url.query["cert"], self.url.query.get("key"))
            options["tls_context"] = context
        return options

    async def _session(self) -> None:
        import aiomqtt

        try:
            async with aiomqtt.Client(**self._client_options()) as client:
                for topic in self.subscribe_topics:
                    await client.subscribe(topic, qos=self.qos)
                self._set_up(True)

                async def read() -> None:
                    async for message in client.messages:
                        self._deliver(bytes(message.payload), str(message.topic))

                async def publish(item: tuple[str, bytes, bool]) -> None:
                    topic, payload, retain = item
                    await client.publish(topic, payload=payload, qos=self.qos, retain=retain)

                async with asyncio.TaskGroup() as group:
                    if self.subscribe_topics:
                        group.create_task(read())
                    group.create_task(self._writer(publish))
        except* aiomqtt.MqttError as failure:
            raise ConnectionError(str(failure.exceptions[0])) from None
