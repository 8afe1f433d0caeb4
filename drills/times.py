"""Times in a scenario, and the timetable's moments a time falls on.

A scenario's times are offsets from its anchor paper's start (``-15m``, ``+1h30m``) or times of
day on the anchor paper's date (``"07:45"``, ``"15:20:30"``, in the timetable's own offset, so
``"07:45"`` is Beijing time for the shipped timetable). Both are kept as an offset from the
anchor's start; :func:`when` parses either.

The timetable's *moments* are what the rules judge by and where false alarms cluster: a
paper's T-15 (jammers required from then), its start, each listening window's start and end
(jammers off, then required again), and its end. :func:`moment` names the moment a time falls
on, for the false-alarm list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from examwatch.timetable import JAMMER_LEAD, Paper, Timetable

_DURATION = re.compile(r"^([+-])?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
#: a time this close to a timetable moment is said to fall on it
NEAR = timedelta(minutes=5)


def parse_offset(value: Any) -> Any:
    """``"-1h30m"``, ``"5m"``, ``"+90s"`` → timedelta; anything else is left for pydantic to refuse."""
    if not isinstance(value, str):
        return value
    m = _DURATION.match(value.strip())
    if m is None or not any(m.groups()[1:]):
        raise ValueError(f"{value!r} is not a duration such as 5m, -1h30m or 90s")
    sign = -1 if m.group(1) == "-" else 1
    h, mins, s = (int(g or 0) for g in m.groups()[1:])
    return sign * timedelta(hours=h, minutes=mins, seconds=s)


def when(value: Any, anchor: datetime | None) -> Any:
    """An offset from ``anchor`` for ``"HH:MM[:SS]"`` (a time of day on the anchor's date) or a duration.

    Without an anchor (validation without a timetable) a time of day cannot be placed and is
    refused; durations parse as :func:`parse_offset`.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 07:45 as a sexagesimal number of seconds (465 × 60 + …)
        raise ValueError(f"{value} is a number: quote a time of day (\"07:45\") or write a duration (-15m)")
    if not isinstance(value, str):
        return value
    m = _TIME_OF_DAY.match(value.strip())
    if m is None:
        return parse_offset(value)
    if anchor is None:
        raise ValueError(f"{value!r}: a time of day needs the timetable (its anchor paper's date)")
    h, mins, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mins > 59 or s > 59:
        raise ValueError(f"{value!r} is not a time of day")
    at = datetime.combine(anchor.date(), time(h, mins, s), tzinfo=anchor.tzinfo)
    return at - anchor


def day_bounds(anchor: datetime) -> tuple[datetime, datetime]:
    """The anchor paper's day, midnight to midnight in the timetable's offset."""
    midnight = datetime.combine(anchor.date(), time(0), tzinfo=anchor.tzinfo)
    return midnight, midnight + timedelta(days=1)


def clock_text(t: float, tz: Any) -> str:
    """``HH:MM:SS`` of epoch seconds ``t`` in the timetable's offset."""
    return datetime.fromtimestamp(t, tz).strftime("%H:%M:%S")


def signed(seconds: float) -> str:
    """``+2:05`` / ``-0:40`` (minutes:seconds), for "how far from the moment"."""
    sign = "-" if seconds < 0 else "+"
    s = round(abs(seconds))
    return f"{sign}{s // 60}:{s % 60:02d}" if s < 3600 else f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass(frozen=True)
class Moment:
    """An edge of the timetable at a site: when (epoch seconds), what, and of which paper."""

    at: float
    what: str  # "T-15", "paper start", "listening start", "listening end", "paper end"
    paper: Paper

    def label(self) -> str:
        return f"{self.what} {self.paper.subject} ({self.paper.id})"


def moments(timetable: Timetable, site: str) -> list[Moment]:
    """Every timetable edge at ``site``, in order."""
    out: list[Moment] = []
    for p in timetable.for_site(site):
        out.append(Moment((p.start - JAMMER_LEAD).timestamp(), "T-15", p))
        out.append(Moment(p.start.timestamp(), "paper start", p))
        for w in p.jammer_off:
            name = w.reason or "jammer-off window"
            what = "listening" if name in ("听力", "listening") else name
            out.append(Moment(w.start.timestamp(), f"{what} start", p))
            out.append(Moment(w.end.timestamp(), f"{what} end", p))
        out.append(Moment(p.end.timestamp(), "paper end", p))
    return sorted(out, key=lambda m: m.at)


def moment(timetable: Timetable, site: str, t: float) -> str:
    """The timetable moment ``t`` falls on at ``site``: ``"T-15 物理 (d2-physics) +0:25"`` when within
    :data:`NEAR` of an edge, else ``"during 物理 (d2-physics)"``, ``"jammers required for …"`` or
    ``"between papers"``."""
    edges = moments(timetable, site)
    near = [m for m in edges if abs(t - m.at) <= NEAR.total_seconds()]
    if near:
        m = min(near, key=lambda m: abs(t - m.at))
        return f"{m.label()} {signed(t - m.at)}"
    at = datetime.fromtimestamp(t, edges[0].paper.start.tzinfo) if edges else None
    for p in timetable.for_site(site):
        if at is not None and p.in_session(at):
            return f"during {p.subject} ({p.id})"
        if at is not None and p.jammers_required(at):
            return f"jammers required for {p.subject} ({p.id})"
    return "between papers" if edges else "no paper at this site"
