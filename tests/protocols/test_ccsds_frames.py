"""TM, AOS and TC transfer frames, CLCW and CLTU: round trips, construct agreement, errors."""
from __future__ import annotations

import dataclasses

import construct as cs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.ccsds.clcw import Clcw, ClcwStruct
from protocols.ccsds.cltu import decode_cltu, encode_cltu
from protocols.ccsds.tcframe import (
    TcFrame,
    TcProfile,
    build_tc_frame_struct,
    parse_tc_frame,
    parse_tc_frame_struct,
)
from protocols.ccsds.tmframe import (
    AosFrame,
    FrameProfile,
    TmFrame,
    aos_fhec,
    build_frame_struct,
    parse_aos_frame,
    parse_frame,
    parse_frame_struct,
    parse_tm_frame,
)
from protocols.errors import ChecksumError, ProtocolError, TruncatedError

clcws = st.builds(Clcw, vcid=st.integers(0, 63), report_value=st.integers(0, 255), lockout=st.integers(0, 1),
                  wait=st.integers(0, 1), retransmit=st.integers(0, 1), farm_b_counter=st.integers(0, 3),
                  no_rf_available=st.integers(0, 1), no_bit_lock=st.integers(0, 1), status_field=st.integers(0, 7),
                  cop_in_effect=st.integers(0, 3))

tm_profiles = st.builds(FrameProfile, frame_length=st.integers(20, 300), has_ocf=st.booleans(),
                        has_fecf=st.booleans(), secondary_header_length=st.sampled_from([0, 2, 5]),
                        randomized=st.booleans())
aos_profiles = st.builds(FrameProfile, frame_length=st.integers(20, 300), has_ocf=st.booleans(),
                         has_fecf=st.booleans(), kind=st.just("AOS"), aos_fhec=st.booleans(),
                         insert_zone_length=st.sampled_from([0, 3]))


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(clcws)
def test_clcw_round_trip_and_construct_agreement(clcw):
    raw = clcw.pack()
    assert Clcw.unpack(raw) == clcw
    parsed = ClcwStruct.parse(raw)
    assert {k: parsed[k] for k in clcw.as_dict()} == clcw.as_dict()
    assert ClcwStruct.build(clcw.as_dict()) == raw


def test_clcw_type_bit():
    with pytest.raises(ProtocolError):
        Clcw.unpack(b"\x80\x00\x00\x00")


@st.composite
def tm_frames(draw):
    p = draw(tm_profiles)
    f = TmFrame(
        scid=draw(st.integers(0, 0x3FF)), vcid=draw(st.integers(0, 7)), data=draw(st.binary(
            min_size=p.zone_length, max_size=p.zone_length)), fhp=draw(st.integers(0, 0x7FF)),
        mc_count=draw(st.integers(0, 255)), vc_count=draw(st.integers(0, 255)),
        ocf=draw(clcws).to_int() if p.has_ocf else None,
        secondary_header=draw(st.binary(min_size=max(p.secondary_header_length - 1, 0),
                                        max_size=max(p.secondary_header_length - 1, 0))),
        secondary_header_version=draw(st.integers(0, 3)) if p.secondary_header_length else 0,
        sync_flag=draw(st.integers(0, 1)), packet_order_flag=draw(st.integers(0, 1)),
        segment_length_id=draw(st.integers(0, 3)), crc_ok=True if p.has_fecf else None)
    return p, f


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(tm_frames())
def test_tm_frame_round_trip_and_construct_agreement(pf):
    profile, frame = pf
    raw = frame.build(profile)
    assert len(raw) == profile.frame_length
    assert parse_tm_frame(raw, profile) == frame
    c = parse_frame_struct(raw, profile)
    assert (c.primary.scid, c.primary.vcid, c.primary.mc_count, c.primary.vc_count, c.primary.fhp,
            c.primary.ocf_flag, c.primary.sync_flag, c.primary.segment_length_id, c.data) == (
        frame.scid, frame.vcid, frame.mc_count, frame.vc_count, frame.fhp, frame.ocf_flag, frame.sync_flag,
        frame.segment_length_id, frame.data)
    if profile.has_ocf:
        assert c.ocf == frame.ocf
    assert build_frame_struct(c, profile) == raw


