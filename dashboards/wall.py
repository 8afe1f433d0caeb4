"""The district wall (考务指挥中心大屏): one 1920×1080 TV screen, dark, readable from 5 m.

Layout (see docs/wall.md for the sketch): a top strip of big numbers (next paper, readiness,
jammer coverage, cameras recording, active alarms), then the site grid beside the active
alarms, then storage-room power, gate throughput and face-match failures. Drill traffic
(tag ``drill=true``) never reaches this screen.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import expr as expr_b
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash

from dashboards.influxql import Select, expr, fn, ident, tag_is
from dashboards.panels import (
    GREEN,
    NOT_DRILL,
    RED,
    YELLOW,
    at,
    base,
    big_stat,
    steps,
    thresholds_override,
    trend,
)
from dashboards.queries import count_where, per_device_last
from dashboards.widgets import alarms_table, power_table, severity_counts, site_grid

UID = "examwatch-wall"
#: "Now" for device state: a jammer or camera that has not reported for 5 minutes is the rules
#: engine's absence alarm, not a tile here.
NOW_WINDOW = "5m"
READINESS_WINDOW = "3h"
EXPR_DS = dash.DataSourceRef(type_val="__expr__", uid="__expr__")


def next_paper() -> stat.Panel:
    """The next paper's subject, start time and a live countdown, from the ``timetable`` measurement.

    Fed from data rather than a text panel generated at build time: a text panel cannot count
    down, and the timetable can change (a drill, a delayed paper) without rebuilding the JSON.
    ``examwatch dashboards timetable`` writes one point per paper at its start time.
    """
    query = Select(
        fields=(
            fn("first", "subject", alias="paper"),
            fn("first", "start_ms", alias="starts"),
            fn("first", "start_ms", alias="at"),
        ),
        sources=("timetable",),
        where=("time > now()", "time < now() + 30d"),
        time_filter=False,
    )
    return (
        big_stat("Next paper 下一科目", ("A", query))
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields("/.*/"))
        .color_mode(common.BigValueColorMode.NONE)
        .override_by_name("starts", [dash.DynamicConfigValue(id_val="unit", value="dateTimeFromNow")])
        .override_by_name("at", [dash.DynamicConfigValue(id_val="unit", value="time:MM-DD HH:mm")])
        .no_value("no paper in the next 30 days")
    )


def readiness() -> stat.Panel:
    """Sites GO and NOT GO for the coming paper, from the rules engine's ``readiness`` points."""
    per_site = per_device_last("readiness", "go", NOT_DRILL, tag_is("room", "_site"), key=("site",))
    return (
        big_stat(
            "Readiness 考前就绪",
            ("A", count_where(per_site, "go", True, "GO")),
            ("B", count_where(per_site, "go", False, "NOT GO")),
        )
        .time_from(READINESS_WINDOW)
        .hide_time_override(True)
        .thresholds(steps(GREEN))
        .override_by_name("NOT GO", [thresholds_override(steps(RED))])
    )


def jammer_coverage() -> stat.Panel:
    """Rooms shielded out of rooms in session, and the gap (rooms whose jammer says off)."""
    per_room = per_device_last("jammer", "on", NOT_DRILL, key=("site", "room"))
    return (
        big_stat(
            "Jammer coverage 屏蔽覆盖",
            ("A", count_where(per_room, "on", True, "shielded")),
            ("B", count_where(per_room, "on", None, "in session")),
            ("C", count_where(per_room, "on", False, "gap")),
        )
        .time_from(NOW_WINDOW)
        .hide_time_override(True)
        .thresholds(steps(GREEN))
        .override_by_name("gap", [thresholds_override(steps(RED))])
    )


def cameras_recording() -> stat.Panel:
    """The share of cameras recording: counts from InfluxDB, the ratio by a Grafana expression.

    InfluxQL cannot count true booleans and all rows in one statement, so two queries count them
    and server-side expressions reduce each to a number and divide.
    """
    per_camera = per_device_last("camera", "recording", NOT_DRILL)
    panel = (
        big_stat(
            "Cameras recording 录像",
            ("A", count_where(per_camera, "recording", True, "recording")),
            ("B", count_where(per_camera, "recording", None, "cameras")),
        )
        .time_from(NOW_WINDOW)
        .hide_time_override(True)
        .thresholds(steps(GREEN))
    )
    for ref, source in (("RA", "A"), ("RB", "B")):
        panel.with_target(
            expr_b.TypeReduce().ref_id(ref).datasource(EXPR_DS).expression(f"${source}").reducer("last").hide(True)
        )
    panel.with_target(expr_b.TypeMath().ref_id("share").datasource(EXPR_DS).expression("$RA / $RB * 100"))
    return panel.override_by_name(
        "share",
        [
            dash.DynamicConfigValue(id_val="unit", value="percent"),
            dash.DynamicConfigValue(id_val="decimals", value=1),
            thresholds_override(steps(RED, (95, YELLOW), (99.5, GREEN))),
        ],
    )


def gate_throughput() -> timeseries.Panel:
    """Candidates through the gates per minute, district-wide: the entry surge before a paper."""
    per_minute = Select(
        fields=(expr(f"sum({ident('passes')}) * 60000 / $__interval_ms", "passes/min"),),
        sources=("gate",),
        where=(NOT_DRILL,),
        by_interval=True,
        fill="0",
    )
    return trend("Gate throughput 入场人数/分钟", "short", ("A", per_minute), alias="candidates per minute")


def face_match_failures() -> timeseries.Panel:
    """Face-match failures as a share of comparisons, per site; a surge is an impostor or a bad database."""
    rate = Select(
        fields=(
            expr(
                f"sum({ident('face_match_failures')}) / (sum({ident('passes')}) + "
                f"sum({ident('face_match_failures')})) * 100",
                "failure %",
            ),
        ),
        sources=("gate",),
        where=(NOT_DRILL,),
        by_interval=True,
        group_by=("site",),
    )
    panel = trend("Face-match failures 人脸比对失败率", "percent", ("A", rate))
    return panel.thresholds(steps(GREEN, (5, YELLOW), (10, RED))).min(0)


def build() -> dash_b.Dashboard:
    """The district wall."""
    d = base(UID, "District wall 区考务指挥大屏", ["wall"], refresh="10s", time_from="now-1h")
    for panel in (
        at(next_paper(), 0, 0, 6, 5),
        at(readiness(), 6, 0, 4, 5),
        at(jammer_coverage(), 10, 0, 5, 5),
        at(cameras_recording(), 15, 0, 5, 5),
        at(severity_counts("Active alarms 活动告警", NOT_DRILL), 20, 0, 4, 5),
        at(site_grid("Sites 考点状态", NOT_DRILL), 0, 5, 14, 11),
        at(alarms_table("Active alarms 告警列表", NOT_DRILL), 14, 5, 10, 11),
        at(power_table("Storage-room power 保密室供电", NOT_DRILL), 0, 16, 10, 11),
        at(gate_throughput(), 10, 16, 7, 11),
        at(face_match_failures(), 17, 16, 7, 11),
    ):
        d.with_panel(panel)
    return d
