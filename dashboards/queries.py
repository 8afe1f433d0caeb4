"""The InfluxQL queries that more than one dashboard asks: alarms, site status, readiness, counts.

Measurements and their tags are the contract written by ingest (telemetry, ``<kind>_event``,
``device_status``, ``ingest_reject``, ``ingest_stats``), by the rules engine (``alarm``,
``readiness``) and by ``examwatch dashboards timetable`` (``timetable``).
"""

from __future__ import annotations

from dashboards.influxql import Select, col, expr, fn, ident, is_false, is_true, tag_is
from dashboards.panels import SEVERITIES

#: An alarm's (rule, subject) pair is one series; its last point is its current state.
ALARM_KEY = ("rule", "subject", "subject_type", "severity", "site")


def alarm_states(*where: str) -> Select:
    """Each alarm's latest point: active, state and message (one row per rule and subject).

    One selector (``last``) with plain fields, so the row keeps that point's own time: when the
    alarm last changed state.
    """
    return Select(
        fields=(fn("last", "active", alias="active"), col("state"), col("message")),
        sources=("alarm",),
        where=where,
        group_by=ALARM_KEY,
    )


def active_alarms(*where: str) -> Select:
    """The alarms active now: rule, subject, severity, site, state and message."""
    return Select(
        fields=("*",),
        sources=(alarm_states(*where),),
        where=(is_true("active"),),
        time_filter=False,
    )


def site_status(*where: str, base_measurement: str = "power") -> Select:
    """Per site, the rank of its worst active alarm: 0 none, 1 warning … 4 critical.

    A union of subqueries: every site that reports (its storage-room power sensor, present in
    every site) contributes rank 0, and each severity's active alarms contribute that
    severity's rank. InfluxDB returns one series per source measurement, so the panel merges
    them and takes the maximum per site (``groupBy`` transformation).
    """
    base = Select(
        fields=(expr(f"last({ident('skew_ms')}) * 0", "rank"),),
        sources=(base_measurement,),
        where=where,
        group_by=("site",),
    )
    ranked: list[str | Select] = [base]
    for rank, severity in enumerate(SEVERITIES, start=1):
        active = Select(
            fields=(fn("last", "active", alias="active"),),
            sources=("alarm",),
            where=(*where, tag_is("severity", severity)),
            group_by=ALARM_KEY,
        )
        ranked.append(
            Select(
                fields=(expr(f"count({ident('active')}) * 0 + {rank}", "rank"),),
                sources=(active,),
                where=(is_true("active"),),
                group_by=("site",),
                time_filter=False,
            )
        )
    return Select(
        fields=(fn("max", "rank", alias="status"),),
        sources=tuple(ranked),
        group_by=("site",),
        time_filter=False,
    )


def per_device_last(measurement: str, field_name: str, *where: str, key: tuple[str, ...] = ("device",)) -> Select:
    """The last value of ``field_name`` per ``key`` tags (a device, or a site's room)."""
    return Select(fields=(fn("last", field_name, alias=field_name),), sources=(measurement,), where=where, group_by=key)


def count_where(inner: Select, field_name: str, truth: bool | None, alias: str) -> Select:
    """How many rows of ``inner`` have ``field_name`` true (or false, or any when None)."""
    cond: tuple[str, ...] = () if truth is None else ((is_true if truth else is_false)(field_name),)
    return Select(fields=(fn("count", field_name, alias=alias),), sources=(inner,), where=cond, time_filter=False)
