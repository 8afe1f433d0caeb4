"""Run the notifier: alarm transitions from MQTT → notification rows in the store → SMS, until SIGTERM.

MQTT v5, user svc-notifier, a persistent session (client id ``notify-<worker>``) on the shared
subscription ``$share/notify/exam/v1/_alarm/#``. The main thread takes what arrived, applies it
in one store transaction, commits, then acknowledges the messages and hands the new rows to the
sender thread: a SIGKILL before the commit gets the messages again, after it finds the rows in
the outbox. Reminders and escalations wait on a heap of deadlines (rebuilt from the store at
start), so the loop sleeps exactly until the next one or the next message, and never polls.
Its store is its own (``notify.store_url``, by default a SQLite file of its own): sharing one
file with a busy rules engine, which holds the write lock for whole commit intervals, the
notifier's commit for an alarm took p99 5–6 s; in its own file p99 2–19 ms
(``bench/notify_store``, 2-core machine under load). Every decision by time is made on
``settings.clock`` (a drill's clock in a compressed drill). SIGHUP, or a request from the API
on ``exam/v1/_control/reload/notifier`` (examwatch.control), re-reads the roster; a broken
roster is logged (and answered) and the running one stays.
"""

from __future__ import annotations

import heapq
import json
import logging
import sys
import threading

import paho.mqtt.client as paho
import pydantic
import sqlalchemy as sa

from examwatch import control, kannel, links, mqtt
from examwatch import inventory as inventory_file
from examwatch import roster as roster_file
from examwatch.alarm import ALARM_TOPICS, AlarmTransition
from examwatch.clock import Clock, now_ns, wait_s
from examwatch.datafile import DataFileError
from examwatch.inbox import Inbox
from examwatch.inventory import Inventory
from examwatch.roster import Roster
from examwatch.settings import Settings
from examwatch.signals import reload_on_hangup, stop_on_signals
from examwatch.store import open_store, writing
from notify import providers
from notify.planner import Planned, Planner
from notify.sender import Sender, set_health

log = logging.getLogger("examwatch.notify")


class EscalateRequest(pydantic.BaseModel):
    """A request, by SMS reply ``0`` through the API, to escalate an alarm now (``control.ESCALATE``)."""

    model_config = pydantic.ConfigDict(extra="ignore")
    alarm_id: int = pydantic.Field(ge=1)
    by: str = pydantic.Field(min_length=1, max_length=64)


SHARE_GROUP = "notify"
RELOAD_TOPIC = control.reload_topic("notifier")
_S = 1_000_000_000
Item = tuple[str, bytes, int, int]
# One batch is one store transaction: bounded, so the write lock (the API records delivery
# reports and replies in the same store) is never held long.
BATCH = 100


