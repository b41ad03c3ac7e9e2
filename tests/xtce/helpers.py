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


# --------------------------------------------------------------------------- a variable-size document

#: Two variable-size packets as an instrument team would write them in XTCE (the shapes of IDEX and
#: of a counted burst): APID 0x56C carries a waveform binary sized by the packet length to the end;
#: APID 0x56D a block of NSAMP 16-bit samples (a binary sized by NSAMP) with a checkword after it.
WAVEFORM_APID, BURST_APID = 0x56C, 0x56D
_HEADER = [("VERSION", 3), ("TYPE", 1), ("SEC_HDR_FLG", 1), ("PKT_APID", 11), ("SEQ_FLGS", 2),
           ("SRC_SEQ_CTR", 14), ("PKT_LEN", 16)]
_WAVEFORM = [("SHCOARSE", 32), ("TRIGGER", 8), ("EVENT", 16)]
_BURST = [("NSAMP", 16), ("GAIN", 8)]


def variable_document() -> bytes:
    """XTCE 1.2 of the two shapes, with units, a calibrator and an alarm on the fixed fields."""
    def uint(name: str, bits: int, extra: str = "", unit: str = "") -> str:
        units = f"<xtce:UnitSet><xtce:Unit>{unit}</xtce:Unit></xtce:UnitSet>" if unit else "<xtce:UnitSet/>"
        return (f'<xtce:IntegerParameterType name="{name}_t" signed="false">{units}'
                f'<xtce:IntegerDataEncoding sizeInBits="{bits}" encoding="unsigned">{extra}'
                '</xtce:IntegerDataEncoding></xtce:IntegerParameterType>')

    def binary(name: str, ref: str, slope: int, intercept: int) -> str:
        return (f'<xtce:BinaryParameterType name="{name}_t"><xtce:UnitSet/><xtce:BinaryDataEncoding><xtce:SizeInBits>'
                f'<xtce:DynamicValue><xtce:ParameterInstanceRef parameterRef="{ref}" useCalibratedValue="false"/>'
                f'<xtce:LinearAdjustment slope="{slope}" intercept="{intercept}"/></xtce:DynamicValue>'
                '</xtce:SizeInBits></xtce:BinaryDataEncoding></xtce:BinaryParameterType>')

    gain = ('<xtce:DefaultCalibrator><xtce:PolynomialCalibrator><xtce:Term coefficient="0.5" exponent="0"/>'
            '<xtce:Term coefficient="0.25" exponent="1"/></xtce:PolynomialCalibrator></xtce:DefaultCalibrator>')
    fixed_waveform = sum(b for _, b in _HEADER + _WAVEFORM)
    types = "".join(uint(n, b) for n, b in _HEADER + _WAVEFORM[:2])
    types += uint("EVENT", 16, unit="count").replace("</xtce:IntegerParameterType>", "") + (
        '<xtce:DefaultAlarm><xtce:StaticAlarmRanges><xtce:WarningRange minInclusive="0" maxInclusive="60000"/>'
        '</xtce:StaticAlarmRanges></xtce:DefaultAlarm></xtce:IntegerParameterType>')
    types += uint("NSAMP", 16) + uint("GAIN", 8, gain, unit="dB") + uint("CHECKWORD", 16)
    types += binary("WAVEFORM", "PKT_LEN", 8, 56 - fixed_waveform) + binary("SAMPLES", "NSAMP", 16, 0)
    names = [n for n, _ in _HEADER + _WAVEFORM + _BURST] + ["CHECKWORD", "WAVEFORM", "SAMPLES"]
    params = "".join(f'<xtce:Parameter name="{n}" parameterTypeRef="{n}_t"><xtce:LongDescription>{n.lower()}'
                     '</xtce:LongDescription></xtce:Parameter>' for n in names)

    def entries(fields: list[str]) -> str:
        return "".join(f'<xtce:ParameterRefEntry parameterRef="{n}"/>' for n in fields)

    def concrete(name: str, apid: int, fields: list[str]) -> str:
        return (f'<xtce:SequenceContainer name="{name}"><xtce:EntryList>{entries(fields)}</xtce:EntryList>'
                '<xtce:BaseContainer containerRef="CCSDSPacket"><xtce:RestrictionCriteria>'
                f'<xtce:Comparison parameterRef="PKT_APID" value="{apid}" useCalibratedValue="false"/>'
                '</xtce:RestrictionCriteria></xtce:BaseContainer></xtce:SequenceContainer>')

    containers = (f'<xtce:SequenceContainer name="CCSDSPacket" abstract="true"><xtce:EntryList>'
                  f'{entries([n for n, _ in _HEADER])}</xtce:EntryList></xtce:SequenceContainer>'
                  + concrete("WaveformPacket", WAVEFORM_APID, [n for n, _ in _WAVEFORM] + ["WAVEFORM"])
                  + concrete("BurstPacket", BURST_APID, [n for n, _ in _BURST] + ["SAMPLES", "CHECKWORD"]))
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<xtce:SpaceSystem xmlns:xtce="http://www.omg.org/spec/XTCE/20180204" name="VARIABLE_INSTRUMENT">'
            f'<xtce:TelemetryMetaData><xtce:ParameterTypeSet>{types}</xtce:ParameterTypeSet>'
            f'<xtce:ParameterSet>{params}</xtce:ParameterSet><xtce:ContainerSet>{containers}'
            '</xtce:ContainerSet></xtce:TelemetryMetaData></xtce:SpaceSystem>').encode()


def _packet(apid: int, count: int, data: bytes) -> bytes:
    header = ((apid | 0x0800) << 32 | (0xC000 | count % 0x4000) << 16 | (len(data) - 1)).to_bytes(6, "big")
    return header + data


def variable_packets(count: int, seed: int = 3) -> list[bytes]:
    """``count`` packets of the two shapes, alternating, with random values and sizes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        if i % 2 == 0:
            waveform = rng.integers(0, 256, 2 * int(rng.choice([24, 40, 64, 96])), dtype=np.uint8).tobytes()
            data = (int(rng.integers(0, 2**32)).to_bytes(4, "big") + bytes([int(rng.integers(0, 256))])
                    + int(rng.integers(0, 2**16)).to_bytes(2, "big") + waveform)
            out.append(_packet(WAVEFORM_APID, i, data))
        else:
            nsamp = int(rng.choice([0, 3, 17]))
            data = (nsamp.to_bytes(2, "big") + bytes([int(rng.integers(0, 256))])
                    + rng.integers(0, 256, 2 * nsamp, dtype=np.uint8).tobytes() + b"\xbe\xef")
            out.append(_packet(BURST_APID, i, data))
    return out
