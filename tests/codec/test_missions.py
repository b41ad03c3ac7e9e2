"""Every packet of every spacecraft in the mission registry: PacketCodec agrees with construct.

The registry (protocols.missions) is iterated at collection time, so a mission
added later is covered with no change here.  For each definition: random packet
bodies (with the header, key and PEC made consistent) are parsed by construct
and decoded by the codec on every available backend; encode_many of the decoded
columns equals construct's build of the parsed values, byte for byte; and no
mission packet needs the construct fallback.
"""
from __future__ import annotations

import warnings
import zlib

import construct as cs
import numpy as np
import pytest

import cython_ext
from protocols.codec import PacketCodec
from protocols.errors import ProtocolError
from tests.codec.helpers import assert_matches_construct, assert_same_columns

BACKENDS = ["pure"] + (["compiled"] if cython_ext.compiled("fields") is not None else [])
PACKETS_PER_DEFINITION = 6


def _mission_packets():
    from protocols.missions import registry

    found = []
    for spacecraft in registry():
        for packet in spacecraft.packets:
            found.append(pytest.param(packet, id=f"{spacecraft.name}:{packet.name}"))
    return found


MISSION_PACKETS = _mission_packets()


def _patch_consts(node: cs.Construct, raw: bytearray, offset: int) -> None:
    """Write every byte-level Const of (nested) Structs into ``raw`` (found with construct's own sizeof)."""
    while isinstance(node, cs.Renamed):
        node = node.subcon
    if isinstance(node, cs.Const):
        data = node.build(None)
        raw[offset : offset + len(data)] = data
    elif isinstance(node, cs.Struct):
        for sub in node.subcons:
            _patch_consts(sub, raw, offset)
            offset += sub.sizeof()


def _random_commands(command, rng: np.random.Generator) -> list[bytes]:
    """Telecommands with valid random arguments (their Argument fields reject anything else)."""
    out = []
    for i in range(PACKETS_PER_DEFINITION):
        args = {}
        for name, argument in command.arguments.items():
            if isinstance(argument.valid, frozenset):
                args[name] = sorted(argument.valid)[int(rng.integers(len(argument.valid)))]
            else:
                lo, hi = argument.valid
                value = argument.quantise(lo + (hi - lo) * float(rng.random()))
                args[name] = min(max(value, lo), hi) if argument.domain.is_float else value
        try:
            out.append(command.build(sequence_count=i, **args))
        except ProtocolError:
            continue  # a quantised value just outside the valid range
    return out


def _random_packets(packet, rng: np.random.Generator) -> list[bytes]:
    if getattr(packet, "arguments", None):
        return _random_commands(packet, rng)
    struct = packet.construct
    size = struct.sizeof()
    crc = cython_ext.twin("crc")
    out = []
    attempts = 0
    while len(out) < PACKETS_PER_DEFINITION and attempts < 20 * PACKETS_PER_DEFINITION:
        attempts += 1
        raw = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        _patch_consts(struct, raw, 0)
        raw[0] &= 0x1F  # packet version 0
        raw[4:6] = (size - 7).to_bytes(2, "big")
        if packet.key is not None:
            raw[packet.key_offset : packet.key_offset + 2] = packet.key.to_bytes(2, "big")
        raw[-2:] = crc.crc16(bytes(raw[:-2])).to_bytes(2, "big")
        try:
            struct.parse(bytes(raw))
        except cs.ConstError:
            continue  # a Const elsewhere in the body: draw again
        out.append(bytes(raw))
    return out


def test_every_mission_packet_is_covered():
    assert len(MISSION_PACKETS) >= 200


@pytest.mark.parametrize("packet", MISSION_PACKETS)
def test_mission_packet_codec_matches_construct(packet):
    struct = packet.construct
    rng = np.random.default_rng(zlib.crc32(packet.name.encode()))  # the same draws in every run
    packets = _random_packets(packet, rng)
    assert packets, "could not draw a parseable packet"
    buffer = b"".join(packets)
    canonical = b"".join(struct.build(struct.parse(p)) for p in packets)
    decoded = {}
    for backend in BACKENDS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            codec = PacketCodec(struct, name=packet.name, backend=backend)
        if getattr(packet, "arguments", None):
            # Telecommand arguments validate on parse/build: the codec runs construct, and says so.
            assert codec.fallback and len(caught) == 1 and codec.fallback in str(caught[0].message)
        else:
            assert not caught and codec.fallback is None, [str(w.message) for w in caught]
        columns = codec.decode_many(buffer)
        assert_matches_construct(struct, packets, columns)
        assert columns["crc_ok"].all()
        assert codec.encode_many(columns) == canonical
        decoded[backend] = columns
    if len(decoded) == 2:
        assert_same_columns(decoded["pure"], decoded["compiled"])
