"""Telecommanding: typed commands from the mission database, COP-1 uplink, PUS 1 verification, history.

Per commanded spacecraft a :class:`Commander` builds the PUS-C packet (typed,
range-checked arguments: a bad request never reaches the link), wraps it in a
TC transfer frame (and a CLTU on byte-stream links) and sends it:

- with COP-1 where the downlink carries a CLCW (an OCF in the frame profile):
  FOP-1 (``protocols.ccsds.cop1``) sends type-AD frames in a sliding window and
  retransmits on timeout or when the CLCW asks, recovering from lockout with an
  Unlock and from an alert by re-initialising from the FARM's V(R) with the
  queued commands kept; commands arrive once and in order over a lossy link;
- as type-BD (bypass) frames where no CLCW comes down (the AOS profiles without
  OCF): each command is sent once, and only verification tells whether it arrived.

PUS 1 reports coming down (acceptance, start, progress, completion, or their
failures) advance the command in the history.  Each stage has its own window from
the mission database (``Command.verification``: acceptance, start, completion,
the last possibly depending on the arguments; every progress report restarts it);
a command whose next report does not come within its window is recorded as
``unreported`` when the spacecraft is known to have it (the CLCW acknowledged its
frame, or an earlier PUS 1 report came: reports can be lost on the downlink), else
as ``timed_out`` (a command still queued is then withdrawn, never sent late).  A
report arriving later still corrects either (the history keeps both).  Final results
are counted in ``queqiao_commands_total{spacecraft,command,result}``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from groundstation.history import CommandHistory, HistoryWriteError, corrects
from groundstation.metrics import Metrics
from groundstation.uplink_security import FrameSecurity
from protocols.ccsds.cltu import encode_cltu
from protocols.ccsds.cop1 import Fop1, FopEvent, FrameKind, Transmit
from protocols.ccsds.spacepacket import MAX_SEQUENCE_COUNT
from protocols.ccsds.tcframe import TcFrame, TcProfile
from protocols.errors import ProtocolError
from protocols.missions import Command, PacketDef, Spacecraft

log = logging.getLogger("queqiao.commanding")

#: PUS 1 report subtype -> the history state it means.
REPORT_STATES = {1: "accepted", 2: "rejected", 3: "started", 4: "failed", 5: "progress", 6: "failed",
                 7: "completed", 8: "failed"}
TIMER_PERIOD_S = 0.1


class CommandError(Exception):
    """A command request that cannot be sent; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UplinkSettings:
    tc_vcid: int = 0
    fop_window: int = 5
    fop_timeout_s: float = 2.0
    fop_transmission_limit: int = 5
    #: The completion window of commands whose mission database entry declares none.
    verification_timeout_s: float = 60.0


class FrameSender(Protocol):
    """Where a commander's telecommand frames go: an uplink link, or the network's route to a site.
    ``framing`` "stream" means CLTUs; ``url`` and ``stats.up`` are shown by the API."""

    @property
    def framing(self) -> str: ...

    @property
    def url(self) -> Any: ...

    @property
    def stats(self) -> Any: ...

    def send(self, data: bytes) -> None: ...


