"""Two independent CCSDS Reed-Solomon implementations, the peers of ``protocols.ccsds.rs``.

- libfec (Phil Karn's, Debian ``libfec-dev``), through ctypes: ``encode_rs_ccsds`` /
  ``decode_rs_ccsds`` (dual basis) and ``encode_rs_8`` / ``decode_rs_8`` (conventional) for
  E = 16; its general ``init_rs_char`` codec with the CCSDS parameters for E = 8, with
  libfec's own basis tables (``Taltab`` / ``Tal1tab``) around it for the dual basis.
- reedsolo (PyPI, pure Python), conventional basis: field polynomial 0x187, first
  consecutive root 128 - E, roots spaced by 11 (its generator is the element alpha^11).

Both work on one de-interleaved codeword at a time, given without its virtual fill.
The differential tests and ``benchmarks.rs`` use them; neither is a runtime dependency.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

FIELD_POLYNOMIAL = 0x187
N = 255


class LibFecMissing(RuntimeError):
    """libfec.so is not installed (Debian: apt-get install libfec-dev)."""


class LibFec:
    """libfec's CCSDS Reed-Solomon codecs on one codeword (bytes without virtual fill)."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("fec") or "libfec.so.0"
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as exc:
            raise LibFecMissing(f"libfec not found ({exc}); apt-get install libfec-dev") from exc
        lib = self.lib
        for name in ("encode_rs_ccsds", "encode_rs_8"):
            getattr(lib, name).argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
            getattr(lib, name).restype = None
        for name in ("decode_rs_ccsds", "decode_rs_8"):
            getattr(lib, name).argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int]
            getattr(lib, name).restype = ctypes.c_int
        lib.init_rs_char.argtypes = [ctypes.c_int] * 6
        lib.init_rs_char.restype = ctypes.c_void_p
        lib.encode_rs_char.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.encode_rs_char.restype = None
        lib.decode_rs_char.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        lib.decode_rs_char.restype = ctypes.c_int
        self.taltab = bytes((ctypes.c_ubyte * 256).in_dll(lib, "Taltab"))     # conventional -> dual
        self.tal1tab = bytes((ctypes.c_ubyte * 256).in_dll(lib, "Tal1tab"))   # dual -> conventional
        self._codecs: dict[tuple[int, int], int] = {}

    def _codec(self, e: int, pad: int) -> int:
        key = (e, pad)
        if key not in self._codecs:
            codec = self.lib.init_rs_char(8, FIELD_POLYNOMIAL, 128 - e, 11, 2 * e, pad)
            if not codec:
                raise ValueError(f"libfec refused E={e} pad={pad}")
            self._codecs[key] = codec
        return self._codecs[key]

    def encode(self, data: bytes, e: int, dual: bool) -> bytes:
        """The 2E check symbols of ``data`` (255 - 2E - fill symbols)."""
        pad = N - 2 * e - len(data)
        parity = ctypes.create_string_buffer(2 * e)
        if e == 16:
            (self.lib.encode_rs_ccsds if dual else self.lib.encode_rs_8)(bytes(data), parity, pad)
            return parity.raw
        if dual:
            data = bytes(data).translate(self.tal1tab)
        self.lib.encode_rs_char(self._codec(e, pad), bytes(data), parity)
        return parity.raw.translate(self.taltab) if dual else parity.raw

    def decode(self, word: bytes, e: int, dual: bool) -> tuple[int, bytes, list[int]]:
        """(libfec's return value, the word after it, the error positions it corrected).

        The value is the number of symbols corrected, or negative when uncorrectable
        (Debian's libfec returns -2 for an error located in the virtual fill).
        """
        pad = N - len(word)
        buffer = ctypes.create_string_buffer(bytes(word), len(word))
        positions = (ctypes.c_int * (2 * e))()
        if e == 16:
            result = (self.lib.decode_rs_ccsds if dual else self.lib.decode_rs_8)(buffer, positions, 0, pad)
            out = buffer.raw
        else:
            if dual:
                buffer = ctypes.create_string_buffer(bytes(word).translate(self.tal1tab), len(word))
            result = self.lib.decode_rs_char(self._codec(e, pad), buffer, positions, 0)
            out = buffer.raw.translate(self.taltab) if dual else buffer.raw
        return result, out, list(positions)[: max(result, 0)]


@lru_cache(maxsize=1)
def _alpha_power_11() -> int:
    # alpha^11 in GF(2^8)/0x187 by shift-and-reduce, independent of our tables.
    x = 1
    for _ in range(11):
        x <<= 1
        if x & 0x100:
            x ^= FIELD_POLYNOMIAL
    return x


@lru_cache(maxsize=2)
def reedsolo_codec(e: int):
    """A reedsolo codec of the CCSDS code with ``e`` (conventional basis)."""
    import reedsolo

    return reedsolo.RSCodec(nsym=2 * e, nsize=N, fcr=128 - e, prim=FIELD_POLYNOMIAL, generator=_alpha_power_11(),
                            c_exp=8)
