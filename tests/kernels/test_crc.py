"""CRC-16/CCITT-FALSE: known answers, compiled == twin == binascii, many/strided forms."""
from __future__ import annotations

import binascii

import crcmod
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cython_ext

IMPLEMENTATIONS = [cython_ext.twin("crc")] + ([cython_ext.compiled("crc")] if cython_ext.compiled("crc") else [])
IDS = [m.__name__ for m in IMPLEMENTATIONS]
_REFERENCE = crcmod.mkCrcFun(0x11021, initCrc=0xFFFF, rev=False, xorOut=0)


@pytest.mark.parametrize("crc", IMPLEMENTATIONS, ids=IDS)
def test_known_answers(crc):
    assert crc.crc16(b"123456789") == 0x29B1
    assert crc.crc16(b"") == 0xFFFF
    assert crc.crc16(bytes(4)) == 0x84C0
    assert crc.crc16(bytes.fromhex("0F5212341800")) == 0xFFD2
    frame = b"some frame bytes"
    value = crc.crc16(frame)
    assert crc.crc16(frame + value.to_bytes(2, "big")) == 0  # residue


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_every_implementation_agrees_with_independent_ones(data, init):
    expected = binascii.crc_hqx(data, init)
    if init == 0xFFFF:
        assert _REFERENCE(data) == expected
    for crc in IMPLEMENTATIONS:
        assert crc.crc16(data, init) == expected
        assert crc.crc16(bytearray(data), init) == expected
        assert crc.crc16(np.frombuffer(data, dtype=np.uint8), init) == expected


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.integers(1, 90), st.data())
def test_strided_and_many(data, record, draw):
    crc_length = draw.draw(st.integers(0, record))
    count = len(data) // record
    expected = np.array([binascii.crc_hqx(data[i * record : i * record + crc_length], 0xFFFF) for i in range(count)],
                        dtype=np.uint16)
    offsets = np.array(draw.draw(st.lists(st.integers(0, len(data)), max_size=20)), dtype=np.int64)
    lengths = np.array([draw.draw(st.integers(0, len(data) - o)) for o in offsets.tolist()], dtype=np.int64)
    many = np.array([binascii.crc_hqx(data[o : o + n], 0xFFFF) for o, n in zip(offsets, lengths, strict=True)], dtype=np.uint16)
    for crc in IMPLEMENTATIONS:
        got = crc.crc16_strided(data, record, crc_length)
        assert got.dtype == np.uint16 and np.array_equal(got, expected)
        assert np.array_equal(crc.crc16_many(data, offsets, lengths), many)


@pytest.mark.parametrize("crc", IMPLEMENTATIONS, ids=IDS)
def test_bad_arguments(crc):
    with pytest.raises(ValueError):
        crc.crc16_many(b"abc", [2], [5])
    with pytest.raises(ValueError):
        crc.crc16_strided(b"abc", 0, 0)
    with pytest.raises(ValueError):
        crc.crc16_strided(b"abc", 2, 3)
