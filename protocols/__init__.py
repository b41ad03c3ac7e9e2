"""Queqiao's wire format: the single source of truth shared by flightsw and groundstation.

Pure: nothing in this package does I/O or logging.

- ``protocols.ccsds``      CCSDS/ECSS structures (space packet, PUS-C, CUC, TM/TC frames, ...)
- ``protocols.parameters`` calibrated, limit-checked parameter fields for mission packets
- ``protocols.missions``   one module per spacecraft, and the registry that finds them
- ``protocols.codec``      the fast path derived from the construct definitions
"""
from protocols.errors import ProtocolError

__all__ = ["ProtocolError"]
