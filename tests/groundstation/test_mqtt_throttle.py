"""MQTT throttling: on change, at most rate_hz, latest held-back value flushed, limit changes immediate."""
from __future__ import annotations

import json

from groundstation.mqtt_sink import MqttPublisher


class RecordingLink:
    def __init__(self):
        self.sent = []

    def publish(self, topic, payload, *, retain=False):
        self.sent.append((topic, json.loads(payload), retain))


def make(rate_hz=1.0, on_change=True):
    link = RecordingLink()
    return MqttPublisher("mqtt://127.0.0.1:1883/queqiao", rate_hz=rate_hz, on_change=on_change, link=link), link


def offer(pub, value, now, limit=0):
    return pub.parameter("zhurong", "power", "battery_voltage", value=value, raw=int(value * 1000), unit="V",
                         onboard_time=1.0e9, ground_time=1.7e9, limit=limit, now=now)


def test_first_value_goes_out_with_the_contract_fields():
    pub, link = make()
    assert offer(pub, 28.5, now=0.0)
    topic, body, retain = link.sent[0]
    assert topic == "queqiao/zhurong/power/battery_voltage" and retain
    assert body == {"value": 28.5, "raw": 28500, "unit": "V", "onboard_time": 1.0e9, "ground_time": 1.7e9,
                    "limit": "nominal"}


def test_unchanged_values_are_not_repeated_and_rate_is_capped():
    pub, link = make(rate_hz=1.0)
    offer(pub, 28.5, now=0.0)
    assert not offer(pub, 28.5, now=0.5)       # unchanged
    assert not offer(pub, 28.6, now=0.6)       # changed, but within 1 s: held
    assert not offer(pub, 28.7, now=0.8)       # newer value replaces the held one
    assert pub.flush_due(now=0.9) == 0
    assert pub.flush_due(now=1.0) == 1
    assert [m[1]["value"] for m in link.sent] == [28.5, 28.7]


def test_limit_change_bypasses_the_rate_limit():
    pub, link = make(rate_hz=1.0)
    offer(pub, 28.5, now=0.0)
    assert offer(pub, 25.0, now=0.1, limit=1)
    assert link.sent[-1][1]["limit"] == "warning"


def test_without_on_change_every_interval_publishes():
    pub, link = make(rate_hz=2.0, on_change=False)
    for i in range(10):
        offer(pub, 28.5, now=i * 0.25)
    pub.flush_all()
    assert len(link.sent) == 6  # 0, .5, 1, 1.5, 2 and the held 2.25 on the final flush
