"""Panel helpers shared by every dashboard: the datasource, TV-readable defaults, layout and colours.

Every panel here queries one datasource, ``DATASOURCE``, whose uid is the one the provisioning
file gives it (``provisioning/datasources/examwatch.yaml``; a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash

from dashboards.influxql import DATASOURCE_TYPE, Select, Target, tag_is, tag_is_not
from examwatch.alarm import Severity
from examwatch.kinds import KINDS

DATASOURCE_UID = "examwatch-influxql"
DATASOURCE = dash.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

#: The wall shows the real exam: drill traffic (tag drill=true) goes to the drill dashboard only.
NOT_DRILL = tag_is_not("drill", "true")
DRILL = tag_is("drill", "true")

TELEMETRY = tuple(KINDS)

GREEN, BLUE, YELLOW, ORANGE, RED = "green", "blue", "yellow", "orange", "red"

#: Alarm severities, mildest first; a site tile shows its worst active alarm's rank.
SEVERITIES = tuple(s.value for s in sorted(Severity, key=lambda s: s.rank))
SEVERITY_COLOURS = {"warning": BLUE, "minor": YELLOW, "major": ORANGE, "critical": RED}


def steps(base: str, *above: tuple[float, str]) -> dash_b.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour, then each (value, colour) from that value up."""
    return (
        dash_b.ThresholdsConfig()
        .mode(dash.ThresholdsMode.ABSOLUTE)
        .steps([dash.Threshold(value=None, color=base), *(dash.Threshold(value=v, color=c) for v, c in above)])
    )


def value_text(mapping: dict[str, tuple[str, str]]) -> dash.ValueMap:
    """Map raw values to (text, colour), e.g. ``{"true": ("ON UPS", RED)}``."""
    return dash.ValueMap(options={k: dash.ValueMappingResult(text=t, color=c) for k, (t, c) in mapping.items()})


def thresholds_override(config: dash_b.ThresholdsConfig) -> dash.DynamicConfigValue:
    """An override property that gives one field its own thresholds."""
    return dash.DynamicConfigValue(id_val="thresholds", value=config.build())


#: Table-column override: colour the cell's background from the column's thresholds and mappings.
CELL_BACKGROUND = dash.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})


Placed = TypeVar("Placed", stat.Panel, table.Panel, timeseries.Panel, statetimeline.Panel, bargauge.Panel)


def at(panel: Placed, x: int, y: int, w: int, h: int) -> Placed:
    """Place ``panel`` on the 24-column grid (explicitly: the wall's layout is designed, not flowed)."""
    panel.grid_pos(dash.GridPos(h=h, w=w, x=x, y=y))
    return panel


def target(ref: str, query: Select, as_table: bool = False) -> Target:
    """An InfluxQL target on the examwatch datasource; ``as_table`` keeps tags as columns."""
    t = Target(ref, query, DATASOURCE)
    return t.table() if as_table else t


def big_stat(title: str, *queries: tuple[str, Select]) -> stat.Panel:
    """A stat panel readable from 5 m: background colour, no sparkline, last value per series."""
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    for ref, q in queries:
        panel.with_target(target(ref, q))
    return panel


def rows_table(
    title: str, query: Select, sort_by: str | None = None, desc: bool = False, time_column: str | None = None
) -> table.Panel:
    """A table of one InfluxQL query (table format), large cells for the wall.

    InfluxDB gives each row a time; it is the point's own time only for raw rows and a single
    selector (``last(x), y``). Name it with ``time_column`` where it means something ("since");
    otherwise it is the range's start and the column is hidden.
    """
    organize: dict[str, object] = (
        {"renameByName": {"Time": time_column}} if time_column else {"excludeByName": {"Time": True}}
    )
    panel = (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .cell_height(common.TableCellHeight.LG)
        .show_header(True)
        .with_target(target("A", query, as_table=True))
        .with_transformation(transformation("organize", organize))
    )
    if sort_by is not None:
        panel.sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(desc)])
    return panel


def trend(title: str, unit: str, *queries: tuple[str, Select], alias: str = "$tag_site") -> timeseries.Panel:
    """A time series of queries grouped by ``time($__interval)``; series named by ``alias``."""
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .line_width(2)
        .fill_opacity(10)
        .legend(
            common_b.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
    )
    for ref, q in queries:
        panel.with_target(target(ref, q).alias(alias))
    return panel


def transformation(kind: str, options: dict[str, object]) -> dash.DataTransformerConfig:
    return dash.DataTransformerConfig(id_val=kind, options=options)


def variable(name: str, label: str, query: str, multi: bool = False) -> dash_b.QueryVariable:
    """A template variable filled from InfluxDB (``SHOW TAG VALUES …``), refreshed on load."""
    return (
        dash_b.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dash.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dash.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )


def base(
    uid: str, title: str, tags: Sequence[str], refresh: str = "10s", time_from: str = "now-1h"
) -> dash_b.Dashboard:
    """A dark, auto-refreshing dashboard in Beijing time."""
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .tags(["examwatch", *tags])
        .timezone("Asia/Shanghai")
        .refresh(refresh)
        .time(time_from, "now")
        .tooltip(dash.DashboardCursorSync.CROSSHAIR)
        .readonly()
    )
