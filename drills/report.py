"""A drill's scored report: the data (JSON), a Markdown page a person reads, and a console summary.

Times are epoch seconds on the drill clock; the Markdown and the console show them as times of
day in the timetable's offset, and delays in drill-clock seconds (with the wall-clock
equivalent where a compressed clock makes it matter).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any


@dataclass
class Told:
    """One SMS to one person about an alarm."""

    person: str
    name: str
    address: str
    kind: str  # alert, reminder, escalation, all_clear
    level: int
    at: float | None  # sent (the gateway took it), drill clock
    received: bool
    incident: bool = False  # an SMS about the incident's root, which told of this alarm too


@dataclass
class ExpectationScore:
    key: str
    rule: str
    severity: str
    subject: str
    site: str
    start: float
    due: float
    alarm_id: int | None = None
    fired_at: float | None = None
    reached_at: float | None = None  # fired (or rose) at the expected severity
    message: str = ""
    should_hear: list[str] = field(default_factory=list)  # level-1 people per the roster
    muted: list[str] = field(default_factory=list)  # of those, whom a silence set by people held it back from
    notify_due: float | None = None
    told: list[Told] = field(default_factory=list)
    acked_by: str | None = None
    acked_at: float | None = None
    ack_comment: str = ""
    cleared_at: float | None = None
    clear_due: float | None = None
    cleared_by: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class AlarmBrief:
    alarm_id: int
    rule: str
    subject: str
    site: str
    severity: str
    fired_at: float
    moment: str
    message: str
    drill: bool
    sms: int = 0
    cleared_at: float | None = None


@dataclass
class FaultScore:
    id: str
    type: str
    site: str
    subject: str
    start: float
    end: float
    detail: str
    expectations: list[ExpectationScore]
    consequences: list[AlarmBrief] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(e.problems for e in self.expectations)

    @property
    def detected(self) -> bool:
        """Every alarm it should raise was raised (at its severity), in time or not."""
        return all(e.reached_at is not None for e in self.expectations)

    @property
    def cleared(self) -> bool:
        return all(e.cleared_at is not None for e in self.expectations)


@dataclass
class ActionScore:
    index: int
    type: str
    at: float
    by: str
    via: str
    target: str
    alarm_id: int | None
    done_at: float | None
    result: str
    ok: bool


@dataclass
class QuietScore:
    start: float
    end: float
    scope: str
    why: str
    violations: list[AlarmBrief] = field(default_factory=list)


@dataclass
class SmsScore:
    """One SMS the SMS centre saw (or the outbox sent) that the scorer could not account for, or that is wrong."""

    at: float
    to: str
    recipient: str
    text: str
    problem: str


@dataclass
class SmsSummary:
    source: str
    received: int = 0
    per_recipient: dict[str, dict[str, int]] = field(default_factory=dict)
    unaccounted: list[SmsScore] = field(default_factory=list)
    lost: list[SmsScore] = field(default_factory=list)
    inconsistent: list[SmsScore] = field(default_factory=list)  # received, while the outbox says otherwise
    text_problems: list[SmsScore] = field(default_factory=list)
    for_false_alarms: int = 0
    after_drill: int = 0


@dataclass
class Report:
    scenario: str
    title: str
    scored_against: str
    speed: float
    start: float
    end: float
    faults: list[FaultScore]
    expected: list[ExpectationScore] = field(default_factory=list)
    false_alarms: list[AlarmBrief] = field(default_factory=list)
    actions: list[ActionScore] = field(default_factory=list)
    quiet: list[QuietScore] = field(default_factory=list)
    sms: SmsSummary | None = None
    integrity: list[str] = field(default_factory=list)  # problems with the drill itself (messages dropped)
    warnings: list[str] = field(default_factory=list)  # about the drill itself (simulator lag): not failing
    alarms_seen: int = 0
    tz: tzinfo | None = None

    @property
    def problems(self) -> list[str]:
        out = [f"fault {f.id}: {p}" for f in self.faults for e in f.expectations for p in e.problems]
        out += [f"expect {e.key}: {p}" for e in self.expected for p in e.problems]
        out += [f"{len(self.false_alarms)} false alarm(s)"] if self.false_alarms else []
        out += [f"action {a.index + 1} ({a.type} by {a.by}): {a.result}" for a in self.actions if not a.ok]
        out += [f"quiet {self.hhmm(q.start)}-{self.hhmm(q.end)}: {len(q.violations)} alarm(s)"
                for q in self.quiet if q.violations]
        if self.sms is not None:
            out += [f"{len(self.sms.unaccounted)} SMS unaccounted for"] if self.sms.unaccounted else []
            out += [f"{len(self.sms.lost)} SMS sent but never received"] if self.sms.lost else []
            out += [f"{len(self.sms.inconsistent)} SMS received that the outbox says were not sent"] \
                if self.sms.inconsistent else []
            out += [f"{len(self.sms.text_problems)} SMS not Chinese or longer than one SMS"] \
                if self.sms.text_problems else []
        return out + self.integrity

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        n = sum(len(f.expectations) for f in self.faults) + len(self.expected)
        if self.passed:
            return f"PASS: {len(self.faults)} faults, {n} expected alarms all seen in time, 0 false alarms"
        return f"FAIL: {'; '.join(self.problems[:6])}" + (" …" if len(self.problems) > 6 else "")

    def hhmm(self, t: float | None) -> str:
        return "—" if t is None else datetime.fromtimestamp(t, self.tz).strftime("%H:%M:%S")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("tz")
        for fault, score in zip(data["faults"], self.faults, strict=True):
            # per fault, as one line of a summary: was every alarm it should raise raised, and cleared
            fault.update(ok=score.ok, detected=score.detected, cleared=score.cleared)
        data.update(verdict=self.verdict, passed=self.passed, problems=self.problems,
                    false_alarm_count=len(self.false_alarms), unseen=sum(not f.detected for f in self.faults))
        return data

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
