"""Panels that appear on more than one dashboard: the site status grid, alarm tables, power table."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.models import dashboard as dash

from dashboards.influxql import Select, fn, tag_is
from dashboards.panels import (
    CELL_BACKGROUND,
    GREEN,
    ORANGE,
    RED,
    SEVERITIES,
    SEVERITY_COLOURS,
    big_stat,
    rows_table,
    steps,
    target,
    thresholds_override,
    transformation,
    value_text,
)
from dashboards.queries import active_alarms, alarm_states, count_where, site_status

#: State-like measurements (alarms) are read over a longer window than the dashboard's range:
#: an alarm raised three hours ago and still active must stay on the wall.
ALARM_WINDOW = "7d"
SITE_DASHBOARD_UID = "examwatch-site"

STATUS_TEXT = {
    "0": ("OK", GREEN),
    **{str(i): (s.upper(), SEVERITY_COLOURS[s]) for i, s in enumerate(SEVERITIES, 1)},
}


def site_grid(title: str, *where: str) -> stat.Panel:
    """One tile per site, coloured by its worst active alarm; a click opens the site dashboard."""
    return (
        big_stat(title)
        .with_target(target("A", site_status(*where), as_table=True))
        .time_from(ALARM_WINDOW)
        .hide_time_override(True)
        .with_transformation(transformation("merge", {}))
        .with_transformation(
            transformation(
                "groupBy",
                {
                    "fields": {
                        "site": {"operation": "groupby"},
                        "status": {"operation": "aggregate", "aggregations": ["max"]},
                    }
                },
            )
        )
        .reduce_options(common_b.ReduceDataOptions().values(True).calcs(["lastNotNull"]).fields("/^status/"))
        .display_name("${__data.fields.site}")
        .mappings([value_text(STATUS_TEXT)])
        .thresholds(steps(GREEN))
        .text(common_b.VizTextDisplayOptions().title_size(28).value_size(22))
        .data_links(
            [
                dash_b.DashboardLink("site ${__data.fields.site}").url(
                    f"/d/{SITE_DASHBOARD_UID}?var-site=${{__data.fields.site}}&${{__url_time_range}}"
                )
            ]
        )
    )


def alarms_table(title: str, *where: str) -> table.Panel:
    """The active alarms, worst severity first (alphabetical order happens to be severity order)."""
    return (
        rows_table(title, active_alarms(*where), sort_by="severity", time_column="since")
        .time_from(ALARM_WINDOW)
        .hide_time_override(True)
        .with_transformation(
            transformation(
                "organize",
                {
                    "excludeByName": {"active": True},
                    "indexByName": {
                        "severity": 0,
                        "site": 1,
                        "subject": 2,
                        "rule": 3,
                        "state": 4,
                        "message": 5,
                        "since": 6,
                        "subject_type": 7,
                    },
                },
            )
        )
        .override_by_name(
            "severity",
            [
                CELL_BACKGROUND,
                dash.DynamicConfigValue(
                    id_val="mappings",
                    value=[value_text({s: (s.upper(), SEVERITY_COLOURS[s]) for s in SEVERITIES})],
                ),
            ],
        )
        .no_value("no active alarms")
    )


def power_table(title: str, *where: str) -> table.Panel:
    """Storage-room power per site: mains voltage, on UPS, battery minutes; lowest battery first."""
    query = Select(
        fields=(
            fn("last", "mains_v", alias="mains V"),
            fn("last", "on_ups", alias="on UPS"),
            fn("last", "ups_minutes_left", alias="battery min"),
            fn("last", "door_open", alias="door"),
        ),
        sources=("power",),
        where=where,
        group_by=("site",),
    )
    return (
        rows_table(title, query, sort_by="battery min")
        .override_by_name(
            "mains V",
            [
                CELL_BACKGROUND,
                dash.DynamicConfigValue(id_val="unit", value="volt"),
                thresholds_override(steps(RED, (198, GREEN), (243, RED))),
            ],
        )
        .override_by_name(
            "on UPS",
            [
                CELL_BACKGROUND,
                dash.DynamicConfigValue(
                    id_val="mappings",
                    value=[value_text({"true": ("ON UPS", RED), "false": ("mains", GREEN)})],
                ),
            ],
        )
        .override_by_name(
            "battery min",
            [
                CELL_BACKGROUND,
                dash.DynamicConfigValue(id_val="unit", value="m"),
                thresholds_override(steps(RED, (30, ORANGE), (60, GREEN))),
            ],
        )
        .override_by_name(
            "door",
            [
                CELL_BACKGROUND,
                dash.DynamicConfigValue(
                    id_val="mappings",
                    value=[value_text({"true": ("OPEN", ORANGE), "false": ("closed", GREEN)})],
                ),
            ],
        )
    )


def severity_counts(title: str, *where: str) -> stat.Panel:
    """How many alarms are active, one tile per severity that has any."""
    panel = big_stat(title).time_from(ALARM_WINDOW).hide_time_override(True).no_value("none")
    for severity in reversed(SEVERITIES):
        inner = alarm_states(*where, tag_is("severity", severity))
        panel.with_target(target(severity[:4].upper(), count_where(inner, "active", True, severity)))
        panel.override_by_name(
            severity,
            [
                dash.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": SEVERITY_COLOURS[severity]}
                ),
            ],
        )
    return panel.reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
