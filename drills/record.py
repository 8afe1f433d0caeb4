"""What the backend recorded during a drill, read from its stores (never from its processes).

- the alarm store (``settings.store.url``): every alarm that fired in the drill's span and its
  transitions (fired, rose, acknowledged, resolved: who, when, why);
- the notifier's store (``settings.notify_store_url``): every notification (alert, reminder,
  escalation, all-clear) with its text, recipient and the time the gateway took it, delivery
  reports, each alarm's short code, and the SMS replies received.

Times are converted from the stores' nanoseconds to epoch seconds on the drill clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa

from examwatch.alarm import Severity
from examwatch.store import Alarm, Transition
from examwatch.store.notify_models import Notification, NotifyAlarm, SmsReply

_A = cast(sa.Table, Alarm.__table__)
_T = cast(sa.Table, Transition.__table__)
_N = cast(sa.Table, Notification.__table__)
_NA = cast(sa.Table, NotifyAlarm.__table__)
_R = cast(sa.Table, SmsReply.__table__)
NS = 1e9


@dataclass(frozen=True)
class Step:
    """One transition of an alarm."""

    seq: int
    state: str
    severity: str
    at: float
    by: str
    comment: str


@dataclass
class AlarmRec:
    id: int
    rule: str
    subject: str
    subject_type: str
    site: str
    drill: bool
    message: str
    steps: list[Step] = field(default_factory=list)

    @property
    def fired(self) -> float | None:
        """When it first fired (pending is not yet an alarm anyone sees)."""
        return next((s.at for s in self.steps if s.state == "firing"), None)

    def reached(self, severity: Severity) -> float | None:
        """When it first fired (or rose) at ``severity``."""
        return next((s.at for s in self.steps if s.state == "firing" and s.severity == severity.value), None)

    @property
    def severity(self) -> str:
        """The highest severity it fired at."""
        fired = [Severity(s.severity) for s in self.steps if s.state == "firing"]
        return max(fired, key=lambda s: s.rank).value if fired else self.steps[-1].severity

    def first(self, state: str) -> Step | None:
        return next((s for s in self.steps if s.state == state), None)


@dataclass(frozen=True)
class NotifRec:
    id: int
    alarm_id: int
    cause: str
    kind: str
    level: int
    person: str
    address: str
    text: str
    drill: bool
    status: str
    created: float
    sent: float | None
    delivery: str
    delivered: float | None


@dataclass(frozen=True)
class ReplyRec:
    at: float
    sender: str
    text: str
    outcome: str
    person: str | None
    alarm_id: int | None
    answer: str


@dataclass
class Record:
    alarms: list[AlarmRec]
    notifications: list[NotifRec]
    replies: list[ReplyRec]
    codes: dict[int, str]
    #: alarm id → the root of the incident the notifier told it with, for alarms not their own root
    #: (a mains loss's "on UPS" and "UPS low" go out as one text about the mains loss)
    incident_of: dict[int, int] = field(default_factory=dict)

    def alarm(self, alarm_id: int) -> AlarmRec | None:
        return next((a for a in self.alarms if a.id == alarm_id), None)


def _table_exists(engine: sa.Engine, name: str) -> bool:
    return sa.inspect(engine).has_table(name)


def read(store: sa.Engine, notify_store: sa.Engine, start: float, end: float) -> Record:
    """Alarms that fired in ``[start, end]`` with all their transitions, and every notification,
    reply and code about them (or sent in the span)."""
    lo, hi = int(start * NS), int(end * NS)
    with store.connect() as conn:
        fired = sa.select(_T.c.alarm_id).where(_T.c.state == "firing", _T.c.at_ns >= lo, _T.c.at_ns <= hi)
        rows = conn.execute(sa.select(_A).where(_A.c.id.in_(fired)).order_by(_A.c.id)).all()
        alarms = {r.id: AlarmRec(r.id, r.rule, r.subject, r.subject_type, r.site, bool(r.drill), r.message or "")
                  for r in rows}
        if alarms:
            for t in conn.execute(sa.select(_T).where(_T.c.alarm_id.in_(list(alarms))).order_by(_T.c.alarm_id,
                                                                                                   _T.c.seq)):
                alarms[t.alarm_id].steps.append(Step(t.seq, t.state, t.severity, t.at_ns / NS, t.by, t.comment or ""))
    notes: list[NotifRec] = []
    codes: dict[int, str] = {}
    incident_of: dict[int, int] = {}
    replies: list[ReplyRec] = []
    if _table_exists(notify_store, "notification"):
        with notify_store.connect() as conn:
            q = sa.select(_N).where(sa.or_(_N.c.alarm_id.in_(list(alarms) or [-1]),
                                           sa.and_(_N.c.created_ns >= lo, _N.c.created_ns <= hi)))
            notes = [_notif(r) for r in conn.execute(q.order_by(_N.c.id)).mappings()]
            if _table_exists(notify_store, "notify_alarm"):
                q2 = sa.select(_NA.c.alarm_id, _NA.c.code).where(_NA.c.code.is_not(None))
                codes = {r.alarm_id: r.code for r in conn.execute(q2)}
                q4 = sa.select(_NA.c.alarm_id, _NA.c.incident).where(_NA.c.incident.is_not(None),
                                                                     _NA.c.incident != _NA.c.alarm_id)
                incident_of = {r.alarm_id: r.incident for r in conn.execute(q4)}
    seen: set[str] = set()
    for engine in (notify_store, store):  # the API audits replies in one of them; read both once
        if str(engine.url) in seen or not _table_exists(engine, "sms_reply"):
            continue
        seen.add(str(engine.url))
        with engine.connect() as conn:
            q3 = sa.select(_R).where(_R.c.at_ns >= lo).order_by(_R.c.id)
            replies += [ReplyRec(r.at_ns / NS, r.sender, r.text, r.outcome, r.person, r.alarm_id, r.answer or "")
                        for r in conn.execute(q3)]
    return Record(list(alarms.values()), notes, replies, codes, incident_of)


def _notif(r: Any) -> NotifRec:
    sent = r["sent_ns"] / NS if r["sent_ns"] is not None else None
    delivered = r["delivered_ns"] / NS if r.get("delivered_ns") is not None else None
    return NotifRec(r["id"], r["alarm_id"], r["cause"], r["kind"], r["level"], r["person"], r["address"], r["text"],
                    bool(r["drill"]), r["status"], r["created_ns"] / NS, sent, r.get("delivery") or "", delivered)


def active_alarm(store: sa.Engine, rule: str, subject: str, drill: bool | None = None) -> int | None:
    """The id of the active alarm of ``rule`` on ``subject`` that has fired (None: none yet)."""
    conds = [_A.c.rule == rule, _A.c.subject == subject, _A.c.active.is_(True), _A.c.state != "pending"]
    if drill is not None:
        conds.append(_A.c.drill.is_(drill))
    with store.connect() as conn:
        row = conn.execute(sa.select(_A.c.id).where(*conds).order_by(_A.c.id.desc()).limit(1)).first()
    return None if row is None else int(row.id)


def code_of(notify_store: sa.Engine, alarm_id: int) -> str | None:
    """The short code the alarm's alert SMS carried (None: the notifier gave it none)."""
    if not _table_exists(notify_store, "notify_alarm"):
        return None
    with notify_store.connect() as conn:
        row = conn.execute(sa.select(_NA.c.code).where(_NA.c.alarm_id == alarm_id)).first()
    return None if row is None or row.code is None else str(row.code)


def queued(notify_store: sa.Engine, until: float) -> int:
    """Notifications created by ``until`` still waiting to be sent."""
    if not _table_exists(notify_store, "notification"):
        return 0
    with notify_store.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_N).where(
            _N.c.status == "queued", _N.c.created_ns <= int(until * NS))).scalar_one())
