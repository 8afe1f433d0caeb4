"""InfluxDB down: alarms still reach MQTT (the notifier's path) at once, and InfluxDB gets them later."""

from __future__ import annotations

import json
import time
from typing import Any

import paho.mqtt.client as paho

from examwatch import credentials, topics
from harness.rules_kit import Heartbeat, RulesProcess, alarms, timetable
from harness.servers import wait_for
from harness.stack import Stack

PWR = "S01-VAULT-PWR1"


def watch(stack: Stack) -> list[dict[str, Any]]:
    """Alarm payloads as the notifier receives them."""
    got: list[dict[str, Any]] = []

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        got.append(json.loads(msg.payload))

    c = stack.client(credentials.service_user("notifier"), on_message=on_message)
    c.subscribe(f"{topics.ROOT}/_alarm/#", qos=1)
    return got


def test_alarm_is_published_while_influxdb_is_down(own_stack: Stack) -> None:
    stack = own_stack
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=3600))
    seen = watch(stack)
    try:
        with Heartbeat(stack) as hb:
            hb.wait_rounds(1)
            proc.start()
            stack.influx_server.stop()
            hb.over[PWR] = {"mains_v": 0.0, "frequency_hz": 0.0, "on_ups": True}
            wait_for(lambda: any(p.get("rule") == "power_mains_lost" and p.get("state") == "firing" for p in seen),
                     15, "the mains alarm on MQTT with InfluxDB down")
            assert any(a["rule"] == "power_mains_lost" for a in alarms(proc.store))
            stack.influx_server.start()
            wait_for(lambda: stack.influx.rows("SELECT count(\"active\") FROM \"alarm\" WHERE \"rule\" = 'power_mains_lost'"),
                     30, "the alarm's point once InfluxDB is back", interval=0.2)
    finally:
        proc.stop()
    firing = [p for p in seen if p.get("rule") == "power_mains_lost" and p.get("state") == "firing"]
    assert len({p["transition_id"] for p in firing}) == 1
