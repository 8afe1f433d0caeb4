"""A small typed InfluxQL query type for Grafana panels.

grafana-foundation-sdk has builders for Prometheus, Loki and others but none for InfluxDB, so
this module supplies two things:

- ``Select``: an InfluxQL ``SELECT`` as data (fields, sources, conditions, grouping), rendered
  with identifiers and tag values quoted the same way every time. Panels compose these instead
  of pasting strings, so a tag name or a quoting rule is fixed in one place.
- ``InfluxQLQuery`` / ``Target``: the Grafana target JSON for the InfluxDB datasource in
  InfluxQL mode (``rawQuery``), registered with the SDK as a dataquery variant.

Hand-written because no maintained library renders InfluxQL for Grafana; it covers only the
statements the dashboards use. Grafana macros (``$timeFilter``, ``$__interval``) and template
variables stay as text here; Grafana expands them at query time (see ``dashboards.macros``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

TIME_FILTER = "$timeFilter"
INTERVAL = "$__interval"
DATASOURCE_TYPE = "influxdb"


def ident(name: str) -> str:
    """A double-quoted identifier (field, tag, measurement or alias)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """A single-quoted string literal (a tag value)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fn(name: str, field_name: str, *args: str, alias: str | None = None) -> str:
    """``name("field", args…) AS "alias"``: an aggregate or selector over one field.

    A ``field_name`` written as a regex (``/^rf_dbm_/``) selects every matching field.
    """
    target = field_name if field_name.startswith("/") else ident(field_name)
    inner = ", ".join([target, *args])
    return f"{name}({inner})" + (f" AS {ident(alias)}" if alias else "")


def col(field_name: str, alias: str | None = None) -> str:
    """A raw field or tag column, optionally renamed."""
    return ident(field_name) + (f" AS {ident(alias)}" if alias else "")


def expr(text: str, alias: str) -> str:
    """A computed expression (math over aggregates), which must be named."""
    return f"{text} AS {ident(alias)}"


def tag_is(tag: str, value: str) -> str:
    return f"{ident(tag)} = {literal(value)}"


def tag_is_not(tag: str, value: str) -> str:
    """True also where the tag is absent (InfluxQL compares a missing tag as '')."""
    return f"{ident(tag)} != {literal(value)}"


def tag_matches(tag: str, variable: str) -> str:
    """``"site" =~ /^$site$/``: Grafana fills the variable in as a regex (one value or an alternation)."""
    return f"{ident(tag)} =~ /^${variable}$/"


def is_true(field_name: str) -> str:
    return f"{ident(field_name)} = true"


def is_false(field_name: str) -> str:
    return f"{ident(field_name)} = false"


def measurements(*names: str) -> str:
    """A regex source over several measurements: ``/^(a|b)$/``."""
    return "/^(" + "|".join(names) + ")$/"


@dataclass(frozen=True)
class Select:
    """One InfluxQL SELECT.

    ``sources`` are measurement names (quoted on rendering), regex sources (``/…/``, kept) or
    nested ``Select``s (subqueries, unioned when several). ``time_filter`` adds Grafana's
    ``$timeFilter``; a subquery carries the filter, so an outer query over subqueries needs none.
    """

    fields: tuple[str, ...]
    sources: tuple[str | Select, ...]
    where: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    by_interval: bool = False
    fill: str | None = None
    time_filter: bool = True
    order_desc: bool = False
    limit: int | None = None

    def filtered(self, *conditions: str) -> Self:
        """The same query with more conditions ANDed."""
        return replace(self, where=self.where + conditions)

    def render(self) -> str:
        sources = ", ".join(_source(s) for s in self.sources)
        text = f"SELECT {', '.join(self.fields)} FROM {sources}"  # noqa: S608 - InfluxQL built from code, not input
        conditions = list(self.where) + ([TIME_FILTER] if self.time_filter else [])
        if conditions:
            text += " WHERE " + " AND ".join(conditions)
        groups = ([f"time({INTERVAL})"] if self.by_interval else []) + [ident(g) for g in self.group_by]
        if groups:
            text += " GROUP BY " + ", ".join(groups)
        if self.fill is not None:
            text += f" fill({self.fill})"
        if self.order_desc:
            text += " ORDER BY time DESC"
        if self.limit is not None:
            text += f" LIMIT {self.limit}"
        return text


def _source(source: str | Select) -> str:
    if isinstance(source, Select):
        return f"({source.render()})"
    return source if source.startswith("/") else ident(source)


class ResultFormat(StrEnum):
    TIME_SERIES = "time_series"
    TABLE = "table"


@dataclass
class InfluxQLQuery(cogvariants.Dataquery):
    """A Grafana InfluxDB target in raw InfluxQL mode."""

    ref_id: str
    query: str
    result_format: ResultFormat = ResultFormat.TIME_SERIES
    alias: str | None = None
    datasource: dashboard.DataSourceRef | None = None

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format.value,
        }
        if self.alias:
            payload["alias"] = self.alias
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InfluxQLQuery:
        ds = data.get("datasource")
        return cls(
            ref_id=data.get("refId", ""),
            query=data.get("query", ""),
            result_format=ResultFormat(data.get("resultFormat", ResultFormat.TIME_SERIES)),
            alias=data.get("alias"),
            datasource=dashboard.DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
        )


class Target(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for ``InfluxQLQuery``, so panels take it like the SDK's own query builders."""

    def __init__(self, ref_id: str, query: Select, datasource: dashboard.DataSourceRef) -> None:
        self._internal = InfluxQLQuery(ref_id=ref_id, query=query.render(), datasource=datasource)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def table(self) -> Self:
        self._internal.result_format = ResultFormat.TABLE
        return self

    def alias(self, alias: str) -> Self:
        """Series name pattern, e.g. ``$tag_site`` or ``$col``."""
        self._internal.alias = alias
        return self


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json)
)
