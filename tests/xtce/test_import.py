"""XTCE import: foreign definitions (JPSS-1, CTIM from space_packet_parser) decode through the fast path to
space_packet_parser's values, and every built-in spacecraft survives export-then-import unchanged."""
from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

from protocols.codec import PacketCodec
from protocols.codec.stream import split_packets
from protocols.codec.table import Unsupported, derive
from protocols.missions import builtin_registry, load_registry
from protocols.xtce import XtceError, from_xtce, to_xtce
from protocols.xtce.reader import DEFAULT_PROFILE, TelemetryPacket
from tests.xtce.helpers import emulator_packets, flat, spp_definition

DATA = Path(__file__).parents[1] / "data" / "space_packet_parser"
JPSS_XML, JPSS_PACKETS = DATA / "jpss1_geolocation_xtce_v1.xml", DATA / "J01_G011_LZ_2021-04-09T00-00-00Z_V01.DAT1"
CTIM_XML, CTIM_PACKETS = DATA / "ctim_xtce_v1.xml.gz", DATA / "ccsds_2021_155_14_39_51.gz"
REGISTRY = builtin_registry()


def _read(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _decode_like_space_packet_parser(document: bytes, packets: bytes, root: str | None):
    """(values compared, packets not decoded because of their size) over every packet of the file."""
    spacecraft = from_xtce(document, origin="test", scid=100)
    reference = spp_definition(document)
    stream = np.frombuffer(packets, np.uint8)
    split = split_packets(stream)
    apids = ((stream[split.offsets] & 7).astype(np.int64) << 8) | stream[split.offsets + 1]
    compared, skipped = 0, {}
    for definition in spacecraft.housekeeping:
        assert isinstance(definition, TelemetryPacket)
        mine = apids == definition.apid
        fits = mine & (split.lengths == definition.size)
        if (mine & ~fits).any():
            skipped[definition.apid] = sorted(set(split.lengths[mine & ~fits].tolist()))
        if not fits.any():
            continue
        codec = PacketCodec(definition.construct, name=definition.name)
        assert codec.fallback is None  # the compiled/numpy table, not construct
        columns = codec.decode_many(stream, offsets=split.offsets[fits])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # space_packet_parser warns where a definition stops short of a packet
            theirs = [reference.parse_bytes(packets[o:o + definition.size], root_container_name=root)
                      for o in split.offsets[fits].tolist()]
        for path, name in definition.xtce_names.items():
            assert columns[path].tolist() == [t[name] for t in theirs], (definition.name, path)
            compared += len(theirs)
    return spacecraft, compared, skipped


def test_jpss1_decodes_to_space_packet_parsers_values():
    spacecraft, compared, skipped = _decode_like_space_packet_parser(_read(JPSS_XML), _read(JPSS_PACKETS), None)
    assert skipped == {} and compared == 7200 * 20
    packet = spacecraft.housekeeping[0]
    assert (packet.name, packet.apid, packet.size) == ("jpss_att_ephem", 11, 71)
    params = dict(packet.parameters())
    assert params["data.adgpsposx"].unit == "m"
    assert params["data.adgpsposx"].description == "Ephemeris Position (ECEF) X"
    assert params["data.adgpsposx"].domain.is_float
    assert params["data.usec"].description == "Secondary Header Fine Time (microsecond)"
    assert spacecraft.profile == DEFAULT_PROFILE and spacecraft.scid == 100


def test_ctim_decodes_to_space_packet_parsers_values():
    """Every packet whose size is its definition's; the others need the variable-size codec (issue 16, item 3):
    APID 1's definition stops at 781 bits (113 octets) of a 114-octet packet, APID 20 comes in two sizes."""
    spacecraft, compared, skipped = _decode_like_space_packet_parser(_read(CTIM_XML), _read(CTIM_PACKETS),
                                                                     "CCSDSTelemetryPacket")
    assert len(spacecraft.housekeeping) == 38
    assert skipped == {1: [114], 20: [46]}
    assert compared > 1_000_000


@pytest.mark.parametrize("spacecraft", [pytest.param(sc, id=sc.name) for sc in REGISTRY])
def test_export_then_import_gives_the_same_definitions(spacecraft):
    back = from_xtce(to_xtce(spacecraft), origin=f"{spacecraft.name}.xml")
    assert (back.name, back.scid, back.description) == (spacecraft.name, spacecraft.scid, spacecraft.description)
    assert back.profile == spacecraft.profile and back.apids == spacecraft.apids
    assert back.instruments == spacecraft.instruments

    def signature(p):
        try:
            leaves = [(f.parts, f.kind, f.width, f.signed, f.little, f.positions, f.dims,
                       f.fill and f.fill[0] == "const" and f.fill[1]) for f in derive(p.construct).leaves]
        except Unsupported:  # commands: their Arguments check ranges, which the table leaves to construct
            leaves = None
        params = [(path, q.unit, q.description, q.calibration.describe(), q.limits and q.limits.describe(),
                   getattr(q, "valid", None)) for path, q in p.parameters()]
        return (p.name, p.kind, p.packet_type, p.apid, p.service, p.subtype, p.key, p.size, p.subsystem,
                p.description, getattr(p, "period", None), getattr(p, "severity", None), leaves, params)

    assert [signature(p) for p in back.packets] == [signature(p) for p in spacecraft.packets]
    assert len(back.commands) == len(spacecraft.commands) and len(back.packets) == len(spacecraft.packets)

    # The same decoded values, field for field, on what the emulator sends.
    for data in emulator_packets(spacecraft, 60.0):
        ours = REGISTRY.resolve(spacecraft.name, data)
        assert flat(back.packet(ours.name).parse(data)) == flat(ours.parse(data))
    # And the same telecommand bytes.
    cmd = spacecraft.command("SET_FAULT")
    assert back.command("SET_FAULT").build(slot=3, state="ACTIVE") == cmd.build(slot=3, state="ACTIVE")


def test_an_xml_file_on_the_mission_path_is_a_spacecraft(tmp_path):
    """QUEQIAO_MISSION_PATH entries ending in .xml are XTCE files (here an export renamed and renumbered)."""
    document = to_xtce(REGISTRY.spacecraft("haiyang2d")).replace(b'name="haiyang2d"', b'name="haiyang2e"', 1)
    document = document.replace(b'"scid": 466', b'"scid": 467', 1)
    (tmp_path / "h2e.xml").write_bytes(document)
    reg = load_registry(entry_points=False, mission_path=str(tmp_path / "h2e.xml"))
    sc = reg.spacecraft("haiyang2e")
    assert sc.scid == 467 and sc.origin.endswith("h2e.xml")
    assert reg.spacecraft(467) is sc and len(sc.housekeeping) == len(REGISTRY.spacecraft("haiyang2d").housekeeping)


def test_a_foreign_packet_resolves_by_apid():
    reg = load_registry(builtins=False, entry_points=False, mission_path="")
    reg.register(from_xtce(_read(JPSS_XML), origin="jpss", name="jpss1", scid=159))
    packet = _read(JPSS_PACKETS)[:71]
    assert reg.resolve("jpss1", packet).name == "jpss_att_ephem"


@pytest.mark.parametrize("document, message", [
    (b"<SpaceSystem", "not well-formed XML"),
    (b"<Foo xmlns='http://www.omg.org/spec/XTCE/20180204'/>", "not an XTCE SpaceSystem"),
    (JPSS_XML.read_bytes(), "names no SCID"),
    (JPSS_XML.read_bytes().replace(b'parameterTypeRef="ADGPSVEL_Type"', b'parameterTypeRef="NoSuch"', 1),
     "has type 'NoSuch', which is not defined"),
    (JPSS_XML.read_bytes().replace(b'<xtce:Comparison parameterRef="PKT_APID" value="11"',
                                   b'<xtce:Comparison parameterRef="ADAESCID" value="11"'),
     "is not restricted to one APID"),
    (JPSS_XML.read_bytes().replace(b'encoding="IEEE754"', b'encoding="MILSTD_1750A"', 1), "MILSTD_1750A"),
])
def test_bad_documents_are_refused_with_the_element_named(document, message):
    with pytest.raises(XtceError, match=message):
        from_xtce(document, origin="bad.xml", scid=None if message == "names no SCID" else 5)


def test_alarms_and_calibrations_of_a_foreign_document_become_limits():
    doc = _read(JPSS_XML).replace(
        b'<xtce:IntegerDataEncoding sizeInBits="8" encoding="unsigned"/>\n            </xtce:IntegerParameterType>\n'
        b'            <xtce:IntegerParameterType name="ADAETDAY_Type"',
        b'<xtce:IntegerDataEncoding sizeInBits="8" encoding="unsigned"><xtce:DefaultCalibrator>'
        b'<xtce:PolynomialCalibrator><xtce:Term coefficient="-1.5" exponent="0"/>'
        b'<xtce:Term coefficient="0.5" exponent="1"/></xtce:PolynomialCalibrator></xtce:DefaultCalibrator>'
        b'</xtce:IntegerDataEncoding><xtce:DefaultAlarm><xtce:StaticAlarmRanges>'
        b'<xtce:WarningRange minInclusive="0" maxInclusive="100"/><xtce:CriticalRange maxInclusive="120"/>'
        b'</xtce:StaticAlarmRanges></xtce:DefaultAlarm>\n            </xtce:IntegerParameterType>\n'
        b'            <xtce:IntegerParameterType name="ADAETDAY_Type"', 1)
    prm = dict(from_xtce(doc, scid=1).housekeeping[0].parameters())["data.adaescid"]
    assert prm.calibration.describe() == "linear: -1.5 + 0.5 * raw"
    assert (prm.limits.warning, prm.limits.critical) == ((0.0, 100.0), (None, 120.0))
    assert prm.classify(110) == 1 and prm.classify(121) == 2 and prm.classify(50) == 0


def test_the_import_feeds_space_packet_parser_the_same_bytes():
    """Sanity of the oracle itself: space_packet_parser reads the JPSS file as 7,200 APID 11 packets."""
    from space_packet_parser import generators

    reference = spp_definition(_read(JPSS_XML))
    packets = list(generators.ccsds_generator(io.BytesIO(_read(JPSS_PACKETS))))
    assert len(packets) == 7200 and all(reference.parse_bytes(p)["PKT_APID"] == 11 for p in packets[:10])


def test_an_imported_spacecraft_has_docs_and_a_health_dashboard():
    """What is generated from the mission database follows: docs table and Grafana panels per parameter."""
    from groundstation.dashboards import health, render
    from protocols.missions import Registry
    from protocols.missions.docs import render_spacecraft

    sc = from_xtce(_read(CTIM_XML), origin="ctim", name="ctim", scid=7)
    reg = Registry([sc])
    text = "\n".join(render_spacecraft(sc))
    assert "`data.sw_major_version`" in text and "apid_1_packet" in text
    names = {info.name for info in reg.parameters("ctim")}
    assert "sw_tec_slew_rate" in names  # a field inside a run of bit fields keeps its own name (the metric label)
    dashboard = render(health(reg, sc))
    assert 'parameter=\\"sw_tec_slew_rate\\"' in dashboard or 'parameter="sw_tec_slew_rate"' in dashboard
