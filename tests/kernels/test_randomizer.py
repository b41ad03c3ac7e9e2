"""CCSDS pseudo-randomizer: known sequence, self-inverse, compiled == twin."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cython_ext

IMPLEMENTATIONS = [cython_ext.twin("randomizer")] + (
    [cython_ext.compiled("randomizer")] if cython_ext.compiled("randomizer") else [])
IDS = [m.__name__ for m in IMPLEMENTATIONS]


@pytest.mark.parametrize("rnd", IMPLEMENTATIONS, ids=IDS)
def test_known_sequences(rnd):
    assert rnd.tm_sequence(16) == bytes.fromhex("FF480EC09A0D70BC8E2C93ADA7B746CE")
    assert rnd.tm_sequence(32)[16:] == bytes.fromhex("5A977DCC32A2BF3E0A10F18894CDEAB1")
    assert rnd.tc_sequence(5) == bytes.fromhex("FF399E5A68")
    assert rnd.tm_sequence(600)[255:510] == rnd.tm_sequence(255)  # period 255


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(0, 6), st.data())
def test_many_frames_agree_and_invert(frame_length, frames, data):
    buffer = data.draw(st.binary(min_size=frame_length * frames, max_size=frame_length * frames))
    expected = b"".join(cython_ext.twin("randomizer").tm_randomize(buffer[i : i + frame_length])
                        for i in range(0, len(buffer), frame_length))
    for rnd in IMPLEMENTATIONS:
        out = rnd.tm_randomize_many(buffer, frame_length)
        assert out == expected
        assert rnd.tm_randomize_many(out, frame_length) == buffer
        into = np.empty(len(buffer), dtype=np.uint8)
        rnd.tm_derandomize_into(out, frame_length, into)
        assert into.tobytes() == buffer


@pytest.mark.parametrize("rnd", IMPLEMENTATIONS, ids=IDS)
def test_partial_frame_is_refused(rnd):
    with pytest.raises(ValueError):
        rnd.tm_randomize_many(bytes(10), 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 60), st.lists(st.integers(0, 200), max_size=8), st.booleans())
def test_derandomize_frames_at_offsets(frame_length, offsets, even):
    buffer = bytes(range(256)) * 2
    if even:
        offsets = [7 + i * (frame_length + 4) for i in range(len(offsets))]
        offsets = [o for o in offsets if o + frame_length <= len(buffer)]
    expected = [cython_ext.twin("randomizer").tm_randomize(buffer[o : o + frame_length]) for o in offsets]
    for rnd in IMPLEMENTATIONS:
        got = rnd.tm_derandomize_frames(buffer, np.array(offsets, dtype=np.int64), frame_length)
        assert got.shape == (len(offsets), frame_length)
        assert [row.tobytes() for row in got] == expected


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 80), st.integers(0, 9), st.data())
def test_derandomize_and_check_fecf(frame_length, count, data):
    crc = cython_ext.twin("crc")
    frames = []
    for _ in range(count):
        body = data.draw(st.binary(min_size=frame_length - 2, max_size=frame_length - 2))
        frames.append(body + crc.crc16(body).to_bytes(2, "big"))
    bad = data.draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=3)) if count else set()
    frames = [bytes([f[0] ^ 1]) + f[1:] if i in bad else f for i, f in enumerate(frames)]
    stream = b"".join(b"\x1a\xcf\xfc\x1d" + cython_ext.twin("randomizer").tm_randomize(f) for f in frames)
    offsets = np.arange(count, dtype=np.int64) * (frame_length + 4) + 4
    for rnd in IMPLEMENTATIONS:
        out, ok = rnd.tm_derandomize_check(stream, offsets, frame_length)
        assert [row.tobytes() for row in out] == frames
        assert ok.tolist() == [i not in bad for i in range(count)]
