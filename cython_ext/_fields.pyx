# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled field-table decode/encode (twin: cython_ext/pure/fields.py; the table is documented there).

Records are walked in blocks of a few hundred; inside a block one field at a
time, so each inner loop has a fixed shape (the branch on the field's kind is
taken the same way every iteration) and the block's records stay in L1/L2.
"""
from libc.stdint cimport uint8_t, uint16_t, uint64_t, int64_t
from libc.string cimport memcpy

from cython_ext._crc16 cimport crc16_tables, crc16_update, crc16_update4

import numpy as np

from cython_ext.pure.fields import (  # noqa: F401 - the constants are part of the kernel's interface
    COL_OFFSET, COL_NBYTES, COL_KIND, COL_SHIFT, COL_WIDTH, COL_SIGN, COL_OUT, COL_OUT_OFFSET, COL_ITEMSIZE,
    TABLE_COLUMNS, KIND_BE, KIND_LE, KIND_BITS, KIND_BYTES, KIND_BITS_SWAPPED, SIGN_UNSIGNED, SIGN_SIGNED, SIGN_BOOL,
)

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define QQ_BE16(x) (x)
    #define QQ_BE32(x) (x)
    #define QQ_BE64(x) (x)
    #define QQ_LE16(x) __builtin_bswap16(x)
    #define QQ_LE32(x) __builtin_bswap32(x)
    #define QQ_LE64(x) __builtin_bswap64(x)
    #else
    #define QQ_BE16(x) __builtin_bswap16(x)
    #define QQ_BE32(x) __builtin_bswap32(x)
    #define QQ_BE64(x) __builtin_bswap64(x)
    #define QQ_LE16(x) (x)
    #define QQ_LE32(x) (x)
    #define QQ_LE64(x) (x)
    #endif
    static inline uint64_t qq_load_be(const uint8_t *p, int n) {
        uint16_t a; uint32_t b; uint64_t c; int k;
        switch (n) {
        case 1: return p[0];
        case 2: memcpy(&a, p, 2); return QQ_BE16(a);
        case 4: memcpy(&b, p, 4); return QQ_BE32(b);
        case 8: memcpy(&c, p, 8); return QQ_BE64(c);
        default: c = 0; for (k = 0; k < n; k++) c = (c << 8) | p[k]; return c;
        }
    }
    static inline uint64_t qq_load_le(const uint8_t *p, int n) {
        uint16_t a; uint32_t b; uint64_t c; int k;
        switch (n) {
        case 1: return p[0];
        case 2: memcpy(&a, p, 2); return QQ_LE16(a);
        case 4: memcpy(&b, p, 4); return QQ_LE32(b);
        case 8: memcpy(&c, p, 8); return QQ_LE64(c);
        default: c = 0; for (k = n - 1; k >= 0; k--) c = (c << 8) | p[k]; return c;
        }
    }
    static inline void qq_store_be(uint8_t *p, uint64_t v, int n) {
        uint16_t a; uint32_t b; uint64_t c; int k;
        switch (n) {
        case 1: p[0] = (uint8_t)v; return;
        case 2: a = QQ_BE16((uint16_t)v); memcpy(p, &a, 2); return;
        case 4: b = QQ_BE32((uint32_t)v); memcpy(p, &b, 4); return;
        case 8: c = QQ_BE64(v); memcpy(p, &c, 8); return;
        default: for (k = n - 1; k >= 0; k--) { p[k] = (uint8_t)v; v >>= 8; } return;
        }
    }
    static inline void qq_store_le(uint8_t *p, uint64_t v, int n) {
        uint16_t a; uint32_t b; uint64_t c; int k;
        switch (n) {
        case 1: p[0] = (uint8_t)v; return;
        case 2: a = QQ_LE16((uint16_t)v); memcpy(p, &a, 2); return;
        case 4: b = QQ_LE32((uint32_t)v); memcpy(p, &b, 4); return;
        case 8: c = QQ_LE64(v); memcpy(p, &c, 8); return;
        default: for (k = 0; k < n; k++) { p[k] = (uint8_t)v; v >>= 8; } return;
        }
    }
    /* Native-order element of 1/2/4/8 bytes (output and input columns are native numpy arrays). */
    static inline void qq_store_native(uint8_t *p, uint64_t v, int n) {
        uint8_t a = (uint8_t)v; uint16_t b = (uint16_t)v; uint32_t c = (uint32_t)v;
        switch (n) {
        case 1: *p = a; return;
        case 2: memcpy(p, &b, 2); return;
        case 4: memcpy(p, &c, 4); return;
        default: memcpy(p, &v, 8); return;
        }
    }
    /* construct's swapped BitsInteger: the value's width/8 bytes in reverse order. */
    static inline uint64_t qq_swap_bits(uint64_t v, int width) { return __builtin_bswap64(v) >> (64 - width); }
    /* One field over records b0..b1: the common shapes get their own loop (no per-record
       branching on the field's kind), everything else the general one. */
    #define QQ_LOOP(BODY) \
        if (offs) { for (i = b0; i < b1; i++) { const uint8_t *p = src + offs[i] + off; uint8_t *d = dst + i * os; BODY } } \
        else { for (i = b0; i < b1; i++) { const uint8_t *p = src + i * rs + off; uint8_t *d = dst + i * os; BODY } }
    static void qq_decode_field(const uint8_t *src, const int64_t *offs, Py_ssize_t rs, Py_ssize_t b0, Py_ssize_t b1,
                                const int64_t *e, uint8_t *dst, Py_ssize_t os) {
        const int64_t off = e[0], nb = e[1], kind = e[2], shift = e[3], width = e[4], sign = e[5], isz = e[8];
        const uint64_t mask = width >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << width) - 1);
        const uint64_t top = width > 0 ? ((uint64_t)1 << (width - 1)) : 0;
        Py_ssize_t i;
        if (kind == 3) { QQ_LOOP(memcpy(d, p, nb);) return; }
        if ((kind == 0 || kind == 1) && nb == isz && sign != 2) {
            /* whole-byte field into an element of its own size: a byte swap (or not) and a store */
            if (kind == 0) {
                switch (nb) {
                case 1: QQ_LOOP(*d = *p;) return;
                case 2: QQ_LOOP(uint16_t x; memcpy(&x, p, 2); x = QQ_BE16(x); memcpy(d, &x, 2);) return;
                case 4: QQ_LOOP(uint32_t x; memcpy(&x, p, 4); x = QQ_BE32(x); memcpy(d, &x, 4);) return;
                case 8: QQ_LOOP(uint64_t x; memcpy(&x, p, 8); x = QQ_BE64(x); memcpy(d, &x, 8);) return;
                }
            } else {
                switch (nb) {
                case 1: QQ_LOOP(*d = *p;) return;
                case 2: QQ_LOOP(uint16_t x; memcpy(&x, p, 2); x = QQ_LE16(x); memcpy(d, &x, 2);) return;
                case 4: QQ_LOOP(uint32_t x; memcpy(&x, p, 4); x = QQ_LE32(x); memcpy(d, &x, 4);) return;
                case 8: QQ_LOOP(uint64_t x; memcpy(&x, p, 8); x = QQ_LE64(x); memcpy(d, &x, 8);) return;
                }
            }
        }
        if (kind == 2 && nb <= 8 && sign == 0 && isz == 1) {
            QQ_LOOP(*d = (uint8_t)((qq_load_be(p, (int)nb) >> shift) & mask);) return;
        }
        if (kind == 2 && nb <= 8 && sign == 0 && isz == 2) {
            QQ_LOOP(uint16_t x = (uint16_t)((qq_load_be(p, (int)nb) >> shift) & mask); memcpy(d, &x, 2);) return;
        }
        QQ_LOOP(
            uint64_t v;
            if (kind == 0) v = qq_load_be(p, (int)nb);
            else if (kind == 1) v = qq_load_le(p, (int)nb);
            else if (nb == 9) {
                v = ((qq_load_be(p, 8) << (8 - shift)) | (p[8] >> shift)) & mask;
                if (kind == 4) v = qq_swap_bits(v, (int)width);
            } else {
                v = (qq_load_be(p, (int)nb) >> shift) & mask;
                if (kind == 4) v = qq_swap_bits(v, (int)width);
            }
            if (sign == 1) { if (width < 64) v = (v ^ top) - top; }
            else if (sign == 2) v = v != 0;
            qq_store_native(d, v, (int)isz);
        )
    }
    static inline uint64_t qq_load_native(const uint8_t *p, int n) {
        uint16_t b; uint32_t c; uint64_t d;
        switch (n) {
        case 1: return *p;
        case 2: memcpy(&b, p, 2); return b;
        case 4: memcpy(&c, p, 4); return c;
        default: memcpy(&d, p, 8); return d;
        }
    }
    """
    uint64_t qq_load_be(const uint8_t *p, int n) nogil
    uint64_t qq_load_le(const uint8_t *p, int n) nogil
    void qq_store_be(uint8_t *p, uint64_t v, int n) nogil
    void qq_store_le(uint8_t *p, uint64_t v, int n) nogil
    void qq_store_native(uint8_t *p, uint64_t v, int n) nogil
    uint64_t qq_load_native(const uint8_t *p, int n) nogil
    uint64_t qq_swap_bits(uint64_t v, int width) nogil
    void qq_decode_field(const uint8_t *src, const int64_t *offs, Py_ssize_t rs, Py_ssize_t b0, Py_ssize_t b1,
                         const int64_t *e, uint8_t *dst, Py_ssize_t os) nogil

