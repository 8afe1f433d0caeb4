"""The exam timetable: papers per site, with start and end, shared by the simulator and the rules.

Jammers must be on from ``jammer_lead`` (15 minutes) before each paper until its end, except in
the paper's ``jammer_off`` windows (for example the foreign-language listening test). Times are
timezone-aware; a timetable file without offsets is refused, because "09:00" must mean Beijing
time on every machine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from examwatch import datafile

JAMMER_LEAD = timedelta(minutes=15)
READINESS_LEAD = timedelta(minutes=30)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(default="", max_length=64)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


class Paper(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    subject: str = Field(min_length=1, max_length=32)
    start: AwareDatetime
    end: AwareDatetime
    sites: Literal["all"] | tuple[str, ...] = "all"
    jammer_off: tuple[Window, ...] = Field(default=(), description="windows inside the paper with jammers off")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        for w in self.jammer_off:
            if w.start < self.start or w.end > self.end:
                raise ValueError("a jammer_off window must lie inside the paper")
        return self

    def at_site(self, site: str) -> bool:
        return self.sites == "all" or site in self.sites

    def in_session(self, at: datetime) -> bool:
        """Candidates are writing: from start to end."""
        return self.start <= at < self.end

    def jammers_required(self, at: datetime) -> bool:
        """From 15 minutes before start to end, outside the paper's jammer_off windows."""
        if not self.start - JAMMER_LEAD <= at < self.end:
            return False
        return not any(w.contains(at) for w in self.jammer_off)


class Timetable(_Strict):
    exam: str = Field(min_length=1, max_length=64)
    papers: tuple[Paper, ...]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [p.id for p in self.papers]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"paper ids repeated: {', '.join(dup)}")
        return self

    @cached_property
    def ordered(self) -> tuple[Paper, ...]:
        return tuple(sorted(self.papers, key=lambda p: p.start))

    def for_site(self, site: str) -> list[Paper]:
        return [p for p in self.ordered if p.at_site(site)]

    def current(self, site: str, at: datetime) -> Paper | None:
        """The paper in session at ``site`` now, if any."""
        return next((p for p in self.for_site(site) if p.in_session(at)), None)

    def next(self, site: str, at: datetime) -> Paper | None:
        """The first paper at ``site`` that has not ended."""
        return next((p for p in self.for_site(site) if p.end > at), None)

    def jammers_required(self, site: str, at: datetime) -> Paper | None:
        """The paper that requires ``site``'s jammers on now, if any."""
        return next((p for p in self.for_site(site) if p.jammers_required(at)), None)

    def shifted(self, delta: timedelta) -> Timetable:
        """The same timetable moved by ``delta`` (drills and compressed simulations replay a day now)."""
        papers = [
            p.model_copy(
                update={
                    "start": p.start + delta,
                    "end": p.end + delta,
                    "jammer_off": tuple(
                        w.model_copy(update={"start": w.start + delta, "end": w.end + delta}) for w in p.jammer_off
                    ),
                }
            )
            for p in self.papers
        ]
        # A new instance, not model_copy: a copy would carry the cached ``ordered`` of the original.
        return Timetable(exam=self.exam, papers=tuple(papers))


def load(path: Path) -> Timetable:
    """Load and check a timetable file; DataFileError names the line and field of any fault."""
    return datafile.load(path, Timetable)
