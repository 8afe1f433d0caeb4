"""The drill dashboard (应急演练): what a drill injected, what the rules detected, and when.

Drill traffic carries the tag ``drill=true`` end to end (device payload → point → alarm), so
this dashboard shows only that, and the wall never does. Reading the alarm log beside the
injected telemetry gives the drill's score: what was detected, how fast, who reacted.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards.influxql import Select, col, fn, measurements, tag_matches
from dashboards.panels import DRILL, TELEMETRY, at, base, rows_table, trend, variable
from dashboards.widgets import alarms_table, severity_counts

UID = "examwatch-drill"
SITE = tag_matches("site", "site")


def build() -> dash_b.Dashboard:
    """The drill dashboard."""
    d = base(UID, "Drill 应急演练", ["drill"], refresh="5s", time_from="now-3h").with_variable(
        variable("site", "site 考点", 'SHOW TAG VALUES FROM "power" WITH KEY = "site"', multi=True)
    )
    log = Select(
        fields=(col("site"), col("severity"), col("rule"), col("subject"), col("state"), col("message")),
        sources=("alarm",),
        where=(DRILL, SITE),
        order_desc=True,
        limit=500,
    )
    injected = Select(
        fields=(fn("count", "skew_ms", alias="points"),),
        sources=(measurements(*TELEMETRY),),
        where=(DRILL, SITE),
        by_interval=True,
        group_by=("site",),
        fill="0",
    )
    transitions = Select(
        fields=(fn("count", "message", alias="transitions"),),
        sources=("alarm",),
        where=(DRILL, SITE),
        group_by=("state",),
    )
    mains = Select(
        fields=(fn("min", "mains_v", alias="mains V"),),
        sources=("power",),
        where=(DRILL, SITE),
        by_interval=True,
        group_by=("site",),
    )
    jammers_off = Select(
        fields=(fn("count", "on", alias="jammer reports off"),),
        sources=("jammer",),
        where=(DRILL, SITE, '"on" = false'),
        by_interval=True,
        group_by=("site",),
        fill="0",
    )
    for panel in (
        at(severity_counts("Drill alarms active 演练告警", DRILL, SITE), 0, 0, 8, 5),
        at(rows_table("Alarm transitions by state 告警状态变化", transitions, sort_by="state"), 8, 0, 6, 5),
        at(alarms_table("Drill alarms active now", DRILL, SITE), 14, 0, 10, 5),
        at(rows_table("Drill alarm log 演练告警记录 (newest first)", log, time_column="time"), 0, 5, 24, 10),
        at(trend("Injected drill telemetry 注入的演练数据", "short", ("A", injected)), 0, 15, 8, 8),
        at(trend("Drill storage-room mains 演练市电", "volt", ("A", mains)), 8, 15, 8, 8),
        at(trend("Drill jammers reporting off 演练屏蔽仪关闭", "short", ("A", jammers_off)), 16, 15, 8, 8),
    ):
        d.with_panel(panel)
    return d
