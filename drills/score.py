"""Score a drill from what people saw: the alarms in the store and the SMS that reached phones.

1. Every expected alarm (of a fault, or of the scenario) is looked up by rule and subject: did
   it fire at the expected severity by its deadline; did the first SMS reach everyone the roster
   puts on the first level for it, in time; was it acknowledged as the scenario says, and did
   reminders and escalation stop then; did it clear after the fault, with an all-clear SMS.
2. Every alarm that fired during the drill is matched to a fault (its subject, within the
   fault's window, or one of the consequences the fault type or scenario declares) or to a
   scenario ``expect``. Whatever matches nothing is a **false alarm**, listed with rule, subject,
   severity, time and the timetable moment it fell on.
3. Every SMS the SMS centre received is matched to a notification in the notifier's outbox (same
   recipient, same text, about the same time) and through it to its alarm, or to the answer of an
   SMS reply. One that matches nothing is unaccounted for; one about a false alarm is false; a
   notification sent that never arrived is lost. Every text must be Chinese and fit one SMS.

Deadlines are drill-clock seconds plus the chain's processing allowance (see
:class:`drills.actions.Deadlines`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from drills.plan import Expectation, FaultPlan, Plan
from drills.record import AlarmRec, NotifRec, Record
from drills.report import (
    ActionScore,
    AlarmBrief,
    ExpectationScore,
    FaultScore,
    QuietScore,
    Report,
    SmsScore,
    SmsSummary,
    Told,
)
from drills.sms import Received
from drills.times import moment
from examwatch.alarm import Severity
from examwatch.roster import Roster

SMS_CHARS = 70  # one UCS-2 SMS
_CJK = re.compile(r"[\u3400-\u9fff]")
_ENGLISH = re.compile(r"[a-z]{3,}")


@dataclass
class Context:
    """What the scorer needs beyond the plan and the record."""

    roster: Roster
    timezone: str  # the roster's active hours are in it
    all_clear: bool  # the notifier sends all-clears
    received: list[Received] | None  # what reached phones; None: no SMS source
    sms_source: str
    to_clock: Callable[[float], float]  # an SMS centre's wall time → drill clock
    actions: list[ActionScore]
    integrity: list[str]
    warnings: list[str] = field(default_factory=list)


def text_problem(text: str) -> str | None:
    """Why ``text`` is not one Chinese SMS, or None."""
    if len(text) > SMS_CHARS:
        return f"{len(text)} characters, more than one SMS ({SMS_CHARS})"
    if not _CJK.search(text):
        return "not Chinese"
    english = _ENGLISH.findall(text)
    if english:
        return f"English words in the text: {', '.join(dict.fromkeys(english))}"
    return None


def first_level(roster: Roster, site: str, kind: str, severity: str, drill: bool, local: datetime) -> list[str]:
    """The people the roster tells first of such an alarm at ``local`` time (its lowest matching level)."""
    routes = [r for r in roster.routes if r.matches(site, kind, severity, drill)]
    if not routes:
        return []
    level = min(r.level for r in routes)
    people = roster.by_id
    return sorted({p for r in routes if r.level == level for p in r.people if people[p].on_duty(local.time())})


class Scorer:
    def __init__(self, plan: Plan, record: Record, ctx: Context) -> None:
        self.plan = plan
        self.record = record
        self.ctx = ctx
        self.tz = ZoneInfo(ctx.timezone)
        self.fired = [a for a in record.alarms if a.fired is not None and plan.start <= a.fired <= plan.end]
        self.by_alarm: dict[int, list[NotifRec]] = defaultdict(list)
        for n in record.notifications:
            self.by_alarm[n.alarm_id].append(n)
        self.received_ids: set[int] = set()  # notifications that reached a phone
        self.sms = SmsSummary(ctx.sms_source)
        self.phones = {ph: p for p in ctx.roster.people for ph in p.phones}
        self.matched: set[int] = set()  # alarm ids that an expectation took

    # -- SMS ------------------------------------------------------------------------------------
    def _account_sms(self) -> None:
        """Match what reached the SMS centre to the outbox (see the module docstring, step 3).

        Texts carry times and short codes, so recipient and text pick the row; of several, the
        one sent nearest in time. Times alone cannot: under load the notifier records a send
        seconds of wall time (minutes of a compressed clock) after the SMS centre has it."""
        plan, sms = self.plan, self.sms
        if self.ctx.received is None:
            return
        free: dict[tuple[str, str], list[NotifRec]] = defaultdict(list)
        for n in self.record.notifications:
            free[(n.address, n.text)].append(n)
        answers = {(r.sender, r.answer) for r in self.record.replies if r.answer}
        for msg in self.ctx.received:
            at = self.ctx.to_clock(msg.wall)
            if at > plan.end + plan.allowance():
                sms.after_drill += 1
                continue
            if at < plan.start - plan.allowance():
                continue
            sms.received += 1
            rows = free[(msg.to, msg.text)]
            who = self._who(msg.to)
            problem = text_problem(msg.text)
            if problem:
                sms.text_problems.append(SmsScore(at, msg.to, who, msg.text, problem))
            if not rows:
                kind = "reply" if (msg.to, msg.text) in answers else "unaccounted"
                self._count(who, kind)
                if kind == "unaccounted":
                    sms.unaccounted.append(SmsScore(at, msg.to, who, msg.text, "no outbox row has this text for "
                                                                               "this number"))
                continue
            row = min(rows, key=lambda n: abs((n.sent or n.created) - at))
            rows.remove(row)
            self.received_ids.add(row.id)
            self._count(who, row.kind)
            if row.status != "sent":
                sms.inconsistent.append(SmsScore(at, msg.to, who, msg.text, f"the outbox says {row.status}, yet it "
                                                                            "reached the phone"))
        for rows in free.values():
            for n in rows:
                if n.status == "sent" and n.sent is not None and plan.start <= n.sent <= plan.end:
                    sms.lost.append(SmsScore(n.sent, n.address, self._who(n.address), n.text,
                                             "the outbox says sent; the SMS centre never received it"))

    def _who(self, address: str) -> str:
        person = self.phones.get(address)
        return f"{person.name} ({person.id})" if person else address

    def _count(self, who: str, kind: str) -> None:
        counts = self.sms.per_recipient.setdefault(who, {})
        counts[kind] = counts.get(kind, 0) + 1

    def _reached_phone(self, n: NotifRec) -> bool:
        if self.ctx.received is None:
            return n.delivery == "delivered" if self.ctx.sms_source.startswith("delivery") else n.status == "sent"
        return n.id in self.received_ids

    # -- expectations -----------------------------------------------------------------------
    def _candidates(self, e: Expectation, fp: FaultPlan | None) -> list[AlarmRec]:
        last = max(e.due, fp.end + fp.linger) if fp is not None else e.due
        return [a for a in self.fired if a.rule == e.rule and a.subject == e.subject
                and a.fired is not None and e.start - 1 <= a.fired <= last]

    def expectation(self, e: Expectation, fp: FaultPlan | None) -> ExpectationScore:
        s = ExpectationScore(e.key, e.rule, e.severity.value, e.subject, e.site, e.start, e.due,
                             clear_due=e.clear_due)
        found = self._candidates(e, fp)
        if not found:
            s.problems.append(f"no {e.rule} alarm on {e.subject} by {self._t(e.due)}")
            return s
        alarm = next((a for a in found if a.reached(e.severity) is not None), found[0])
        self.matched.add(alarm.id)
        s.alarm_id, s.fired_at, s.message = alarm.id, alarm.fired, alarm.message
        s.reached_at = alarm.reached(e.severity)
        if s.reached_at is None:
            s.problems.append(f"{e.rule} fired at {alarm.severity}, never at {e.severity.value}")
            return s
        if s.reached_at > e.due:
            s.problems.append(f"detected {self._delay(s.reached_at - e.start)} after the fault, due within "
                              f"{self._delay(e.due - e.start)}")
        self._notified(s, alarm, e.severity)
        self._ack(s, alarm, fp)
        if e.clear:
            self._cleared(s, alarm, e)
        return s

    def _notified(self, s: ExpectationScore, alarm: AlarmRec, severity: Severity) -> None:
        assert s.reached_at is not None
        kind = self._subject_kind(alarm)
        local = datetime.fromtimestamp(s.reached_at, self.tz)
        s.should_hear = first_level(self.ctx.roster, alarm.site, kind, severity.value, alarm.drill, local)
        s.notify_due = s.reached_at + self.plan.notify_deadline(severity)
        names = self.ctx.roster.by_id
        root = self.record.incident_of.get(alarm.id)
        about = [(n, False) for n in self.by_alarm.get(alarm.id, [])]
        about += [(n, True) for n in self.by_alarm.get(root, [])] if root is not None else []
        for n, via_root in about:
            s.told.append(Told(n.person, names[n.person].name if n.person in names else n.person, n.address,
                               n.kind, n.level, n.sent, self._reached_phone(n), via_root))
        # the incident's text counts for the alarm's first firing even when it went out first (a
        # mains loss told, its "UPS low" is folded in); a later rise must be told of itself
        folded_in = alarm.fired is not None and s.reached_at <= alarm.fired + 1
        for person in s.should_hear:
            heard = [max(t.at, s.reached_at) for t in s.told if t.person == person and t.kind != "all_clear"
                     and t.received and t.at is not None and (t.at >= s.reached_at - 1 or (t.incident and folded_in))]
            muted = any(n.person == person and n.status == "muted" for n in self.by_alarm.get(alarm.id, []))
            if not heard and muted:
                s.muted.append(person)
                continue  # a silence set by people (the scenario's, or the office's) held it back
            if not heard:
                s.problems.append(f"{person} (level 1) never received an SMS about it")
            elif min(heard) > s.notify_due:
                s.problems.append(f"{person} heard {self._delay(min(heard) - s.reached_at)} after detection, "
                                  f"due within {self._delay(s.notify_due - s.reached_at)}")

    def _subject_kind(self, alarm: AlarmRec) -> str:
        if alarm.subject_type == "device":
            ref = self.plan.inventory.devices.get(alarm.subject)
            return ref.kind if ref is not None else "device"
        return alarm.subject_type

    def _ack(self, s: ExpectationScore, alarm: AlarmRec, fp: FaultPlan | None) -> None:
        step = alarm.first("acknowledged")
        if step is not None:
            s.acked_by, s.acked_at, s.ack_comment = step.by, step.at, step.comment
        wanted = [a for a in self.plan.actions if fp is not None and a.fault is fp and a.rule == s.rule
                  and a.action.type == "ack"]
        if not wanted:
            return
        if step is None:
            s.problems.append(f"not acknowledged (the scenario acknowledges it at {self._t(wanted[0].at)})")
            return
        # a rise in severity after the acknowledgement is news again: reminders may resume from it
        rises = [x.at for x in alarm.steps if x.state == "firing" and x.at > step.at]
        late, until = step.at + self.plan.allowance(), rises[0] if rises else float("inf")
        nagged = [n for n in self.by_alarm.get(alarm.id, []) if n.kind in ("reminder", "escalation")
                  and late < n.created < until]
        if nagged:
            s.problems.append(f"{len(nagged)} reminder/escalation SMS after the acknowledgement at "
                              f"{self._t(step.at)}")

    def _cleared(self, s: ExpectationScore, alarm: AlarmRec, e: Expectation) -> None:
        step = alarm.first("resolved")
        if step is None:
            s.problems.append(f"not cleared by {self._t(e.clear_due)}")
            return
        s.cleared_at, s.cleared_by = step.at, step.by
        if e.clear_due is not None and step.at > e.clear_due:
            s.problems.append(f"cleared at {self._t(step.at)}, due by {self._t(e.clear_due)}")
        if not self.ctx.all_clear:
            return
        alerted = {t.person for t in s.told if t.kind != "all_clear" and t.received}
        due = self._incident_resolved(alarm, step.at) + self.plan.all_clear_deadline()
        cleared = {t.person for t in s.told if t.kind == "all_clear" and t.received
                   and t.at is not None and t.at <= due}
        missing = sorted(alerted - cleared)
        if missing and step.at <= self.plan.end:
            s.problems.append(f"no all-clear by {self._t(due)} to {', '.join(missing)}")

    def _incident_resolved(self, alarm: AlarmRec, resolved: float) -> float:
        """When the last alarm of ``alarm``'s incident resolved: the notifier sends one all-clear then."""
        of = self.record.incident_of
        root = of.get(alarm.id, alarm.id)
        ends = [resolved]
        for a in self.record.alarms:
            step = a.first("resolved") if a.id == root or of.get(a.id) == root else None
            if step is not None:
                ends.append(step.at)
        return max(ends)

    # -- false alarms, quiet spans ---------------------------------------------------------------
    def _brief(self, a: AlarmRec) -> AlarmBrief:
        assert a.fired is not None
        resolved = a.first("resolved")
        sms = sum(1 for n in self.by_alarm.get(a.id, []) if self._reached_phone(n))
        return AlarmBrief(a.id, a.rule, a.subject, a.site, a.severity, a.fired,
                          moment(self.plan.timetable, a.site, a.fired), a.message, a.drill, sms,
                          resolved.at if resolved else None)

    def _room_devices(self, fp: FaultPlan) -> set[str]:
        if fp.room is None:
            return set()
        site, _, room = fp.room.partition("-")
        return {d.id for d in self.plan.inventory.site(site).devices if d.room == room}

    def _explaining(self, a: AlarmRec) -> FaultPlan | None:
        assert a.fired is not None
        for fp in self.plan.faults:
            if fp.explains(a.rule, a.subject, a.site, a.fired, self._room_devices(fp)):
                return fp
        return None

    def score(self) -> Report:
        """The report: expectations, false alarms, quiet spans, actions and SMS."""
        plan = self.plan
        self._account_sms()
        faults = []
        for fp in plan.faults:
            exps = [self.expectation(e, fp) for e in fp.expectations]
            faults.append(FaultScore(fp.id, fp.type, fp.site, fp.subject, fp.start, fp.end, describe(fp), exps))
        expected = [self.expectation(e, None) for e in plan.expected]
        by_fault = {f.id: f for f in faults}
        false: list[AlarmBrief] = []
        for a in self.fired:
            if a.id in self.matched:
                continue
            why = self._explaining(a)
            if why is not None:
                by_fault[why.id].consequences.append(self._brief(a))
            else:
                false.append(self._brief(a))
        self.sms.for_false_alarms = sum(b.sms for b in false)
        quiet = []
        for q in plan.quiet:
            scope = ", ".join((*q.quiet.sites, *q.quiet.devices)) or "every site"
            hits = [self._brief(a) for a in self.fired if a.fired is not None and q.start <= a.fired <= q.end
                    and q.quiet.covers(a.site, a.subject)]
            quiet.append(QuietScore(q.start, q.end, scope, q.quiet.why, hits))
        return Report(plan.scenario.name, plan.scenario.title, f"the alarm store and {self.ctx.sms_source}",
                      plan.speed, plan.start, plan.end, faults, expected, false, self.ctx.actions, quiet, self.sms,
                      list(self.ctx.integrity), list(self.ctx.warnings), len(self.fired), plan.tz())

    # -- formatting -------------------------------------------------------------------------
    def _t(self, t: float | None) -> str:
        return "—" if t is None else datetime.fromtimestamp(t, self.plan.tz()).strftime("%H:%M:%S")

    def _delay(self, seconds: float) -> str:
        wall = f" (wall {seconds / self.plan.speed:.2f} s)" if self.plan.speed != 1 else ""
        return f"{seconds:.0f} s{wall}"


def describe(fp: FaultPlan) -> str:
    """The fault's parameters in a few words, for the report."""
    skip = {"type", "id", "at", "duration", "expect", "also", "device", "site"}
    params = fp.fault.model_dump(exclude=skip, exclude_defaults=False, mode="json")
    extra = ", ".join(f"{k} {v}" for k, v in params.items())
    return f"{fp.type} on {fp.subject}" + (f" ({extra})" if extra else "")


def score(plan: Plan, record: Record, ctx: Context) -> Report:
    """Score ``record`` against ``plan`` (see the module docstring)."""
    return Scorer(plan, record, ctx).score()
