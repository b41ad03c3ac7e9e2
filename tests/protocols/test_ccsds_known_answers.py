"""Known-answer vectors from /work/shared/docs/REFERENCE-VALUES.md (sources cited there)."""
from __future__ import annotations

import pytest

from cython_ext import crc, randomizer
from protocols.ccsds.cltu import TAIL_SEQUENCE, bch_parity, encode_cltu
from protocols.ccsds.cuc import PField
from protocols.ccsds.pus import PusTc, PusTm
from protocols.ccsds.spacepacket import idle_packet
from protocols.ccsds.sync import ASM
from protocols.ccsds.tmframe import pack_tm_header


def test_crc_check_value_empty_and_zeros():
    assert crc.crc16(b"123456789") == 0x29B1
    assert crc.crc16(b"") == 0xFFFF
    assert crc.crc16(bytes(4)) == 0x84C0


def test_crc_residue_is_zero():
    frame = bytes(range(50))
    assert crc.crc16(frame + crc.crc16(frame).to_bytes(2, "big")) == 0


def test_tm_randomizer_first_32_and_period():
    seq = randomizer.tm_sequence(600)
    assert seq[:16] == bytes.fromhex("FF480EC09A0D70BC8E2C93ADA7B746CE")
    assert seq[16:32] == bytes.fromhex("5A977DCC32A2BF3E0A10F18894CDEAB1")
    assert seq[255:510] == seq[:255]
    assert all(seq[:p] != seq[p:2 * p] for p in (1, 3, 5, 15, 17, 51, 85))  # no shorter period


def test_tc_randomizer_first_5_and_period():
    seq = randomizer.tc_sequence(520)
    assert seq[:5] == bytes.fromhex("FF399E5A68")
    assert seq[255:510] == seq[:255]


@pytest.mark.parametrize("info, parity", [
    ("22F600FF00421A", 0x12), ("8CC00E010D1906", 0x5A), ("301B0009008200", 0x54), ("10E4C155555555", 0x3E),
])
def test_bch_code_blocks(info, parity):
    assert bch_parity(bytes.fromhex(info)) == parity


def test_cltu_layout_start_tail_fill():
    cltu = encode_cltu(bytes.fromhex("10E4C1"))
    assert cltu == bytes.fromhex("EB90") + bytes.fromhex("10E4C155555555") + b"\x3e" + TAIL_SEQUENCE
    assert TAIL_SEQUENCE == bytes.fromhex("C5C5C5C5C5C5C579")


def test_worked_tm_frame_header_and_crc():
    header = pack_tm_header(245, 1, 0x12, 0x34, 0)
    assert header == bytes.fromhex("0F5212341800")
    assert crc.crc16(header) == 0xFFD2
    assert pack_tm_header(245, 1, 0, 0, 0x7FE)[4:] == bytes.fromhex("1FFE")
    assert pack_tm_header(245, 1, 0, 0, 0x7FF)[4:] == bytes.fromhex("1FFF")


@pytest.mark.parametrize("coarse, fine, code, octet", [(4, 2, 1, 0x1E), (4, 3, 1, 0x1F), (4, 0, 1, 0x1C), (4, 2, 2, 0x2E)])
def test_cuc_pfield_examples(coarse, fine, code, octet):
    assert PField(coarse, fine, code).encode() == bytes([octet])
    assert PField.decode(bytes([octet])) == PField(coarse, fine, code)


def test_idle_packet_header():
    for length in (7, 8, 100, 65542):
        packet = idle_packet(length)
        assert len(packet) == length
        assert packet[:6] == bytes.fromhex("07FFC000") + (length - 7).to_bytes(2, "big")


def test_asm():
    assert ASM == bytes.fromhex("1ACFFC1D")


def test_pus_tm_example_from_spacepackets_doctest():
    # PusTm(service=17, subtype=2, seq_count=5, apid=1, CDS-short stamp): 22 octets in all.
    cds = bytes.fromhex("40010203040506")[1:] + b"\x00"  # any 7-octet stamp
    packet = PusTm(apid=1, service=17, subtype=2, sequence_count=5, time=cds).build()
    assert packet[:13] == bytes.fromhex("0801C005000F2011020000" "0000")
    assert len(packet) == 22


def test_pus_tc_example_from_spacepackets_doctest():
    packet = PusTc(apid=1, service=17, subtype=1, sequence_count=22).build()
    assert packet == bytes.fromhex("1801c01600062f110100 00ab62".replace(" ", ""))
