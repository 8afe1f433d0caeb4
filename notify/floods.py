"""Floods: many alarms of one rule at once become one summary text per recipient.

When ``notify.flood_threshold`` alarms of one rule (drill or not) are active that fired within
``flood_window_s``, counting those still to come in the batch at hand, the rule is in a flood:
those alarms' texts still queued are withdrawn (status ``folded``), and everyone who would have
been told of any of them (the first roster level on duty, unless a silence mutes it) gets one
summary naming the rule, the count and the sites, ``summary_delay_s`` after the flood began so
that it counts the burst. Later alarms of the rule join the flood while they keep coming within the
window, adding their recipients; the summaries still queued are rewritten with the new count. The
detail is on the wall and in the API. A flood's alarms get no reminders or escalations of their own.

When the last alarm of a flood resolves, the summaries not yet sent are dropped and those who got
one are sent one summary all-clear. Other rules are not held up: a mains loss at another site
during a jammer flood is texted at once, and the sender puts it before lesser messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from examwatch.alarm import AlarmTransition, Severity
from examwatch.store import silences
from examwatch.store.notify_models import Notification, NotifyAlarm, NotifyFlood
from notify import messages
from notify.labels import rule_words
from notify.messages import ASKING, Place, Text
from notify.outbox import Queued, drop, insert_once
from notify.roster import is_robot

if TYPE_CHECKING:
    from notify.planner import Planned, Planner

log = logging.getLogger("examwatch.notify.floods")
N, _NA, _F = (cast(sa.Table, m.__table__) for m in (Notification, NotifyAlarm, NotifyFlood))
_S = 1_000_000_000
FOLDED = "folded into a flood's summary"


def cause(flood_id: int) -> str:
    """The outbox cause of a flood's summaries (``+clear`` for its all-clears)."""
    return f"flood{flood_id}"


@dataclass(slots=True)
class _Flood:
    """A flood as this batch sees it: written back to ``notify_flood`` by :meth:`Floods.finish`."""

    id: int
    rule: str
    drill: bool
    kind: str  # the subject kind of its alarms (the rule's words when the roster has no label)
    severity: Severity
    opened_ns: int
    last_ns: int
    count: int
    sites: list[str]
    told: set[str] = field(default_factory=set)  # addresses with a summary row


