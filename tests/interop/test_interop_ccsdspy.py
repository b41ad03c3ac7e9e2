"""Interop with `ccsdspy`: a file of our packets loads with a FixedLength definition, same values."""
from __future__ import annotations

import random
import struct

import ccsdspy  # noqa: E402
import numpy as np
from ccsdspy import PacketField  # noqa: E402

from protocols.ccsds.cuc import CucTime  # noqa: E402
from protocols.ccsds.pus import PusTm, parse_pus_tm  # noqa: E402
from protocols.ccsds.spacepacket import idle_packet, segment  # noqa: E402

HK = PacketField


def test_pus_tm_file_loads_in_ccsdspy(tmp_path):
    rnd = random.Random(5)
    rows = []
    packets = []
    for i in range(200):
        temp, volts, status = rnd.randrange(-2**15, 2**15), rnd.randrange(0, 2**32), rnd.randrange(256)
        t = CucTime(rnd.randrange(2**32), rnd.randrange(2**16))
        source = struct.pack(">hIB", temp, volts, status)
        packets.append(PusTm(apid=0x123, service=3, subtype=25, source_data=source, time=t.pack(with_pfield=False),
                             sequence_count=i, message_counter=1000 + i, destination_id=7).build())
        rows.append((i, 1000 + i, t.coarse, t.fine, temp, volts, status))
    path = tmp_path / "hk.bin"
    path.write_bytes(b"".join(packets))

    definition = ccsdspy.FixedLength([
        HK(name="pus_version", data_type="uint", bit_length=4),
        HK(name="time_reference_status", data_type="uint", bit_length=4),
        HK(name="service", data_type="uint", bit_length=8),
        HK(name="subtype", data_type="uint", bit_length=8),
        HK(name="message_counter", data_type="uint", bit_length=16),
        HK(name="destination_id", data_type="uint", bit_length=16),
        HK(name="coarse", data_type="uint", bit_length=32),
        HK(name="fine", data_type="uint", bit_length=16),
        HK(name="temperature", data_type="int", bit_length=16),
        HK(name="voltage", data_type="uint", bit_length=32),
        HK(name="status", data_type="uint", bit_length=8),
        HK(name="pec", data_type="uint", bit_length=16),
    ])
    loaded = definition.load(str(path), include_primary_header=True)
    expected = np.array(rows)
    assert (loaded["CCSDS_APID"] == 0x123).all()
    assert (loaded["CCSDS_PACKET_TYPE"] == 0).all() and (loaded["CCSDS_SECONDARY_FLAG"] == 1).all()
    assert (loaded["CCSDS_SEQUENCE_FLAG"] == 3).all()
    assert (loaded["CCSDS_PACKET_LENGTH"] == len(packets[0]) - 7).all()
    assert (loaded["pus_version"] == 2).all() and (loaded["service"] == 3).all() and (loaded["subtype"] == 25).all()
    assert (loaded["destination_id"] == 7).all()
    for col, name in enumerate(["CCSDS_SEQUENCE_COUNT", "message_counter", "coarse", "fine", "temperature",
                                "voltage", "status"]):
        assert np.array_equal(loaded[name].astype(np.int64), expected[:, col]), name
    # ccsdspy's values agree with ours, CRC included.
    for i, raw in enumerate(packets):
        ours = parse_pus_tm(raw)
        assert ours.crc_ok and int(loaded["pec"][i]) == int.from_bytes(raw[-2:], "big")


def test_segmented_and_idle_packets_split_in_ccsdspy(tmp_path):
    payload = bytes(range(256)) * 3
    packets = segment(0x55, payload, 100, first_sequence_count=16380) + [idle_packet(106)]
    path = tmp_path / "seg.bin"
    path.write_bytes(b"".join(packets))
    # Segments of different lengths and an idle packet: a variable-length definition reads them all.
    definition = ccsdspy.VariableLength([ccsdspy.PacketArray(name="data", data_type="uint", bit_length=8,
                                                             array_shape="expand")])
    loaded = definition.load(str(path), include_primary_header=True)
    assert list(loaded["CCSDS_APID"]) == [0x55] * 8 + [0x7FF]
    assert list(loaded["CCSDS_SEQUENCE_FLAG"]) == [1] + [0] * 6 + [2] + [3]
    assert list(loaded["CCSDS_SEQUENCE_COUNT"]) == [16380, 16381, 16382, 16383, 0, 1, 2, 3, 0]
    joined = b"".join(bytes(np.asarray(row, dtype=np.uint8)) for row in loaded["data"][:8])
    assert joined == payload
