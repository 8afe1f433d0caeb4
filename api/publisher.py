"""The API's own MQTT link: alarm transitions made by people, and requests to escalate now.

A person's acknowledgement (through the endpoints, an SMS reply or the mobile page) is committed
to the store, whose transitions the rules engine's outbox publishes too; the API publishes it at
once as well (retained, QoS 1, on the alarm's topic), so the notifier stops reminders without
waiting for the outbox. Both messages are the same transition (same ``alarm_id`` and ``seq``),
and consumers apply a ``seq`` once, so the second is a harmless repeat. A transition published
while the broker is away is left to the outbox.

An escalation request has no such second path: :meth:`Publisher.escalate` waits for the broker's
PUBACK and says whether it came, so the officer can be told to phone instead.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading

import paho.mqtt.client as paho

from examwatch import control, mqtt
from examwatch.alarm import AlarmTransition
from examwatch.settings import Settings

log = logging.getLogger("examwatch.api")


class Publisher:
    """One connection, made in the background and kept by paho (it reconnects by itself)."""

    def __init__(self, settings: Settings, ack_timeout_s: float = 3.0) -> None:
        self.settings = settings
        self.ack_timeout_s = ack_timeout_s
        self._client: paho.Client | None = None
        self._lock = threading.Lock()

    def _connected(self) -> paho.Client:
        with self._lock:
            if self._client is None:
                c = mqtt.service_client(self.settings, "api", f"api-{os.getpid()}-{secrets.token_hex(3)}")
                cfg = self.settings.mqtt
                c.reconnect_delay_set(min_delay=1, max_delay=5)
                c.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=True)
                c.loop_start()
                self._client = c
            return self._client

    def start(self) -> None:
        """Connect in the background (the API serves while the broker is away)."""
        self._connected()

    def transition(self, message: AlarmTransition) -> bool:
        """Publish ``message`` retained at QoS 1 without waiting; False when it could not even be queued."""
        info = self._connected().publish(message.topic, message.payload(), qos=1, retain=True)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            log.warning("transition %s not published now (%s); the outbox sends it", message.transition_id,
                        paho.error_string(info.rc))
            return False
        return True

    def escalate(self, alarm_id: int, by: str) -> bool:
        """Ask the notifier to escalate ``alarm_id`` now; True once the broker confirmed it."""
        payload = json.dumps({"alarm_id": alarm_id, "by": by}, ensure_ascii=False).encode()
        info = self._connected().publish(control.ESCALATE, payload, qos=1)
        try:
            info.wait_for_publish(self.ack_timeout_s)
        except (RuntimeError, ValueError) as exc:  # not queued at all: the link is down
            log.error("escalation of alarm %d by %s not sent: %s", alarm_id, by, exc)
            return False
        if not info.is_published():
            log.error("escalation of alarm %d by %s not confirmed by the broker within %.0f s", alarm_id, by,
                      self.ack_timeout_s)
            return False
        return True

    def stop(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
