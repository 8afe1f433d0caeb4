"""The alarm lifecycle: pending → firing → acknowledged → resolved, every step kept with who, when, why.

It lives beside the store so that every writer moves an alarm the same way: the rules engine
(``open_alarm``, ``transition``), and people through the API, the CLI or an SMS reply
(``acknowledge``, ``comment``, ``resolve``). Every change is a
guarded update (``WHERE id = … AND seq = …``) in the same transaction as its transition row,
so two writers (the engine and a person) never both move an alarm from the same state, and a
transition's id ``(alarm_id, seq)`` is unique: replaying the same input cannot add it twice.
Transitions are the outbox: rules.outbox sends the unsent ones to InfluxDB and MQTT.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from examwatch.alarm import ENGINE, AlarmTransition, Severity, State, Subject, SubjectType
from examwatch.store.db import writing
from examwatch.store.models import Alarm, Transition

_ALLOWED: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.PENDING, State.FIRING, State.ACKNOWLEDGED, State.RESOLVED}),
    State.FIRING: frozenset({State.FIRING, State.ACKNOWLEDGED, State.RESOLVED}),
    State.ACKNOWLEDGED: frozenset({State.ACKNOWLEDGED, State.RESOLVED}),
    State.RESOLVED: frozenset(),
}
#: Only the engine takes an acknowledged alarm back to firing, and only when its severity rises:
#: a worse condition is news, and the acknowledgement of the lesser one must be renewed.
_ENGINE_ONLY = frozenset({(State.ACKNOWLEDGED, State.FIRING)})
_A = cast(sa.Table, Alarm.__table__)
_T = cast(sa.Table, Transition.__table__)


class AlarmError(Exception):
    """The alarm does not exist, or cannot make that transition (e.g. it is already resolved)."""


class ConflictError(Exception):
    """Someone else changed the alarm since it was read; read it again and retry."""


@dataclass(frozen=True, slots=True)
class AlarmView:
    id: int
    rule: str
    subject: str
    subject_type: str
    site: str
    severity: str
    state: str
    drill: bool
    message: str
    seq: int
    opened_ns: int
    fire_at_ns: int | None
    updated_ns: int

    @property
    def active(self) -> bool:
        return self.state != State.RESOLVED


@dataclass(frozen=True, slots=True)
class TransitionView:
    alarm_id: int
    seq: int
    state: str
    severity: str
    at_ns: int
    by: str
    comment: str
    message: str


def _view(row: sa.Row[tuple[object, ...]]) -> AlarmView:
    m = row._mapping
    return AlarmView(
        m["id"],
        m["rule"],
        m["subject"],
        m["subject_type"],
        m["site"],
        m["severity"],
        m["state"],
        bool(m["drill"]),
        m["message"],
        m["seq"],
        m["opened_ns"],
        m["fire_at_ns"],
        m["updated_ns"],
    )


def get(conn: sa.Connection, alarm_id: int) -> AlarmView:
    row = conn.execute(sa.select(_A).where(_A.c.id == alarm_id)).first()
    if row is None:
        raise AlarmError(f"no alarm {alarm_id}")
    return _view(row)


def active(conn: sa.Connection) -> list[AlarmView]:
    return [_view(r) for r in conn.execute(sa.select(_A).where(_A.c.active).order_by(_A.c.id))]


def open_alarm(
    conn: sa.Connection,
    rule: str,
    subject: Subject,
    *,
    severity: Severity,
    message: str,
    drill: bool,
    at_ns: int,
    pending_for_s: float,
) -> AlarmView:
    """Open an alarm: pending when the rule has a ``for`` duration, else firing at once."""
    state = State.PENDING if pending_for_s > 0 else State.FIRING
    fire_at = at_ns + int(pending_for_s * 1e9) if pending_for_s > 0 else None
    values = {
        "rule": rule, "subject": subject.id, "subject_type": subject.type.value, "site": subject.site,
        "severity": severity.value, "state": state.value, "active": True, "drill": drill, "message": message,
        "opened_ns": at_ns, "fire_at_ns": fire_at, "updated_ns": at_ns, "seq": 1,
    }
    alarm_id = conn.execute(sa.insert(_A).values(**values).returning(_A.c.id)).scalar_one()
    conn.execute(
        sa.insert(_T).values(
            alarm_id=alarm_id,
            seq=1,
            state=state.value,
            severity=severity.value,
            at_ns=at_ns,
            by=ENGINE,
            comment="",
            message=message,
            sent=False,
        )
    )
    return AlarmView(
        alarm_id,
        rule,
        subject.id,
        subject.type.value,
        subject.site,
        severity.value,
        state.value,
        drill,
        message,
        1,
        at_ns,
        fire_at,
        at_ns,
    )


def transition(
    conn: sa.Connection,
    alarm: AlarmView,
    to: State,
    by: str,
    comment: str = "",
    *,
    at_ns: int | None = None,
    message: str | None = None,
    severity: Severity | None = None,
) -> AlarmView:
    """Move ``alarm`` (as last read) to ``to``.

    Raises ConflictError if it changed since it was read, AlarmError if the move is not allowed.
    The engine (``by`` ENGINE) may also move an acknowledged alarm back to firing when it raises
    its severity.
    """
    rises = severity is not None and severity.rank > Severity(alarm.severity).rank
    engine_move = by == ENGINE and rises and (State(alarm.state), to) in _ENGINE_ONLY
    if to not in _ALLOWED[State(alarm.state)] and not engine_move:
        raise AlarmError(f"alarm {alarm.id} is {alarm.state}; it cannot become {to.value}")
    at = max(at_ns if at_ns is not None else time.time_ns(), alarm.updated_ns + 1)
    sev = severity.value if severity is not None else alarm.severity
    msg = message if message is not None else alarm.message
    seq = alarm.seq + 1
    res = conn.execute(
        sa.update(_A)
        .where(_A.c.id == alarm.id, _A.c.seq == alarm.seq)
        .values(
            state=to.value,
            active=to != State.RESOLVED,
            severity=sev,
            message=msg,
            updated_ns=at,
            seq=seq,
            fire_at_ns=None if to != State.PENDING else alarm.fire_at_ns,
        )
    )
    if res.rowcount != 1:
        raise ConflictError(f"alarm {alarm.id} changed since it was read")
    conn.execute(
        sa.insert(_T).values(
            alarm_id=alarm.id,
            seq=seq,
            state=to.value,
            severity=sev,
            at_ns=at,
            by=by,
            comment=comment,
            message=msg,
            sent=False,
        )
    )
    return AlarmView(
        alarm.id,
        alarm.rule,
        alarm.subject,
        alarm.subject_type,
        alarm.site,
        sev,
        to.value,
        alarm.drill,
        msg,
        seq,
        alarm.opened_ns,
        None,
        at,
    )


def _act(engine: sa.Engine, alarm_id: int, to: State | None, by: str, comment: str, at_ns: int | None) -> AlarmView:
    """Move an alarm as a person (``to`` None: a comment, the state kept)."""
    if not by.strip():
        raise AlarmError("say who you are (by)")
    for _ in range(5):
        try:
            with writing(engine) as conn:
                alarm = get(conn, alarm_id)
                if to is None:
                    if not alarm.active:
                        raise AlarmError(f"alarm {alarm_id} is resolved; its record is closed")
                    return transition(conn, alarm, State(alarm.state), by.strip(), comment, at_ns=at_ns)
                if alarm.state == to:
                    raise AlarmError(f"alarm {alarm_id} is already {to.value}")
                return transition(conn, alarm, to, by.strip(), comment, at_ns=at_ns)
        except ConflictError:
            continue
    raise AlarmError(f"alarm {alarm_id} keeps changing; try again")


def acknowledge(
    engine: sa.Engine, alarm_id: int, by: str, comment: str = "", *, at_ns: int | None = None
) -> AlarmView:
    """Someone (``by``) owns the alarm now. Refused for a resolved or already acknowledged alarm."""
    return _act(engine, alarm_id, State.ACKNOWLEDGED, by, comment, at_ns)


def resolve(engine: sa.Engine, alarm_id: int, by: str, comment: str = "", *, at_ns: int | None = None) -> AlarmView:
    """Close the alarm by hand (the engine resolves it by itself when its condition clears)."""
    return _act(engine, alarm_id, State.RESOLVED, by, comment, at_ns)


def comment(engine: sa.Engine, alarm_id: int, by: str, text: str, *, at_ns: int | None = None) -> AlarmView:
    """Add to an active alarm's history without changing its state (a transition to the same state)."""
    return _act(engine, alarm_id, None, by, text, at_ns)