@st.composite
def aos_frames(draw):
    p = draw(aos_profiles)
    f = AosFrame(
        scid=draw(st.integers(0, 255)), vcid=draw(st.integers(0, 63)),
        data=draw(st.binary(min_size=p.zone_length, max_size=p.zone_length)), fhp=draw(st.integers(0, 0x7FF)),
        vc_count=draw(st.integers(0, (1 << 24) - 1)), ocf=draw(st.integers(0, 0xFFFFFFFF)) if p.has_ocf else None,
        replay_flag=draw(st.integers(0, 1)), vc_count_usage_flag=draw(st.integers(0, 1)),
        vc_count_cycle=draw(st.integers(0, 15)),
        insert_zone=draw(st.binary(min_size=p.insert_zone_length, max_size=p.insert_zone_length)),
        crc_ok=True if p.has_fecf else None)
    return p, f


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(aos_frames())
def test_aos_frame_round_trip_and_construct_agreement(pf):
    profile, frame = pf
    raw = frame.build(profile)
    assert len(raw) == profile.frame_length
    if profile.aos_fhec:
        frame = dataclasses.replace(frame, fhec=aos_fhec(raw), fhec_ok=True)
    assert parse_aos_frame(raw, profile) == frame
    c = parse_frame_struct(raw, profile)
    assert (c.primary.version, c.primary.scid, c.primary.vcid, c.primary.vc_count, c.primary.replay_flag,
            c.mpdu.fhp, c.data) == (1, frame.scid, frame.vcid, frame.vc_count, frame.replay_flag, frame.fhp,
                                    frame.data)
    assert build_frame_struct(c, profile) == raw


def test_aos_header_layout():
    profile = FrameProfile(frame_length=220, has_fecf=False, kind="AOS")
    raw = AosFrame(scid=245, vcid=1, data=bytes(profile.zone_length), fhp=0x7FF, vc_count=0x010203,
                   replay_flag=1).build(profile)
    # version 01 | SCID 11110101 | VCID 000001 -> 0x7D41; count; signalling 0x80; M_PDU header 0x07FF
    assert raw[:8] == bytes.fromhex("7D41010203800" "7FF")


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(tm_frames(), st.data())
def test_tm_frame_corruption_and_truncation(pf, data):
    profile, frame = pf
    raw = bytearray(frame.build(profile))
    with pytest.raises(TruncatedError) as info:
        parse_tm_frame(bytes(raw[:data.draw(st.integers(0, len(raw) - 1))]), profile)
    assert info.value.offset is not None
    if profile.has_fecf:
        i = data.draw(st.integers(6, len(raw) - 1))
        raw[i] ^= 0x01
        try:
            assert parse_tm_frame(bytes(raw), profile).crc_ok is False
        except ProtocolError:
            pass  # the flip hit a field the profile checks
        with pytest.raises(ProtocolError):
            parse_tm_frame(bytes(raw), profile, verify=True)
        with pytest.raises(ProtocolError):
            parse_frame_struct(bytes(raw), profile)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(st.binary(max_size=80), tm_profiles)
def test_random_frames_never_leak_construct_errors(raw, profile):
    for parse in (parse_frame, parse_frame_struct):
        try:
            parse(raw, profile)
        except ProtocolError:
            pass
        except cs.ConstructError as exc:  # pragma: no cover
            pytest.fail(f"leaked {exc!r}")


def test_profile_geometry():
    p = FrameProfile(frame_length=1115, has_ocf=True, has_fecf=True)
    assert (p.zone_offset, p.zone_length, p.ocf_offset, p.fecf_offset) == (6, 1115 - 12, 1109, 1113)
    a = FrameProfile(frame_length=220, has_fecf=False, kind="AOS", aos_fhec=True)
    assert (a.zone_offset, a.zone_length) == (10, 210)
    with pytest.raises(ValueError):
        FrameProfile(frame_length=3000)
    with pytest.raises(ValueError):
        FrameProfile(kind="TM", aos_fhec=True)


