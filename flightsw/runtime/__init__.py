"""The spacecraft runtime: the flight-software core, the mission database and a MissionModel, on links.

- :class:`FlightSoftware` (``core``): one spacecraft without I/O; frames out, TC frames in;
  exact and reproducible with a virtual clock.
- :class:`Emulator` (``emulator``): FlightSoftware on downlink/uplink URLs in real (scaled) time;
  an async context manager, or ``await Emulator(...).run(stop_event)``.
- :class:`GenericModel` (``generic``): the stand-in model for spacecraft without a physical model.

See docs/EMULATOR.md, section "Emulator".
"""
from __future__ import annotations

from flightsw.runtime.core import DEFAULT_BITRATE, FlightSoftware, RuntimeConfig, spacecraft_summary
from flightsw.runtime.emulator import Emulator, EmulatorError, check_link, resolve_spacecraft
from flightsw.runtime.generic import GenericModel
from flightsw.runtime.reports import Ack

__all__ = ["Ack", "DEFAULT_BITRATE", "Emulator", "EmulatorError", "FlightSoftware", "GenericModel", "RuntimeConfig",
           "check_link", "resolve_spacecraft", "spacecraft_summary"]
