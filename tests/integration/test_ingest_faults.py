"""Nothing is lost: InfluxDB outage under load, ingest SIGKILL under load, SIGTERM flush.

Every published message is a distinct point (device, timestamp), so the point count in
InfluxDB is the proof: it must equal the number of messages published.
"""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest

from harness.servers import wait_for
from harness.stack import Stack, device_topic, publish_all, telemetry


class Load:
    """Publishes camera telemetry at a steady rate from one site gateway until stopped."""

    def __init__(self, stack: Stack, rate: int) -> None:
        self.gw = stack.gateway("S01")
        self.devices = [d for d, ref in stack.inventory.devices.items() if ref.site == "S01" and ref.kind == "camera"]
        self.topics = [device_topic(stack, d) for d in self.devices]
        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._base = time.time_ns() // 1_000_000 - 3_600_000

    def _run(self) -> None:
        chunk = max(self.rate // 10, 1)
        next_at = time.monotonic()
        while not self._stop.is_set():
            msgs = []
            for _ in range(chunk):
                i = self.sent + len(msgs)
                d = i % len(self.devices)
                msgs.append((self.topics[d], telemetry(self.devices[d], "camera", ts_ms=self._base + i)))
            publish_all(self.gw, msgs)
            self.sent += len(msgs)
            next_at += chunk / self.rate
            self._stop.wait(max(0.0, next_at - time.monotonic()))  # pacing, not synchronisation

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_influxdb_down_60s_under_load_loses_nothing(own_stack: Stack) -> None:
    stack = own_stack
    stack.start_ingest()
    server = stack.influx_server
    with Load(stack, rate=400) as load:
        wait_for(lambda: load.sent >= 1000, 30, "load to start")
        server.stop()
        outage_ends = time.monotonic() + 60
        spool = stack.root / "spool" / "1"
        wait_for(lambda: any(spool.glob("*.lp")), 30, "ingest to spool")
        wait_for(lambda: time.monotonic() >= outage_ends, 70, "the 60 s outage")
        sent_during_outage = load.sent
        server.start()
        wait_for(lambda: load.sent >= sent_during_outage + 1000, 30, "load after the outage")
    stack.wait_count("camera", load.sent, timeout=120)
    assert stack.count("camera") == load.sent
    wait_for(lambda: not any(spool.glob("*.lp")), 30, "the spool to drain")
    spooled = stack.influx.rows('SELECT max("spooled") FROM "ingest_stats"')
    assert spooled[0]["max"] > 0


@pytest.mark.slow
def test_ingest_sigkill_under_load_loses_nothing(own_stack: Stack) -> None:
    stack = own_stack
    ingest = stack.start_ingest()
    with Load(stack, rate=1000) as load:
        for _ in range(2):
            target = load.sent + 2000
            wait_for(lambda t=target: load.sent >= t, 30, "load")
            ingest.kill()
            ingest.start(timeout=30)
        wait_for(lambda: load.sent >= target + 2000, 30, "load after the last restart")
    stack.wait_count("camera", load.sent, timeout=120)
    assert stack.count("camera") == load.sent


def test_sigterm_flushes_acks_and_disconnects(stack: Stack) -> None:
    ingest = stack.start_ingest()
    gw = stack.gateway("S01")
    base = time.time_ns() // 1_000_000 - 60_000
    msgs = [
        (device_topic(stack, "S01-R01-CAM1"), telemetry("S01-R01-CAM1", "camera", ts_ms=base + i)) for i in range(3000)
    ]
    publish_all(gw, msgs)
    assert ingest.proc is not None
    ingest.stop(signal.SIGTERM)
    log = (ingest.root / f"{ingest.name}.out").read_text()
    m = re.search(r"stopped: (\d+) received \((\d+) on service topics, not stored\), \d+ points written, "
                  r"(\d+) in spool", log)
    assert m, log[-1000:]
    received, service, spooled = int(m.group(1)), int(m.group(2)), int(m.group(3))
    assert (service, spooled) == (0, 0)
    assert stack.count("camera") == received  # everything taken was written before exit
    ingest.start(timeout=30)  # the rest waited in the persistent session
    stack.wait_count("camera", len(msgs))
    assert stack.count("camera") == len(msgs)


def test_broker_restart_loses_nothing(stack: Stack) -> None:
    """The broker restarts under ingest (SIGTERM: it saves the sessions): ingest reconnects by itself to
    the session the broker kept, and every message published before and after lands once."""
    ingest = stack.start_ingest()
    base = time.time_ns() // 1_000_000 - 60_000
    devices = [d for d, ref in stack.inventory.devices.items() if ref.site == "S01" and ref.kind == "camera"]

    def batch(start: int, n: int) -> list[tuple[str, bytes]]:
        return [(device_topic(stack, devices[i % len(devices)]),
                 telemetry(devices[i % len(devices)], "camera", ts_ms=base + i)) for i in range(start, start + n)]

    publish_all(stack.gateway("S01"), batch(0, 5000))
    stack.mosquitto.stop()  # what ingest has not acknowledged yet stays in its saved session
    stack.mosquitto.start()
    log = ingest.root / f"{ingest.name}.out"
    wait_for(lambda: "connected (session present: True)" in log.read_text(), 30, "ingest to reconnect to its session")
    assert "connection to the broker lost" in log.read_text()
    publish_all(stack.gateway("S01"), batch(5000, 2000))
    stack.wait_count("camera", 7000)
    assert stack.count("camera") == 7000


def test_a_broker_that_lost_the_session_gets_a_new_one(stack: Stack) -> None:
    """SIGKILL before the broker saved anything: the session is gone. Ingest reconnects to a new one
    (its acknowledgements of the old session are dropped, not sent as the new session's), and
    subscribes again, so what is published next lands."""
    ingest = stack.start_ingest()
    log = ingest.root / f"{ingest.name}.out"
    base = time.time_ns() // 1_000_000 - 60_000
    publish_all(stack.gateway("S01"), [(device_topic(stack, "S01-R01-CAM1"),
                                        telemetry("S01-R01-CAM1", "camera", ts_ms=base + i)) for i in range(500)])
    stack.mosquitto.kill()
    stack.mosquitto.start()
    wait_for(lambda: log.read_text().count("connected (session present: False)") == 2, 30,
             "ingest to connect to a new session")
    publish_all(stack.gateway("S01"), [(device_topic(stack, "S01-R01-CAM2"),
                                        telemetry("S01-R01-CAM2", "camera", ts_ms=base + i)) for i in range(500)])
    stack.wait_count("camera", 500, where="device = 'S01-R01-CAM2'")
    assert stack.count("camera", "device = 'S01-R01-CAM2'") == 500
