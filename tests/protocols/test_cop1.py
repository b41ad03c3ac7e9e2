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


def test_fop_alerts_at_the_transmission_limit_and_keeps_the_command():
    fop = Fop1(timeout=1.0, transmission_limit=3)
    fop.initiate(0.0, mode="none")
    fop.submit(b"a", "a", 0.0)
    resent = [fop.on_timer(t)[0] for t in (1.0, 2.0)]
    assert all(len(r) == 1 for r in resent)
    out, events = fop.on_timer(3.0)
    assert out == [] and [e.kind for e in events] == ["alert"] and fop.state is FopState.INITIAL
    assert [s.tag for s in fop.sent] == ["a"]  # not dropped: its fate is settled by the next initialisation


@pytest.mark.parametrize("farm_vr,resent", [(0, True), (1, False)], ids=["never-arrived", "arrived-ack-lost"])
def test_reinitialising_acknowledges_what_the_farm_has_and_resends_the_rest(farm_vr, resent):
    """After an alert the CLCW's V(R) tells which sent frames are on board: those are acknowledged,
    the others go again under the same N(S), so each command runs exactly once."""
    fop = Fop1(timeout=1.0, transmission_limit=1)
    fop.initiate(0.0, mode="none")
    fop.submit(b"a", "a", 0.0)
    fop.submit(b"b", "b", 0.0)
    assert fop.on_timer(1.0)[1][0].kind == "alert"
    assert fop.initiate(1.0, mode="clcw") == ([], [])
    out, events = fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": farm_vr}, 1.1)
    assert fop.state is FopState.ACTIVE
    assert [(e.kind, e.tag) for e in events if e.kind != "initialised"] == ([] if resent else [("acknowledged", "a")])
    assert [(t.ns, t.tag) for t in out] == ([(0, "a"), (1, "b")] if resent else [(1, "b")])


def test_a_farm_outside_what_was_sent_leaves_the_sent_commands_unknown_and_resends_none_of_them():
    fop = Fop1(timeout=1.0, transmission_limit=1)
    fop.initiate(0.0, mode="none")
    fop.submit(b"a", "a", 0.0)
    fop.on_timer(1.0)
    fop.initiate(1.0, mode="clcw")
    out, events = fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": 100}, 1.1)  # a rebooted FARM
    rejected = [e for e in events if e.kind == "rejected"]
    assert out == [] and [e.tag for e in rejected] == ["a"] and "may have reached" in rejected[0].detail
    assert fop.vs == 100


def test_set_vr_and_terminate_report_every_queued_command():
    fop = Fop1(window=1)
    fop.initiate(0.0, mode="none")
    fop.submit(b"a", "a", 0.0)
    fop.submit(b"b", "b", 0.0)
    transmits, events = fop.initiate(0.1, mode="set_vr", vr=9)
    assert transmits[0].kind is FrameKind.BC and [(e.kind, e.tag) for e in events] == [("rejected", "a")]
    assert [tag for _, tag in fop.waiting] == ["b"]  # never sent: still to go, as N(S) 9
    _, _ = fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": 9}, 0.2)
    assert [s.ns for s in fop.sent] == [9]
    events = fop.terminate()
    assert [(e.kind, e.tag) for e in events] == [("rejected", "b")] and fop.state is FopState.INITIAL


def test_a_stale_clcw_from_a_reordered_downlink_changes_nothing():
    fop = Fop1(window=5)
    fop.initiate(0.0, mode="none")
    for i in range(4):
        fop.submit(bytes([i]), i, 0.0)
    _, events = fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": 3}, 0.1)
    assert [e.tag for e in events] == [0, 1, 2]
    assert fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": 1}, 0.2) == ([], [])
    assert fop.on_clcw({"lockout": 1, "wait": 0, "retransmit": 0, "report_value": 2}, 0.2) == ([], [])
    assert fop.state is FopState.ACTIVE and [s.ns for s in fop.sent] == [3]


def test_cancel_withdraws_a_queued_command_at_once_and_a_sent_one_only_if_the_farm_never_took_it():
    fop = Fop1(window=2, timeout=1.0, transmission_limit=1)
    fop.initiate(0.0, mode="none")
    for tag in "abc":
        fop.submit(tag.encode(), tag, 0.0)
    assert fop.cancel("c") and not fop.waiting  # never sent: gone
    assert not fop.cancel("a") and not fop.cancel("b")  # sent: the FARM may still take them
    assert fop.on_timer(1.0)[1][0].kind == "alert"
    fop.initiate(1.0, mode="clcw")
    out, events = fop.on_clcw({"lockout": 0, "wait": 0, "retransmit": 0, "report_value": 1}, 1.1)
    # "a" arrived (acknowledged: on board after all); "b" never did: withdrawn, not sent again.
    assert [(e.kind, e.tag) for e in events if e.kind != "initialised"] == [("acknowledged", "a"), ("withdrawn", "b")]
    assert out == [] and not fop.sent and not fop.waiting


