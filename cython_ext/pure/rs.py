"""CCSDS Reed-Solomon codes (131.0-B section 4), numpy twin of cython_ext/_rs.pyx.

The code: GF(2^8) built on F(x) = x^8 + x^7 + x^2 + x + 1 (0x187), generator polynomial
g(x) = prod_{j=128-E}^{127+E} (x - alpha^(11 j)), so RS(255,223) for E = 16 and RS(255,239)
for E = 8.  Symbols are sent highest power first; "dual" is the Berlekamp dual-basis
representation the standard puts on the wire, "conventional" the plain polynomial basis
(Tianwen-1).  A codeblock interleaves I codewords symbol by symbol; shortened codewords
start with virtual zero fill, which is never sent.

How the work is split, and why (both kernels do the same):

- *Remainder, eight symbols a step.*  Encoding is the remainder of d(x) x^2E mod g(x); the
  check of a received word r(x) is r(x) mod g(x) = (data part's remainder) XOR (received
  check symbols), zero exactly for a codeword.  The LFSR division absorbs eight symbols per
  step through eight 256-entry tables of 2E-byte rows (like slicing-by-8 CRCs): one XOR of
  2E/8 words per symbol instead of 2E table multiplications.  Virtual fill (zeros at the
  front) leaves the register at zero, so a shortened word is padded in front to whole steps.
  The dual basis is a GF(2)-linear change of representation, so it is folded into the
  tables: the register runs in dual representation and costs nothing extra.
- *Correction only for words whose remainder is not zero*: syndromes from the remainder
  (2E x 2E products, not 2E x 255), Berlekamp-Massey, Chien search over the positions that
  exist (a root in the virtual fill means uncorrectable), Forney.  The corrected word is
  checked once more: "corrected" always means "a codeword within E symbols of what was
  received", which is unique, so both kernels agree whatever the path.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

FIELD_POLYNOMIAL = 0x187
N = 255
ROOT_STEP = 11          # the generator's roots are alpha^(11 j)
CLEAN, CORRECTED, UNCORRECTABLE = 0, 1, 2

#: Rows of the conventional-to-dual transformation matrix (131.0-B annex F), as libfec's
#: gen_ccsds_tal.c writes them: dual = XOR of TAL[7 - k] for every set bit k of the
#: conventional symbol.
_TAL = (0x8D, 0xEF, 0xEC, 0x86, 0xFA, 0x99, 0xAF, 0x7B)


@lru_cache(maxsize=1)
def gf_tables() -> tuple[np.ndarray, np.ndarray]:
    """(exp, log) of GF(2^8)/0x187 with alpha = 2: exp has 510 entries (no modulo for sums of two logs)."""
    exp = np.zeros(2 * N, dtype=np.int32)
    log = np.zeros(256, dtype=np.int32)
    x = 1
    for i in range(N):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= FIELD_POLYNOMIAL
    exp[N:] = exp[:N]
    return exp, log


@lru_cache(maxsize=1)
def basis_tables() -> tuple[np.ndarray, np.ndarray]:
    """(to_dual, to_conventional): the symbol maps between the two representations."""
    to_dual = np.zeros(256, dtype=np.uint8)
    for value in range(256):
        acc = 0
        for bit in range(8):
            if value >> bit & 1:
                acc ^= _TAL[7 - bit]
        to_dual[value] = acc
    to_conventional = np.zeros(256, dtype=np.uint8)
    to_conventional[to_dual] = np.arange(256, dtype=np.uint8)
    return to_dual, to_conventional


def first_root(e: int) -> int:
    """Exponent j of the generator's first root alpha^(11 j): 128 - E."""
    return 128 - e


def _mul(a: int, b: int) -> int:
    exp, log = gf_tables()
    return 0 if a == 0 or b == 0 else int(exp[log[a] + log[b]])


@lru_cache(maxsize=4)
def generator_polynomial(e: int) -> tuple[int, ...]:
    """g(x) in the conventional basis, highest power first (2E + 1 coefficients, monic)."""
    exp, _ = gf_tables()
    poly = [1]
    for j in range(first_root(e), first_root(e) + 2 * e):
        root = int(exp[ROOT_STEP * j % N])
        poly = [a ^ _mul(b, root) for a, b in zip(poly + [0], [0] + poly, strict=True)]
    return tuple(poly)


