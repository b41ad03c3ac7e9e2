"""`groundstation inspect` through the real console script, on capture files built here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.ccsds.pus import PusTc, PusTm
from protocols.ccsds.spacepacket import idle_packet
from protocols.ccsds.sync import build_cadus
from protocols.ccsds.tmframe import FrameProfile
from protocols.ccsds.vcmux import FrameMux

SCRIPT = Path(sys.executable).with_name("groundstation")


def inspect(*args: str) -> tuple[int, list[dict], str]:
    proc = subprocess.run([str(SCRIPT), "inspect", *args], capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in proc.stdout.splitlines()] if "--json" in args else []
    return proc.returncode, lines, proc.stdout + proc.stderr


def of_kind(lines: list[dict], kind: str) -> list[dict]:
    return [r for r in lines if r["kind"] == kind]


def tm_packets(count: int = 12) -> list[bytes]:
    return [PusTm(apid=0x64 + i % 2, service=3, subtype=25, source_data=bytes(range(i * 5 % 40)),
                  sequence_count=i, message_counter=i).build() for i in range(count)]


def test_packets_json(tmp_path):
    packets = tm_packets(5)
    tc = PusTc(apid=0x20, service=17, subtype=1, sequence_count=9).build()
    bad = bytearray(PusTm(apid=0x30, service=5, subtype=1, source_data=b"xx").build())
    bad[-1] ^= 0xFF
    stream = b"".join(packets) + idle_packet(9) + tc + bytes(bad)
    path = tmp_path / "p.bin"
    path.write_bytes(stream)
    code, lines, _ = inspect(str(path), "--format", "packets", "--json")
    assert code == 1  # the bad CRC is reported
    pk = of_kind(lines, "packet")
    assert len(pk) == 8
    offset = 0
    for rec, raw in zip(pk, packets + [idle_packet(9), tc, bytes(bad)], strict=True):
        assert rec["offset"] == offset
        assert rec["length"] == len(raw) - 7
        offset += len(raw)
    first = pk[0]
    assert (first["apid"], first["type"], first["sequence_count"], first["service"], first["subtype"],
            first["crc_ok"]) == (0x64, "TM", 0, 3, 25, True)
    assert pk[5]["apid"] == 0x7FF and pk[5].get("idle") is True and "service" not in pk[5]
    assert (pk[6]["type"], pk[6]["apid"], pk[6]["sequence_count"], pk[6]["service"], pk[6]["subtype"],
            pk[6]["crc_ok"]) == ("TC", 0x20, 9, 17, 1, True)
    assert pk[7]["crc_ok"] is False
    summary = of_kind(lines, "summary")[-1]
    assert summary["packets"] == 7 and summary["idle_packets"] == 1 and summary["packets_crc_bad"] == 1


def test_truncated_packet_file_is_reported_not_a_crash(tmp_path):
    raw = b"".join(tm_packets(3))
    path = tmp_path / "t.bin"
    path.write_bytes(raw[:-5])
    code, lines, out = inspect(str(path), "--format", "packets", "--json")
    assert code == 1 and "Traceback" not in out
    err = of_kind(lines, "error")
    assert len(err) == 1 and err[0]["offset"] == len(b"".join(tm_packets(2)))


def build_frames(profile: FrameProfile, packets: list[bytes]) -> list[bytes]:
    mux = FrameMux(profile, scid=245)
    mux.push_many(1, packets[::2])
    mux.push_many(2, packets[1::2])
    return mux.frames() + [mux.next_frame()]


def test_frames_json_with_a_corrupted_frame(tmp_path):
    profile = FrameProfile(frame_length=120, has_ocf=True)
    packets = tm_packets(12)
    frames = build_frames(profile, packets)
    blob = bytearray(b"".join(frames))
    blob[120 * 1 + 50] ^= 0x01  # frame 1: FECF fails
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(blob))
    code, lines, _ = inspect(str(path), "--format", "frames", "--frame-length", "120", "--json")
    assert code == 1
    fr = of_kind(lines, "frame")
    assert len(fr) == len(frames)
    assert [f["offset"] for f in fr] == [120 * i for i in range(len(frames))]
    assert fr[0]["scid"] == 245 and fr[0]["vcid"] == 1 and fr[0]["mc_count"] == 0 and fr[0]["vc_count"] == 0
    assert fr[0]["fhp"] == 0 and fr[0]["crc_ok"] is True
    assert fr[1]["crc_ok"] is False
    assert fr[-1]["vcid"] == 7 and fr[-1]["fhp"] == 0x7FE
    for rec in of_kind(lines, "packet"):
        # Offsets point at the packet's header in the file (when it starts inside one frame's data field).
        off = rec["offset"]
        if off % 120 + 6 <= 120 - 6:
            assert blob[off + 2] >> 6 == 3 and ((blob[off] << 8 | blob[off + 1]) & 0x7FF) == rec["apid"]
        assert rec["crc_ok"] is True
    got = {(r["apid"], r["sequence_count"]) for r in of_kind(lines, "packet")}
    assert got < {(0x64 + i % 2, i) for i in range(12)}  # some lost with frame 1, none corrupted
    assert any(e.get("anomaly") == "fecf" for e in of_kind(lines, "error"))


def test_cadu_stream_with_noise(tmp_path):
    profile = FrameProfile(frame_length=100)
    packets = tm_packets(10)
    frames = build_frames(profile, packets)
    stream = b"\x00\x11\x22" + build_cadus(frames)
    path = tmp_path / "c.bin"
    path.write_bytes(stream)
    code, lines, _ = inspect(str(path), "--format", "cadu", "--frame-length", "100", "--json")
    assert code == 0
    fr = of_kind(lines, "frame")
    assert [f["offset"] for f in fr] == [3 + 4 + 104 * i for i in range(len(frames))]
    assert all(f["crc_ok"] for f in fr)
    pk = of_kind(lines, "packet")
    assert sorted((r["apid"], r["sequence_count"]) for r in pk) == sorted((0x64 + i % 2, i) for i in range(10))
    summary = of_kind(lines, "summary")[-1]
    assert summary["skipped_octets"] == 3 and summary["frames"] == len(frames) and summary["packets"] == 10
    # Not randomized on the wire: --no-derandomize.
    path.write_bytes(build_cadus(frames, randomize=False))
    code, lines, _ = inspect(str(path), "--frame-length", "100", "--no-derandomize", "--json")
    assert code == 0 and len(of_kind(lines, "packet")) == 10


def test_aos_frames_are_recognised(tmp_path):
    profile = FrameProfile(frame_length=220, has_fecf=False, kind="AOS")
    mux = FrameMux(profile, scid=91)
    mux.push_many(1, tm_packets(6))
    path = tmp_path / "a.bin"
    path.write_bytes(b"".join(mux.frames()))
    # SCID 91 is change5-lander's, whose frames have an 8-octet insert zone: these have none, and an
    # explicit flag overrides what the mission database says.
    code, lines, _ = inspect(str(path), "--format", "frames", "--no-fecf", "--insert-zone", "0", "--json")
    assert code == 0
    fr = of_kind(lines, "frame")
    assert fr[0]["type"] == "AOS" and fr[0]["scid"] == 91 and fr[0]["vcid"] == 1 and fr[0]["crc_ok"] is None
    assert len(of_kind(lines, "packet")) == 6
    assert of_kind(lines, "summary")[0]["mission"] == "change5-lander"


def test_text_output_and_unreadable_file(tmp_path):
    path = tmp_path / "p.bin"
    path.write_bytes(b"".join(tm_packets(2)))
    code, _, out = inspect(str(path), "--format", "packets")
    assert code == 0 and "APID 100" in out and "PUS 3,25 CRC ok" in out and out.splitlines()[-1].startswith("summary")
    code, _, out = inspect(str(tmp_path / "missing.bin"))
    assert code == 2 and "cannot read" in out and "Traceback" not in out


@pytest.mark.parametrize("blob", [b"", b"\xff" * 7, bytes(range(256)) * 3])
def test_garbage_never_crashes(tmp_path, blob):
    path = tmp_path / "g.bin"
    path.write_bytes(blob)
    for fmt in ("cadu", "frames", "packets"):
        code, lines, out = inspect(str(path), "--format", fmt, "--frame-length", "64", "--json")
        assert code in (0, 1) and "Traceback" not in out
        assert lines[-1]["kind"] == "summary"


def test_per_packet_prefixes_are_skipped_and_counted(tmp_path):
    packets = tm_packets(4)
    prefix = b"\xde\xad\xbe\xef\x00\x01\x02\x03"  # an 8-octet recorder time stamp before every packet
    path = tmp_path / "prefixed.bin"
    path.write_bytes(b"".join(prefix + p for p in packets))
    code, lines, _ = inspect(str(path), "--format", "packets", "--skip-header-bytes", "8", "--json")
    assert code == 0
    pk = of_kind(lines, "packet")
    assert [r["sequence_count"] for r in pk] == [PusTm.parse(p).sequence_count for p in packets]
    assert [r["offset"] for r in pk] == [8 + sum(8 + len(q) for q in packets[:i]) for i in range(4)]
    summary = of_kind(lines, "summary")[0]
    assert summary["skip_header_bytes"] == 8 and summary["prefix_octets_skipped"] == 32
    assert summary["packets"] == 4 and summary["errors"] == 0
    # Without the flag the prefix is read as a header: version 6 stops the file, as before.
    code, lines, _ = inspect(str(path), "--format", "packets", "--json")
    assert code == 1 and "version 6 is not 0" in of_kind(lines, "error")[0]["message"]
    assert of_kind(lines, "summary")[0]["octets_not_decoded"] == path.stat().st_size


def test_lenient_version_counts_packets_whose_version_is_not_0_and_goes_on(tmp_path):
    packets = tm_packets(3)
    odd = bytearray(packets[1])
    odd[0] |= 0x20  # version 1
    path = tmp_path / "mixed.bin"
    path.write_bytes(packets[0] + bytes(odd) + packets[2])
    code, lines, _ = inspect(str(path), "--format", "packets", "--lenient-version", "--json")
    assert code == 0
    assert [r["offset"] for r in of_kind(lines, "packet")] == [0, len(packets[0]) + len(odd)]
    summary = of_kind(lines, "summary")[0]
    assert summary["packets"] == 2 and summary["packets_version_not_0"] == 1
    assert summary["octets_version_not_0"] == len(odd)
    code, lines, _ = inspect(str(path), "--format", "packets", "--json")
    assert code == 1 and len(of_kind(lines, "packet")) == 1
    assert of_kind(lines, "summary")[0]["octets_not_decoded"] == len(odd) + len(packets[2])


def test_prefix_and_version_flags_are_for_packet_files(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00" * 64)
    code, _, err = inspect(str(path), "--format", "frames", "--skip-header-bytes", "4")
    assert code == 2 and "apply to --format packets" in err
