"""Software bus, executive dispatch and the scheduler table in virtual time."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from flightsw.core import (
    App,
    AppRegistry,
    EventApp,
    Executive,
    Message,
    ScheduleEntry,
    Scheduler,
    SimClock,
    SoftwareBus,
)

START = datetime(2021, 5, 22, tzinfo=UTC)
MID_A = 0x1901
MID_B = 0x1902
MID_DATA = 0x0901


class Recorder(App):
    def __init__(self, name: str, subscriptions: tuple[int, ...], depth: int = 16) -> None:
        super().__init__(name)
        self.subscriptions = subscriptions
        self.pipe_depth = depth
        self.seen: list[tuple[int, float]] = []

    def handle_message(self, message: Message) -> None:
        self.seen.append((message.msg_id, self.now()))


def make(table, *apps, **kwargs):
    clock = SimClock.virtual_at(START)
    ex = Executive(clock, spacecraft="test")
    for app in apps:
        ex.add(app)
    return clock, ex, Scheduler.for_executive(ex, table, **kwargs)


# --------------------------------------------------------------------------- bus


def test_publish_reaches_every_subscriber_in_order():
    bus = SoftwareBus()
    a, b = bus.create_pipe("a"), bus.create_pipe("b")
    bus.subscribe(a, 1)
    bus.subscribe(b, 1)
    bus.subscribe(b, 2)
    assert bus.publish(Message(1, "x")) == 2
    assert bus.publish(Message(2, "y")) == 1
    assert bus.publish(Message(3)) == 0
    assert [m.payload for m in b.drain()] == ["x", "y"]
    assert a.pop().payload == "x" and a.pop() is None
    assert bus.counters() == {"published": 3, "no_subscriber": 1, "dropped": 0}


def test_full_pipe_drops_and_counts():
    bus = SoftwareBus()
    pipe = bus.create_pipe("slow", depth=3)
    bus.subscribe(pipe, 7)
    accepted = [bus.publish(Message(7, i)) for i in range(5)]
    assert accepted == [1, 1, 1, 0, 0]
    assert pipe.dropped == 2 and bus.dropped == 2
    assert pipe.high_water == 3
    assert [m.payload for m in pipe.drain()] == [0, 1, 2]  # the oldest kept, newest dropped


def test_typed_messages_checked():
    bus = SoftwareBus()
    bus.register(5, "SET_PERIOD", float)
    bus.register(6, "WAKEUP")
    bus.publish(Message(5, 2.0))
    with pytest.raises(TypeError, match="SET_PERIOD"):
        bus.publish(Message(5, "2"))
    with pytest.raises(TypeError, match="WAKEUP"):
        bus.publish(Message(6, 1))
    with pytest.raises(ValueError, match="already registered"):
        bus.register(5, "OTHER")


def test_unsubscribe_and_duplicate_pipe():
    bus = SoftwareBus()
    p = bus.create_pipe("p")
    bus.subscribe(p, 1)
    bus.unsubscribe(p, 1)
    assert bus.publish(Message(1)) == 0
    with pytest.raises(ValueError):
        bus.create_pipe("p")


# --------------------------------------------------------------------------- executive


def test_app_drops_counted_in_housekeeping():
    rec = Recorder("REC", (MID_DATA,), depth=2)
    clock, ex, _ = make([], rec)
    for _ in range(5):
        ex.bus.publish(Message(MID_DATA))
    ex.dispatch()
    assert len(rec.seen) == 2
    assert ex.housekeeping()["REC"]["pipe_dropped"] == 3


def test_failing_app_contained_and_reported():
    events = []

    class Broken(App):
        subscriptions = (MID_A,)

        def handle_message(self, message):
            raise RuntimeError("boom")

    rec = Recorder("REC", (MID_A,))
    clock, ex, sched = make([ScheduleEntry("BROKEN", MID_A, 1)], EventApp(events.append), Broken("BROKEN"), rec)
    sched.step()
    sched.step()
    assert ex.app("BROKEN").errors == 2
    assert len(rec.seen) == 2  # the other subscriber still served
    assert events and "boom" in events[0].text and events[0].severity == 3


def test_messages_published_while_dispatching_are_handled_same_tick():
    class Relay(App):
        subscriptions = (MID_A,)

        def handle_message(self, message):
            self.publish(MID_B)

    rec = Recorder("REC", (MID_B,))
    clock, ex, sched = make([ScheduleEntry("RELAY", MID_A, 1)], Relay("RELAY"), rec)
    sched.step()
    assert rec.seen == [(MID_B, 0.0)]


def test_ping_pong_apps_cannot_hang_a_tick():
    class Echo(App):
        def __init__(self, name, inbox, outbox):
            super().__init__(name)
            self.subscriptions = (inbox,)
            self.outbox = outbox

        def handle_message(self, message):
            self.publish(self.outbox)

    clock, ex, sched = make([ScheduleEntry("PING", MID_A, 1)], Echo("PING", MID_A, MID_B), Echo("PONG", MID_B, MID_A))
    sched.step()
    assert ex.dispatch_truncated == 1


def test_registry_per_spacecraft():
    reg = AppRegistry()

    @reg.register("zhurong")
    class Power(App):
        pass

    reg.register("zhurong", lambda: Recorder("REC", ()))
    apps = reg.create("zhurong")
    assert [a.name for a in apps] == ["Power", "REC"]
    assert reg.create("zhurong")[0] is not apps[0]
    with pytest.raises(KeyError, match="zhurong"):
        reg.create("hy2d")


def test_duplicate_app_name_rejected():
    clock, ex, _ = make([], Recorder("A", ()))
    with pytest.raises(ValueError):
        ex.add(Recorder("A", ()))
    with pytest.raises(KeyError, match="running: A"):
        ex.app("B")


# --------------------------------------------------------------------------- scheduler


def test_table_periods_and_offsets_in_virtual_time():
    rec = Recorder("REC", (MID_A, MID_B))
    table = [ScheduleEntry("REC", MID_A, 10),            # 1 Hz at 10 Hz ticks
             ScheduleEntry("REC", MID_B, 2.0, 0.5, unit="s")]  # every 2 s, 0.5 s late
    clock, ex, sched = make(table, rec)
    ran = sched.step_until(6.0)
    assert ran == 61
    a_times = [t for m, t in rec.seen if m == MID_A]
    b_times = [t for m, t in rec.seen if m == MID_B]
    assert a_times == pytest.approx([0, 1, 2, 3, 4, 5, 6])
    assert b_times == pytest.approx([0.5, 2.5, 4.5])
    assert clock.now() == pytest.approx(6.0)
    assert sched.overruns == 0
    assert sched.sent_counts()[("REC", MID_A)] == 7


def test_tick_times_do_not_accumulate_float_error():
    clock, ex, sched = make([])
    for _ in range(100_000):
        sched.step()
    assert sched.tick_time() == 10_000.0
    assert clock.now() == pytest.approx(9999.9)


def test_bad_entries_rejected():
    clock, ex, sched = make([])
    with pytest.raises(ValueError, match="whole number of ticks"):
        sched.add(ScheduleEntry("X", 1, 0.25, unit="s"))
    with pytest.raises(ValueError, match="offset"):
        sched.add(ScheduleEntry("X", 1, 5, 5))
    with pytest.raises(ValueError, match="period"):
        sched.add(ScheduleEntry("X", 1, 0))


def test_disable_entries_by_command():
    rec = Recorder("REC", (MID_A,))
    clock, ex, sched = make([ScheduleEntry("REC", MID_A, 1)], rec)
    sched.step()
    assert sched.set_enabled("REC", MID_A, False) == 1
    sched.step()
    sched.set_enabled("REC", enabled=True)
    sched.step()
    assert len(rec.seen) == 2


def test_overrun_detected_and_late_ticks_skipped():
    class Slow(App):
        subscriptions = (MID_A,)

        def handle_message(self, message):
            if self.handled == 2:
                self.clock.advance(1.0)  # this tick's work took 1 s of a 0.1 s minor frame

    clock, ex, sched = make([ScheduleEntry("SLOW", MID_A, 1)], Slow("SLOW"), max_catchup=3)
    for _ in range(5):
        sched.step()
    assert sched.overruns == 1
    assert sched.skipped_ticks == 6  # 9 whole ticks missed, 3 caught up back-to-back
    assert sched.tick == 11 and sched.late_ticks == 2
    assert sched.processed_ticks == 5


def test_on_tick_hook_runs_before_dispatch():
    order = []
    rec = Recorder("REC", (MID_A,))
    clock, ex, sched = make([ScheduleEntry("REC", MID_A, 1)], rec)
    sched.on_tick(lambda tick, t: order.append(("tick", tick, len(rec.seen))))
    sched.step()
    sched.step()
    assert order == [("tick", 0, 0), ("tick", 1, 1)]


def test_async_run_virtual_matches_stepping():
    def run_async():
        rec = Recorder("REC", (MID_A,))
        clock, ex, sched = make([ScheduleEntry("REC", MID_A, 3, 1)], rec)
        asyncio.run(sched.run(until=5.0))
        return rec.seen, clock.now()

    def run_steps():
        rec = Recorder("REC", (MID_A,))
        clock, ex, sched = make([ScheduleEntry("REC", MID_A, 3, 1)], rec)
        sched.step_until(5.0)
        return rec.seen, clock.now()

    assert run_async() == run_steps()


def test_async_run_real_time_scaled():
    clock = SimClock(START, time_scale=50.0)
    ex = Executive(clock)
    rec = ex.add(Recorder("REC", (MID_A,)))
    sched = Scheduler.for_executive(ex, [ScheduleEntry("REC", MID_A, 1)])
    asyncio.run(sched.run(ticks=10))  # 1 s sim = 20 ms wall
    assert len(rec.seen) == 10
    assert rec.seen[-1][1] >= 0.9
    assert sched.processed_ticks == 10


def test_stop_ends_run():
    clock, ex, sched = make([])
    sched.on_tick(lambda tick, t: sched.stop() if tick == 4 else None)
    asyncio.run(sched.run())
    assert sched.processed_ticks == 5
