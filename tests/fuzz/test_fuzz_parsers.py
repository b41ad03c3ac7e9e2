"""Fuzz targets for every wire-format parser: valid, mutated and random octets.

The contract: a parser either returns a value that re-encodes to the octets it
read (or, for lossy layers, one whose fields are in range) or raises
ProtocolError naming structure and field; nothing else ever escapes.
"""
from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from protocols.ccsds.clcw import Clcw
from protocols.ccsds.cltu import CltuReceiver, decode_cltu, encode_cltu
from protocols.ccsds.cuc import CucTime, PField
from protocols.ccsds.pus import PusTc, PusTm, parse_pus_tc, parse_pus_tm
from protocols.ccsds.spacepacket import build_space_packet, iter_packets, parse_space_packet
from protocols.ccsds.tcframe import TcFrame, TcProfile, parse_tc_frame
from protocols.ccsds.tmframe import AosFrame, FrameProfile, TmFrame, parse_tm_frame
from protocols.errors import ProtocolError
from protocols.missions import registry
from tests.fuzz.support import count, fuzz, valid_or_mutated

TM_PROFILE = registry().spacecraft("haiyang2d").profile.frame  # TM, OCF, FECF
AOS_PROFILE = registry().spacecraft("zhurong").profile.frame  # AOS

space_packets = st.builds(
    lambda apid, data, seq, tc: build_space_packet(apid, data, sequence_count=seq, packet_type=int(tc)),
    st.integers(0, 0x7FF), st.binary(min_size=1, max_size=80), st.integers(0, 0x3FFF), st.booleans())
pus_tm = st.builds(lambda a, s, t, d, n: PusTm(a, s, t, d, sequence_count=n).build(), st.integers(0, 0x7FE),
                   st.integers(0, 255), st.integers(0, 255), st.binary(max_size=60), st.integers(0, 0x3FFF))
pus_tc = st.builds(lambda a, s, t, d: PusTc(a, s, t, d).build(), st.integers(0, 0x7FE), st.integers(0, 255),
                   st.integers(0, 255), st.binary(max_size=60))
tc_frames = st.builds(lambda scid, vcid, data, n, bypass: TcFrame(scid, vcid, data, frame_sequence_number=n,
                                                                  bypass_flag=int(bypass)).build(),
                      st.integers(0, 1023), st.integers(0, 63), st.binary(min_size=1, max_size=120),
                      st.integers(0, 255), st.booleans())


