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

# --------------------------------------------------------------------------- event ids
# Event ids 1..0xFF are the standard events every spacecraft shares (mission database,
# protocols/missions/common.py: 1 safe mode entered, 2 left, 3 instrument power,
# 4 HK period changed, 5 HK generation changed, 6 battery low, 7 storage dump
# completed).  The core raises 4, 5 and 7 itself with the same meaning, and uses
# 0x10..0x1F for its own events; mission events start at 0x0100.

EVENT_HK_PERIOD_CHANGED = 0x0004
EVENT_HK_GENERATION_CHANGED = 0x0005
EVENT_STORAGE_DUMP_COMPLETED = 0x0007

EVENT_APP_ERROR = 0x0010          # an app's handler raised (MEDIUM)
EVENT_HK_PROVIDER_FAILED = 0x0011  # a housekeeping provider raised (MEDIUM)
EVENT_STORE_OVERFLOW = 0x0012     # oldest stored items dropped (LOW); data: dropped, dropped_bytes
EVENT_STORE_ITEM_TOO_LARGE = 0x0013  # item larger than the whole store (MEDIUM)
EVENT_LINK_STATE = 0x0014         # link acquired / lost (INFO); data: up, items, used_bytes
EVENT_FAULT_ACTIVATED = 0x0015    # injected fault activated (MEDIUM; HIGH for safe-mode)
EVENT_FAULT_CLEARED = 0x0016      # injected fault cleared (INFO)