tc_profiles = st.builds(TcProfile, has_segment_header=st.booleans(), has_fecf=st.booleans())


@st.composite
def tc_frames(draw):
    p = draw(tc_profiles)
    f = TcFrame(scid=draw(st.integers(0, 0x3FF)), vcid=draw(st.integers(0, 63)),
                data=draw(st.binary(min_size=1, max_size=p.max_data_length)),
                frame_sequence_number=draw(st.integers(0, 255)), bypass_flag=draw(st.integers(0, 1)),
                control_command_flag=draw(st.integers(0, 1)),
                map_id=draw(st.integers(0, 63)) if p.has_segment_header else 0,
                segment_sequence_flags=draw(st.integers(0, 3)) if p.has_segment_header else 3,
                crc_ok=True if p.has_fecf else None)
    return p, f


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(tc_frames())
def test_tc_frame_round_trip_and_construct_agreement(pf):
    profile, frame = pf
    raw = frame.build(profile)
    assert ((raw[2] << 8 | raw[3]) & 0x3FF) + 1 == len(raw)
    assert parse_tc_frame(raw, profile) == frame
    c = parse_tc_frame_struct(raw, profile)
    assert (c.primary.scid, c.primary.vcid, c.primary.bypass_flag, c.primary.frame_sequence_number, c.data) == (
        frame.scid, frame.vcid, frame.bypass_flag, frame.frame_sequence_number, frame.data)
    if profile.has_segment_header:
        assert c.segment.map_id == frame.map_id
    assert build_tc_frame_struct(c, profile) == raw