def tm_frame(profile: FrameProfile, scid: int, vcid: int, fhp: int, mc: int, vc: int, fill: bytes) -> bytes:
    data = (fill * (profile.zone_length // max(1, len(fill)) + 1))[: profile.zone_length]
    if profile.kind == "TM":
        return TmFrame(scid, vcid, data, fhp=fhp, mc_count=mc % 256, vc_count=vc % 256, ocf=vc).build(profile)
    return AosFrame(scid, vcid, data, fhp=fhp, vc_count=vc, insert_zone=bytes(profile.insert_zone_length)).build(profile)


def frames_of(profile: FrameProfile) -> st.SearchStrategy[bytes]:
    return st.builds(lambda *a: tm_frame(profile, *a), st.integers(0, profile.max_scid), st.integers(0, 7),
                     st.integers(0, 0x7FF), st.integers(0, 255), st.integers(0, 0xFFFFFF),
                     st.binary(min_size=1, max_size=8))


@fuzz
@given(valid_or_mutated(space_packets), st.integers(0, 4))
def test_space_packet(data, offset):
    count("space_packet")
    try:
        packet = parse_space_packet(data, offset)
    except ProtocolError:
        return
    assert packet.build() == data[offset:offset + packet.length]


@fuzz
@given(valid_or_mutated(st.lists(space_packets, max_size=5).map(b"".join)))
def test_space_packet_stream(data):
    count("space_packet_stream")
    end = 0
    try:
        for offset, packet in iter_packets(data):
            assert offset == end and packet.build() == data[offset:offset + packet.length]
            end = offset + packet.length
    except ProtocolError as exc:
        assert exc.offset is None or exc.offset >= end


@fuzz
@given(valid_or_mutated(pus_tm), st.booleans())
def test_pus_tm(data, verify):
    count("pus_tm")
    try:
        packet = parse_pus_tm(data, verify=verify)
    except ProtocolError:
        return
    assert 0 <= packet.service <= 255 and 0 <= packet.subtype <= 255
    if packet.crc_ok:
        assert PusTm.parse(packet.build()) == packet


@fuzz
@given(valid_or_mutated(pus_tc), st.booleans())
def test_pus_tc(data, verify):
    count("pus_tc")
    try:
        packet = parse_pus_tc(data, verify=verify)
    except ProtocolError:
        return
    if packet.crc_ok:
        assert PusTc.parse(packet.build()) == packet


@fuzz
@given(st.binary(max_size=12), st.integers(0, 3))
@example(b"\xff\xff", 0)  # a P-field extension octet with nothing after it
def test_cuc(data, offset):
    count("cuc")
    try:
        pfield = PField.decode(data, offset)
    except ProtocolError:
        return
    try:
        time = CucTime.unpack(data, offset)
    except ProtocolError:
        return
    assert time.coarse_octets == pfield.coarse_octets and time.fine_octets == pfield.fine_octets
    assert CucTime.unpack(time.pack()) == time


@fuzz
@given(valid_or_mutated(frames_of(TM_PROFILE)), st.booleans())
def test_tm_frame(data, verify):
    count("tm_frame")
    try:
        frame = parse_tm_frame(data, TM_PROFILE, verify=verify)
    except ProtocolError:
        return
    assert len(frame.data) == TM_PROFILE.zone_length
    if frame.crc_ok:
        assert frame.build(TM_PROFILE) == data[:TM_PROFILE.frame_length]


@fuzz
@given(valid_or_mutated(frames_of(AOS_PROFILE)), st.booleans())
def test_aos_frame(data, verify):
    count("aos_frame")
    try:
        frame = AosFrame.parse(data, AOS_PROFILE, verify=verify)
    except ProtocolError:
        return
    assert len(frame.data) == AOS_PROFILE.zone_length and 0 <= frame.fhp <= 0x7FF


@fuzz
@given(valid_or_mutated(tc_frames), st.booleans(), st.booleans())
def test_tc_frame(data, verify, segmented):
    count("tc_frame")
    profile = TcProfile(has_segment_header=segmented)
    try:
        frame = parse_tc_frame(data, profile, verify=verify)
    except ProtocolError:
        return
    if frame.crc_ok:
        assert frame.build(profile) == data[:len(frame.build(profile))]


@fuzz
@given(st.integers(0, 2**32 - 1))
def test_clcw(word):
    count("clcw")
    clcw = Clcw.from_int(word)
    assert clcw.to_int() == word and Clcw.from_int(int.from_bytes(clcw.pack(), "big")) == clcw


@fuzz
@given(valid_or_mutated(tc_frames.map(encode_cltu)), st.booleans(), st.booleans(), st.booleans())
def test_cltu(data, correct, trim, stop_at_error):
    count("cltu")
    try:
        decoded = decode_cltu(data, correct=correct, trim=trim, stop_at_error=stop_at_error)
    except ProtocolError:
        return
    assert 0 < decoded.length <= len(data) and decoded.blocks * 7 >= len(decoded.data)


@fuzz
@given(st.lists(valid_or_mutated(tc_frames.map(encode_cltu)), max_size=4), st.data())
def test_cltu_receiver(cltus, data):
    count("cltu_receiver")
    stream = b"".join(cltus)
    receiver = CltuReceiver(correct=True)
    out = []
    pos = 0
    while pos < len(stream):
        n = data.draw(st.integers(1, 64))
        out += receiver.feed(stream[pos:pos + n])  # the receiver itself never raises on line noise
        pos += n
    assert len(out) <= stream.count(b"\xeb\x90")
