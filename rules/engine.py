"""The evaluation loop's core: observations, timers and ticks in; alarm transitions and state out.

Single-threaded and clock-injected, so tests drive it directly. Everything it changes (alarms,
transitions, rule state, liveness, readiness) goes into one store transaction that ``commit``
closes; the service acknowledges the MQTT messages only after that commit, so a crash replays
exactly the messages whose effects were not kept, and a replay finds the alarms it already
opened instead of opening them again.
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from examwatch.kinds import Channel
from examwatch.rulebook.files import RuleSet
from examwatch.store import Readiness, RuleState, Transition, writing
from rules.book import PROMOTE, Book
from rules.model import Now, Observation, Refusal, Verdict
from rules.timers import TimerHeap
from rules.types import RULE_TYPES, ReadinessReport, Rule
from rules.world import Seen, World

log = logging.getLogger("examwatch.rules")
SEEN = "_seen"  # rule_state rows that hold the liveness of each device
_S = cast(sa.Table, RuleState.__table__)
_R = cast(sa.Table, Readiness.__table__)
_T = cast(sa.Table, Transition.__table__)


def build(ruleset: RuleSet, world: World) -> list[Rule[Any]]:
    """A runner per configured rule, in evaluation order (site silence before device absence)."""
    world.timeouts.clear()
    rules = [RULE_TYPES[cfg.type].runner(cfg, kind, world) for kind, cfg in ruleset.rules]
    return sorted(rules, key=lambda r: r.PRIORITY)


class Engine:
    def __init__(
        self,
        store: sa.Engine,
        world: World,
        ruleset: RuleSet,
        clock: Now,
        *,
        grace_s: float = 10.0,
        tick_s: float = 1.0,
    ) -> None:
        self.store = store
        self.world = world
        self.clock = clock
        self.grace_s = grace_s
        self.tick_s = tick_s
        self.timers = TimerHeap()
        self.book = Book(self.timers)
        self._index(build(ruleset, world))
        self._conn: sa.Connection | None = None
        self._tx: sa.Transaction | None = None
        self._last_ns = 0
        self._next_tick = 0.0
        self._seen_dirty: set[str] = set()
        self._sent: queue.SimpleQueue[tuple[list[int], list[int]]] = queue.SimpleQueue()
        self.evaluated = 0
        self.redelivered_skipped = 0

    # -- start, reload -------------------------------------------------------------------------

    def restore(self) -> None:
        """Load liveness, rule state and active alarms from the store, then start every rule."""
        with writing(self.store) as conn:
            for rule, subject, text in conn.execute(sa.select(_S.c.rule, _S.c.subject, _S.c.state)):
                value = json.loads(text)
                if rule == SEEN:
                    self.world.seen[subject] = Seen(*value)
                elif rule in self.by_name:
                    self.by_name[rule].state[subject] = value
            self.book.load(conn)
        for dev, seen in self.world.seen.items():
            ref = self.world.devices.get(dev)
            if ref is not None:
                self.world.site_last_s[ref.site] = max(self.world.site_last_s.get(ref.site, 0.0), seen.last_s)
        now = self.clock()
        self.world.started_s, self.world.grace_s = now, self.grace_s
        for rule in self.rules:
            rule.start(now, self.timers, self.grace_s)
        self._retire_orphans(now)
        log.info(
            "restored %d devices' liveness, %d active alarms, %d rules",
            len(self.world.seen),
            len(self.book.active),
            len(self.rules),
        )

    def reload(self, ruleset: RuleSet) -> None:
        """Swap in new rules; a rule keeping its name and type keeps its state; alarms stay."""
        old = self.by_name
        self._index(build(ruleset, self.world))
        now = self.clock()
        for rule in self.rules:
            prev = old.get(rule.name)
            if prev is not None and type(prev) is type(rule):
                rule.state = prev.state
            rule.start(now, self.timers, 0.0)
        self._retire_orphans(now)
        log.info("reloaded %d rules", len(self.rules))

    def _retire_orphans(self, now: float) -> None:
        """Resolve the active alarms nothing can clear any more: their rule was removed from the
        rules files, or their subject from the inventory. Left open, they would remind and
        escalate by SMS for ever."""
        for key, alarm in list(self.book.active.items()):
            if alarm.rule not in self.by_name:
                why = f"rule {alarm.rule} is no longer in the rules files"
            elif not self.world.knows(alarm.subject_type, alarm.subject):
                why = f"{alarm.subject_type} {alarm.subject} is no longer in the inventory"
            else:
                continue
            log.warning("alarm %d (%s on %s) resolved: %s", alarm.id, alarm.rule, alarm.subject, why)
            self.book.resolve(self.conn(), key, why, self._ns(now))

    def _index(self, rules: list[Rule[Any]]) -> None:
        self.rules = rules
        self.by_name = {r.name: r for r in rules}
        kinds = {ref.kind for ref in self.world.devices.values()}
        #: per device kind, the rules that look at its messages, in evaluation order
        self.dispatch = {
            k: [r for r in rules if r.SEES == "all" or (r.SEES == "own" and r.kind == k)] for k in kinds
        }
        self.refusal_rules = [r for r in rules if r.SEES_REFUSALS]

    # -- evaluation ----------------------------------------------------------------------------

    def _ns(self, now: float) -> int:
        self._last_ns = max(int(now * 1e9), self._last_ns + 1)
        return self._last_ns

    def conn(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self.store.connect()
            self._conn.execution_options(writer=True)
            self._tx = self._conn.begin()
        return self._conn

    def _apply(self, rule: Rule[Any], verdicts: Iterable[Verdict], now: float) -> None:
        for v in verdicts:
            self.book.apply(self.conn(), rule.name, rule.cfg.for_s, v, self._ns(now))

    def handle(self, obs: Observation, redelivered: bool = False) -> None:
        """Evaluate every rule on one message.

        ``redelivered`` is MQTT's DUP flag: after a crash the broker sends again what we had
        received but not acknowledged, some of it already judged and committed. Telemetry no
        newer (by device time) than the last judged and committed is skipped, so it cannot
        flip a state twice. Only DUP messages are checked: a device whose clock jumps back is
        still judged on every report.
        """
        dev = obs.ref.id
        ts = obs.msg.ts if obs.msg is not None and obs.channel is Channel.TELEMETRY else 0
        seen = self.world.seen.get(dev)
        if redelivered and ts and seen is not None and ts <= seen.last_ts_ms:
            self.redelivered_skipped += 1
            return
        self.evaluated += 1
        if self.world.heard(obs.ref, obs.recv_s, obs.drill, lwt_offline=obs.online is False):
            self._seen_dirty.add(dev)
        if ts:
            self.world.seen[dev].last_ts_ms = ts
        for rule in self.dispatch[obs.ref.kind]:
            out = rule.on_message(obs)
            if out:
                self._apply(rule, out, obs.recv_s)
                self._seen_dirty.add(dev)  # a judged change: its device time must be known after a crash

    def refuse(self, refusal: Refusal) -> None:
        """A message the intake refused: only the rules that judge refusals see it."""
        for rule in self.refusal_rules:
            out = rule.on_refusal(refusal)
            if out:
                self._apply(rule, out, refusal.recv_s)

    def run_due(self) -> None:
        """Fire due timers, and run room/site rules once per tick."""
        now = self.clock()
        for rule_name, subject in self.timers.pop_due(now):
            if rule_name == PROMOTE:
                self.book.promote(self.conn(), subject, self._ns(now))
            elif (rule := self.by_name.get(rule_name)) is not None:
                self._apply(rule, rule.on_timer(subject, now, self.timers), now)
        if now >= self._next_tick:
            self._next_tick = now + self.tick_s
            for rule in self.rules:
                self._apply(rule, rule.on_tick(now), now)
                if rule.reports:
                    self._readiness(rule.reports, now)
                    rule.reports = []

    def next_wakeup(self) -> float:
        at = self.timers.next_at()
        return self._next_tick if at is None else min(at, self._next_tick)

    def _readiness(self, reports: list[ReadinessReport], now: float) -> None:
        at = self._ns(now)
        rows = [
            {"paper": r.paper, "site": r.site, "room": r.room, "go": r.go, "detail": r.detail,
             "drill": r.drill, "at_ns": at, "sent": False}
            for r in reports
        ]
        self.conn().execute(sa.insert(_R), rows)
        for r in reports:
            if r.room == "_site":
                log.info("readiness %s %s: %s (%s)", r.paper, r.site, "GO" if r.go else "NO-GO", r.detail)

    # -- persistence ---------------------------------------------------------------------------

    def mark_sent(self, transitions: list[int], readiness: list[int]) -> None:
        """From the outbox thread: these rows were sent; the next commit records it.

        The engine is the store's busiest writer, so the outbox's writes ride in its
        transactions instead of waiting for SQLite's write lock.
        """
        self._sent.put((transitions, readiness))

    def dirty(self) -> bool:
        return (
            self._conn is not None
            or bool(self._seen_dirty)
            or any(r.dirty for r in self.rules)
            or not self._sent.empty()
        )

    def _record_sent(self, conn: sa.Connection) -> None:
        while not self._sent.empty():
            trans, ready = self._sent.get_nowait()
            if trans:
                conn.execute(sa.update(_T).where(_T.c.id.in_(trans)).values(sent=True))
            if ready:
                conn.execute(sa.update(_R).where(_R.c.id.in_(ready)).values(sent=True))

    def commit(self) -> bool:
        """Write changed state and close the transaction; True when anything was written."""
        if not self.dirty():
            return False
        conn = self.conn()
        upserts: list[dict[str, str]] = []
        deletes: list[dict[str, str]] = []
        for dev in self._seen_dirty:
            s = self.world.seen[dev]
            upserts.append(
                {"rule": SEEN, "subject": dev, "state": json.dumps([s.last_s, s.lwt_offline, s.drill, s.last_ts_ms])}
            )
        self._seen_dirty.clear()
        for rule in self.rules:
            for subject in rule.dirty:
                if subject in rule.state:
                    upserts.append(
                        {"rule": rule.name, "subject": subject, "state": json.dumps(rule.state[subject])}
                    )
                else:
                    deletes.append({"r": rule.name, "s": subject})
            rule.dirty.clear()
        if upserts:
            conn.execute(_upsert(conn), upserts)
        self._record_sent(conn)
        if deletes:
            conn.execute(
                sa.delete(_S).where(_S.c.rule == sa.bindparam("r"), _S.c.subject == sa.bindparam("s")),
                deletes,
            )
        assert self._tx is not None
        self._tx.commit()
        conn.close()
        self._conn = self._tx = None
        return True

    def close(self) -> None:
        """Drop an open transaction without committing (its messages were not acknowledged)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = self._tx = None


def _upsert(conn: sa.Connection) -> Any:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_S)
    return stmt.on_conflict_do_update(
        index_elements=[_S.c.rule, _S.c.subject], set_={"state": stmt.excluded.state}
    )