def test_fop_recovers_from_lockout_with_unlock_and_resends_what_the_farm_refused():
    farm = Farm1(window=10)
    fop = Fop1(window=5)
    fop.initiate(0.0, mode="none")
    out = []
    for i in range(3):
        out += fop.submit(bytes([i]), i, 0.0)[0]
    farm.receive(FrameKind.AD, 0, b"\x00")
    farm.receive(FrameKind.AD, 200, b"x")  # far outside the window: lockout
    out, events = fop.on_clcw(farm.clcw_fields(), 0.1)
    assert farm.lockout and [(e.kind, e.tag) for e in events] == [("acknowledged", 0), ("alert", None)]
    (unlock,), _ = fop.initiate(0.2, mode="unlock")
    assert unlock.kind is FrameKind.BC
    farm.receive(unlock.kind, unlock.ns, unlock.data)
    out, events = fop.on_clcw(farm.clcw_fields(), 0.3)
    assert fop.state is FopState.ACTIVE and [(t.ns, t.tag) for t in out] == [(1, 1), (2, 2)]
    assert all(farm.receive(t.kind, t.ns, t.data).accepted for t in out)


def run_channel(seed: int, commands: int, loss: float, *, duplicate: float = 0.05, reorder: float = 0.1
                ) -> tuple[list[bytes], list, list[bytes]]:
    """FOP-1 and FARM-1 over a channel that loses, duplicates and reorders frames both ways, with a
    transmission limit low enough that alerts and re-initialisations happen (as the Commander does
    them: Unlock after a lockout, else wait for a CLCW).  Returns (what the FARM accepted, in
    order; what the FOP acknowledged; what was submitted)."""
    rng = random.Random(seed)
    farm = Farm1(window=10)
    fop = Fop1(window=5, timeout=0.5, transmission_limit=2)
    delivered: list[bytes] = []
    settled: list = []
    now = 0.0
    up: list = list(fop.initiate(now, mode="unlock")[0])
    down: list[dict] = []
    queue = [i.to_bytes(4, "big") for i in range(commands)]

    def handle(events) -> None:
        for event in events:
            assert event.kind != "rejected", event
            if event.kind == "acknowledged":
                settled.append(event.tag)
            elif event.kind == "alert":
                transmits, more = fop.initiate(now, mode="unlock" if "lockout" in event.detail else "clcw")
                up.extend(transmits)
                handle(more)

    def hostile(frames: list) -> list:
        out = [f for f in frames if rng.random() >= loss]
        out += [f for f in out if rng.random() < duplicate]
        for i in range(len(out) - 1):  # adjacent frames swapped
            if rng.random() < reorder:
                out[i], out[i + 1] = out[i + 1], out[i]
        return out

    for data in queue:
        transmits, events = fop.submit(data, data, now)
        up += transmits
        handle(events)
    for _ in range(50000):
        now += 0.1
        frames, up = hostile(up), []
        for frame in frames:
            if farm.receive(frame.kind, frame.ns, frame.data).accepted and frame.kind is FrameKind.AD:
                delivered.append(frame.data)
        down.append(farm.clcw_fields())  # one CLCW per telemetry frame
        clcws, down = hostile(down), []
        for clcw in clcws:
            transmits, events = fop.on_clcw(clcw, now)
            up += transmits
            handle(events)
        transmits, events = fop.on_timer(now)
        up += transmits
        handle(events)
        if len(settled) == commands:
            break
    return delivered, settled, queue


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), commands=st.integers(1, 200))
def test_loss_duplication_reordering_and_reinitialisation_still_deliver_each_once_in_order(seed, commands):
    delivered, settled, queue = run_channel(seed, commands, loss=0.2)
    assert delivered == queue
    assert settled == queue


@pytest.mark.parametrize("loss", [0.0, 0.5])
def test_fop_farm_extreme_loss(loss):
    delivered, settled, queue = run_channel(1, 100, loss)
    assert delivered == queue == settled