@lru_cache(maxsize=8)
def step_tables(e: int, dual: bool) -> np.ndarray:
    """(8, 256, 2E) uint8: the register contribution of symbol value v at place j of an 8-symbol step.

    Row [j, v] is v x^(2E + 7 - j) mod g(x) as the 2E register symbols (highest power first),
    in the representation of the wire (dual rows take and give dual symbols).
    """
    nroots = 2 * e
    g = np.array(generator_polynomial(e)[1:], dtype=np.int64)  # g_{2E-1} .. g_0
    exp, log = gf_tables()
    values = np.arange(256)
    one = np.zeros((256, nroots), dtype=np.int64)  # v x^2E mod g = v * (g_{2E-1} .. g_0)
    nz = values != 0
    gl = np.where(g != 0, log[np.maximum(g, 1)], -1)
    prod = exp[(log[values[nz], None] + gl[None, :]) % N]
    one[nz] = np.where(gl[None, :] >= 0, prod, 0)
    tables = np.zeros((8, 256, nroots), dtype=np.int64)
    # A symbol at place j is followed by 7 - j zero symbols: shift the register that many times.
    for j in range(8):
        reg = one.copy()
        for _ in range(7 - j):
            feedback = reg[:, 0]
            reg = np.concatenate([reg[:, 1:], np.zeros((256, 1), dtype=np.int64)], axis=1) ^ one[feedback]
        tables[j] = reg
    tables = tables.astype(np.uint8)
    if dual:
        to_dual, to_conventional = basis_tables()
        tables = to_dual[tables[:, to_conventional, :]]
    return np.ascontiguousarray(tables)


# --------------------------------------------------------------------------- batch remainders


def _remainders(data: np.ndarray, e: int, dual: bool) -> np.ndarray:
    """(M, 2E) uint8: d(x) x^2E mod g(x) of every row of ``data`` (M, k) in the wire representation."""
    count, k = data.shape
    nwords = 2 * e // 8
    pad = -k % 8
    words = np.zeros((count, k + pad), dtype=np.uint8)
    words[:, pad:] = data
    chunks = words.view(np.uint64)
    tables = step_tables(e, dual).view(np.uint64)  # (8, 256, nwords), rows in memory order
    reg = np.zeros((count, nwords), dtype=np.uint64)
    for c in range(chunks.shape[1]):
        feedback = np.ascontiguousarray(reg[:, 0] ^ chunks[:, c]).view(np.uint8).reshape(count, 8)
        acc = tables[0][feedback[:, 0]]
        for j in range(1, 8):
            acc ^= tables[j][feedback[:, j]]
        acc[:, :-1] ^= reg[:, 1:]
        reg = acc
    return np.ascontiguousarray(reg).view(np.uint8).reshape(count, 2 * e)


