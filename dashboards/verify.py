"""Run every panel's queries against InfluxDB, as Grafana would, and say which return nothing.

Template variables are filled from InfluxDB the way Grafana fills them (each variable's own
query, after the variables before it), unless the caller fixes a value. Server-side
expressions (``__expr__``: reduce and math) are evaluated over the InfluxQL results.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dashboards.macros import Context
from examwatch.influx import Influx, InfluxRejected

EXPRESSION_TYPE = "__expr__"


@dataclass
class Result:
    """One target of one panel: the expanded query, its rows (or values), and any error."""

    dashboard: str
    panel: str
    ref: str
    query: str
    rows: int = 0
    values: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.rows > 0


def resolve_variables(doc: dict[str, Any], influx: Influx, ctx: Context) -> Context:
    """Fill each dashboard variable not fixed in ``ctx``: all values for a multi-value one, else the first."""
    variables = dict(ctx.variables)
    for var in doc.get("templating", {}).get("list", []):
        name = var["name"]
        if name in variables:
            continue
        query = replace(ctx, variables=variables).expand(var["query"])
        found = [str(r["value"]) for r in influx.rows(query)]
        if not found:
            raise LookupError(f"{doc['title']}: variable ${name} has no values ({query})")
        variables[name] = found if var.get("multi") else found[:1]
    return replace(ctx, variables=variables)


def run_dashboard(doc: dict[str, Any], influx: Influx, ctx: Context) -> list[Result]:
    """Every target of every panel of ``doc``, run with ``ctx`` (variables resolved first)."""
    ctx = resolve_variables(doc, influx, ctx)
    results: list[Result] = []
    for panel in doc.get("panels", []):
        results += _run_panel(doc["title"], panel, influx, ctx)
    return results


def _run_panel(dashboard: str, panel: dict[str, Any], influx: Influx, ctx: Context) -> list[Result]:
    by_ref: dict[str, Result] = {}
    for target in panel.get("targets", []):
        ref = target["refId"]
        if target.get("datasource", {}).get("type") == EXPRESSION_TYPE:
            by_ref[ref] = _expression(dashboard, panel["title"], target, by_ref)
            continue
        query = ctx.expand(target["query"], panel.get("timeFrom"))
        result = Result(dashboard, panel["title"], ref, query)
        try:
            series = influx.query(query)[0].get("series", [])
        except InfluxRejected as exc:
            result.error = str(exc)
        else:
            for s in series:
                value_cols = [i for i, c in enumerate(s["columns"]) if c != "time"]
                rows = [v for v in s["values"] if any(v[i] is not None for i in value_cols)]
                result.rows += len(rows)
                result.values += [v[value_cols[-1]] for v in rows if isinstance(v[value_cols[-1]], int | float)]
        by_ref[ref] = result
    return list(by_ref.values())


_OPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _expression(dashboard: str, panel: str, target: dict[str, Any], done: dict[str, Result]) -> Result:
    """A Grafana server-side expression: ``reduce`` (last) of one result, or ``math`` over reduced ones."""
    text = target["expression"]
    result = Result(dashboard, panel, target["refId"], text)
    try:
        if target["type"] == "reduce":
            source = done[text.lstrip("$")]
            result.values = source.values[-1:]
        elif target["type"] == "math":
            result.values = [_math(ast.parse(text.replace("$", "_"), mode="eval").body, done)]
        else:
            result.error = f"expression type {target['type']!r} is not evaluated here"
    except (KeyError, IndexError, ZeroDivisionError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.rows = len(result.values)
    return result


def _math(node: ast.expr, done: dict[str, Result]) -> float:
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_math(node.left, done), _math(node.right, done))
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(done[node.id.removeprefix("_")].values[0])
    raise KeyError(f"unsupported expression {ast.dump(node)}")