class Commander:
    """Commanding of one spacecraft over one uplink."""

    def __init__(self, spacecraft: Spacecraft, link: FrameSender, history: CommandHistory, metrics: Metrics,
                 settings: UplinkSettings = UplinkSettings(), *, clock=time.time,
                 security: FrameSecurity | None = None) -> None:
        self.spacecraft = spacecraft
        self.link = link
        self.history = history
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.cltu = link.framing == "stream"
        self.cop1 = spacecraft.profile.frame.has_ocf
        self.tc_profile = TcProfile()
        self.security = security  # SDLS: each (re)transmission secured with a fresh sequence number
        self.fop = Fop1(window=settings.fop_window, timeout=settings.fop_timeout_s,
                        transmission_limit=settings.fop_transmission_limit)
        self._sequence: dict[int, int] = {}
        self._by_request: dict[tuple[int, int], int] = {}  # (APID, sequence count) -> command id
        self._names: dict[int, str] = {}
        self._waiting: dict[int, tuple[str, float, float]] = {}  # command id -> (stage, window, deadline)
        self._arguments: dict[int, dict[str, Any]] = {}
        self._transmitted: set[int] = set()
        #: Commands known to be on board: the FARM acknowledged their frame, or a PUS 1 report came.
        self._on_board: dict[int, str] = {}  # command id -> how the ground knows
        if self.cop1:
            self._send(*self.fop.initiate(self.clock(), mode="clcw"))
        # Commands left in flight by a previous run can no longer be verified.
        for record in history.in_flight():
            if record.spacecraft == spacecraft.name:
                self._final(record.id, record.command, "timed_out", detail="daemon restarted before verification")

    # ------------------------------------------------------------------ requests

    def command(self, name: str) -> Command:
        try:
            return self.spacecraft.command(name)
        except KeyError:
            known = ", ".join(c.name for c in self.spacecraft.commands)
            raise CommandError(400, f"{self.spacecraft.name} has no command {name!r}; known: {known}") from None

    def submit(self, name: str, arguments: dict[str, Any], operator: str) -> int:
        """Check, record and uplink one command; returns its history id.  CommandError on bad input."""
        command = self.command(name)
        if not isinstance(arguments, dict):
            raise CommandError(400, "arguments must be a JSON object of name: value")
        _check_types(command, arguments)
        seq = self._sequence.get(command.apid, 0)
        try:
            packet = command.build(sequence_count=seq, **arguments)
        except ProtocolError as exc:
            raise CommandError(400, str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise CommandError(400, f"{name}: {exc}") from None
        try:
            command_id = self.history.add(self.spacecraft.name, name, arguments, operator)
        except HistoryWriteError as exc:
            raise CommandError(503, f"{exc}: {name} was not sent") from None  # unrecorded, never uplinked
        self._sequence[command.apid] = (seq + 1) % (MAX_SEQUENCE_COUNT + 1)
        self.history.set_packet(command_id, command.apid, seq)
        self._by_request[(command.apid, seq)] = command_id
        self._names[command_id] = name
        self._arguments[command_id] = arguments
        self._expect(command_id, "acceptance")
        log.info("command %d: %s %s %s by %s", command_id, self.spacecraft.name, name, arguments, operator)
        if self.cop1:
            self._send(*self.fop.submit(packet, command_id, self.clock()))
        else:
            self._send([Transmit(FrameKind.BD, 0, packet, command_id)], [])
        return command_id

    # ------------------------------------------------------------------ link side

    def _frame(self, transmit: Transmit) -> bytes:
        tc = TcFrame(scid=self.spacecraft.scid, vcid=self.settings.tc_vcid, data=transmit.data,
                     frame_sequence_number=transmit.ns if transmit.kind is FrameKind.AD else 0,
                     bypass_flag=0 if transmit.kind is FrameKind.AD else 1,
                     control_command_flag=1 if transmit.kind is FrameKind.BC else 0)
        frame = self.security.secure(tc, self.tc_profile) if self.security else tc.build(self.tc_profile)
        return encode_cltu(frame) if self.cltu else frame

    def _send(self, transmits: list[Transmit], events: list[FopEvent]) -> None:
        for transmit in transmits:
            self.link.send(self._frame(transmit))
            tag = transmit.tag  # the command id a frame carries (None: a control frame)
            if isinstance(tag, int) and tag not in self._transmitted:
                self._transmitted.add(tag)
                self._expect(tag, "acceptance")  # the acceptance window runs from the first uplink
                self.history.advance(tag, "uplinked", detail=f"{transmit.kind.value} frame")
        for event in events:
            tag = event.tag
            if event.kind == "acknowledged" and isinstance(tag, int):
                self._on_board.setdefault(tag, "its FARM-1 accepted the frame")
                record = self.history.advance(tag, "uplinked", detail="received by the spacecraft (COP-1)")
                if record.state == "timed_out":  # the acknowledgement outlived the acceptance window
                    self._final(tag, self._names.get(tag, "?"), "unreported",
                                detail="accepted on board (COP-1) after the ground had timed it out")
            elif event.kind == "withdrawn" and isinstance(tag, int):
                log.info("command %s: %s; withdrawn after its window closed, not sent again", tag, event.detail)
            elif event.kind == "rejected" and isinstance(tag, int):
                self._final(tag, self._names.get(tag, "?"), "failed", detail=f"COP-1: {event.detail}")
            elif event.kind == "alert":
                log.warning("%s COP-1 alert: %s; re-initialising the AD service", self.spacecraft.name, event.detail)
                mode = "unlock" if "lockout" in event.detail else "clcw"
                self._send(*self.fop.initiate(self.clock(), mode=mode))
            elif event.kind == "initialised":
                log.info("%s COP-1 AD service initialised (%s)", self.spacecraft.name, event.detail)

    def on_clcw(self, clcw: dict) -> None:
        if self.cop1:
            self._send(*self.fop.on_clcw(clcw, self.clock()))

    def on_report(self, definition: PacketDef, values: dict) -> None:
        """A PUS 1 (or 17,2) report from the spacecraft."""
        if definition.service != 1:
            return
        key = (int(values.get("report.request.apid", -1)), int(values.get("report.request.sequence_count", -1)))
        command_id = self._by_request.get(key)
        if command_id is None:
            return  # a report for a command this daemon did not send
        state = REPORT_STATES.get(definition.subtype)
        if state is None:
            return
        code = values.get("report.code")
        detail = str(code) if code is not None else ""
        name = self._names.get(command_id, "?")
        if state in ("rejected", "failed", "completed"):
            self._final(command_id, name, state, error_code=_code_number(definition, values), detail=detail)
            return
        self._on_board.setdefault(command_id, f"PUS 1 {state} report")
        record = self.history.advance(command_id, state, detail=detail)
        if record.state != state:
            return  # already final: a late in-flight report after completion or failure changes nothing
        # Accepted: wait for the start; started, or progress: (re)start the completion window.
        self._expect(command_id, "start" if state == "accepted" else "completion")
        if record.stages and record.stages[-1].get("late"):
            log.warning("command %d: %s %s %s reported after it had timed out", command_id,
                        self.spacecraft.name, name, state)

    def _expect(self, command_id: int, stage: str) -> None:
        """Wait for ``stage``'s report for the window the mission database gives it."""
        if command_id not in self._names:
            return
        current = self._waiting.get(command_id)
        if stage == "acceptance" and current is not None and current[0] != "acceptance":
            return  # a retransmission after acceptance does not reopen the acceptance window
        command = self.spacecraft.command(self._names[command_id])
        window = command.verification.window(stage, self._arguments.get(command_id, {}),
                                             self.settings.verification_timeout_s)
        self._waiting[command_id] = (stage, window, self.clock() + window)

    def _final(self, command_id: int, name: str, state: str, *, error_code: int | None = None,
               detail: str = "") -> None:
        record = self.history.get(command_id)
        if record is None:
            return
        late = corrects(record.state, state)
        if record.final and not late:
            return
        self.history.advance(command_id, state, error_code=error_code, detail=detail)
        self.metrics.inc("queqiao_commands_total", (self.spacecraft.name, name, state))
        self._waiting.pop(command_id, None)
        level = logging.INFO if state == "completed" and not late else logging.WARNING
        log.log(level, "command %d: %s %s %s%s%s", command_id, self.spacecraft.name, name, state,
                f" ({detail})" if detail else "", " after it had timed out" if late else "")

    def tick(self) -> None:
        """Timers: COP-1 retransmission and the verification windows."""
        now = self.clock()
        if self.cop1:
            self._send(*self.fop.on_timer(now))
        for command_id, (stage, window, deadline) in list(self._waiting.items()):
            if now < deadline:
                continue
            name = self._names.get(command_id, "?")
            how = self._on_board.get(command_id)
            if how is not None:
                self._final(command_id, name, "unreported",
                            detail=f"accepted on board ({how}); no {stage} report within {window:g} s")
            elif self.cop1 and self.fop.cancel(command_id):  # sent ones: withdrawn if the FARM never took them
                self._final(command_id, name, "timed_out",
                            detail=f"no {stage} report within {window:g} s; never sent, withdrawn from the queue")
            else:
                self._final(command_id, name, "timed_out", detail=f"no {stage} report within {window:g} s")

    async def run_timers(self) -> None:
        while True:
            await asyncio.sleep(TIMER_PERIOD_S)
            self.tick()


def _code_number(definition: PacketDef, values: dict) -> int | None:
    """The numeric failure code of a report (its state name decoded back to the raw code)."""
    code = values.get("report.code")
    if code is None:
        return None
    for path, param in definition.parameters():
        if path == "report.code":
            return int(param.calibration.to_raw(str(code)))
    return None


def _check_types(command: Command, arguments: dict[str, Any]) -> None:
    """Refuse what JSON would otherwise slip through: "5" or true for a number, 1 for a state name,
    and names that are not the command's arguments (a packet's own fields, e.g. source_id or
    sequence_count, are set by the station, never by a request)."""
    unknown = sorted(set(arguments) - set(command.arguments))
    if unknown:
        raise CommandError(400, f"{command.name}: unknown argument(s) {unknown}; {command.name} takes "
                                f"{list(command.arguments) or 'no arguments'}")
    for name, value in arguments.items():
        if isinstance(command.arguments[name].valid, frozenset):
            if not isinstance(value, str):
                raise CommandError(400, f"{command.name}: argument {name!r} must be a state name (a JSON string), "
                                        f"not {json.dumps(value)}; one of {command.arguments[name].describe_range()}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CommandError(400, f"{command.name}: argument {name!r} must be a JSON number, not {json.dumps(value)}")
