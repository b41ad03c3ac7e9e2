"""Variable-size packets from an XTCE document through the daemon's chain: the import reads binaries
sized by the packet length and by a count field, the chain decodes them in batches
(VariablePacketCodec), every value and waveform equals space_packet_parser's, and a packet whose
own fields contradict its length is rejected alone, counted, while its neighbours decode."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from groundstation.chain import ChainEvents, FrameChain
from groundstation.metrics import Metrics
from protocols.ccsds.vcmux import FrameMux
from protocols.codec import Ragged
from protocols.missions import load_registry
from protocols.xtce import XtceError, from_xtce
from protocols.xtce.reader import DEFAULT_PROFILE, TelemetryPacket
from tests.xtce.helpers import BURST_APID, WAVEFORM_APID, spp_definition, variable_document, variable_packets

pytestmark = pytest.mark.protocols  # both kernel modes

SCID = 77


def _apid(packet: bytes) -> int:
    return int.from_bytes(packet[:2], "big") & 0x7FF


def _spacecraft():
    spacecraft = from_xtce(variable_document(), name="instrument", scid=SCID)
    reg = load_registry(builtins=False, entry_points=False, mission_path="")
    reg.register(spacecraft)
    return reg, {d.apid: d for d in spacecraft.housekeeping}


def _run(packets: list[bytes]):
    reg, definitions = _spacecraft()
    samples: dict[str, list[dict]] = {}
    events = ChainEvents(on_samples=lambda sc, definition, raw, onboard, ground: samples.setdefault(
        definition.name, []).append(dict(raw)))
    metrics = Metrics()
    chain = FrameChain(reg, metrics, events=events)
    mux = FrameMux(DEFAULT_PROFILE.frame, SCID)
    mux.push_many(DEFAULT_PROFILE.realtime_vc, packets)
    chain.process("test", mux.frames(), receipt=1000.0)
    return definitions, samples, metrics


def _theirs(packets: list[bytes]) -> list[dict]:
    reference = spp_definition(variable_document())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [dict(reference.parse_bytes(p)) for p in packets]


def _column(batches: list[dict], path: str) -> list:
    out: list = []
    for raw in batches:
        column = raw[path]
        out += [column[i].astype(np.uint8).tobytes() for i in range(len(column))] if isinstance(column, Ragged) \
            else column.tolist()
    return out


def test_the_import_reads_sizes_from_the_length_and_from_a_count():
    _, definitions = _spacecraft()
    waveform, burst = definitions[WAVEFORM_APID], definitions[BURST_APID]
    assert isinstance(waveform, TelemetryPacket) and isinstance(burst, TelemetryPacket)
    assert waveform.variable_paths == ("data.waveform",) and burst.variable_paths == ("data.samples",)
    # The fewest octets: header and the fixed fields (a trailing field after the count-sized block too).
    assert (waveform.size, burst.size) == (6 + 4 + 1 + 2, 6 + 2 + 1 + 2)
    # The binaries are data, not parameters: the fixed fields are what is exported.
    assert set(waveform.xtce_names.values()) == {"SHCOARSE", "TRIGGER", "EVENT"}
    assert set(burst.xtce_names.values()) == {"NSAMP", "GAIN", "CHECKWORD"}
    packet = variable_packets(2)[1]
    assert burst.parse(packet).data.samples == packet[9:-2]


def test_variable_packets_decode_in_the_chain_to_space_packet_parsers_values():
    packets = variable_packets(400)
    definitions, samples, metrics = _run(packets)
    theirs = _theirs(packets)
    for apid, definition in definitions.items():
        mine = [t for p, t in zip(packets, theirs, strict=True) if _apid(p) == apid]
        batches = samples[definition.name]
        for path, name in definition.xtce_names.items():
            parameter = dict(definition.parameters())[path]
            raw = _column(batches, path)
            assert [parameter.calibration.to_eng(r) for r in raw] == [t[name] for t in mine], path
            # The latest value of each parameter is in the metric store, calibrated.
            labels = ("instrument", definition.subsystem, path.rsplit(".", 1)[-1], parameter.unit)
            assert metrics.get("queqiao_parameter_value", labels) == pytest.approx(float(mine[-1][name]))
        binary = {WAVEFORM_APID: ("data.waveform", "WAVEFORM"), BURST_APID: ("data.samples", "SAMPLES")}[apid]
        assert _column(batches, binary[0]) == [t[binary[1]] for t in mine]
        assert metrics.get("queqiao_packets_total", ("instrument", str(apid))) == len(mine)
    assert not metrics.series("queqiao_packets_rejected_total")


def test_a_packet_whose_count_contradicts_its_length_is_rejected_alone():
    packets = variable_packets(60)
    bad_count = bytearray(packets[11])  # a burst packet: NSAMP says one more sample than the packet holds
    assert _apid(bytes(bad_count)) == BURST_APID
    bad_count[6:8] = (int.from_bytes(bad_count[6:8], "big") + 1).to_bytes(2, "big")
    packets[11] = bytes(bad_count)
    short = packets[20][:6] + packets[20][6:10]  # a waveform packet shorter than its fixed fields
    packets[20] = short[:4] + (len(short) - 7).to_bytes(2, "big") + short[6:]
    definitions, samples, metrics = _run(packets)
    rejected = metrics.series("queqiao_packets_rejected_total")
    assert rejected == {("instrument", "length"): 2}
    good = [p for i, p in enumerate(packets) if i not in (11, 20)]
    theirs = _theirs(good)
    for apid, definition in definitions.items():
        mine = [t for p, t in zip(good, theirs, strict=True) if _apid(p) == apid]
        assert _column(samples[definition.name], "primary.sequence_count") == [t["SRC_SEQ_CTR"] for t in mine]


@pytest.mark.parametrize("old, new, message", [
    (b'parameterRef="NSAMP" useCalibratedValue="false"/><xtce:LinearAdjustment slope="16"',
     b'parameterRef="NSAMP" useCalibratedValue="false"/><xtce:LinearAdjustment slope="12"',
     "not a whole number of octets"),
    (b'parameterRef="NSAMP" useCalibratedValue="false"/>', b'parameterRef="CHECKWORD" useCalibratedValue="false"/>',
     "which is not the primary header or a whole-octet integer field before it"),
    (b'parameterRef="NSAMP" useCalibratedValue="false"/>', b'parameterRef="GAIN"/>',
     "calibrated value of 'GAIN'"),
    (b'<xtce:DynamicValue><xtce:ParameterInstanceRef parameterRef="NSAMP" useCalibratedValue="false"/>',
     b'<xtce:DynamicValue>', "without a ParameterInstanceRef"),
])
def test_sizes_the_import_cannot_read_are_refused_naming_the_field(old, new, message):
    document = variable_document()
    assert old in document
    with pytest.raises(XtceError, match=message):
        from_xtce(document.replace(old, new, 1), name="instrument", scid=SCID)


def test_a_variable_size_spacecraft_has_docs_a_dashboard_and_inspect_names_its_packets():
    from groundstation.dashboards import health, render
    from protocols.missions.docs import render_spacecraft

    reg, definitions = _spacecraft()
    sc = reg.spacecraft("instrument")
    text = "\n".join(render_spacecraft(sc))
    assert "at least 13 octets" in text and "`data.waveform`" in text and "`data.gain`" in text
    dashboard = render(health(reg, sc))
    # The fixed fields have panels; a waveform has no one value to plot.
    assert 'parameter=\\"checkword\\"' in dashboard and 'parameter=\\"waveform\\"' not in dashboard
    for packet in variable_packets(6):
        definition = reg.resolve("instrument", packet)
        assert definition is definitions[_apid(packet)]
        assert definition.parse(packet).primary.data_length == len(packet) - 7
