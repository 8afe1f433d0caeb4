"""A scenario laid onto the drill's clock: every fault, action and expectation at its moment.

Times are epoch seconds on the drill clock. Under a drill clock (``[clock]`` settings) they are
the exam day's own times on the shipped timetable; on the wall clock the timetable is shifted so
the drill starts now, and ``anchor`` is the shifted paper's start.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo

from drills import scenario as sc
from drills.actions import ExpectAlarm, Quiet
from drills.fault_types import AnyFault, Expect, Scope
from examwatch.alarm import Severity
from examwatch.inventory import Inventory, RoomType
from examwatch.timetable import Timetable


@dataclass(frozen=True)
class Expectation:
    """One alarm that must fire: on ``subject`` with ``severity`` between ``start`` and ``due``."""

    rule: str
    severity: Severity
    subject: str
    site: str
    start: float
    due: float
    clear: bool  # must resolve by ``clear_due`` (after its fault ended)
    clear_due: float | None
    fault: str | None  # the fault id, None for a scenario-level expect
    key: str  # "<fault>/<rule>/<severity>"


@dataclass(frozen=True)
class FaultPlan:
    """A fault at its moments: where, on what, and what it may and must raise."""

    id: str
    fault: AnyFault
    start: float
    end: float
    site: str
    subject: str  # the device, or the site for site faults
    kind: str | None
    room: str | None  # the device's room as the rules name it, S01-R01
    expectations: list[Expectation]
    consequences: tuple[tuple[str, Scope], ...]
    linger: float  # an alarm may still fire this long after the fault ends and be its own

    @property
    def type(self) -> str:
        return self.fault.kind_name

    def explains(self, rule: str, subject: str, site: str, at: float, devices_in_room: set[str]) -> bool:
        """Whether an alarm of ``rule`` on ``subject`` firing at ``at`` is this fault's doing."""
        if not self.start - 1 <= at <= self.end + self.linger:
            return False
        if any(e.rule == rule and e.subject == subject for e in self.expectations):
            return True
        for pattern, scope in self.consequences:
            if not fnmatch.fnmatchcase(rule, pattern):
                continue
            if scope is Scope.SUBJECT and subject == self.subject:
                return True
            if scope is Scope.ROOM and (subject in (self.room, self.subject) or subject in devices_in_room):
                return True
            if scope is Scope.SITE and site == self.site:
                return True
        return False


@dataclass(frozen=True)
class ActionPlan:
    index: int
    action: sc.Ack | sc.Resolve | sc.SilenceAction
    at: float
    fault: FaultPlan | None
    rule: str | None


@dataclass(frozen=True)
class QuietPlan:
    quiet: Quiet
    start: float
    end: float


@dataclass
class Plan:
    """The whole drill on the clock."""

    scenario: sc.Scenario
    timetable: Timetable  # the one the backend judges by (shifted on the wall clock)
    inventory: Inventory
    anchor: float
    start: float
    end: float
    interval: int
    speed: float
    faults: list[FaultPlan]
    actions: list[ActionPlan] = field(default_factory=list)
    expected: list[Expectation] = field(default_factory=list)  # scenario-level expects
    quiet: list[QuietPlan] = field(default_factory=list)

    def allowance(self) -> float:
        """Clock seconds added to every deadline for the chain's own (wall-time) processing."""
        return self.scenario.deadlines.processing_s * self.speed

    def notify_deadline(self, severity: Severity) -> float:
        return self.scenario.deadlines.notify[severity].total_seconds() + self.allowance()

    def all_clear_deadline(self) -> float:
        return self.scenario.deadlines.all_clear.total_seconds() + self.allowance()

    def expectations(self) -> list[Expectation]:
        return [e for f in self.faults for e in f.expectations] + self.expected

    def tz(self) -> tzinfo | None:
        """The timetable's offset (Beijing time for the shipped one): times in reports are shown in it."""
        return sc.anchor_of(self.timetable, self.scenario.paper).start.tzinfo


def _in_paper(timetable: Timetable, site: str, start: float, end: float) -> float | None:
    """The first moment of ``[start, end)`` in which a paper is in session at ``site`` (None: never)."""
    for p in timetable.for_site(site):
        a, b = max(start, p.start.timestamp()), min(end, p.end.timestamp())
        if a < b:
            return a
    return None


