"""Frame synchroniser and CADUs: random chunking, noise between CADUs, bit errors in markers."""
from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocols.ccsds.sync import ASM, FrameSynchronizer, SyncState, build_cadu, build_cadus, derandomize, synchronize


def frames_for(seed: int, count: int, length: int) -> list[bytes]:
    rnd = random.Random(seed)
    return [i.to_bytes(2, "big") + rnd.randbytes(length - 2) for i in range(count)]


def noise(rnd: random.Random, n: int) -> bytes:
    out = bytearray(rnd.randbytes(n))
    while ASM[:2] in out:  # keep accidental partial markers out of the way
        out = bytearray(rnd.randbytes(n))
    return bytes(out)


def flip_bits(cadu: bytearray, rnd: random.Random, count: int) -> None:
    for bit in rnd.sample(range(32), count):
        cadu[bit // 8] ^= 0x80 >> (bit % 8)


def feed_chunked(sync: FrameSynchronizer, stream: bytes, rnd: random.Random):
    frames, events = [], []
    pos = 0
    while pos < len(stream):
        n = rnd.randrange(1, 700)
        r = sync.feed(stream[pos:pos + n])
        frames += r.frames
        events += r.events
        pos += n
    r = sync.flush()
    return frames + r.frames, events + r.events


def test_cadu_layout():
    frame = bytes(range(10))
    cadu = build_cadu(frame)
    assert cadu[:4] == bytes.fromhex("1ACFFC1D")
    assert derandomize(cadu[4:]) == frame
    assert cadu[4:6] == bytes([0x00 ^ 0xFF, 0x01 ^ 0x48])
    assert build_cadu(frame, randomize=False) == ASM + frame
    assert build_cadus([frame, frame]) == cadu + cadu


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(8, 300), st.integers(1, 30), st.booleans())
def test_clean_stream_any_chunking(seed, length, count, randomized):
    rnd = random.Random(seed)
    frames = frames_for(seed, count, length)
    stream = noise(rnd, rnd.randrange(0, 50)) + build_cadus(frames, randomize=randomized)
    sync = FrameSynchronizer(length, derandomize=randomized)
    got, events = feed_chunked(sync, stream, rnd)
    assert [f.data for f in got] == frames
    assert [f.offset for f in got] == [len(stream) - len(frames) * (length + 4) + i * (length + 4) + 4
                                       for i in range(count)]
    assert [e.kind for e in events] == ["lock"]
    assert sync.counters["skipped_octets"] == len(stream) - count * (length + 4)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(16, 200), st.integers(2, 25), st.integers(0, 3))
@example(510509, 39, 11, 3)  # drew 7 and 36 octets of noise around 43-octet CADUs: back in step
def test_noise_between_cadus_and_marker_bit_errors(seed, length, count, flywheel):
    rnd = random.Random(seed)
    frames = frames_for(seed, count, length)
    stream = bytearray()
    noisy_before = set()
    total_noise = 0
    offsets_seen = {0}  # noise so far, modulo the CADU length, at every noisy gap
    for i, f in enumerate(frames):
        cadu = bytearray(build_cadu(f))
        if i and rnd.random() < 0.25:
            n = rnd.randrange(1, 3 * length)
            # Noise that brings the stream back into step with an earlier lock (one block a CADU long, or
            # 7 + 36 octets around 43-octet CADUs) just looks like damaged markers to the flywheel.
            while (total_noise + n) % (length + 4) in offsets_seen:
                n += 1
            stream += noise(rnd, n)
            total_noise += n
            offsets_seen.add(total_noise % (length + 4))
            noisy_before.add(i)
        elif i and rnd.random() < 0.4:
            flip_bits(cadu, rnd, rnd.randrange(1, 3))  # within max_bit_errors: still locked
        stream += cadu
    sync = FrameSynchronizer(length, max_bit_errors=2, flywheel=flywheel)
    got, events = feed_chunked(sync, bytes(stream), rnd)
    assert [f.data for f in got] == frames  # every frame, once, in order
    assert not any(f.flywheel for f in got)
    assert sum(e.kind == "lost" for e in events) == len(noisy_before)
    assert sync.counters["skipped_octets"] == total_noise
    assert sync.counters["slips"] == len(noisy_before)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(16, 120), st.integers(1, 3))
