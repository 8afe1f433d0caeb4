"""The InfluxQL query type and the macro expansion, without servers."""

from __future__ import annotations

import json

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.influxql import Select, Target, fn, ident, literal, measurements, tag_is_not, tag_matches
from dashboards.macros import Context, duration_ms
from dashboards.panels import DATASOURCE


def test_select_renders_quoted_and_grouped() -> None:
    q = Select(
        fields=(fn("last", "mains_v", alias="mains V"),),
        sources=("power",),
        where=(tag_is_not("drill", "true"), tag_matches("site", "site")),
        by_interval=True,
        group_by=("site",),
        fill="0",
    )
    assert q.render() == (
        'SELECT last("mains_v") AS "mains V" FROM "power" WHERE "drill" != \'true\' AND "site" =~ /^$site$/ '
        'AND $timeFilter GROUP BY time($__interval), "site" fill(0)'
    )


def test_subqueries_and_regex_sources() -> None:
    inner = Select(fields=(fn("max", "/^rf_dbm_/"),), sources=(measurements("gate", "power"),))
    outer = Select(
        fields=(fn("count", "x"),), sources=(inner, inner), time_filter=False, order_desc=True, limit=5
    )
    assert outer.render() == (
        'SELECT count("x") FROM (SELECT max(/^rf_dbm_/) FROM /^(gate|power)$/ WHERE $timeFilter), '
        "(SELECT max(/^rf_dbm_/) FROM /^(gate|power)$/ WHERE $timeFilter) ORDER BY time DESC LIMIT 5"
    )


def test_quoting_escapes() -> None:
    assert ident('a"b') == '"a\\"b"'
    assert literal("it's") == "'it\\'s'"


def test_target_json_is_grafana_influxql() -> None:
    t = Target("A", Select(fields=("*",), sources=("alarm",)), DATASOURCE).table().alias("$tag_site").build()
    doc = json.loads(json.dumps(t, cls=JSONEncoder))
    assert doc == {
        "refId": "A",
        "query": 'SELECT * FROM "alarm" WHERE $timeFilter',
        "rawQuery": True,
        "resultFormat": "table",
        "alias": "$tag_site",
        "datasource": {"type": "influxdb", "uid": "examwatch-influxql"},
    }


def test_macros_expand_like_grafana() -> None:
    ctx = Context(range="6h", interval="10s", variables={"site": ["S01"], "room": ["R01", "R.2"]})
    q = (
        'SELECT sum("p") * 60000 / $__interval_ms FROM "gate" '
        'WHERE "site" =~ /^$site$/ AND "room" =~ /^${room}$/ AND $timeFilter GROUP BY time($__interval)'
    )
    assert ctx.expand(q) == (
        'SELECT sum("p") * 60000 / 10000 FROM "gate" '
        'WHERE "site" =~ /^S01$/ AND "room" =~ /^(R01|R\\.2)$/ AND time > now() - 6h GROUP BY time(10s)'
    )
    assert ctx.expand("WHERE $timeFilter", time_from="7d") == "WHERE time > now() - 7d"
    assert duration_ms("5m") == 300_000