def message(alarm: AlarmView, by: str = ENGINE, comment: str = "") -> AlarmTransition:
    """The transition message of ``alarm`` as it stands after its last step."""
    return AlarmTransition(
        alarm_id=alarm.id,
        seq=alarm.seq,
        rule=alarm.rule,
        severity=Severity(alarm.severity),
        site=alarm.site,
        subject=alarm.subject,
        subject_type=SubjectType(alarm.subject_type),
        state=State(alarm.state),
        message=alarm.message,
        drill=alarm.drill,
        at_ns=alarm.updated_ns,
        by=by,
        comment=comment,
    )


def row_message(m: Any) -> AlarmTransition:
    """The contract's message for a transition row joined with its alarm's columns."""
    return AlarmTransition(
        alarm_id=m["alarm_id"], seq=m["seq"], rule=m["rule"], severity=m["severity"], site=m["site"],
        subject=m["subject"], subject_type=m["subject_type"], state=m["state"], message=m["message"],
        drill=bool(m["drill"]), at_ns=m["at_ns"], by=m["by"], comment=m["comment"],
    )


MESSAGE_COLUMNS = (
    _T.c.id, _T.c.alarm_id, _T.c.seq, _T.c.state, _T.c.severity, _T.c.at_ns, _T.c.by, _T.c.comment,
    _T.c.message, _A.c.rule, _A.c.site, _A.c.subject, _A.c.subject_type, _A.c.drill,
)


