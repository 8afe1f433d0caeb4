"""The outbox's rows as the planner writes them: inserted once, withdrawn when stale, read for who was told."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from examwatch.alarm import Severity
from examwatch.store.notify_models import Notification, NotifyAlarm
from notify.messages import ASKING
from notify.roster import Recipient

_N, _NA = cast(sa.Table, Notification.__table__), cast(sa.Table, NotifyAlarm.__table__)
STALE = "dropped: the alarm was acknowledged or cleared before this could be sent"


@dataclass(frozen=True, slots=True)
class Queued:
    """A row for the sender: its id, the rank of its severity (the queue's order), when it is due
    on the clock (None: now), and whether it goes to a group-chat robot (another channel)."""

    id: int
    rank: int
    due_ns: int | None = None
    robot: bool = False


def rank(severity: str) -> int:
    """The send queue's order: critical 4 … warning 1; 0 for an unknown severity."""
    try:
        return Severity(severity).rank
    except ValueError:
        return 0


_INSERT_ONCE = {d.__name__.rsplit(".", 1)[-1]: d.insert(_N).on_conflict_do_nothing(index_elements=["cause", "address"])
                .returning(_N.c.id) for d in (postgresql, sqlite)}  # built once (see planner._LOAD)


def insert_once(conn: sa.Connection, values: dict[str, Any]) -> int | None:
    """Insert a row unless ``(cause, address)`` is there already (a repeat); its id, or None."""
    stmt = _INSERT_ONCE["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    return conn.execute(stmt, values).scalar_one_or_none()


def drop(conn: sa.Connection, alarm_ids: list[int], kinds: tuple[str, ...] = ASKING, why: str = STALE,
         status: str = "dropped") -> int:
    """Withdraw what is still queued of ``kinds`` about these alarms (it became stale, or a flood's
    summary tells it): marked ``status`` with ``why``; how many."""
    if not alarm_ids:
        return 0
    result = conn.execute(sa.update(_N).where(_N.c.alarm_id.in_(alarm_ids), _N.c.status == "queued",
                                              _N.c.kind.in_(kinds)).values(status=status, result=why))
    return int(result.rowcount or 0)


def told(conn: sa.Connection, root: int, statuses: tuple[str, ...] = ("sent", "queued")) -> list[Recipient]:
    """Everyone sent (or about to be sent) an alert, update, reminder or escalation about any alarm
    of the incident whose root is ``root``, each address once."""
    members = sa.select(_NA.c.alarm_id).where(_NA.c.incident == root).scalar_subquery()
    rows = conn.execute(sa.select(_N.c.person, _N.c.address).distinct()
                        .where(sa.or_(_N.c.alarm_id.in_(members), _N.c.alarm_id == root),
                               _N.c.status.in_(statuses), _N.c.kind.in_(ASKING))
                        .order_by(_N.c.person, _N.c.address))
    return [Recipient(r.person, r.person, r.address) for r in rows]


__all__ = ["STALE", "Queued", "drop", "insert_once", "rank", "told"]
