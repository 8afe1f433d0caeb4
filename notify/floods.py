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


class Floods:
    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self._dirty: set[int] = set()

    @property
    def cfg(self) -> Any:
        return self.planner.cfg

    def take(self, conn: sa.Connection, t: AlarmTransition, p: Place, state: dict[str, Any], now_ns: int,
             ahead: int, out: Planned) -> bool:
        """Fold the first firing ``t`` into its rule's flood (opening one if it makes one); False if no flood."""
        window = int(self.cfg.flood_window_s * _S)
        flood = conn.execute(sa.select(_F).where(_F.c.rule == t.rule, _F.c.drill == t.drill, _F.c.closed_ns.is_(None),
                                                 _F.c.last_ns >= now_ns - window)
                             .order_by(_F.c.id.desc()).limit(1)).mappings().first()
        if flood is None:
            recent = conn.execute(sa.select(_NA).where(
                _NA.c.rule == t.rule, _NA.c.drill == t.drill, _NA.c.fired_ns >= now_ns - window,
                _NA.c.state != "resolved", _NA.c.flood.is_(None), _NA.c.fired_cause != "",
                _NA.c.alarm_id != t.alarm_id).order_by(_NA.c.fired_ns)).mappings().all()
            if len(recent) + 1 + ahead < self.cfg.flood_threshold:
                return False
            fid = conn.execute(sa.insert(_F).values(
                rule=t.rule, drill=t.drill, severity=t.severity.value, opened_ns=now_ns, last_ns=now_ns, count=0,
                sites="").returning(_F.c.id)).scalar_one()
            log.warning("flood of %s: %d alarms within %.0f s (with %d more in this batch); one summary per "
                        "recipient", t.rule, len(recent) + 1, self.cfg.flood_window_s, ahead)
            ids = [m["alarm_id"] for m in recent]
            drop(conn, ids, ASKING, why=FOLDED, status="folded")
            if ids:
                conn.execute(sa.update(_NA).where(_NA.c.alarm_id.in_(ids)).values(
                    flood=fid, folded="flood", remind_at_ns=None, escalate_at_ns=None))
            for m in recent:
                out.queued += self._join(conn, fid, _as_transition(m), now_ns)
        else:
            fid = flood["id"]
        state.update(flood=fid, folded="flood", incident=None)
        out.queued += self._join(conn, fid, t, now_ns, p)
        return True

    def _join(self, conn: sa.Connection, fid: int, t: AlarmTransition, now_ns: int,
              p: Place | None = None) -> list[Queued]:
        planner = self.planner
        p = p or planner.place(t)
        flood = conn.execute(sa.select(_F).where(_F.c.id == fid)).mappings().one()
        sites = [s for s in flood["sites"].split(",") if s]
        if t.site not in sites:
            sites.append(t.site)
        worst = max(Severity(flood["severity"]), t.severity, key=lambda s: s.rank)
        conn.execute(sa.update(_F).where(_F.c.id == fid).values(
            count=_F.c.count + 1, sites=",".join(sites), severity=worst.value, last_ns=max(flood["last_ns"], now_ns)))
        self._dirty.add(fid)
        if silences.matching(conn, site=t.site, room=p.room, device=p.device, rule=t.rule, at_ns=now_ns) is not None:
            return []  # counted, but its people are not told: a silence covers it
        people = []
        for lv in planner.route_levels(t, p):
            people = planner.people_at(t, p, lv, now_ns)
            if people:
                break
        text = self._text(conn, fid, p.kind)
        due = flood["opened_ns"] + int(self.cfg.summary_delay_s * _S)
        queued = []
        for r in people:
            nid = insert_once(conn, {
                "alarm_id": 0, "cause": cause(fid), "kind": "summary", "level": 1, "person": r.person,
                "address": r.address, "text": text, "drill": t.drill, "status": "queued", "silence_id": None,
                "attempts": 0, "created_ns": now_ns, "next_try_ns": max(due, now_ns), "sent_ns": None, "result": "",
                "severity": worst.value})
            if nid is not None:
                queued.append(Queued(nid, worst.rank, due if due > now_ns else None, r.robot))
        return queued

    def _text(self, conn: sa.Connection, fid: int, kind: str | None = None, clear: bool = False) -> str:
        flood = conn.execute(sa.select(_F).where(_F.c.id == fid)).mappings().one()
        lang = self.cfg.language
        if kind is None:  # the kind of its alarms, for the rule's words when the roster has no label
            first = conn.execute(sa.select(_NA).where(_NA.c.flood == fid).limit(1)).mappings().first()
            kind = self.planner.place(_as_transition(first)).kind if first is not None else "device"
        at = flood["closed_ns"] if clear and flood["closed_ns"] else flood["opened_ns"]
        return messages.render(Text(
            kind="summary_clear" if clear else "summary", severity=Severity(flood["severity"]), drill=flood["drill"],
            what=rule_words(self.planner.roster, flood["rule"], kind, lang), at=self.planner.clock_text(at),
            count=flood["count"], sites=tuple(s for s in flood["sites"].split(",") if s)), lang)

    def refresh(self, conn: sa.Connection) -> None:
        """Rewrite the queued summaries of the floods that grew in this batch."""
        for fid in sorted(self._dirty):
            conn.execute(sa.update(N).where(N.c.cause == cause(fid), N.c.status == "queued")
                         .values(text=self._text(conn, fid)))
        self._dirty.clear()

    def resolved(self, conn: sa.Connection, fid: int, t: AlarmTransition, now_ns: int) -> list[Queued]:
        """An alarm of flood ``fid`` resolved: when it was the last, close the flood and clear its summaries."""
        still = conn.execute(sa.select(sa.func.count())
                             .where(_NA.c.flood == fid, _NA.c.state != "resolved")).scalar_one()
        if still:
            return []
        conn.execute(sa.update(_F).where(_F.c.id == fid).values(closed_ns=t.at_ns))
        conn.execute(sa.update(N).where(N.c.cause == cause(fid), N.c.status == "queued")
                     .values(status="dropped", result="dropped: every alarm of the flood cleared before it was sent"))
        self._dirty.discard(fid)
        if not self.cfg.all_clear:
            return []
        told = conn.execute(sa.select(N.c.person, N.c.address, N.c.severity).where(
            N.c.cause == cause(fid), N.c.status == "sent")).all()
        text = self._text(conn, fid, clear=True)
        out = []
        for r in told:
            nid = insert_once(conn, {
                "alarm_id": 0, "cause": f"{cause(fid)}+clear", "kind": "summary_clear", "level": 1,
                "person": r.person, "address": r.address, "text": text, "drill": t.drill, "status": "queued",
                "silence_id": None, "attempts": 0, "created_ns": now_ns, "next_try_ns": now_ns, "sent_ns": None,
                "result": "", "severity": r.severity})
            if nid is not None:
                out.append(Queued(nid, Severity(r.severity).rank, robot=is_robot(r.address)))
        log.info("flood %d of %s over: every alarm resolved; %d summary all-clears", fid, t.rule, len(out))
        return out


def _as_transition(row: Any) -> AlarmTransition:
    return AlarmTransition(alarm_id=row["alarm_id"], seq=row["seq"], rule=row["rule"], severity=row["severity"],
                           site=row["site"], subject=row["subject"], subject_type=row["subject_type"],
                           state=row["state"], drill=row["drill"], at_ns=row["fired_ns"] or row["updated_ns"])


__all__ = ["FOLDED", "Floods", "cause"]
