"""Reed-Solomon kernels: the compiled kernel and its numpy twin give identical results.

Both are checked against libfec and reedsolo in tests/protocols/test_ccsds_rs.py; here
every output (codeblocks, per-codeword status, symbols corrected) of one must equal the
other's, on the same random codeblocks with error counts from none to well beyond E.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cython_ext

TWIN = cython_ext.twin("rs")
COMPILED = cython_ext.compiled("rs")
IMPLEMENTATIONS = [TWIN] + ([COMPILED] if COMPILED else [])
IDS = [m.__name__ for m in IMPLEMENTATIONS]


def test_the_dispatcher_serves_the_rs_family():
    assert "rs" in cython_ext.KERNELS
    expected = "pure" if cython_ext.pure_forced() or COMPILED is None else "compiled"
    assert cython_ext.backend_of("rs") == expected


def _damage(codeblocks: np.ndarray, rng: np.random.Generator, most: int) -> np.ndarray:
    bad = codeblocks.copy()
    for row in bad:
        count = int(rng.integers(0, most + 1))
        where = rng.choice(row.size, min(count, row.size), replace=False)
        row[where] ^= rng.integers(1, 256, where.size, dtype=np.uint8)
    return bad


@settings(max_examples=40, deadline=None)
@given(e=st.sampled_from([8, 16]), depth=st.sampled_from([1, 2, 3, 4, 5, 8]), dual=st.booleans(),
       data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_compiled_and_twin_agree(e, depth, dual, data, seed):
    k = data.draw(st.integers(1, 255 - 2 * e), label="symbols per codeword")
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (12, k * depth), dtype=np.uint8)
    encoded = [m.rs_encode_many(frames, e, depth, dual) for m in IMPLEMENTATIONS]
    for other in encoded[1:]:
        assert np.array_equal(other, encoded[0])
    assert np.array_equal(encoded[0][:, : k * depth], frames)  # systematic: the frame comes first
    # Up to E errors per codeword on average, and up to 2E + 2 in some: every outcome occurs.
    bad = _damage(encoded[0], rng, (2 * e + 2) * depth)
    results = [m.rs_decode_many(bad, e, depth, dual) for m in IMPLEMENTATIONS]
    for other in results[1:]:
        for ours, theirs in zip(results[0], other, strict=True):
            assert np.array_equal(ours, theirs)
    blocks, status, symbols = results[0]
    assert status.shape == symbols.shape == (12, depth)
    assert symbols[status != TWIN.CORRECTED].max(initial=0) == 0


@pytest.mark.parametrize("rs", IMPLEMENTATIONS, ids=IDS)
def test_decode_leaves_its_input_alone(rs):
    frames = np.arange(223, dtype=np.uint8)[None, :]
    block = rs.rs_encode_many(frames, 16, 1, True)
    bad = block.copy()
    bad[0, [3, 40]] ^= 0xA5
    before = bad.copy()
    out, status, symbols = rs.rs_decode_many(bad, 16, 1, True)
    assert np.array_equal(bad, before)
    assert np.array_equal(out, block) and status.tolist() == [[TWIN.CORRECTED]] and symbols.tolist() == [[2]]


@pytest.mark.parametrize("rs", IMPLEMENTATIONS, ids=IDS)
def test_empty_batches_and_bad_shapes(rs):
    assert rs.rs_encode_many(np.zeros((0, 223), np.uint8), 16, 1, True).shape == (0, 255)
    out, status, symbols = rs.rs_decode_many(np.zeros((0, 510), np.uint8), 16, 2, False)
    assert out.shape == (0, 510) and status.shape == symbols.shape == (0, 2)
    with pytest.raises(ValueError):
        rs.rs_encode_many(np.zeros((1, 224), np.uint8), 16, 1, True)   # longer than k
    with pytest.raises(ValueError):
        rs.rs_decode_many(np.zeros((1, 31), np.uint8), 16, 1, True)    # shorter than the check symbols
    with pytest.raises(ValueError):
        rs.rs_decode_many(np.zeros((1, 255), np.uint8), 12, 1, True)   # no such code
