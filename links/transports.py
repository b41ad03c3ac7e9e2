"""The concrete links: UDP, TCP client and server, serial, file, MQTT.

Each implements one connection's life in ``_session``; the base class does
reconnection, queues and counters.  Which side binds is the caller's choice of
``role``: ``"in"`` receives (UDP binds, a file is read), ``"out"`` sends (UDP
targets the address, a file is appended to).  TCP, serial and MQTT carry both
directions on one connection whatever the role.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import ssl

from links.base import Link
from links.url import LinkUrl

READ_CHUNK = 65536


class UdpLink(Link):
    """One frame per datagram.  role "in": bind to the address; role "out": send to it."""

    def __init__(self, url: LinkUrl, *, role: str, **kwargs) -> None:
        super().__init__(url, **kwargs)
        self.role = role
        self.local_address: tuple[str, int] | None = None

    async def _session(self) -> None:
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

    async def _session(self) -> None:
        server = await asyncio.start_server(self._client, *self.url.address)
        self.local_address = server.sockets[0].getsockname()[:2]
        try:
            async with server:
                await self._writer(self._broadcast)
        finally:
            for writer in list(self._clients.values()):
                writer.close()

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
            with open(self.url.path, "ab", buffering=0) as handle:
                self._set_up(True)
                await self._writer(handle.write)
            return
        follow = self.url.query.get("follow", "0") in {"1", "true", "yes"}
        with open(self.url.path, "rb") as handle:
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
        if self.url.scheme == "mqtts":
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