cdef enum:
    BLOCK = 256

cdef uint16_t _CRC_TABLE[16 * 256]
crc16_tables(_CRC_TABLE)


cdef inline uint64_t _mask(int64_t width) noexcept nogil:
    return <uint64_t>0xFFFFFFFFFFFFFFFF if width >= 64 else ((<uint64_t>1) << width) - 1


from cython_ext.buffers import as_u8 as _u8


def _columns(arrays, Py_ssize_t count, bint writable):
    """Base addresses and row strides of C-contiguous (count, ...) arrays."""
    cdef Py_ssize_t k, n = len(arrays)
    bases = np.empty(n, dtype=np.uint64)
    strides = np.empty(n, dtype=np.int64)
    for k in range(n):
        a = arrays[k]
        if not isinstance(a, np.ndarray) or not a.flags.c_contiguous or a.shape[0] != count:
            raise ValueError("columns must be C-contiguous numpy arrays with one row per record")
        if writable and not a.flags.writeable:
            raise ValueError("output columns must be writable")
        bases[k] = a.__array_interface__["data"][0]
        strides[k] = a.nbytes // count if count else 0
    return bases, strides


def decode(buffer, Py_ssize_t record_size, Py_ssize_t count, offsets, table, outputs, Py_ssize_t crc_length=-1,
           crc_out=None):
    """Fill ``outputs`` from ``count`` records of ``record_size`` bytes (see cython_ext.pure.fields).

    With ``crc_length`` >= 0, also the CRC-16 of each record's first ``crc_length`` bytes into
    the uint16 array ``crc_out``, computed while the record is still in cache.
    """
    if count == 0:
        return
    cdef uint16_t[::1] crcs
    cdef bint want_crc = crc_length >= 0
    if want_crc:
        if crc_length > record_size or crc_out is None or crc_out.shape[0] != count:
            raise ValueError("crc_out must be a uint16 array of one entry per record and crc_length <= record_size")
        crcs = crc_out
    cdef const uint8_t[::1] data = _u8(buffer)
    cdef const int64_t[:, ::1] tab = np.ascontiguousarray(table, dtype=np.int64)
    cdef const int64_t[::1] offs
    cdef bint use_offsets = offsets is not None
    if use_offsets:
        offs_array = np.ascontiguousarray(offsets, dtype=np.int64)
        if offs_array.shape[0] != count:
            raise ValueError("offsets must have one entry per record")
        if offs_array.min() < 0 or offs_array.max() + record_size > data.shape[0]:
            raise ValueError("a record offset runs outside the buffer")
        offs = offs_array
    elif data.shape[0] < count * record_size:
        raise ValueError(f"buffer of {data.shape[0]} bytes holds fewer than {count} records of {record_size} bytes")
    if tab.shape[0] and (np.asarray(tab)[:, COL_OFFSET] + np.asarray(tab)[:, COL_NBYTES]).max() > record_size:
        raise ValueError("a field runs past the end of the record")
    bases_array, strides_array = _columns(outputs, count, True)
    cdef const uint64_t[::1] bases = bases_array
    cdef const int64_t[::1] ostrides = strides_array
    cdef Py_ssize_t nf = tab.shape[0], b0, b1, i, k
    cdef const uint8_t *src = &data[0]
    cdef uint8_t *dst
    cdef const int64_t *offp = &offs[0] if use_offsets else NULL
    cdef const uint8_t *ptrs[4]
    cdef uint16_t c4[4]
    cdef Py_ssize_t j
    with nogil:
        b0 = 0
        while b0 < count:
            b1 = b0 + BLOCK
            if b1 > count:
                b1 = count
            for k in range(nf):
                dst = <uint8_t *>(<size_t>bases[tab[k, 6]]) + tab[k, 7]
                qq_decode_field(src, offp, record_size, b0, b1, &tab[k, 0], dst, ostrides[tab[k, 6]])
            if want_crc:
                i = b0
                while i + 4 <= b1:
                    for j in range(4):
                        ptrs[j] = src + (offp[i + j] if use_offsets else (i + j) * record_size)
                        c4[j] = 0xFFFF
                    crc16_update4(_CRC_TABLE, c4, ptrs, crc_length)
                    for j in range(4):
                        crcs[i + j] = c4[j]
                    i += 4
                while i < b1:
                    crcs[i] = crc16_update(_CRC_TABLE, 0xFFFF, src + (offp[i] if use_offsets else i * record_size),
                                           crc_length)
                    i += 1
            b0 = b1