def _codewords(codeblocks: np.ndarray, interleave: int) -> np.ndarray:
    """(n * I, n') codewords, de-interleaved from (n, I n') codeblocks."""
    count, length = codeblocks.shape
    words = codeblocks.reshape(count, length // interleave, interleave).transpose(0, 2, 1)
    return np.ascontiguousarray(words).reshape(-1, length // interleave)


def _interleaved(codewords: np.ndarray, count: int, interleave: int) -> np.ndarray:
    length = codewords.shape[1]
    return np.ascontiguousarray(codewords.reshape(count, interleave, length).transpose(0, 2, 1)).reshape(
        count, interleave * length)


def _check_args(array: np.ndarray, e: int, interleave: int, check_symbols: int) -> None:
    """Rows must be I interleaved words of 1 + check_symbols .. 255 - 2E + check_symbols symbols."""
    if e not in (8, 16) or interleave < 1:
        raise ValueError(f"E={e}, I={interleave}: E must be 8 or 16 and I at least 1")
    low, high = (1 + check_symbols) * interleave, (N - 2 * e + check_symbols) * interleave
    if array.ndim != 2 or array.shape[1] % interleave or not low <= array.shape[1] <= high:
        raise ValueError(f"array of shape {array.shape} is not rows of {interleave} interleaved words")


def rs_encode_many(frames, e: int, interleave: int, dual: bool) -> np.ndarray:
    """(n, L) frames -> (n, L + 2E I) codeblocks: the frame, then the I interleaved check-symbol sets."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    _check_args(frames, e, interleave, 0)
    count, length = frames.shape
    parity = _remainders(_codewords(frames, interleave), e, dual)
    out = np.empty((count, length + 2 * e * interleave), dtype=np.uint8)
    out[:, :length] = frames
    out[:, length:] = _interleaved(parity, count, interleave)
    return out


def rs_decode_many(codeblocks, e: int, interleave: int, dual: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check and correct (n, L) codeblocks: (corrected codeblocks, status (n, I) uint8, symbols (n, I) int16).

    Status is CLEAN, CORRECTED or UNCORRECTABLE per codeword; an uncorrectable codeword keeps
    the symbols received.
    """
    codeblocks = np.ascontiguousarray(codeblocks, dtype=np.uint8)
    _check_args(codeblocks, e, interleave, 2 * e)
    count = codeblocks.shape[0]
    words = _codewords(codeblocks, interleave).copy()  # a view when I = 1: corrections must not reach the input
    k = words.shape[1] - 2 * e
    syndrome = _remainders(words[:, :k], e, dual) ^ words[:, k:]
    dirty = np.flatnonzero(syndrome.any(axis=1))
    status = np.zeros(words.shape[0], dtype=np.uint8)
    symbols = np.zeros(words.shape[0], dtype=np.int16)
    out = codeblocks.copy()
    if dirty.size:
        for index in dirty.tolist():
            fixed = _correct_word(words[index], syndrome[index], e, dual)
            if fixed < 0:
                status[index] = UNCORRECTABLE
            else:
                status[index] = CORRECTED
                symbols[index] = fixed
        out = _interleaved(words, count, interleave)
    return out, status.reshape(count, interleave), symbols.reshape(count, interleave)


# --------------------------------------------------------------------------- one word's correction


def _correct_word(word: np.ndarray, remainder: np.ndarray, e: int, dual: bool) -> int:
    """Correct one codeword (n' symbols, wire representation) in place from its nonzero remainder.

    Returns the number of symbols changed, or -1 (word left as it was) when no codeword lies
    within E symbols.
    """
    exp_a, log_a = gf_tables()
    exp, log = exp_a.tolist(), log_a.tolist()
    nroots, fcr, length = 2 * e, first_root(e), word.shape[0]
    to_dual, to_conventional = basis_tables()
    rem = (to_conventional[remainder] if dual else remainder).tolist()
    # S_j = rem(alpha^(11 (fcr + j))); rem's symbol i is the coefficient of x^(2E - 1 - i).
    terms = [(log[c], nroots - 1 - i) for i, c in enumerate(rem) if c]
    syndromes = []
    for j in range(nroots):
        step = ROOT_STEP * (fcr + j)
        acc = 0
        for lc, power in terms:
            acc ^= exp[(lc + step * power) % N]
        syndromes.append(acc)
    locator = _berlekamp_massey(syndromes, nroots, exp, log)
    degree = len(locator) - 1
    if degree == 0 or degree > e:
        return -1
    # Chien search over the positions that exist: position p (power of x) is symbol length-1-p.
    powers = np.arange(length)
    acc_v = np.ones(length, dtype=np.int64)
    for i in range(1, degree + 1):
        if locator[i]:
            acc_v ^= exp_a[(log[locator[i]] - ROOT_STEP * powers * i) % N]
    roots = np.flatnonzero(acc_v == 0).tolist()
    if len(roots) != degree:
        return -1
    omega = [0] * nroots  # S(x) Lambda(x) mod x^2E
    for i, s in enumerate(syndromes):
        if s:
            for j, lam in enumerate(locator[: nroots - i]):
                if lam:
                    omega[i + j] ^= exp[log[s] + log[lam]]
    fixes = []
    for p in roots:
        inv = -ROOT_STEP * p % N  # log of X^-1
        num = 0
        for i, w in enumerate(omega):
            if w:
                num ^= exp[(log[w] + inv * i) % N]
        den = 0
        for i in range(1, degree + 1, 2):
            if locator[i]:
                den ^= exp[(log[locator[i]] + inv * (i - 1)) % N]
        if num == 0 or den == 0:
            return -1
        value = exp[(log[num] - log[den] + ROOT_STEP * p * (1 - fcr)) % N]
        fixes.append((length - 1 - p, int(to_dual[value]) if dual else value))
    fixed = word.copy()
    for index, value in fixes:
        fixed[index] ^= value
    k = length - nroots
    if (_remainders(fixed[None, :k], e, dual)[0] ^ fixed[k:]).any():
        return -1
    word[:] = fixed
    return degree


def _berlekamp_massey(syndromes: list[int], nroots: int, exp: list[int], log: list[int]) -> list[int]:
    """The error locator Lambda(x), lowest power first, trailing zeros dropped."""
    locator = [1] + [0] * nroots
    previous = [1] + [0] * nroots
    length = 0
    for r in range(nroots):
        discrepancy = 0
        for i in range(length + 1):
            if locator[i] and syndromes[r - i]:
                discrepancy ^= exp[log[locator[i]] + log[syndromes[r - i]]]
        previous = [0] + previous[:-1]
        if discrepancy:
            ld = log[discrepancy]
            updated = [a ^ (exp[ld + log[b]] if b else 0) for a, b in zip(locator, previous, strict=True)]
            if 2 * length <= r:
                length = r + 1 - length
                previous = [exp[log[a] - ld + N] if a else 0 for a in locator]
            locator = updated
    while len(locator) > 1 and locator[-1] == 0:
        locator.pop()
    return locator
