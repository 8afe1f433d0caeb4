"""Simulated time and how it maps onto wall time.

The simulated day is the shipped timetable moved so that it starts now: ``Timetable.shifted``
moves every paper by ``delta``, and simulated time starts at the wall clock's "now" and runs
``speed`` times faster. Device timestamps are simulated time, so every point lies on the
shifted timetable and a rules engine that reads the shifted timetable sees a consistent day.

The cost of compression: simulated time runs ahead of wall time, by up to the simulated span
times ``1 - 1/speed``. Ingest refuses device timestamps more than ``ingest.max_clock_offset_s``
(24 h) from receive time, so :func:`check_span` refuses a run that would cross it; and each
point's ``skew_ms`` (receive time minus device time) is that lead, not a real clock error. At
``speed`` 1 simulated time is wall time and skew is honest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from examwatch.clock import DrillClock
from examwatch.timetable import Timetable


def shift_for(start: datetime, clock: DrillClock) -> timedelta:
    """How far to move a timetable so that its moment ``start`` falls at the clock's sim0."""
    return datetime.fromtimestamp(clock.start, UTC) - start


def check_span(span_s: float, speed: float, max_offset_s: float) -> str | None:
    """Why a compressed run of ``span_s`` simulated seconds cannot be ingested, or None."""
    lead = span_s * (1 - 1 / speed) if speed > 1 else 0.0
    if lead >= max_offset_s:
        return (
            f"at speed {speed:g} a {span_s / 3600:.1f} h simulated span runs {lead / 3600:.1f} h "
            f"ahead of the wall clock, beyond ingest.max_clock_offset_s ({max_offset_s / 3600:.0f} h): "
            "shorten --duration"
        )
    return None


def start_day(
    timetable: Timetable, paper_id: str | None, lead: timedelta, speed: float, real_clock: bool
) -> tuple[DrillClock, Timetable]:
    """The clock and the timetable for a run that starts ``lead`` before paper ``paper_id``.

    With ``real_clock`` the timetable is kept as written and simulated time is wall time (for a
    run on the exam day itself); otherwise the timetable is shifted so that moment is now.
    Raises KeyError for an unknown paper id.
    """
    clock = DrillClock.starting_now(speed)
    if real_clock:
        return clock, timetable
    papers = {p.id: p for p in timetable.papers}
    paper = papers[paper_id] if paper_id else timetable.ordered[0]
    return clock, timetable.shifted(shift_for(paper.start - lead, clock))
