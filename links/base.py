"""The common shape of every link: a supervised connection with queues on both sides.

A link is an async context manager.  Inside it, a supervisor task keeps the
connection up (reconnecting with exponential backoff), a writer drains the
outgoing queue, and a reader fills the incoming queue.  ``send`` never blocks
and never loses data to a broken connection: a frame leaves the outgoing queue
only once it has been written, and the queue is bounded (oldest dropped, and
counted, when a link stays down longer than the queue lasts).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from links.url import LinkUrl

log = logging.getLogger("queqiao.links")


#: How long opening a listening link waits for its socket to be bound (seconds).
LISTEN_WAIT_S = 5.0


class LinkClosed(Exception):
    """No more data will come from this link (end of a replayed file, or the link was closed)."""


@dataclass
class LinkStats:
    """Counters a link keeps for metrics and status (the names match the Prometheus metrics)."""

    up: bool = False
    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    connects: int = 0
    disconnects: int = 0
    dropped_out: int = 0
    dropped_in: int = 0
    last_error: str = ""
    last_change: float = 0.0


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect backoff: initial, doubling, capped."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0

    def delays(self):
        delay = self.initial
        while True:
            yield delay
            delay = min(self.maximum, delay * self.factor)


class Link(ABC):
    """Base class; subclasses implement :meth:`_session` (one connection's life)."""

    def __init__(self, url: LinkUrl, *, name: str | None = None, backoff: Backoff | None = None,
                 queue_size: int = 100_000, on_state: Callable[[Link, bool], None] | None = None,
                 receive: bool = True) -> None:
        """``receive=False``: a send-only link; whatever the peer sends is read and dropped (counted),
        so a peer that talks back (a TCP server broadcasting its downlink) never fills a queue."""
        self.url = url
        self.receiving = receive
        self.name = name or str(url)
        self.backoff = backoff or Backoff()
        self.stats = LinkStats()
        self._on_state = on_state
        self._outgoing: collections.deque = collections.deque()
        self._outgoing_limit = queue_size
        self._outgoing_ready = asyncio.Event()
        self._outgoing_empty = asyncio.Event()
        self._outgoing_empty.set()
        self._incoming: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=queue_size)
        self._supervisor: asyncio.Task | None = None
        self._closing = False
        self._finished = False
        self._first_attempt = asyncio.Event()  # set once the local address is bound, or the first try failed

    @property
    def framing(self) -> str:
        return self.url.framing

    @property
    def listens(self) -> bool:
        """Whether the link binds a local address that peers send to (a receiving UDP socket, a TCP server)."""
        return False

    # ------------------------------------------------------------------ public API

    async def __aenter__(self) -> Link:
        self._closing = False
        self._first_attempt.clear()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"link {self.name}")
        if self.listens:
            # A peer may send as soon as we say we are open: a datagram to a port not bound yet is
            # lost (ICMP port unreachable), and a telecommand sent once in bypass mode is never sent
            # again.  So a listening link is open once it is bound (or its first bind failed, which
            # the supervisor logs and retries), waiting at most LISTEN_WAIT_S.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_attempt.wait(), LISTEN_WAIT_S)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._supervisor is not None:
            self._closing = True
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._set_up(False, "closed")

    def send(self, data: bytes) -> None:
        """Queue one frame (datagram links) or CADU bytes (stream links) for sending."""
        self._enqueue(bytes(data))

    def _enqueue(self, item) -> None:
        """Queue an item for the writer (bytes, or what a subclass's writer takes)."""
        if len(self._outgoing) >= self._outgoing_limit:
            self._outgoing.popleft()
            self.stats.dropped_out += 1
        self._outgoing.append(item)
        self._outgoing_ready.set()
        self._outgoing_empty.clear()

    # The bound is part of the answer (drained or not) that shutdown paths log: not a cancel scope.
    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until everything queued has been written; False on timeout."""
        try:
            await asyncio.wait_for(self._outgoing_empty.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def receive_from(self) -> tuple[str, bytes]:
        """The next message (datagram links) or chunk (stream links), with its source.

        Stream consumers keep one synchroniser per source: chunks from two TCP
        clients are two streams.  Raises :class:`LinkClosed` at the end.
        """
        item = await self._incoming.get()
        if item is None:
            self._incoming.put_nowait(None)  # keep reporting the end to later callers
            raise LinkClosed(self.name)
        return item

    async def receive(self) -> bytes:
        return (await self.receive_from())[1]

    async def receive_many(self, limit: int = 4096) -> list[tuple[str, bytes]]:
        """Wait for one item, then take whatever else is already queued (up to ``limit``).

        The ground station's chain works in batches: one wake-up per burst, not per frame.
        """
        items = [await self.receive_from()]
        while len(items) < limit:
            try:
                item = self._incoming.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is None:
                self._incoming.put_nowait(None)
                break
            items.append(item)
        return items

    @property
    def pending_out(self) -> int:
        return len(self._outgoing)

    # ------------------------------------------------------------------ for subclasses

    @abstractmethod
    async def _session(self) -> None:
        """Connect, then run until the connection fails (raise) or ends (return)."""

    def _deliver(self, data: bytes, source: str = "") -> None:
        """Hand received bytes to the consumer (called from reader code)."""
        if not self.receiving:
            self.stats.bytes_in += len(data)
            return
        try:
            self._incoming.put_nowait((source or self.name, data))
        except asyncio.QueueFull:
            self.stats.dropped_in += 1
            return
        self.stats.bytes_in += len(data)
        self.stats.messages_in += 1

    async def _deliver_wait(self, data: bytes, source: str = "") -> None:
        """Like _deliver, but waits for room (stream links: lets TCP flow control push back)."""
        if not self.receiving:
            self.stats.bytes_in += len(data)
            return
        await self._incoming.put((source or self.name, data))
        self.stats.bytes_in += len(data)
        self.stats.messages_in += 1

    def _finish(self) -> None:
        """Signal the consumer that no more data will come (e.g. end of file)."""
        self._finished = True
        self._incoming.put_nowait(None)

    async def _writer(self, write: Callable[[Any], object]) -> None:
        """Drain the outgoing queue through ``write`` (sync or async); never drop on failure.

        Items are bytes, or (topic, payload, retain) for MQTT publications.
        """
        while True:
            while not self._outgoing:
                self._outgoing_empty.set()
                self._outgoing_ready.clear()
                await self._outgoing_ready.wait()
            data = self._outgoing[0]
            result = write(data)
            if asyncio.iscoroutine(result):
                await result
            self._outgoing.popleft()  # only now: a failed write keeps the frame for the next connection
            self.stats.bytes_out += len(data) if isinstance(data, bytes) else len(data[1])
            self.stats.messages_out += 1

    def _listening(self) -> None:
        """Subclasses: the local address is bound; peers' data now reaches us."""
        self._first_attempt.set()

    def _set_up(self, up: bool, reason: str = "") -> None:
        if up == self.stats.up:
            return
        self.stats.up = up
        self.stats.last_change = time.time()
        if up:
            self.stats.connects += 1
            log.info("link %s up (%s)", self.name, self.url.scheme)
        else:
            self.stats.disconnects += 1
            self.stats.last_error = reason
            log.log(logging.INFO if reason == "closed" else logging.WARNING, "link %s down: %s", self.name, reason)
        if self._on_state is not None:
            self._on_state(self, up)

    async def _supervise(self) -> None:
        delays = self.backoff.delays()
        while not self._finished:
            connects = self.stats.connects
            try:
                await self._session()
                if self._finished:
                    return
                reason = "connection closed by peer"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of a session means "reconnect"
                if self._closing:
                    # close() cancelled us while the session was failing: a TaskGroup inside
                    # it may have turned the cancellation into this error. Stop, do not retry.
                    raise asyncio.CancelledError from exc
                reason = f"{type(exc).__name__}: {exc}"
            self._first_attempt.set()  # whoever waits for the bind: it failed, and is retried below
            if self.stats.connects > connects:
                delays = self.backoff.delays()  # it was up: start the backoff afresh
            self._set_up(False, reason)
            delay = next(delays)
            log.info("link %s: reconnecting in %.1f s", self.name, delay)
            await asyncio.sleep(delay)
