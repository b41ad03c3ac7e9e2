"""COP-1 (CCSDS 232.1-B-2): FARM-1 on board, FOP-1 on the ground.  Pure state machines.

Neither side does I/O.  FARM-1 takes received TC frames (as their COP-relevant
fields) and says which to accept; its state is what the CLCW reports.  FOP-1
takes commands to send, CLCWs received and timer expiries, and answers with
the frames to transmit and what happened (acknowledged, alerts); the caller
owns the clock, the link and the frame encoding.

Frame kinds: AD = sequence-controlled data (bypass 0, control 0), BD = bypass
data (1, 0), BC = bypass control (1, 1) carrying Unlock (``00``) or Set V(R)
(``82 00 VR``).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from enum import Enum, IntEnum

MODULO = 256
UNLOCK = b"\x00"


def set_vr_command(value: int) -> bytes:
    """BC frame data for 'Set V(R)'."""
    return bytes([0x82, 0x00, value & 0xFF])


class FrameKind(Enum):
    AD = "AD"
    BD = "BD"
    BC = "BC"


def _ahead(a: int, b: int) -> int:
    """How far sequence number ``a`` is ahead of ``b`` (modulo 256, 0..255)."""
    return (a - b) % MODULO


# --------------------------------------------------------------------------- FARM-1


@dataclass
class FarmResult:
    accepted: bool
    reason: str  # "accepted", "duplicate", "gap", "lockout", "wait", "bypass", "unlock", "set_vr", "bad control"


@dataclass
class Farm1:
    """The receiving end.  ``window`` is the FARM sliding window width W (even, 2..254)."""

    window: int = 10
    vr: int = 0
    lockout: bool = False
    wait: bool = False
    retransmit: bool = False
    farm_b_counter: int = 0
    #: The caller clears ``wait`` when it has buffer space again (``buffer_available``).

    def __post_init__(self) -> None:
        if self.window % 2 or not 2 <= self.window <= 254:
            raise ValueError(f"FARM window width must be even, 2..254, not {self.window}")

    def receive(self, kind: FrameKind, ns: int, data: bytes = b"", *, buffer_available: bool = True) -> FarmResult:
        if kind is FrameKind.BD:
            self.farm_b_counter = (self.farm_b_counter + 1) % 4
            return FarmResult(True, "bypass")
        if kind is FrameKind.BC:
            return self._control(data)
        if self.lockout:
            return FarmResult(False, "lockout")
        positive = negative = self.window // 2
        ahead = _ahead(ns, self.vr)
        if ahead == 0:
            if not buffer_available:
                self.wait = self.retransmit = True
                return FarmResult(False, "wait")
            self.vr = (self.vr + 1) % MODULO
            self.retransmit = False
            self.wait = False
            return FarmResult(True, "accepted")
        if ahead < positive:
            self.retransmit = True
            return FarmResult(False, "gap")
        if MODULO - ahead <= negative:
            return FarmResult(False, "duplicate")
        self.lockout = True
        return FarmResult(False, "lockout")

    def _control(self, data: bytes) -> FarmResult:
        if data == UNLOCK:
            self.lockout = self.wait = self.retransmit = False
            self.farm_b_counter = (self.farm_b_counter + 1) % 4
            return FarmResult(True, "unlock")
        if len(data) == 3 and data[:2] == b"\x82\x00":
            if not self.lockout:
                self.vr = data[2]
                self.wait = self.retransmit = False
            self.farm_b_counter = (self.farm_b_counter + 1) % 4
            return FarmResult(True, "set_vr")
        return FarmResult(False, "bad control")

    def clcw_fields(self) -> dict:
        """The COP-1 fields of the CLCW this FARM reports."""
        return {
            "lockout": int(self.lockout), "wait": int(self.wait), "retransmit": int(self.retransmit),
            "farm_b_counter": self.farm_b_counter, "report_value": self.vr,
        }


# --------------------------------------------------------------------------- FOP-1


class FopState(IntEnum):
    ACTIVE = 1
    RETRANSMIT_WITHOUT_WAIT = 2
    RETRANSMIT_WITH_WAIT = 3
    INITIALISING_WITHOUT_BC = 4
    INITIALISING_WITH_BC = 5
    INITIAL = 6


@dataclass
class Transmit:
    """A frame the caller must send now."""

    kind: FrameKind
    ns: int
    data: bytes
    tag: object = None


@dataclass
class FopEvent:
    kind: str  # "acknowledged", "alert", "initialised", "rejected", "withdrawn"
    detail: str = ""
    tag: object = None


@dataclass
class _Sent:
    ns: int
    data: bytes
    tag: object


@dataclass
class Fop1:
    """The sending end, for one virtual channel.

    ``window`` (K) frames may be outstanding; K must not exceed half the FARM's
    window (its positive window), or one lost frame puts the FARM in lockout
    when the frames after it arrive.  Unacknowledged frames are
    retransmitted when the CLCW asks (retransmit flag) or when ``timeout``
    seconds pass, up to ``transmission_limit`` times, then an alert puts the
    FOP back in INITIAL.

    An alert keeps the commands: re-initiating the AD service ("clcw" or
    "unlock") resumes from the V(R) the FARM reports, acknowledges the sent
    frames below it (they are on board) and sends the rest again, in order,
    under the same sequence numbers, so nothing is lost and nothing runs twice.
    Only where the FARM's V(R) is outside what was sent (a rebooted FARM,
    an operator's Set V(R)) is the fate of the sent frames unknown: each is
    then reported ``rejected`` saying so.  :meth:`terminate` ends the service
    and reports every queued command rejected.
    """

    window: int = 5
    timeout: float = 2.0
    transmission_limit: int = 5
    state: FopState = FopState.INITIAL
    vs: int = 0
    nnr: int = 0
    sent: collections.deque = field(default_factory=collections.deque)
    waiting: collections.deque = field(default_factory=collections.deque)
    transmission_count: int = 0
    deadline: float | None = None
    _bc_data: bytes = b""
    _abandoned: set = field(default_factory=set)  # tags of sent frames withdrawn by cancel()

    # ------------------------------------------------------------------ directives

    def initiate(self, now: float, *, mode: str = "clcw", vr: int | None = None) -> tuple[list[Transmit], list[FopEvent]]:
        """Start the AD service: mode "none" (no CLCW check), "clcw" (wait for a matching CLCW),
        "unlock" (send Unlock, wait for a CLCW without lockout) or "set_vr" (send Set V(R) = vr).
        Commands not yet sent stay queued; sent ones are settled by the first CLCW (see the class)."""
        if mode not in ("none", "clcw", "unlock", "set_vr"):
            raise ValueError(f"initiate mode is none, clcw, unlock or set_vr, not {mode!r}")
        self.deadline = None
        self.transmission_count = 0
        if mode == "none":
            events = self._requeue_sent()
            self.vs = self.nnr
            self.state = FopState.ACTIVE
            return self._fill_window(now), events + [FopEvent("initialised", "without CLCW check")]
        if mode == "clcw":
            self.state = FopState.INITIALISING_WITHOUT_BC
            self.deadline = now + self.timeout
            return [], []
        if mode == "unlock":
            return self._send_bc(now, UNLOCK)
        if vr is None:
            raise ValueError("set_vr needs the value")
        events = self._unknown_fate(f"the operator set V(R) to {vr % MODULO}")
        self.vs = self.nnr = vr % MODULO
        transmits, more = self._send_bc(now, set_vr_command(self.vs))
        return transmits, events + more

    def _send_bc(self, now: float, data: bytes) -> tuple[list[Transmit], list[FopEvent]]:
        self.state = FopState.INITIALISING_WITH_BC
        self.transmission_count = 1
        self._bc_data = data
        self.deadline = now + self.timeout
        return [Transmit(FrameKind.BC, 0, data)], []

    def terminate(self) -> list[FopEvent]:
        """End the AD service: every queued command is reported rejected (those already sent may
        have reached the spacecraft, and say so)."""
        events = self._unknown_fate("AD service terminated")
        events += [FopEvent("rejected", "AD service terminated before it was sent", tag) for _, tag in self.waiting]
        self.waiting.clear()
        self.deadline = None
        self.transmission_count = 0
        self.state = FopState.INITIAL
        return events

    def cancel(self, tag: object) -> bool:
        """Withdraw a command (e.g. its verification window closed).  True: it was not sent yet and
        never will be.  False: it was sent; it stays in the window (the FARM may still accept it)
        until the next initialisation, which drops it if the FARM's V(R) shows it never arrived
        (a ``withdrawn`` event) instead of sending it again."""
        for i, (_, queued) in enumerate(self.waiting):
            if queued == tag:
                del self.waiting[i]
                return True
        if any(s.tag == tag for s in self.sent):
            self._abandoned.add(tag)
        return False

    def _unknown_fate(self, why: str) -> list[FopEvent]:
        """Give up the sent, unacknowledged frames: they may or may not be on board."""
        events = [FopEvent("rejected", f"{why}; N(S) = {s.ns} was sent and may have reached the spacecraft",
                           s.tag) for s in self.sent]
        self.sent.clear()
        self._abandoned.clear()
        return events

    def _requeue_sent(self) -> list[FopEvent]:
        """Put the sent, unacknowledged frames back at the head of the queue, in order, except
        those withdrawn meanwhile (:meth:`cancel`)."""
        events = [FopEvent("withdrawn", f"N(S) = {s.ns} never reached the spacecraft", s.tag)
                  for s in self.sent if s.tag in self._abandoned]
        self.waiting.extendleft((s.data, s.tag) for s in reversed(self.sent) if s.tag not in self._abandoned)
        self.sent.clear()
        self._abandoned.clear()
        return events

    def _resume_from(self, nr: int) -> list[FopEvent]:
        """Initialisation confirmed with the FARM at V(R) = ``nr``: what was sent below it is on
        board (acknowledged), the rest goes again from ``nr`` in the same order."""
        events: list[FopEvent] = []
        acked = _ahead(nr, self.nnr)
        if acked <= len(self.sent):
            for _ in range(acked):
                frame = self.sent.popleft()
                self._abandoned.discard(frame.tag)
                events.append(FopEvent("acknowledged", f"N(S) = {frame.ns}", frame.tag))
        else:
            events += self._unknown_fate(f"the spacecraft's V(R) {nr} is outside the frames sent "
                                         f"(N(S) {self.nnr}..{(self.vs - 1) % MODULO})")
        events += self._requeue_sent()
        self.vs = self.nnr = nr
        return events

    def _stale(self, nr: int) -> bool:
        """A CLCW older than one already processed (the downlink reordered or repeated a frame):
        its report value is a little behind N(R)."""
        return 0 < _ahead(self.nnr, nr) <= 2 * self.window

    # ------------------------------------------------------------------ user data

    def submit(self, data: bytes, tag: object, now: float) -> tuple[list[Transmit], list[FopEvent]]:
        """Queue one AD frame's data; frames go out as the window allows."""
        if self.state is FopState.INITIAL:
            return [], [FopEvent("rejected", "AD service not initiated", tag)]
        self.waiting.append((data, tag))
        return self._fill_window(now), []

    def _fill_window(self, now: float) -> list[Transmit]:
        out: list[Transmit] = []
        if self.state is not FopState.ACTIVE:
            return out
        while self.waiting and len(self.sent) < self.window:
            data, tag = self.waiting.popleft()
            frame = _Sent(self.vs, data, tag)
            self.sent.append(frame)
            self.vs = (self.vs + 1) % MODULO
            out.append(Transmit(FrameKind.AD, frame.ns, data, tag))
            if self.deadline is None:
                self.transmission_count = 1
                self.deadline = now + self.timeout
        return out

    def _retransmit_all(self, now: float) -> list[Transmit]:
        self.transmission_count += 1
        self.deadline = now + self.timeout
        return [Transmit(FrameKind.AD, s.ns, s.data, s.tag) for s in self.sent]

    # ------------------------------------------------------------------ CLCW and timer

    def on_clcw(self, clcw: dict, now: float) -> tuple[list[Transmit], list[FopEvent]]:
        """Process a received CLCW (fields lockout, wait, retransmit, report_value)."""
        nr = clcw["report_value"] % MODULO
        events: list[FopEvent] = []
        if self.state is FopState.INITIAL:
            return [], []
        if self.state in (FopState.INITIALISING_WITHOUT_BC, FopState.INITIALISING_WITH_BC):
            if clcw["lockout"] or self._stale(nr):
                return [], []
            if self.state is FopState.INITIALISING_WITHOUT_BC or self._bc_data == UNLOCK:
                events = self._resume_from(nr)
            elif nr != self.vs:
                return [], []  # Set V(R) not in effect yet
            self.state = FopState.ACTIVE
            self.deadline = None
            self.transmission_count = 0
            return self._fill_window(now), events + [FopEvent("initialised", f"V(S) = {self.vs}")]
        if self._stale(nr):
            return [], []
        outstanding = _ahead(self.vs, self.nnr)
        acked = _ahead(nr, self.nnr)
        if acked > outstanding:
            self.state = FopState.INITIAL
            self.deadline = None
            return [], [FopEvent("alert", f"CLCW report value {nr} outside V(S)={self.vs}, NN(R)={self.nnr}")]
        # What the FARM accepted is acknowledged even when the same CLCW reports lockout:
        # those commands are on board.
        for _ in range(acked):
            frame = self.sent.popleft()
            self._abandoned.discard(frame.tag)
            events.append(FopEvent("acknowledged", f"N(S) = {frame.ns}", frame.tag))
        self.nnr = nr
        if clcw["lockout"]:
            self.state = FopState.INITIAL
            self.deadline = None
            return [], events + [FopEvent("alert", "lockout reported by the spacecraft")]
        if acked:
            self.transmission_count = 1
            self.deadline = now + self.timeout if self.sent else None
        out: list[Transmit] = []
        if clcw["retransmit"] and self.sent:
            if clcw["wait"]:
                self.state = FopState.RETRANSMIT_WITH_WAIT
            elif self.state is not FopState.RETRANSMIT_WITHOUT_WAIT or acked:
                # Retransmit once per request: a following CLCW with the flag still set only
                # means the retransmission has not arrived yet (the timer covers its loss).
                self.state = FopState.RETRANSMIT_WITHOUT_WAIT
                out = self._retransmit_all(now)
        else:
            self.state = FopState.ACTIVE
            out = self._fill_window(now)
        return out, events

    def on_timer(self, now: float) -> tuple[list[Transmit], list[FopEvent]]:
        """Call when ``now`` reaches ``deadline``."""
        if self.deadline is None or now < self.deadline:
            return [], []
        if self.state is FopState.INITIALISING_WITHOUT_BC:
            self.state = FopState.INITIAL
            self.deadline = None
            return [], [FopEvent("alert", "no CLCW received to initialise the AD service")]
        if self.state is FopState.INITIALISING_WITH_BC:
            if self.transmission_count >= self.transmission_limit:
                self.state = FopState.INITIAL
                self.deadline = None
                return [], [FopEvent("alert", "BC frame not confirmed within the transmission limit")]
            self.transmission_count += 1
            self.deadline = now + self.timeout
            return [Transmit(FrameKind.BC, 0, self._bc_data)], []
        if not self.sent:
            self.deadline = None
            return [], []
        if self.state is FopState.RETRANSMIT_WITH_WAIT:
            self.deadline = now + self.timeout
            return [], []
        if self.transmission_count >= self.transmission_limit:
            self.state = FopState.INITIAL
            self.deadline = None
            return [], [FopEvent("alert", "transmission limit reached without acknowledgement")]
        self.state = FopState.RETRANSMIT_WITHOUT_WAIT
        return self._retransmit_all(now), []
