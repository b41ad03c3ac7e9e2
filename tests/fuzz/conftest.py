"""The fuzz suite reports how many inputs it ran (the figure `make fuzz` records in docs/FUZZING.md)."""
from __future__ import annotations

import json
import os

from tests.fuzz.support import INPUTS, PROFILE

REPORT_ENV = "QUEQIAO_FUZZ_REPORT"


def _write_report(finished: bool) -> None:
    report = os.environ.get(REPORT_ENV)
    if report:
        with open(report, "w") as out:
            json.dump({"profile": PROFILE, "finished": finished, "total": sum(INPUTS.values()),
                       "targets": dict(sorted(INPUTS.items()))}, out, indent=1)


def pytest_runtest_logfinish(nodeid, location):
    _write_report(False)  # a long run shows its progress as it goes


def pytest_terminal_summary(terminalreporter):
    if not INPUTS:
        return
    total = sum(INPUTS.values())
    terminalreporter.write_line(f"fuzz ({PROFILE}): {total:,} inputs over {len(INPUTS)} targets")
    _write_report(True)
