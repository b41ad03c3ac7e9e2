"""Differential property tests: PacketCodec against construct on random synthetic definitions.

For random fixed-size Structs (integers of every width and byte order, bit
fields, flags, floats, bytes, padding, Const/Default/Rebuild, arrays, nesting,
calibrated Parameters) and random packet bytes:
construct.parse == decode_many, construct.build == encode_many, and the compiled
kernels give the same columns as the pure-Python twins.
"""
from __future__ import annotations

import warnings

import construct as cs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cython_ext
from protocols.ccsds.pus import PacketErrorControl
from protocols.ccsds.spacepacket import PacketType, fixed_primary_header
from protocols.codec import PacketCodec
from tests.codec.helpers import assert_matches_construct, assert_same_columns, same
from tests.codec.synthetic import size_of, synthetic_struct

BACKENDS = ["pure"] + (["compiled"] if cython_ext.compiled("fields") is not None else [])
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _codec(struct, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every synthetic definition must be table-decodable
        return PacketCodec(struct, backend=backend)


def _packets(data, struct, consts, count) -> list[bytes]:
    size = size_of(struct)
    packets = []
    for _ in range(count):
        raw = bytearray(data.draw(st.binary(min_size=size, max_size=size)))
        for offset, value in consts:
            raw[offset : offset + len(value)] = value
        packets.append(bytes(raw))
    return packets


@SETTINGS
@given(st.data())
def test_random_definitions_decode_and_encode_like_construct(data):
    struct, consts = data.draw(synthetic_struct())
    packets = _packets(data, struct, consts, data.draw(st.integers(1, 5)))
    buffer = b"".join(packets)
    canonical = b"".join(struct.build(struct.parse(p)) for p in packets)
    results = {}
    for backend in BACKENDS:
        codec = _codec(struct, backend)
        columns = codec.decode_many(buffer)
        assert_matches_construct(struct, packets, columns)
        assert codec.encode_many(columns, count=len(packets)) == canonical
        raw = codec.raw_many(buffer)
        # Raw values are written as they are (a code of a state range or one of several codes of a state
        # keeps its code, where construct's build of the state name writes the lowest): every field
        # that is neither computed (Const/Default/Rebuild) nor a view of other octets reads back unchanged.
        written = codec.raw_many(codec.encode_many(raw, raw=True, count=len(packets)))
        for info in codec.fields:
            if not info.has_default and not info.view:
                assert same(raw[info.path], written[info.path]), info.path
        results[backend] = columns
    if len(results) == 2:
        assert_same_columns(results["pure"], results["compiled"])


@SETTINGS
@given(st.data())
def test_random_packets_with_error_control(data):
    """A primary header, a random body and a PEC: crc_ok, pec, and PEC computed on encode."""
    body, consts = data.draw(synthetic_struct())
    total = 6 + size_of(body) + 2
    struct = cs.Struct("primary" / fixed_primary_header(0x42, PacketType.TM, False, total),
                       "body" / body, "pec" / PacketErrorControl())
    consts = [(6 + offset, value) for offset, value in consts]
    packets = []
    for raw in _packets(data, struct, consts, data.draw(st.integers(1, 4))):
        raw = bytearray(raw)
        raw[0] &= 0x1F  # version 0 so construct and the codec read the same header
        raw[4:6] = (total - 7).to_bytes(2, "big")
        raw[-2:] = cython_ext.twin("crc").crc16(bytes(raw[:-2])).to_bytes(2, "big")
        packets.append(bytes(raw))
    corrupt = data.draw(st.integers(-1, len(packets) - 1))
    buffer = bytearray(b"".join(packets))
    canonical = b"".join(struct.build(struct.parse(p)) for p in packets)
    for backend in BACKENDS:
        codec = _codec(struct, backend)
        columns = codec.decode_many(bytes(packets and b"".join(packets)))
        assert_matches_construct(struct, packets, columns)
        assert columns["crc_ok"].all()
        assert codec.encode_many(columns, count=len(packets)) == canonical
        if corrupt >= 0:
            bad = bytearray(buffer)
            bad[corrupt * total + total - 1] ^= 0x01
            flags = codec.decode_many(bytes(bad))["crc_ok"]
            assert flags.tolist() == [i != corrupt for i in range(len(packets))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_offsets_select_packets_anywhere_in_a_buffer(backend):
    struct = cs.Struct("a" / cs.Int16ub, "b" / cs.BitStruct("x" / cs.BitsInteger(3), "y" / cs.BitsInteger(5)))
    rng = np.random.default_rng(7)
    buffer = rng.integers(0, 256, 1000, dtype=np.uint8).tobytes()
    offsets = np.array([0, 5, 17, 997], dtype=np.int64)
    codec = PacketCodec(struct, backend=backend)
    columns = codec.decode_many(buffer, offsets=offsets)
    assert_matches_construct(struct, [buffer[o : o + 3] for o in offsets], columns)