def _fault(scn: sc.Scenario, index: int, fault: AnyFault, anchor: float, inv: Inventory, tt: Timetable,
           allowance: float, interval: int) -> FaultPlan:
    fid = sc.fault_id(fault, index)
    start = anchor + fault.at.total_seconds()
    end = start + fault.duration.total_seconds()
    kind: str | None = None
    room: str | None = None
    room_type: RoomType | None = None
    if isinstance(fault, sc.NetworkCut | sc.RogueDevice):
        site = subject = fault.site
    else:
        device = getattr(fault, "device")  # noqa: B009 - every other fault type is a device's
        ref = inv.devices[device]
        site, subject, kind, room = ref.site, device, ref.kind, f"{ref.site}-{ref.room}"
        room_type = next(r.type for r in inv.site(site).rooms if r.id == ref.room)
    paper_at = _in_paper(tt, site, start, end)
    expects = fault.expected(kind, room_type, paper_at is not None)
    default_within = fault.detect_base.total_seconds() + fault.detect_intervals * interval
    clear_within = fault.clear_base.total_seconds() + 2 * interval
    planned = []
    for e in expects:
        # an exam-room camera is judged from the paper's start, not before
        begin = paper_at if room_type is RoomType.EXAM and kind == "camera" and paper_at else start
        within = e.within.total_seconds() if e.within is not None else default_within
        planned.append(_expectation(e, fid, subject, site, begin, within + allowance, end, clear_within + allowance))
    consequences = fault.consequences + tuple((rule, Scope.SITE) for rule in fault.also)
    linger = max([default_within, *(e.within.total_seconds() for e in expects if e.within)]) + allowance
    return FaultPlan(fid, fault, start, end, site, subject, kind, room, planned, consequences, linger)


def _expectation(e: Expect, fid: str, subject: str, site: str, begin: float, within: float, end: float,
                 clear_within: float) -> Expectation:
    return Expectation(e.rule, e.severity, e.subject or subject, site, begin, begin + within, e.clear,
                       end + clear_within if e.clear else None, fid, f"{fid}/{e.rule}/{e.severity.value}")


def build(scn: sc.Scenario, inv: Inventory, tt: Timetable, speed: float, interval: int | None = None) -> Plan:
    """Lay ``scn`` onto the clock of ``tt`` (the timetable the backend judges by) at ``speed``, with
    devices reporting every ``interval`` clock seconds (default: the scenario's)."""
    anchor = sc.anchor_of(tt, scn.paper).start.timestamp()
    allowance = scn.deadlines.processing_s * speed
    cadence = interval or scn.interval
    faults = [_fault(scn, i, f, anchor, inv, tt, allowance, cadence) for i, f in enumerate(scn.faults)]
    by_id = {f.id: f for f in faults}
    plan = Plan(scn, tt, inv, anchor, anchor + scn.first.total_seconds(), anchor + scn.last.total_seconds(),
                cadence, speed, faults)
    for i, a in enumerate(scn.actions):
        fp = by_id.get(a.fault) if isinstance(a, sc.Ack | sc.Resolve) else None
        rule = None
        if isinstance(a, sc.Ack | sc.Resolve) and fp is not None:
            rule = a.rule or (fp.expectations[0].rule if fp.expectations else None)
        plan.actions.append(ActionPlan(i, a, anchor + a.at.total_seconds(), fp, rule))
    plan.actions.sort(key=lambda p: p.at)
    for n, x in enumerate(scn.expect):
        plan.expected.append(_standalone(x, n, anchor, inv, allowance))
    plan.quiet = [QuietPlan(q, anchor + q.start.total_seconds(), anchor + q.end.total_seconds())
                  for q in scn.expect_quiet]
    return plan


def _standalone(x: ExpectAlarm, n: int, anchor: float, inv: Inventory, allowance: float) -> Expectation:
    site = _site_of(x.subject, inv)
    begin = anchor + x.after.total_seconds()
    key = x.id or f"expect-{n + 1}"
    return Expectation(x.rule, x.severity, x.subject, site, begin, begin + x.within.total_seconds() + allowance,
                       False, None, None, f"{key}/{x.rule}/{x.severity.value}")


def _site_of(subject: str, inv: Inventory) -> str:
    if subject in inv.devices:
        return inv.devices[subject].site
    return subject.split("-", 1)[0]


def shifted_anchor(tt: Timetable, scn: sc.Scenario, start: float) -> timedelta:
    """How far to move ``tt`` so that the scenario's first moment falls at ``start`` (the wall-clock path)."""
    anchor = sc.anchor_of(tt, scn.paper).start.timestamp()
    return timedelta(seconds=start - (anchor + scn.first.total_seconds()))
