"""Done-when of the XTCE import: a JPSS-1 XTCE file from space_packet_parser is a working spacecraft in
`groundstation run`: its packets, in TM frames of a CADU capture read by a file link, show up in /metrics
with the values space_packet_parser decodes from the same packets."""
from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from protocols.ccsds.sync import build_cadus
from protocols.ccsds.vcmux import FrameMux
from protocols.codec.stream import split_packets
from protocols.xtce import from_xtce
from protocols.xtce.reader import DEFAULT_PROFILE
from tests.deploy.deploy_helpers import REPO, groundstation_process
from tests.realcomponents.components import free_port, wait_until
from tests.xtce.helpers import spp_definition

DATA = REPO / "tests" / "data" / "space_packet_parser"
JPSS_XML = DATA / "jpss1_geolocation_xtce_v1.xml"
JPSS_PACKETS = DATA / "J01_G011_LZ_2021-04-09T00-00-00Z_V01.DAT1"
#: NOAA-20's CCSDS spacecraft ID; the XTCE file itself names none.
SCID = 159
COUNT = 600


def _metrics(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _capture_config(tmp_path: Path, name: str, xtce: Path, packets: list[bytes]) -> tuple[str, list[str]]:
    """A CADU capture of ``packets`` in TM frames, and a configuration whose file link reads it for the
    spacecraft of ``xtce``: (the HTTP address, the `groundstation run` command)."""
    mux = FrameMux(DEFAULT_PROFILE.frame, SCID)
    mux.push_many(DEFAULT_PROFILE.realtime_vc, packets)
    capture = tmp_path / f"{name}.cadu"
    capture.write_bytes(build_cadus(mux.frames(), randomize=DEFAULT_PROFILE.frame.randomized))
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "groundstation.toml"
    config.write_text(f"""
[[spacecraft]]
name = "{name}"
xtce = "{xtce}"
scid = {SCID}

[[links]]
name = "capture"
url = "file://{capture}"
format = "cadu"
spacecraft = "{name}"

[archive]
dir = "{tmp_path / 'archive'}"
""")
    return address, [sys.executable, "-m", "groundstation.cli", "run", "--config", str(config), "--http", address]


def test_jpss1_xtce_file_is_a_spacecraft_of_groundstation_run(tmp_path: Path):
    data = JPSS_PACKETS.read_bytes()
    stream = np.frombuffer(data, np.uint8)
    split = split_packets(stream)
    packets = [data[o:o + n] for o, n in zip(split.offsets[:COUNT].tolist(), split.lengths[:COUNT].tolist(),
                                             strict=True)]
    address, argv = _capture_config(tmp_path, "jpss1", JPSS_XML, packets)
    definition = from_xtce(JPSS_XML.read_bytes(), name="jpss1", scid=SCID).housekeeping[0]
    expected = spp_definition(JPSS_XML.read_bytes()).parse_bytes(packets[-1])  # the latest value is the last packet's
    with groundstation_process(argv, address, tmp_path / "run.log", what="groundstation run", cwd=REPO):
        def decoded():
            m = _metrics(address)
            total = m.get(("queqiao_packets_total", (("apid", "11"), ("spacecraft", "jpss1"))), 0)
            return m if total >= COUNT else None

        metrics = wait_until(decoded, timeout=30, interval=0.2, what="every JPSS packet counted")
    values = {dict(labels)["parameter"]: (dict(labels), value) for (name, labels), value in metrics.items()
              if name == "queqiao_parameter_value" and dict(labels)["spacecraft"] == "jpss1"}
    assert len(values) == len(definition.xtce_names) == 20
    for path, xtce_name in definition.xtce_names.items():
        labels, value = values[path.rsplit(".", 1)[-1]]
        assert labels["subsystem"] == "jpss_att_ephem"
        assert labels["unit"] == dict(definition.parameters())[path].unit
        assert value == float(expected[xtce_name]), (xtce_name, value, expected[xtce_name])
    rejected = {k: v for k, v in metrics.items() if k[0] in ("queqiao_frames_rejected_total",
                                                              "queqiao_packets_rejected_total")}
    assert rejected and not any(rejected.values()), {k: v for k, v in rejected.items() if v}  # series at 0


def test_a_variable_size_xtce_spacecraft_is_decoded_and_archived_by_groundstation_run(tmp_path: Path):
    """The same for variable-size packets (a waveform to the packet's end, a counted block with a field
    after it): every fixed field's latest value in /metrics is space_packet_parser's, every sample is in
    the parameter archive, nothing is rejected."""
    import pyarrow.dataset as ds

    from tests.xtce.helpers import variable_document, variable_packets

    packets = variable_packets(300)
    document = tmp_path / "instrument.xml"
    document.write_bytes(variable_document())
    address, argv = _capture_config(tmp_path, "instrument", document, packets)
    spacecraft = from_xtce(variable_document(), name="instrument", scid=SCID)
    reference = spp_definition(variable_document())
    apids = [int.from_bytes(p[:2], "big") & 0x7FF for p in packets]
    with groundstation_process(argv, address, tmp_path / "run.log", what="groundstation run", cwd=REPO):
        def decoded():
            m = _metrics(address)
            total = sum(v for (name, labels), v in m.items() if name == "queqiao_packets_total"
                        and dict(labels)["spacecraft"] == "instrument")
            return m if total >= len(packets) else None

        metrics = wait_until(decoded, timeout=30, interval=0.2, what="every packet counted")
    for definition in spacecraft.housekeeping:
        mine = [p for p, apid in zip(packets, apids, strict=True) if apid == definition.apid]
        assert metrics[("queqiao_packets_total", (("apid", str(definition.apid)), ("spacecraft", "instrument")))] \
            == len(mine)
        last = reference.parse_bytes(mine[-1])
        for path, xtce_name in definition.xtce_names.items():
            unit = dict(definition.parameters())[path].unit
            labels = (("parameter", path.rsplit(".", 1)[-1]), ("spacecraft", "instrument"),
                      ("subsystem", definition.subsystem), ("unit", unit))
            assert metrics[("queqiao_parameter_value", labels)] == float(last[xtce_name]), xtce_name
    rejected = {k: v for k, v in metrics.items() if k[0] == "queqiao_packets_rejected_total" and v}
    assert not rejected
    # Stopped: the parameter archive has flushed every sample of every fixed field.
    table = ds.dataset(tmp_path / "archive" / "parameters", format="parquet", partitioning="hive").to_table(
        filter=ds.field("spacecraft") == "instrument")
    counts: dict[str, int] = {}
    for name in table["parameter"].to_pylist():
        counts[name] = counts.get(name, 0) + 1
    expected = {path.rsplit(".", 1)[-1]: apids.count(d.apid) for d in spacecraft.housekeeping
                for path in d.xtce_names}
    assert counts == expected
