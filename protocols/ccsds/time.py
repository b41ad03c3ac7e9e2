"""CCSDS 301.0-B-4 CUC (unsegmented) time code: the in-packet field.

Inside Queqiao's packets CUC time is implicit (no P-field): ``coarse`` whole
seconds and ``fine`` binary fractions (2^-8 per fine octet) since the mission
epoch, as two plain integer fields so the fast path reads them as columns.
Conversions to and from datetime, P-field handling and leap seconds live in
:mod:`protocols.ccsds.cuc`.
"""
from __future__ import annotations

import construct as cs

_INTS = {1: cs.Int8ub, 2: cs.Int16ub, 3: cs.Int24ub, 4: cs.Int32ub, 5: cs.BytesInteger(5), 6: cs.BytesInteger(6),
         7: cs.BytesInteger(7)}


def cuc_field(coarse_octets: int = 4, fine_octets: int = 2) -> cs.Struct:
    """Implicit-P-field CUC time: ``coarse`` (1-4 octets, up to 7 with extension) and ``fine`` (0-3, up to 10)."""
    if not 1 <= coarse_octets <= 7:
        raise ValueError(f"CUC coarse time has 1..7 octets, not {coarse_octets}")
    if not 0 <= fine_octets <= 10:
        raise ValueError(f"CUC fine time has 0..10 octets, not {fine_octets}")
    fields = [cs.Renamed(_INTS[coarse_octets], newname="coarse")]
    if fine_octets:
        fine = _INTS.get(fine_octets, None) or cs.BytesInteger(fine_octets)
        fields.append(cs.Renamed(fine, newname="fine"))
    return cs.Struct(*fields)
