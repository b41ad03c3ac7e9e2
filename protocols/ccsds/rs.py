"""Reed-Solomon coding of TM/AOS frames (CCSDS 131.0-B section 4).

RS(255,223) with E = 16 or RS(255,239) with E = 8 over GF(2^8)/0x187, generator roots
alpha^(11 j) for j = 128-E .. 127+E; interleave depth I in {1, 2, 3, 4, 5, 8}; any frame
length that is a whole number of I symbols, up to I (255 - 2E), by virtual fill (shortened
codewords: the fill is zeros in front of every codeword and is never sent); symbols in the
dual basis (the standard) or the conventional basis (Tianwen-1).

A *codeblock* is what follows the ASM in a CADU: the frame, then I x 2E check symbols,
the I codewords interleaved symbol by symbol (symbol m of the codeblock belongs to
codeword m mod I).  Randomization, when the link uses it, is applied to the whole
codeblock after encoding, so the ground derandomizes before it decodes.

The work is done by the ``rs`` kernel (``cython_ext/_rs.pyx`` or its numpy twin): this
module checks the arguments and shapes the results.  Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np

from cython_ext import rs as _kernel
from protocols.errors import ProtocolError

Basis = Literal["dual", "conventional"]

#: The code lengths the standard allows.
CORRECTABLE: tuple[int, ...] = (8, 16)
INTERLEAVE_DEPTHS: tuple[int, ...] = (1, 2, 3, 4, 5, 8)
BASES: tuple[str, ...] = ("dual", "conventional")
N = 255
_STRUCTURE = "Reed-Solomon code"


class RsStatus(IntEnum):
    """What decoding found in one codeword."""

    CLEAN = _kernel.CLEAN                   # a codeword as received
    CORRECTED = _kernel.CORRECTED           # at most E symbols changed into the one codeword that close
    UNCORRECTABLE = _kernel.UNCORRECTABLE   # no codeword within E symbols: left as received


@dataclass(frozen=True)
class RsDecoded:
    """One codeblock decoded: the frame and, per codeword, status and symbols corrected."""

    frame: bytes
    status: tuple[RsStatus, ...]
    corrected: tuple[int, ...]

    @property
    def uncorrectable(self) -> bool:
        """True when any codeword could not be corrected (the frame must not be trusted)."""
        return RsStatus.UNCORRECTABLE in self.status


@dataclass(frozen=True)
class RsBatch:
    """Many codeblocks decoded.

    ``codeblocks``: (n, codeblock_length) corrected codeblocks (uncorrectable codewords as
    received); ``status``: (n, I) :class:`RsStatus` values (uint8); ``corrected``: (n, I)
    symbols corrected per codeword (int16, 0 unless CORRECTED).
    """

    codeblocks: np.ndarray
    status: np.ndarray
    corrected: np.ndarray
    frame_length: int

    @property
    def frames(self) -> np.ndarray:
        """(n, frame_length) view of the corrected frames."""
        return self.codeblocks[:, : self.frame_length]

    @property
    def uncorrectable(self) -> np.ndarray:
        """(n,) bool: some codeword of the codeblock is uncorrectable."""
        return (self.status == RsStatus.UNCORRECTABLE).any(axis=1)

    @property
    def corrected_symbols(self) -> np.ndarray:
        """(n,) symbols corrected per codeblock."""
        return self.corrected.sum(axis=1, dtype=np.int64)

    def counts(self) -> dict[str, int]:
        """Codewords per result: ``{"clean": ., "corrected": ., "uncorrectable": .}``."""
        found = np.bincount(self.status.reshape(-1), minlength=3)
        return {s.name.lower(): int(found[s]) for s in RsStatus}


@dataclass(frozen=True)
class RsCode:
    """One CCSDS Reed-Solomon code configuration.

    ``e``: symbols each codeword corrects (16 or 8); ``interleave``: depth I;
    ``basis``: "dual" or "conventional"; ``frame_length``: octets of the frame the code
    protects (None: the unshortened I (255 - 2E)).
    """

    e: int = 16
    interleave: int = 1
    basis: Basis = "dual"
    frame_length: int | None = None

    def __post_init__(self) -> None:
        where = _STRUCTURE
        if not isinstance(self.e, int) or self.e not in CORRECTABLE:
            raise ProtocolError(where, f"E={self.e!r} is not one of {CORRECTABLE} (RS(255,223) or RS(255,239))",
                                field="e")
        if not isinstance(self.interleave, int) or self.interleave not in INTERLEAVE_DEPTHS:
            raise ProtocolError(where, f"interleave depth {self.interleave!r} is not one of {INTERLEAVE_DEPTHS}",
                                field="interleave")
        if self.basis not in BASES:
            raise ProtocolError(where, f"basis {self.basis!r} is not one of {BASES}", field="basis")
        if self.frame_length is None:
            object.__setattr__(self, "frame_length", self.interleave * (N - 2 * self.e))
        length = self.frame_length
        if not isinstance(length, int) or isinstance(length, bool):
            raise ProtocolError(where, f"frame length {length!r} is not an integer", field="frame_length")
        most = self.interleave * (N - 2 * self.e)
        if not 0 < length <= most or length % self.interleave:
            raise ProtocolError(where, f"frame length {length} must be a multiple of I={self.interleave} "
                                f"between {self.interleave} and {most}", field="frame_length")

    @classmethod
    def from_spec(cls, spec: str, frame_length: int | None = None) -> RsCode:
        """Parse ``"E/I/basis"`` (e.g. ``"16/1/dual"``, ``"8/4/conventional"``; I and basis optional)."""
        parts = spec.strip().split("/")
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise ProtocolError(_STRUCTURE, f"{spec!r} is not E/I/basis (e.g. 16/1/dual)", field="spec")
        try:
            e = int(parts[0])
            interleave = int(parts[1]) if len(parts) > 1 else 1
        except ValueError:
            raise ProtocolError(_STRUCTURE, f"{spec!r}: E and I are integers", field="spec") from None
        basis = parts[2] if len(parts) > 2 else "dual"
        return cls(e, interleave, basis, frame_length)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ sizes

    @property
    def k(self) -> int:
        """Information symbols of the unshortened codeword (223 or 239)."""
        return N - 2 * self.e

    @property
    def check_length(self) -> int:
        """Check symbols of the codeblock: 2E I."""
        return 2 * self.e * self.interleave

    @property
    def fill(self) -> int:
        """Virtual fill per codeword (symbols not sent)."""
        assert self.frame_length is not None
        return self.k - self.frame_length // self.interleave

    @property
    def codeblock_length(self) -> int:
        """Octets on the wire after the ASM: frame + check symbols."""
        assert self.frame_length is not None
        return self.frame_length + self.check_length

    @property
    def dual(self) -> bool:
        return self.basis == "dual"

    def __str__(self) -> str:
        return f"RS({N - self.fill},{self.k - self.fill}) E={self.e} I={self.interleave} {self.basis} basis"

    # ------------------------------------------------------------------ one codeblock

    def encode(self, frame) -> bytes:
        """The codeblock of one frame (frame followed by its check symbols)."""
        assert self.frame_length is not None
        return self.encode_many(self._one(frame, self.frame_length, "frame"))[0].tobytes()

    def decode(self, codeblock) -> RsDecoded:
        """Check and correct one codeblock."""
        batch = self.decode_many(self._one(codeblock, self.codeblock_length, "codeblock"))
        return RsDecoded(batch.frames[0].tobytes(), tuple(RsStatus(int(s)) for s in batch.status[0]),
                         tuple(int(c) for c in batch.corrected[0]))

    # ------------------------------------------------------------------ batches

    def encode_many(self, frames) -> np.ndarray:
        """(n, frame_length) frames (or bytes of whole frames) -> (n, codeblock_length) codeblocks."""
        assert self.frame_length is not None
        rows = self._rows(frames, self.frame_length, "frames")
        return _kernel.rs_encode_many(rows, self.e, self.interleave, self.dual)

    def decode_many(self, codeblocks) -> RsBatch:
        """(n, codeblock_length) codeblocks (or bytes of whole codeblocks) checked and corrected."""
        assert self.frame_length is not None
        rows = self._rows(codeblocks, self.codeblock_length, "codeblocks")
        blocks, status, corrected = _kernel.rs_decode_many(rows, self.e, self.interleave, self.dual)
        return RsBatch(blocks, status, corrected, self.frame_length)

    def _one(self, data, width: int, what: str) -> np.ndarray:
        raw = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8) if not isinstance(data, np.ndarray) else data
        if raw.ndim != 1 or raw.size != width:
            raise ProtocolError(f"{self} {what}", f"{raw.size} octets, expected {width}", offset=min(raw.size, width))
        return self._rows(raw, width, what)

    def _rows(self, data, width: int, what: str) -> np.ndarray:
        """``data`` as a C-contiguous (n, width) uint8 array, or a ProtocolError naming the length."""
        where = f"{self} {what}"
        if isinstance(data, np.ndarray):
            if data.dtype != np.uint8:
                raise ProtocolError(where, f"dtype {data.dtype} is not uint8")
            if data.ndim == 1 and data.size % width == 0:
                data = data.reshape(-1, width)
            if data.ndim != 2 or data.shape[1] != width:
                raise ProtocolError(where, f"shape {data.shape} is not (n, {width})")
            return np.ascontiguousarray(data)
        raw = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
        if raw.size % width:
            raise ProtocolError(where, f"{raw.size} octets are not a whole number of {width}-octet {what}",
                                offset=raw.size - raw.size % width)
        return raw.reshape(-1, width)
