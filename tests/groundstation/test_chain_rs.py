"""The chain's Reed-Solomon stage: codeblocks (frame + check symbols, as a CADU link hands them over
after the ASM and derandomization) are corrected into frames; an uncorrectable one is counted as
``rs_uncorrectable`` and never decoded.  The codeblocks come from our encoder, checked codeword by
codeword against libfec's, with symbol errors injected at known places."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from benchmarks.rs_peers import LibFec, LibFecMissing
from groundstation.chain import FrameChain
from groundstation.metrics import Metrics
from protocols.ccsds.rs import RsCode
from protocols.ccsds.tmframe import ReedSolomon
from protocols.ccsds.vcmux import FrameMux
from protocols.missions import Registry, registry

# The RS stage and the insert-zone time are the wire format: run again on the pure-Python kernels.
pytestmark = pytest.mark.protocols

NAME = "change5-orbiter"
RS = ReedSolomon(e=16, interleave=1, basis="dual")


@pytest.fixture(scope="module")
def libfec() -> LibFec:
    try:
        return LibFec()
    except LibFecMissing as exc:  # the test command installs libfec-dev; a missing oracle is a failure
        pytest.fail(str(exc))


def coded_spacecraft():
    """change5-orbiter with RS(255,223) on its frames (the stage is driven by FrameProfile.rs alone)."""
    sc = copy.copy(registry().spacecraft(NAME))
    sc.profile = dataclasses.replace(sc.profile, frame=dataclasses.replace(sc.profile.frame, rs=RS))
    return sc


def housekeeping_frames(sc, count: int) -> list[bytes]:
    mux = FrameMux(sc.profile.frame, sc.scid)
    packets = []
    for i in range(count):
        for seq, packet in enumerate(sc.housekeeping):
            values = {path.split(".", 1)[1]: p.calibration.to_eng(p.domain.minimum)
                      for path, p in packet.parameters() if not p.calibration.is_state}
            values.update({path.split(".", 1)[1]: next(iter(p.calibration.codes))
                           for path, p in packet.parameters() if p.calibration.is_state})
            packets.append(packet.build(values, sequence_count=i, time=(2_000_000_000 + i + seq, 0)))
    mux.push_many(sc.profile.realtime_vc, packets)
    return mux.frames()


def run(frames: list[bytes], pinned: bool = True) -> Metrics:
    """The frames through the chain as from a CADU link pinned to the spacecraft (as the daemon does)."""
    sc = coded_spacecraft()
    metrics = Metrics()
    FrameChain(Registry([sc]), metrics).process("cadu", frames, receipt=1000.0, spacecraft=NAME if pinned else None)
    return metrics


def packet_counts(metrics: Metrics) -> dict:
    return {k: v for k, v in metrics.series("queqiao_packets_total").items() if v}


def test_encoder_matches_libfec_on_mission_frames(libfec):
    sc = coded_spacecraft()
    frames = housekeeping_frames(sc, 4)
    code = RsCode(16, 1, "dual", sc.profile.frame.frame_length)
    blocks = code.encode_many(b"".join(frames))
    assert blocks.shape == (len(frames), 252)  # 220-octet frame + 32 check symbols: 256 with the ASM
    for frame, block in zip(frames, blocks, strict=True):
        padded = bytes(code.fill) + frame  # libfec codes the unshortened 223 symbols: virtual fill in front
        assert block[220:].tobytes() == libfec.encode(padded, 16, True)


def test_codeblocks_are_corrected_and_decode_like_the_plain_frames():
    sc = coded_spacecraft()
    frames = housekeeping_frames(sc, 6)
    plain = run(frames)  # the same frames without their check symbols: already RS-decoded upstream
    code = RsCode(16, 1, "dual", 220)
    blocks = code.encode_many(b"".join(frames))
    rng = np.random.default_rng(7)
    errors = []
    for row in range(len(frames)):
        n = int(rng.integers(0, 17))  # 0..E symbol errors: every codeword correctable
        where = rng.choice(252, size=n, replace=False)  # the header too: a pinned link is not routed
        blocks[row, where] ^= rng.integers(1, 256, size=n, dtype=np.uint8)
        errors.append(n)
    metrics = run([b.tobytes() for b in blocks])
    assert metrics.get("queqiao_rs_corrected_symbols_total", (NAME,)) == sum(errors)
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "corrected")) == sum(1 for n in errors if n)
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "clean")) == sum(1 for n in errors if not n)
    assert metrics.get("queqiao_frames_rejected_total", ("cadu", "rs_uncorrectable")) == 0
    assert packet_counts(metrics) == packet_counts(plain) and packet_counts(plain)
    assert metrics.series("queqiao_parameter_value") == plain.series("queqiao_parameter_value")


def test_an_uncorrectable_codeblock_is_counted_and_never_decoded(libfec):
    sc = coded_spacecraft()
    frames = housekeeping_frames(sc, 3)
    code = RsCode(16, 1, "dual", 220)
    blocks = code.encode_many(b"".join(frames))
    bad = blocks[1].copy()
    bad[:40] ^= 0x5A  # 40 symbols > E = 16, the header among them
    assert libfec.decode(bytes(code.fill) + bad.tobytes(), 16, True)[0] < 0  # libfec gives up too
    blocks[1] = bad
    metrics = run([b.tobytes() for b in blocks])
    assert metrics.get("queqiao_frames_rejected_total", ("cadu", "rs_uncorrectable")) == 1
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "uncorrectable")) == 1
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "clean")) == len(frames) - 1
    only_good = run(frames[:1] + frames[2:])
    assert packet_counts(metrics) == packet_counts(only_good)  # nothing of the bad frame was decoded


def test_a_codeblock_corrected_into_another_spacecraft_is_rejected_not_decoded():
    """A codeword that is valid for another SCID (what a miscorrection can yield) on a pinned link."""
    sc = coded_spacecraft()
    frames = housekeeping_frames(sc, 3)
    foreign = bytearray(frames[1])
    foreign[0:2] = ((1 << 14) | (200 << 6) | (foreign[1] & 0x3F)).to_bytes(2, "big")  # AOS, SCID 200
    wrong_version = bytearray(frames[2])
    wrong_version[0] &= 0x3F  # version 00 (TM) on an AOS spacecraft
    sent = [frames[0], bytes(foreign), bytes(wrong_version), *frames[3:]]
    code = RsCode(16, 1, "dual", 220)
    metrics = run([b.tobytes() for b in code.encode_many(b"".join(sent))])
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "clean")) == len(sent)
    assert metrics.get("queqiao_frames_rejected_total", ("cadu", "unknown_spacecraft")) == 2
    assert packet_counts(metrics) == packet_counts(run([frames[0], *frames[3:]]))


async def test_a_cadu_file_link_carries_rs_codeblocks_and_archives_the_uncorrectable(tmp_path):
    """A file link of ASM + randomized RS codeblocks (256-octet CADUs): the synchroniser cuts codeblocks,
    the archive keeps every one as received, the RS stage corrects or rejects them."""
    import asyncio

    from groundstation.archive import ArchiveReader
    from groundstation.config import parse_config
    from groundstation.daemon import Daemon
    from protocols.ccsds.sync import build_cadus

    sc = coded_spacecraft()
    frames = housekeeping_frames(sc, 4)
    blocks = RsCode(16, 1, "dual", 220).encode_many(b"".join(frames))
    blocks[0, 100:105] ^= 0xFF  # 5 symbols: corrected
    blocks[2, 10:60] ^= 0x33    # 50 symbols: uncorrectable
    capture = tmp_path / "orbiter.cadu"
    capture.write_bytes(build_cadus([b.tobytes() for b in blocks], randomize=True))
    assert capture.stat().st_size == 256 * len(frames)
    config = parse_config(f"""
[[links]]
name = "capture"
url = "file://{capture}"
format = "cadu"
spacecraft = "{NAME}"
[[spacecraft]]
name = "{NAME}"
[archive]
dir = "{tmp_path / 'archive'}"
""", base_dir=tmp_path)
    daemon = Daemon(config, registry=Registry([sc]), http_listen="127.0.0.1:0")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    metrics = daemon.metrics
    for _ in range(400):
        if metrics.get("queqiao_frames_received_total", ("capture",)) == len(frames):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert metrics.get("queqiao_frames_received_total", ("capture",)) == len(frames)
    assert metrics.get("queqiao_rs_corrected_symbols_total", (NAME,)) == 5
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "corrected")) == 1
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "uncorrectable")) == 1
    assert metrics.get("queqiao_rs_codewords_total", (NAME, "clean")) == len(frames) - 2
    assert metrics.get("queqiao_frames_rejected_total", ("capture", "rs_uncorrectable")) == 1
    archived = [record.frame for record in ArchiveReader(tmp_path / "archive").records()]
    assert archived == [b.tobytes() for b in blocks]  # codeblocks as received, the bad one included
    expected = run(frames[:2] + frames[3:])
    assert packet_counts(metrics) == packet_counts(expected)
