"""The generated ACL on the reading side: who may receive what (the writing side is in test_ingest_rejects).

Each case subscribes a client to filters it must not read, next to a control subscriber that may
(``svc-ingest``), then publishes: once the control has every message, the broker has routed them,
and the client must have received none of them within a further second.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest

from examwatch import credentials
from harness.servers import wait_for
from harness.stack import Stack, device_topic, publish_all, telemetry

ALARM = "exam/v1/_alarm/S01/power_lost/S01-VAULT-PWR1"


class Listener:
    def __init__(self, stack: Stack, username: str, filters: list[str]) -> None:
        self.got: list[str] = []
        self._lock = threading.Lock()
        self.subacks: list[list[int]] = []
        self.client = stack.client(username, on_message=self._on_message, on_subscribe=self._on_subscribe)
        for f in filters:
            self.client.subscribe(f, qos=1)
        wait_for(lambda: len(self.subacks) == len(filters), 10, f"{username}'s SUBACKs")

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.got.append(msg.topic)

    def _on_subscribe(self, _c: paho.Client, _u: object, _mid: int, codes: list[object], _p: object) -> None:
        self.subacks.append([int(getattr(c, "value", c)) for c in codes])  # type: ignore[call-overload]


def _publish_device_and_alarm(stack: Stack) -> list[str]:
    s02 = next(d for d, ref in stack.inventory.devices.items() if ref.site == "S02" and ref.kind == "camera")
    msgs = [(device_topic(stack, s02), telemetry(s02, "camera")),
            (device_topic(stack, "S01-R01-CAM1"), telemetry("S01-R01-CAM1", "camera"))]
    publish_all(stack.gateway("S02"), msgs[:1])
    publish_all(stack.gateway("S01"), msgs[1:])
    publish_all(stack.client(credentials.service_user("rules")), [(ALARM, b"{}")])
    return [msgs[0][0], msgs[1][0], ALARM]


@pytest.mark.parametrize(("username", "filters", "allowed"), [
    # a device reads nothing: not another site's topics, not its own site's, not the alarms
    ("S01-R01-CAM1", ["exam/v1/#", "exam/v1/S02/#", "exam/v1/_alarm/#", "#"], set()),
    # a site gateway publishes its site's devices and reads nothing either
    ("gw-S01", ["exam/v1/#", "exam/v1/S02/#", "exam/v1/_alarm/#"], set()),
    # the notifier reads the alarms only, never device traffic
    ("svc-notifier", ["exam/v1/#"], {ALARM}),
])
def test_a_client_reads_only_what_its_acl_grants(stack: Stack, username: str, filters: list[str],
                                                 allowed: set[str]) -> None:
    control = Listener(stack, credentials.service_user("ingest"), ["exam/v1/#"])
    listener = Listener(stack, username, filters)
    sent = _publish_device_and_alarm(stack)
    wait_for(lambda: set(sent) <= set(control.got), 10, "the control subscriber to get every message")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and set(listener.got) - allowed == set():
        time.sleep(0.05)  # a bounded look for anything the broker should not have sent
    assert set(listener.got) - allowed == set(), f"{username} read {sorted(set(listener.got) - allowed)}"
    if allowed:
        wait_for(lambda: allowed <= set(listener.got), 10, f"{username} to get what it may read")


def test_each_service_reads_what_it_needs(stack: Stack) -> None:
    """ingest, rules and the API read device traffic and alarms; the notifier its alarms."""
    listeners = {svc: Listener(stack, credentials.service_user(svc), ["exam/v1/#"])
                 for svc in ("ingest", "rules", "api", "notifier")}
    sent = _publish_device_and_alarm(stack)
    for svc in ("ingest", "rules", "api"):
        wait_for(lambda s=svc: set(sent) <= set(listeners[s].got), 10, f"svc-{svc} to read every message")
    wait_for(lambda: ALARM in listeners["notifier"].got, 10, "svc-notifier to read the alarm")
    assert set(listeners["notifier"].got) == {ALARM}
