"""docs/mqtt-schema.json matches what a real daemon publishes to a real Mosquitto (docs/MQTT.md)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import jsonschema

from flightsw.runtime import Emulator
from groundstation import daemon as daemon_module
from tests.groundstation.test_daemon import free_port
from tests.groundstation.test_mqtt_publishing import start_daemon
from tests.realcomponents.components import Mosquitto

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "mqtt-schema.json").read_text())


def validator(definition: str) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"})


async def test_published_payloads_match_the_documented_schema(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon_module, "STATUS_PERIOD_S", 0.5)
    udp = free_port()
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        _, stop, task = await start_daemon(tmp_path, "zhurong", udp, broker.port)
        got: dict[str, list[dict]] = {"parameter": [], "onboard": [], "limit": [], "status": []}
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("queqiao/zhurong/#")
            emulator = Emulator("zhurong", downlink=f"udp://127.0.0.1:{udp}", seed=3,
                                faults=["stuck:power.battery_voltage=20@t=1"])
            async with emulator:
                async with asyncio.timeout(30):
                    async for message in client.messages:
                        payload = json.loads(message.payload)
                        leaf = str(message.topic).split("/")[2:]
                        kind = (payload["type"] if leaf == ["events"] else "status" if leaf == ["status"]
                                else "parameter")
                        got[kind].append(payload)
                        if all(len(v) >= 1 for v in got.values()) and len(got["parameter"]) >= 50:
                            break
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        broker.stop()
    for kind, definition in [("parameter", "parameter"), ("onboard", "event"), ("limit", "event"),
                             ("status", "status")]:
        check = validator(definition)
        for payload in got[kind]:
            errors = [e.message for e in check.iter_errors(payload)]
            assert not errors, (kind, payload, errors)
    assert any(p["event"] == "fault_activated" for p in got["onboard"])
    assert any(p["parameter"] == "battery_voltage" and p["to"] == "critical" for p in got["limit"])
    assert any(isinstance(p["value"], str) for p in got["parameter"])  # a state name
    # The schema is strict: an undocumented key is caught.
    assert list(validator("status").iter_errors({**got["status"][0], "extra": 1}))
