"""The load the alarm-latency benchmark (bench/alert_latency.py) runs beside its probes.

- ``Background``: bench.load publisher processes sending current-time telemetry for the district's
  devices at a set rate, on the gateways' connections (``gw-<site>``), so that ingest writes it and
  the rules engine judges it as it would a live district's. They leave out the devices the
  benchmark drives itself (the storage-room power sensors it probes, the jammers it bursts): a
  normal report from the background would clear such an alarm before its SMS went out.
- ``Bursts``: every ``every_s``, N jammers report a fault within one second (N distinct alarms of
  ``jammer_fault``, major, texted to each site's chief examiner; a flood for the notifier once
  ``notify.flood_threshold`` are active), and ``hold_s`` later each reports its recovery. So the
  notifier's flood handling and the SMS path are busy while the probes are measured.
- ``Keeper``: without the simulator nobody else reports the devices the benchmark drives; it sends
  their normal readings every few seconds (the absence rules wait 60 s), except while the
  benchmark holds them in alarm. With the simulator running there is no keeper, and the
  simulator's own reports of those devices (it cannot be told to leave them out) may end a burst
  alarm before its recovery, as they may a probe's (rarely: every interval_s, 5 s).

Everything the benchmark publishes for a device it drives goes through ``Held``, under one lock,
so a keeper's normal report never lands between an alarm and its recovery.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.child import Child
from bench.load import Broker, PublishResult, PublishSpec, start_publisher
from examwatch import topics
from examwatch.inventory import Device, Inventory
from examwatch.kinds import Kind
from simulators.readings import TELEMETRY

#: The burst's rule (config/rules/jammer.yaml): a threshold at any hour, major, routed to the
#: site's chief examiner by SMS; 651 jammers in the sample district, so a burst can be wide.
BURST_RULE = "jammer_fault"
BURST_FAULT_CODE = 3
#: The keeper reports each driven device this often (absence rules: 60 s; site_silent: 30 s).
KEEP_EVERY_S = 5.0
#: A paced publisher runs until it is stopped; this only bounds a forgotten one.
_RUN_FOR_S = 24 * 3600.0

Driven = tuple[str, Device]  # (site, device) of a device the benchmark publishes for itself


def probed_devices(inv: Inventory) -> list[Driven]:
    """The storage-room power sensors ``<site>-VAULT-PWR1`` the probes cut, one per site."""
    return [(s.id, d) for s in inv.sites for d in s.devices if d.id == f"{s.id}-VAULT-PWR1"]


def burst_devices(inv: Inventory, n: int) -> list[Driven]:
    """``n`` jammers taken round robin over the sites, so that a burst reaches every site's chief examiner."""
    per_site = [[(s.id, d) for d in s.devices if d.kind is Kind.JAMMER] for s in inv.sites]
    order = [x for row in itertools.zip_longest(*per_site) for x in row if x is not None]
    if n > len(order):
        raise ValueError(f"a burst of {n} alarms needs {n} jammers; the inventory has {len(order)}")
    return order[:n]


