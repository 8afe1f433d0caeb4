"""The engine's view of active alarms: verdicts in, lifecycle transitions out (one alarm per rule+subject).

A verdict that holds opens an alarm (pending if the rule has ``for``), or raises the severity
of the one open; a verdict that clears resolves it. A rise in severity is news: an acknowledged
alarm goes back to firing with the higher severity (its acknowledgement must be renewed), as one
transition. The cache may be stale when a person acknowledged or resolved meanwhile: a
ConflictError re-reads the alarm, hands that person's steps to the outbox first (the outbox would
otherwise find them by polling only after the engine's newer step went out, and drop them as
older than the retained message), and applies again.

Every transition the book writes is also kept, as the contract's message, in ``written`` until
the engine's commit hands them to the outbox: published from memory the moment they are
committed, not found again by polling the store.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from examwatch.alarm import ENGINE, AlarmTransition, Severity, State
from examwatch.store import lifecycle
from examwatch.store.lifecycle import AlarmView, ConflictError
from rules.model import Verdict
from rules.timers import TimerHeap

PROMOTE = ""  # the timer "rule" name for pending alarms whose ``for`` has run out
Key = tuple[str, str, bool]  # rule, subject, drill: a drill's alarm never stands for a real one
Step = tuple[AlarmView, str] | None  # the alarm after one move and the move's comment; None: no move


class Book:
    def __init__(self, timers: TimerHeap) -> None:
        self.active: dict[Key, AlarmView] = {}
        self.timers = timers
        self.transitions = 0
        #: transitions written in the open transaction, in order (see the module's docstring)
        self.written: list[AlarmTransition] = []

    def load(self, conn: sa.Connection) -> None:
        self.active = {(a.rule, a.subject, a.drill): a for a in lifecycle.active(conn)}
        for key, a in self.active.items():
            if a.state == State.PENDING and a.fire_at_ns is not None:
                self.timers.schedule(a.fire_at_ns / 1e9, PROMOTE, _key_text(key))

    def apply(self, conn: sa.Connection, rule: str, for_s: float, v: Verdict, at_ns: int) -> None:
        key = (rule, v.subject.id, v.drill)
        cur = self.active.get(key)
        if v.active:
            if cur is None:
                opened = lifecycle.open_alarm(conn, rule, v.subject, severity=v.severity, message=v.message,
                                              drill=v.drill, at_ns=at_ns, pending_for_s=for_s)
                self._set(key, opened, "")
                if for_s > 0:
                    self.timers.schedule(at_ns / 1e9 + for_s, PROMOTE, _key_text(key))
            elif v.severity.rank > Severity(cur.severity).rank:

                def rise(a: AlarmView) -> Step:
                    if v.severity.rank <= Severity(a.severity).rank:
                        return None
                    acked = a.state == State.ACKNOWLEDGED
                    why = f"severity raised to {v.severity.value}" + ("; acknowledge again" if acked else "")
                    to = State.FIRING if acked else State(a.state)
                    moved = lifecycle.transition(conn, a, to, ENGINE, why, at_ns=at_ns, message=v.message,
                                                 severity=v.severity)
                    return moved, why

                self._move(conn, key, rise)
        elif cur is not None:
            self.resolve(conn, key, "condition cleared", at_ns, v.message)

    def resolve(self, conn: sa.Connection, key: Key, comment: str, at_ns: int, message: str | None = None) -> None:
        """Resolve the active alarm of ``key`` as the engine."""
        self._move(
            conn,
            key,
            lambda a: (
                lifecycle.transition(conn, a, State.RESOLVED, ENGINE, comment, at_ns=at_ns, message=message),
                comment,
            ),
        )

    def promote(self, conn: sa.Connection, key_text: str, at_ns: int) -> None:
        key = _text_key(key_text)
        cur = self.active.get(key)
        if cur is None or cur.state != State.PENDING or cur.fire_at_ns is None or cur.fire_at_ns > at_ns:
            return
        why = "held for its pending duration"
        self._move(
            conn,
            key,
            lambda a: (
                (lifecycle.transition(conn, a, State.FIRING, ENGINE, why, at_ns=at_ns), why)
                if a.state == State.PENDING
                else None
            ),
        )

    def _move(self, conn: sa.Connection, key: Key, step: Callable[[AlarmView], Step]) -> None:
        cur = self.active[key]
        for _ in range(3):
            try:
                done = step(cur)
            except ConflictError:
                seen = cur.seq
                cur = lifecycle.get(conn, cur.id)
                # someone's steps go out before the engine's, so the alarm's latest step is the
                # one retained on MQTT and subscribers see them all, in order
                self.written += lifecycle.steps_after(conn, cur.id, seen)
                if not cur.active:
                    self.active.pop(key, None)
                    return
                continue
            if done is None:
                self.active[key] = cur  # nothing to do on the alarm as it now stands
            else:
                self._set(key, *done)
            return
        raise ConflictError(f"alarm {cur.id} keeps changing")

    def _set(self, key: Key, alarm: AlarmView, comment: str) -> None:
        self.transitions += 1
        self.written.append(lifecycle.message(alarm, ENGINE, comment))
        if alarm.active:
            self.active[key] = alarm
        else:
            self.active.pop(key, None)

    def take_written(self) -> list[AlarmTransition]:
        """The transitions written since the last call (the engine calls it when it commits)."""
        out, self.written = self.written, []
        return out

    def forget_written(self) -> None:
        """The transaction was rolled back: what it wrote never happened."""
        self.written = []


def _key_text(key: Key) -> str:
    return f"{key[0]}\x00{key[1]}\x00{int(key[2])}"


def _text_key(text: str) -> Key:
    rule, subject, drill = text.split("\x00")
    return rule, subject, drill == "1"
