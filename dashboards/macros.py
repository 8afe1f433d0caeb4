"""Grafana's InfluxQL macros and template variables, expanded as Grafana expands them.

Used to run every committed panel's query against a real InfluxDB (``examwatch dashboards
verify`` and the tests), so a panel that would show "No data" or a query error is found
before the exam, not on the wall. Expansion follows Grafana's InfluxDB datasource:

- ``$timeFilter`` → ``time > now() - 1h`` for a relative range ending now (the panel's own
  ``timeFrom`` when it has one);
- ``$__interval`` / ``$interval`` → the group-by interval (``10s``), ``$__interval_ms`` → ms;
- ``$var`` / ``${var}`` → the variable's value; inside a regex (``/^$var$/``) values are
  regex-escaped and several values become ``(a|b)``, as Grafana's regex formatting does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_REGEX_VARIABLE = re.compile(r"/\^\$\{?(\w+)\}?\$/")


class UnresolvedVariableError(ValueError):
    """A ``$name`` left in a query that no macro or dashboard variable defines."""


def duration_ms(text: str) -> int:
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


@dataclass(frozen=True)
class Context:
    """What Grafana knows when it sends a query: the range, the interval and the variables' values."""

    range: str = "1h"
    interval: str = "10s"
    variables: dict[str, list[str]] = field(default_factory=dict)

    def expand(self, query: str, time_from: str | None = None) -> str:
        """``query`` with every macro and variable replaced; UnresolvedVariableError if one is unknown."""
        span = time_from or self.range
        duration_ms(span)
        text = query.replace("$timeFilter", f"time > now() - {span}")
        text = text.replace("$__interval_ms", str(duration_ms(self.interval)))
        text = text.replace("$__interval", self.interval).replace("$interval", self.interval)
        text = _REGEX_VARIABLE.sub(lambda m: f"/^{self._regex(m.group(1))}$/", text)
        return _VARIABLE.sub(lambda m: self._plain(m.group(1) or m.group(2)), text)

    def _values(self, name: str) -> list[str]:
        if name not in self.variables:
            raise UnresolvedVariableError(f"${name} is neither a Grafana macro nor a dashboard variable")
        values = self.variables[name]
        if not values:
            raise UnresolvedVariableError(f"${name} has no value")
        return values

    def _regex(self, name: str) -> str:
        values = [re.escape(v) for v in self._values(name)]
        return values[0] if len(values) == 1 else "(" + "|".join(values) + ")"

    def _plain(self, name: str) -> str:
        return ",".join(self._values(name))
