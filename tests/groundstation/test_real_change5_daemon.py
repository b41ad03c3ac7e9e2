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

# The RS stage and the insert-zone time are the wire format: run again on the pure-Python kernels.
pytestmark = pytest.mark.protocols


def spacecraft_of(data: bytes):
    """The registry spacecraft whose SCID most of the recording's frames carry."""
    scid = independent_reading(data, 0)["scid"]
    return next(sc for sc in registry() if sc.scid == scid)


def packets_per_apid(daemon: Daemon, name: str) -> dict[int, int]:
    return {int(apid): int(n) for (sc, apid), n in daemon.metrics.series("queqiao_packets_total").items()
            if sc == name and n and apid.isdigit()}


def udp_sender(port: int, datagrams: list[bytes]):
    """A feed for :func:`run_daemon`: the datagrams to the port, paced to stay within the socket buffer."""
    async def feed() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i, datagram in enumerate(datagrams):
                tx.sendto(datagram, ("127.0.0.1", port))
                if i % 200 == 199:
                    await asyncio.sleep(0.02)
    return feed


async def run_daemon(tmp_path, sc, link: str, frames: int, expected_packets: int, feed=None, until=None) -> Daemon:
    """A daemon with one link (``link``: its TOML lines after the name) decoding ``sc``: fed by ``feed``,
    stopped once the link received ``frames`` frames, ``expected_packets`` packets were counted and
    ``until(daemon)`` (when given) holds."""
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
        if until is not None:
            await wait_for(lambda: until(daemon))
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
    daemon = await run_daemon(tmp_path, sc, f'url = "udp://127.0.0.1:{port}"', len(frames),
                              sum(truth["apids"].values()), udp_sender(port, frames))
    assert packets_per_apid(daemon, sc.name) == dict(truth["apids"])
    rejected = {k: v for k, v in daemon.metrics.series("queqiao_frames_rejected_total").items() if v}
    assert sum(rejected.values()) == truth["corrupted"]  # the corrupted frames, counted by reason
    assert not any(daemon.metrics.series("queqiao_packets_rejected_total").values())


@pytest.mark.parametrize("name", FILES)
async def test_the_recording_file_itself_on_a_frames_file_link(tmp_path, name):
    """The file as recorded (back-to-back RS-decoded frames) on a file link with format = "frames",
    pinned to the spacecraft: cut at its frame length, the same packets as the independent reading;
    here with 100 octets of a frame cut short at the end, counted as octets of no frame."""
    data = (RECORDINGS / name).read_bytes()
    sc = spacecraft_of(data)
    truth = independent_reading(data, sc.profile.frame.insert_zone_length)
    capture = tmp_path / name
    capture.write_bytes(data + data[:100])
    skipped = len(data) % FRAME + 100
    daemon = await run_daemon(tmp_path, sc, f'url = "file://{capture}"\nformat = "frames"\nspacecraft = "{sc.name}"',
                              len(data) // FRAME, sum(truth["apids"].values()),
                              until=lambda d: d.metrics.get("queqiao_link_skipped_octets_total", ("in",)) >= skipped)
    assert packets_per_apid(daemon, sc.name) == dict(truth["apids"])
    rejected = {k: v for k, v in daemon.metrics.series("queqiao_frames_rejected_total").items() if v}
    assert sum(rejected.values()) == truth["corrupted"]
    assert not any(daemon.metrics.series("queqiao_packets_rejected_total").values())
    assert daemon.metrics.get("queqiao_link_skipped_octets_total", ("in",)) == skipped


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


@pytest.mark.parametrize("name", FILES)
async def test_bad_cadus_over_udp_are_counted_by_reason_and_never_decoded(tmp_path, name):
    """The recording on the air as one CADU per datagram, on a link pinned to its spacecraft, with bad
    ones among the good: codeblocks of the wrong basis, of RS(255,239) interleave 2 (the same 252
    octets), a CADU cut short by one octet, one with 4 octets too many and a runt.  The wrongly coded
    ones are rejected and none of their packets decoded (not as this spacecraft's, not as another's);
    the wrong lengths cost the synchroniser relocks, counted, and the CADUs around them decode; every
    other frame's packets are counted as the independent reading counts them."""
    from protocols.ccsds.rs import RsCode

    data = (RECORDINGS / name).read_bytes()
    sc = spacecraft_of(data)
    frames = [data[i:i + FRAME] for i in range(0, len(data) - FRAME + 1, FRAME)][:1500]
    good = [i for i, f in enumerate(frames) if headers(f)[:2] == (1, sc.scid)]
    encoder = CaduEncoder(sc.profile.frame)
    right = sc.profile.frame.rs
    assert right is not None and encoder.code is not None
    other_basis = "conventional" if right.basis == "dual" else "dual"
    wrong_codes = [RsCode(16, 1, other_basis, FRAME), RsCode(8, 2, right.basis, FRAME)]
    blocks = encoder.codeblocks(frames)
    miscoded = {good[k * len(good) // 8]: wrong_codes[k % 2] for k in range(1, 7)}
    for i, code in miscoded.items():
        blocks[i] = code.encode_many(frames[i]).tobytes()
        assert len(blocks[i]) == len(encoder.codeblocks([frames[i]])[0])  # only RS can tell
    datagrams = [build_cadus([b], randomize=encoder.randomize) for b in blocks]
    short, long = good[len(good) // 5 + 1], good[len(good) // 2 + 1]
    datagrams[short] = datagrams[short][:-1]
    datagrams[long] = datagrams[long] + b"\x55" * 4
    datagrams.insert(good[4 * len(good) // 5 + 1], bytes(100))  # a runt between two CADUs
    kept = b"".join(f for i, f in enumerate(frames) if i not in miscoded)
    truth = independent_reading(kept, sc.profile.frame.insert_zone_length)
    port = free_port()
    # Every CADU's codeblock reaches the archive and the chain, the miscoded ones too (only RS tells).
    daemon = await run_daemon(tmp_path, sc, f'url = "udp://127.0.0.1:{port}"\nformat = "cadu"\n'
                              f'spacecraft = "{sc.name}"', len(frames), sum(truth["apids"].values()),
                              udp_sender(port, datagrams))
    metrics = daemon.metrics
    rejected = {reason: int(n) for (_, reason), n in metrics.series("queqiao_frames_rejected_total").items() if n}
    # The miscoded: uncorrectable, or "corrected" into a header that is not this spacecraft's; the
    # recording's own corrupted frames are valid codewords of a foreign header.
    assert sum(rejected.values()) == len(miscoded) + truth["corrupted"]
    assert set(rejected) <= {"rs_uncorrectable", "unknown_spacecraft"} and rejected["rs_uncorrectable"]
    assert packets_per_apid(daemon, sc.name) == dict(truth["apids"])
    assert {who for (who, _), n in metrics.series("queqiao_packets_total").items() if n} == {sc.name}
    assert not any(metrics.series("queqiao_packets_rejected_total").values())
    sync = {kind: int(n) for (stage, kind), n in metrics.series("queqiao_chain_stage_total").items()
            if stage == "sync" and n}
    assert sync.get("lost", 0) >= 2 and sync.get("lock", 0) >= 3  # the wrong lengths: counted relocks
    assert metrics.get("queqiao_link_skipped_octets_total", ("in",)) >= 100 + 4
