"""The frame's onboard time from the AOS insert zone (FrameProfile.insert_zone_time), on the real
Chang'e-5 recordings.  What the files contain is derived here, by a reading of the octets written
in the test (README facts: 220-octet AOS frames, 8-octet insert zone whose octets 4..7 are a
little-endian count of seconds since 2012-08-01T00:00:00 UTC); the recording day is the file name's."""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import pathlib

import pytest

from groundstation.chain import FrameChain
from groundstation.metrics import Metrics
from protocols.ccsds.tmframe import InsertZoneTime
from protocols.missions import Registry, registry

# The RS stage and the insert-zone time are the wire format: run again on the pure-Python kernels.
pytestmark = pytest.mark.protocols

# ../shared beside the repository, as CI lays it out.
REAL = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "change5"
EPOCH_2012_08_01 = dt.datetime(2012, 8, 1, tzinfo=dt.UTC).timestamp()
FRAME = 220
FILES = {"change5-orbiter": "ata-2021-09-18-orbiter-scid108.u8", "change5-lander": "ata-2020-11-28-lander-scid91.u8"}


def independent_reading(path: pathlib.Path, scid: int) -> list[float]:
    """Onboard time of every frame of ``scid`` (AOS version 01), read straight from the octets."""
    data = path.read_bytes()
    assert len(data) % FRAME == 0
    times = []
    for i in range(0, len(data), FRAME):
        f = data[i:i + FRAME]
        if f[0] >> 6 == 1 and ((f[0] & 0x3F) << 2 | f[1] >> 6) == scid:
            times.append(EPOCH_2012_08_01 + int.from_bytes(f[10:14], "little"))
    return times


def with_insert_zone_time(name: str):
    sc = copy.copy(registry().spacecraft(name))
    frame = dataclasses.replace(sc.profile.frame, insert_zone_length=8,
                                insert_zone_time=InsertZoneTime(4, 4, 1.0, EPOCH_2012_08_01, "little"))
    sc.profile = dataclasses.replace(sc.profile, frame=frame)
    return sc


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_insert_zone_time_is_the_frames_onboard_time_on_the_recording_day(name):
    assert REAL.is_dir(), f"the real recordings are required (never skipped): {REAL}"
    path = REAL / FILES[name]
    sc = with_insert_zone_time(name)
    times = independent_reading(path, sc.scid)
    assert times, f"no frame of SCID {sc.scid} in {path.name}"
    day = dt.date.fromisoformat(path.name[4:14])
    assert {dt.datetime.fromtimestamp(t, dt.UTC).date() for t in times} == {day}

    data = path.read_bytes()
    metrics = Metrics()
    chain = FrameChain(Registry([sc]), metrics)
    seen = []
    for i in range(0, len(data), FRAME):  # frame by frame, so every frame's time is checked
        chain.process("file", [data[i:i + FRAME]], receipt=0.0)
        if chain.chains[name].onboard_time is not None and (not seen or seen[-1] != chain.chains[name].onboard_time):
            seen.append(chain.chains[name].onboard_time)
    assert metrics.get("queqiao_spacecraft_onboard_time_seconds", (name,)) == times[-1]
    distinct = [t for j, t in enumerate(times) if j == 0 or times[j - 1] != t]
    assert seen == distinct
    assert metrics.get("queqiao_frames_total", (name, "1")) + metrics.get("queqiao_frames_total", (name, "2")) \
        == len(times)
