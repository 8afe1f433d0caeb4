"""The notifier's alarm rows (``notify_alarm``): load and save, an incident's open root, a batch's order.

The statements are built once: a statement built per call costs more in SQLAlchemy's compilation
and cache keys than the query itself (650 alarms of a flood took seconds, not milliseconds).
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from examwatch.alarm import AlarmTransition
from examwatch.roster import Incident, Roster
from examwatch.store.notify_models import NotifyAlarm

_NA = cast(sa.Table, NotifyAlarm.__table__)
_S = 1_000_000_000


def order(batch: list[AlarmTransition], roster: Roster) -> list[AlarmTransition]:
    """A batch in the order to apply it: within an incident causes before their effects (mains lost
    before on UPS, so the alert names the cause), then worst first; each alarm's own transitions
    keep their order."""
    def key(ts: list[AlarmTransition]) -> tuple[int, int]:
        incident = roster.incident_of(ts[0].rule)
        return (incident.depth(ts[0].rule) if incident is not None else 0, -ts[0].severity.rank)
    by_alarm: dict[int, list[AlarmTransition]] = {}
    for t in batch:
        by_alarm.setdefault(t.alarm_id, []).append(t)
    return [t for ts in sorted(by_alarm.values(), key=key) for t in ts]


_LOAD = sa.select(_NA).where(_NA.c.alarm_id == sa.bindparam("k"))
INSERT = sa.insert(_NA)
_SAVE = sa.update(_NA).where(_NA.c.alarm_id == sa.bindparam("k")).values(
    {c.name: sa.bindparam(c.name) for c in _NA.c if c.name != "alarm_id"})


def load(conn: sa.Connection, alarm_id: int) -> dict[str, Any] | None:
    """An alarm's row as a dict, or None."""
    row = conn.execute(_LOAD, {"k": alarm_id}).mappings().first()
    return dict(row) if row is not None else None


def save(conn: sa.Connection, state: dict[str, Any]) -> None:
    """Write every column of an alarm's row back."""
    conn.execute(_SAVE, {**state, "k": state["alarm_id"]})


def open_incident(conn: sa.Connection, t: AlarmTransition, incident: Incident, now_ns: int) -> dict[str, Any] | None:
    """The latest root of an incident of this cause at this site that is open and within its window."""
    since = now_ns - int(incident.window_s * _S)
    roots = conn.execute(sa.select(_NA).where(
        _NA.c.site == t.site, _NA.c.drill == t.drill, _NA.c.rule.in_(incident.rules),
        _NA.c.incident == _NA.c.alarm_id, _NA.c.fired_ns >= since, _NA.c.alarm_id != t.alarm_id,
    ).order_by(_NA.c.fired_ns.desc())).mappings().all()
    for root in roots:
        still = conn.execute(sa.select(sa.func.count()).where(
            _NA.c.incident == root["alarm_id"], _NA.c.state != "resolved")).scalar_one()
        if still:
            return dict(root)
    return None


def next_due(state: dict[str, Any]) -> int | None:
    """The row's next timer (reminder or escalation), ns on the clock, or None."""
    due = [v for v in (state.get("remind_at_ns"), state.get("escalate_at_ns")) if v is not None]
    return min(due) if due else None


def transition_of(state: dict[str, Any]) -> AlarmTransition:
    """The row as the transition that last changed it (for texts and routing)."""
    return AlarmTransition(alarm_id=state["alarm_id"], seq=state["seq"], rule=state["rule"],
                           severity=state["severity"], site=state["site"], subject=state["subject"],
                           subject_type=state["subject_type"], state=state["state"], drill=state["drill"],
                           at_ns=state["updated_ns"])


__all__ = ["INSERT", "load", "next_due", "open_incident", "order", "save", "transition_of"]
