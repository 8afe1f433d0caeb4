"""Write the timetable into InfluxDB (measurement ``timetable``) for the wall's countdown.

One point per paper at its start time: tag ``paper``; fields ``subject``, ``start_ms``,
``end_ms``. The wall asks for the first point after now(), so the countdown needs no rebuild
of the dashboards when the timetable changes: run this command again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from examwatch import lineproto
from examwatch.influx import Influx
from examwatch.timetable import Timetable

MEASUREMENT = "timetable"


def lines(timetable: Timetable) -> bytes:
    """The timetable as line protocol, one point per paper."""
    out = []
    for p in timetable.papers:
        start_ms = int(p.start.timestamp() * 1000)
        end_ms = int(p.end.timestamp() * 1000)
        fields = f"subject={lineproto.quote(p.subject)},start_ms={start_ms}i,end_ms={end_ms}i"
        out.append(lineproto.line(MEASUREMENT, f",paper={lineproto.escape_tag(p.id)}", fields, start_ms * 1_000_000))
    return b"\n".join(out)


def starting_in(timetable: Timetable, minutes: float, now: datetime | None = None) -> Timetable:
    """The timetable shifted so its first paper starts ``minutes`` from now (demos and drills)."""
    first = min(p.start for p in timetable.papers)
    target = (now or datetime.now(UTC)) + timedelta(minutes=minutes)
    return timetable.shifted(target - first)


def write(influx: Influx, timetable: Timetable) -> int:
    """Write the timetable's points; returns how many papers were written."""
    influx.write(lines(timetable))
    return len(timetable.papers)
