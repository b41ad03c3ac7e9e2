"""CCSDS 301.0-B-4 CUC (CCSDS Unsegmented time Code): P-field, T-field, epochs, UTC.

P-field, first octet (MSB first): extension flag 1 | time code ID 3 (001 = CUC with the
CCSDS epoch 1958-01-01 TAI, 010 = CUC with an agency-defined epoch) | coarse octets - 1 (2) |
fine octets (2).  Extension octet (present when the flag is set): extension flag 1 |
additional coarse octets 2 | additional fine octets 3 | reserved 2.  So coarse time has
1..7 octets and fine time 0..10.  Examples: 4+2 CCSDS epoch = 0x1E, 4+3 = 0x1F,
4+0 = 0x1C, agency epoch 4+2 = 0x2E.

T-field: ``coarse`` whole seconds and ``fine`` binary fractions (2^-8 per fine octet)
since the epoch.  With a TAI epoch (the CCSDS one, GPS) the count includes leap
seconds, so UTC = TAI - (TAI-UTC), with TAI-UTC from :data:`LEAP_SECONDS`.  With
a UTC-scale agency epoch the count is "UTC seconds" like POSIX time (no leap seconds).

Leap seconds: the table below is IERS Bulletin C through Bulletin C 70 (no leap second
announced after 2017-01-01).  It must be extended when IERS announces one.  UTC before
1972-01-01 (non-integral TAI-UTC) is not supported.  A TAI instant inside a leap second
(23:59:60) maps to 23:59:59.x of that day, the POSIX convention: datetime cannot hold :60.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import construct as cs
import numpy as np

from protocols.errors import ProtocolError, require

CUC_CCSDS_EPOCH_ID = 0b001
CUC_AGENCY_EPOCH_ID = 0b010

#: (UTC instant from which it applies, TAI-UTC in seconds).  IERS Bulletin C.
LEAP_SECONDS: tuple[tuple[datetime, int], ...] = tuple(
    (datetime(y, m, 1), offset)
    for y, m, offset in (
        (1972, 1, 10), (1972, 7, 11), (1973, 1, 12), (1974, 1, 13), (1975, 1, 14), (1976, 1, 15),
        (1977, 1, 16), (1978, 1, 17), (1979, 1, 18), (1980, 1, 19), (1981, 7, 20), (1982, 7, 21),
        (1983, 7, 22), (1985, 7, 23), (1988, 1, 24), (1990, 1, 25), (1991, 1, 26), (1992, 7, 27),
        (1993, 7, 28), (1994, 7, 29), (1996, 1, 30), (1997, 7, 31), (1999, 1, 32), (2006, 1, 33),
        (2009, 1, 34), (2012, 7, 35), (2015, 7, 36), (2017, 1, 37),
    )
)
_UTC_CHANGES = [utc for utc, _ in LEAP_SECONDS]
# The TAI instant at which each new offset starts to apply, one second early so that
# the leap second itself (23:59:60 UTC) maps onto a repeated 23:59:59 (see module doc).
_TAI_CHANGES = [utc + timedelta(seconds=offset - 1) for utc, offset in LEAP_SECONDS]
_TAI_CHANGES[0] += timedelta(seconds=1)  # 1972-01-01 is a start, not a leap second


def tai_minus_utc(utc: datetime) -> int:
    """TAI-UTC in seconds at a (naive, UTC) instant."""
    i = bisect.bisect_right(_UTC_CHANGES, utc) - 1
    if i < 0:
        raise ValueError(f"{utc.isoformat()} UTC is before 1972-01-01: TAI-UTC was not an integer then")
    return LEAP_SECONDS[i][1]


def utc_to_tai(utc: datetime) -> datetime:
    """Naive UTC -> naive TAI."""
    return utc + timedelta(seconds=tai_minus_utc(utc))


def tai_to_utc(tai: datetime) -> datetime:
    """Naive TAI -> naive UTC (a leap second becomes a repeated 23:59:59)."""
    i = bisect.bisect_right(_TAI_CHANGES, tai) - 1
    if i < 0:
        raise ValueError(f"{tai.isoformat()} TAI is before 1972-01-01 UTC: TAI-UTC was not an integer then")
    return tai - timedelta(seconds=LEAP_SECONDS[i][1])


@dataclass(frozen=True, slots=True)
class Epoch:
    """A time code epoch: ``start`` is a naive datetime in ``scale``.

    scale "TAI": the counter counts SI seconds including leap seconds (CCSDS, GPS).
    scale "UTC": the counter skips leap seconds (POSIX-like mission clocks).
    """

    name: str
    start: datetime
    scale: Literal["TAI", "UTC"] = "TAI"


CCSDS_EPOCH = Epoch("CCSDS", datetime(1958, 1, 1), "TAI")
#: GPS time: 1980-01-06 00:00:00 UTC = 00:00:19 TAI, counts TAI seconds.
GPS_EPOCH = Epoch("GPS", datetime(1980, 1, 6, 0, 0, 19), "TAI")
UNIX_EPOCH = Epoch("Unix", datetime(1970, 1, 1), "UTC")


# --------------------------------------------------------------------------- P-field

@dataclass(frozen=True, slots=True)
class PField:
    """CUC preamble field: time code ID and the T-field's octet counts."""

    coarse_octets: int = 4
    fine_octets: int = 2
    time_code_id: int = CUC_CCSDS_EPOCH_ID

    def __post_init__(self) -> None:
        if not 1 <= self.coarse_octets <= 7:
            raise ProtocolError("CUC P-field", f"coarse time has 1..7 octets, not {self.coarse_octets}",
                                field="coarse_octets")
        if not 0 <= self.fine_octets <= 10:
            raise ProtocolError("CUC P-field", f"fine time has 0..10 octets, not {self.fine_octets}",
                                field="fine_octets")
        if self.time_code_id not in (CUC_CCSDS_EPOCH_ID, CUC_AGENCY_EPOCH_ID):
            raise ProtocolError("CUC P-field", f"time code ID {self.time_code_id:03b} is not CUC (001 or 010)",
                                field="time_code_id")

    @property
    def extended(self) -> bool:
        return self.coarse_octets > 4 or self.fine_octets > 3

    @property
    def length(self) -> int:
        return 2 if self.extended else 1

    @property
    def t_field_length(self) -> int:
        return self.coarse_octets + self.fine_octets

    def encode(self) -> bytes:
        first = (self.time_code_id << 4) | ((min(self.coarse_octets, 4) - 1) << 2) | min(self.fine_octets, 3)
        if not self.extended:
            return bytes([first])
        second = (max(self.coarse_octets - 4, 0) << 5) | (max(self.fine_octets - 3, 0) << 2)
        return bytes([0x80 | first, second])

    @classmethod
    def decode(cls, buffer, offset: int = 0) -> PField:
        require("CUC P-field", len(buffer), offset, 1)
        first = buffer[offset]
        code = (first >> 4) & 0b111
        if code not in (CUC_CCSDS_EPOCH_ID, CUC_AGENCY_EPOCH_ID):
            raise ProtocolError("CUC P-field", f"time code ID {code:03b} is not CUC (001 or 010)",
                                field="time_code_id", offset=offset)
        coarse = ((first >> 2) & 0b11) + 1
        fine = first & 0b11
        if first & 0x80:
            require("CUC P-field", len(buffer), offset, 2, field="extension")
            second = buffer[offset + 1]
            if second & 0x80:
                raise ProtocolError("CUC P-field", "a third P-field octet is not defined by 301.0-B-4",
                                    field="extension.extension_flag", offset=offset + 1)
            coarse += (second >> 5) & 0b11
            fine += (second >> 2) & 0b111
        return cls(coarse, fine, code)