class Service:
    def __init__(self, settings: Settings, inventory: Inventory, roster: Roster,
                 provider: providers.Provider | None = None, clock: Clock | None = None) -> None:
        cfg = settings.notify
        self.settings = settings
        self.clock = clock if clock is not None else settings.clock.make()
        secret = settings.secret.get_secret_value()
        dlr_base = kannel.callback_base(settings) if cfg.delivery_reports else ""
        self.provider = provider if provider is not None else providers.make(cfg, dlr_base, links.callback_key(secret))
        self.store = open_store(settings.notify_store_url)
        self.planner = Planner(roster, inventory, cfg, settings.api.public_url, secret)
        self.sender = Sender(self.store, self.provider, cfg, self.clock)
        self.robots = Sender(self.store, providers.Robots(lambda: self.planner.roster), cfg, self.clock, robots=True)
        self.inbox: Inbox[Item] = Inbox()
        self.timers: list[tuple[int, int]] = []
        self._armed: set[tuple[int, int]] = set()
        self._held: list[Item] = []
        self.client = mqtt.service_client(settings, "notifier", f"notify-{cfg.worker}", manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._stopping = False
        self.transitions = 0

    def _on_connect(self, c: paho.Client, _u: object, flags: paho.ConnectFlags, rc: object, _p: object) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused the notifier: %s", rc)
            return
        c.subscribe([(f"$share/{SHARE_GROUP}/{ALARM_TOPICS}", 1), (RELOAD_TOPIC, 1),
                     (f"$share/{SHARE_GROUP}/{control.ESCALATE}", 1)])
        log.info("connected (session present: %s)", flags.session_present)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if not self._stopping:  # else not acknowledged: the broker gives it to our next session
            self.inbox.put((msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def start(self) -> None:
        """Check the provider, restore the outbox and the timers, then connect."""
        try:
            self.provider.check()
            set_health(self.store, self.provider.name, True, "reachable at start", self.clock)
        except providers.ProviderUnavailable as exc:
            log.error("SMS provider unavailable at start (%s); messages wait in the outbox", exc)
            set_health(self.store, self.provider.name, False, str(exc), self.clock)
        with self.store.connect() as conn:
            for due_ns, alarm_id in self.planner.timers(conn):
                self._armed.add((due_ns, alarm_id))
                heapq.heappush(self.timers, (due_ns, alarm_id))
        restored = self.sender.load() + self.robots.load()
        log.info("outbox: %d notifications to send, %d alarm timers", restored, len(self.timers))
        self.sender.start()
        self.robots.start()
        mqtt.connect_and_wait(self.client, self.settings.mqtt, session_expiry_s=self.settings.notify.session_expiry_s,
                              receive_maximum=self.settings.notify.receive_maximum)

    def loop(self, stop: threading.Event, reload: threading.Event) -> None:
        """Apply transitions as they arrive and timers as they fall due, until ``stop``; re-read the
        roster when ``reload`` is set."""
        while not stop.is_set():
            if reload.is_set():
                reload.clear()
                self.reload()
            wait = 0.5 if not self.timers else min(0.5, wait_s(self.clock, self.timers[0][0] / _S))
            items = self._held or self.inbox.take(max(wait, 0.0005), BATCH)
            try:
                if items:
                    self._apply(items)
                self._held = []
                self._run_due()
            except sa.exc.OperationalError as exc:
                # The store is locked or gone: nothing was committed or acknowledged; try the same again.
                log.warning("store: %s; retrying in 1 s", str(exc).splitlines()[0])
                self._held = items
                stop.wait(1.0)

    def reload(self) -> tuple[bool, str]:
        """Re-read the inventory (its sites and names, for routes and messages) and the roster; a
        broken file keeps the running ones."""
        path = self.settings.notify.roster
        try:
            inventory = inventory_file.load(self.settings.inventory)
            duty = roster_file.load(path, {s.id for s in inventory.sites})
        except DataFileError as exc:
            log.error("roster not reloaded, the running roster stays: %s", exc)
            return False, f"not reloaded, the running roster stays: {exc}"
        self.planner.roster, self.planner.inventory = duty, inventory
        log.info("roster reloaded: %d people, %d routes", len(duty.people), len(duty.routes))
        return True, f"{len(duty.people)} people, {len(duty.routes)} routes loaded from {path}"

    def _apply(self, items: list[Item]) -> None:
        steps: list[Planned] = []
        batch: list[AlarmTransition] = []
        requests: list[tuple[int, str]] = []
        for topic, payload, _mid, _qos in items:
            if topic == RELOAD_TOPIC:
                control.obey("notifier", payload, self.reload, self.client, log)
            elif topic == control.ESCALATE:
                try:
                    req = EscalateRequest.model_validate_json(payload)
                except pydantic.ValidationError as exc:
                    log.error("not an escalation request on %s, skipped: %s", topic, str(exc).splitlines()[0])
                    continue
                requests.append((req.alarm_id, req.by))
            else:
                try:
                    batch.append(AlarmTransition.model_validate(json.loads(payload)))
                except (ValueError, pydantic.ValidationError) as exc:
                    log.error("not an alarm transition on %s, skipped: %s", topic, str(exc).splitlines()[0])
        with writing(self.store) as conn:
            now = now_ns(self.clock)
            steps += self.planner.apply_batch(conn, batch, now)
            for alarm_id, by in requests:
                steps.append(self.planner.escalate_now(conn, alarm_id, by, now))
        self.transitions += len(batch)
        self._follow(steps)  # committed: the sender may start on them while the broker is acknowledged
        for _topic, _payload, mid, qos in items:
            self.client.ack(mid, qos)

    def _run_due(self) -> None:
        now = now_ns(self.clock)
        steps: list[Planned] = []
        try:
            while self.timers and self.timers[0][0] <= now:
                due_ns, alarm_id = self.timers[0]
                with writing(self.store) as conn:
                    step = self.planner.due(conn, alarm_id, now)
                heapq.heappop(self.timers)  # only once its transaction committed
                self._armed.discard((due_ns, alarm_id))
                if step is not None:
                    steps.append(step)
        finally:
            self._follow(steps)

    def _follow(self, steps: list[Planned]) -> None:
        for s in steps:
            self.sender.push([q for q in s.queued if not q.robot])
            self.robots.push([q for q in s.queued if q.robot])
            # A stale entry (the alarm was acknowledged, or its timer moved) finds nothing due and is dropped.
            for timer in s.timers:
                if timer not in self._armed:
                    self._armed.add(timer)
                    heapq.heappush(self.timers, timer)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self.sender.stop()
        self.robots.stop()
        self.store.dispose()
        log.info("stopped: %d transitions applied, %d notifications sent", self.transitions,
                 self.sender.sent + self.robots.sent)


def run(settings: Settings, inventory: Inventory, roster: Roster) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP re-reads the roster."""
    stop, reload = stop_on_signals(log, "stopping"), reload_on_hangup()
    # The sender thread waits for the GIL while the main thread applies a batch: Python's default
    # 5 ms switch interval would add up to 5 ms to every SMS. The notifier trades throughput for latency.
    sys.setswitchinterval(0.0005)
    service = Service(settings, inventory, roster)
    service.start()
    try:
        service.loop(stop, reload)
    finally:
        service.stop()
