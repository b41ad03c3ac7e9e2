"""PUS 1 verification reports and the telecommand acknowledgement flags.

The mission database defines the PUS 1 reports and 17,2 for every APID that takes
commands (``protocols.missions.common.standard_reports``).  A spacecraft whose
definition lacks the start and progress reports (1,3 / 1,4 / 1,5 / 1,6) gets them
made here from the same request-ID, step and failure-code fields, and
:data:`SYNTHESIZED` names them.
"""
from __future__ import annotations

from collections.abc import Sequence
from enum import IntFlag

import construct as cs

from protocols.missions import ServiceReport, Spacecraft
from protocols.missions.common import EXECUTION_FAILURES, U16, _request_id, aux, aux_state


class Ack(IntFlag):
    """Acknowledgement flags of the PUS-C TC secondary header (numbered as ECSS and spacepackets do)."""

    NONE = 0
    ACCEPTANCE = 1
    START = 2
    PROGRESS = 4
    COMPLETION = 8


#: (service, subtype) -> report role.
ROLES = {
    (1, 1): "accepted", (1, 2): "rejected", (1, 3): "started", (1, 4): "start_failed",
    (1, 5): "progress", (1, 6): "progress_failed", (1, 7): "completed", (1, 8): "failed", (17, 2): "ping_reply",
}

#: Report roles this module had to define because the database does not (filled per spacecraft).
SYNTHESIZED: dict[str, list[str]] = {}


def _failure_fields() -> list:
    return [*_request_id(),
            "code" / aux_state(U16, EXECUTION_FAILURES, "Why execution failed"),
            "data" / aux(cs.Int32ub, "", "Failure data")]


def _synthesize(prefix: str, apid: int, subtype: int) -> ServiceReport:
    if subtype == 3:
        return ServiceReport(f"{prefix}_tc_started", apid=apid, service=1, subtype=3, subsystem="obdh",
                             description="Telecommand execution started", fields=_request_id())
    if subtype == 4:
        return ServiceReport(f"{prefix}_tc_start_failed", apid=apid, service=1, subtype=4, subsystem="obdh",
                             description="Telecommand execution start failed", fields=_failure_fields())
    if subtype == 5:
        return ServiceReport(f"{prefix}_tc_progress", apid=apid, service=1, subtype=5, subsystem="obdh",
                             description="Telecommand execution progress",
                             fields=[*_request_id(), "step" / aux(cs.Int16ub, "", "Progress step number")])
    if subtype == 6:
        return ServiceReport(f"{prefix}_tc_progress_failed", apid=apid, service=1, subtype=6, subsystem="obdh",
                             description="Telecommand execution progress failed",
                             fields=[*_request_id(), "step" / aux(cs.Int16ub, "", "Progress step number"),
                                     *_failure_fields()[1:]])
    raise ValueError(subtype)


class ReportTable:
    """Verification and ping reports of one spacecraft, by (APID, role)."""

    def __init__(self, spacecraft: Spacecraft) -> None:
        self.spacecraft = spacecraft
        self._by_key: dict[tuple[int, str], ServiceReport] = {}
        for report in spacecraft.reports or ():
            role = ROLES.get((report.service, report.subtype))
            if role:
                self._by_key[(report.apid, role)] = report
        names = {a.number: a.name for a in spacecraft.apids}
        made: list[str] = []
        for apid in dict.fromkeys(c.apid for c in spacecraft.commands):
            for subtype, role in ((3, "started"), (4, "start_failed"), (5, "progress"), (6, "progress_failed")):
                if (apid, role) not in self._by_key:
                    report = _synthesize(names.get(apid, f"apid{apid}"), apid, subtype)
                    self._by_key[(apid, role)] = report
                    made.append(report.name)
        SYNTHESIZED[spacecraft.name] = made
        #: Where reports about a packet with an unknown APID go: the APID of PING.
        try:
            self.default_apid = spacecraft.command("PING").apid
        except KeyError:
            self.default_apid = spacecraft.commands[0].apid if spacecraft.commands else spacecraft.apids[0].number

    def get(self, apid: int, role: str) -> ServiceReport | None:
        return self._by_key.get((apid, role)) or self._by_key.get((self.default_apid, role))

    @property
    def reports(self) -> Sequence[ServiceReport]:
        return list(self._by_key.values())
