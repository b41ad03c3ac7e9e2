# cython: language_level=3
"""Placeholder compiled CRC (bitwise); replaced by the sliced-table kernel."""
from binascii import crc_hqx
import numpy as np
CRC16_INIT = 0xFFFF
def crc16(data, init=CRC16_INIT):
    return crc_hqx(data, init)
def crc16_many(buffer, offsets, lengths, init=CRC16_INIT):
    from cython_ext.pure.crc import crc16_many as f
    return f(buffer, offsets, lengths, init)
def crc16_strided(buffer, record_length, crc_length, init=CRC16_INIT):
    from cython_ext.pure.crc import crc16_strided as f
    return f(buffer, record_length, crc_length, init)