def test_tc_frame_errors():
    raw = bytearray(TcFrame(1, 2, b"abc").build())
    with pytest.raises(TruncatedError):
        parse_tc_frame(bytes(raw[:-1]))
    raw[6] ^= 4
    assert parse_tc_frame(bytes(raw)).crc_ok is False
    with pytest.raises(ChecksumError):
        parse_tc_frame(bytes(raw), verify=True)
    with pytest.raises(ProtocolError):
        TcFrame(1, 2, bytes(1020)).build()


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(tc_frames(), st.booleans())
def test_cltu_round_trip(pf, randomize):
    profile, frame = pf
    raw = frame.build(profile)
    cltu = encode_cltu(raw, randomize=randomize)
    assert cltu[:2] == b"\xeb\x90" and len(cltu) % 8 == 2
    decoded = decode_cltu(cltu + b"junk", randomized=randomize)
    assert decoded.data == raw and decoded.length == len(cltu) and decoded.corrected == 0


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(st.binary(min_size=1, max_size=60), st.data())
def test_cltu_single_bit_errors_corrected_double_detected(data, draw):
    cltu = bytearray(encode_cltu(data))
    blocks = (len(cltu) - 10) // 8
    block = draw.draw(st.integers(0, blocks - 1))
    bit = draw.draw(st.integers(0, 62))  # the filler bit (63) carries no information
    start = 2 + 8 * block
    cltu[start + bit // 8] ^= 0x80 >> (bit % 8)
    decoded = decode_cltu(bytes(cltu), correct=True, trim=False)
    assert decoded.data[:len(data)] == data and decoded.corrected == 1
    with pytest.raises(ChecksumError):
        decode_cltu(bytes(cltu))  # detection mode
    other = draw.draw(st.integers(0, 62).filter(lambda b: b != bit))
    cltu[start + other // 8] ^= 0x80 >> (other % 8)
    with pytest.raises(ChecksumError) as info:
        decode_cltu(bytes(cltu), correct=True)
    assert info.value.offset == start


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(st.binary(max_size=80))
def test_other_parsers_on_random_bytes_raise_only_protocol_errors(raw):
    from protocols.ccsds.cuc import CucTime, PField

    for parse in (parse_tc_frame, parse_tc_frame_struct, Clcw.unpack, PField.decode, CucTime.unpack,
                  lambda b: decode_cltu(b"\xeb\x90" + b), lambda b: decode_cltu(b"\xeb\x90" + b, correct=True),
                  lambda b: parse_frame(b, FrameProfile(frame_length=40, kind="AOS")),
                  lambda b: parse_frame_struct(b, FrameProfile(frame_length=40, kind="AOS"))):
        try:
            parse(raw)
        except ProtocolError as exc:
            assert exc.structure
        except cs.ConstructError as exc:  # pragma: no cover
            pytest.fail(f"leaked {exc!r}")


def test_cltu_stop_at_error_delivers_what_came_before():
    from protocols.ccsds.tcframe import TcFrame

    frame = TcFrame(1, 2, bytes(range(30))).build()
    cltu = bytearray(encode_cltu(frame))
    cltu[2 + 8 * 2] ^= 0x03  # two bits in the third block
    decoded = decode_cltu(bytes(cltu), stop_at_error=True, trim=False)
    assert decoded.complete is False and decoded.blocks == 2 and decoded.data == frame[:14]
    assert decoded.length == 2 + 3 * 8


GF16_EXP = [1, 2, 4, 8, 3, 6, 12, 11, 5, 10, 7, 14, 15, 13, 9]  # powers of a, x^4 + x + 1


def gf16_mul(a, b):
    if a == 0 or b == 0:
        return 0
    return GF16_EXP[(GF16_EXP.index(a) + GF16_EXP.index(b)) % 15]


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(st.binary(min_size=6, max_size=6))
def test_fhec_codewords_vanish_at_the_generator_roots(header):
    # c(x) = info symbols followed by check symbols, highest power first; RS(10,6) roots a^6..a^9.
    fhec = aos_fhec(header)
    symbols = [n for b in (header[0], header[1], header[5], fhec[0], fhec[1]) for n in (b >> 4, b & 0xF)]
    for r in (6, 7, 8, 9):
        root, acc = GF16_EXP[r], 0
        for s in symbols:
            acc = gf16_mul(acc, root) ^ s
        assert acc == 0


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(st.binary(min_size=6, max_size=6), st.data())
def test_fhec_detects_header_damage(header, data):
    profile = FrameProfile(frame_length=40, has_fecf=False, kind="AOS", aos_fhec=True)
    frame = AosFrame(header[0] % 256, header[1] % 64, bytes(profile.zone_length), 0, 5)
    raw = bytearray(frame.build(profile))
    assert parse_aos_frame(bytes(raw), profile).fhec_ok is True
    octet = data.draw(st.sampled_from([0, 1, 5, 6, 7]))
    raw[octet] ^= data.draw(st.integers(1, 255))
    try:
        assert parse_aos_frame(bytes(raw), profile).fhec_ok is False
    except ProtocolError:
        pass  # the version bits changed


@settings(deadline=None)
@given(st.integers(0, 2**32), st.booleans())
def test_cltu_receiver_over_a_chunked_stream_with_noise_and_errors(seed, randomized):
    import random

    from protocols.ccsds.cltu import CltuReceiver
    from protocols.ccsds.tcframe import TcFrame

    rnd = random.Random(seed)
    frames = [TcFrame(5, 1, rnd.randbytes(rnd.randrange(1, 80)), frame_sequence_number=i).build() for i in range(8)]
    stream = bytearray()
    damaged = set()
    for i, f in enumerate(frames):
        stream += rnd.randbytes(rnd.randrange(0, 20)).replace(b"\xeb", b"\x00")
        cltu = bytearray(encode_cltu(f, randomize=randomized))
        if rnd.random() < 0.3:  # one flipped bit: corrected
            bit = rnd.randrange(16, len(cltu) * 8 - 64)
            if bit % 64 != 63:  # not a filler bit
                cltu[bit // 8] ^= 0x80 >> (bit % 8)
        elif rnd.random() < 0.2 and len(cltu) > 26:  # two flipped bits in the second block: the CLTU ends there
            cltu[10] ^= 0x81
            damaged.add(i)
        stream += cltu
    receiver = CltuReceiver(randomized=randomized)
    out = []
    pos = 0
    while pos < len(stream):
        n = rnd.randrange(1, 40)
        out += receiver.feed(bytes(stream[pos:pos + n]))
        pos += n
    # The rest of a damaged CLTU is searched for a start sequence again, which random data may hold;
    # BCH(63,56) accepts about half of all random blocks (one error corrected), so a false CLTU can
    # come out of noise.  The TC frame's FECF is what rejects it, as on board.
    from protocols.ccsds.tcframe import parse_tc_frame
    from protocols.errors import ProtocolError

    def frame_ok(data: bytes) -> bool:
        try:
            parse_tc_frame(data, verify=True)
        except ProtocolError:
            return False
        return True

    assert [c.data for c in out if c.complete and frame_ok(c.data)] == [
        f for i, f in enumerate(frames) if i not in damaged]
    assert sum(1 for c in out if not c.complete and c.blocks == 1) >= len(damaged)


def test_split_tc_frames():
    from protocols.ccsds.cltu import split_tc_frames
    from protocols.ccsds.tcframe import TcFrame

    frames = [TcFrame(5, 1, bytes([i]) * (i + 3)).build() for i in range(3)]
    decoded = decode_cltu(encode_cltu(b"".join(frames)), trim=False)
    assert split_tc_frames(decoded.data) == (frames, -len(b"".join(frames)) % 7)


# The one header decoder (protocols.ccsds.tmframe.decode_headers) against the construct definitions.

@settings(deadline=None, max_examples=200)
@given(st.lists(st.binary(min_size=6, max_size=6), min_size=1, max_size=40))
def test_tm_header_decoder_equals_the_construct_definition_field_for_field(headers):
    import numpy as np

    from protocols.ccsds.tmframe import TM_HEADER_FIELDS, TmPrimaryHeader, decode_headers, header_rows
    columns = decode_headers(header_rows(headers), "TM")
    assert tuple(columns) == TM_HEADER_FIELDS
    for i, raw in enumerate(headers):
        parsed = TmPrimaryHeader.parse(raw)
        assert {name: int(columns[name][i]) for name in TM_HEADER_FIELDS} == {n: parsed[n] for n in TM_HEADER_FIELDS}
    # Asking for some fields gives exactly those, with the same values.
    some = decode_headers(header_rows(headers), "TM", fields=("vcid", "fhp"))
    assert set(some) == {"vcid", "fhp"} and all(np.array_equal(some[k], columns[k]) for k in some)


@settings(deadline=None, max_examples=200)
@given(aos_profiles, st.data())
def test_aos_header_decoder_equals_the_construct_definition_field_for_field(profile, data):
    from protocols.ccsds.tmframe import AOS_HEADER_FIELDS, aos_frame_struct, decode_headers, header_rows
    frames = data.draw(st.lists(st.binary(min_size=profile.frame_length, max_size=profile.frame_length),
                                min_size=1, max_size=20))
    columns = decode_headers(header_rows(frames, profile.frame_length), "AOS", profile.zone_offset)
    struct = aos_frame_struct(dataclasses.replace(profile, has_fecf=False))  # random octets: no FECF check
    for i, raw in enumerate(frames):
        parsed = struct.parse(raw)
        assert {name: int(columns[name][i]) for name in AOS_HEADER_FIELDS} == \
            {name: parsed.primary[name] for name in AOS_HEADER_FIELDS}
        assert int(columns["fhp"][i]) == parsed.mpdu.fhp
        if parsed.primary.version == 1:  # the typed parser reads through the same decoder
            typed = parse_aos_frame(raw, dataclasses.replace(profile, has_fecf=False))
            assert (typed.scid, typed.vcid, typed.vc_count, typed.fhp) == \
                (parsed.primary.scid, parsed.primary.vcid, parsed.primary.vc_count, parsed.mpdu.fhp)
