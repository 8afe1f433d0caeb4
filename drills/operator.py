"""People's actions during a drill: acknowledge, resolve and silence through the API, or reply by SMS.

Each action waits for its moment on the drill clock, finds the alarm its fault raised (rule and
subject, active, in the alarm store) and acts as the scenario's person:

- through the API, with a token of that person's own and the scenario's role: the drill asks
  the API for one (``POST /tokens``) with the admin token it was given, so the audit log and the
  alarm's history name the person; a token that may not issue tokens is used as it is;
- by SMS, from the person's phone to the notifier's sender number, ``1 <code>`` (``2 <code>
  <comment>`` with a comment), the code being the one the alert SMS carried.

What each action did is kept for the report; an action that cannot be done (no such alarm by
the time it is due, the API refuses) is a problem of the drill's, not an exception.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import urllib3

from drills import scenario as sc
from drills.plan import ActionPlan, Plan
from drills.record import active_alarm, code_of
from drills.report import ActionScore
from drills.sms import MoLink
from examwatch.clock import Clock, wait_s
from examwatch.roster import Roster
from examwatch.store.access import Role

FIND_WALL_S = 10.0  # wall seconds an action keeps looking for its alarm beyond its moment


class ApiError(Exception):
    """The API refused or could not be reached (the message says which)."""


@dataclass
class Api:
    """A small client of the examwatch API: JSON over HTTP with a bearer token."""

    url: str
    token: str
    http: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=15.0), retries=False))
    _tokens: dict[tuple[str, Role], str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: dict[str, Any] | None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"}
        try:
            r = self.http.request(method, self.url.rstrip("/") + path, headers=headers,
                                  body=None if body is None else json.dumps(body, ensure_ascii=False).encode())
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc}") from None
        if r.status >= 300:
            raise ApiError(f"{method} {path}: {r.status} {r.data.decode(errors='replace')[:200]}")
        return json.loads(r.data) if r.data else None

    def token_for(self, name: str, role: Role) -> tuple[str, str]:
        """A token for ``name`` with ``role`` and who it acts as (the given token's holder when it
        may not issue tokens)."""
        key = (name, role)
        if key not in self._tokens:
            try:
                issued = self.call("POST", "/tokens", {"name": name, "role": role.value})
                self._tokens[key] = issued["token"]
            except ApiError:
                return self.token, "the drill's token"
        return self._tokens[key], name


@dataclass
class Operator:
    """Performs a plan's actions on time, in a thread of its own, and keeps what happened."""

    plan: Plan
    clock: Clock
    store: sa.Engine
    notify_store: sa.Engine
    roster: Roster
    sms_to: str  # the number alerts come from, which replies go to
    api: Api | None = None
    mo: MoLink | None = None
    results: list[ActionScore] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self.plan.actions:
            self._thread = threading.Thread(target=self._run, name="drill-operator", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self.mo is not None:
            self.mo.close()

    def _run(self) -> None:
        for ap in self.plan.actions:
            if self._stop.wait(wait_s(self.clock, ap.at)):
                return
            try:
                self.results.append(self.perform(ap))
            except Exception as exc:
                self.results.append(self._score(ap, None, f"failed: {exc!r}", ok=False))

    def _score(self, ap: ActionPlan, alarm_id: int | None, result: str, ok: bool) -> ActionScore:
        a = ap.action
        via = getattr(a, "via", "api")
        target = f"{ap.rule} on {ap.fault.subject}" if ap.fault is not None and ap.rule else _silence_target(a)
        return ActionScore(ap.index, a.type, ap.at, a.by, via, target, alarm_id, self.clock.now(), result, ok)

    def _find(self, ap: ActionPlan) -> int | None:
        """The active alarm the action is about, looked for until FIND_WALL_S after its moment."""
        assert ap.fault is not None
        assert ap.rule is not None
        subject = next((e.subject for e in ap.fault.expectations if e.rule == ap.rule), ap.fault.subject)
        deadline = time.monotonic() + FIND_WALL_S
        while not self._stop.is_set():
            found = active_alarm(self.store, ap.rule, subject)
            if found is not None or time.monotonic() > deadline:
                return found
            self._stop.wait(0.2)
        return None

    def perform(self, ap: ActionPlan) -> ActionScore:
        """Do one action now and say how it went."""
        a = ap.action
        person = self.roster.by_id[a.by]
        if isinstance(a, sc.SilenceAction):
            return self._silence(ap, a, person.name)
        alarm_id = self._find(ap)
        if alarm_id is None:
            return self._score(ap, None, f"no active {ap.rule} alarm to {a.type}", ok=False)
        if isinstance(a, sc.Ack) and a.via == "sms":
            return self._reply(ap, a, alarm_id, person.phones[0])
        if self.api is None:
            return self._score(ap, alarm_id, "no API to act through (--api-url)", ok=False)
        token, holder = self.api.token_for(person.name, a.role)
        path = f"/alarms/{alarm_id}/{'acknowledge' if isinstance(a, sc.Ack) else 'resolve'}"
        try:
            self.api.call("POST", path, {"comment": a.comment}, token)
        except ApiError as exc:
            return self._score(ap, alarm_id, f"refused: {exc}", ok=False)
        return self._score(ap, alarm_id, f"done through the API as {holder} ({a.role.value})", ok=True)

    def _reply(self, ap: ActionPlan, a: sc.Ack, alarm_id: int, phone: str) -> ActionScore:
        if self.mo is None:
            return self._score(ap, alarm_id, "no SMS centre to reply through (--mo-smsc)", ok=False)
        code = code_of(self.notify_store, alarm_id)
        text = "1" if code is None else f"1 {code}"
        if a.comment:
            text = f"2 {code} {a.comment}" if code else f"2 {a.comment}"
        try:
            self.mo.send(phone, self.sms_to, text)
        except OSError as exc:
            return self._score(ap, alarm_id, f"cannot reach the SMS centre: {exc}", ok=False)
        return self._score(ap, alarm_id, f"replied {text!r} from {phone}", ok=True)

    def _silence(self, ap: ActionPlan, a: sc.SilenceAction, name: str) -> ActionScore:
        if self.api is None:
            return self._score(ap, None, "no API to act through (--api-url)", ok=False)
        token, holder = self.api.token_for(name, a.role)
        body = {"kind": a.kind, "site": a.site, "room": a.room, "device": a.device, "rule": a.rule,
                "starts": _iso(ap.at), "ends": _iso(ap.at + a.duration.total_seconds()), "comment": a.comment}
        try:
            made = self.api.call("POST", "/silences", {k: v for k, v in body.items() if v is not None}, token)
        except ApiError as exc:
            return self._score(ap, None, f"refused: {exc}", ok=False)
        return self._score(ap, None, f"silence {made.get('id') if made else '?'} set through the API as {holder}",
                           ok=True)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _silence_target(a: Any) -> str:
    parts = [f"{k} {getattr(a, k)}" for k in ("site", "room", "device", "rule") if getattr(a, k, None)]
    return ", ".join(parts) or "—"