def steps_after(conn: sa.Connection, alarm_id: int, after_seq: int) -> list[AlarmTransition]:
    """The alarm's transitions after ``after_seq``, oldest first, as the contract's messages
    (what someone else wrote since a writer last saw the alarm)."""
    rows = conn.execute(
        sa.select(*MESSAGE_COLUMNS).join(_A, _A.c.id == _T.c.alarm_id)
        .where(_T.c.alarm_id == alarm_id, _T.c.seq > after_seq).order_by(_T.c.seq)
    ).mappings()
    return [row_message(m) for m in rows]


def list_alarms(
    engine: sa.Engine, *, active_only: bool = True, site: str | None = None, limit: int = 200
) -> list[AlarmView]:
    """Alarms, newest first: active ones only unless ``active_only`` is False."""
    q = sa.select(_A).order_by(_A.c.id.desc()).limit(limit)
    if active_only:
        q = q.where(_A.c.active)
    if site is not None:
        q = q.where(_A.c.site == site)
    with engine.connect() as conn:
        return [_view(r) for r in conn.execute(q)]


def history(engine: sa.Engine, alarm_id: int) -> list[TransitionView]:
    """Every transition of an alarm, oldest first: who, when, what and why."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_T).where(_T.c.alarm_id == alarm_id).order_by(_T.c.seq))
        return [
            TransitionView(r.alarm_id, r.seq, r.state, r.severity, r.at_ns, r.by, r.comment, r.message)
            for r in rows
        ]


__all__ = [
    "AlarmError",
    "AlarmView",
    "ConflictError",
    "TransitionView",
    "acknowledge",
    "active",
    "comment",
    "get",
    "history",
    "list_alarms",
    "message",
    "open_alarm",
    "resolve",
    "transition",
]