def test_flywheel_carries_over_badly_damaged_markers(seed, length, flywheel):
    rnd = random.Random(seed)
    count = 12
    frames = frames_for(seed, count, length)
    damaged = {3} | ({4} if flywheel >= 2 else set())
    stream = bytearray()
    for i, f in enumerate(frames):
        cadu = bytearray(build_cadu(f))
        if i in damaged:
            flip_bits(cadu, rnd, 8)
        stream += cadu
    sync = FrameSynchronizer(length, max_bit_errors=2, flywheel=flywheel)
    got, events = feed_chunked(sync, bytes(stream), rnd)
    assert [f.data for f in got] == frames
    assert {i for i, f in enumerate(got) if f.flywheel} == damaged
    assert [e.kind for e in events] == ["lock"]


def test_too_many_missed_markers_lose_lock_and_report():
    length = 40
    frames = frames_for(1, 10, length)
    stream = bytearray(build_cadus(frames))
    for i in (4, 5):  # two damaged markers in a row, flywheel 1
        cadu_start = i * (length + 4)
        stream[cadu_start:cadu_start + 4] = b"\x00\x00\x00\x00"
    sync = FrameSynchronizer(length, flywheel=1)
    result = sync.feed(bytes(stream))
    assert [f.data for f in result.frames] == frames[:4] + frames[6:]
    kinds = [e.kind for e in result.events]
    assert kinds == ["lock", "lost", "lock"]
    assert sync.state is SyncState.LOCK


def test_slip_is_reported():
    length = 40
    frames = frames_for(2, 8, length)
    stream = bytearray(build_cadus(frames))
    del stream[3 * (length + 4) + 10]  # one octet lost inside the 4th CADU
    result = synchronize(bytes(stream), length, flywheel=0)
    kinds = [e.kind for e in result.events]
    assert "lost" in kinds and "slip" in kinds
    slip = next(e for e in result.events if e.kind == "slip")
    assert slip.octets == length + 4 - 1
    assert [f.data for f in result.frames] == frames[:3] + [result.frames[3].data] + frames[4:]


def test_flush_reports_unconfirmed_frames():
    length = 30
    frames = frames_for(3, 3, length)
    stream = bytearray(build_cadus(frames))
    stream[2 * (length + 4)] ^= 0xFF
    sync = FrameSynchronizer(length, flywheel=2)
    result = sync.feed(bytes(stream))
    assert len(result.frames) == 2
    tail = sync.flush()
    assert [e.kind for e in tail.events] == ["lost"]


def test_datagram_cadus_are_unwrapped_to_codeblocks_and_frames_pass_as_they_are():
    """A frames link fed by a coded spacecraft's emulator (one CADU per datagram) and by a plain one."""
    from protocols.ccsds.sync import CaduEncoder, DatagramCadus
    from protocols.missions import registry

    coded = registry().spacecraft("tianwen1").profile.frame
    plain = registry().spacecraft("haiyang2d").profile.frame
    assert coded.rs is not None and plain.rs is None
    unwrap = DatagramCadus([coded, plain])
    rnd = random.Random(5)
    frame = bytes(rnd.randrange(256) for _ in range(coded.frame_length))
    encoder = CaduEncoder(coded)
    cadu = encoder.cadus([frame])
    tm_frame = bytes(rnd.randrange(256) for _ in range(plain.frame_length))
    plain_cadu = build_cadu(tm_frame)  # haiyang2d's CADU: ASM + randomized frame, no code
    looks_like = ASM + bytes(len(cadu) - 8)  # the ASM's octets, but not a CADU's length
    out, count = unwrap.unwrap([tm_frame, cadu, plain_cadu, looks_like[:100], cadu[:-1]])
    assert count == 2
    assert out[0] == tm_frame
    assert out[1] == encoder.codeblocks([frame])[0]  # derandomized: frame + check symbols
    assert out[1][:coded.frame_length] == frame
    assert out[2] == tm_frame
    assert out[3] == looks_like[:100] and out[4] == cadu[:-1]  # wrong lengths: left for the chain to reject
    same, none = unwrap.unwrap([tm_frame])
    assert none == 0 and same == [tm_frame]


def test_datagram_cadus_leave_a_length_whose_profiles_disagree_on_randomization():
    import dataclasses

    from protocols.ccsds.sync import DatagramCadus
    from protocols.missions import registry

    profile = registry().spacecraft("tianwen1").profile.frame
    other = dataclasses.replace(profile, randomized=not profile.randomized)
    cadu = ASM + bytes(252)
    assert DatagramCadus([profile, other]).unwrap([cadu]) == ([cadu], 0)
    assert DatagramCadus([profile]).unwrap([cadu])[1] == 1
