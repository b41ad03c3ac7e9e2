"""COP-1: FARM-1 window rules, FOP-1 over a lossy channel delivers every frame once and in order."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.ccsds.cop1 import Farm1, Fop1, FopState, FrameKind, set_vr_command


def test_farm_accepts_in_sequence_and_flags_gaps_duplicates_lockout():
    farm = Farm1(window=10)
    assert farm.receive(FrameKind.AD, 0).reason == "accepted"
    assert farm.receive(FrameKind.AD, 2).reason == "gap" and farm.retransmit
    assert farm.receive(FrameKind.AD, 1).reason == "accepted" and not farm.retransmit
    assert farm.receive(FrameKind.AD, 0).reason == "duplicate"
    assert farm.receive(FrameKind.AD, 100).reason == "lockout" and farm.lockout
    assert farm.receive(FrameKind.AD, 2).reason == "lockout"  # everything AD refused until unlocked
    assert farm.receive(FrameKind.BC, 0, b"\x00").reason == "unlock" and not farm.lockout
    assert farm.receive(FrameKind.BC, 0, set_vr_command(42)).reason == "set_vr"
    assert farm.clcw_fields() == {"lockout": 0, "wait": 0, "retransmit": 0, "farm_b_counter": 2, "report_value": 42}


def test_farm_wait_when_no_buffer():
    farm = Farm1()
    result = farm.receive(FrameKind.AD, 0, buffer_available=False)
    assert (result.accepted, farm.wait, farm.retransmit) == (False, True, True)


def test_farm_sequence_wraps_modulo_256():
    farm = Farm1(vr=255)
    assert farm.receive(FrameKind.AD, 255).accepted and farm.vr == 0
    assert farm.receive(FrameKind.AD, 0).accepted


def test_fop_initialises_from_clcw_then_sends_within_window():
    fop = Fop1(window=3)
    assert fop.submit(b"x", "early", 0.0)[1][0].kind == "rejected"
    fop.initiate(0.0, mode="clcw")
    out, events = fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": 7}, 0.1)
    assert fop.state is FopState.ACTIVE and fop.vs == 7 and events[0].kind == "initialised"
    sent = []
    for i in range(5):
        sent += fop.submit(bytes([i]), i, 0.2)[0]
    assert [t.ns for t in sent] == [7, 8, 9]  # window of 3
    out, events = fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": 9}, 0.3)
    assert [e.tag for e in events] == [0, 1] and [t.ns for t in out] == [10, 11]


def test_fop_gives_up_after_transmission_limit():
    fop = Fop1(timeout=1.0, transmission_limit=3)
    fop.initiate(0.0, mode="none")
    fop.submit(b"a", "a", 0.0)
    resent = [fop.on_timer(t)[0] for t in (1.0, 2.0)]
    assert all(len(r) == 1 for r in resent)
    out, events = fop.on_timer(3.0)
    assert out == [] and events[0].kind == "alert" and events[1].tag == "a" and fop.state is FopState.INITIAL


def run_lossy(seed: int, commands: int, loss: float) -> tuple[list[bytes], list]:
    rng = random.Random(seed)
    farm = Farm1(window=10)
    fop = Fop1(window=5, timeout=1.0, transmission_limit=50)
    delivered: list[bytes] = []
    acknowledged: list = []
    now = 0.0
    out, _ = fop.initiate(now, mode="unlock")
    pending = list(out)
    queue = [bytes([i % 256]) * 4 + i.to_bytes(4, "big") for i in range(commands)]
    for data in queue:
        out, events = fop.submit(data, data, now)
        pending += out
    for _ in range(20000):
        now += 0.1
        for frame in pending:
            if rng.random() < loss:
                continue
            result = farm.receive(frame.kind, frame.ns, frame.data)
            if result.accepted and frame.kind is FrameKind.AD:
                delivered.append(frame.data)
        pending = []
        if rng.random() >= loss:  # the CLCW comes down in a telemetry frame that may be lost too
            out, events = fop.on_clcw(farm.clcw_fields(), now)
            pending += out
            acknowledged += [e.tag for e in events if e.kind == "acknowledged"]
            assert not [e for e in events if e.kind in ("alert", "rejected")], events
        out, events = fop.on_timer(now)
        pending += out
        if len(acknowledged) == commands:
            break
    return delivered, acknowledged, queue


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), commands=st.integers(1, 300))
def test_fop_farm_over_20_percent_loss_deliver_each_once_in_order(seed, commands):
    delivered, acknowledged, queue = run_lossy(seed, commands, loss=0.2)
    assert delivered == queue
    assert acknowledged == queue


@pytest.mark.parametrize("loss", [0.0, 0.5])
def test_fop_farm_extreme_loss(loss):
    delivered, acknowledged, queue = run_lossy(1, 100, loss)
    assert delivered == queue == acknowledged


def test_fop_recovers_from_lockout_with_unlock_and_resumes_from_the_farm():
    farm = Farm1(window=10)
    fop = Fop1(window=5)
    fop.initiate(0.0, mode="none")
    out = []
    for i in range(3):
        out += fop.submit(bytes([i]), i, 0.0)[0]
    farm.receive(FrameKind.AD, 0, b"\x00")
    farm.receive(FrameKind.AD, 200, b"x")  # far outside the window: lockout
    out, events = fop.on_clcw(farm.clcw_fields(), 0.1)
    assert farm.lockout and [(e.kind, e.tag) for e in events] == [
        ("acknowledged", 0), ("alert", None), ("rejected", 1), ("rejected", 2)]
    (unlock,), _ = fop.initiate(0.2, mode="unlock")
    assert unlock.kind is FrameKind.BC
    farm.receive(unlock.kind, unlock.ns, unlock.data)
    _, events = fop.on_clcw(farm.clcw_fields(), 0.3)
    assert fop.state is FopState.ACTIVE and fop.vs == farm.vr == 1
    (frame,), _ = fop.submit(b"again", "again", 0.4)
    assert frame.ns == 1 and farm.receive(frame.kind, frame.ns, frame.data).accepted
