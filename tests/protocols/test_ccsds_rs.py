"""CCSDS Reed-Solomon (131.0-B) against two independent implementations: libfec and reedsolo.

libfec is Debian's libfec-dev (ctypes); reedsolo is the PyPI package.  Codeblocks are
de-interleaved here, independently of the code under test, and every codeword is given
to the peers without its virtual fill.  What RS guarantees is asserted exactly: up to E
symbol errors per codeword are corrected, counted, and libfec does the same; beyond E
a codeword is never reported clean, and when it is reported corrected the result is a
codeword within E symbols of what was received and libfec found the same one.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import cython_ext
from benchmarks.rs_peers import LibFec, LibFecMissing, reedsolo_codec
from protocols.ccsds.rs import INTERLEAVE_DEPTHS, RsCode, RsStatus
from protocols.errors import ProtocolError

RS = cython_ext.twin("rs")


@pytest.fixture(scope="module")
def libfec() -> LibFec:
    try:
        return LibFec()
    except LibFecMissing as exc:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"{exc} (scripts/ensure-system-deps.sh installs it)")
        pytest.skip(str(exc))


def _codewords(codeblock: bytes, depth: int) -> list[bytes]:
    return [codeblock[i::depth] for i in range(depth)]


def _codes() -> list[RsCode]:
    rng = np.random.default_rng(131)
    codes = []
    for e in (16, 8):
        for basis in ("dual", "conventional"):
            for depth in INTERLEAVE_DEPTHS:
                k = 255 - 2 * e
                for per_word in (k, int(rng.integers(1, k)), 1):
                    codes.append(RsCode(e, depth, basis, per_word * depth))
    return codes


CODES = _codes()


def _frames(code: RsCode, count: int, seed: int) -> np.ndarray:
    assert code.frame_length is not None
    return np.random.default_rng(seed).integers(0, 256, (count, code.frame_length), dtype=np.uint8)


# --------------------------------------------------------------------------- known answers


def test_field_and_basis_tables_are_libfecs(libfec):
    to_dual, to_conventional = RS.basis_tables()
    assert to_dual.tobytes() == libfec.taltab and to_conventional.tobytes() == libfec.tal1tab
    # libfec's CCSDS generator, index form (log base alpha, 255 for a zero coefficient).
    _, log = RS.gf_tables()
    ccsds_poly = bytes((__import__("ctypes").c_ubyte * 33).in_dll(libfec.lib, "CCSDS_poly"))
    ours = RS.generator_polynomial(16)[::-1]  # libfec keeps g_0 first
    assert [log[c] if c else 255 for c in ours] == list(ccsds_poly)


def test_generator_is_symmetric():
    # The CCSDS roots are placed symmetrically (alpha^(11 j), j = 128-E .. 127+E), so g(x) is
    # its own reciprocal: the coefficients read the same both ways (131.0-B 4.3.3).
    for e in (8, 16):
        g = RS.generator_polynomial(e)
        assert len(g) == 2 * e + 1 and g[0] == g[-1] == 1 and g == g[::-1]


#: Check symbols of the frame 00 01 02 .. DE (223 octets), as libfec 1.0 computes them.
KNOWN_CHECK_SYMBOLS = {
    "dual": "4ffb92dd557ec67f27fb8982cf58f8fd028ad117fcef6b2793d0418826578651",
    "conventional": "2fbd4fb4748494b9acd554627212eeb3ebed41191de1d36320ea49290b25abcf",
}


@pytest.mark.parametrize("basis", ["dual", "conventional"])
def test_known_check_symbols(basis, libfec):
    frame = bytes(range(223))
    block = RsCode(16, 1, basis).encode(frame)
    assert block[:223] == frame
    assert block[223:] == libfec.encode(frame, 16, basis == "dual") == bytes.fromhex(KNOWN_CHECK_SYMBOLS[basis])
    assert RsCode(16, 1, basis).encode(bytes(223)) == bytes(255)  # the zero word is a codeword


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("code", CODES, ids=str)
def test_encoding_matches_libfec_per_codeword(code, libfec):
    frames = _frames(code, 3, seed=code.frame_length or 0)
    blocks = code.encode_many(frames)
    assert blocks.shape == (3, code.codeblock_length)
    for frame, block in zip(frames, blocks, strict=True):
        block_bytes = block.tobytes()
        assert block_bytes[: code.frame_length] == frame.tobytes()
        for i, word in enumerate(_codewords(block_bytes, code.interleave)):
            data = frame.tobytes()[i :: code.interleave]
            assert word == data + libfec.encode(data, code.e, code.dual)


@pytest.mark.parametrize("e", [16, 8])
@pytest.mark.parametrize("per_word", [None, 100, 1])
def test_conventional_encoding_matches_reedsolo(e, per_word):
    codec = reedsolo_codec(e)
    k = per_word or 255 - 2 * e
    code = RsCode(e, 2, "conventional", 2 * k)
    frame = _frames(code, 1, seed=e)[0].tobytes()
    for i, word in enumerate(_codewords(code.encode(frame), 2)):
        assert word == bytes(codec.encode(frame[i::2]))


# --------------------------------------------------------------------------- decoding


def _corrupt(block: np.ndarray, code: RsCode, errors_per_word: list[int], rng) -> np.ndarray:
    bad = block.copy()
    words = code.codeblock_length // code.interleave
    for i, count in enumerate(errors_per_word):
        where = rng.choice(words, count, replace=False) * code.interleave + i
        bad[where] ^= rng.integers(1, 256, count, dtype=np.uint8)
    return bad


@pytest.mark.parametrize("code", CODES, ids=str)
def test_up_to_e_errors_are_corrected_like_libfec(code, libfec):
    rng = np.random.default_rng(code.frame_length)
    frames = _frames(code, 6, seed=7)
    blocks = code.encode_many(frames)
    words = code.codeblock_length // code.interleave
    limit = min(code.e, words)
    errors = [[int(rng.integers(0, limit + 1)) for _ in range(code.interleave)] for _ in blocks]
    errors[0] = [limit] * code.interleave  # the full E (or every symbol of a tiny word) at least once
    bad = np.stack([_corrupt(b, code, n, rng) for b, n in zip(blocks, errors, strict=True)])
    batch = code.decode_many(bad)
    assert np.array_equal(batch.codeblocks, blocks) and np.array_equal(batch.frames, frames)
    assert batch.corrected.tolist() == errors
    expected = [[RsStatus.CORRECTED if n else RsStatus.CLEAN for n in row] for row in errors]
    assert batch.status.tolist() == expected
    assert not batch.uncorrectable.any()
    for block, received in zip(blocks, bad, strict=True):
        for word, sent in zip(_codewords(received.tobytes(), code.interleave),
                              _codewords(block.tobytes(), code.interleave), strict=True):
            result, out, _ = libfec.decode(word, code.e, code.dual)
            assert out == sent and result == sum(a != b for a, b in zip(word, sent, strict=True))


@pytest.mark.parametrize("e", [16, 8])
def test_conventional_decoding_agrees_with_reedsolo(e):
    codec = reedsolo_codec(e)
    code = RsCode(e, 1, "conventional", 180)
    rng = np.random.default_rng(e)
    block = code.encode_many(_frames(code, 1, seed=3))[0]
    for count in range(e + 1):
        bad = _corrupt(block, code, [count], rng)
        decoded = code.decode(bad)
        _, theirs, positions = codec.decode(bad.tobytes())
        assert decoded.frame == bytes(theirs[:180]) == block[:180].tobytes()
        assert decoded.corrected == (len(positions),) == (count,)


@pytest.mark.parametrize("e", [16, 8])
@pytest.mark.parametrize("basis", ["dual", "conventional"])
@pytest.mark.parametrize("per_word", [None, 60])
def test_beyond_e_never_silently_wrong(e, basis, per_word, libfec):
    """E+1 .. 2E+8 errors: RS guarantees detection only up to a point; assert what holds always."""
    k = per_word or 255 - 2 * e
    code = RsCode(e, 1, basis, k)
    n = k + 2 * e
    rng = np.random.default_rng(e * 1000 + k)
    block = code.encode_many(_frames(code, 1, seed=11))[0]
    seen = {status: 0 for status in RsStatus}
    for trial in range(300):
        count = e + 1 + trial % (e + 8)
        bad = _corrupt(block, code, [count], rng)
        decoded = code.decode(bad)
        status, fixed = decoded.status[0], decoded.corrected[0]
        seen[status] += 1
        assert status != RsStatus.CLEAN  # a received word that is not a codeword is never "clean"
        result, theirs, _ = libfec.decode(bad.tobytes(), e, code.dual)
        ours = decoded.frame + code.encode(decoded.frame)[k:] if status == RsStatus.CORRECTED else None
        if status == RsStatus.CORRECTED:
            # A miscorrection, since more than E symbols were changed: still a codeword, within E
            # of what was received, and exactly the one libfec found.
            assert ours is not None and code.decode(ours).status == (RsStatus.CLEAN,)
            assert 0 < fixed <= e and fixed == sum(a != b for a, b in zip(ours, bad.tobytes(), strict=True))
            assert (result, theirs) == (fixed, ours)
        else:
            assert result < 0 and theirs == bad.tobytes()  # libfec refuses it too, and leaves it as received
        assert len(theirs) == n
    assert seen[RsStatus.UNCORRECTABLE] > 0


def _generator_word(e: int, dual: bool, libfec: LibFec) -> bytes:
    """The codeword g(x) (weight 2E + 1: every coefficient of g is nonzero), highest power first."""
    g = bytes(RS.generator_polynomial(e))
    assert all(g)
    return g.translate(libfec.taltab) if dual else g


@pytest.mark.parametrize("e", [16, 8])
@pytest.mark.parametrize("basis", ["dual", "conventional"])
def test_a_forced_miscorrection_is_the_nearest_codeword_as_libfec_finds(e, basis, libfec):
    # c' = c + g(x) differs from c in 2E + 1 symbols; changing E + 1 of them leaves the
    # received word E symbols from c': a bounded-distance decoder must "correct" to c'.
    code = RsCode(e, 1, basis, 150)
    block = code.encode(_frames(code, 1, seed=1)[0].tobytes())
    g = _generator_word(e, code.dual, libfec)
    other = block[: -len(g)] + bytes(a ^ b for a, b in zip(block[-len(g):], g, strict=True))
    assert code.decode(other).status == (RsStatus.CLEAN,)
    received = bytearray(block)
    for i in range(e + 1):
        received[len(block) - len(g) + i] = other[len(block) - len(g) + i]
    decoded = code.decode(bytes(received))
    assert decoded.status == (RsStatus.CORRECTED,) and decoded.corrected == (e,)
    assert decoded.frame == other[:150]
    result, theirs, _ = libfec.decode(bytes(received), e, code.dual)
    assert (result, theirs) == (e, other)


@pytest.mark.parametrize("e", [16, 8])
@pytest.mark.parametrize("basis", ["dual", "conventional"])
def test_a_nearest_codeword_inside_the_virtual_fill_is_uncorrectable(e, basis, libfec):
    # z = x^k g(x) is a full-length codeword whose top symbol falls in the first fill position
    # of a shortened word of k + 2E symbols.  Change E + 1 of z's 2E sent symbols: the full
    # code's nearest codeword (c + z) is E symbols away, one of them in the fill, which is
    # known to be zero: there is no codeword of the shortened code within E symbols.
    k = 100
    code = RsCode(e, 1, basis, k)
    block = code.encode(_frames(code, 1, seed=2)[0].tobytes())
    z_sent = _generator_word(e, code.dual, libfec)[1:]  # the top coefficient is in the fill,
    received = bytearray(block)                           # the rest are the first 2E symbols sent
    for i in range(e + 1):
        received[i] ^= z_sent[i]
    decoded = code.decode(bytes(received))
    assert decoded.status == (RsStatus.UNCORRECTABLE,) and decoded.frame == bytes(received[:k])
    result, theirs, _ = libfec.decode(bytes(received), e, code.dual)
    # libfec's Chien search runs over the fill too, and refuses such a root: -2, "impossible
    # error location", the word untouched.
    assert (result, theirs) == (-2, bytes(received))


def test_errors_in_the_check_symbols_and_clean_words():
    code = RsCode(16, 4, "dual", 4 * 200)
    block = code.encode_many(_frames(code, 1, seed=5))[0]
    clean = code.decode(block)
    assert clean.status == (RsStatus.CLEAN,) * 4 and clean.corrected == (0,) * 4 and not clean.uncorrectable
    bad = block.copy()
    bad[800:] ^= 0xFF  # every check symbol of every codeword: 32 errors each, far beyond E
    decoded = code.decode(bad)
    assert decoded.status == (RsStatus.UNCORRECTABLE,) * 4 and decoded.uncorrectable
    assert decoded.frame == block[:800].tobytes()  # uncorrectable words are left as received
    bad = block.copy()
    bad[800:800 + 4 * 16] ^= 0x5A  # 16 check symbols of each codeword
    assert code.decode(bad).corrected == (16,) * 4
    assert code.decode_many(np.stack([block, bad])).counts() == {"clean": 4, "corrected": 4, "uncorrectable": 0}


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(("args", "field"), [
    ((12,), "e"), ((16, 6), "interleave"), ((16, 0), "interleave"), ((16, 1, "berlekamp"), "basis"),
    ((16, 1, "dual", 0), "frame_length"), ((16, 1, "dual", -220), "frame_length"),
    ((16, 1, "dual", 224), "frame_length"), ((8, 1, "dual", 240), "frame_length"),
    ((16, 4, "dual", 222), "frame_length"), ((16, 1, "dual", 22.0), "frame_length"),
])
def test_bad_code_parameters_name_the_field(args, field):
    with pytest.raises(ProtocolError) as err:
        RsCode(*args)
    assert err.value.field == field and "Reed-Solomon code" in str(err.value)


def test_wrong_lengths_name_the_structure_and_offset():
    code = RsCode(16, 1, "conventional", 220)
    with pytest.raises(ProtocolError, match=r"RS\(252,220\).*codeblock at byte 251: 251 octets, expected 252"):
        code.decode(bytes(251))
    with pytest.raises(ProtocolError, match="219 octets, expected 220"):
        code.encode(bytes(219))
    with pytest.raises(ProtocolError, match="not a whole number of 252-octet codeblocks"):
        code.decode_many(bytes(253))
    with pytest.raises(ProtocolError, match=r"shape \(2, 250\) is not \(n, 252\)"):
        code.decode_many(np.zeros((2, 250), np.uint8))
    with pytest.raises(ProtocolError, match="dtype int64"):
        code.encode_many(np.zeros((2, 220), np.int64))
    assert code.decode_many(b"").codeblocks.shape == (0, 252)


def test_spec_strings():
    assert RsCode.from_spec("16/1/dual", 220) == RsCode(16, 1, "dual", 220)
    assert RsCode.from_spec("8/4/conventional") == RsCode(8, 4, "conventional", 956)
    assert RsCode.from_spec("16") == RsCode()
    assert str(RsCode(16, 1, "conventional", 220)) == "RS(252,220) E=16 I=1 conventional basis"
    for bad in ("", "16/x", "16/1/dual/7", "16//dual"):
        with pytest.raises(ProtocolError):
            RsCode.from_spec(bad)
