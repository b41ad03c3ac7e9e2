"""PacketCodec behaviour: the housekeeping packet, errors, the construct fallback, streams and frames."""
from __future__ import annotations

import warnings

import construct as cs
import numpy as np
import pytest

import cython_ext
from protocols.ccsds.pus import tm_packet
from protocols.codec import PacketCodec, extract_packets, split_packets
from protocols.errors import DefinitionError, ProtocolError
from protocols.parameters import Linear, Parameter, Polynomial, States
from tests.codec.helpers import assert_matches_construct

BACKENDS = ["pure"] + (["compiled"] if cython_ext.compiled("fields") is not None else [])

HK = tm_packet(0x123, 3, 25, [
    "hk" / cs.Struct(
        "sid" / cs.Const(7, cs.Int16ub),
        "temperature" / Parameter(cs.Int16sb, unit="degC", description="panel", calibration=Linear(0.01, -10)),
        "mode" / Parameter(cs.Int8ub, unit="state", description="mode", calibration=States({0: "SAFE", 1: "NOMINAL"})),
        "currents" / cs.Array(3, cs.Float32b),
        "status" / cs.BitStruct("heater" / cs.Flag, "channel" / cs.BitsInteger(3), "spare" / cs.Padding(4)),
    ),
])


def _values(i: int) -> dict:
    return {"primary": {"sequence_count": i}, "secondary": {"message_counter": i, "time": {"coarse": 1000 + i, "fine": i}},
            "hk": {"temperature": -10 + 0.01 * i, "mode": ("SAFE", "NOMINAL")[i % 2], "currents": [0.5, i, -1.0],
                   "status": {"heater": i % 3 == 0, "channel": i % 8}}}


