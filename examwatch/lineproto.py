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


def value(v: Any) -> str:
    """One field value: bool, integer (``i`` suffix), float, enum or string."""
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


def fields(model: BaseModel, skip: frozenset[str] = ENVELOPE_FIELDS) -> list[str]:
    """``name=value`` pairs for every set field of ``model`` except the envelope's."""
    out: list[str] = []
    for name, v in model.__dict__.items():
        if v is None or name in skip:
            continue
        if isinstance(v, dict):
            out += [f"{name}_{getattr(k, 'value', k)}={value(x)}" for k, x in v.items()]
        else:
            out.append(f"{name}={value(v)}")
    return out


def line(measurement: str, tags: str, field_set: str, ts_ns: int) -> bytes:
    """One point; ``tags`` is empty or starts with ','; ``field_set`` is comma-joined pairs."""
    return f"{measurement}{tags} {field_set} {ts_ns}".encode()
