"""Interop with the independent `spacepackets` implementation: theirs parse with ours and ours with theirs."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import PacketType as SpPacketType
from spacepackets.ccsds.spacepacket import SequenceFlags as SpSequenceFlags
from spacepackets.ccsds.spacepacket import SpacePacketHeader
from spacepackets.ccsds.time import CdsShortTimestamp
from spacepackets.ccsds.tm_frame import TmTransferFrame
from spacepackets.ecss.tc import PusTc as SpPusTc
from spacepackets.ecss.tm import MiscParams
from spacepackets.ecss.tm import PusTm as SpPusTm

from protocols.ccsds.cuc import CucTime
from protocols.ccsds.pus import PusTc, PusTm, parse_pus_tc, parse_pus_tm
from protocols.ccsds.spacepacket import SpacePacket, parse_space_packet
from protocols.ccsds.tmframe import FrameProfile, TmFrame, parse_tm_frame

apids = st.integers(0, 0x7FE)
counts = st.integers(0, 0x3FFF)
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
cuc_times = st.builds(CucTime, coarse=st.integers(0, 0xFFFFFFFF), fine=u16).map(lambda t: t.pack(with_pfield=False))


@settings(max_examples=60, deadline=None)
@given(apids, u8, u8, st.binary(max_size=120), cuc_times, counts, u16, u16, st.integers(0, 15))
def test_their_pus_tm_parses_with_ours(apid, service, subtype, data, stamp, count, counter, dest, time_ref):
    theirs = SpPusTm(service=service, message_subtype=subtype, timestamp=stamp, source_data=data, apid=apid,
                     seq_count=count, message_counter=counter, destination_id=dest,
                     misc_params=MiscParams(spacecraft_time_ref=time_ref)).pack()
    ours = parse_pus_tm(bytes(theirs), time_length=6)
    assert (ours.apid, ours.service, ours.subtype, ours.source_data, ours.time, ours.sequence_count,
            ours.message_counter, ours.destination_id, ours.time_reference_status, ours.crc_ok) == (
        apid, service, subtype, data, stamp, count, counter, dest, time_ref, True)
    assert ours.build() == bytes(theirs)


@settings(max_examples=60, deadline=None)
@given(apids, u8, u8, st.binary(max_size=120), cuc_times, counts, u16, u16)
def test_our_pus_tm_parses_with_theirs(apid, service, subtype, data, stamp, count, counter, dest):
    raw = PusTm(apid=apid, service=service, subtype=subtype, source_data=data, time=stamp, sequence_count=count,
                message_counter=counter, destination_id=dest).build()
    theirs = SpPusTm.unpack(raw, timestamp_len=6)  # verifies the CRC itself
    assert (theirs.apid, theirs.service, theirs.message_subtype, theirs.source_data, theirs.timestamp,
            theirs.seq_count if hasattr(theirs, "seq_count") else theirs.sp_header.seq_count,
            theirs.pus_tm_sec_header.message_counter, theirs.pus_tm_sec_header.dest_id) == (
        apid, service, subtype, data, stamp, count, counter, dest)


def test_cds_short_stamp_in_a_pus_tm():
    stamp = CdsShortTimestamp(ccsds_days=0x0102, ms_of_day=0x03040506).pack()
    assert bytes(stamp) == bytes.fromhex("40010203040506")
    theirs = SpPusTm(service=17, message_subtype=2, seq_count=5, apid=1, timestamp=stamp).pack()
    assert bytes(theirs[:13]) == bytes.fromhex("0801C005000F20110200000000")
    ours = parse_pus_tm(bytes(theirs), time_length=7)
    assert ours.time == bytes(stamp) and (ours.service, ours.subtype, ours.sequence_count) == (17, 2, 5)


@settings(max_examples=60, deadline=None)
@given(apids, u8, u8, st.binary(max_size=120), counts, u16, st.integers(0, 15))
def test_pus_tc_both_ways(apid, service, subtype, data, count, source, ack):
    theirs = bytes(SpPusTc(service=service, message_subtype=subtype, apid=apid, app_data=data, seq_count=count,
                           source_id=source, ack_flags=ack).pack())
    ours = parse_pus_tc(theirs)
    assert (ours.apid, ours.service, ours.subtype, ours.app_data, ours.sequence_count, ours.source_id,
            ours.ack_flags, ours.crc_ok) == (apid, service, subtype, data, count, source, ack, True)
    built = PusTc(apid=apid, service=service, subtype=subtype, app_data=data, sequence_count=count,
                  source_id=source, ack_flags=ack).build()
    assert built == theirs
    back = SpPusTc.unpack(built)
    assert (back.apid, back.service, back.message_subtype, back.app_data, back.source_id) == (
        apid, service, subtype, data, source)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 0x7FF), counts, st.booleans(), st.sampled_from(list(SpSequenceFlags)), st.booleans(),
       st.binary(min_size=1, max_size=100))
def test_space_packet_headers_both_ways(apid, count, tc, flags, sec, data):
    header = SpacePacketHeader(packet_type=SpPacketType.TC if tc else SpPacketType.TM, apid=apid, seq_count=count,
                               data_len=len(data) - 1, sec_header_flag=sec, seq_flags=flags)
    raw = bytes(header.pack()) + data
    ours = parse_space_packet(raw)
    assert (ours.apid, ours.sequence_count, int(ours.type), ours.secondary_header_flag, int(ours.sequence_flags),
            ours.data) == (apid, count, int(tc), sec, int(flags), data)
    back = SpacePacketHeader.unpack(SpacePacket(apid, data, count, ours.type, sec, ours.sequence_flags).build())
    assert (back.apid, back.seq_count, back.data_len, back.sec_header_flag, back.seq_flags) == (
        apid, count, len(data) - 1, sec, flags)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 0x3FF), st.integers(0, 7), u8, u8, st.integers(0, 0x7FF), st.booleans(), st.data())
def test_tm_frames_both_ways(scid, vcid, mc, vc, fhp, has_ocf, data):
    profile = FrameProfile(frame_length=128, has_ocf=has_ocf, has_fecf=True)
    frame = TmFrame(scid, vcid, data.draw(st.binary(min_size=profile.zone_length, max_size=profile.zone_length)),
                    fhp, mc, vc, ocf=0x01020304 if has_ocf else None)
    raw = frame.build(profile)
    theirs = TmTransferFrame.unpack(raw, 128, has_error_control_field=True)  # checks the FECF
    h = theirs.primary_header
    assert (h.master_channel_id.spacecraft_id, h.vc_id, bool(h.ocf_flag), h.master_ch_frame_count,
            h.vc_frame_count, h.frame_datafield_status.first_header_pointer, bytes(theirs.data_field)) == (
        scid, vcid, has_ocf, mc, vc, fhp, frame.data)
    assert bytes(theirs.pack()) == raw
    assert parse_tm_frame(bytes(theirs.pack()), profile).crc_ok is True
