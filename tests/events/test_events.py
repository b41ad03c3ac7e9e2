"""Events: the store, the burst detector, and a real daemon + emulator with an injected fault."""
from __future__ import annotations

import asyncio
import functools
import io

from prometheus_client.parser import text_string_to_metric_families

from flightsw.runtime import Emulator
from groundstation.events import Event, EventRecorder, EventStore, LinkWatch, iter_follow
from groundstation.events_cli import event_line
from groundstation.metrics import Metrics
from tests.commanding import test_commanding_e2e as e2e


def _event(t: float, severity: str = "informative", spacecraft: str = "zhurong", name: str = "ping") -> Event:
    return Event(t, spacecraft, severity, name, "onboard", "platform", f"at {t}")


def test_store_filters_by_spacecraft_severity_since_and_limit(tmp_path):
    store = EventStore(tmp_path / "events.sqlite", retention_s=None)
    try:
        for i, severity in enumerate(["informative", "low", "medium", "high"] * 3):
            store.put(_event(1000.0 + i, severity, "zhurong" if i % 2 else "chang-e-5"))
        store.flush()
        assert [e.time for e in store.query(limit=3)] == [1009.0, 1010.0, 1011.0]  # the latest, oldest first
        assert [e.time for e in store.query(since=1004.5, limit=2)] == [1005.0, 1006.0]  # the first after since
        assert {e.severity for e in store.query(severity="medium")} == {"medium", "high"}
        assert [e.time for e in store.query(spacecraft="zhurong", severity="high")] == [1003.0, 1007.0, 1011.0]
        first = store.query(limit=1)[0]
        assert first.as_json()["message"] == "at 1011.0" and first.id == 12
    finally:
        store.close()


def test_retention_drops_old_events(tmp_path):
    now = [100_000.0]
    store = EventStore(tmp_path / "events.sqlite", retention_s=3600.0, clock=lambda: now[0])
    store.put(_event(now[0] - 7200.0))
    store.flush()
    store.close()
    store = EventStore(tmp_path / "events.sqlite", retention_s=3600.0, clock=lambda: now[0])
    store.put(_event(now[0] - 10.0))
    store.flush()
    assert [e.time for e in store.query()] == [now[0] - 10.0]
    store.close()


def test_a_burst_of_rejected_frames_is_one_event_and_link_changes_are_events():
    metrics = Metrics()
    recorder = EventRecorder(metrics)
    seen: list[Event] = []
    recorder.sinks.append(seen.append)
    watch = LinkWatch(recorder, {"udp-in": ["zhurong"]}, quiet_s=10.0)
    watch.poll({"udp-in": False}, {}, 0.0)  # first known state down: nothing to report
    watch.poll({"udp-in": True}, {("udp-in", "fecf"): 40}, 1.0)
    for t in range(2, 8):
        watch.poll({"udp-in": True}, {("udp-in", "fecf"): 40 + 50 * t}, float(t))
    watch.poll({"udp-in": False}, {("udp-in", "fecf"): 400}, 30.0)  # after the quiet: a new burst
    assert [(e.event, e.data.get("frames")) for e in seen] == [
        ("link_up", None), ("frames_rejected_burst", 40), ("link_down", None), ("frames_rejected_burst", 10)]
    assert metrics.get("queqiao_events_total", ("zhurong", "medium", "frames_rejected_burst")) == 2


def test_follow_prints_each_event_once():
    pages = [[{"id": 1, "time": 5.0}, {"id": 2, "time": 6.0}], [{"id": 2, "time": 6.0}, {"id": 3, "time": 6.0}], []]
    asked: list[float | None] = []

    def fetch(since):
        asked.append(since)
        return pages[len(asked) - 1]

    follow = iter_follow(fetch, sleep=lambda s: None)
    assert [next(follow)["id"] for _ in range(3)] == [1, 2, 3]
    assert asked[0] is None and 5.99 < asked[1] < 6.0


async def test_daemon_records_fault_limit_and_command_events(tmp_path, monkeypatch):
    monkeypatch.setattr(e2e, "Emulator", functools.partial(Emulator, faults=["stuck:power.battery_voltage=20@t=2"]))
    async with e2e.Station(tmp_path, ["zhurong"], monkeypatch) as station:
        status, sent = await station.call("POST", "/api/v1/commands", body={"spacecraft": "zhurong", "command": "PING"})
        assert status == 202
        await station.until_final(sent["id"])
        names: set[str] = set()
        for _ in range(100):
            station.daemon.event_store.flush()
            status, body = await station.call("GET", "/api/v1/events?spacecraft=zhurong&limit=1000", e2e.VIEWER)
            assert status == 200
            names = {e["event"] for e in body["events"]}
            if {"fault_activated", "limit_critical", "command_completed"} <= names:
                break
            await asyncio.sleep(0.1)
        events = body["events"]
        assert {"fault_activated", "limit_critical", "command_completed"} <= names, names
        critical = [e for e in events if e["event"] == "limit_critical"]
        assert any(e["data"]["parameter"] == "battery_voltage" and e["data"]["value"] == 20 for e in critical)
        fault = next(e for e in events if e["event"] == "fault_activated")
        assert fault["source"] == "onboard" and fault["severity"] == "medium"
        status, body = await station.call("GET", "/api/v1/events?severity=high", e2e.VIEWER)
        assert status == 200 and body["events"] and {e["severity"] for e in body["events"]} == {"high"}
        for query, word in [("severity=loud", "severity"), ("since=yesterday", "since"), ("limit=0", "limit"),
                            ("limit=x", "limit"), ("since=nan", "since"), ("colour=red", "unknown")]:
            status, body = await station.call("GET", "/api/v1/events?" + query, e2e.VIEWER)
            assert status == 400 and word in body["error"], (query, body)
        status, _ = await station.call("GET", "/api/v1/events", None)
        assert status == 401
        metrics = station.daemon.metrics
        assert metrics.get("queqiao_events_total", ("zhurong", "high", "limit_critical")) >= 1
        assert metrics.get("queqiao_events_total", ("zhurong", "informative", "command_completed")) == 1
        # Declared events exist at zero before they ever happen.
        series = metrics.series("queqiao_events_total")
        quiet = [e for e in station.daemon.registry.spacecraft("zhurong").events if e.name not in names]
        assert quiet and all(series[("zhurong", e.severity_name, e.name)] == 0 for e in quiet)
        assert series[("zhurong", "medium", "link_down")] == 0
        exposition = metrics.render().decode()
        families = {f.name: f for f in text_string_to_metric_families(exposition)}
        assert any(s.labels["event"] == "fault_activated" and s.value >= 1 for s in families["queqiao_events"].samples)
        assert "fault_activated" in event_line(fault) and "Z " in event_line(fault)
        out = io.StringIO()
        args = type("Args", (), {"api": station.url, "spacecraft": "zhurong", "severity": "medium", "follow": False,
                                 "limit": 100, "config": None})()
        monkeypatch.setenv("QUEQIAO_API_TOKEN", e2e.VIEWER)
        from groundstation import events_cli
        assert await asyncio.to_thread(events_cli.run, args, out) == 0
        lines = out.getvalue().splitlines()
        assert any("limit_critical" in line and "battery_voltage" in line for line in lines)
        assert not any("command_completed" in line for line in lines)  # informative is below medium