def encode(out, Py_ssize_t record_size, Py_ssize_t count, table, inputs):
    """Write the fields of ``inputs`` into ``out`` (``count`` records, already holding the template)."""
    if count == 0:
        return
    cdef uint8_t[::1] data = _u8(out)
    cdef const int64_t[:, ::1] tab = np.ascontiguousarray(table, dtype=np.int64)
    if data.shape[0] < count * record_size:
        raise ValueError("output buffer too small")
    if tab.shape[0] and (np.asarray(tab)[:, COL_OFFSET] + np.asarray(tab)[:, COL_NBYTES]).max() > record_size:
        raise ValueError("a field runs past the end of the record")
    bases_array, strides_array = _columns(inputs, count, False)
    cdef const uint64_t[::1] bases = bases_array
    cdef const int64_t[::1] istrides = strides_array
    cdef Py_ssize_t nf = tab.shape[0], b0, b1, i, k
    cdef uint8_t *dst0 = &data[0]
    cdef uint8_t *p
    cdef const uint8_t *srcp
    cdef int64_t off, nb, kind, shift, width, sign, itemsize, istride
    cdef uint64_t v, w, mask
    with nogil:
        b0 = 0
        while b0 < count:
            b1 = b0 + BLOCK
            if b1 > count:
                b1 = count
            for k in range(nf):
                off = tab[k, 0]; nb = tab[k, 1]; kind = tab[k, 2]; shift = tab[k, 3]; width = tab[k, 4]
                sign = tab[k, 5]; itemsize = tab[k, 8]
                srcp = <const uint8_t *>(<size_t>bases[tab[k, 6]]) + tab[k, 7]
                istride = istrides[tab[k, 6]]
                mask = _mask(width)
                for i in range(b0, b1):
                    p = dst0 + i * record_size + off
                    if kind == 3:
                        memcpy(p, srcp + i * istride, nb)
                        continue
                    v = qq_load_native(srcp + i * istride, <int>itemsize)
                    if sign == 2:
                        v = v != 0
                    v &= mask
                    if kind == 0:
                        qq_store_be(p, v, <int>nb)
                    elif kind == 1:
                        qq_store_le(p, v, <int>nb)
                    else:
                        if kind == 4:
                            v = qq_swap_bits(v, <int>width)
                        if nb == 9:
                            w = qq_load_be(p, 8)
                            w = (w & ~(mask >> (8 - shift))) | (v >> (8 - shift))
                            qq_store_be(p, w, 8)
                            p[8] = <uint8_t>((p[8] & ~((0xFF << shift) & 0xFF)) | ((v << shift) & 0xFF))
                        else:
                            w = qq_load_be(p, <int>nb)
                            w = (w & ~(mask << shift)) | (v << shift)
                            qq_store_be(p, w, <int>nb)
            b0 = b1