# --------------------------------------------------------------------------- T-field and conversions

def _fine_scale(fine_octets: int) -> int:
    return 1 << (8 * fine_octets)


@dataclass(frozen=True, slots=True)
class CucTime:
    """A CUC time value: ``coarse`` seconds + ``fine`` / 2^(8*fine_octets) since ``epoch``."""

    coarse: int
    fine: int = 0
    coarse_octets: int = 4
    fine_octets: int = 2
    epoch: Epoch = CCSDS_EPOCH

    def __post_init__(self) -> None:
        if not 0 <= self.coarse < (1 << (8 * self.coarse_octets)):
            raise ProtocolError("CUC time", f"coarse {self.coarse} does not fit {self.coarse_octets} octets",
                                field="coarse")
        if not 0 <= self.fine < _fine_scale(self.fine_octets):
            raise ProtocolError("CUC time", f"fine {self.fine} does not fit {self.fine_octets} octets", field="fine")

    @property
    def pfield(self) -> PField:
        code = CUC_CCSDS_EPOCH_ID if self.epoch == CCSDS_EPOCH else CUC_AGENCY_EPOCH_ID
        return PField(self.coarse_octets, self.fine_octets, code)

    @property
    def seconds(self) -> float:
        return self.coarse + self.fine / _fine_scale(self.fine_octets)

    def pack(self, *, with_pfield: bool = True) -> bytes:
        t = self.coarse.to_bytes(self.coarse_octets, "big") + self.fine.to_bytes(self.fine_octets, "big")
        return (self.pfield.encode() + t) if with_pfield else t

    @classmethod
    def unpack(cls, buffer, offset: int = 0, *, pfield: PField | None = None, epoch: Epoch | None = None) -> CucTime:
        """Read a CUC time.  ``pfield=None``: the P-field is in the buffer (explicit);
        otherwise it is implicit and the buffer holds only the T-field.  The epoch is
        CCSDS for time code ID 001, else ``epoch`` (required for agency epochs)."""
        start = offset
        if pfield is None:
            pfield = PField.decode(buffer, offset)
            start += pfield.length
        require("CUC T-field", len(buffer), start, pfield.t_field_length)
        coarse = int.from_bytes(buffer[start:start + pfield.coarse_octets], "big")
        fine_at = start + pfield.coarse_octets
        fine = int.from_bytes(buffer[fine_at:fine_at + pfield.fine_octets], "big")
        if pfield.time_code_id == CUC_CCSDS_EPOCH_ID:
            chosen = CCSDS_EPOCH
        elif epoch is None:
            raise ProtocolError("CUC time", "agency-defined epoch (time code ID 010) needs the mission epoch",
                                field="time_code_id", offset=offset)
        else:
            chosen = epoch
        return cls(coarse, fine, pfield.coarse_octets, pfield.fine_octets, chosen)

    def to_datetime(self) -> datetime:
        """The instant as an aware UTC datetime (rounded to the microsecond)."""
        micro = (self.fine * 1_000_000 + _fine_scale(self.fine_octets) // 2) // _fine_scale(self.fine_octets)
        instant = self.epoch.start + timedelta(seconds=self.coarse, microseconds=micro)
        if self.epoch.scale == "TAI":
            instant = tai_to_utc(instant)
        return instant.replace(tzinfo=UTC)

    @classmethod
    def from_datetime(cls, when: datetime, *, coarse_octets: int = 4, fine_octets: int = 2,
                      epoch: Epoch = CCSDS_EPOCH) -> CucTime:
        """From a UTC datetime (naive = UTC), fine time rounded to the nearest unit."""
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        if epoch.scale == "TAI":
            when = utc_to_tai(when)
        delta = when - epoch.start
        micro = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        if micro < 0:
            raise ProtocolError("CUC time", f"{when.isoformat()} is before the {epoch.name} epoch", field="coarse")
        coarse, rest = divmod(micro, 1_000_000)
        scale = _fine_scale(fine_octets)
        fine = (rest * scale + 500_000) // 1_000_000
        if fine == scale:  # rounding carried into the next second
            coarse, fine = coarse + 1, 0
        return cls(coarse, fine, coarse_octets, fine_octets, epoch)


# --------------------------------------------------------------------------- column (fast path) helpers

def cuc_seconds(coarse, fine, fine_octets: int = 2) -> np.ndarray:
    """float64 seconds since the epoch from ``coarse`` and ``fine`` integer columns."""
    return np.asarray(coarse, dtype=np.float64) + np.asarray(fine, dtype=np.float64) / float(_fine_scale(fine_octets))


_POSIX_ZERO = datetime(1970, 1, 1)
# TAI-as-POSIX instants at which each TAI-UTC value starts to apply (same convention as tai_to_utc).
_TAI_CHANGES_POSIX = np.array([(t - _POSIX_ZERO).total_seconds() for t in _TAI_CHANGES])
_OFFSETS = np.array([offset for _, offset in LEAP_SECONDS], dtype=np.float64)


def epoch_seconds_to_unix(seconds, epoch: Epoch = CCSDS_EPOCH) -> np.ndarray:
    """POSIX UTC timestamps (float64) for seconds since ``epoch`` (vectorised, leap seconds applied).

    Instants before 1972 get NaN (TAI-UTC undefined as an integer then).
    """
    values = np.asarray(seconds, dtype=np.float64) + (epoch.start - _POSIX_ZERO).total_seconds()
    if epoch.scale == "UTC":
        return values
    index = np.searchsorted(_TAI_CHANGES_POSIX, values, side="right") - 1
    out = values - _OFFSETS[np.clip(index, 0, None)]
    return np.where(index >= 0, out, np.nan)


def cuc_to_unix(coarse, fine, fine_octets: int = 2, epoch: Epoch = CCSDS_EPOCH) -> np.ndarray:
    """POSIX UTC timestamps from CUC ``coarse``/``fine`` columns."""
    return epoch_seconds_to_unix(cuc_seconds(coarse, fine, fine_octets), epoch)


# --------------------------------------------------------------------------- construct

class _PFieldAdapter(cs.Construct):
    """The 1- or 2-octet P-field as a :class:`PField`."""

    def _parse(self, stream, context, path):
        first = cs.stream_read(stream, 1, path)
        data = first + (cs.stream_read(stream, 1, path) if first[0] & 0x80 else b"")
        return PField.decode(data)

    def _build(self, obj, stream, context, path):
        cs.stream_write(stream, obj.encode(), obj.length, path)
        return obj


PFieldConstruct = _PFieldAdapter()

#: CUC with explicit P-field: {"pfield": PField, "coarse": int, "fine": int}.
CucWithPField = cs.Struct(
    "pfield" / PFieldConstruct,
    "coarse" / cs.BytesInteger(lambda ctx: ctx.pfield.coarse_octets),
    "fine" / cs.IfThenElse(lambda ctx: ctx.pfield.fine_octets > 0,
                           cs.BytesInteger(lambda ctx: ctx.pfield.fine_octets), cs.Computed(0)),
)
