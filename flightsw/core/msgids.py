"""Message ids of the core apps on the software bus.

cFS convention: 0x18xx command/wake-up messages, 0x08xx telemetry-like messages.
Mission apps take their ids from 0x1900/0x0900 upwards.
"""
from __future__ import annotations

#: Scheduler wake-up for the housekeeping app (checks which packets are due).
MID_HK_WAKEUP = 0x1880
#: Scheduler wake-up asking every app for its own housekeeping counters.
MID_SEND_APP_HK = 0x1881
#: Scheduler wake-up for a mission model's physics step.
MID_MODEL_STEP = 0x1882
#: Scheduler wake-up for the fault set (time-triggered activations).
MID_FAULT_CHECK = 0x1883
#: Scheduler wake-up for onboard storage / link state (pass start/end).
MID_LINK_CHECK = 0x1884

#: Telemetry item produced onboard (payload: bytes), consumed by the link/storage app.
MID_TM_ITEM = 0x0880

#: First id free for mission apps.
MID_MISSION_BASE_CMD = 0x1900
MID_MISSION_BASE_TLM = 0x0900
