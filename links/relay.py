"""An impaired UDP channel between two programs: loss, duplication and reordering, seeded.

    python -m links.relay --listen 127.0.0.1:10115 --to 127.0.0.1:10015 --loss 0.2 --duplicate 0.05 --reorder 0.1

Put one in each direction between ``flightsw run`` and ``groundstation run`` to see what the
ground makes of a bad space link (COP-1 retransmissions, verification, gaps).  Each datagram
received on ``--listen`` is dropped with probability ``--loss``; a survivor is held back with
probability ``--reorder`` and sent after the next one (or after ``--hold-s`` if none comes), and
is sent twice with probability ``--duplicate``.  The same seed gives the same decisions for the
same sequence of datagrams.  On SIGTERM or SIGINT it prints its counts as one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
from dataclasses import asdict, dataclass


@dataclass
class RelayCounts:
    received: int = 0
    forwarded: int = 0  # datagrams sent on, copies included
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0


class ImpairedRelay(asyncio.DatagramProtocol):
    """Forwards datagrams to ``target`` through the impairments; decisions from one seeded generator."""

    def __init__(self, target: tuple[str, int], *, loss: float, duplicate: float, reorder: float,
                 seed: int, hold_s: float) -> None:
        self.target, self.loss, self.duplicate, self.reorder = target, loss, duplicate, reorder
        self.rng = random.Random(seed)
        self.hold_s = hold_s
        self.counts = RelayCounts()
        self.transport: asyncio.DatagramTransport | None = None
        self._held: tuple[bytes, int] | None = None  # (datagram, copies) waiting to go after the next one
        self._release: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.counts.received += 1
        if self.rng.random() < self.loss:
            self.counts.dropped += 1
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        self.counts.duplicated += copies - 1
        if self._held is None and self.rng.random() < self.reorder:
            self._held = (data, copies)
            self._release = asyncio.get_running_loop().call_later(self.hold_s, self._send_held)
            return
        self._send(data, copies)
        if self._held is not None:
            self.counts.reordered += 1
            self._send_held()

    def _send(self, data: bytes, copies: int) -> None:
        assert self.transport is not None
        for _ in range(copies):
            self.transport.sendto(data, self.target)
            self.counts.forwarded += 1

    def _send_held(self) -> None:
        if self._release is not None:
            self._release.cancel()
            self._release = None
        held, self._held = self._held, None
        if held is not None:
            self._send(*held)

    def error_received(self, exc: Exception) -> None:
        pass  # nobody listening at the target yet (ICMP port unreachable): the datagram is lost, as on air


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a probability 0..1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a probability 0..1")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m links.relay", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=_address, required=True, metavar="HOST:PORT", help="UDP address to receive on")
    p.add_argument("--to", type=_address, required=True, metavar="HOST:PORT", help="UDP address to forward to")
    p.add_argument("--loss", type=_probability, default=0.0, help="probability a datagram is dropped")
    p.add_argument("--duplicate", type=_probability, default=0.0, help="probability a datagram is sent twice")
    p.add_argument("--reorder", type=_probability, default=0.0,
                   help="probability a datagram is held back and sent after the next one")
    p.add_argument("--hold-s", type=float, default=0.05, help="longest a held datagram waits (default 0.05 s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the decisions (default 0)")
    return p


async def relay(args: argparse.Namespace) -> RelayCounts:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: ImpairedRelay(args.to, loss=args.loss, duplicate=args.duplicate, reorder=args.reorder,
                              seed=args.seed, hold_s=args.hold_s), local_addr=args.listen)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"relay {args.listen[0]}:{args.listen[1]} -> {args.to[0]}:{args.to[1]}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        transport.close()
    return protocol.counts


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        counts = asyncio.run(relay(args))
    except OSError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(counts)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
