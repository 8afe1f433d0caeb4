"""The per-site dashboard (考点详情): one site's alarms, readiness, rooms and devices.

Variables: ``site`` (one site) and ``room`` (one, several or all of its rooms). The wall's
site grid links here with ``var-site`` set.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import statetimeline, table
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash

from dashboards.influxql import Select, col, fn, tag_is_not, tag_matches
from dashboards.panels import (
    DATASOURCE,
    GREEN,
    NOT_DRILL,
    RED,
    at,
    base,
    rows_table,
    steps,
    target,
    trend,
    value_text,
    variable,
)
from dashboards.widgets import SITE_DASHBOARD_UID, alarms_table, power_table, site_grid

UID = SITE_DASHBOARD_UID
SITE = tag_matches("site", "site")
ROOM = tag_matches("room", "room")


def _jammers_on() -> statetimeline.Panel:
    query = Select(
        fields=(fn("last", "on", alias="on"),),
        sources=("jammer",),
        where=(NOT_DRILL, SITE, ROOM),
        by_interval=True,
        group_by=("room",),
    )
    return (
        statetimeline.Panel()
        .title("Jammers on 屏蔽仪开启")
        .datasource(DATASOURCE)
        .with_target(target("A", query).alias("$tag_room"))
        .mappings([value_text({"true": ("ON", GREEN), "false": ("OFF", RED)})])
        .show_value(common.VisibilityMode.NEVER)
    )


def _cameras() -> table.Panel:
    query = Select(
        fields=(
            fn("last", "recording", alias="recording"),
            fn("last", "video_loss", alias="video loss"),
            fn("last", "tamper", alias="tamper"),
            fn("last", "fps", alias="fps"),
        ),
        sources=("camera",),
        where=(NOT_DRILL, SITE, ROOM),
        group_by=("room", "device"),
    )
    return rows_table("Cameras 摄像头", query, sort_by="room")


def _devices() -> table.Panel:
    query = Select(
        fields=(fn("last", "online", alias="online"),),
        sources=("device_status",),
        where=(SITE,),
        group_by=("kind", "room", "device"),
        time_filter=False,
    )
    return rows_table("Device status 设备在线", query, sort_by="online", time_column="since").mappings(
        [value_text({"true": ("online", GREEN), "false": ("OFFLINE", RED)})]
    )


def _readiness() -> table.Panel:
    query = Select(
        fields=(fn("last", "go", alias="go"), col("detail")),
        sources=("readiness",),
        where=(NOT_DRILL, SITE),
        group_by=("paper", "room"),
    )
    return (
        rows_table("Readiness by room 考场就绪", query, sort_by="go", time_column="evaluated")
        .time_from("3h")
        .mappings([value_text({"true": ("GO", GREEN), "false": ("NOT GO", RED)})])
    )


def build() -> dash_b.Dashboard:
    """The per-site dashboard."""
    d = (
        base(UID, "Site 考点", ["site"])
        .with_variable(variable("site", "site 考点", 'SHOW TAG VALUES FROM "power" WITH KEY = "site"'))
        .with_variable(
            variable(
                "room",
                "room 考场",
                f'SHOW TAG VALUES FROM "jammer" WITH KEY = "room" WHERE {SITE}',
                multi=True,
            )
        )
    )
    rf = Select(
        fields=(fn("mean", "/^rf_dbm_/"),),
        sources=("jammer",),
        where=(NOT_DRILL, SITE, ROOM),
        by_interval=True,
        group_by=("room",),
    )
    fps = Select(
        fields=(fn("mean", "fps", alias="fps"),),
        sources=("camera",),
        where=(NOT_DRILL, SITE, ROOM),
        by_interval=True,
        group_by=("device",),
    )
    mains = Select(
        fields=(fn("mean", "mains_v", alias="mains V"),),
        sources=("power",),
        where=(NOT_DRILL, SITE),
        by_interval=True,
    )
    ups = Select(
        fields=(fn("min", "ups_minutes_left", alias="battery min"),),
        sources=("power",),
        where=(NOT_DRILL, SITE),
        by_interval=True,
    )
    gates = Select(
        fields=(
            fn("sum", "passes", alias="passes"),
            fn("sum", "face_match_failures", alias="face-match failures"),
        ),
        sources=("gate",),
        where=(NOT_DRILL, SITE),
        by_interval=True,
        group_by=("device",),
        fill="0",
    )
    battery = Select(
        fields=(fn("last", "battery_pct", alias="battery %"), fn("last", "self_test", alias="self test")),
        sources=("detector",),
        where=(NOT_DRILL, SITE, ROOM, tag_is_not("room", "ENT")),
        group_by=("room", "device"),
    )
    for panel in (
        at(site_grid("Status 状态", NOT_DRILL, SITE), 0, 0, 4, 6),
        at(alarms_table("Active alarms 活动告警", NOT_DRILL, SITE), 4, 0, 12, 6),
        at(power_table("Storage room 保密室", NOT_DRILL, SITE), 16, 0, 8, 6),
        at(_readiness(), 0, 6, 8, 9),
        at(_jammers_on(), 8, 6, 16, 9),
        at(
            trend("Jammer RF output per band 屏蔽仪输出 (dBm)", "dBm", ("A", rf), alias="$tag_room $col"),
            0,
            15,
            12,
            9,
        ),
        at(trend("Camera frame rate 帧率", "fps", ("A", fps), alias="$tag_device"), 12, 15, 12, 9),
        at(_cameras(), 0, 24, 12, 9),
        at(_devices(), 12, 24, 12, 9),
        at(
            trend(
                "Storage-room mains and UPS 市电与UPS", "volt", ("A", mains), ("B", ups), alias="$col"
            ).override_by_name("battery min", [dash.DynamicConfigValue(id_val="unit", value="m")]),
            0,
            33,
            8,
            8,
        ),
        at(trend("Gates 闸机", "short", ("A", gates), alias="$tag_device $col"), 8, 33, 8, 8),
        at(
            rows_table("Handheld detectors 手持金属探测仪", battery, sort_by="battery %").thresholds(
                steps(RED, (20, "orange"), (40, GREEN))
            ),
            16,
            33,
            8,
            8,
        ),
    ):
        d.with_panel(panel)
    return d
