"""What the XTCE tests share: emulator captures of a spacecraft and flat views of decoded packets."""
from __future__ import annotations

import functools
import io
from datetime import UTC, datetime
from typing import Any

import xmlschema

from flightsw.runtime.core import FlightSoftware, RuntimeConfig
from protocols.ccsds.vcmux import FrameDemux
from protocols.missions import Spacecraft
from protocols.xtce import SCHEMA

START = datetime(2021, 6, 1, 4, 0, tzinfo=UTC)


@functools.lru_cache(maxsize=1)
def schema() -> xmlschema.XMLSchema:
    """The shipped XTCE 1.2 XSD (its xml: namespace import comes from xmlschema's own copy: no network)."""
    return xmlschema.XMLSchema(str(SCHEMA))


def emulator_packets(spacecraft: Spacecraft, seconds: float = 120.0) -> list[bytes]:
    """The space packets the flight-software emulator downlinks in ``seconds`` (virtual clock)."""
    runtime = FlightSoftware(spacecraft, RuntimeConfig(virtual=True, start=START))
    frames = runtime.advance_to(seconds)
    result = FrameDemux(spacecraft.profile.frame).feed(frames)
    assert not [a for a in result.anomalies if a.kind != "frame_gap"]
    return [p.data for p in result.packets]


def flat(container: Any, prefix: str = "") -> dict[str, Any]:
    """A parsed construct container as {dotted path: value}, construct's own keys left out."""
    out: dict[str, Any] = {}
    for key, value in container.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def spp_definition(document: bytes):
    from space_packet_parser.xtce.definitions import XtcePacketDefinition

    return XtcePacketDefinition.from_xtce(io.BytesIO(document))
