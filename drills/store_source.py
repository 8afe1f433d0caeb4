"""Score a drill against the state store: the rules engine's alarms and the notifier's outbox.

The store is where the backend keeps what it did: an alarm's transitions (fired, acknowledged,
resolved, with who and when) and every SMS with the time the gateway took it. So this source
fills in all four times of a fault: detected (firing), notified (the first alert SMS sent),
acknowledged and cleared. The engine and the notifier stamp times with their own wall clock, so
the source is meaningful at ``--speed 1``, where simulated time is wall time.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from drills.evidence import FaultRun, Observation
from examwatch.store import Alarm, Transition
from examwatch.store.notify_models import Notification

_A = cast(sa.Table, Alarm.__table__)
_T = cast(sa.Table, Transition.__table__)
_N = cast(sa.Table, Notification.__table__)
_NS = 1e9


class StoreAlarms:
    """Scores a fault by the alarm the rules engine opened for it, and the SMS the notifier sent."""

    name = "the state store: the rules engine's alarms and the notifier's outbox"

    def __init__(self, store: sa.Engine) -> None:
        self.store = store

    def observe(self, run: FaultRun) -> Observation:
        expect = run.expect
        since, until = int((run.start - 60) * _NS), int((run.end + run.tail_s) * _NS)
        with self.store.connect() as conn:
            alarm = conn.execute(
                sa.select(_A.c.id, _A.c.drill, _A.c.message)
                .where(_A.c.rule == expect.rule, _A.c.subject == run.subject,
                       _A.c.opened_ns >= since, _A.c.opened_ns < until)
                .order_by(_A.c.opened_ns)
                .limit(1)
            ).first()
            if alarm is None:
                return Observation(None, evidence=f"no {expect.rule} alarm for {run.subject} in the store")
            steps = conn.execute(
                sa.select(_T.c.state, sa.func.min(_T.c.at_ns)).where(_T.c.alarm_id == alarm.id).group_by(_T.c.state)
            ).all()
            sent = conn.execute(
                sa.select(sa.func.min(_N.c.sent_ns), sa.func.count()).where(
                    _N.c.alarm_id == alarm.id, _N.c.kind == "alert", _N.c.status == "sent"
                )
            ).one()
        first = {state: at / _NS for state, at in steps}
        marked = "marked drill" if alarm.drill else "NOT marked drill"
        return Observation(
            first.get("firing"),
            sent[0] / _NS if sent[0] is not None else None,
            first.get("acknowledged"),
            first.get("resolved"),
            evidence=f"alarm {alarm.id} ({marked}): {alarm.message}; states {sorted(first)}, {sent[1]} SMS sent",
        )
