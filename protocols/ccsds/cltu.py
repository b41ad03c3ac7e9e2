"""Communications Link Transmission Unit (231.0-B): BCH(63,56) code blocks around a TC frame.

CLTU = start sequence EB 90 | code blocks | tail sequence C5 C5 C5 C5 C5 C5 C5 79.
A code block is 7 information octets and one octet of parity: the remainder of the
56 information bits times x^7 divided by g(x) = x^7 + x^6 + x^2 + 1, complemented,
followed by a filler bit 0.  The last block is completed with fill octets 0x55.
With randomization the TC pseudo-randomizer is applied to the frame before encoding
(the fill is not randomized).  The code corrects one bit per block (optional here:
``correct=True``, the 231.0-B error-correcting mode) or just detects errors.
"""
from __future__ import annotations

from dataclasses import dataclass

from cython_ext import randomizer as _randomizer
from protocols.errors import ChecksumError, ProtocolError, TruncatedError

START_SEQUENCE = b"\xeb\x90"
TAIL_SEQUENCE = b"\xc5\xc5\xc5\xc5\xc5\xc5\xc5\x79"
FILL = 0x55
INFO_LENGTH = 7
BLOCK_LENGTH = 8
_G_LOW = 0x45  # g(x) without its x^7 term: x^6 + x^2 + 1


def _remainder_bitwise(info: bytes) -> int:
    reg = 0
    for byte in info:
        for bit in range(7, -1, -1):
            feedback = ((reg >> 6) & 1) ^ ((byte >> bit) & 1)
            reg = (reg << 1) & 0x7F
            if feedback:
                reg ^= _G_LOW
    return reg


def bch_parity(info: bytes) -> int:
    """The parity octet of a 7-octet information block."""
    if len(info) != INFO_LENGTH:
        raise ValueError("a BCH code block carries 7 information octets")
    return ((~_remainder_bitwise(info)) & 0x7F) << 1


def _syndrome_table() -> dict[int, int]:
    # Syndrome of a single error at bit j of the 63-bit codeword (j = 0: last parity bit).
    table = {}
    for j in range(63):
        reg = 1
        for _ in range(j):
            top = (reg >> 6) & 1
            reg = (reg << 1) & 0x7F
            if top:
                reg ^= _G_LOW
        table[reg] = j
    return table


_SYNDROMES = _syndrome_table()


def encode_cltu(frame: bytes, *, randomize: bool = False) -> bytes:
    """One TC frame (or several back to back) as a CLTU."""
    if not frame:
        raise ProtocolError("CLTU", "nothing to encode", field="data")
    data = _randomizer.tc_randomize(frame) if randomize else bytes(frame)
    pad = -len(data) % INFO_LENGTH
    data += bytes([FILL]) * pad
    out = bytearray(START_SEQUENCE)
    for i in range(0, len(data), INFO_LENGTH):
        block = data[i:i + INFO_LENGTH]
        out += block
        out.append(bch_parity(block))
    out += TAIL_SEQUENCE
    return bytes(out)


@dataclass(frozen=True, slots=True)
class DecodedCltu:
    """``data``: the decoded (derandomized, trimmed) octets; ``length``: CLTU octets consumed;
    ``corrected``: bits corrected; ``complete``: ended at the tail sequence (False when an
    uncorrectable block ended it, see ``stop_at_error``)."""

    data: bytes
    length: int
    blocks: int
    corrected: int
    complete: bool = True


