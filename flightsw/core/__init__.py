"""The flight-software core: simulated time, software bus, scheduler table, apps,
housekeeping and event apps, onboard storage and fault injection.

Nothing here knows a packet layout; mission models plug values in through the
housekeeping provider and take results out through sinks.  See docs/EMULATOR.md.
"""
from __future__ import annotations

from flightsw.core.app import APPS, App, AppRegistry, Executive
from flightsw.core.bus import Message, MessageType, Pipe, SoftwareBus
from flightsw.core.events import Event, EventApp, Severity
from flightsw.core.faults import Fault, FaultApp, FaultSet, FaultSpec, FaultSpecError, parse_fault
from flightsw.core.housekeeping import HkPacket, HousekeepingApp
from flightsw.core.scheduler import ScheduleEntry, Scheduler
from flightsw.core.storage import OnboardStore, PassSchedule, StorageApp, StoredItem
from flightsw.core.time import (
                                CCSDS_EPOCH,
                                LEAP_SECONDS,
                                CucFormat,
                                Epoch,
                                OnboardClock,
                                OnboardTime,
                                SimClock,
                                tai_minus_utc,
)

__all__ = [
    "APPS", "App", "AppRegistry", "Executive",
    "Message", "MessageType", "Pipe", "SoftwareBus",
    "Event", "EventApp", "Severity",
    "Fault", "FaultApp", "FaultSet", "FaultSpec", "FaultSpecError", "parse_fault",
    "HkPacket", "HousekeepingApp",
    "ScheduleEntry", "Scheduler",
    "OnboardStore", "PassSchedule", "StorageApp", "StoredItem",
    "CCSDS_EPOCH", "LEAP_SECONDS", "CucFormat", "Epoch", "OnboardClock", "OnboardTime", "SimClock", "tai_minus_utc",
]
