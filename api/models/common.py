"""Shapes every resource shares: RFC 9457 problem details, pages, times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
PROBLEM_TYPE = "about:blank"


class FieldError(BaseModel):
    field: str = Field(description="where the bad value is: body.comment, query.limit, path.alarm_id")
    message: str


class Problem(BaseModel):
    """An error as RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "about:blank", "title": "Unprocessable Content", "status": 422,
        "detail": "query.limit: Input should be less than or equal to 500", "instance": "/alarms",
        "errors": [{"field": "query.limit", "message": "Input should be less than or equal to 500"}],
    }]})

    type: str = PROBLEM_TYPE
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[FieldError] | None = Field(default=None, description="validation errors, one per field")


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items`` from ``offset``, at most ``limit``, of ``total``."""

    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)


def ns_time(ns: int | None) -> datetime | None:
    """Nanoseconds since the epoch as an aware UTC datetime (None stays None)."""
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=UTC)


def problem_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` entries for the given error codes, each a Problem."""
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {code: {"model": Problem, "content": {"application/problem+json": problem}} for code in codes}
