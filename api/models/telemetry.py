"""Telemetry history: one field of one device, downsampled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Aggregate = Literal["mean", "min", "max", "last"]


class TelemetryPoint(BaseModel):
    time: datetime = Field(description="start of the bucket")
    value: Any = Field(description="the aggregate over the bucket (a number, or the last value of a flag or text)")


class TelemetrySeries(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "device": "S01-R01-JAM1", "kind": "jammer", "field": "rf_dbm_n78", "aggregate": "mean",
        "start": "2026-06-07T08:00:00Z", "end": "2026-06-07T09:00:00Z", "every_s": 60,
        "points": [{"time": "2026-06-07T08:00:00Z", "value": 33.2}]}]})

    device: str
    kind: str
    field: str
    aggregate: Aggregate
    start: datetime
    end: datetime
    every_s: int = Field(ge=1, description="bucket width in seconds")
    points: list[TelemetryPoint]
