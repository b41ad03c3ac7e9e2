# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled CCSDS Reed-Solomon codes (twin: cython_ext/pure/rs.py, which explains the method).

The tables (field, basis maps, the eight-symbol step tables) are built once by the twin;
this module runs the per-codeword loops in C: the remainder eight symbols per step, and
for the rare word whose remainder is not zero, Berlekamp-Massey, Chien and Forney.
"""
from libc.stdint cimport int16_t, int32_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset

import numpy as np

from cython_ext.pure.rs import (  # noqa: F401 - table construction is not on the hot path
    CLEAN, CORRECTED, FIELD_POLYNOMIAL, N, ROOT_STEP, UNCORRECTABLE, basis_tables, first_root, generator_polynomial,
    gf_tables, step_tables,
)
from cython_ext.pure.rs import _check_args

cdef enum:
    NN = 255
    MAX_ROOTS = 32
    STEP = 11                 # ROOT_STEP, as a C constant for the nogil loops
    IS_CORRECTED = 1          # CORRECTED
    IS_UNCORRECTABLE = 2      # UNCORRECTABLE

cdef int32_t _EXP[2 * NN]
cdef int32_t _LOG[256]
cdef uint8_t _TO_DUAL[256]
cdef uint8_t _TO_CONV[256]


def _load_tables() -> None:
    exp, log = gf_tables()
    to_dual, to_conv = basis_tables()
    cdef Py_ssize_t i
    for i in range(2 * NN):
        _EXP[i] = exp[i]
    for i in range(256):
        _LOG[i] = log[i]
        _TO_DUAL[i] = to_dual[i]
        _TO_CONV[i] = to_conv[i]


_load_tables()


cdef inline void _step(const uint8_t *chunk, uint64_t *reg, const uint64_t *tables, int words) noexcept nogil:
    # One eight-symbol step of the division: feedback = register head XOR the eight symbols,
    # register shifted by eight symbols, then the eight table rows of the feedback XORed in.
    cdef uint64_t f
    cdef uint8_t fb[8]
    cdef const uint64_t *row
    cdef int j, w
    memcpy(&f, chunk, 8)
    f ^= reg[0]
    memcpy(fb, &f, 8)
    for w in range(words - 1):
        reg[w] = reg[w + 1]
    reg[words - 1] = 0
    for j in range(8):
        row = tables + (j * 256 + fb[j]) * words
        for w in range(words):
            reg[w] ^= row[w]


cdef inline void _remainder(const uint8_t *data, Py_ssize_t k, const uint64_t *tables, int words,
                            uint64_t *reg) noexcept nogil:
    # d(x) x^2E mod g(x), the register left in reg (2E symbols, highest power first, as memory).
    cdef Py_ssize_t pos = 0, head = k % 8
    cdef uint8_t first[8]
    cdef int w
    for w in range(words):
        reg[w] = 0
    if head:
        # Virtual zeros in front keep the register at zero: pad the first step instead of a
        # symbol-at-a-time loop.
        memset(first, 0, 8)
        memcpy(first + 8 - head, data, head)
        _step(first, reg, tables, words)
        pos = head
    while pos < k:
        _step(data + pos, reg, tables, words)
        pos += 8


cdef inline void _remainder_of(const uint8_t *data, Py_ssize_t k, const uint64_t *tables, int words,
                               uint64_t *reg) noexcept nogil:
    # The two register widths as separate inlined copies: a constant width lets the compiler
    # unroll the word loops and keep the register in CPU registers.
    if words == 4:
        _remainder(data, k, tables, 4, reg)
    else:
        _remainder(data, k, tables, 2, reg)


cdef inline int _gf_mul(int a, int b) noexcept nogil:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


cdef inline int _mod(int x) noexcept nogil:
    x %= NN
    return x + NN if x < 0 else x


cdef int _correct(uint8_t *word, Py_ssize_t length, const uint8_t *remainder, int e, bint dual,
                  const uint64_t *tables) noexcept nogil:
    # Mirror of the twin's _correct_word(): symbols changed, or -1 with the word left untouched.
    cdef int nroots = 2 * e, fcr = 128 - e, words = nroots // 8
    cdef int i, j, r, p, degree, length_bm = 0, count = 0, step, c, ld, inv, num, den, value
    cdef int rem[MAX_ROOTS]
    cdef int synd[MAX_ROOTS]
    cdef int lam[MAX_ROOTS + 1]
    cdef int prev[MAX_ROOTS + 1]
    cdef int upd[MAX_ROOTS + 1]
    cdef int omega[MAX_ROOTS]
    cdef int term[MAX_ROOTS + 1]
    cdef int roots[MAX_ROOTS]
    cdef int values[MAX_ROOTS]
    cdef int acc, discrepancy, power, square
    cdef int advance[MAX_ROOTS + 1]
    cdef uint8_t fixed[NN]
    cdef uint64_t reg[4]
    cdef uint64_t check
    cdef Py_ssize_t k = length - nroots

    for i in range(nroots):
        rem[i] = _TO_CONV[remainder[i]] if dual else remainder[i]
    # S_j = rem(alpha^(11 (fcr + j))) by Horner, highest power first (no modulo in the loop).
    for j in range(nroots):
        step = (STEP * (fcr + j)) % NN
        acc = 0
        for i in range(nroots):
            acc = (_EXP[_LOG[acc] + step] if acc else 0) ^ rem[i]
        synd[j] = acc

    # Berlekamp-Massey
    for i in range(nroots + 1):
        lam[i] = 0
        prev[i] = 0
    lam[0] = 1
    prev[0] = 1
    for r in range(nroots):
        discrepancy = 0
        for i in range(length_bm + 1):
            if lam[i] and synd[r - i]:
                discrepancy ^= _EXP[_LOG[lam[i]] + _LOG[synd[r - i]]]
        for i in range(nroots, 0, -1):
            prev[i] = prev[i - 1]
        prev[0] = 0
        if discrepancy:
            ld = _LOG[discrepancy]
            for i in range(nroots + 1):
                upd[i] = lam[i] ^ (_EXP[ld + _LOG[prev[i]]] if prev[i] else 0)
            if 2 * length_bm <= r:
                length_bm = r + 1 - length_bm
                for i in range(nroots + 1):
                    prev[i] = _EXP[_LOG[lam[i]] - ld + NN] if lam[i] else 0
            for i in range(nroots + 1):
                lam[i] = upd[i]
    degree = nroots
    while degree > 0 and lam[degree] == 0:
        degree -= 1
    if degree == 0 or degree > e:
        return -1

    # Chien search over the positions that exist (p = power of x; symbol length - 1 - p).
    for i in range(1, degree + 1):
        term[i] = _LOG[lam[i]] if lam[i] else -1
        advance[i] = (STEP * i) % NN
    for p in range(length):
        acc = 1
        for i in range(1, degree + 1):
            if term[i] >= 0:
                acc ^= _EXP[term[i]]
                term[i] -= advance[i]
                if term[i] < 0:
                    term[i] += NN
        if acc == 0:
            roots[count] = p
            count += 1
            if count == degree:
                break
    if count != degree:
        return -1

    for i in range(nroots):
        omega[i] = 0
    for i in range(nroots):
        if synd[i]:
            for j in range(nroots - i):
                if j <= degree and lam[j]:
                    omega[i + j] ^= _EXP[_LOG[synd[i]] + _LOG[lam[j]]]
    for r in range(count):
        p = roots[r]
        inv = _mod(-STEP * p)  # log of X^-1; the powers below are running sums of it
        num = 0
        power = 0
        for i in range(nroots):
            if omega[i]:
                num ^= _EXP[_LOG[omega[i]] + power]
            power += inv
            if power >= NN:
                power -= NN
        den = 0
        power = 0
        square = inv * 2 % NN
        for i in range(1, degree + 1, 2):
            if lam[i]:
                den ^= _EXP[_LOG[lam[i]] + power]
            power += square
            if power >= NN:
                power -= NN
        if num == 0 or den == 0:
            return -1
        value = _EXP[_mod(_LOG[num] - _LOG[den] + STEP * p * (1 - fcr))]
        values[r] = _TO_DUAL[value] if dual else value

    memcpy(fixed, word, length)
    for r in range(count):
        fixed[length - 1 - roots[r]] ^= <uint8_t>values[r]
    _remainder_of(fixed, k, tables, words, reg)
    for i in range(words):
        memcpy(&check, fixed + k + 8 * i, 8)
        if check != reg[i]:
            return -1
    memcpy(word, fixed, length)
    return degree


def rs_encode_many(frames, e: int, interleave: int, dual: bool):
    """(n, L) frames -> (n, L + 2E I) codeblocks: the frame, then the I interleaved check-symbol sets."""
    frames_a = np.ascontiguousarray(frames, dtype=np.uint8)
    _check_args(frames_a, e, interleave, 0)
    tables_a = step_tables(e, dual).view(np.uint64)
    cdef const uint64_t[:, :, ::1] tables = tables_a
    cdef Py_ssize_t count = frames_a.shape[0], length = frames_a.shape[1], depth = interleave
    cdef Py_ssize_t k = length // depth, nroots = 2 * e, total = length + nroots * depth
    cdef int words = 2 * e // 8
    out_a = np.empty((count, total), dtype=np.uint8)
    if count == 0:
        return out_a
    cdef const uint8_t[:, ::1] src = frames_a
    cdef uint8_t[:, ::1] out = out_a
    cdef Py_ssize_t b, i, m
    cdef uint8_t gathered[NN]
    cdef uint64_t reg[4]
    cdef uint8_t *parity
    with nogil:
        for b in range(count):
            memcpy(&out[b, 0], &src[b, 0], length)
            if depth == 1:
                _remainder_of(&src[b, 0], k, &tables[0, 0, 0], words, reg)
                memcpy(&out[b, length], reg, nroots)
            else:
                for i in range(depth):
                    for m in range(k):
                        gathered[m] = src[b, m * depth + i]
                    _remainder_of(gathered, k, &tables[0, 0, 0], words, reg)
                    parity = <uint8_t *>reg
                    for m in range(nroots):
                        out[b, length + m * depth + i] = parity[m]
    return out_a


def rs_decode_many(codeblocks, e: int, interleave: int, dual: bool):
    """Check and correct (n, L) codeblocks: (corrected codeblocks, status (n, I) uint8, symbols (n, I) int16).

    Status is CLEAN, CORRECTED or UNCORRECTABLE per codeword; an uncorrectable codeword keeps
    the symbols received.
    """
    blocks_a = np.ascontiguousarray(codeblocks, dtype=np.uint8)
    _check_args(blocks_a, e, interleave, 2 * e)
    tables_a = step_tables(e, dual).view(np.uint64)
    cdef const uint64_t[:, :, ::1] tables = tables_a
    cdef Py_ssize_t count = blocks_a.shape[0], total = blocks_a.shape[1], depth = interleave
    cdef Py_ssize_t length = total // depth, nroots = 2 * e, k = length - nroots
    cdef int words = 2 * e // 8
    out_a = blocks_a.copy()
    status_a = np.zeros((count, depth), dtype=np.uint8)
    symbols_a = np.zeros((count, depth), dtype=np.int16)
    if count == 0:
        return out_a, status_a, symbols_a
    cdef uint8_t[:, ::1] out = out_a
    cdef uint8_t[:, ::1] status = status_a
    cdef int16_t[:, ::1] symbols = symbols_a
    cdef Py_ssize_t b, i, m
    cdef uint8_t gathered[NN]
    cdef uint8_t *word
    cdef uint64_t reg[4]
    cdef uint64_t received
    cdef uint8_t syndrome[MAX_ROOTS]
    cdef bint dirty
    cdef int fixed, w
    cdef bint is_dual = dual
    cdef int correctable = e
    with nogil:
        for b in range(count):
            for i in range(depth):
                if depth == 1:
                    word = &out[b, 0]
                else:
                    for m in range(length):
                        gathered[m] = out[b, m * depth + i]
                    word = gathered
                _remainder_of(word, k, &tables[0, 0, 0], words, reg)
                dirty = False
                for w in range(words):
                    memcpy(&received, word + k + 8 * w, 8)
                    reg[w] ^= received
                    dirty = dirty or reg[w] != 0
                if not dirty:
                    continue
                memcpy(syndrome, reg, nroots)
                fixed = _correct(word, length, syndrome, correctable, is_dual, &tables[0, 0, 0])
                if fixed < 0:
                    status[b, i] = IS_UNCORRECTABLE
                    continue
                status[b, i] = IS_CORRECTED
                symbols[b, i] = fixed
                if depth > 1:
                    for m in range(length):
                        out[b, m * depth + i] = gathered[m]
    return out_a, status_a, symbols_a
