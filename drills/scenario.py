"""Drill scenario files: faults, people's actions and expectations, checked against the world.

A scenario anchors on one paper of the timetable. Every time in it is an offset from that
paper's start (``-40m`` is in the entry surge, ``30m`` half an hour into the paper) or a time
of day on the paper's date (``"07:45"``). The drill runs from ``start`` (default: ``warmup``
before the first fault) to ``end`` (default: ``tail`` after the last one ends), so that faults
and their recovery are both seen, and so that a whole day can be rehearsed (``start: "07:20"``,
``end: "17:10"``). Fault types: :mod:`drills.fault_types`; actions and expectations:
:mod:`drills.actions`; the format: ``config/scenarios/README.md``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from drills.actions import Ack, Action, Deadlines, ExpectAlarm, Quiet, Resolve, SilenceAction
from drills.fault_types import (
    FAULT_TYPES,
    AnyFault,
    BandDown,
    BatteryFlat,
    ClockSkew,
    Expect,
    FaceMatchSurge,
    Fault,
    JammerNotOn,
    JammerOff,
    Length,
    MainsLost,
    Malformed,
    MalformedStyle,
    NetworkCut,
    Offline,
    RecordingStopped,
    RogueDevice,
    Scope,
    Strict,
    Tamper,
    VideoLoss,
    When,
    context,
)
from drills.times import day_bounds, parse_offset
from examwatch import datafile
from examwatch.inventory import Inventory
from examwatch.roster import Roster
from examwatch.timetable import Paper, Timetable


class Scenario(Strict):
    """A drill: its anchor paper, report cadence, span, faults, actions and expectations."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    title: str = Field(min_length=1, max_length=120)
    description: str = ""
    paper: str | None = Field(default=None, validate_default=True,
                              description="anchor paper id (default: the timetable's first)")
    interval: int = Field(default=30, ge=1, le=600, description="simulated seconds between a device's reports")
    warmup: Length = Field(default=timedelta(minutes=10), description="normal traffic before the first fault")
    tail: Length = Field(default=timedelta(minutes=10), description="normal traffic after the last fault")
    start: When | None = Field(default=None, description="the drill's first moment (default: warmup before the "
                                                         "first fault)")
    end: When | None = Field(default=None, description="its last moment (default: tail after the last fault)")
    faults: tuple[Fault, ...] = Field(min_length=1)
    actions: tuple[Action, ...] = ()
    expect: tuple[ExpectAlarm, ...] = Field(default=(), description="alarms expected that no fault causes")
    expect_quiet: tuple[Quiet, ...] = Field(default=(), description="spans where no alarm may fire")
    deadlines: Deadlines = Deadlines()

    @field_validator("paper")
    @classmethod
    def _known_paper(cls, paper: str | None, info: ValidationInfo) -> str | None:
        timetable: Timetable | None = context(info).get("timetable")
        if timetable is None:
            return paper
        papers = {p.id: p for p in timetable.papers}
        if paper is not None and paper not in papers:
            raise ValueError(f"no paper {paper} in the timetable ({', '.join(papers)})")
        if info.context is not None:
            # later fields place times of day on the anchor paper's date
            info.context["anchor"] = anchor_of(timetable, paper).start
        return paper

    @field_validator("faults")
    @classmethod
    def _unique_ids(cls, faults: tuple[AnyFault, ...], info: ValidationInfo) -> tuple[AnyFault, ...]:
        ids = [fault_id(f, i) for i, f in enumerate(faults)]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"fault ids repeated: {', '.join(dup)}")
        if info.context is not None:
            info.context["faults"] = dict(zip(ids, faults, strict=True))
        return faults

    @model_validator(mode="after")
    def _span(self, info: ValidationInfo) -> Scenario:
        if self.last <= self.first:
            raise ValueError("end must be after start")
        if self.start is not None and self.start > min(f.at for f in self.faults):
            raise ValueError("start is after the first fault")
        if self.end is not None and self.end < max(f.at + f.duration for f in self.faults):
            raise ValueError("end is before the last fault ends")
        anchor = context(info).get("anchor")
        if anchor is not None:
            first, last = day_bounds(anchor)
            if anchor + self.first < first or anchor + self.last > last:
                raise ValueError(f"the drill runs {anchor + self.first:%Y-%m-%d %H:%M} to "
                                 f"{anchor + self.last:%Y-%m-%d %H:%M}, outside its day {first:%Y-%m-%d}")
        return self

    @property
    def first(self) -> timedelta:
        """The drill's first moment, as an offset from the anchor paper's start."""
        return self.start if self.start is not None else min(f.at for f in self.faults) - self.warmup

    @property
    def last(self) -> timedelta:
        return self.end if self.end is not None else max(f.at + f.duration for f in self.faults) + self.tail

    def fault_ids(self) -> list[str]:
        return [fault_id(f, i) for i, f in enumerate(self.faults)]


def fault_id(fault: AnyFault, index: int) -> str:
    """A fault's id: its own, or ``fault-<n>`` (1-based, in file order)."""
    return fault.id or f"fault-{index + 1}"


def anchor_of(timetable: Timetable, paper: str | None) -> Paper:
    """The scenario's anchor paper: the one named, or the timetable's first."""
    papers = {p.id: p for p in timetable.papers}
    return papers[paper] if paper else min(timetable.papers, key=lambda p: p.start)


def load(path: Path, inventory: Inventory, timetable: Timetable, roster: Roster | None = None) -> Scenario:
    """Load and check a scenario against the inventory, timetable and roster (people of actions).

    Raises DataFileError naming the file, line and field of the first problems.
    """
    ctx: dict[str, Any] = {"inventory": inventory, "timetable": timetable, "roster": roster}
    return datafile.load(path, Scenario, context=ctx)


__all__ = [
    "FAULT_TYPES",
    "Ack",
    "BandDown",
    "BatteryFlat",
    "ClockSkew",
    "Deadlines",
    "Expect",
    "ExpectAlarm",
    "FaceMatchSurge",
    "Fault",
    "JammerNotOn",
    "JammerOff",
    "MainsLost",
    "Malformed",
    "MalformedStyle",
    "NetworkCut",
    "Offline",
    "Quiet",
    "RecordingStopped",
    "Resolve",
    "RogueDevice",
    "Scenario",
    "Scope",
    "SilenceAction",
    "Tamper",
    "VideoLoss",
    "anchor_of",
    "fault_id",
    "load",
    "parse_offset",
]
