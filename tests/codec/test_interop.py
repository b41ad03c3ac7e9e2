"""The fast path against independent and in-project implementations of the same formats.

- ccsdspy (vectorised, from a file) reads the raw values our codec reads;
- the project's frame demultiplexer (protocols.ccsds.vcmux) and extract_packets agree on
  which packets a run of frames carries, including frames dropped in the middle.
"""
from __future__ import annotations

import logging

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import cython_ext
from protocols.codec import PacketCodec, extract_packets
from tests.codec.test_codec import BUFFER, HK

BACKENDS = ["pure"] + (["compiled"] if cython_ext.compiled("packets") is not None else [])


def test_ccsdspy_reads_the_same_raw_values(tmp_path):
    import ccsdspy
    logging.getLogger("ccsdspy").setLevel(logging.ERROR)
    from ccsdspy import PacketArray, PacketField

    definition = ccsdspy.FixedLength([
        PacketField("pus_version", "uint", 4), PacketField("time_reference_status", "uint", 4),
        PacketField("service", "uint", 8), PacketField("subtype", "uint", 8),
        PacketField("message_counter", "uint", 16), PacketField("destination_id", "uint", 16),
        PacketField("coarse", "uint", 32), PacketField("fine", "uint", 16),
        PacketField("sid", "uint", 16), PacketField("temperature", "int", 16), PacketField("mode", "uint", 8),
        PacketArray("currents", "float", 32, array_shape=3),
        PacketField("heater", "uint", 1), PacketField("channel", "uint", 3), PacketField("spare", "uint", 4),
        PacketField("pec", "uint", 16),
    ])
    path = tmp_path / "hk.bin"
    path.write_bytes(BUFFER)
    theirs = definition.load(str(path), include_primary_header=True)
    ours = PacketCodec(HK).raw_many(BUFFER)
    pairs = {"CCSDS_APID": "primary.apid", "CCSDS_SEQUENCE_COUNT": "primary.sequence_count",
             "CCSDS_PACKET_LENGTH": "primary.data_length", "service": "secondary.service",
             "coarse": "secondary.time.coarse", "fine": "secondary.time.fine", "temperature": "hk.temperature",
             "mode": "hk.mode", "currents": "hk.currents", "heater": "hk.status.heater",
             "channel": "hk.status.channel", "pec": "pec"}
    for name, path_ in pairs.items():
        assert np.array_equal(np.asarray(theirs[name]).astype(np.float64), ours[path_].astype(np.float64)), name


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x7FE), st.integers(1, 300)), min_size=1, max_size=40),
       st.sets(st.integers(0, 30), max_size=3), st.sampled_from(BACKENDS))
def test_extract_agrees_with_the_frame_demultiplexer(specs, dropped, backend):
    from protocols.ccsds import vcmux
    from protocols.ccsds.tmframe import FrameProfile

    profile = FrameProfile(frame_length=128, has_fecf=True, randomized=False)
    packets = []
    for i, (apid, length) in enumerate(specs):
        header = bytes([(apid >> 8) & 7, apid & 0xFF, 0xC0 | (i >> 8) & 0x3F, i & 0xFF,
                        (length - 1) >> 8, (length - 1) & 0xFF])
        packets.append(header + bytes([i & 0xFF]) * length)
    frames = [f for n, f in enumerate(vcmux.mux_packets(packets, profile, 245, 2)) if n not in dropped]
    expected = [p.data for p in vcmux.demux_frames(frames, profile).packets]

    array = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), profile.frame_length)
    head = profile.header_length
    fhp = ((array[:, 4].astype(np.int64) & 7) << 8) | array[:, 5]
    counts = array[:, 3].astype(np.int64)
    continuous = np.ones(len(frames), dtype=bool)
    continuous[1:] = ((counts[1:] - counts[:-1]) & 0xFF) == 1
    found = extract_packets(array[:, head : profile.frame_length - 2], fhp, continuous, backend=backend)
    assert [found.packet(i) for i in range(len(found))] == expected
