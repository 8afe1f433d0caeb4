"""Which InfluxDB fields a device kind's telemetry has, and which of them are numbers.

Field names are identifiers in InfluxQL and cannot be bound parameters, so a history query
may name only a field listed here (derived from the kind's pydantic model, dicts flattened
the way examwatch.lineproto writes them): user text never reaches the query.
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from functools import cache
from typing import Any

from examwatch.kinds import ENVELOPE_FIELDS, KINDS

SKEW_FIELD = "skew_ms"


def _unwrap(tp: Any) -> Any:
    """Strip Optional and Annotated: ``Annotated[float, …] | None`` → ``float``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _numeric(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, int | float) and not issubclass(tp, bool)


@cache
def telemetry_fields(kind: str) -> dict[str, bool]:
    """Field name → is numeric, for ``kind``'s telemetry measurement (``skew_ms`` included)."""
    model = KINDS[kind].telemetry
    out: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        if name in ENVELOPE_FIELDS:
            continue
        tp = _unwrap(info.annotation)
        if typing.get_origin(tp) is dict:
            key_type, value_type = typing.get_args(tp)
            keys = [k.value for k in key_type] if isinstance(key_type, type) and issubclass(key_type, Enum) else []
            for key in keys:
                out[f"{name}_{key}"] = _numeric(_unwrap(value_type))
        else:
            out[name] = _numeric(tp)
    out[SKEW_FIELD] = True
    return out
