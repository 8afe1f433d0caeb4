"""The evaluation loop's core: observations, timers and ticks in; alarm transitions and state out.

Single-threaded and clock-injected, so tests drive it directly. Everything it changes (alarms,
transitions, rule state, liveness, readiness) goes into one store transaction that ``commit``
closes; the service acknowledges the MQTT messages only after that commit, so a crash replays
exactly the messages whose effects were not kept, and a replay finds the alarms it already
opened instead of opening them again. ``commit`` returns what it wrote (transitions as the
contract's messages, readiness rows), for the outbox to publish from memory at once.

Timers (absence, a pending alarm's ``for``, a jammer's grace at a window's start) fire on the
stream's time (``World.silence_now``): a silence the engine has not yet read past may be its own
lag, not the site's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from examwatch import liveness
from examwatch.alarm import AlarmTransition
from examwatch.kinds import Channel
from examwatch.rulebook.configs import DeviceScoped
from examwatch.rulebook.files import RuleSet
from examwatch.store import Readiness, RuleState, Transition, writing
from rules.book import PROMOTE, Book
from rules.model import Now, Observation, Refusal, Verdict
from rules.timers import TimerHeap
from rules.types import RULE_TYPES, ReadinessReport, Rule
from rules.world import Seen, World

log = logging.getLogger("examwatch.rules")
SEEN = "_seen"  # rule_state rows that hold the liveness of each device
TICK_SHARE = 0.1  # of the engine's wall time that room and site ticks may take
_S = cast(sa.Table, RuleState.__table__)
_R = cast(sa.Table, Readiness.__table__)
_T = cast(sa.Table, Transition.__table__)


#: a readiness row as written: (paper, site, room, at_ns) identify its version
ReadinessKey = tuple[str, str, str, int]
#: a transition: (alarm_id, seq)
TransitionKey = tuple[int, int]


@dataclass
class Committed:
    """What one commit wrote, for the outbox: transitions in order, and readiness rows."""

    transitions: list[AlarmTransition] = field(default_factory=list)
    readiness: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.transitions or self.readiness)


def build(ruleset: RuleSet, world: World) -> list[Rule[Any]]:
    """A runner per configured rule, in evaluation order (site silence before device absence)."""
    world.timeouts = liveness.absence_timeouts(ruleset, world.inventory)
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
        speed: float = 1.0,
        silence_hold_s: float = 2.0,
    ) -> None:
        """``speed`` is the clock's (clock seconds per wall second); ``silence_hold_s`` is how long,
        in wall seconds, silence waits for a stalled stream (see rules.world)."""
        self.store = store
        self.world = world
        world.speed, world.hold_s = speed, silence_hold_s * speed
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
        self._sent: queue.SimpleQueue[tuple[list[TransitionKey], list[ReadinessKey]]] = queue.SimpleQueue()
        self._ready_written: list[dict[str, Any]] = []
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
        self.world.estimate_transport()
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
        #: per device, the rules that look at its messages, in evaluation order (a rule limited to
        #: some room types sees only the devices in them)
        self.dispatch: dict[str, list[Rule[Any]]] = {}
        by_scope: dict[tuple[str, str], list[Rule[Any]]] = {}
        for dev, ref in self.world.devices.items():
            room_type = self.world.room_types[(ref.site, ref.room)]
            scope = (ref.kind, room_type.value)
            if scope not in by_scope:
                by_scope[scope] = [
                    r for r in rules
                    if r.SEES == "all"
                    or (r.SEES == "own" and r.kind == ref.kind
                        and (not isinstance(r.cfg, DeviceScoped) or r.cfg.covers(room_type)))
                ]
            self.dispatch[dev] = by_scope[scope]
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
            obs = dataclasses.replace(obs, made_s=self.world.note_report(dev, ts, obs.recv_s))
        elif obs.msg is not None:
            self.world.note_event(obs.msg.ts, obs.recv_s)
        for rule in self.dispatch[dev]:
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
        """Fire due timers (on the stream's time), and run room/site rules once per tick."""
        now = self.clock()
        judged = self.world.silence_now(now)
        for rule_name, subject in self.timers.pop_due(judged):
            if rule_name == PROMOTE:
                self.book.promote(self.conn(), subject, self._ns(judged))
            elif (rule := self.by_name.get(rule_name)) is not None:
                self._apply(rule, rule.on_timer(subject, judged, self.timers), judged)
        if now >= self._next_tick:
            began = time.perf_counter()
            for rule in self.rules:
                self._apply(rule, rule.on_tick(now), now)
                if rule.reports:
                    self._readiness(rule.reports, now)
                    rule.reports = []
            # A tick (every room of the district) may take milliseconds; on a drill clock at 60x,
            # one clock second is 17 ms of wall time. Ticks take at most TICK_SHARE of the engine's
            # time: on a fast clock they come less often than tick_s (in clock seconds), never more.
            spent_wall = time.perf_counter() - began
            self._next_tick = now + max(self.tick_s, spent_wall / TICK_SHARE * self.world.speed)

    def next_wakeup(self) -> float:
        """The clock time of the next tick or timer: a timer past the stream's frontier waits for
        the stream, or for the hold (a message that moves the frontier wakes the loop anyway)."""
        at = self.timers.next_at()
        if at is None:
            return self._next_tick
        if self.world.frontier_s < at:
            at += max(0.0, self.world.transport_s) + self.world.hold_s
        return min(at, self._next_tick)

    def _readiness(self, reports: list[ReadinessReport], now: float) -> None:
        at = self._ns(now)
        rows = [
            {"paper": r.paper, "site": r.site, "room": r.room, "go": r.go, "detail": r.detail,
             "drill": r.drill, "at_ns": at, "sent": False}
            for r in reports
        ]
        # A waiting site's row is replaced by its verdict: one row per paper, site and room.
        self.conn().execute(_upsert_readiness(self.conn()), rows)
        self._ready_written += rows
        for r in reports:
            if r.room == "_site":
                log.info("readiness %s %s: %s (%s)", r.paper, r.site, "GO" if r.go else "NO-GO", r.detail)

    # -- persistence ---------------------------------------------------------------------------

    def mark_sent(self, transitions: list[TransitionKey], readiness: list[ReadinessKey]) -> None:
        """From the outbox thread: these rows were sent; the next commit records it.

        The engine is the store's busiest writer, so the outbox's writes ride in its
        transactions instead of waiting for SQLite's write lock.
        """
        self._sent.put((transitions, readiness))

    def has_output(self) -> bool:
        """Whether the open transaction holds a transition or a readiness row (worth committing now)."""
        return bool(self.book.written or self._ready_written)

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
            mark_sent(conn, trans, ready)

    def commit(self) -> Committed | None:
        """Write changed state and close the transaction: what it wrote for the outbox (empty
        when no transition or readiness row), or None when there was nothing to write."""
        if not self.dirty():
            return None
        conn = self.conn()
        upserts: list[dict[str, str]] = []
        deletes: list[dict[str, str]] = []
        for dev in self._seen_dirty:
            s = self.world.seen[dev]
            upserts.append(
                {"rule": SEEN, "subject": dev, "state": json.dumps(
                    [s.last_s, s.lwt_offline, s.drill, s.last_ts_ms, s.interval_s, s.offset_s, s.made_s])}
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
        written = Committed(self.book.take_written(), self._ready_written)
        self._ready_written = []
        return written

    def close(self) -> None:
        """Drop an open transaction without committing (its messages were not acknowledged)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = self._tx = None
        self.book.forget_written()
        self._ready_written = []


def mark_sent(conn: sa.Connection, transitions: list[TransitionKey], readiness: list[ReadinessKey]) -> None:
    """Record that these transitions and readiness rows reached MQTT and InfluxDB. A readiness
    row replaced since (a waiting site's verdict) keeps its own flag: its ``at_ns`` differs."""
    if transitions:
        conn.execute(
            sa.update(_T).where(_T.c.alarm_id == sa.bindparam("a"), _T.c.seq == sa.bindparam("q")).values(sent=True),
            [{"a": a, "q": q} for a, q in transitions],
        )
    if readiness:
        conn.execute(
            sa.update(_R)
            .where(_R.c.paper == sa.bindparam("p"), _R.c.site == sa.bindparam("s"),
                   _R.c.room == sa.bindparam("r"), _R.c.at_ns == sa.bindparam("t"))
            .values(sent=True),
            [{"p": p, "s": s, "r": r, "t": t} for p, s, r, t in readiness],
        )


def _upsert_readiness(conn: sa.Connection) -> Any:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_R)
    return stmt.on_conflict_do_update(
        index_elements=[_R.c.paper, _R.c.site, _R.c.room],
        set_={c: stmt.excluded[c] for c in ("go", "detail", "drill", "at_ns", "sent")},
    )


def _upsert(conn: sa.Connection) -> Any:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_S)
    return stmt.on_conflict_do_update(
        index_elements=[_S.c.rule, _S.c.subject], set_={"state": stmt.excluded.state}
    )
