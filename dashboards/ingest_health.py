"""The ingest-health dashboard (数据接入): throughput, rejections by reason, spool, device clocks.

Ingest writes its own counters (``ingest_stats``, cumulative per worker, every few seconds)
and every rejected message (``ingest_reject``) through the same pipeline as the telemetry.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common

from dashboards.influxql import Select, col, expr, fn, ident, measurements
from dashboards.panels import (
    DATASOURCE,
    GREEN,
    NOT_DRILL,
    RED,
    TELEMETRY,
    YELLOW,
    at,
    base,
    big_stat,
    rows_table,
    steps,
    target,
    thresholds_override,
    trend,
)

UID = "examwatch-ingest"
COUNTERS = ("received", "written", "rejected", "dropped", "dead", "write_errors")


def _rate(counter: str) -> Select:
    return Select(
        fields=(expr(f"non_negative_derivative(max({ident(counter)}), 1s)", counter),),
        sources=("ingest_stats",),
        by_interval=True,
        group_by=("worker",),
    )


def _total(counter: str) -> Select:
    """A counter summed over workers (each worker's last value)."""
    last = Select(fields=(fn("last", counter, alias=counter),), sources=("ingest_stats",), group_by=("worker",))
    return Select(fields=(fn("sum", counter, alias=counter),), sources=(last,), time_filter=False)


def _skew() -> Select:
    abs_skew = Select(
        fields=(expr(f"abs({ident('skew_ms')})", "skew"),),
        sources=(measurements(*TELEMETRY),),
        where=(NOT_DRILL,),
    )
    return Select(
        fields=(fn("max", "skew", alias="worst |skew|"),),
        sources=(abs_skew,),
        by_interval=True,
        group_by=("site",),
    )


def build() -> dash_b.Dashboard:
    """The ingest-health dashboard."""
    d = base(UID, "Ingest health 数据接入", ["ingest"], refresh="10s", time_from="now-1h")
    totals = big_stat(
        "Totals since worker start", *((c[:3].upper() + str(i), _total(c)) for i, c in enumerate(COUNTERS))
    )
    totals.thresholds(steps(GREEN))
    for bad in ("rejected", "dropped", "dead", "write_errors"):
        totals.override_by_name(bad, [thresholds_override(steps(GREEN, (1, RED)))])
    by_reason = Select(
        fields=(fn("count", "size", alias="rejected"),), sources=("ingest_reject",), group_by=("reason",)
    )
    reasons = (
        bargauge.Panel()
        .title("Rejected by reason 拒收原因")
        .datasource(DATASOURCE)
        .with_target(target("A", by_reason).alias("$tag_reason"))
        .orientation(common.VizOrientation.HORIZONTAL)
        .thresholds(steps(YELLOW))
    )
    spool = Select(
        fields=(fn("max", "spool_depth", alias="spool depth"),),
        sources=("ingest_stats",),
        by_interval=True,
        group_by=("worker",),
    )
    latency = Select(
        fields=(fn("mean", "write_ms_avg", alias="write ms"),),
        sources=("ingest_stats",),
        by_interval=True,
        group_by=("worker",),
    )
    recent = Select(
        fields=(col("reason"), col("site"), col("topic"), col("detail")),
        sources=("ingest_reject",),
        order_desc=True,
        limit=100,
    )
    worst_clocks = Select(
        fields=(fn("max", "skew", alias="worst |skew| ms"),),
        sources=(
            Select(
                fields=(expr(f"abs({ident('skew_ms')})", "skew"),),
                sources=(measurements(*TELEMETRY),),
                where=(NOT_DRILL,),
            ),
        ),
        group_by=("device",),
        time_filter=False,
    )
    for panel in (
        at(totals, 0, 0, 24, 4),
        at(
            trend(
                "Received and written per second 接收/写入",
                "ops",
                ("A", _rate("received")),
                ("B", _rate("written")),
                alias="$tag_worker $col",
            ),
            0,
            4,
            12,
            8,
        ),
        at(reasons, 12, 4, 12, 8),
        at(trend("Spool depth 缓存批次", "short", ("A", spool), alias="$tag_worker"), 0, 12, 8, 8),
        at(trend("InfluxDB write latency 写入耗时", "ms", ("A", latency), alias="$tag_worker"), 8, 12, 8, 8),
        at(
            trend("Device clock skew 设备时钟偏差", "ms", ("A", _skew())).thresholds(
                steps(GREEN, (1000, YELLOW), (2000, RED))
            ),
            16,
            12,
            8,
            8,
        ),
        at(rows_table("Recent rejections 最近拒收", recent, time_column="time"), 0, 20, 14, 9),
        at(
            rows_table("Worst device clocks 时钟偏差最大的设备", worst_clocks, sort_by="worst |skew| ms", desc=True)
            .time_from("5m")
            .unit("ms")
            .thresholds(steps(GREEN, (1000, YELLOW), (2000, RED))),
            14,
            20,
            10,
            9,
        ),
    ):
        d.with_panel(panel)
    return d