PACKETS = [HK.build(_values(i)) for i in range(20)]
BUFFER = b"".join(PACKETS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_housekeeping_columns(backend):
    codec = PacketCodec(HK, backend=backend)
    columns = codec.decode_many(BUFFER)
    assert_matches_construct(HK, PACKETS, columns)
    assert columns["primary.apid"].tolist() == [0x123] * 20
    assert columns["hk.currents"].shape == (20, 3)
    assert columns["hk.mode"][:2].tolist() == ["SAFE", "NOMINAL"]
    assert columns["crc_ok"].all()
    raw = codec.raw_many(BUFFER)
    assert raw["hk.mode"].tolist() == [i % 2 for i in range(20)]
    assert raw["hk.temperature"].dtype == np.int16
    eng = codec.calibrate(raw)
    assert np.array_equal(eng["hk.temperature"], columns["hk.temperature"])
    assert codec.encode_many(columns) == BUFFER
    assert codec.encode_many(raw, raw=True) == BUFFER


@pytest.mark.parametrize("backend", BACKENDS)
def test_encode_fills_defaults_consts_and_pec(backend):
    codec = PacketCodec(HK, backend=backend)
    minimal = {
        "primary.sequence_count": np.arange(20),
        "secondary.message_counter": np.arange(20),
        "secondary.time.coarse": 1000 + np.arange(20),
        "secondary.time.fine": np.arange(20),
        "hk.temperature": -10 + 0.01 * np.arange(20),
        "hk.mode": np.array(["SAFE", "NOMINAL"] * 10),
        "hk.currents": np.stack([np.full(20, 0.5), np.arange(20), np.full(20, -1.0)], axis=1),
        "hk.status.heater": np.arange(20) % 3 == 0,
        "hk.status.channel": np.arange(20) % 8,
    }
    assert codec.encode_many(minimal) == BUFFER
    with pytest.raises(ProtocolError, match="hk.status.channel"):
        codec.encode_many({**minimal, "hk.status.channel": np.full(20, 8)})
    with pytest.raises(ProtocolError, match="hk.sid"):
        codec.encode_many({**minimal, "hk.sid": 8})
    without = dict(minimal)
    del without["hk.temperature"]
    with pytest.raises(ProtocolError, match="hk.temperature"):
        codec.encode_many(without)
    with pytest.raises(ProtocolError, match="unknown column"):
        codec.encode_many({**minimal, "hk.nope": 1})


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_and_corrupted_buffers(backend):
    codec = PacketCodec(HK, backend=backend)
    with pytest.raises(ProtocolError, match="not a whole number"):
        codec.decode_many(BUFFER[:-1])
    with pytest.raises(ProtocolError):
        codec.decode_many(BUFFER, offsets=[0, len(BUFFER) - 5])
    bad = bytearray(BUFFER)
    bad[3 * HK.sizeof() + 20] ^= 0xFF
    flags = codec.decode_many(bytes(bad))["crc_ok"]
    assert flags.tolist() == [i != 3 for i in range(20)]
    assert codec.decode_many(b"")["crc_ok"].size == 0


def test_fallback_warns_once_naming_the_field_and_still_agrees():
    struct = cs.Struct("a" / cs.Int8ub, "inner" / cs.Struct("kind" / cs.Enum(cs.Int8ub, low=1, high=2)),
                       "b" / cs.Int16ul)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec = PacketCodec(struct)
    assert len(caught) == 1 and "inner.kind" in str(caught[0].message)
    assert codec.fallback == "inner.kind"
    packets = [struct.build({"a": i, "inner": {"kind": ("low", "high")[i % 2]}, "b": 300 * i}) for i in range(5)]
    columns = codec.decode_many(b"".join(packets))
    assert columns["b"].tolist() == [300 * i for i in range(5)]
    assert [str(v) for v in columns["inner.kind"]] == ["low", "high", "low", "high", "low"]
    assert codec.encode_many(columns) == b"".join(packets)


def test_fallback_keeps_packet_error_control():
    struct = tm_packet(0x55, 3, 25, ["hk" / cs.Struct("kind" / cs.Enum(cs.Int8ub, a=1, b=2))])
    with pytest.warns(RuntimeWarning, match="hk.kind"):
        codec = PacketCodec(struct)
    packets = [struct.build({"primary": {}, "secondary": {"time": {"coarse": i, "fine": 0}}, "hk": {"kind": "a"}})
               for i in range(4)]
    bad = bytearray(b"".join(packets))
    bad[-1] ^= 1
    columns = codec.decode_many(bytes(bad))
    assert columns["crc_ok"].tolist() == [True, True, True, False]
    assert codec.encode_many(columns) == b"".join(packets)


def test_variable_size_definitions_are_refused():
    from protocols.errors import DefinitionError

    with pytest.raises(DefinitionError):
        PacketCodec(cs.Struct("n" / cs.Int8ub, "data" / cs.Bytes(cs.this.n)))


def test_describes_its_fields():
    codec = PacketCodec(HK)
    info = {f.path: f for f in codec.fields}
    assert info["hk.temperature"].dtype == np.float64 and info["hk.temperature"].parameter is not None
    assert info["hk.currents"].shape == (3,)
    assert info["primary.apid"].bit_offset == 5 and info["primary.apid"].bit_width == 11
    assert "table rows" in repr(codec)


@pytest.mark.parametrize("backend", ["pure", "compiled"] if cython_ext.compiled("packets") else ["pure"])
def test_split_stream_and_group(backend):
    other = tm_packet(0x42, 3, 25, ["hk" / cs.Struct("x" / cs.Int32ub)])
    mixed = [PACKETS[0], other.build({"primary": {}, "secondary": {"time": {"coarse": 1, "fine": 2}}, "hk": {"x": 5}}),
             PACKETS[1], PACKETS[2]]
    stream = b"".join(mixed)
    split = split_packets(stream + b"\x08\x01", backend=backend)
    assert len(split) == 4 and split.status == 1 and split.end == len(stream) and "truncated" in split.error
    groups = split.by_apid()
    assert sorted(groups) == [0x42, 0x123] and groups[0x123].tolist() == [0, 2, 3]
    columns = PacketCodec(HK).decode_many(stream, offsets=split.offsets[groups[0x123]])
    assert columns["primary.sequence_count"].tolist() == [0, 1, 2]


def test_extract_from_frames_then_decode():
    width = 50
    room = width - len(BUFFER) % width
    room += width if room < 7 else 0
    # An idle packet (APID 0x7FF) fills the last frame exactly.
    stream = BUFFER + bytes([0x07, 0xFF, 0xC0, 0x00]) + (room - 7).to_bytes(2, "big") + bytes(room - 6)
    count = len(stream) // width
    fields = np.frombuffer(stream, dtype=np.uint8).reshape(count, width)
    starts = split_packets(stream).offsets
    fhp = [int(next((s - f * width for s in starts if f * width <= s < (f + 1) * width), 0x7FF)) for f in range(count)]
    found = extract_packets(fields, fhp)
    assert len(found) == 20 and found.lost == 0 and found.fhp_errors == 0 and found.tail == -1
    assert found.packet(5) == PACKETS[5]
    columns = PacketCodec(HK).decode_many(found.stream, offsets=found.offsets)
    assert columns["primary.sequence_count"].tolist() == list(range(20))


def test_spacepackets_interop():
    """Bytes spacepackets builds, we decode (same PUS-C layout with a 6-byte CUC time field)."""
    import spacepackets.ecss as spacepackets
    struct = tm_packet(0x33, 17, 2, ["payload" / cs.Bytes(4)])
    tm = spacepackets.PusTm(service=17, message_subtype=2, apid=0x33, seq_count=9, timestamp=bytes([0, 0, 1, 2, 3, 4]),
                            source_data=b"\x01\x02\x03\x04")
    raw = tm.pack()
    columns = PacketCodec(struct).decode_many(raw)
    assert columns["primary.apid"][0] == 0x33 and columns["primary.sequence_count"][0] == 9
    assert columns["secondary.service"][0] == 17 and columns["secondary.time.coarse"][0] == 0x0102
    assert bytes(columns["payload"][0]) == b"\x01\x02\x03\x04" and columns["crc_ok"][0]


def test_a_bit_structure_that_is_not_whole_octets_is_refused_when_the_codec_is_built():
    struct = cs.Struct("a" / cs.Int8ub, "flags" / cs.BitStruct("x" / cs.BitsInteger(3)))
    with pytest.raises(DefinitionError, match=r"field 'flags': bit structure of 3 bits .*'flags.x'"):
        PacketCodec(struct)


def test_overlapping_views_are_table_decoded_and_encode_writes_the_octets_once():
    struct = cs.Struct(
        "word" / cs.Union(0, "value" / cs.Int16ub, "halves" / cs.Struct("high" / cs.Int8ub, "low" / cs.Int8ub)),
        "status" / cs.Peek(cs.Int16ub),
        "mode" / cs.BitStruct("code" / cs.BitsInteger(4), "sub" / cs.BitsInteger(12)),
        "again" / cs.Pointer(0, cs.Int8ub),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codec = PacketCodec(struct)
    assert codec.size == 4 and codec.fallback is None
    columns = codec.decode_many(b"\x12\x34\xab\xcd" * 2)
    assert columns["word.value"].tolist() == [0x1234] * 2
    assert columns["word.halves.low"].tolist() == [0x34] * 2
    assert columns["status"].tolist() == [0xABCD] * 2
    assert columns["mode.code"].tolist() == [0xA] * 2 and columns["again"].tolist() == [0x12] * 2
    assert codec.encode_many({"word.value": 0x1234, "mode.code": 0xA, "mode.sub": 0xBCD, "again": 0x12},
                             count=1) == b"\x12\x34\xab\xcd"


def test_construct_errors_in_the_fallback_become_protocol_errors_naming_the_field():
    struct = cs.Struct("kind" / cs.Enum(cs.Int8ub, a=1), "check" / cs.Const(b"\xaa"))
    with pytest.warns(RuntimeWarning):
        codec = PacketCodec(struct)
    with pytest.raises(ProtocolError, match=r"field 'check' at byte 4"):
        codec.decode_many(b"\x01\xaa\x01\xbb")


@pytest.mark.parametrize("backend", ["pure", "compiled"] if cython_ext.compiled("fields") else ["pure"])
def test_state_ranges_many_to_one_names_and_a_polynomial_on_a_float_raw(backend):
    mode = States({0: "OFF", (1, 9): "ON", 10: "ON", range(200, 256): "FAULT"})
    struct = cs.Struct(
        "mode" / Parameter(cs.Int8ub, unit="", description="mode", calibration=mode),
        "volts" / Parameter(cs.Float32b, unit="V", description="bus", calibration=Polynomial(1.0, 2.0, 0.5)),
    )
    packets = [bytes([code]) + np.array([raw], ">f4").tobytes() for code, raw in
               [(0, 1.5), (5, -3.0), (10, 0.0), (11, 2.0), (230, 1e3)]]
    codec = PacketCodec(struct, backend=backend)
    columns = codec.decode_many(b"".join(packets))
    assert columns["mode"].tolist() == ["OFF", "ON", "ON", "UNDEFINED_11", "FAULT"]
    assert columns["volts"].tolist() == [1.0 + 2 * r + 0.5 * r * r for r in (1.5, -3.0, 0.0, 2.0, 1e3)]
    assert_matches_construct(struct, packets, columns)
    assert mode.to_raw("ON") == 1 and mode.describe() == "states: 0=OFF, 1..9=ON, 10=ON, 200..255=FAULT"
    # The root nearest the linear estimate: 5.125 = 1 + 2r + r^2/2 at r = 1.5 (and at r = -5.5).
    assert codec.encode_many({"mode": "ON", "volts": 5.125}, count=1) == b"\x01" + np.array([1.5], ">f4").tobytes()


def test_overlapping_state_codes_are_refused():
    with pytest.raises(DefinitionError, match=r"state codes 1\.\.9 \('ON'\) and 5\.\.5 \('X'\) overlap"):
        States({(1, 9): "ON", 5: "X"})
