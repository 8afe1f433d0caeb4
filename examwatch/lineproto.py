"""InfluxDB line protocol, hand-written because it sits on ingest's hot path.

A validated payload model becomes a field set in one pass over its attributes; dict fields
(a jammer's per-band readings) flatten to ``name_key``. Escaping follows
https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel

from examwatch.kinds import ENVELOPE_FIELDS


def escape_tag(value: str) -> str:
    """Escape a tag key or value (also a measurement name, minus '=')."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def quote(value: str) -> str:
    """A string field value, quoted."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _value_slow(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Enum):
        return quote(str(v.value))
    return quote(str(v))


#: Quoted values of enum members (a bounded set), built once each.
_ENUMS: dict[Enum, str] = {}


def value(v: Any) -> str:
    """One field value: bool, integer (``i`` suffix), float, enum or string."""
    # Exact types first (one type() and a few identity tests); subclasses take the slow path.
    t = type(v)
    if t is float:
        return repr(v)
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return f"{v}i"
    if t is str:
        return quote(v)
    if isinstance(v, str) and isinstance(v, Enum):  # StrEnum; int-valued enums take the slow path
        q = _ENUMS.get(v)
        if q is None:
            q = _ENUMS[v] = quote(str(v.value))
        return q
    return _value_slow(v)


#: ``name_key=`` for dict fields keyed by an enum (a jammer's bands), per field name: a bounded set.
_PREFIXES: dict[str, dict[Any, str]] = {}


def _prefix(known: dict[Any, str], name: str, key: Any) -> str:
    if not isinstance(key, Enum):
        return f"{name}_{key}="  # free-form keys are not kept: the cache must stay bounded
    p = known[key] = f"{name}_{key.value}="
    return p


def fields(model: BaseModel, skip: frozenset[str] = ENVELOPE_FIELDS) -> list[str]:
    """``name=value`` pairs for every set field of ``model`` except the envelope's."""
    out: list[str] = []
    append = out.append
    for name, v in model.__dict__.items():
        if v is None or name in skip:
            continue
        t = type(v)
        if t is float:  # the common case, inlined
            append(f"{name}={v!r}")
        elif t is dict:
            known = _PREFIXES.get(name)
            if known is None:
                known = _PREFIXES[name] = {}
            for k, x in v.items():
                pre = known.get(k) or _prefix(known, name, k)
                append(pre + (repr(x) if type(x) is float else value(x)))
        else:
            append(f"{name}={value(v)}")
    return out


def line(measurement: str, tags: str, field_set: str, ts_ns: int) -> bytes:
    """One point; ``tags`` is empty or starts with ','; ``field_set`` is comma-joined pairs."""
    return f"{measurement}{tags} {field_set} {ts_ns}".encode()
