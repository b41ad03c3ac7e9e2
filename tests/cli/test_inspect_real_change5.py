"""`groundstation inspect` on the real Chang'e-5 recordings in ../shared/data/real/change5/, without
any flag: the profile comes from the mission database by the frames' SCID.  What the files hold is
derived here by an independent reading of the AOS frames (CCSDS 732.0-B, M_PDU), never written down:
the spacecraft (the SCID most frames carry), the corrupted frames (any other version or SCID), the
packets per APID, and the recording day (from the file name)."""
from __future__ import annotations

import collections
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocols.missions import registry
from tests.cli.test_inspect import SCRIPT

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT.parent / "shared" / "data" / "real" / "change5"
FRAME = 220  # the README's frame length: back-to-back, RS-decoded, no ASM
FILES = sorted(p.name for p in RECORDINGS.glob("*.u8"))


def test_the_recordings_are_there():
    """Required, not optional: without them the tests below would prove nothing."""
    assert len(FILES) == 2, f"expected the two Chang'e-5 recordings in {RECORDINGS}"


def headers(frame: bytes) -> tuple[int, int, int, int]:
    """(version, SCID, VCID, VC frame count) of an AOS frame."""
    return frame[0] >> 6, ((frame[0] & 0x3F) << 2) | (frame[1] >> 6), frame[1] & 0x3F, int.from_bytes(frame[2:5], "big")


def independent_reading(data: bytes, insert_zone: int) -> dict:
    frames = [data[i:i + FRAME] for i in range(0, len(data) - FRAME + 1, FRAME)]
    ids = collections.Counter((v, s) for v, s, _, _ in map(headers, frames))
    (version, scid), _ = ids.most_common(1)[0]
    good = [f for f in frames if headers(f)[:2] == (version, scid)]
    apids: collections.Counter = collections.Counter()
    buffers: dict[int, bytearray | None] = {}
    expected: dict[int, int] = {}
    zone_at = 6 + insert_zone + 2  # primary header, insert zone, M_PDU header
    for frame in good:
        _, _, vcid, count = headers(frame)
        if vcid == 63:
            continue  # idle frames
        if vcid in expected and count != expected[vcid]:
            buffers[vcid] = None  # lost frames: the packet in progress is gone
        expected[vcid] = (count + 1) % (1 << 24)
        fhp = ((frame[zone_at - 2] & 0x07) << 8) | frame[zone_at - 1]
        zone = frame[zone_at:]
        buf = buffers.get(vcid)
        if buf is None:
            if fhp == 0x7FF:
                continue
            buf = bytearray(zone[fhp:])
        else:
            buf += zone
        while len(buf) >= 6 and len(buf) >= ((buf[4] << 8) | buf[5]) + 7:
            length = ((buf[4] << 8) | buf[5]) + 7
            apid = ((buf[0] << 8) | buf[1]) & 0x7FF
            if apid != 0x7FF:
                apids[apid] += 1
            del buf[:length]
        buffers[vcid] = buf
    return {"scid": scid, "version": version, "frames": len(frames), "corrupted": len(frames) - len(good),
            "apids": apids}


@pytest.mark.parametrize("name", FILES)
def test_inspect_decodes_every_packet_of_a_real_recording_without_flags(name):
    path = RECORDINGS / name
    data = path.read_bytes()
    proc = subprocess.run([str(SCRIPT), "inspect", str(path), "--json"], capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = lines[-1]
    assert summary["kind"] == "summary", proc.stderr
    sc = next(s for s in registry() if s.name == summary["mission"])
    truth = independent_reading(data, sc.profile.frame.insert_zone_length)
    # The spacecraft the frames say, its profile found by SCID; frames as back-to-back transfer frames.
    assert sc.scid == truth["scid"] and summary["format"] == "frames"
    assert summary["frames"] == truth["frames"] - truth["corrupted"]  # a corrupted header is an error instead
    # Every packet attributed to a declared APID of that spacecraft, each APID's count as read here.
    packets = [r for r in lines if r["kind"] == "packet" and not r.get("idle")]
    declared = {a.number for a in sc.apids}
    assert all(p["spacecraft"] == sc.name and p["apid"] in declared for p in packets)
    assert collections.Counter(p["apid"] for p in packets) == truth["apids"]
    assert summary["packets"] == sum(truth["apids"].values()) and summary["packets_crc_bad"] == 0
    # Corrupted frames (another version or SCID) are counted and named, and nothing else is an error.
    errors = [r for r in lines if r["kind"] == "error"]
    assert len(errors) == summary["errors"] == truth["corrupted"]
    assert all("version" in e["message"] or "SCID" in e["message"] for e in errors)
    assert proc.returncode == (1 if truth["corrupted"] else 0)
    # The insert zone's onboard time: every frame of the spacecraft on the recording day.
    day = datetime.strptime(name.split("-", 1)[1][:10], "%Y-%m-%d").date()
    frames = [r for r in lines if r["kind"] == "frame" and r["scid"] == sc.scid]
    assert frames and all(datetime.fromtimestamp(r["onboard_time"], UTC).date() == day for r in frames)
    times = [r["onboard_time"] for r in frames]
    assert times == sorted(times)  # a clock, not noise: it never runs backwards within a recording
    assert all(r["rs_corrected"] is None and r["rs_uncorrectable"] is False for r in frames)  # RS was undone upstream


def test_inspect_corrects_reed_solomon_codeblocks_of_an_emulated_capture(tmp_path):
    """The emulator sends change5-orbiter as real CADUs (ASM + randomized RS(252,220) codeblock): with
    symbol errors injected, inspect finds the profile by the marker distance and the SCID, corrects
    what RS can and names the codeblock it cannot."""
    from flightsw.runtime.core import FlightSoftware, RuntimeConfig
    from protocols.ccsds.sync import build_cadus

    sc = registry().spacecraft("change5-orbiter")
    rt = FlightSoftware(sc, RuntimeConfig(virtual=True, start=datetime(2021, 9, 18, 8, tzinfo=UTC)))
    frames = rt.advance_to(60.0)
    stream = bytearray(build_cadus(rt.codeblocks(frames), randomize=True))
    cadu = 4 + 252
    assert len(stream) == cadu * len(frames) and len(frames) >= 20
    for k in range(5):  # codeblock 3: 5 symbols wrong (E = 16 corrects up to 16)
        stream[3 * cadu + 4 + 30 * k + 7] ^= 0x5A
    for k in range(20):  # codeblock 7: 20 symbols wrong, beyond the code
        stream[7 * cadu + 4 + 12 * k + 1] ^= 0xFF
    path = tmp_path / "orbiter.cadu"
    path.write_bytes(bytes(stream))
    proc = subprocess.run([str(SCRIPT), "inspect", str(path), "--json"], capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = lines[-1]
    assert summary["mission"] == "change5-orbiter" and summary["format"] == "cadu", summary
    frame_records = [r for r in lines if r["kind"] == "frame"]
    assert [r["rs_corrected"] for r in frame_records[:4]] == [0, 0, 0, 5]
    assert frame_records[7]["rs_uncorrectable"] is True and frame_records[7]["rs_corrected"] is None
    assert summary["rs_corrected_symbols"] == 5 and summary["rs_uncorrectable"] == 1
    errors = [r for r in lines if r["kind"] == "error"]
    assert [e.get("reason") for e in errors] == ["rs_uncorrectable"] and proc.returncode == 1
    # The emulator's insert zone carries its onboard time, which the ground reads back.
    assert abs(frame_records[0]["onboard_time"] - datetime(2021, 9, 18, 8, tzinfo=UTC).timestamp()) < 2
