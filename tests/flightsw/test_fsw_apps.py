"""Housekeeping and event apps, onboard storage and pass schedule."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flightsw.core import (
    EventApp,
    Executive,
    HkPacket,
    HousekeepingApp,
    OnboardStore,
    PassSchedule,
    ScheduleEntry,
    Scheduler,
    Severity,
    SimClock,
)
from flightsw.core.msgids import EVENT_STORAGE_DUMP_COMPLETED, EVENT_STORE_OVERFLOW, MID_HK_WAKEUP

START = datetime(2021, 5, 22, tzinfo=UTC)


def hk_setup(packets, provider=None):
    clock = SimClock.virtual_at(START)
    ex = Executive(clock)
    events, out = [], []
    ex.add(EventApp(events.append))
    hk = ex.add(HousekeepingApp(packets, provider or (lambda name: {"packet": name, "t": clock.now()}),
                                lambda name, values, ot: out.append((name, values["t"], ot))))
    sched = Scheduler.for_executive(ex, [ScheduleEntry("HK", MID_HK_WAKEUP, 1)])
    return clock, ex, hk, sched, out, events


# --------------------------------------------------------------------------- housekeeping


def test_hk_periods_and_onboard_time():
    clock, ex, hk, sched, out, _ = hk_setup([("power", 1.0), HkPacket("thermal", 4.0), ("rover", 0.5, False)])
    sched.step_until(8.0)
    times = {name: [t for n, t, _ in out if n == name] for name in ("power", "thermal", "rover")}
    assert times["power"] == pytest.approx([float(i) for i in range(9)])
    assert times["thermal"] == pytest.approx([0.0, 4.0, 8.0])
    assert times["rover"] == []
    name, t, ot = out[-1]
    assert ot == ex.onboard.now(t)


def test_hk_commands_change_period_and_enable():
    clock, ex, hk, sched, out, events = hk_setup([("power", 10.0), ("rover", 1.0, False)])
    sched.step_until(1.0)
    hk.set_period("power", 2.0)
    hk.set_enabled("rover", True)
    sched.step_until(5.0)
    power = [t for n, t, _ in out if n == "power"]
    rover = [t for n, t, _ in out if n == "rover"]
    assert power == pytest.approx([0.0, 3.0, 5.0])  # re-phased from the command time (t=1)
    assert rover == pytest.approx([1.1, 2.0, 3.0, 4.0, 5.0])  # phase from the command time
    hk.set_enabled("rover", False)
    assert hk.one_shot("rover")
    assert out[-1][0] == "rover"
    assert [e.event_id for e in events if e.event_id in (4, 5)] == [4, 5, 5]  # mission DB standard ids
    with pytest.raises(KeyError, match="known: power, rover"):
        hk.set_period("nope", 1.0)
    with pytest.raises(ValueError):
        hk.set_period("power", 0)


def test_hk_provider_failure_does_not_stop_other_packets():
    def provider(name):
        if name == "bad":
            raise ZeroDivisionError("model broke")
        return {"t": 0.0}

    clock, ex, hk, sched, out, events = hk_setup([("bad", 1.0), ("good", 1.0)], provider)
    sched.step_until(2.0)
    assert [n for n, *_ in out] == ["good"] * 3
    assert hk.provider_errors == 3
    assert events[0].severity == Severity.MEDIUM and "model broke" in events[0].text
    assert ex.housekeeping()["HK"]["provider_errors"] == 3


# --------------------------------------------------------------------------- events


def test_event_severities_and_pus_subtype():
    clock = SimClock.virtual_at(START)
    ex = Executive(clock)
    got = []
    evs = ex.add(EventApp(got.append))
    for sev in Severity:
        assert ex.report_event("PWR", 100 + sev, sev, f"level {sev.name}")
    assert [e.pus_subtype for e in got] == [1, 2, 3, 4]
    assert got[0].onboard == ex.onboard.now(0.0)
    assert evs.housekeeping()["sent_high"] == 1


def test_event_rate_limit_counts_suppressed_repeats():
    clock = SimClock.virtual_at(START)
    ex = Executive(clock)
    got = []
    evs = ex.add(EventApp(got.append, burst=3, window_s=10.0))
    report = ex.reporter("THERM")
    results = [report(7, Severity.LOW, "heater cycling") for _ in range(10)]
    assert results == [True] * 3 + [False] * 7
    assert report(8, Severity.LOW, "another event id is not limited")
    clock.advance(10.0)
    assert report(7, Severity.LOW, "heater cycling")
    assert got[-1].suppressed == 7
    assert evs.suppressed_total == 7


def test_event_disable_and_min_severity():
    clock = SimClock.virtual_at(START)
    ex = Executive(clock)
    got = []
    evs = ex.add(EventApp(got.append))
    evs.set_enabled("PWR", 1, False)
    assert not ex.report_event("PWR", 1, 2, "off")
    evs.set_enabled("PWR", 1, True)
    evs.min_severity = Severity.MEDIUM
    assert not ex.report_event("PWR", 1, Severity.LOW, "too low")
    assert ex.report_event("PWR", 1, Severity.HIGH, "gets through")
    assert len(got) == 1 and evs.filtered_total == 2


# --------------------------------------------------------------------------- storage


def test_store_bounded_by_bytes_drops_oldest_with_event():
    events = []
    store = OnboardStore(100, on_event=lambda *a: events.append(a))
    for i in range(10):
        assert store.store(bytes([i]) * 30, float(i), 0x100 + i)
    assert store.used_bytes == 90 and len(store) == 3
    assert store.dropped_total == 7
    assert [item.apid for item in store.items()] == [0x107, 0x108, 0x109]
    assert events[0][0] == EVENT_STORE_OVERFLOW and events[0][3]["dropped"] == 1
    assert store.store(b"x" * 100, 11.0, 1)  # exactly fits: everything else goes at once
    assert len(store) == 1 and events[-1][3]["dropped"] == 3


def test_store_rejects_item_larger_than_capacity():
    events = []
    store = OnboardStore(10, on_event=lambda *a: events.append(a))
    assert not store.store(b"x" * 11, 0.0, 1)
    assert store.rejected_total == 1 and len(store) == 0 and events


def test_dump_oldest_first_time_range_and_deletion():
    store = OnboardStore(1000)
    for i in range(10):
        store.store(bytes([i]), float(i), 1)
    window = list(store.dump(start=3.0, end=6.0))
    assert [i.onboard_time for i in window] == [3.0, 4.0, 5.0]
    assert [i.onboard_time for i in store.items()] == [0, 1, 2, 6, 7, 8, 9]
    dump = store.dump()
    first_two = [next(dump), next(dump)]  # the pass ends mid-dump
    assert [i.onboard_time for i in first_two] == [0.0, 1.0]
    del dump
    assert [i.onboard_time for i in store.items()] == [2, 6, 7, 8, 9]
    assert store.used_bytes == 5
    kept = list(store.dump(delete=False))
    assert len(kept) == 5 and len(store) == 5


def test_completed_dump_reports_event_7():
    events = []
    store = OnboardStore(1000, on_event=lambda *a: events.append(a), name="science")
    for i in range(4):
        store.store(b"abc", float(i), 1)
    partial = store.dump()
    next(partial)
    del partial
    assert events == []  # cut short: no completion report
    assert len(list(store.dump())) == 3
    assert events == [(EVENT_STORAGE_DUMP_COMPLETED, 1, "science dump completed: 3 items",
                       {"store": "science", "packets": 3})]


def test_pass_schedule_and_forced_link():
    passes = PassSchedule([(100, 200), (500, 650)])
    assert [passes.link_up(t) for t in (0, 100, 199.9, 200, 550, 700)] == [False, True, True, False, True, False]
    assert passes.next_pass(300) == (500, 650)
    assert passes.next_pass(700) is None
    passes.force("up")
    assert passes.link_up(0)
    passes.force("auto")
    assert not passes.link_up(0)
    with pytest.raises(ValueError, match="overlap"):
        PassSchedule([(0, 10), (5, 20)])
    with pytest.raises(ValueError, match="end after"):
        PassSchedule([(10, 10)])
    with pytest.raises(ValueError):
        passes.force("sideways")  # type: ignore[arg-type]


def test_offer_routes_live_or_store():
    store = OnboardStore(1000, link=PassSchedule([(10, 20)]))
    assert not store.offer(b"a", 5.0, 1, now=5.0)
    assert store.offer(b"b", 15.0, 1, now=15.0)
    assert [i.data for i in store.items()] == [b"a"]


def test_storage_app_reports_link_transitions_and_counts():
    from flightsw.core import StorageApp
    from flightsw.core.msgids import MID_LINK_CHECK

    clock = SimClock.virtual_at(START)
    ex = Executive(clock)
    events = []
    ex.add(EventApp(events.append))
    store = OnboardStore(100, link=PassSchedule([(5.0, 10.0)]))
    app = ex.add(StorageApp(store))
    sched = Scheduler.for_executive(ex, [ScheduleEntry("STO", MID_LINK_CHECK, 1)], tick_hz=1.0)
    store.offer(b"x" * 60, 0.0, 1, clock.now())
    store.offer(b"y" * 60, 1.0, 1, clock.now())  # overflow: event through the executive
    sched.step_until(12.0)
    texts = [e.text for e in events]
    assert texts[0].startswith("onboard store full")
    assert texts[1:] == ["link acquired; store holds 1 items", "link lost; store holds 1 items"]
    assert app.acquisitions == 1
    hk = ex.housekeeping()["STO"]
    assert hk["dropped_total"] == 1 and hk["link_up"] is False
    store.link.force("up")
    sched.step()
    assert events[-1].text.startswith("link acquired")


def test_fault_app_triggers_on_schedule_with_events():
    from flightsw.core import FaultApp, FaultSet
    from flightsw.core.msgids import MID_FAULT_CHECK

    clock = SimClock.virtual_at(START)
    ex = Executive(clock)
    events = []
    ex.add(EventApp(events.append))
    faults = FaultSet(["safe-mode@t=3", "drop-frames:p=1"])
    ex.add(FaultApp(faults))
    assert [e.text for e in events] == ["fault drop-frames activated"]  # at start (init)
    sched = Scheduler.for_executive(ex, [ScheduleEntry("FLT", MID_FAULT_CHECK, 1)], tick_hz=1.0)
    sched.step_until(2.0)
    assert not faults.safe_mode_requested()
    sched.step()
    assert faults.safe_mode_requested()
    assert events[-1].severity == Severity.HIGH and events[-1].app == "FLT"
    assert faults.frame_fate(b"f") is None
    assert ex.housekeeping()["FLT"]["active"] == 2
