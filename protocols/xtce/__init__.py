"""XTCE 1.2 (OMG XML Telemetric and Command Exchange, CCSDS 660.0): the mission database both ways.

    from protocols.xtce import to_xtce, from_xtce
    text = to_xtce(registry().spacecraft("zhurong"))       # bytes: an XTCE 1.2 document
    spacecraft = from_xtce(text, origin="zhurong.xml")      # a Spacecraft, built at run time

Pure conversion: bytes or str in, bytes or a :class:`~protocols.missions.Spacecraft` out; no
file or network access (the CLI in :mod:`groundstation.mdb` and the registry read the files).
The shipped XSD (:data:`SCHEMA`) validates what :func:`to_xtce` writes; docs/XTCE.md tells what
each part of a Queqiao definition becomes and what the import accepts.
"""
from __future__ import annotations

from pathlib import Path

from protocols.xtce.names import NAMESPACE, parameter_name
from protocols.xtce.reader import XtceError, from_xtce
from protocols.xtce.writer import to_xtce

#: The OMG XTCE 1.2 schema (SpaceSystem.xsd), shipped for offline validation (see schema/SOURCE.md).
SCHEMA = Path(__file__).with_name("schema") / "SpaceSystem.xsd"

__all__ = ["NAMESPACE", "SCHEMA", "XtceError", "from_xtce", "parameter_name", "to_xtce"]