def reading(d: Device, rng: random.Random, **fields: Any) -> bytes:
    """A steady current-time report of ``d`` (simulators.readings), with ``fields`` overriding it."""
    payload = TELEMETRY[d.kind.value](d, time.time_ns() // 1_000_000, rng, 5) | fields
    return json.dumps(payload, separators=(",", ":")).encode()


def publish(gateways: Mapping[str, Any], site: str, d: Device, payload: bytes) -> None:
    """Send ``payload`` as ``d``'s telemetry on its site's gateway connection (QoS 1, as gateways do)."""
    gateways[site].publish(topics.device_topic(site, d.kind.value, d.id, "telemetry"), payload, qos=1)


class Held:
    """The devices the benchmark holds in alarm, and the one lock its reports for them go out under."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    @contextlib.contextmanager
    def alarm(self, device: str) -> Iterator[None]:
        """Publish the alarm inside: from now on the keeper leaves ``device`` alone."""
        with self._lock:
            self._ids.add(device)
            yield

    @contextlib.contextmanager
    def recovery(self, device: str) -> Iterator[None]:
        """Publish the recovery inside: the keeper may report ``device`` again after it."""
        with self._lock:
            yield
            self._ids.discard(device)

    def unless_held(self, device: str, send: Callable[[], object]) -> None:
        """``send()`` unless ``device`` is in an alarm the benchmark raised."""
        with self._lock:
            if device not in self._ids:
                send()


@dataclass(frozen=True)
class Published:
    """What the background publishers sent and the broker acknowledged (QoS 1), counted by them."""

    sent: int
    seconds: float  # first publish → last acknowledgement, over all publishers

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class Background:
    """Paced bench.load publishers: ``rate`` msg/s of live telemetry, split over ``publishers`` processes.

    Processes of their own (bench.child): they share no GIL with the benchmark's probes.
    """

    def __init__(self, broker: Broker, inventory: Path, sites: tuple[str, ...], rate: float, publishers: int,
                 exclude: tuple[str, ...]) -> None:
        n = max(1, min(publishers, len(sites)))
        self.specs = [PublishSpec(broker, inventory, sites[i::n], 1, 0, n, i, rate=rate / n, duration_s=_RUN_FOR_S,
                                  clock="now", exclude=exclude) for i in range(n)]
        self.children: list[Child] = []

    def start(self) -> None:
        """Start every publisher, wait until all are connected, then let them go together."""
        for i, spec in enumerate(self.specs):
            self.children.append(start_publisher(spec, f"telemetry publisher {i}"))
        for c in self.children:
            c.wait_ready()
        for c in self.children:
            c.go()

    @property
    def pids(self) -> dict[str, int]:
        return {f"publisher-{i}": c.pid for i, c in enumerate(self.children)}

    def stop(self) -> Published:
        """Stop the publishers (each waits for its last acknowledgement) and count what they sent."""
        for c in self.children:
            c.close(timeout=150)  # a publisher drains for up to 120 s before it reports
        results = [PublishResult(**c.result(timeout=5)) for c in self.children]
        if not results:
            return Published(0, 0.0)
        span = max(r.last_ack for r in results) - min(r.first_publish for r in results)
        return Published(sum(r.sent for r in results), span)

    def close(self) -> None:
        """Reap the publishers whatever happened (idempotent)."""
        for c in self.children:
            c.close()


class _Loop:
    """A daemon thread running ``body`` until ``stop()``; an error in it is raised again by ``stop()``."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def _guarded(self) -> None:
        try:
            self.body()
        except BaseException as e:  # the benchmark's thread reports it in stop()
            self._error = e

    def body(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"{self._thread.name} failed") from self._error


@dataclass
class BurstCounts:
    """What the bursts published (the alarms they raised are counted in the rules engine's store)."""

    cycles: int = 0
    alarms: int = 0
    recoveries: int = 0
    slowest_spread_ms: float = 0.0  # the longest one burst's N alarm reports took to publish


class Bursts(_Loop):
    """Every ``every_s``: ``per_s`` jammer faults spread over one second, their recoveries ``hold_s`` later.

    ``stop()`` ends after the current burst's recoveries, so no alarm of the benchmark stays open.
    """

    def __init__(self, gateways: Mapping[str, Any], devices: list[Driven], per_s: int, every_s: float,
                 hold_s: float, held: Held) -> None:
        super().__init__("bench-bursts")
        self.gateways, self.devices, self.held = gateways, devices, held
        self.per_s, self.every_s, self.hold_s = per_s, every_s, hold_s
        self.counts = BurstCounts()
        self._rng = random.Random(7)

    def body(self) -> None:
        while True:
            begun = time.monotonic()
            self.counts.slowest_spread_ms = max(self.counts.slowest_spread_ms, self._phase(fault=True))
            self.counts.cycles += 1
            self._stop.wait(self.hold_s)
            self._phase(fault=False)
            if self._stop.wait(max(0.0, begun + self.every_s - time.monotonic())):
                return

    def _phase(self, *, fault: bool) -> float:
        """Every device's fault (or recovery), the i-th at i / per_s s; how long that took, ms."""
        start = time.monotonic()
        for i, (site, d) in enumerate(self.devices):
            delay = start + i / self.per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            payload = reading(d, self._rng, fault_code=BURST_FAULT_CODE if fault else 0)
            with self.held.alarm(d.id) if fault else self.held.recovery(d.id):
                publish(self.gateways, site, d, payload)
            if fault:
                self.counts.alarms += 1
            else:
                self.counts.recoveries += 1
        return (time.monotonic() - start) * 1000


class Keeper(_Loop):
    """Normal readings of the driven devices every ``every_s`` (none while one is held in alarm)."""

    def __init__(self, gateways: Mapping[str, Any], devices: list[Driven], held: Held,
                 every_s: float = KEEP_EVERY_S) -> None:
        super().__init__("bench-keeper")
        self.gateways, self.devices, self.held, self.every_s = gateways, devices, held, every_s
        self._rng = random.Random(11)

    def body(self) -> None:
        while True:
            for site, d in self.devices:
                payload = reading(d, self._rng)
                self.held.unless_held(d.id, functools.partial(publish, self.gateways, site, d, payload))
            if self._stop.wait(self.every_s):
                return


__all__ = ["BURST_RULE", "Background", "BurstCounts", "Bursts", "Held", "Keeper", "Published", "burst_devices",
           "probed_devices"]
