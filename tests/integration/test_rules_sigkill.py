"""SIGKILL the rules engine under load and restart it: no transition lost, none emitted twice."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import paho.mqtt.client as paho
import pytest

from examwatch import credentials
from harness.rules_kit import TEST_RULES, Heartbeat, RulesProcess, timetable, transitions
from harness.servers import wait_for
from harness.stack import Stack, device_topic, publish_all, telemetry

POWER = ["S01-VAULT-PWR1", "S02-VAULT-PWR1", "S03-VAULT-PWR1"]
TOGGLES = 2000  # per device: mains lost, back, lost, … each one a transition


def mains(proc: RulesProcess) -> list[dict[str, Any]]:
    return [t for t in transitions(proc.store) if t["rule"] == "power_mains_lost"]


@pytest.mark.slow
def test_sigkill_under_load_loses_and_repeats_nothing(stack: Stack) -> None:
    rules: dict[str, list[dict[str, Any]]] = {
        **TEST_RULES,
        "power": [
            {
                "name": "power_mains_lost",
                "type": "threshold",
                "field": "mains_v",
                "levels": [{"severity": "critical", "below": 187}],
                "clear": {"above": 200},
            }
        ],
    }
    proc = RulesProcess(stack, timetable(time.time(), start_in_s=-60), rules)
    retained: dict[str, dict[str, Any]] = {}

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        retained[msg.topic] = json.loads(msg.payload)

    c = stack.client(credentials.service_user("notifier"), on_message=on_message)
    c.subscribe("exam/v1/_alarm/+/power_mains_lost/#", qos=1)
    try:
        with Heartbeat(stack) as hb:
            hb.skip.update(POWER)
            hb.wait_rounds(1)
            proc.start()
            gw = {dev: stack.gateway(dev[:3]) for dev in POWER}
            base_ms = time.time_ns() // 1_000_000 - 10 * TOGGLES
            flood = threading.Thread(
                target=lambda: [
                    publish_all(
                        gw[dev],
                        [
                            (
                                device_topic(stack, dev),
                                # device time moves on with every report, as a real sensor's does
                                telemetry(dev, "power", ts_ms=base_ms + i, mains_v=0.0 if i % 2 == 0 else 220.0),
                            )
                            for i in range(TOGGLES)
                        ],
                    )
                    for dev in POWER
                ]
            )
            flood.start()
            wait_for(lambda: len(mains(proc)) >= 300, 60, "transitions before the kill", interval=0.05)
            proc.stop(signal.SIGKILL)
            killed_at = len(mains(proc))
            proc.start()
            flood.join(120)
            expected = TOGGLES * len(POWER)
            wait_for(
                lambda: len(mains(proc)) >= expected,
                120,
                f"{expected} transitions in the store",
                interval=0.2,
            )
            time.sleep(0.5)  # anything beyond the expected count would be a repeat: give it a chance to show
            stored = mains(proc)
            assert killed_at < expected, "the kill came too late to test anything"
            assert len(stored) == expected
            per_device = {dev: [t["state"] for t in stored if t["subject"] == dev] for dev in POWER}
            for states in per_device.values():
                assert states == ["firing", "resolved"] * (TOGGLES // 2)

            def influx_count() -> int:
                rows = stack.influx.rows(
                    'SELECT count("alarm_id") FROM "alarm" WHERE "rule" = \'power_mains_lost\''
                )
                return int(rows[0]["count"]) if rows else 0

            wait_for(lambda: influx_count() >= expected, 60, "every transition in InfluxDB", interval=0.2)
            assert influx_count() == expected
            wait_for(lambda: all(t["sent"] for t in mains(proc)), 30, "the outbox to drain")
            for dev in POWER:
                topic = f"exam/v1/_alarm/{dev[:3]}/power_mains_lost/{dev}"
                wait_for(
                    lambda t=topic: retained.get(t, {}).get("state") == "resolved", 10, f"{topic} resolved"
                )
    finally:
        proc.stop()
