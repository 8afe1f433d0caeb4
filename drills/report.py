"""A drill's scored report: per fault, the expected alarm and what the backend did, then a verdict."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from drills.evidence import FaultRun, Observation


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _after(t: float | None, start: float) -> float | None:
    return None if t is None else round(t - start, 1)


@dataclass(frozen=True)
class FaultScore:
    """One fault's line in the report; times are simulated seconds from the fault's start."""

    index: int
    type: str
    site: str
    subject: str
    start: str
    end: str
    expected_rule: str
    expected_severity: str
    detected: bool
    time_to_detect_s: float | None
    time_to_notify_s: float | None
    time_to_ack_s: float | None
    cleared: bool
    time_to_clear_s: float | None  # from the fault's end
    evidence: str

    @classmethod
    def of(cls, index: int, run: FaultRun, obs: Observation) -> FaultScore:
        expect = run.expect
        return cls(
            index, run.fault.type, run.site, run.subject, _iso(run.start), _iso(run.end), expect.rule,
            expect.severity.value, obs.detected_at is not None, _after(obs.detected_at, run.start),
            _after(obs.notified_at, run.start), _after(obs.acked_at, run.start), obs.cleared_at is not None,
            _after(obs.cleared_at, run.end), obs.evidence,
        )


@dataclass(frozen=True)
class Report:
    scenario: str
    title: str
    scored_against: str
    speed: float
    faults: list[FaultScore]

    @property
    def unseen(self) -> int:
        return sum(not f.detected for f in self.faults)

    @property
    def not_cleared(self) -> int:
        return sum(f.detected and not f.cleared for f in self.faults)

    @property
    def verdict(self) -> str:
        n = len(self.faults)
        if self.unseen:
            return f"FAIL: {self.unseen} of {n} faults went unseen"
        extra = f"; {self.not_cleared} did not clear after the fault ended" if self.not_cleared else ""
        return f"PASS: all {n} faults seen{extra}"

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "title": self.title, "scored_against": self.scored_against,
                "speed": self.speed, "verdict": self.verdict, "unseen": self.unseen,
                "not_cleared": self.not_cleared, "faults": [asdict(f) for f in self.faults]}

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def print(self, console: Console) -> None:
        """The report as a table, headed by what it was scored against, ending with the verdict."""
        console.print(f"[bold]Drill {self.scenario}[/bold]: {self.title}")
        console.print(f"Scored against: {self.scored_against}. Times are simulated seconds (speed {self.speed:g}).")
        table = Table(show_lines=False)
        for col in ("#", "fault", "subject", "expected alarm", "seen", "detect", "notify", "ack", "cleared",
                    "evidence"):
            table.add_column(col)
        for f in self.faults:
            table.add_row(
                str(f.index), f.type, f.subject, f"{f.expected_rule} ({f.expected_severity})",
                "yes" if f.detected else "[red]NO[/red]", _secs(f.time_to_detect_s), _secs(f.time_to_notify_s),
                _secs(f.time_to_ack_s), _secs(f.time_to_clear_s) if f.cleared else "no", f.evidence,
            )
        console.print(table)
        console.print(f"[bold]{self.verdict}[/bold]")


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"
