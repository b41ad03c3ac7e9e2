"""ASM search (exact and with bit errors) and the frame lock: compiled == twin == brute force."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cython_ext

ASM = bytes.fromhex("1ACFFC1D")
IMPLEMENTATIONS = [cython_ext.twin("sync")] + ([cython_ext.compiled("sync")] if cython_ext.compiled("sync") else [])
IDS = [m.__name__ for m in IMPLEMENTATIONS]


def _brute(buffer: bytes, start: int, marker: bytes, max_errors: int) -> list[int]:
    hits = []
    for i in range(start, len(buffer) - len(marker) + 1):
        errors = sum(bin(a ^ b).count("1") for a, b in zip(buffer[i : i + len(marker)], marker, strict=True))
        if errors <= max_errors:
            hits.append(i)
    return hits


@st.composite
def streams(draw):
    parts = draw(st.lists(st.one_of(st.binary(max_size=20), st.just(ASM),
                                    st.builds(lambda b, k: bytes(x ^ (1 << k) if i == 1 else x for i, x in enumerate(ASM)),
                                              st.none(), st.integers(0, 7))), max_size=8))
    return b"".join(parts)


@settings(max_examples=150, deadline=None)
@given(streams(), st.integers(0, 3), st.integers(0, 5))
def test_search_matches_brute_force(buffer, max_errors, start):
    start = min(start, len(buffer))  # past the end is an argument error (tests/kernels/test_arguments.py)
    expected = _brute(buffer, start, ASM, max_errors)
    for sync in IMPLEMENTATIONS:
        assert sync.find_all_asm(buffer, start, ASM, max_errors).tolist() == expected
        assert sync.find_asm(buffer, start, ASM, max_errors) == (expected[0] if expected else -1)


@pytest.mark.parametrize("sync", IMPLEMENTATIONS, ids=IDS)
def test_bit_errors(sync):
    assert sync.bit_errors(ASM, 0) == 0
    assert sync.bit_errors(bytes.fromhex("1ACFFC1C"), 0) == 1
    assert sync.bit_errors(b"\x1a", 0) == 32


@settings(max_examples=80, deadline=None)
@given(st.integers(8, 40), st.lists(st.integers(0, 3), max_size=12), st.binary(max_size=30), st.integers(0, 2))
def test_lock_frames_agree(cadu, damage, junk, tolerance):
    rng = np.random.default_rng(len(damage) * 31 + cadu)
    frames = []
    for bits in damage:
        marker = bytearray(ASM)
        for k in range(bits):
            marker[k] ^= 0x80
        frames.append(bytes(marker) + rng.integers(0, 256, cadu - 4, dtype=np.uint8).tobytes())
    buffer = junk + b"".join(frames) + junk[:5]
    results = [sync.lock_frames(buffer, cadu, 0, ASM, tolerance) for sync in IMPLEMENTATIONS]
    for offsets, resume in results:
        assert offsets.tolist() == results[0][0].tolist() and resume == results[0][1]
        for o in offsets.tolist():
            assert _brute(buffer[o : o + 4], 0, ASM, tolerance) == [0]