class Floods:
    """The floods of one planner. Within a batch the open floods are kept in memory (650 alarms
    joining one flood are 650 counter increments, not 650 read-modify-writes) and written back by
    :meth:`finish`, in the same store transaction; :meth:`forget` drops them if it rolls back."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self._open: dict[tuple[str, bool], _Flood] = {}
        self._dirty: dict[int, _Flood] = {}

    @property
    def cfg(self) -> Any:
        return self.planner.cfg

    def take(self, conn: sa.Connection, t: AlarmTransition, p: Place, state: dict[str, Any], now_ns: int,
             ahead: int, out: Planned) -> bool:
        """Fold the first firing ``t`` into its rule's flood (opening one if it makes one); False if no flood."""
        window = int(self.cfg.flood_window_s * _S)
        flood = self._find(conn, t, now_ns - window)
        if flood is None:
            recent = conn.execute(_RECENT, {"rule": t.rule, "drill": t.drill, "since": now_ns - window,
                                            "me": t.alarm_id}).mappings().all()
            if len(recent) + 1 + ahead < self.cfg.flood_threshold:
                return False
            fid = conn.execute(sa.insert(_F).values(
                rule=t.rule, drill=t.drill, severity=t.severity.value, opened_ns=now_ns, last_ns=now_ns, count=0,
                sites="").returning(_F.c.id)).scalar_one()
            flood = self._open[(t.rule, t.drill)] = _Flood(fid, t.rule, t.drill, p.kind, t.severity, now_ns, now_ns,
                                                            0, [])
            log.warning("flood of %s: %d alarms within %.0f s (with %d more in this batch); one summary per "
                        "recipient", t.rule, len(recent) + 1, self.cfg.flood_window_s, ahead)
            ids = [m["alarm_id"] for m in recent]
            drop(conn, ids, ASKING, why=FOLDED, status="folded")
            if ids:
                conn.execute(sa.update(_NA).where(_NA.c.alarm_id.in_(ids)).values(
                    flood=fid, folded="flood", remind_at_ns=None, escalate_at_ns=None))
            for m in recent:
                out.queued += self._join(conn, flood, _as_transition(m), now_ns)
        state.update(flood=flood.id, folded="flood", incident=None)
        out.queued += self._join(conn, flood, t, now_ns, p)
        return True

    def _find(self, conn: sa.Connection, t: AlarmTransition, since_ns: int) -> _Flood | None:
        flood = self._open.get((t.rule, t.drill))
        if flood is not None:
            return flood if flood.last_ns >= since_ns else None
        row = conn.execute(_OPEN, {"rule": t.rule, "drill": t.drill, "since": since_ns}).mappings().first()
        if row is None:
            return None
        told = set(conn.execute(sa.select(N.c.address).where(N.c.cause == cause(row["id"]))).scalars())
        first = conn.execute(sa.select(_NA).where(_NA.c.flood == row["id"]).limit(1)).mappings().first()
        kind = self.planner.place(_as_transition(first)).kind if first is not None else "device"
        flood = _Flood(row["id"], row["rule"], row["drill"], kind, Severity(row["severity"]), row["opened_ns"],
                       row["last_ns"], row["count"], [s for s in row["sites"].split(",") if s], told)
        self._open[(t.rule, t.drill)] = flood
        return flood

    def _join(self, conn: sa.Connection, flood: _Flood, t: AlarmTransition, now_ns: int,
              p: Place | None = None) -> list[Queued]:
        planner = self.planner
        p = p or planner.place(t)
        flood.count += 1
        if t.site not in flood.sites:
            flood.sites.append(t.site)
        flood.severity = max(flood.severity, t.severity, key=lambda s: s.rank)
        flood.last_ns = max(flood.last_ns, now_ns)
        self._dirty[flood.id] = flood
        if silences.matching(conn, site=t.site, room=p.room, device=p.device, rule=t.rule, at_ns=now_ns) is not None:
            return []  # counted, but its people are not told: a silence covers it
        people = []
        for lv in planner.route_levels(t, p):
            people = planner.people_at(t, p, lv, now_ns)
            if people:
                break
        due = flood.opened_ns + int(self.cfg.summary_delay_s * _S)
        queued = []
        for r in people:
            if r.address in flood.told:
                continue
            flood.told.add(r.address)
            nid = insert_once(conn, {  # its text is written by finish(), when the batch's count is known
                "alarm_id": 0, "cause": cause(flood.id), "kind": "summary", "level": 1, "person": r.person,
                "address": r.address, "text": "", "drill": t.drill, "status": "queued", "silence_id": None,
                "attempts": 0, "created_ns": now_ns, "next_try_ns": max(due, now_ns), "sent_ns": None, "result": "",
                "severity": flood.severity.value})
            if nid is not None:
                queued.append(Queued(nid, flood.severity.rank, due if due > now_ns else None, r.robot))
        return queued

    def _text(self, flood: _Flood, closed_ns: int | None = None) -> str:
        lang = self.cfg.language
        return messages.render(Text(
            kind="summary" if closed_ns is None else "summary_clear", severity=flood.severity, drill=flood.drill,
            what=rule_words(self.planner.roster, flood.rule, flood.kind, lang),
            at=self.planner.clock_text(closed_ns if closed_ns is not None else flood.opened_ns), count=flood.count,
            sites=tuple(flood.sites)), lang)

    def finish(self, conn: sa.Connection) -> None:
        """Write back the floods this batch changed, and their queued summaries' texts; forget the batch."""
        for flood in self._dirty.values():
            self._flush(conn, flood)
        self.forget()

    def _flush(self, conn: sa.Connection, flood: _Flood) -> None:
        conn.execute(sa.update(_F).where(_F.c.id == flood.id).values(
            count=flood.count, sites=",".join(flood.sites), severity=flood.severity.value, last_ns=flood.last_ns))
        conn.execute(sa.update(N).where(N.c.cause == cause(flood.id), N.c.status == "queued")
                     .values(text=self._text(flood), severity=flood.severity.value))

    def forget(self) -> None:
        """Drop what this batch held in memory (after finish, or when its transaction rolled back)."""
        self._open.clear()
        self._dirty.clear()

    def resolved(self, conn: sa.Connection, fid: int, t: AlarmTransition, now_ns: int) -> list[Queued]:
        """An alarm of flood ``fid`` resolved: when it was the last, close the flood and clear its summaries."""
        still = conn.execute(sa.select(sa.func.count())
                             .where(_NA.c.flood == fid, _NA.c.state != "resolved")).scalar_one()
        if still:
            return []
        dirty = self._dirty.pop(fid, None)
        if dirty is not None:
            self._flush(conn, dirty)
            self._open.pop((dirty.rule, dirty.drill), None)
        row = conn.execute(sa.select(_F).where(_F.c.id == fid)).mappings().one()
        conn.execute(sa.update(_F).where(_F.c.id == fid).values(closed_ns=t.at_ns))
        conn.execute(sa.update(N).where(N.c.cause == cause(fid), N.c.status == "queued")
                     .values(status="dropped", result="dropped: every alarm of the flood cleared before it was sent"))
        if not self.cfg.all_clear:
            return []
        told = conn.execute(sa.select(N.c.person, N.c.address)
                            .where(N.c.cause == cause(fid), N.c.status == "sent")).all()
        first = conn.execute(sa.select(_NA).where(_NA.c.flood == fid).limit(1)).mappings().first()
        kind = self.planner.place(_as_transition(first)).kind if first is not None else "device"
        flood = _Flood(fid, row["rule"], row["drill"], kind, Severity(row["severity"]), row["opened_ns"],
                       row["last_ns"], row["count"], [s for s in row["sites"].split(",") if s])
        text = self._text(flood, closed_ns=t.at_ns)
        out = []
        for r in told:
            nid = insert_once(conn, {
                "alarm_id": 0, "cause": f"{cause(fid)}+clear", "kind": "summary_clear", "level": 1,
                "person": r.person, "address": r.address, "text": text, "drill": t.drill, "status": "queued",
                "silence_id": None, "attempts": 0, "created_ns": now_ns, "next_try_ns": now_ns, "sent_ns": None,
                "result": "", "severity": flood.severity.value})
            if nid is not None:
                out.append(Queued(nid, flood.severity.rank, robot=is_robot(r.address)))
        log.info("flood %d of %s over: every alarm resolved; %d summary all-clears", fid, t.rule, len(out))
        return out


_RECENT = sa.select(_NA).where(
    _NA.c.rule == sa.bindparam("rule"), _NA.c.drill == sa.bindparam("drill"), _NA.c.fired_ns >= sa.bindparam("since"),
    _NA.c.state != "resolved", _NA.c.flood.is_(None), _NA.c.fired_cause != "", _NA.c.alarm_id != sa.bindparam("me"),
).order_by(_NA.c.fired_ns)
_OPEN = sa.select(_F).where(
    _F.c.rule == sa.bindparam("rule"), _F.c.drill == sa.bindparam("drill"), _F.c.closed_ns.is_(None),
    _F.c.last_ns >= sa.bindparam("since"),
).order_by(_F.c.id.desc()).limit(1)


def _as_transition(row: Any) -> AlarmTransition:
    return AlarmTransition(alarm_id=row["alarm_id"], seq=row["seq"], rule=row["rule"], severity=row["severity"],
                           site=row["site"], subject=row["subject"], subject_type=row["subject_type"],
                           state=row["state"], drill=row["drill"], at_ns=row["fired_ns"] or row["updated_ns"])


__all__ = ["FOLDED", "Floods", "cause"]
