"""The benchmark workload: a 73-byte PUS-C housekeeping packet and its frames.

The packet is written once with protocols.ccsds.pus.tm_packet (primary header,
PUS-C secondary header with CUC 4+2 time, eight housekeeping parameters, packet
error control): 7 + 8 + 8 + 1 = 24 fields, 6 + 13 + 52 + 2 = 73 bytes.
"""
from __future__ import annotations

import construct as cs
import numpy as np

from protocols.ccsds.pus import tm_packet
from protocols.parameters import Limits, Linear, Parameter, States

APID = 0x123
PACKET_LENGTH = 73

HOUSEKEEPING = tm_packet(APID, 3, 25, [
    "hk" / cs.Struct(
        "sid" / cs.Const(1, cs.Int16ub),
        "battery_voltage" / Parameter(cs.Int16ub, unit="V", description="Main bus battery voltage",
                                      calibration=Linear(0.001), limits=Limits(warning=(26, 33.5))),
        "battery_current" / Parameter(cs.Int16sb, unit="A", description="Battery current",
                                      calibration=Linear(0.01)),
        "panel_temperature" / Parameter(cs.Float32b, unit="degC", description="Solar panel temperature"),
        "wheel_speed" / Parameter(cs.Float64b, unit="rpm", description="Reaction wheel speed"),
        "mode" / Parameter(cs.Int8ub, unit="state", description="Operating mode",
                           calibration=States({0: "SAFE", 1: "NOMINAL", 2: "SCIENCE"})),
        "uptime" / Parameter(cs.Int32ub, unit="s", description="Seconds since boot"),
        "payload_status" / cs.Bytes(29),
    ),
])
assert HOUSEKEEPING.sizeof() == PACKET_LENGTH


def packets(count: int, seed: int = 1) -> bytes:
    """``count`` housekeeping packets back to back (built with the codec, checked against construct)."""
    from protocols.codec import PacketCodec

    rng = np.random.default_rng(seed)
    index = np.arange(count)
    columns = {
        "primary.sequence_count": index % 0x4000,
        "secondary.message_counter": index % 0x10000,
        "secondary.time.coarse": 1_000_000 + index,
        "secondary.time.fine": rng.integers(0, 0x10000, count),
        "hk.battery_voltage": np.round(rng.uniform(26, 33, count), 3),
        "hk.battery_current": np.round(rng.uniform(-5, 5, count), 2),
        "hk.panel_temperature": rng.uniform(-40, 80, count).astype(np.float32),
        "hk.wheel_speed": rng.uniform(-6000, 6000, count),
        "hk.mode": rng.integers(0, 3, count),
        "hk.uptime": index,
        "hk.payload_status": rng.integers(0, 256, (count, 29), dtype=np.uint8),
    }
    # Raw columns so the values are exact (engineering ones would round through the calibration).
    raw_columns = dict(columns)
    raw_columns["hk.battery_voltage"] = np.round(columns["hk.battery_voltage"] / 0.001)
    raw_columns["hk.battery_current"] = np.round(columns["hk.battery_current"] / 0.01)
    data = PacketCodec(HOUSEKEEPING).encode_many(raw_columns, raw=True)
    first = data[:PACKET_LENGTH]
    assert HOUSEKEEPING.build(HOUSEKEEPING.parse(first)) == first
    return data