def decode_cltu(buffer, offset: int = 0, *, randomized: bool = False, correct: bool = False,
                trim: bool = True, stop_at_error: bool = False) -> DecodedCltu:
    """Decode the CLTU starting at ``offset``.  An uncorrectable block raises ChecksumError naming
    its offset, or with ``stop_at_error`` ends the CLTU as 231.0-B's decoder does (the tail is
    itself just such a block there): the octets before it are returned with ``complete=False``.
    ``trim`` cuts the fill using the TC frame length field of the (first) frame."""
    s = "CLTU"
    if bytes(buffer[offset:offset + 2]) != START_SEQUENCE:
        if len(buffer) - offset < 2:
            raise TruncatedError(s, "no start sequence", field="start", offset=offset)
        raise ProtocolError(s, f"start sequence {bytes(buffer[offset:offset + 2]).hex()} is not eb90",
                            field="start", offset=offset)
    pos = offset + 2
    out = bytearray()
    corrected = 0
    blocks = 0
    complete = True
    while True:
        block = bytes(buffer[pos:pos + BLOCK_LENGTH])
        if len(block) < BLOCK_LENGTH:
            raise TruncatedError(s, "ended before the tail sequence", field=f"block[{blocks}]", offset=pos)
        if block == TAIL_SEQUENCE:
            pos += BLOCK_LENGTH
            break
        info = block[:INFO_LENGTH]
        syndrome = _remainder_bitwise(info) ^ ((~block[7] >> 1) & 0x7F)
        if syndrome:
            j = _SYNDROMES.get(syndrome)
            if not correct or j is None:
                if stop_at_error:
                    complete = False
                    pos += BLOCK_LENGTH
                    break
                raise ChecksumError(s, "BCH code block does not check" + (" (uncorrectable)" if correct else ""),
                                    field=f"block[{blocks}]", offset=pos)
            corrected += 1
            if j >= 7:  # an information bit; a parity bit error needs no repair
                k = j - 7  # bit index from the LSB of the 56 information bits
                fixed = bytearray(info)
                fixed[INFO_LENGTH - 1 - k // 8] ^= 1 << (k % 8)
                info = bytes(fixed)
        out += info
        blocks += 1
        pos += BLOCK_LENGTH
    data = bytes(out)
    if randomized:
        data = _randomizer.tc_randomize(data)
    if trim and len(data) >= 4:
        total = (((data[2] << 8) | data[3]) & 0x3FF) + 1
        if total <= len(data):
            data = data[:total]
    return DecodedCltu(data, pos - offset, blocks, corrected, complete)


class CltuReceiver:
    """CLTU reception over a byte stream cut into chunks of any size (231.0-B decoder states).

    INACTIVE: look for the start sequence EB 90.  DECODE: take 8-octet code blocks until the
    tail sequence or, as the standard's decoder does, the first block that does not check
    (after single-bit correction when ``correct``); then back to INACTIVE.  Each CLTU comes
    out as a :class:`DecodedCltu` (derandomized when ``randomized``; ``complete`` tells
    whether it ended at the tail).  ``skipped_octets`` counts octets outside any CLTU.
    ``trim`` cuts the fill after the first frame (one frame per CLTU, the usual case); with
    several frames per CLTU pass ``trim=False`` and use :func:`split_tc_frames`.
    """

    def __init__(self, *, randomized: bool = False, correct: bool = True, trim: bool = True) -> None:
        self.randomized = randomized
        self.correct = correct
        self.trim = trim
        self.skipped_octets = 0
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[DecodedCltu]:
        self._buf += chunk
        out: list[DecodedCltu] = []
        buf = self._buf
        while True:
            start = buf.find(START_SEQUENCE)
            if start < 0:
                keep = 1 if buf[-1:] == START_SEQUENCE[:1] else 0
                self.skipped_octets += len(buf) - keep
                del buf[:len(buf) - keep]
                return out
            self.skipped_octets += start
            del buf[:start]
            end = self._end_of_cltu(buf)
            if end is None:
                return out  # wait for more blocks
            out.append(decode_cltu(bytes(buf[:end]), randomized=self.randomized, correct=self.correct,
                                   trim=self.trim, stop_at_error=True))
            del buf[:end]

    def _end_of_cltu(self, buf: bytearray) -> int | None:
        """Octets of the CLTU at the start of ``buf``, or None if it is not all here yet."""
        pos = len(START_SEQUENCE)
        while pos + BLOCK_LENGTH <= len(buf):
            block = bytes(buf[pos:pos + BLOCK_LENGTH])
            pos += BLOCK_LENGTH
            if block == TAIL_SEQUENCE:
                return pos
            syndrome = _remainder_bitwise(block[:INFO_LENGTH]) ^ ((~block[7] >> 1) & 0x7F)
            if syndrome and (not self.correct or syndrome not in _SYNDROMES):
                return pos
        return None


def split_tc_frames(data: bytes) -> tuple[list[bytes], int]:
    """TC frames back to back in a decoded CLTU: (frames, octets left over as fill or garbage)."""
    frames = []
    pos = 0
    while len(data) - pos >= 5 and data[pos] >> 6 == 0:
        total = (((data[pos + 2] << 8) | data[pos + 3]) & 0x3FF) + 1
        if pos + total > len(data):
            break
        frames.append(bytes(data[pos:pos + total]))
        pos += total
    return frames, len(data) - pos
