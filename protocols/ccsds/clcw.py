"""Communications Link Control Word (CLCW), the Type-1 report in the TM/AOS OCF (232.0-B / 232.1-B).

32 bits, MSB first: control word type 1 (=0) | CLCW version 2 (=00) | status field 3 |
COP in effect 2 (01 = COP-1) | VCID 6 | spare 2 | no RF available 1 | no bit lock 1 |
lockout 1 | wait 1 | retransmit 1 | FARM-B counter 2 | spare 1 | report value 8.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import construct as cs

from protocols.errors import ProtocolError, require

CLCW_LENGTH = 4

#: The CLCW as plain integers (construct: parse and build).
ClcwStruct = cs.BitStruct(
    "control_word_type" / cs.Default(cs.BitsInteger(1), 0),
    "clcw_version" / cs.Default(cs.BitsInteger(2), 0),
    "status_field" / cs.Default(cs.BitsInteger(3), 0),
    "cop_in_effect" / cs.Default(cs.BitsInteger(2), 1),
    "vcid" / cs.Default(cs.BitsInteger(6), 0),
    "spare1" / cs.Default(cs.BitsInteger(2), 0),
    "no_rf_available" / cs.Default(cs.BitsInteger(1), 0),
    "no_bit_lock" / cs.Default(cs.BitsInteger(1), 0),
    "lockout" / cs.Default(cs.BitsInteger(1), 0),
    "wait" / cs.Default(cs.BitsInteger(1), 0),
    "retransmit" / cs.Default(cs.BitsInteger(1), 0),
    "farm_b_counter" / cs.Default(cs.BitsInteger(2), 0),
    "spare2" / cs.Default(cs.BitsInteger(1), 0),
    "report_value" / cs.Default(cs.BitsInteger(8), 0),
)

# (name, width) in wire order: one table drives pack and unpack.
_LAYOUT = (
    ("control_word_type", 1), ("clcw_version", 2), ("status_field", 3), ("cop_in_effect", 2), ("vcid", 6),
    ("spare1", 2), ("no_rf_available", 1), ("no_bit_lock", 1), ("lockout", 1), ("wait", 1), ("retransmit", 1),
    ("farm_b_counter", 2), ("spare2", 1), ("report_value", 8),
)


@dataclass(frozen=True, slots=True)
class Clcw:
    """A CLCW.  ``report_value`` is N(R), the next expected frame sequence number."""

    vcid: int = 0
    report_value: int = 0
    lockout: int = 0
    wait: int = 0
    retransmit: int = 0
    farm_b_counter: int = 0
    no_rf_available: int = 0
    no_bit_lock: int = 0
    status_field: int = 0
    cop_in_effect: int = 1
    clcw_version: int = 0
    control_word_type: int = 0
    spare1: int = 0
    spare2: int = 0

    def to_int(self) -> int:
        value = 0
        for name, width in _LAYOUT:
            v = getattr(self, name)
            if not 0 <= v < (1 << width):
                raise ProtocolError("CLCW", f"{v} does not fit {width} bits", field=name)
            value = (value << width) | v
        return value

    def pack(self) -> bytes:
        return self.to_int().to_bytes(CLCW_LENGTH, "big")

    @classmethod
    def from_int(cls, value: int) -> Clcw:
        kwargs = {}
        shift = 32
        for name, width in _LAYOUT:
            shift -= width
            kwargs[name] = (value >> shift) & ((1 << width) - 1)
        return cls(**kwargs)

    @classmethod
    def unpack(cls, buffer, offset: int = 0) -> Clcw:
        require("CLCW", len(buffer), offset, CLCW_LENGTH)
        word = int.from_bytes(buffer[offset:offset + CLCW_LENGTH], "big")
        if word >> 31:
            raise ProtocolError("CLCW", "control word type 1 is not a CLCW (type-2 report)",
                                field="control_word_type", offset=offset)
        return cls.from_int(word)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
