"""Decide who is told what: alarm transitions, timers and escalation requests in, outbox rows out.

Everything happens inside the caller's store transaction, and the rows are the outbox: they are
committed before the MQTT message is acknowledged and before anything is sent. Each row's key
``(cause, address)`` is unique, so a transition seen twice (redelivery after a crash, two
workers) or a timer run twice adds nothing. Transitions older than the last one applied to an
alarm (by ``seq``) are ignored.

- **First firing**: an alert at once (no group wait) to the lowest roster level with someone on
  duty, with the alarm's short code; unless the alarm joins an open *incident* (the roster's
  ``incidents``: same site, same cause, within its window), where it is inhibited when an active
  member implies it (on UPS after mains lost), folded in silently when it is no worse than what
  was told, and told as an update when it is; or unless it is part of a *flood*
  (:mod:`notify.floods`), told as one summary per recipient.
- **A rise in severity** is news: an update with the new severity, to everyone told of the
  incident, even after an acknowledgement; reminders and escalation start again for it.
- Severities in ``notify.escalate_severities`` start two timers on the incident's root: a reminder
  every ``remind_every_s`` to everyone on duty at the levels reached, and the next level after
  ``escalate_after_s`` (then again after as long, level by level); a reply ``0`` escalates at once.
- **Acknowledged**: what is still queued about the alarm is withdrawn (stale), and the timers stop
  when it is the alarm the incident awaits an acknowledgement for.
- **Resolved**: what is queued about it is withdrawn; when the whole incident is resolved, one
  all-clear (how long it lasted, who acknowledged it) to everyone who was sent a message about it.
- A silence in force mutes a message: the row is kept with status ``muted`` and the silence id.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from examwatch import links
from examwatch.alarm import AlarmTransition, Severity
from examwatch.inventory import Inventory
from examwatch.roster import Roster
from examwatch.settings import NotifySettings
from examwatch.store import silences
from examwatch.store.notify_models import Notification, NotifyAlarm
from notify import alarms, codes, floods, messages
from notify.labels import rule_words
from notify.messages import ASKING, MessageKind, Place, Text
from notify.outbox import Queued, drop, insert_once, rank, told
from notify.roster import Recipient, levels, recipients

log = logging.getLogger("examwatch.notify.planner")
_N, _NA = cast(sa.Table, Notification.__table__), cast(sa.Table, NotifyAlarm.__table__)
_S = 1_000_000_000


@dataclass(slots=True)
class Planned:
    """What a step produced: rows to send, and timers to arm as (due ns on the clock, root alarm id)."""

    queued: list[Queued] = field(default_factory=list)
    timers: list[tuple[int, int]] = field(default_factory=list)


class Planner:
    def __init__(self, roster: Roster, inventory: Inventory, cfg: NotifySettings, public_url: str = "",
                 secret: str = "") -> None:
        self.roster, self.inventory, self.cfg = roster, inventory, cfg
        self.tz = ZoneInfo(cfg.timezone)
        self.public_url, self.secret = public_url.rstrip("/"), secret
        self.floods = floods.Floods(self)

    # -- transitions -------------------------------------------------------------------------------

    def apply_batch(self, conn: sa.Connection, batch: list[AlarmTransition], now_ns: int) -> list[Planned]:
        """Apply a batch of transitions (one store transaction) in :func:`order`, telling each first
        firing how many more of its rule follow, so that a flood is seen before it is texted."""
        batch = order(batch, self.roster)
        firsts = Counter((t.rule, t.drill) for t in batch if t.state == "firing")
        out = []
        try:
            for t in batch:
                if t.state == "firing":
                    firsts[(t.rule, t.drill)] -= 1
                step = self.apply(conn, t, now_ns, ahead=firsts[(t.rule, t.drill)])
                if step is not None:
                    out.append(step)
            self.finish(conn)
        except BaseException:
            self.floods.forget()  # the transaction rolls back: what the batch held in memory goes with it
            raise
        return out

    def apply(self, conn: sa.Connection, t: AlarmTransition, now_ns: int, ahead: int = 0) -> Planned | None:
        """Apply one transition; None when it is older than what the store has (a repeat).

        ``ahead``: how many more first firings of the same rule follow in this batch (a flood is
        recognised before its first alarms are texted one by one)."""
        row = alarms.load(conn, t.alarm_id)
        if row is not None and t.seq <= row["seq"]:
            return None
        state: dict[str, Any] = row if row is not None else {
            "alarm_id": t.alarm_id, "fired_cause": "", "fired_ns": None, "level": 0, "reminders": 0,
            "remind_at_ns": None, "escalate_at_ns": None, "code": None, "incident": None, "folded": "",
            "flood": None, "told_rank": 0, "awaiting": None, "acked_by": None, "acked_ns": None, "resolved_ns": None}
        previous = Severity(state.get("severity") or t.severity)
        state.update(seq=t.seq, rule=t.rule, site=t.site, subject=t.subject, subject_type=t.subject_type,
                     severity=t.severity, state=t.state, drill=t.drill, updated_ns=now_ns)
        out = Planned()
        if row is None:
            conn.execute(alarms.INSERT, state)
        if t.state == "firing" and not state["fired_cause"]:
            state["fired_cause"], state["fired_ns"] = t.transition_id, t.at_ns
            self._first(conn, t, state, now_ns, ahead, out)
        elif t.state == "firing" and t.severity.rank > previous.rank:
            self._rise(conn, t, state, now_ns, out)
        elif t.state == "acknowledged":
            state.update(acked_by=t.by, acked_ns=t.at_ns)
            drop(conn, [t.alarm_id])
            self._stop_if_awaited(conn, state, t.alarm_id)
        elif t.state == "resolved":
            state["resolved_ns"] = t.at_ns
            drop(conn, [t.alarm_id])
            alarms.save(conn, state)
            if state["flood"] is not None:
                out.queued += self.floods.resolved(conn, state["flood"], t, now_ns)
            elif state["incident"] is not None:
                self._resolved(conn, t, state, now_ns, out)
        alarms.save(conn, state)
        return out

    def _first(self, conn: sa.Connection, t: AlarmTransition, state: dict[str, Any], now_ns: int, ahead: int,
               out: Planned) -> None:
        p = self.place(t)
        incident = self.roster.incident_of(t.rule)
        root = alarms.open_incident(conn, t, incident, now_ns) if incident is not None else None
        if root is not None and incident is not None:
            state["incident"] = root["alarm_id"]
            active = conn.execute(sa.select(_NA.c.rule).where(_NA.c.incident == root["alarm_id"],
                                                              _NA.c.state.in_(("firing", "acknowledged")),
                                                              _NA.c.alarm_id != t.alarm_id)).scalars().all()
            cause = next((r for r in active if t.rule in incident.implied(r)), None)
            if cause is not None:
                state["folded"] = "inhibited"
                log.info("alarm %s (%s) inhibited: implied by %s at %s", t.transition_id, t.rule, cause, t.site)
            elif t.severity.rank >= root["told_rank"]:
                self._update(conn, t, p, state, root, now_ns, out)
            else:
                state["folded"] = "folded"
                log.info("alarm %s (%s %s) folded into incident %d", t.transition_id, t.rule, t.severity,
                         root["alarm_id"])
            return
        if self.floods.take(conn, t, p, state, now_ns, ahead, out):
            return
        state.update(incident=t.alarm_id, told_rank=t.severity.rank, awaiting=t.alarm_id)
        for lv in self.route_levels(t, p):
            people = self.people_at(t, p, lv, now_ns)
            if people:
                state["level"] = lv
                state["code"] = state["code"] or codes.new_code(conn)
                out.queued += self._send(conn, t, p, people, t.transition_id, "alert", lv, now_ns, state,
                                         at_ns=t.at_ns)
                self._arm(t, p, state, state["fired_ns"], out)
                return
        if self.route_levels(t, p):  # routed, but every level's people are off duty now
            log.warning("alarm %s (%s %s %s): nobody on duty on any route", t.transition_id, t.rule, t.subject,
                        t.severity)

    def _rise(self, conn: sa.Connection, t: AlarmTransition, state: dict[str, Any], now_ns: int,
              out: Planned) -> None:
        if state["flood"] is not None or state["incident"] is None:
            return  # a flood's alarm is told by its summary; one never told has nothing to update
        root = state if state["incident"] == t.alarm_id else alarms.load(conn, state["incident"])
        if root is None or t.severity.rank < root["told_rank"]:
            return
        self._update(conn, t, self.place(t), state, root, now_ns, out)

    def _update(self, conn: sa.Connection, t: AlarmTransition, p: Place, state: dict[str, Any],
                root: dict[str, Any], now_ns: int, out: Planned) -> None:
        """Tell everyone told of the incident (or its first level, if nobody was) that it got worse."""
        people = told(conn, root["alarm_id"])
        level = root["level"]
        if not people:
            for lv in self.route_levels(t, p):
                people = self.people_at(t, p, lv, now_ns)
                if people:
                    level = root["level"] = max(root["level"], lv)
                    break
        state["folded"] = ""
        state["code"] = state["code"] or codes.new_code(conn)
        out.queued += self._send(conn, t, p, people, t.transition_id, "update", level, now_ns, state, at_ns=t.at_ns)
        root.update(told_rank=max(root["told_rank"], t.severity.rank), awaiting=t.alarm_id, reminders=0,
                    remind_at_ns=None, escalate_at_ns=None)
        self._arm(t, p, root, now_ns, out)
        if root is not state:
            alarms.save(conn, root)

    def _stop_if_awaited(self, conn: sa.Connection, state: dict[str, Any], alarm_id: int) -> None:
        if state["incident"] is None:
            return
        root = state if state["incident"] == alarm_id else alarms.load(conn, state["incident"])
        if root is not None and root["awaiting"] == alarm_id:
            root.update(remind_at_ns=None, escalate_at_ns=None)
            drop(conn, [alarm_id], ("reminder", "escalation"))
            if root is not state:
                alarms.save(conn, root)

    def _resolved(self, conn: sa.Connection, t: AlarmTransition, state: dict[str, Any], now_ns: int,
                  out: Planned) -> None:
        self._stop_if_awaited(conn, state, t.alarm_id)
        root_id = state["incident"]
        still = conn.execute(sa.select(sa.func.count()).where(
            sa.or_(_NA.c.incident == root_id, _NA.c.alarm_id == root_id), _NA.c.state != "resolved")).scalar_one()
        if still:
            return
        root = state if root_id == t.alarm_id else alarms.load(conn, root_id)
        if root is None:
            return
        root.update(remind_at_ns=None, escalate_at_ns=None)
        if self.cfg.all_clear:
            people = told(conn, root_id, ("sent",))
            rt = alarms.transition_of(root)
            lasted = max(0, (t.at_ns - (root["fired_ns"] or t.at_ns)) // (60 * _S))
            acked = root["acked_by"] or state["acked_by"]
            out.queued += self._send(conn, rt, self.place(rt), people, t.transition_id, "all_clear", root["level"],
                                     now_ns, root, at_ns=t.at_ns, lasted_min=int(lasted),
                                     acked_by=self._name(acked) if acked else None)
        if root is not state:
            alarms.save(conn, root)

    # -- timers and requests -----------------------------------------------------------------------

    def due(self, conn: sa.Connection, root_id: int, now_ns: int) -> Planned | None:
        """Run an incident's reminder or escalation if due (read from the store: another worker may have acted)."""
        root = alarms.load(conn, root_id)
        if root is None or root["incident"] != root_id or (alarms.next_due(root) or now_ns + 1) > now_ns:
            return None  # a stale heap entry: its live entry is queued already
        about = root if root["awaiting"] in (None, root_id) else alarms.load(conn, root["awaiting"])
        if about is None or about["state"] != "firing":
            root.update(remind_at_ns=None, escalate_at_ns=None)
            alarms.save(conn, root)
            return Planned()
        out = Planned()
        if root["escalate_at_ns"] is not None and root["escalate_at_ns"] <= now_ns:
            root["escalate_at_ns"] = None
            self._escalate(conn, root, about, now_ns, out)
        if root["remind_at_ns"] is not None and root["remind_at_ns"] <= now_ns:
            self._remind(conn, root, about, now_ns, out)
        root["updated_ns"] = now_ns
        alarms.save(conn, root)
        nxt = alarms.next_due(root)
        if nxt is not None:
            out.timers.append((nxt, root_id))
        return out

    def escalate_now(self, conn: sa.Connection, alarm_id: int, by: str, now_ns: int) -> Planned:
        """A duty officer asked (reply ``0``) that ``alarm_id`` go to the next roster level now."""
        state = alarms.load(conn, alarm_id)
        root = None if state is None or state["incident"] is None else (
            state if state["incident"] == alarm_id else alarms.load(conn, state["incident"]))
        out = Planned()
        if state is None or root is None or state["state"] == "resolved":
            log.warning("escalation of alarm %d asked by %s: no open alarm the notifier told of", alarm_id, by)
            return out
        log.info("escalation of alarm %d asked by %s", alarm_id, by)
        if not self._escalate(conn, root, state, now_ns, out):
            log.warning("escalation of alarm %d asked by %s: no higher level on duty", alarm_id, by)
        alarms.save(conn, root)
        nxt = alarms.next_due(root)
        if nxt is not None:
            out.timers.append((nxt, root["alarm_id"]))
        return out

    def _escalate(self, conn: sa.Connection, root: dict[str, Any], about: dict[str, Any], now_ns: int,
                  out: Planned) -> bool:
        t = alarms.transition_of(about)
        p = self.place(t)
        for lv in [lv for lv in self.route_levels(t, p) if lv > root["level"]]:
            people = self.people_at(t, p, lv, now_ns)
            if people:
                out.queued += self._send(conn, t, p, people, f"{root['fired_cause']}+l{lv}", "escalation", lv,
                                         now_ns, about, at_ns=about["fired_ns"])
                root["level"] = lv
                higher = [x for x in self.route_levels(t, p) if x > lv]
                root["escalate_at_ns"] = now_ns + int(self.cfg.escalate_after_s * _S) if higher else None
                return True
        return False

    def _remind(self, conn: sa.Connection, root: dict[str, Any], about: dict[str, Any], now_ns: int,
                out: Planned) -> None:
        t = alarms.transition_of(about)
        p = self.place(t)
        root["reminders"] += 1
        n = root["reminders"]
        # Everyone on duty at the levels reached so far: also those a silence kept from the alert.
        reached = [lv for lv in self.route_levels(t, p) if lv <= root["level"]]
        people = [r for lv in reached for r in self.people_at(t, p, lv, now_ns) if not r.robot]
        out.queued += self._send(conn, t, p, people, f"{root['fired_cause']}+r{n}", "reminder", root["level"],
                                 now_ns, about, at_ns=about["fired_ns"], n=n)
        root["remind_at_ns"] += int(self.cfg.remind_every_s * _S)
        if root["remind_at_ns"] <= now_ns:  # behind (the notifier was down): one reminder, not a burst
            root["remind_at_ns"] = now_ns + int(self.cfg.remind_every_s * _S)

    def timers(self, conn: sa.Connection) -> list[tuple[int, int]]:
        """(due ns, root alarm id) of every armed timer: the heap is rebuilt from these at start."""
        rows = conn.execute(sa.select(_NA.c.alarm_id, _NA.c.remind_at_ns, _NA.c.escalate_at_ns)
                            .where(sa.or_(_NA.c.remind_at_ns.is_not(None), _NA.c.escalate_at_ns.is_not(None))))
        return [(due, r.alarm_id) for r in rows.mappings() if (due := alarms.next_due(dict(r))) is not None]

    def finish(self, conn: sa.Connection) -> None:
        """At the end of a batch's transaction: write back its floods and their queued summaries."""
        self.floods.finish(conn)

    # -- helpers -----------------------------------------------------------------------------------

    def _arm(self, t: AlarmTransition, p: Place, root: dict[str, Any], from_ns: int, out: Planned) -> None:
        if t.severity not in self.cfg.escalate_severities:
            return
        root["remind_at_ns"] = from_ns + int(self.cfg.remind_every_s * _S)
        higher = [lv for lv in self.route_levels(t, p) if lv > root["level"]]
        root["escalate_at_ns"] = from_ns + int(self.cfg.escalate_after_s * _S) if higher else None
        nxt = alarms.next_due(root)
        if nxt is not None:
            out.timers.append((nxt, root["alarm_id"]))

    def place(self, t: AlarmTransition) -> Place:
        return messages.place(self.inventory, t)

    def route_levels(self, t: AlarmTransition, p: Place) -> list[int]:
        """The roster levels with a route for this alarm, lowest first."""
        return levels(self.roster, t.site, p.kind, t.severity, t.drill)

    def people_at(self, t: AlarmTransition, p: Place, level: int, now_ns: int) -> list[Recipient]:
        """Who is on duty at ``level`` for this alarm at ``now_ns`` (phones and robots)."""
        return recipients(self.roster, level, t.site, p.kind, t.severity, t.drill, self.local(now_ns))

    def local(self, ns: int) -> dtime:
        """The time of day at ``ns`` in the notifier's time zone (people's active hours)."""
        return datetime.fromtimestamp(ns / _S, self.tz).time()

    def clock_text(self, ns: int) -> str:
        """``HH:MM:SS`` of ``ns`` in the notifier's time zone."""
        return datetime.fromtimestamp(ns / _S, self.tz).strftime("%H:%M:%S")

    def _name(self, person_id: str) -> str:
        person = self.roster.by_id.get(person_id)
        return person.name if person is not None else person_id

    def text(self, t: AlarmTransition, p: Place, kind: MessageKind, at_ns: int, **extra: Any) -> Text:
        """What a text about ``t`` says (without the link and the recipient's reply flag)."""
        lang = self.cfg.language
        return Text(kind=kind, severity=t.severity, drill=t.drill, what=rule_words(self.roster, t.rule, p.kind, lang),
                    at=self.clock_text(at_ns), site=t.site, site_name=p.site_name,
                    where=messages.where_words(p, lang), **extra)

    def _send(self, conn: sa.Connection, t: AlarmTransition, p: Place, people: list[Recipient], cause: str,
              kind: MessageKind, level: int, now_ns: int, about: dict[str, Any], at_ns: int | None = None,
              **extra: Any) -> list[Queued]:
        if not people:
            return []
        code = about.get("code") if kind in ASKING else None
        base = self.text(t, p, kind, at_ns if at_ns is not None else now_ns, code=code, **extra)
        silence = silences.matching(conn, site=t.site, room=p.room, device=p.device, rule=t.rule, at_ns=now_ns)
        status = "muted" if silence is not None else "queued"
        queued = []
        for r in people:
            if r.robot and kind == "reminder":
                continue
            shown = Text(**{**_fields(base), "reply": not r.robot})
            new_id = insert_once(conn, {
                "alarm_id": t.alarm_id, "cause": cause, "kind": kind, "level": level, "person": r.person,
                "address": r.address, "text": messages.render(shown, self.cfg.language), "drill": t.drill,
                "status": status, "silence_id": silence.id if silence else None, "attempts": 0, "created_ns": now_ns,
                "next_try_ns": now_ns, "sent_ns": None, "result": "", "severity": t.severity.value})
            if new_id is None:
                continue
            if self.public_url and self.secret and kind in ASKING and not r.robot:
                self._link(conn, new_id, shown, now_ns)
            if status == "queued":
                queued.append(Queued(new_id, t.severity.rank, robot=r.robot))
        if silence is not None:
            log.info("%s for alarm %s muted by %s %d (%s)", kind, t.transition_id, silence.kind, silence.id,
                     silence.describe())
        return queued

    def _link(self, conn: sa.Connection, nid: int, shown: Text, now_ns: int) -> None:
        """Put the signed link to the mobile page in the text, when it still fits one SMS."""
        token = links.sign(self.secret, nid, now_ns / _S + self.cfg.link_ttl_s)
        with_link = messages.render(Text(**{**_fields(shown), "link": f"{self.public_url}/m/{token}"}),
                                    self.cfg.language)
        if token in with_link:
            conn.execute(sa.update(_N).where(_N.c.id == nid).values(text=with_link))


def _fields(m: Text) -> dict[str, Any]:
    return {f: getattr(m, f) for f in m.__dataclass_fields__}


order = alarms.order

__all__ = ["Planned", "Planner", "order", "rank"]
