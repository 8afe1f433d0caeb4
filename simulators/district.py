"""Publish a district's telemetry: one gateway connection per site, every device each interval."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable

from examwatch import credentials, mqtt, topics
from examwatch.inventory import Inventory, Site
from examwatch.settings import Settings
from simulators.readings import TELEMETRY

log = logging.getLogger("examwatch.simulate")


class SiteGateway:
    """A site's reporting gateway: one MQTT connection that publishes for all the site's devices."""

    def __init__(self, settings: Settings, site: Site, seed: int) -> None:
        self.site = site
        self.rng = random.Random(seed)
        user = credentials.gateway_user(site.id)
        self.client = mqtt.client(
            settings.mqtt, f"sim-{user}", user, credentials.password(settings.secret.get_secret_value(), user)
        )
        self.client.max_queued_messages_set(0)
        self.settings = settings

    def connect(self) -> None:
        mqtt.connect_and_wait(self.client, self.settings.mqtt, clean_start=True)
        for d in self.site.devices:
            topic = topics.device_topic(self.site.id, d.kind.value, d.id, "status")
            self.client.publish(topic, topics.STATUS_ONLINE, qos=1, retain=True)

    def publish_all(self, interval_s: int) -> int:
        ts = time.time_ns() // 1_000_000
        for d in self.site.devices:
            payload = TELEMETRY[d.kind.value](d, ts, self.rng, interval_s)
            topic = topics.device_topic(self.site.id, d.kind.value, d.id, "telemetry")
            self.client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1)
        return len(self.site.devices)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(
    settings: Settings,
    inventory: Inventory,
    interval_s: int,
    rounds: int,
    stop: threading.Event,
    progress: Callable[[int], None],
) -> int:
    """Publish every device's telemetry every ``interval_s`` for ``rounds`` rounds (0 = until stopped)."""
    gateways = [SiteGateway(settings, s, seed=n) for n, s in enumerate(inventory.sites)]
    for g in gateways:
        g.connect()
    sent, done = 0, 0
    next_round = time.monotonic()
    try:
        while not stop.is_set() and (rounds == 0 or done < rounds):
            sent += sum(g.publish_all(interval_s) for g in gateways)
            done += 1
            progress(sent)
            next_round += interval_s
            stop.wait(max(0.0, next_round - time.monotonic()))
    finally:
        for g in gateways:
            g.close()
    return sent
