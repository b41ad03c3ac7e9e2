"""Fuzz the daemon's data path: the frame synchroniser, the demultiplexer, PacketCodec on every mission
definition, and the real FrameChain object fed valid, mutated and random frames.  Nothing may raise but
a project error, nothing may hang, and every frame must be accounted for in the counters."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import cython_ext
from groundstation.chain import FrameChain
from groundstation.labels import FrameRejectReason, LabelDomains
from groundstation.metrics import Metrics
from protocols.ccsds.sync import FrameSynchronizer, build_cadus, derandomize
from protocols.ccsds.tmframe import FrameProfile
from protocols.ccsds.vcmux import FrameDemux
from protocols.codec import PacketCodec
from protocols.errors import ProtocolError
from protocols.missions import registry
from tests.fuzz.support import count, fuzz, mutated
from tests.groundstation.test_chain import frames_for, hk_packets

MISSIONS = ("zhurong", "haiyang2d")  # an AOS and a TM spacecraft
GOOD_FRAMES = {name: frames_for(name, hk_packets(name, 4)[0])[0] for name in MISSIONS}
PROFILES = {name: FrameProfile.from_mission(registry().spacecraft(name).profile) for name in MISSIONS}


def frame_lists(name: str) -> st.SearchStrategy[list[bytes]]:
    good = GOOD_FRAMES[name]
    one = st.one_of(st.sampled_from(good), mutated(st.sampled_from(good), max_edits=4), st.binary(max_size=300))
    return st.lists(one, max_size=12)


# ---------------------------------------------------------------------------- the chain


@pytest.fixture(scope="module")
def chain():
    metrics = Metrics()
    chain = FrameChain(registry(), metrics, spacecraft=MISSIONS)
    LabelDomains(links=["fuzz"], spacecraft=[registry().spacecraft(n) for n in MISSIONS]).declare(metrics)
    return chain, metrics


@fuzz
@given(st.one_of(frame_lists("zhurong"), frame_lists("haiyang2d"), st.tuples(frame_lists("zhurong"),
                 frame_lists("haiyang2d")).map(lambda pair: [f for ab in zip(*pair, strict=False) for f in ab])))
@example([b""])
@example([GOOD_FRAMES["haiyang2d"][0][:-1]])
def test_chain_counts_every_frame_and_never_fails(chain, frames):
    count("daemon_chain")
    chain, metrics = chain
    received = metrics.get("queqiao_frames_received_total", ("fuzz",))
    routed = metrics.get("queqiao_chain_stage_total", ("route", "ok"))
    refused = sum(metrics.get("queqiao_chain_stage_total", ("route", r)) for r in
                  ("truncated", "version", "unknown_spacecraft"))
    chain.process("fuzz", frames, 1.0e9)  # raises nothing: a chain error would be counted as internal_error
    assert metrics.get("queqiao_frames_received_total", ("fuzz",)) == received + len(frames)
    assert metrics.get("queqiao_frames_rejected_total", ("fuzz", FrameRejectReason.INTERNAL_ERROR.value)) == 0
    new_routed = metrics.get("queqiao_chain_stage_total", ("route", "ok")) - routed
    new_refused = sum(metrics.get("queqiao_chain_stage_total", ("route", r)) for r in
                      ("truncated", "version", "unknown_spacecraft")) - refused
    assert new_routed + new_refused == len(frames)  # each frame either went on or was refused, with a reason
    reasons = {labels[1] for labels in metrics.series("queqiao_frames_rejected_total")}
    assert reasons <= {r.value for r in FrameRejectReason}  # label values from the enum only


# ---------------------------------------------------------------------------- the synchroniser


@fuzz
@given(st.sampled_from(MISSIONS), st.data(), st.integers(0, 4), st.integers(0, 3), st.integers(0, 5),
       st.booleans())
@example("zhurong", None, 0, 1, 3, True)  # search_bit_errors > max_bit_errors looped for ever
def test_synchroniser_terminates_and_hands_out_whole_frames(name, data, max_errors, flywheel, search_errors,
                                                            randomized):
    count("frame_sync")
    profile = PROFILES[name]
    good = build_cadus(GOOD_FRAMES[name][:6], randomize=randomized)
    if data is None:
        damaged = bytearray(good)
        for at in range(0, len(damaged), profile.frame_length + 4):
            damaged[at] ^= 0x07  # three bit errors in every marker
        stream, chunks = bytes(damaged), [len(damaged)]
    else:
        stream = data.draw(st.one_of(mutated(st.just(good), max_edits=12), st.binary(max_size=2000)))
        chunks = data.draw(st.lists(st.integers(1, 700), max_size=8))
    sync = FrameSynchronizer(profile.frame_length, max_bit_errors=max_errors, flywheel=flywheel,
                             search_bit_errors=search_errors, derandomize=randomized)
    frames, pos = [], 0
    for size in chunks + [len(stream)]:
        frames += sync.feed(stream[pos:pos + size]).frames
        pos += size
    frames += sync.flush().frames
    offsets = [f.offset for f in frames]
    assert offsets == sorted(set(offsets))
    for frame in frames:
        raw = stream[frame.offset:frame.offset + profile.frame_length]
        assert frame.data == (derandomize(raw) if randomized else raw)
    assert sync.counters["frames"] == len(frames) and sync.stream_offset == len(stream)


# ---------------------------------------------------------------------------- the demultiplexer


@fuzz
@given(st.sampled_from(MISSIONS), st.data())
def test_demux_never_raises(name, data):
    count("frame_demux")
    frames = data.draw(frame_lists(name))
    result = FrameDemux(PROFILES[name]).feed(frames)
    for packet in result.packets:
        assert len(packet.data) >= 7
    assert all(a.kind for a in result.anomalies)


# ---------------------------------------------------------------------------- the codec

DEFINITIONS = [(sc.name, p) for sc in registry() for p in sc.packets]
BACKENDS = ["pure"] + (["compiled"] if cython_ext.compiled("fields") is not None else [])


def codec(definition, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PacketCodec(definition.construct, name=definition.name, backend=backend)


CODECS = {(d.name, sc, b): codec(d, b) for sc, d in DEFINITIONS for b in BACKENDS}


@fuzz
@given(st.sampled_from(DEFINITIONS), st.data())
def test_codec_decode_many(definition, data):
    count("codec_decode_many")
    spacecraft, definition = definition
    size = definition.size
    buffer = data.draw(st.one_of(st.binary(min_size=size, max_size=size * 3), st.binary(max_size=size * 3)))
    offsets = data.draw(st.none() | st.lists(st.integers(-2, len(buffer)), max_size=4))
    outcomes = []
    for backend in BACKENDS:
        try:
            columns = CODECS[(definition.name, spacecraft, backend)].decode_many(buffer, offsets=offsets, raw=True)
        except ProtocolError as exc:
            outcomes.append(("error", type(exc).__name__))
            continue
        outcomes.append(("ok", {k: np.asarray(v).tobytes() for k, v in columns.items()}))
    assert all(o == outcomes[0] for o in outcomes)  # the backends agree
    if outcomes[0][0] == "ok" and outcomes[0][1]:
        rows = {len(np.asarray(v)) for v in CODECS[(definition.name, spacecraft, BACKENDS[0])]
                .decode_many(buffer, offsets=offsets, raw=True).values()}
        assert rows == {len(offsets) if offsets is not None else len(buffer) // size}
