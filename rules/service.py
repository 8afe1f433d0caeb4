"""Run the rules engine on the live stream: MQTT in, store and outbox out, until SIGTERM.

MQTT v5 with a persistent session (client id ``rules-<worker>``) on the shared subscription
``$share/rules/exam/v1/#``: the engine's own group, so it sees every message whatever ingest
does. The stream is read by ``examwatch.subscriber``, ingest's lean reader (a few µs of CPU a
message, where paho's callback path took about 45: BENCHMARKS.md, "Lean ingest"); alarm
transitions and reload answers go out on a paho client of their own (``rules-<worker>-out``,
no session: it only publishes). Run one rules worker: absence and windows need all of a
device's messages in one place.
Messages are acknowledged only after the store transaction holding their effects commits, so a
SIGKILL loses nothing and repeats nothing. SIGHUP, or a request from the API on
``exam/v1/_control/reload/rules`` (examwatch.control), reloads the rules files; a broken file is
logged (and answered) and the running rules stay.

Latency: a message that makes a transition is committed at once (with the messages judged
before it), and the transition handed to the outbox from memory, which publishes it on MQTT
straight away; messages that change no alarm are committed every ``commit_interval_ms``. So the
write lock is never held longer than one batch, and nothing on an alarm's path waits for a timer.
Everything that already arrived is judged before timers fire (and timers fire on the stream's
time: rules.world), so the engine's own backlog is never taken for a silent site.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as paho

from examwatch import control, credentials, mqtt, topics
from examwatch.check import Limits
from examwatch.clock import Clock, ns_reader, wait_s
from examwatch.datafile import DataFileError
from examwatch.inbox import Inbox
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from examwatch.inventory import Inventory
from examwatch.rejects import Reason
from examwatch.rulebook.files import RuleSet, load_dir
from examwatch.settings import Settings
from examwatch.signals import reload_on_hangup, stop_on_signals
from examwatch.store import open_store
from examwatch.subscriber import Refused, Subscriber
from examwatch.timetable import Timetable
from rules.engine import Engine
from rules.intake import Intake
from rules.model import Refusal
from rules.outbox import Outbox
from rules.world import World

log = logging.getLogger("examwatch.rules")
SHARE_GROUP = "rules"
#: the API's reload requests come in order with telemetry, through the shared subscription
RELOAD_TOPIC = control.reload_topic("rules")
Item = tuple[bytes, bytes, int, int, int, bool]  # topic, payload, mid, session epoch, receive ns, DUP
SWITCH_INTERVAL_S = 0.0005


class Service:
    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        timetable: Timetable,
        ruleset: RuleSet,
        clock: Clock | None = None,
    ) -> None:
        cfg = settings.rules
        self.settings = settings
        self.clock = clock if clock is not None else settings.clock.make()
        self.store = open_store(settings.store.url)
        self.world = World(inventory, timetable)
        self.engine = Engine(
            self.store, self.world, ruleset, self.clock.now, grace_s=cfg.restart_grace_s, tick_s=cfg.tick_s,
            speed=self.clock.speed, silence_hold_s=cfg.silence_hold_s,
        )
        self.intake = Intake(self.world, Limits.of(settings.ingest))
        self.inbox: Inbox[Item] = Inbox()
        user = credentials.service_user("rules")
        self.source = Subscriber(
            settings.mqtt, f"rules-{cfg.worker}", user, credentials.password(settings.secret.get_secret_value(), user),
            f"$share/{SHARE_GROUP}/{topics.ALL}", self._on_message, session_expiry_s=cfg.session_expiry_s,
            receive_maximum=cfg.receive_maximum,
            now_ns=ns_reader(self.clock),
        )
        self.client = mqtt.service_client(settings, "rules", f"rules-{cfg.worker}-out")
        self.client.on_connect = self._on_connect
        self.influx = Influx(settings.influx)
        self.outbox = Outbox(self.store, self.influx, self._publish, mark_sent=self.engine.mark_sent)
        self._stopping = False

    def _on_connect(
        self, _c: paho.Client, _u: object, _flags: paho.ConnectFlags, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused the rules engine's publisher: %s", rc)

    def _on_message(self, topic: bytes, payload: bytes, mid: int, epoch: int, recv_ns: int, dup: bool) -> None:
        if not self._stopping:  # else not acknowledged: the broker gives it to our next session
            self.inbox.put((topic, payload, mid, epoch, recv_ns, dup))

    def _publish(self, topic: str, payload: bytes) -> Callable[[], None]:
        info = self.client.publish(topic, payload, qos=1, retain=True)

        def acknowledged() -> None:
            try:
                info.wait_for_publish(10)
            except (RuntimeError, ValueError) as exc:
                raise TimeoutError(f"MQTT publish to {topic}: {exc}") from exc
            if not info.is_published():
                raise TimeoutError(f"MQTT publish to {topic} not acknowledged")

        return acknowledged

    def start(self) -> None:
        if self.settings.influx.create_database:
            try:
                self.influx.create_database()
            except (InfluxUnavailable, InfluxRejected) as exc:
                log.warning("cannot create database yet (%s); transitions wait in the store", exc)
        self.engine.restore()
        self.outbox.start()
        mqtt.connect_and_wait(self.client, self.settings.mqtt, clean_start=True)
        try:
            self.source.connect()
        except Refused as exc:
            raise mqtt.ConnectRefused(str(exc)) from exc

    def loop(self, stop: threading.Event, reload: threading.Event) -> None:
        """Evaluate until ``stop``: commit at once after a message or timer that makes a
        transition, else every commit interval; acknowledge after each commit."""
        interval = self.settings.rules.commit_interval_ms / 1000
        acks: list[tuple[int, int]] = []
        taken: deque[Item] = deque()
        last_commit = time.monotonic()
        while not stop.is_set():
            if reload.is_set():
                reload.clear()
                self.reload()
            if not taken:
                wait = min(wait_s(self.clock, self.engine.next_wakeup()), 0.5)
                if acks or self.engine.dirty():
                    wait = min(wait, last_commit + interval - time.monotonic())
                taken.extend(self.inbox.take(max(0.001, wait), 5000))
            while taken:
                raw_topic, payload, mid, epoch, recv_ns, dup = taken.popleft()
                topic = raw_topic.decode("utf-8", "replace")  # the broker lets only UTF-8 topics through
                try:
                    self._judge(topic, payload, recv_ns / 1e9, dup)
                except Exception:  # a bug must cost one message, not the engine: redelivered, it would crash it again
                    log.exception("message on %s not judged", topic)
                    self.intake.refused[Reason.INTERNAL] += 1
                acks.append((mid, epoch))
                if self.engine.has_output():
                    break  # an alarm is on its way: commit and publish it now
            if not taken:  # everything that had arrived is judged: timers may look at silence
                self.engine.run_due()
            if self.engine.has_output() or time.monotonic() - last_commit >= interval:
                self._commit(acks)
                last_commit = time.monotonic()
        self._commit(acks)

    def _judge(self, topic: str, payload: bytes, recv_s: float, dup: bool) -> None:
        if topic == RELOAD_TOPIC:
            control.obey("rules", payload, self.reload, self.client, log)
        elif isinstance(obs := self.intake.observe(topic, payload, recv_s), Refusal):
            self.engine.refuse(obs)
        elif obs is not None:
            self.engine.handle(obs, redelivered=dup)

    def _commit(self, acks: list[tuple[int, int]]) -> None:
        written = self.engine.commit()
        if written:
            self.outbox.send(written)
        if acks:
            self.source.ack(acks)  # copied into the subscriber's queue
            acks.clear()

    def reload(self) -> tuple[bool, str]:
        """Re-read the rules files (SIGHUP, or a request from the API); a broken file keeps the running rules."""
        directory = self.settings.rules.rules_dir
        try:
            ruleset = load_dir(directory)
        except DataFileError as exc:
            log.error("rules not reloaded, the running rules stay: %s", exc)
            return False, f"not reloaded, the running rules stay: {exc}"
        written = self.engine.commit()
        if written:
            self.outbox.send(written)
        self.engine.reload(ruleset)
        return True, f"{len(ruleset.rules)} rules loaded from {directory}"

    def stop(self) -> None:
        self._stopping = True
        self.outbox.stop()
        self.engine.commit()  # what the outbox sent meanwhile is marked so (nothing else is left to write)
        self.source.close()  # the acknowledgements queued so far go out first; the session stays
        self.client.disconnect()
        self.client.loop_stop()
        self.engine.close()
        log.info(
            "stopped: %d messages evaluated, %d refused, %d transitions",
            self.engine.evaluated,
            sum(self.intake.refused.values()),
            self.engine.book.transitions,
        )


def run(settings: Settings, inventory: Inventory, timetable: Timetable, ruleset: RuleSet) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the rules."""
    stop, reload = stop_on_signals(log, "committing and stopping"), reload_on_hangup()
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints every thread's stack: for a hung engine
    # The evaluation thread is busy with telemetry; the MQTT network thread and the outbox's must
    # get the GIL within a millisecond, not CPython's default 5 ms, or every alarm waits for it.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    service = Service(settings, inventory, timetable, ruleset)
    service.start()
    try:
        service.loop(stop, reload)
    finally:
        faulthandler.dump_traceback_later(15)  # a stop that hangs prints where every thread is
        service.stop()
        faulthandler.cancel_dump_traceback_later()
