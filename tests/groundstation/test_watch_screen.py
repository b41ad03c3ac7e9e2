"""watch's ordering, paging and screen: alarms first and pinned, state names, a 24-line fit."""
from __future__ import annotations

import io

from rich.console import Console

from groundstation.watch import Row, ordered, page, render, state_names


def rows(nominal: int = 40) -> list[Row]:
    out = [Row("thermal", f"t{i:02d}", float(i), "degC", 0, 1000.0) for i in range(nominal)]
    out += [Row("power", "battery_voltage", 20.0, "V", 2, 1000.0), Row("thermal", "t_warm", 61.0, "degC", 1, 1000.0),
            Row("mobility", "rover_mode", 1.0, "", 0, 1000.0)]
    return out


def test_off_nominal_first_then_by_subsystem_and_name():
    names = [r.parameter for r in ordered(rows(3))]
    assert names == ["battery_voltage", "t_warm", "rover_mode", "t00", "t01", "t02"]
    assert [r.parameter for r in ordered(rows(3), "power")] == ["battery_voltage"]


def test_alarms_are_pinned_on_every_page_and_nominal_rows_are_paged():
    chosen = ordered(rows(40))
    first, number, pages = page(chosen, 12, 0)
    assert (number, pages) == (0, 5)  # 41 nominal rows, 10 a page below the 2 alarms
    assert [r.parameter for r in first[:2]] == ["battery_voltage", "t_warm"] and len(first) == 12
    last, number, _ = page(chosen, 12, 4)
    assert number == 4 and [r.parameter for r in last] == ["battery_voltage", "t_warm", "t39"]
    assert page(chosen, 12, 5)[1] == 0  # pages wrap
    seen = {r.parameter for n in range(pages) for r in page(chosen, 12, n)[0]}
    assert len(seen) == len(chosen)
    crowded = [Row("s", f"p{i}", 1.0, "", 2) for i in range(30)]
    assert page(crowded, 12, 3) == (crowded[:12], 0, 1)  # more alarms than lines: the alarms, nothing else


def test_a_24_line_screen_shows_the_alarm_with_state_names_and_the_summary():
    states = state_names("zhurong")
    mode = next(key for key in states if key[1] == "rover_mode")
    data = rows(118) + [Row(mode[0], "rover_mode", 1.0, "", 0, 1000.0)]
    console = Console(file=io.StringIO(), width=100, height=24, color_system=None)
    console.print(render(data, "zhurong", 1005.0, height=24, states=states, events=["an event line"]))
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 24
    assert lines[0].startswith("zhurong: 122 parameters · 1 critical · 1 warning · 120 nominal · page 1/")
    body = "\n".join(lines)
    assert "battery_voltage" in lines[3] and "CRITICAL" in lines[3]  # first row under the table header
    assert "an event line" in body and "events" in body
    console = Console(file=io.StringIO(), width=100, height=24, color_system=None)
    console.print(render(data, "zhurong", 1005.0, height=24, states=states, subsystem=mode[0]))
    out = console.file.getvalue()
    assert states[mode][1] in out and " 1 state" not in out
