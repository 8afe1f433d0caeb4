"""Each role on each write endpoint: no token 401, a lesser role 403, the role that may (or a higher one) succeeds."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from examwatch.store.access import Role
from harness.api_stack import ApiStack


@dataclass(frozen=True)
class Write:
    method: str
    path: str  # as in the OpenAPI document
    needs: Role
    request: Callable[[ApiStack], tuple[str, Any]]  # the concrete path and JSON body of a valid request


_RULES = itertools.count()


def _alarm(s: ApiStack, action: str, body: dict[str, str]) -> tuple[str, Any]:
    # One active alarm per rule and subject: a new rule name each time.
    return f"/alarms/{s.open_alarm('S01-R01-CAM1', f'camera_rule_{next(_RULES)}')}/{action}", body


def _token(s: ApiStack) -> tuple[str, Any]:
    return f"/tokens/{s.http(Role.ADMIN).post('/tokens', json={'name': 'x', 'role': 'viewer'}).json()['id']}", None


def _in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


WRITES = [
    Write("POST", "/alarms/{alarm_id}/acknowledge", Role.OPERATOR, lambda s: _alarm(s, "acknowledge", {})),
    Write("POST", "/alarms/{alarm_id}/resolve", Role.OPERATOR, lambda s: _alarm(s, "resolve", {"comment": "ok"})),
    Write("POST", "/alarms/{alarm_id}/comments", Role.OPERATOR, lambda s: _alarm(s, "comments", {"comment": "c"})),
    Write("POST", "/silences", Role.OPERATOR, lambda s: ("/silences", {"site": "S01", "ends": _in_an_hour()})),
    Write("POST", "/silences/{silence_id}/expire", Role.OPERATOR, lambda s: (
        f"/silences/{s.http(Role.OPERATOR).post('/silences', json={'rule': 'x', 'ends': _in_an_hour()}).json()['id']}"
        "/expire", None)),
    Write("PUT", "/timetable", Role.ADMIN, lambda s: ("/timetable", s.http().get("/timetable").json())),
    Write("PUT", "/inventory", Role.ADMIN, lambda s: ("/inventory", s.http().get("/inventory").json())),
    Write("PUT", "/rules/{file}", Role.ADMIN, lambda s: ("/rules/power", s.http().get("/rules").json()["files"]["power"])),
    Write("POST", "/rules/reload", Role.ADMIN, lambda s: ("/rules/reload", None)),
    Write("PUT", "/roster", Role.ADMIN, lambda s: ("/roster", s.http(Role.OPERATOR).get("/roster").json())),
    Write("POST", "/drills", Role.ADMIN, lambda s: ("/drills", {"scenario": "power-cut"})),
    Write("POST", "/tokens", Role.ADMIN, lambda s: ("/tokens", {"name": "wall", "role": "viewer"})),
    Write("DELETE", "/tokens/{token_id}", Role.ADMIN, _token),
]


#: Writes that take no API token: Kannel's callback carries the callback key instead (test_api_phone
#: shows a wrong key refused). The mobile page's forms are not in the OpenAPI document; its link is the key.
KEY_GUARDED = {("POST", "/sms/reply")}


def test_the_table_names_every_write_endpoint(api: ApiStack) -> None:
    doc = api.http().get("/openapi.json").json()
    writes = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops if m in ("post", "put", "patch", "delete")}
    assert writes == {(w.method, w.path) for w in WRITES} | KEY_GUARDED


@pytest.mark.parametrize("write", WRITES, ids=lambda w: f"{w.method} {w.path}")
@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: getattr(r, "value", "anonymous"))
def test_only_the_right_role_may_write(api: ApiStack, write: Write, role: Role | None) -> None:
    path, body = write.request(api)
    before = api.http(Role.ADMIN).get("/audit").json()["total"]
    r = api.http(role).request(write.method, path, json=body)
    if role is None:
        assert r.status_code == 401, r.text
    elif not role.allows(write.needs):
        assert r.status_code == 403, r.text
        assert write.needs.value in r.json()["detail"]
    else:
        assert 200 <= r.status_code < 300, r.text
    entry = api.http(Role.ADMIN).get("/audit", params={"limit": 1}).json()
    assert entry["total"] == before + 1
    assert (entry["items"][0]["path"], entry["items"][0]["status"]) == (path, r.status_code)
    assert entry["items"][0]["actor"] == ("anonymous" if role is None else f"test-{role.value}")
