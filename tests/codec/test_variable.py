"""Variable-size definitions: VariablePacketCodec against construct, packet for packet, in both kernel modes.

Random shapes: a count field and a repeated block of that many elements, a length
field and a block of that many octets (inside a nested Struct, so the expression
sees its own context), a random fixed body between them (with overlapping views and
bit fields from the fixed-size strategies), and a trailing block to the packet end.
"""
from __future__ import annotations

import construct as cs
import numpy as np
import pytest
from construct import this
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cython_ext
from protocols.codec import Ragged, VariablePacketCodec
from protocols.errors import DefinitionError, ProtocolError
from tests.codec.helpers import assert_matches_construct
from tests.codec.synthetic import byte_leaf, size_of, synthetic_struct

BACKENDS = ["pure"] + (["compiled"] if cython_ext.compiled("fields") is not None else [])
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _header(body_length: int) -> bytes:
    return bytes([0x08, 0x01, 0xC0, 0x00]) + (body_length - 1).to_bytes(2, "big")


PRIMARY = cs.Struct("word" / cs.Int16ub, "sequence" / cs.Int16ub, "length" / cs.Int16ub)


@st.composite
def variable_definition(draw):
    body, consts = draw(synthetic_struct())
    element = draw(byte_leaf())
    trailing = draw(st.sampled_from(["greedy_bytes", "greedy_words", "none"]))
    fields = ["primary" / PRIMARY, "count" / cs.Int8ub, "items" / cs.Array(this.count, element), "body" / body,
              "block" / cs.Struct("size" / cs.Int8ub, "data" / cs.Bytes(this.size - 0))]
    if trailing == "greedy_bytes":
        fields.append("rest" / cs.GreedyBytes)
    elif trailing == "greedy_words":
        fields.append("rest" / cs.GreedyRange(cs.Int16ub))
    return cs.Struct(*fields), element, body, consts, trailing


def _packet(data, element, body, consts, trailing) -> bytes:
    count = data.draw(st.integers(0, 3))
    items = data.draw(st.binary(min_size=count * size_of(element), max_size=count * size_of(element)))
    fixed = bytearray(data.draw(st.binary(min_size=size_of(body), max_size=size_of(body))))
    for offset, value in consts:
        fixed[offset : offset + len(value)] = value
    size = data.draw(st.integers(0, 4))
    block = bytes([size]) + data.draw(st.binary(min_size=size, max_size=size))
    rest = b"" if trailing == "none" else data.draw(st.binary(max_size=6))
    if trailing == "greedy_words":
        rest = rest[: len(rest) // 2 * 2]
    payload = bytes([count]) + items + bytes(fixed) + block + rest
    return _header(len(payload)) + payload


@SETTINGS
@given(st.data())
def test_random_variable_definitions_decode_like_construct(data):
    struct, element, body, consts, trailing = data.draw(variable_definition())
    packets = [_packet(data, element, body, consts, trailing) for _ in range(data.draw(st.integers(1, 6)))]
    results = []
    for backend in BACKENDS:
        columns = VariablePacketCodec(struct, backend=backend).decode_many(b"".join(packets))
        assert isinstance(columns["block.data"], Ragged)
        assert columns["block.data"].lengths.tolist() == columns["block.size"].tolist()
        assert columns["items"].lengths.tolist() == columns["count"].tolist()
        assert_matches_construct(struct, packets, columns)
        results.append(columns)
    if len(results) == 2:
        for key, value in results[0].items():
            other = results[1][key]
            if isinstance(value, Ragged):
                # Packet by packet, NaN equal to NaN: a float element may decode to NaN in both backends.
                assert value.lengths.tolist() == other.lengths.tolist(), key
                assert all(np.array_equal(value[i], other[i], equal_nan=value.values.dtype.kind == "f")
                           for i in range(len(value))), key
            else:
                assert np.array_equal(value, other, equal_nan=value.dtype.kind == "f"), key


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_size_larger_than_the_packet_is_a_protocol_error_naming_the_packet(backend):
    struct = cs.Struct("primary" / PRIMARY, "n" / cs.Int8ub, "samples" / cs.Array(this.n, cs.Int16ub))
    good = _header(3) + bytes([1, 0, 7])
    bad = _header(3) + bytes([5, 0, 7])  # claims 5 samples, holds 1
    codec = VariablePacketCodec(struct, backend=backend)
    assert codec.decode_many(good)["samples"].tolist() == [[7]]
    with pytest.raises(ProtocolError, match=r"at byte 9: packet 1 is 9 octets, its layout needs 17"):
        codec.decode_many(good + bad)


def test_a_fixed_definition_or_a_greedy_part_before_the_end_is_refused():
    with pytest.raises(DefinitionError, match="no variable-size part"):
        VariablePacketCodec(cs.Struct("a" / cs.Int8ub))
    with pytest.raises(DefinitionError, match="'rest' runs to the packet end but is not last"):
        VariablePacketCodec(cs.Struct("primary" / PRIMARY, "rest" / cs.GreedyBytes, "n" / cs.Int8ub,
                                      "x" / cs.Bytes(this.n)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_idex_like_packets_match_ccsdspy_variable_length(tmp_path, backend):
    import logging

    from benchmarks.variable import DESCRIPTORS, IDEX_LIKE, ccsdspy_definition, idex_like_packets

    logging.getLogger("ccsdspy").setLevel(logging.ERROR)
    data = idex_like_packets(41)
    path = tmp_path / "idex_like.bin"
    path.write_bytes(data)
    theirs = ccsdspy_definition().load(str(path), include_primary_header=True)
    ours = VariablePacketCodec(IDEX_LIKE, backend=backend).decode_many(data)
    assert ours["primary.length"].tolist() == theirs["CCSDS_PACKET_LENGTH"].tolist()
    assert ours["primary.count"].tolist() == theirs["CCSDS_SEQUENCE_COUNT"].tolist()
    for name in ("shcoarse", "shfine", "event", *DESCRIPTORS):
        assert ours[name].tolist() == theirs[name].tolist(), name
    assert ours["waveform"].tolist() == [list(w) for w in theirs["waveform"]]
    assert sorted(set(ours["waveform"].lengths.tolist())) == [24, 40, 64, 96]
