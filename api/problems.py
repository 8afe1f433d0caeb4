"""Every error as RFC 9457 problem details; a validation error names each field it refuses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from api.models.common import FieldError, Problem
from examwatch.datafile import DataFileError, format_loc
from examwatch.influx import InfluxRejected, InfluxUnavailable

log = logging.getLogger("examwatch.api")
MEDIA_TYPE = "application/problem+json"


class Unprocessable(Exception):
    """A value that passed its type check but makes no sense here; answered 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class OnDisk(Exception):
    """Another configuration file on disk is broken, so a change that must agree with it cannot be
    checked; answered 409 naming that file."""


M = TypeVar("M", bound=BaseModel)


def validate_with(model: type[M], body: BaseModel, context: dict[str, Any]) -> M:
    """Validate ``body`` again as ``model`` with ``context`` (checks that need the inventory or the
    file it goes to); a failure is a 422 naming each ``body.…`` field, like FastAPI's own."""
    try:
        return model.model_validate(body.model_dump(mode="json", by_alias=True), context=context)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


def problem_response(request: Request, status: int, detail: str, errors: list[FieldError] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=request.url.path,
                   errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE,
                        headers=headers)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem_response(request, exc.status_code, str(exc.detail),
                            headers=dict(exc.headers) if exc.headers else None)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(field=format_loc(tuple(e["loc"])), message=e["msg"]) for e in exc.errors()]
    return problem_response(request, 422, "; ".join(f"{e.field}: {e.message}" for e in errors), errors)


async def _unprocessable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unprocessable)
    return problem_response(request, 422, str(exc), [FieldError(field=exc.field, message=exc.message)])


async def _bad_file(request: Request, exc: Exception) -> JSONResponse:
    log.error("a configuration file on disk is invalid: %s", exc)
    return problem_response(request, 500, f"a configuration file on disk is invalid: {exc}")


async def _on_disk(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 409, str(exc))


async def _influx_down(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 503, f"InfluxDB is unavailable: {exc}", headers={"Retry-After": "5"})


async def _influx_refused(request: Request, exc: Exception) -> JSONResponse:
    log.error("InfluxDB refused a query: %s", exc)
    return problem_response(request, 502, f"InfluxDB refused the query: {exc}")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "unexpected error; the server log has the details")


def install(app: FastAPI) -> None:
    """Register the problem-details handlers on ``app``."""
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Unprocessable, _unprocessable)
    app.add_exception_handler(DataFileError, _bad_file)
    app.add_exception_handler(OnDisk, _on_disk)
    app.add_exception_handler(InfluxUnavailable, _influx_down)
    app.add_exception_handler(InfluxRejected, _influx_refused)
    app.add_exception_handler(Exception, _unexpected)
