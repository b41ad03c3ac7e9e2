"""The software bus: publish/subscribe of typed messages between apps (cFS SB, small).

A message carries a message id (``msg_id``) and a payload.  Each app owns one
:class:`Pipe` (a bounded FIFO) and subscribes it to message ids.  Publishing puts
the message into every subscribed pipe; a full pipe drops the message and counts
it (as cFS does: a slow app must not stall the bus).  No threads: the executive
drains pipes between scheduler ticks.

Message ids can be *registered* with a payload type; publishing a payload of the
wrong type is then a programming error, raised at once.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    """One bus message: id, payload, who sent it and when (sim seconds)."""

    msg_id: int
    payload: Any = None
    sender: str = ""
    time: float = 0.0


@dataclass(frozen=True, slots=True)
class MessageType:
    """A registered message id: its name and the payload type it must carry (None: no payload)."""

    msg_id: int
    name: str
    payload_type: type | tuple[type, ...] | None = None


@dataclass
class Pipe:
    """A bounded FIFO of messages owned by one app."""

    name: str
    depth: int = 16
    queue: deque[Message] = field(default_factory=deque, repr=False)
    received: int = 0
    dropped: int = 0
    high_water: int = 0

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"pipe {self.name!r}: depth must be >= 1, got {self.depth}")

    def put(self, message: Message) -> bool:
        if len(self.queue) >= self.depth:
            self.dropped += 1
            return False
        self.queue.append(message)
        self.received += 1
        self.high_water = max(self.high_water, len(self.queue))
        return True

    def pop(self) -> Message | None:
        return self.queue.popleft() if self.queue else None

    def drain(self) -> Iterator[Message]:
        """Messages in arrival order, including ones that arrive while draining."""
        while self.queue:
            yield self.queue.popleft()

    def __len__(self) -> int:
        return len(self.queue)


class SoftwareBus:
    """Routes published messages to subscribed pipes, with counters for housekeeping."""

    def __init__(self) -> None:
        self._pipes: dict[str, Pipe] = {}
        self._routes: dict[int, list[Pipe]] = {}
        self._types: dict[int, MessageType] = {}
        self.published = 0
        self.no_subscriber = 0
        self.dropped = 0

    # -- definition
    def register(self, msg_id: int, name: str, payload_type: type | tuple[type, ...] | None = None) -> MessageType:
        """Declare a message id; re-registering the same id with another name is an error."""
        known = self._types.get(msg_id)
        mt = MessageType(msg_id, name, payload_type)
        if known is not None and known != mt:
            raise ValueError(f"message id 0x{msg_id:04X} already registered as {known.name!r}")
        self._types[msg_id] = mt
        return mt

    def message_type(self, msg_id: int) -> MessageType | None:
        return self._types.get(msg_id)

    def create_pipe(self, name: str, depth: int = 16) -> Pipe:
        if name in self._pipes:
            raise ValueError(f"a pipe named {name!r} already exists")
        pipe = Pipe(name, depth)
        self._pipes[name] = pipe
        return pipe

    def pipes(self) -> dict[str, Pipe]:
        return dict(self._pipes)

    def subscribe(self, pipe: Pipe, msg_id: int) -> None:
        routes = self._routes.setdefault(msg_id, [])
        if pipe not in routes:
            routes.append(pipe)

    def unsubscribe(self, pipe: Pipe, msg_id: int) -> None:
        routes = self._routes.get(msg_id, [])
        if pipe in routes:
            routes.remove(pipe)

    def subscribers(self, msg_id: int) -> list[str]:
        return [p.name for p in self._routes.get(msg_id, [])]

    # -- traffic
    def publish(self, message: Message) -> int:
        """Deliver to every subscribed pipe; returns how many pipes accepted it."""
        mt = self._types.get(message.msg_id)
        if mt is not None:
            if mt.payload_type is None:
                if message.payload is not None:
                    raise TypeError(
                        f"message {mt.name} (0x{mt.msg_id:04X}) carries no payload, got {type(message.payload).__name__}")
            elif not isinstance(message.payload, mt.payload_type):
                raise TypeError(
                    f"message {mt.name} (0x{mt.msg_id:04X}) needs a {mt.payload_type} payload, "
                    f"got {type(message.payload).__name__}")
        self.published += 1
        routes = self._routes.get(message.msg_id)
        if not routes:
            self.no_subscriber += 1
            return 0
        accepted = 0
        for pipe in routes:
            if pipe.put(message):
                accepted += 1
            else:
                self.dropped += 1
                log.debug("pipe %s full (depth %d): dropped msg 0x%04X", pipe.name, pipe.depth, message.msg_id)
        return accepted

    def counters(self) -> dict[str, int]:
        return {"published": self.published, "no_subscriber": self.no_subscriber, "dropped": self.dropped}
