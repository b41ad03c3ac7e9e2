"""Packet stream splitting and frame-to-packet extraction: compiled == twin == a plain reference walk."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cython_ext

IMPLEMENTATIONS = [cython_ext.twin("packets")] + (
    [cython_ext.compiled("packets")] if cython_ext.compiled("packets") else [])
IDS = [m.__name__ for m in IMPLEMENTATIONS]


def packet(apid: int, seq: int, data_length: int, fill: int = 0xAB) -> bytes:
    header = bytes([(apid >> 8) & 7 | 0x08, apid & 0xFF, 0xC0 | (seq >> 8) & 0x3F, seq & 0xFF,
                    (data_length - 1) >> 8, (data_length - 1) & 0xFF])
    return header + bytes([fill]) * data_length


packet_lists = st.lists(st.tuples(st.integers(0, 0x7FF), st.integers(0, 0x3FFF), st.integers(1, 60)), max_size=40)


@settings(max_examples=120, deadline=None)
@given(packet_lists, st.binary(max_size=8), st.booleans())
def test_split_matches_reference(specs, tail, runs):
    if runs:  # long runs of one length exercise the twin's vectorised path
        specs = [(s[0], s[1], 20) for s in specs] * 3
    stream = b"".join(packet(*s) for s in specs)
    offsets = np.cumsum([0] + [6 + s[2] for s in specs])[:-1]
    buffer = stream + tail
    for kernel in IMPLEMENTATIONS:
        got_offsets, lengths, end, status = kernel.split_packets(buffer, 0)
        n = len(got_offsets)
        assert got_offsets.tolist() == offsets.tolist()[:n]
        assert n >= len(specs) or status != 0
        assert lengths.tolist() == [6 + s[2] for s in specs][:n]
        if not tail:
            assert (end, status) == (len(stream), 0) and n == len(specs)


@pytest.mark.parametrize("kernel", IMPLEMENTATIONS, ids=IDS)
def test_split_reports_truncation_and_bad_headers(kernel):
    stream = packet(5, 1, 10) + packet(6, 2, 10)
    assert kernel.split_packets(stream[:-3])[2:] == (16, 1)
    assert kernel.split_packets(stream + b"\x00\x01")[2:] == (32, 1)
    bad = bytearray(stream)
    bad[16] |= 0xE0  # version 7
    assert kernel.split_packets(bytes(bad))[2:] == (16, 2)
    assert kernel.split_packets(stream, 0, 12)[2:] == (0, 2)  # longer than max_length


def _frames(stream: bytes, width: int):
    """Cut a packet stream into data fields with first header pointers (reference, plain Python)."""
    count = -(-len(stream) // width)
    # Fill the last frame with an idle packet (APID 0x7FF), cut short if the room is under a header.
    padded = stream + packet(0x7FF, 0, max(1, count * width - len(stream) - 6))[: count * width - len(stream)]
    starts = []
    pos = 0
    while pos < len(padded):
        starts.append(pos)  # a header cut by the end of the data still counts as a start
        if pos + 6 > len(padded):
            break
        pos += ((padded[pos + 4] << 8) | padded[pos + 5]) + 7
    fields = np.frombuffer(padded[: count * width], dtype=np.uint8).reshape(count, width)
    fhp = []
    for f in range(count):
        inside = [s - f * width for s in starts if f * width <= s < (f + 1) * width]
        fhp.append(inside[0] if inside else 0x7FF)
    return fields, np.array(fhp), starts


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x7FE), st.integers(1, 80)), min_size=1, max_size=30),
       st.integers(16, 64), st.data())
def test_extract_matches_reference(specs, width, data):
    stream = b"".join(packet(apid, i, n) for i, (apid, n) in enumerate(specs))
    fields, fhp, starts = _frames(stream, width)
    continuous = np.ones(len(fhp), dtype=bool)
    results = [k.extract_packets(fields, fhp, continuous, True) for k in IMPLEMENTATIONS]
    offsets, lengths, frames, tail, lost, errors = results[0]
    assert (lost, errors) == (0, 0)
    complete = [s for s in starts if s < len(stream)]
    assert offsets.tolist() == complete
    # Gaps: drop a frame's continuity and corrupt a first header pointer; the kernels must still agree.
    gap = data.draw(st.integers(0, len(fhp) - 1))
    continuous[gap] = False
    if data.draw(st.booleans()):
        fhp[data.draw(st.integers(0, len(fhp) - 1))] = data.draw(st.sampled_from([0, 1, 0x7FF, 0x7FE]))
    outcomes = [k.extract_packets(fields, fhp, continuous, True) for k in IMPLEMENTATIONS]
    for got in outcomes:
        assert [np.asarray(x).tolist() for x in got] == [np.asarray(x).tolist() for x in outcomes[0]]
        for o, n in zip(got[0].tolist(), got[1].tolist(), strict=True):
            assert fields.reshape(-1)[o + 6 : o + n].tolist() == [0xAB] * (n - 6)  # only whole packets come out
