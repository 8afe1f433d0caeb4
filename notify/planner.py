"""Decide who is told what: alarm transitions and escalation timers in, notification rows out.

Everything happens inside the caller's store transaction, and the rows are the outbox: they are
committed before the MQTT message is acknowledged and before anything is sent. Each row's key
``(cause, address)`` is unique, so a transition seen twice (redelivery after a crash, two
workers) or a timer run twice adds nothing. Transitions older than the last one applied to an
alarm (by ``seq``) are ignored.

- firing: an alert to the lowest roster level with someone on duty; a rise in severity alerts
  again everyone told so far. Severities in ``notify.escalate_severities`` start two timers:
  a reminder every ``remind_every_s`` to everyone on duty at the levels reached, and the next level after
  ``escalate_after_s`` (then again after as long, level by level).
- acknowledged or resolved: both timers stop; resolved sends an all-clear to everyone who was
  sent (not muted) a message about the alarm.
- a silence in force mutes a message: the row is kept with status ``muted`` and the silence id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from examwatch.alarm import AlarmTransition, Severity
from examwatch.inventory import Inventory
from examwatch.roster import Roster
from examwatch.settings import NotifySettings
from examwatch.store import silences
from examwatch.store.notify_models import Notification, NotifyAlarm
from notify import messages
from notify.messages import MessageKind, Place
from notify.roster import Recipient, levels, recipients

log = logging.getLogger("examwatch.notify.planner")
_N, _NA = cast(sa.Table, Notification.__table__), cast(sa.Table, NotifyAlarm.__table__)
_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Planned:
    """What a step produced: notification ids to send, and the alarm's next timer (ns) if any."""

    queued: list[int]
    alarm_id: int
    next_timer_ns: int | None


