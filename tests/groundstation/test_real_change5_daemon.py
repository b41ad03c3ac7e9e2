"""The daemon on the real Chang'e-5 recordings: over UDP as the RS-decoded frames they are, and over
a file link as the CADUs they were on the air (encoded here with our encoder, checked against
libfec) with symbol errors injected.  Packet counts per APID are compared with the independent
reading of tests/cli/test_inspect_real_change5.py; nothing about the files is written down."""
from __future__ import annotations

import asyncio
import socket

import pytest

from benchmarks.rs_peers import LibFec, LibFecMissing
from groundstation.config import parse_config
from groundstation.daemon import Daemon
from protocols.ccsds.sync import CaduEncoder, build_cadus
from protocols.missions import registry
from tests.cli.test_inspect_real_change5 import FILES, FRAME, RECORDINGS, headers, independent_reading
from tests.groundstation.test_daemon import free_port, wait_for


def spacecraft_of(data: bytes):
    """The registry spacecraft whose SCID most of the recording's frames carry."""
    scid = independent_reading(data, 0)["scid"]
    return next(sc for sc in registry() if sc.scid == scid)


def packets_per_apid(daemon: Daemon, name: str) -> dict[int, int]:
    return {int(apid): int(n) for (sc, apid), n in daemon.metrics.series("queqiao_packets_total").items()
            if sc == name and n and apid.isdigit()}


async def run_daemon(tmp_path, sc, link: str, frames: int, expected_packets: int, feed=None) -> Daemon:
    """A daemon with one link (``link``: its TOML lines after the name) decoding ``sc``: fed by ``feed``,
    stopped once the link received ``frames`` frames and ``expected_packets`` packets were counted."""
    config = parse_config(f"""
[[links]]
name = "in"
{link}
[[spacecraft]]
name = "{sc.name}"
[archive]
dir = "{tmp_path / 'archive'}"
""", base_dir=tmp_path)
    daemon = Daemon(config, http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await wait_for(lambda: daemon.http is not None and all(r.link.stats.up for r in daemon.links))
        if feed is not None:
            await feed()
        await wait_for(lambda: daemon.metrics.get("queqiao_frames_received_total", ("in",)) == frames, timeout=30)
        await wait_for(lambda: sum(packets_per_apid(daemon, sc.name).values()) >= expected_packets)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return daemon


@pytest.mark.parametrize("name", FILES)
async def test_the_recorded_frames_over_udp_decode_to_the_independent_packet_counts(tmp_path, name):
    data = (RECORDINGS / name).read_bytes()
    sc = spacecraft_of(data)
    truth = independent_reading(data, sc.profile.frame.insert_zone_length)
    frames = [data[i:i + FRAME] for i in range(0, len(data) - FRAME + 1, FRAME)]
    port = free_port()

    async def feed() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i, frame in enumerate(frames):
                tx.sendto(frame, ("127.0.0.1", port))
                if i % 200 == 199:
                    await asyncio.sleep(0.02)  # within the socket buffer

    daemon = await run_daemon(tmp_path, sc, f'url = "udp://127.0.0.1:{port}"', len(frames),
                              sum(truth["apids"].values()), feed)
    assert packets_per_apid(daemon, sc.name) == dict(truth["apids"])
    rejected = {k: v for k, v in daemon.metrics.series("queqiao_frames_rejected_total").items() if v}
    assert sum(rejected.values()) == truth["corrupted"]  # the corrupted frames, counted by reason
    assert not any(daemon.metrics.series("queqiao_packets_rejected_total").values())


def test_our_encoder_matches_libfec_on_the_recorded_frames():
    try:
        libfec = LibFec()
    except LibFecMissing as exc:  # the test command installs libfec-dev; a missing oracle is a failure
        pytest.fail(str(exc))
    for name in FILES:
        data = (RECORDINGS / name).read_bytes()
        sc = spacecraft_of(data)
        encoder = CaduEncoder(sc.profile.frame)
        frames = [data[i:i + FRAME] for i in range(0, 40 * FRAME, FRAME)]
        assert encoder.code is not None
        fill = bytes(encoder.code.fill)  # libfec codes the unshortened 223 symbols: virtual fill in front
        for frame, block in zip(frames, encoder.codeblocks(frames), strict=True):
            assert block[:FRAME] == frame
            assert block[FRAME:] == libfec.encode(fill + frame, 16, sc.profile.frame.rs.basis == "dual")


@pytest.mark.parametrize("name", FILES)
async def test_the_recording_as_coded_cadus_with_symbol_errors(tmp_path, name):
    """Every 7th codeblock gets 1..16 symbol errors (correctable), two get 17 (not): the correctable
    ones decode as if clean, the two are counted and their frames lost, nothing else changes."""
    data = (RECORDINGS / name).read_bytes()
    sc = spacecraft_of(data)
    frames = [data[i:i + FRAME] for i in range(0, len(data) - FRAME + 1, FRAME)]
    good = [i for i, f in enumerate(frames) if headers(f)[:2] == (1, sc.scid)]
    encoder = CaduEncoder(sc.profile.frame)
    blocks = [bytearray(b) for b in encoder.codeblocks(frames)]
    injected = 0
    correctable = good[::7][:60]
    for k, i in enumerate(correctable):
        errors = 1 + k % 16
        for j in range(errors):
            blocks[i][(j * 13 + k) % len(blocks[i])] ^= 0xA5
        injected += errors
    uncorrectable = [good[len(good) // 3], good[2 * len(good) // 3]]
    assert not set(uncorrectable) & set(correctable)
    for i in uncorrectable:
        for j in range(17):
            blocks[i][j * 14 + 3] ^= 0x3C
    capture = tmp_path / "recording.cadu"
    capture.write_bytes(build_cadus([bytes(b) for b in blocks], randomize=encoder.randomize))
    kept = bytes(b"".join(f for i, f in enumerate(frames) if i not in uncorrectable))
    truth = independent_reading(kept, sc.profile.frame.insert_zone_length)

    daemon = await run_daemon(tmp_path, sc, f'url = "file://{capture}"\nspacecraft = "{sc.name}"', len(frames),
                              sum(truth["apids"].values()))
    codewords = {result: n for (who, result), n in daemon.metrics.series("queqiao_rs_codewords_total").items()
                 if who == sc.name}
    assert codewords["corrected"] == len(correctable) and codewords["uncorrectable"] == len(uncorrectable)
    assert codewords["clean"] == len(frames) - len(correctable) - len(uncorrectable)
    assert daemon.metrics.get("queqiao_rs_corrected_symbols_total", (sc.name,)) == injected
    assert daemon.metrics.get("queqiao_frames_rejected_total", ("in", "rs_uncorrectable")) == 2
    assert packets_per_apid(daemon, sc.name) == dict(truth["apids"])
