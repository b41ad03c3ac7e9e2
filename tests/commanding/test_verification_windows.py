"""Verification windows: per stage from the mission database, DRIVE's from its arguments, late reports."""
from __future__ import annotations

import pytest

from flightsw.missions.common import event_recorder
from flightsw.missions.zhurong import ZhurongModel
from groundstation.commanding import Commander
from groundstation.history import CommandHistory
from groundstation.metrics import Metrics
from protocols.missions import builtin_registry
from protocols.missions.zhurong import drive_completion_window
from tests.commanding.test_uplink_security import CapturingLink

SC = builtin_registry().spacecraft("zhurong")
MOBILITY_REPORTS = {p.subtype: p for p in SC.packets if p.service == 1 and p.name.startswith("mobility_")}
PLATFORM_REPORTS = {p.subtype: p for p in SC.packets if p.service == 1 and p.name.startswith("platform_")}
DRIVE = {"distance": 5.0, "heading": 90.0, "speed": 100.0, "mode": "CRAB"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def station():
    clock, history = Clock(), CommandHistory(":memory:")
    commander = Commander(SC, CapturingLink(), history, Metrics(), clock=clock)
    yield commander, history, clock
    history.close()


def report(commander, reports, subtype, command_id, **extra):
    record = commander.history.get(command_id)
    commander.on_report(reports[subtype], {"report.request.apid": record.apid,
                                           "report.request.sequence_count": record.sequence_count, **extra})


def run_until(commander, clock, seconds, step=1.0):
    end = clock.now + seconds
    while clock.now < end:
        clock.now += step
        commander.tick()


@pytest.mark.parametrize("args", [DRIVE, {"distance": 100.0, "heading": 270.0, "speed": 10.0, "mode": "WHEEL_WALK"},
                                  {"distance": 0.1, "heading": 0.0, "speed": 200.0, "mode": "NORMAL"}])
@pytest.mark.parametrize("start_heading", [0.0, 89.0, 270.0])
def test_drive_completion_window_covers_what_the_emulated_rover_takes(args, start_heading):
    model = ZhurongModel(SC, seed=3, start_utc=ZhurongModel.DEFAULT_START_UTC, emit=event_recorder(SC, []))
    model.rover.heading = start_heading
    outcome = model.cmd_drive(args)
    assert outcome.ok, outcome.detail
    window = drive_completion_window(args)
    # The rover's own estimate (reported as its completion time) fits, with the margin, in the window.
    assert outcome.duration < window <= 1.2 * outcome.duration + 30.0 + 1.2 * 180.0 + 1e-6


def test_drive_window_grows_with_distance_and_shrinks_with_speed():
    short = SC.command("DRIVE").verification.window("completion", DRIVE, 60.0)
    assert short == pytest.approx(1.2 * (180 + 5 / (100 * 0.8 / 3600 * 0.7)) + 30)
    assert SC.command("DRIVE").verification.window("completion", {**DRIVE, "distance": 50.0}, 60.0) > short
    assert SC.command("DRIVE").verification.window("completion", {**DRIVE, "speed": 200.0}, 60.0) < short
    # A command without its own completion window takes the station's configured default.
    assert SC.command("PING").verification.window("completion", {}, 42.0) == 42.0


def test_no_acceptance_within_its_window_times_out_naming_the_stage(station):
    commander, history, clock = station
    command_id = commander.submit("PING", {}, "op")
    run_until(commander, clock, 29)
    assert history.get(command_id).state == "uplinked"
    run_until(commander, clock, 2)
    record = history.get(command_id)
    assert record.state == "timed_out"
    assert record.detail == "no acceptance report within 30 s"


def test_progress_reports_restart_the_completion_window(station):
    commander, history, clock = station
    command_id = commander.submit("DRIVE", DRIVE, "op")
    window = drive_completion_window(DRIVE)
    report(commander, MOBILITY_REPORTS, 1, command_id)
    report(commander, MOBILITY_REPORTS, 3, command_id)
    for _ in range(3):  # well past one window in all, but never a window without a report
        run_until(commander, clock, window - 2)
        assert history.get(command_id).state in ("started", "progress")
        report(commander, MOBILITY_REPORTS, 5, command_id)
    run_until(commander, clock, window - 2)
    report(commander, MOBILITY_REPORTS, 7, command_id)
    record = history.get(command_id)
    assert record.state == "completed"
    assert record.timed_out_at is None
    assert [s["stage"] for s in record.stages] == ["queued", "uplinked", "accepted", "started", "progress",
                                                   "progress", "progress", "completed"]


def test_a_late_completion_is_recorded_and_corrects_the_state_keeping_both(station):
    commander, history, clock = station
    command_id = commander.submit("PING", {}, "op")
    report(commander, PLATFORM_REPORTS, 1, command_id)
    report(commander, PLATFORM_REPORTS, 3, command_id)
    run_until(commander, clock, 61)  # the station default completion window: 60 s
    timed_out = history.get(command_id)
    # Accepted and started on board, then no completion: the spacecraft has it, the report is missing.
    assert timed_out.state == "unreported"
    assert timed_out.detail == "accepted on board (PUS 1 accepted report); no completion report within 60 s"
    clock.now += 15
    report(commander, PLATFORM_REPORTS, 7, command_id)
    record = history.get(command_id).as_json()
    assert record["state"] == "completed" and record["final"]
    assert record["timed_out_at"] == timed_out.updated_at
    assert record["stages"][-2]["stage"] == "unreported"
    late = record["stages"][-1]
    assert late["stage"] == "completed" and late["late"] is True and late["time"] >= record["timed_out_at"]
    assert commander.metrics.get("queqiao_commands_total", ("zhurong", "PING", "completed")) == 1


def test_a_late_progress_reopens_the_completion_window(station):
    commander, history, clock = station
    command_id = commander.submit("PING", {}, "op")
    run_until(commander, clock, 31)
    assert history.get(command_id).state == "timed_out"
    report(commander, PLATFORM_REPORTS, 5, command_id)
    assert history.get(command_id).state == "progress"
    run_until(commander, clock, 61)
    record = history.get(command_id)
    assert record.state == "unreported"  # the progress report proved it on board
    assert [s["stage"] for s in record.stages][-3:] == ["timed_out", "progress", "unreported"]


def test_a_completed_command_is_not_changed_by_a_stray_report(station):
    commander, history, clock = station
    command_id = commander.submit("PING", {}, "op")
    report(commander, PLATFORM_REPORTS, 7, command_id)
    report(commander, PLATFORM_REPORTS, 8, command_id)
    assert history.get(command_id).state == "completed"


# ---------------------------------------------------------------- COP-1: what the FARM says counts

HAIYANG = builtin_registry().spacecraft("haiyang2d")
HAIYANG_REPORTS = {p.subtype: p for p in HAIYANG.packets if p.service == 1 and p.name.startswith("platform_")}


def clcw(report_value: int, **flags) -> dict:
    return {"lockout": 0, "wait": 0, "retransmit": 0, "report_value": report_value, **flags}


@pytest.fixture
def cop1_station():
    """A haiyang2d Commander (its downlink carries a CLCW: COP-1) with an AD service initialised at V(R) 0."""
    clock, history = Clock(), CommandHistory(":memory:")
    link = CapturingLink()
    commander = Commander(HAIYANG, link, history, Metrics(), clock=clock)
    assert commander.cop1
    commander.on_clcw(clcw(0))
    yield commander, history, clock, link
    history.close()


def test_a_command_the_farm_accepted_whose_reports_were_lost_is_unreported_not_timed_out(cop1_station):
    commander, history, clock, _ = cop1_station
    command_id = commander.submit("PING", {}, "op")
    commander.on_clcw(clcw(1))  # the FARM took the frame; every PUS 1 report is lost on the way down
    run_until(commander, clock, 31)
    record = history.get(command_id)
    assert record.state == "unreported" and record.final
    assert record.detail == "accepted on board (its FARM-1 accepted the frame); no acceptance report within 30 s"
    assert commander.metrics.get("queqiao_commands_total", ("haiyang2d", "PING", "unreported")) == 1
    # The completion report arrives after all (a late frame): it corrects the state.
    record = history.get(command_id)
    commander.on_report(HAIYANG_REPORTS[7], {"report.request.apid": record.apid,
                                             "report.request.sequence_count": record.sequence_count})
    assert history.get(command_id).state == "completed"


def test_a_command_still_queued_when_its_window_closes_is_withdrawn_and_never_sent(cop1_station):
    commander, history, clock, link = cop1_station
    ids = [commander.submit("PING", {}, "op") for _ in range(commander.settings.fop_window + 1)]
    assert [tag for _, tag in commander.fop.waiting] == [ids[-1]]  # the window is full: the last one waits
    run_until(commander, clock, 31)  # the FARM says nothing: no CLCW comes down at all
    assert all(history.get(i).state == "timed_out" for i in ids)
    assert "never sent, withdrawn from the queue" in history.get(ids[-1]).detail
    assert not commander.fop.waiting
    frames_before = len(link.sent)
    commander.on_clcw(clcw(0))  # the link comes back with V(R) 0: none of them ever arrived
    assert link.sent[frames_before:] == []  # so none goes out late: timed out means never executed
    assert not commander.fop.sent and all(history.get(i).state == "timed_out" for i in ids)


def test_a_farm_acknowledgement_after_the_acceptance_window_corrects_timed_out_to_unreported(cop1_station):
    commander, history, clock, _ = cop1_station
    command_id = commander.submit("PING", {}, "op")
    run_until(commander, clock, 31)
    assert history.get(command_id).state == "timed_out"
    commander.on_clcw(clcw(1))  # a retransmission got through: it is on board after all
    record = history.get(command_id).as_json()
    assert record["state"] == "unreported" and record["stages"][-1]["late"] is True
    assert record["timed_out_at"] is not None
