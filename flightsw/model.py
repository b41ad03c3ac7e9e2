"""The seam between the emulator runtime and a spacecraft's physical model.

The runtime (flightsw/runtime) owns everything every spacecraft does alike:
clocks, scheduler, housekeeping periods and enables, packet building from the
mission database, events as PUS 5, telecommand reception (FARM-1, CLTU),
verification reports (PUS 1), onboard storage and dumps, links, faults on
frames.  A :class:`MissionModel` owns what makes one spacecraft itself: its
physics and the values of its housekeeping parameters, and the commands only
it understands (drive the rover, point the camera...).

Models are deterministic under their seed and never read the wall clock:
time reaches them only through :meth:`step`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from protocols.missions import Spacecraft

#: Commands the runtime executes itself (a model raises NotMine for them).
RUNTIME_COMMANDS = frozenset({"PING", "SET_HK_PERIOD", "ENABLE_HK", "DISABLE_HK", "ENTER_SAFE_MODE",
                              "LEAVE_SAFE_MODE", "DUMP_STORAGE", "SET_FAULT"})

#: Events a model raises: (event name from the mission database, auxiliary data in engineering units).
EmitEvent = Callable[..., None]


@dataclass
class CommandOutcome:
    """What a command did.

    ``ok`` False with ``error_code`` (from the mission's verification error codes)
    gives a PUS 1 failure report.  ``duration`` > 0 makes the runtime report
    start, then progress every ``progress_step`` seconds, then completion after
    ``duration`` seconds of simulated time (a drive takes a while).
    """

    ok: bool = True
    error_code: int = 0
    detail: str = ""
    duration: float = 0.0
    progress_step: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


class NotMine(Exception):
    """Raised by :meth:`MissionModel.execute` for a command the runtime should handle itself."""


class MissionModel(ABC):
    """Base class of a spacecraft's physical model."""

    #: The mission database name of the spacecraft this model animates.
    spacecraft_name: ClassVar[str]

    def __init__(self, spacecraft: Spacecraft, *, seed: int, start_utc: datetime, emit: EmitEvent,
                 faults: Any = None) -> None:
        self.spacecraft = spacecraft
        self.seed = seed
        self.start_utc = start_utc
        self.emit = emit
        #: flightsw.core.faults.FaultSet (or None): apply(param, value), extra_heat_w(node), ...
        self.faults = faults
        self.mode = "NOMINAL"

    @abstractmethod
    def step(self, t: float, dt: float) -> None:
        """Advance the physics to simulated time ``t`` (seconds since start) by ``dt``."""

    @abstractmethod
    def housekeeping(self, packet: str) -> Mapping[str, Any]:
        """Engineering values for housekeeping packet ``packet``: every field of its ``hk`` struct."""

    def execute(self, command: str, arguments: Mapping[str, Any]) -> CommandOutcome:
        """Carry out a mission command; raise :class:`NotMine` for the runtime's own commands."""
        raise NotMine(command)

    def enter_safe_mode(self, reason: str) -> None:
        """Shed non-essential loads (instruments off, drives stopped)."""
        self.mode = "SAFE"

    def exit_safe_mode(self) -> None:
        self.mode = "NOMINAL"

    def light_time_s(self) -> float | None:
        """One-way light time to Earth now, where the model knows it."""
        return None


#: Model classes by spacecraft name (filled by flightsw.missions).
MODELS: dict[str, type[MissionModel]] = {}


def register_model(cls: type[MissionModel]) -> type[MissionModel]:
    """Class decorator: make ``cls`` the model of ``cls.spacecraft_name``."""
    MODELS[cls.spacecraft_name] = cls
    return cls