class Planner:
    def __init__(self, roster: Roster, inventory: Inventory, cfg: NotifySettings) -> None:
        self.roster, self.inventory, self.cfg = roster, inventory, cfg
        self.tz = ZoneInfo(cfg.timezone)

    def apply(self, conn: sa.Connection, t: AlarmTransition, now_ns: int) -> Planned | None:
        """Apply one transition; None when it is older than what the store has (a repeat)."""
        row = conn.execute(sa.select(_NA).where(_NA.c.alarm_id == t.alarm_id)).mappings().first()
        if row is not None and t.seq <= row["seq"]:
            return None
        p = messages.place(self.inventory, t)
        state: dict[str, Any] = dict(row) if row is not None else {
            "alarm_id": t.alarm_id, "fired_cause": "", "fired_ns": None, "level": 0, "reminders": 0,
            "remind_at_ns": None, "escalate_at_ns": None}
        previous_severity = state.get("severity", t.severity)
        state.update(seq=t.seq, rule=t.rule, site=t.site, subject=t.subject, subject_type=t.subject_type,
                     severity=t.severity, state=t.state, drill=t.drill, updated_ns=now_ns)
        queued: list[int] = []
        if t.state == "firing" and not state["fired_cause"]:
            queued += self._first_alert(conn, t, p, state, now_ns)
        elif t.state == "firing" and t.severity.rank > Severity(previous_severity).rank:
            told = self._told(conn, t.alarm_id)
            queued += self._send(conn, t, p, told, t.transition_id, "alert", state["level"], now_ns)
            self._arm(t, state)
        elif t.state in ("acknowledged", "resolved"):
            state.update(remind_at_ns=None, escalate_at_ns=None)
            if t.state == "resolved" and self.cfg.all_clear and state["fired_cause"]:
                told = self._told(conn, t.alarm_id)
                queued += self._send(conn, t, p, told, t.transition_id, "all_clear", state["level"], now_ns)
        if row is None:
            conn.execute(sa.insert(_NA).values(**state))
        else:
            conn.execute(sa.update(_NA).where(_NA.c.alarm_id == t.alarm_id).values(**state))
        return Planned(queued, t.alarm_id, _next(state))

    def due(self, conn: sa.Connection, alarm_id: int, now_ns: int) -> Planned | None:
        """Run an alarm's reminder or escalation if due (read from the store: another worker may have acted)."""
        row = conn.execute(sa.select(_NA).where(_NA.c.alarm_id == alarm_id)).mappings().first()
        if row is None or row["state"] != "firing" or (_next(dict(row)) or now_ns + 1) > now_ns:
            return None  # acknowledged, resolved, or a stale heap entry: its live entry is queued already
        state = dict(row)
        t = _transition_of(state)
        p = messages.place(self.inventory, t)
        queued: list[int] = []
        if state["escalate_at_ns"] is not None and state["escalate_at_ns"] <= now_ns:
            nxt = [lv for lv in self._levels(t, p) if lv > state["level"]]
            state["escalate_at_ns"] = None
            for lv in nxt:
                people = self._recipients(t, p, lv, now_ns)
                if people:
                    queued += self._send(conn, t, p, people, f"{state['fired_cause']}+l{lv}", "escalation", lv, now_ns)
                    state["level"] = lv
                    if lv != nxt[-1]:
                        state["escalate_at_ns"] = now_ns + int(self.cfg.escalate_after_s * _S)
                    break
        if state["remind_at_ns"] is not None and state["remind_at_ns"] <= now_ns:
            state["reminders"] += 1
            n = state["reminders"]
            # Everyone on duty at the levels reached so far: also those a silence kept from the alert.
            reached = [lv for lv in self._levels(t, p) if lv <= state["level"]]
            people = [r for lv in reached for r in self._recipients(t, p, lv, now_ns)]
            queued += self._send(conn, t, p, people, f"{state['fired_cause']}+r{n}", "reminder", state["level"], now_ns,
                                 n)
            state["remind_at_ns"] = state["remind_at_ns"] + int(self.cfg.remind_every_s * _S)
            if state["remind_at_ns"] <= now_ns:  # behind (the notifier was down): one reminder, not a burst
                state["remind_at_ns"] = now_ns + int(self.cfg.remind_every_s * _S)
        state["updated_ns"] = now_ns
        conn.execute(sa.update(_NA).where(_NA.c.alarm_id == alarm_id).values(**state))
        return Planned(queued, alarm_id, _next(state))

    def timers(self, conn: sa.Connection) -> list[tuple[int, int]]:
        """(due ns, alarm id) of every armed timer: the heap is rebuilt from these at start."""
        rows = conn.execute(sa.select(_NA.c.alarm_id, _NA.c.remind_at_ns, _NA.c.escalate_at_ns)
                            .where(_NA.c.state == "firing")).mappings()
        out = []
        for r in rows:
            due = _next(dict(r))
            if due is not None:
                out.append((due, r["alarm_id"]))
        return out

    def _first_alert(self, conn: sa.Connection, t: AlarmTransition, p: Place, state: dict[str, Any],
                     now_ns: int) -> list[int]:
        state["fired_cause"], state["fired_ns"] = t.transition_id, t.at_ns
        for lv in self._levels(t, p):
            people = self._recipients(t, p, lv, now_ns)
            if people:
                state["level"] = lv
                queued = self._send(conn, t, p, people, t.transition_id, "alert", lv, now_ns)
                self._arm(t, state)
                return queued
        if self._levels(t, p):  # routed, but every level's people are off duty now
            log.warning("alarm %s (%s %s %s): nobody on duty on any route", t.transition_id, t.rule, t.subject,
                        t.severity)
        return []

    def _arm(self, t: AlarmTransition, state: dict[str, Any]) -> None:
        if t.severity not in self.cfg.escalate_severities:
            return
        if state["remind_at_ns"] is None:
            state["remind_at_ns"] = t.at_ns + int(self.cfg.remind_every_s * _S)
        higher = [lv for lv in self._levels(t, messages.place(self.inventory, t)) if lv > state["level"]]
        if state["escalate_at_ns"] is None and higher:
            state["escalate_at_ns"] = (state["fired_ns"] or t.at_ns) + int(self.cfg.escalate_after_s * _S)

    def _levels(self, t: AlarmTransition, p: Place) -> list[int]:
        return levels(self.roster, t.site, p.kind, t.severity, t.drill)

    def _recipients(self, t: AlarmTransition, p: Place, level: int, now_ns: int) -> list[Recipient]:
        local = datetime.fromtimestamp(now_ns / _S, self.tz).time()
        return recipients(self.roster, level, t.site, p.kind, t.severity, t.drill, local)

    @staticmethod
    def _told(conn: sa.Connection, alarm_id: int) -> list[Recipient]:
        rows = conn.execute(sa.select(_N.c.person, _N.c.address).distinct()
                            .where(_N.c.alarm_id == alarm_id, _N.c.status != "muted", _N.c.kind != "all_clear")
                            .order_by(_N.c.person, _N.c.address))
        return [Recipient(r.person, r.person, r.address) for r in rows]

    def _send(self, conn: sa.Connection, t: AlarmTransition, p: Place, people: list[Recipient], cause: str,
              kind: MessageKind, level: int, now_ns: int, n: int = 0) -> list[int]:
        if not people:
            return []
        text = messages.render(t, p, self.roster, kind, self.cfg.language, self.tz,
                               at_ns=now_ns if kind in ("reminder", "escalation") else None, n=n)
        silence = silences.matching(conn, site=t.site, room=p.room, device=p.device, rule=t.rule, at_ns=now_ns)
        status = "muted" if silence is not None else "queued"
        queued = []
        for r in people:
            new_id = _insert_once(conn, {
                "alarm_id": t.alarm_id, "cause": cause, "kind": kind, "level": level, "person": r.person,
                "address": r.phone, "text": text, "drill": t.drill, "status": status,
                "silence_id": silence.id if silence else None, "attempts": 0, "created_ns": now_ns,
                "next_try_ns": now_ns, "sent_ns": None, "result": ""})
            if new_id is not None and status == "queued":
                queued.append(new_id)
        if silence is not None:
            log.info("%s for alarm %s muted by %s %d (%s)", kind, t.transition_id, silence.kind, silence.id,
                     silence.describe())
        return queued


def _insert_once(conn: sa.Connection, values: dict[str, Any]) -> int | None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_N).values(**values).on_conflict_do_nothing(index_elements=["cause", "address"])
    return conn.execute(stmt.returning(_N.c.id)).scalar_one_or_none()


def _next(state: dict[str, Any]) -> int | None:
    due = [v for v in (state.get("remind_at_ns"), state.get("escalate_at_ns")) if v is not None]
    return min(due) if due else None


def _transition_of(state: dict[str, Any]) -> AlarmTransition:
    return AlarmTransition(alarm_id=state["alarm_id"], seq=state["seq"], rule=state["rule"],
                           severity=state["severity"], site=state["site"], subject=state["subject"],
                           subject_type=state["subject_type"], state=state["state"], drill=state["drill"],
                           at_ns=state["updated_ns"])
