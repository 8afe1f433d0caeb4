"""The engine's view of active alarms: verdicts in, lifecycle transitions out (one alarm per rule+subject).

A verdict that holds opens an alarm (pending if the rule has ``for``), or raises the severity
of the one open; a verdict that clears resolves it. The cache may be stale when a person
acknowledged or resolved meanwhile: a ConflictError re-reads the alarm and applies again.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from examwatch.alarm import ENGINE, Severity, State
from examwatch.store import lifecycle
from examwatch.store.lifecycle import AlarmView, ConflictError
from rules.model import Verdict
from rules.timers import TimerHeap

PROMOTE = ""  # the timer "rule" name for pending alarms whose ``for`` has run out
Key = tuple[str, str, bool]  # rule, subject, drill: a drill's alarm never stands for a real one


class Book:
    def __init__(self, timers: TimerHeap) -> None:
        self.active: dict[Key, AlarmView] = {}
        self.timers = timers
        self.transitions = 0

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
                self._set(key, opened)
                if for_s > 0:
                    self.timers.schedule(at_ns / 1e9 + for_s, PROMOTE, _key_text(key))
            elif v.severity.rank > Severity(cur.severity).rank:
                self._move(
                    conn,
                    key,
                    lambda a: lifecycle.transition(
                        conn,
                        a,
                        State(a.state),
                        ENGINE,
                        "severity raised",
                        at_ns=at_ns,
                        message=v.message,
                        severity=v.severity,
                    ),
                )
        elif cur is not None:
            self.resolve(conn, key, "condition cleared", at_ns, v.message)

    def resolve(self, conn: sa.Connection, key: Key, comment: str, at_ns: int, message: str | None = None) -> None:
        """Resolve the active alarm of ``key`` as the engine."""
        self._move(
            conn,
            key,
            lambda a: lifecycle.transition(conn, a, State.RESOLVED, ENGINE, comment, at_ns=at_ns, message=message),
        )

    def promote(self, conn: sa.Connection, key_text: str, at_ns: int) -> None:
        key = _text_key(key_text)
        cur = self.active.get(key)
        if cur is None or cur.state != State.PENDING or cur.fire_at_ns is None or cur.fire_at_ns > at_ns:
            return
        self._move(
            conn,
            key,
            lambda a: (
                lifecycle.transition(
                    conn, a, State.FIRING, ENGINE, "held for its pending duration", at_ns=at_ns
                )
                if a.state == State.PENDING
                else a
            ),
        )

    def _move(self, conn: sa.Connection, key: Key, step: Callable[[AlarmView], AlarmView]) -> None:
        cur = self.active[key]
        for _ in range(3):
            try:
                self._set(key, step(cur))
                return
            except ConflictError:
                cur = lifecycle.get(conn, cur.id)
                if not cur.active:
                    self.active.pop(key, None)
                    return
        raise ConflictError(f"alarm {cur.id} keeps changing")

    def _set(self, key: Key, alarm: AlarmView) -> None:
        self.transitions += 1
        if alarm.active:
            self.active[key] = alarm
        else:
            self.active.pop(key, None)


def _key_text(key: Key) -> str:
    return f"{key[0]}\x00{key[1]}\x00{int(key[2])}"


def _text_key(text: str) -> Key:
    rule, subject, drill = text.split("\x00")
    return rule, subject, drill == "1"
