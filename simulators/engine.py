"""The simulation engine: every device reports on its cadence, through its own link or its site's.

One asyncio task per site walks the site's devices in phase order: each device reports once
per interval, at its own phase, stamped with the simulated time it was due (so timestamps sit
on the cadence grid whatever the loop's jitter). The lag between due and sent wall time is
measured, which is how "holds its cadence" is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from examwatch import credentials, topics
from examwatch.clock import DrillClock
from examwatch.inventory import Inventory, Site
from examwatch.settings import Settings
from examwatch.timetable import Timetable
from simulators import behaviour
from simulators.behaviour import DeviceSim, SiteDay
from simulators.readings import Payload
from simulators.stats import Stats
from simulators.transport import Link, connect_all, serve

_BATCH_S = 0.02  # devices due within this much wall time are sent in one wake-up


class Mode(StrEnum):
    GATEWAY = "gateway"  # one connection per site, user gw-<site>
    DEVICE = "device"    # one connection per device, user = device id, Last Will on its status topic


@dataclass
class Options:
    mode: Mode = Mode.GATEWAY
    interval_s: int = 5         # simulated seconds between a device's reports
    duration_s: float = 0.0     # simulated seconds to run; 0 = until stopped
    drill: bool = False         # tag every payload "drill": true
    seed: int = 1
    start_at: float | None = None  # simulated start (a drill's faults are timed from it); None = now


@dataclass
class SiteRun:
    site: Site
    day: SiteDay
    devices: list[DeviceSim]
    rng: random.Random
    rogues: list[DeviceSim] = field(default_factory=list)


def _dumps(payload: Payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class Engine:
    """Brings ``inventory`` to life on the (already shifted) ``timetable`` with ``clock``."""

    def __init__(
        self, settings: Settings, inventory: Inventory, timetable: Timetable, clock: DrillClock,
        options: Options,
    ) -> None:
        self.settings = settings
        self.timetable = timetable
        self.clock = clock
        self.options = options
        self.stats = Stats()
        self.sites: list[SiteRun] = []
        self.devices: dict[str, DeviceSim] = {}
        for n, site in enumerate(inventory.sites):
            rng = random.Random(options.seed * 100_003 + n)
            devs = [DeviceSim(d, site.id, rng.uniform(0, options.interval_s)) for d in site.devices]
            devs.sort(key=lambda d: d.phase)
            self.sites.append(SiteRun(site, SiteDay.build(timetable, site), devs, rng))
            self.devices.update((d.id, d) for d in devs)
        self.links: dict[str, Link] = {}
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def add_rogue(self, rogue: DeviceSim, start: float, end: float) -> None:
        """A device the inventory lacks, publishing through its site's gateway in ``[start, end)``."""
        run = next(r for r in self.sites if r.site.id == rogue.site)
        rogue.window = (start, end)
        run.rogues.append(rogue)

    # -- connections ------------------------------------------------------------------------
    def _make_links(self) -> list[Link]:
        secret = self.settings.secret.get_secret_value()
        cfg = self.settings.mqtt
        links: list[Link] = []
        for run in self.sites:
            if self.options.mode is Mode.GATEWAY or run.rogues:
                user = credentials.gateway_user(run.site.id)
                link = Link(cfg, f"sim-{user}", user, credentials.password(secret, user))
                self.links[run.site.id] = link
                links.append(link)
            if self.options.mode is Mode.DEVICE:
                for d in run.devices:
                    password = credentials.password(secret, d.id)
                    link = Link(cfg, f"sim-{d.id}", d.id, password, will_topic=d.prefix + "status")
                    self.links[d.id] = link
                    links.append(link)
        return links

    def link_for(self, dev: DeviceSim) -> Link:
        return self.links[dev.id] if self.options.mode is Mode.DEVICE else self.links[dev.site]

    def _send(self, link: Link, topic: str, payload: bytes, retain: bool = False) -> None:
        if link.publish(topic, payload, retain=retain):
            self.stats.sent += 1
        else:
            self.stats.dropped += 1

    def _announce(self, dev: DeviceSim, online: bool) -> None:
        self._send(self.link_for(dev), dev.prefix + "status",
                   topics.STATUS_ONLINE if online else topics.STATUS_OFFLINE, retain=True)

    async def _relink(self, dev: DeviceSim) -> None:
        await self.links[dev.id].connect()
        self._announce(dev, True)

    # -- reporting --------------------------------------------------------------------------
    def _edges(self, dev: DeviceSim, t: float, payload: Payload) -> tuple[bool, list[Payload]]:
        """Apply effects' edges at ``t``; return whether the device is silent and the edge events."""
        silent, events = False, []
        for eff in dev.effects:
            if not eff.begun and t >= eff.start:
                eff.begun = True
                if eff.silence:
                    self._go_silent(dev, eff.announce)
                events += eff.events(payload, True)
            if eff.begun and not eff.done and t >= eff.end:
                eff.done = True
                if eff.silence:
                    self._come_back(dev, eff.announce)
                events += eff.events(payload, False)
            silent = silent or (eff.silence and eff.active(t))
        return silent, events

    def _go_silent(self, dev: DeviceSim, announce: bool) -> None:
        if self.options.mode is Mode.DEVICE:
            self.links[dev.id].drop()
        elif announce:
            self._announce(dev, False)

    def _come_back(self, dev: DeviceSim, announce: bool) -> None:
        if self.options.mode is Mode.DEVICE:
            task = asyncio.get_running_loop().create_task(self._relink(dev))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif announce:
            self._announce(dev, True)

    def report(self, run: SiteRun, dev: DeviceSim, t: float) -> None:
        """Publish ``dev``'s telemetry and events for simulated time ``t``."""
        if not dev.announced:
            # "online" (retained: the counterpart of the Last Will), from the device's own link or
            # its gateway, just before its first report, so a large district does not start with
            # a burst of them.
            dev.announced = True
            self._announce(dev, True)
        payload, events = behaviour.step(dev, t, run.day, run.rng, self.options.interval_s)
        if self.options.drill:
            payload["drill"] = True
        silent, edge_events = self._edges(dev, t, payload) if dev.effects else (False, [])
        if silent:
            return
        body: Payload | bytes = payload
        for eff in dev.effects:
            if eff.active(t):
                body = eff.telemetry(body, t) if isinstance(body, dict) else body
                events = eff.filter_events(events)
        link = self.link_for(dev)
        self._send(link, dev.prefix + "telemetry", body if isinstance(body, bytes) else _dumps(body))
        for ev in events + edge_events:
            if self.options.drill:
                ev["drill"] = True
            self._send(link, dev.prefix + "event", _dumps(ev))
            self.stats.events += 1

    def _report_rogue(self, run: SiteRun, dev: DeviceSim, t: float) -> None:
        assert dev.window is not None
        if dev.window[0] <= t < dev.window[1]:
            payload, _ = behaviour.step(dev, t, run.day, run.rng, self.options.interval_s)
            if self.options.drill:
                payload["drill"] = True
            self._send(self.links[run.site.id], dev.prefix + "telemetry", _dumps(payload))

    async def _site_loop(self, run: SiteRun, t0: float, end: float) -> None:
        interval = self.options.interval_s
        k = 0
        while not self._stop.is_set():
            base = t0 + k * interval
            if end and base >= end:
                return
            for dev in run.devices:
                due = base + dev.phase
                if end and due >= end:
                    break
                wall_due = self.clock.wall_at(due)
                wait = wall_due - time.time()
                while wait > _BATCH_S:  # a plain timer, cheaper than waiting on the stop event
                    await asyncio.sleep(min(wait, 1.0))
                    if self._stop.is_set():
                        return
                    wait = wall_due - time.time()
                self.report(run, dev, due)
                self.stats.lag(time.time() - wall_due, due)
            for rogue in run.rogues:
                self._report_rogue(run, rogue, base)
            k += 1

    async def run(self, on_connected: Callable[[int], None] | None = None,
                  on_tick: Callable[[Stats, float], None] | None = None) -> Stats:
        """Connect, then report until the duration ends or :meth:`stop`."""
        links = self._make_links()
        await connect_all(links, on_connected)
        # The inventory and the devices live as long as the run: keep the collector from walking
        # them again and again (at province scale a full collection pass took seconds).
        gc.collect()
        gc.freeze()
        # A drill starts where its faults were timed from, catching up on the connection time.
        t0 = self.options.start_at if self.options.start_at is not None else self.clock.now()
        end = t0 + self.options.duration_s if self.options.duration_s else 0.0
        if self.clock.wall_at(t0) - time.time() > 1.0:
            # A drill clock still standing before its start: say "online" for every device now, so
            # the first interval of a compressed run does not carry twice its messages.
            for run in self.sites:
                for dev in run.devices:
                    dev.announced = True
                    self._announce(dev, True)
        self.stats.start(len(self.devices), self.options.interval_s / self.clock.speed)
        misc = asyncio.create_task(serve(links, self._stop))
        ticker = asyncio.create_task(self._ticker(on_tick)) if on_tick else None
        try:
            await asyncio.gather(*(self._site_loop(run, t0, end) for run in self.sites))
            await self._drain(links)
        finally:
            self._stop.set()
            await misc
            if ticker:
                await ticker
            for link in links:
                link.close()
            self.stats.finish()
        return self.stats

    async def _drain(self, links: list[Link], timeout_s: float = 30.0) -> None:
        """Wait until every link has sent what it queued (QoS 1 acknowledged), within a deadline."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(link.queued for link in links if link.wanted):
            await asyncio.sleep(0.05)

    async def _ticker(self, on_tick: Callable[[Stats, float], None]) -> None:
        while not self._stop.is_set():
            on_tick(self.stats, self.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.5)
        on_tick(self.stats, self.clock.now())

    def stop(self) -> None:
        self._stop.set()
