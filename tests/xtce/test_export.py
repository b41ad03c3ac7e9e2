"""XTCE export: every spacecraft's document validates against the XTCE 1.2 XSD, carries the
mission database's metadata, and space_packet_parser decodes emulator captures with it to our values."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from protocols.missions import builtin_registry
from protocols.parameters import Polynomial
from protocols.xtce import NAMESPACE, parameter_name, to_xtce
from tests.groundstation.test_chain import nominal_values
from tests.xtce.helpers import emulator_packets, flat, schema, spp_definition

REGISTRY = builtin_registry()
SPACECRAFT = [pytest.param(sc, id=sc.name) for sc in REGISTRY]
NS = {"x": NAMESPACE}


@pytest.fixture(scope="module")
def documents() -> dict[str, bytes]:
    return {sc.name: to_xtce(sc) for sc in REGISTRY}


@pytest.mark.parametrize("spacecraft", SPACECRAFT)
def test_document_validates_against_the_xtce_1_2_schema(spacecraft, documents):
    document = documents[spacecraft.name]
    errors = [f"{e.path}: {e.reason}" for e in schema().iter_errors(document.decode())]
    assert errors == []
    root = ET.fromstring(document)
    assert root.tag == f"{{{NAMESPACE}}}SpaceSystem" and root.get("name") == spacecraft.name


def test_a_bad_document_fails_the_schema():
    """The check can fail: an element out of the order the XSD prescribes is caught."""
    bad = to_xtce(REGISTRY.spacecraft("zhurong")).replace(b"<xtce:UnitSet />", b"<xtce:Bogus />", 1)
    assert any("Bogus" in str(e.reason) for e in schema().iter_errors(bad.decode()))


def test_metadata_reaches_the_document(documents):
    """Units, descriptions, calibrators, alarms and enumerations, read back from the XML."""
    zhurong = REGISTRY.spacecraft("zhurong")
    root = ET.fromstring(documents["zhurong"])
    types = {t.get("name"): t for t in root.find("x:TelemetryMetaData/x:ParameterTypeSet", NS)}
    params = {p.get("name"): p for p in root.find("x:TelemetryMetaData/x:ParameterSet", NS)}

    name = parameter_name("power", "hk.battery_voltage")
    prm = zhurong.parameter("battery_voltage")
    battery = types[params[name].get("parameterTypeRef")]
    assert params[name].get("shortDescription") == prm.description
    assert battery.find("x:UnitSet/x:Unit", NS).text == "V"
    encoding = battery.find("x:IntegerDataEncoding", NS)
    assert (encoding.get("sizeInBits"), encoding.get("encoding")) == ("16", "unsigned")
    terms = {int(t.get("exponent")): float(t.get("coefficient"))
             for t in encoding.findall("x:DefaultCalibrator/x:PolynomialCalibrator/x:Term", NS)}
    assert terms == {0: 0.0, 1: 0.002}
    ranges = battery.find("x:DefaultAlarm/x:StaticAlarmRanges", NS)
    warning, critical = ranges.find("x:WarningRange", NS), ranges.find("x:CriticalRange", NS)
    assert (float(warning.get("minInclusive")), float(warning.get("maxInclusive"))) == prm.limits.warning
    assert (float(critical.get("minInclusive")), float(critical.get("maxInclusive"))) == prm.limits.critical

    air = types[params[parameter_name("mcs", "hk.air_temperature")].get("parameterTypeRef")]
    assert isinstance(zhurong.parameter("air_temperature").calibration, Polynomial)
    coefficients = [float(t.get("coefficient")) for t in air.findall(".//x:Term", NS)]
    assert coefficients == list(zhurong.parameter("air_temperature").calibration.coefficients)

    mode = types[params[parameter_name("mobility", "hk.rover_mode")].get("parameterTypeRef")]
    assert mode.tag == f"{{{NAMESPACE}}}EnumeratedParameterType"
    labels = {int(e.get("value")): e.get("label") for e in mode.findall("x:EnumerationList/x:Enumeration", NS)}
    assert labels == zhurong.parameter("rover_mode").calibration.states
    alarms = {a.get("enumerationLabel"): a.get("alarmLevel")
              for a in mode.findall("x:DefaultAlarm/x:EnumerationAlarmList/x:EnumerationAlarm", NS)}
    assert alarms == {"HAZARD_STOP": "warning", "HIBERNATION": "warning", "SAFE": "critical"}

    signed = types[params[parameter_name("mobility", "hk.roll")].get("parameterTypeRef")]
    assert signed.find("x:IntegerDataEncoding", NS).get("encoding") == "twosComplement"


def test_containers_inherit_from_the_space_packet_with_restrictions(documents):
    root = ET.fromstring(documents["zhurong"])
    containers = {c.get("name"): c for c in root.find("x:TelemetryMetaData/x:ContainerSet", NS)}
    assert containers["CCSDSPacket"].get("abstract") == "true"
    power = containers["power"]
    base = power.find("x:BaseContainer", NS)
    assert [(c.get("parameterRef"), c.get("value")) for c in base.iter(f"{{{NAMESPACE}}}Comparison")] == [
        ("tm_apid288_pus3_25__sid", "1")]
    group = containers[base.get("containerRef")]
    assert group.get("abstract") == "true"
    comparisons = [(c.get("parameterRef"), c.get("value")) for c in group.iter(f"{{{NAMESPACE}}}Comparison")]
    assert comparisons == [("ccsds_apid", "288"), ("pus_tm_service", "3"), ("pus_tm_subtype", "25")]
    assert group.find("x:BaseContainer", NS).get("containerRef") == "PUSTelemetryPacket"


def test_commands_have_typed_arguments_ranges_and_fixed_fields(documents):
    root = ET.fromstring(documents["zhurong"])
    drive = REGISTRY.spacecraft("zhurong").command("DRIVE")
    meta = next(m for m in root.iter(f"{{{NAMESPACE}}}MetaCommand") if m.get("name") == "DRIVE")
    assert [a.get("name") for a in meta.findall("x:ArgumentList/x:Argument", NS)] == list(drive.arguments)
    types = {t.get("name"): t for t in root.find("x:CommandMetaData/x:ArgumentTypeSet", NS)}
    distance = types[meta.find("x:ArgumentList/x:Argument", NS).get("argumentTypeRef")]
    valid = distance.find("x:ValidRangeSet/x:ValidRange", NS)
    assert (float(valid.get("minInclusive")), float(valid.get("maxInclusive"))) == drive.arguments["distance"].valid
    fixed = {e.get("name"): e.get("binaryValue") for e in meta.iter(f"{{{NAMESPACE}}}FixedValueEntry")}
    assert int(fixed["ccsds_packet_id"], 16) & 0x7FF == drive.apid
    assert int(fixed["pus_tc_service"], 16) == drive.service and int(fixed["function_id"], 16) == drive.function_id
    assert int(fixed["ccsds_data_length"], 16) == drive.size - 7


def _every_definition_once(spacecraft) -> list[bytes]:
    """One packet of every telemetry definition (events and reports the emulator may not send in two minutes)."""
    request = spacecraft.commands[0].build()
    out = []
    for packet in [*spacecraft.housekeeping, *spacecraft.events, *spacecraft.reports]:
        values = nominal_values(packet)
        if packet.kind != "report":
            out.append(packet.build(values))
        else:  # verification reports carry the telecommand's request ID; the ping reply has none
            report = next(sc for sc in packet.construct.subcons if sc.name == "report").subcon
            has_request = any(sc.name == "request" for sc in report.subcons)
            out.append(packet.build(values, request=request if has_request else None))
    return out


def _compare(spacecraft, definition, packets) -> tuple[set[str], int]:
    seen, compared = set(), 0
    for data in packets:
        ours = REGISTRY.resolve(spacecraft.name, data)
        theirs = definition.parse_bytes(data)
        seen.add(ours.name)
        params = dict(ours.parameters())
        for path, value in flat(ours.parse(data)).items():
            if path.split(".")[0] in ("primary", "secondary", "pec") or path == ours.key_name:
                continue
            got = theirs[parameter_name(ours.name, path)]
            prm = params.get(path)
            if prm is not None and isinstance(prm.calibration, Polynomial):
                assert math.isclose(got, value, rel_tol=1e-12), (ours.name, path)
            else:
                assert got == value, (ours.name, path, value, got)
            compared += 1
        assert theirs["ccsds_apid"] == ours.apid and theirs["pus_tm_service"] == ours.service
    return seen, compared


@pytest.mark.parametrize("spacecraft", SPACECRAFT)
def test_space_packet_parser_decodes_emulator_captures_to_our_values(spacecraft, documents):
    """Every field of every packet the emulator sends in two minutes, and of one packet of every telemetry
    definition: the same value, the same enumeration label.

    Polynomials are compared to 1e-12 relative: space_packet_parser sums c*x**n, we use Horner's rule,
    and the two orders of the same floating-point sums differ in the last bits.
    """
    definition = spp_definition(documents[spacecraft.name])
    seen, compared = _compare(spacecraft, definition, emulator_packets(spacecraft))
    assert len(seen) >= len(spacecraft.housekeeping) and compared > 200
    seen, _ = _compare(spacecraft, definition, _every_definition_once(spacecraft))
    assert seen == {p.name for p in [*spacecraft.housekeeping, *spacecraft.events, *spacecraft.reports]}


def test_cli_writes_one_file_or_one_per_spacecraft(tmp_path, capsys):
    from groundstation.cli import main

    assert main(["mdb", "export", "zhurong", "--format", "xtce", "-o", str(tmp_path / "z.xml")]) == 0
    assert (tmp_path / "z.xml").read_bytes() == to_xtce(REGISTRY.spacecraft("zhurong"))
    assert main(["mdb", "export", "--all", "--format", "xtce", "-o", str(tmp_path / "all")]) == 0
    written = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert written == sorted(f"{sc.name}.xml" for sc in REGISTRY)
    for name in written:
        assert list(schema().iter_errors((tmp_path / "all" / name).read_text())) == []
    assert main(["mdb", "export", "voyager", "--format", "xtce"]) == 2
    assert "no spacecraft 'voyager'" in capsys.readouterr().err


def test_arrays_are_array_parameter_types_and_the_import_names_them():
    """No built-in mission has an array; one made here exports as an ArrayParameterType of the element type
    (valid XTCE, which Yamcs reads) and the import refuses it by name rather than guess a layout."""
    import construct as cs

    from protocols.missions import HousekeepingPacket, Spacecraft
    from protocols.parameters import Limits, Linear, Parameter
    from protocols.xtce import XtceError, from_xtce

    base = REGISTRY.spacecraft("haiyang2d")
    thermistors = HousekeepingPacket("thermistors", apid=base.apids[0].number, sid=99, subsystem="thermal",
                                     period=8.0, description="Four panel thermistors", fields=[
        "panel" / cs.Array(4, Parameter(cs.Int16sb, unit="degC", description="Panel thermistor",
                                        calibration=Linear(0.01), limits=Limits(warning=(-40, 60)))),
    ])
    sc = Spacecraft(name="arraysat", scid=900, description="An array", profile=base.profile, apids=base.apids,
                    housekeeping=(thermistors,), events=(), commands=())
    document = to_xtce(sc)
    assert list(schema().iter_errors(document.decode())) == []
    root = ET.fromstring(document)
    array = next(t for t in root.iter(f"{{{NAMESPACE}}}ArrayParameterType"))
    element = next(t for t in root.iter(f"{{{NAMESPACE}}}FloatParameterType")
                   if t.get("name") == array.get("arrayTypeRef"))
    assert element.find("x:IntegerDataEncoding", NS).get("sizeInBits") == "16"
    assert array.find("x:DimensionList/x:Dimension/x:EndingIndex/x:FixedValue", NS).text == "3"
    with pytest.raises(XtceError, match="thermistors__panel.*ArrayParameterType is not read"):
        from_xtce(document)
