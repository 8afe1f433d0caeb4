"""The event stream: a client that disconnects and reconnects with Last-Event-ID misses no transition."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import sqlalchemy as sa

from examwatch.store import Transition
from examwatch.store.lifecycle import acknowledge, resolve
from harness.api_stack import ApiStack
from harness.servers import wait_for


def sse_events(client: httpx.Client, headers: dict[str, str]) -> Iterator[dict[str, str]]:
    """Events of /events as dicts (event, id, data) until the caller stops iterating."""
    with client.stream("GET", "/events", headers=headers, timeout=httpx.Timeout(10, read=30)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in r.iter_lines():
            if not line.strip():
                if "data" in event:
                    yield event
                event = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")


def collect(api: ApiStack, last_id: int | None, want: int) -> list[dict[str, str]]:
    headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
    got: list[dict[str, str]] = []
    for ev in sse_events(api.http(), headers):
        if ev.get("event") == "alarm":
            got.append(ev)
            if len(got) == want:
                break
    return got


def churn(api: ApiStack, n: int, tag: str) -> None:
    """Open, acknowledge and resolve ``n`` alarms: 3 transitions each."""
    for i in range(n):
        alarm = api.open_alarm("S01-R01-JAM1", f"sse_{tag}_{i}")
        acknowledge(api.store, alarm, "duty", "seen")
        resolve(api.store, alarm, "duty", "done")


def all_transition_ids(api: ApiStack, after: int) -> list[int]:
    t = Transition.__table__
    with api.store.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(t.c.id).where(t.c.id > after).order_by(t.c.id))]


def test_reconnecting_with_last_event_id_misses_nothing(api: ApiStack) -> None:
    start = max([0, *all_transition_ids(api, 0)])
    first: list[dict[str, str]] = []
    listener = threading.Thread(target=lambda: first.extend(collect(api, start, 9)))
    listener.start()
    churn(api, 5, "a")  # 15 transitions while connected; the client leaves after 9
    listener.join(30)
    assert len(first) == 9
    churn(api, 4, "b")  # 12 more while it is away
    resumed = collect(api, int(first[-1]["id"]), 15 - 9 + 12)
    ids = [int(e["id"]) for e in first + resumed]
    assert ids == all_transition_ids(api, start)
    data: Any = httpx.Response(200, content=resumed[-1]["data"]).json()
    assert (data["state"], data["by"], data["comment"], data["site"], data["kind"]) == (
        "resolved", "duty", "done", "S01", "jammer")


def test_stream_starts_with_site_status_and_reports_changes(api: ApiStack) -> None:
    seen: list[dict[str, str]] = []

    def listen() -> None:
        for ev in sse_events(api.http(), {}):
            seen.append(ev)
            if ev.get("event") == "site-status" and '"site": "S02", "status": "red"' in ev["data"]:
                break

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    wait_for(lambda: sum(e.get("event") == "site-status" for e in seen) >= 3, 20, "a status event per site")
    sites = [e for e in seen if e.get("event") == "site-status"]
    assert len(sites) == 3
    assert all("id" not in e for e in sites)
    alarm = api.open_site_alarm("S02", "sse_site_silent")
    t.join(20)
    assert not t.is_alive(), "no red status for S02 arrived"
    alarm_event = next(e for e in seen if e.get("event") == "alarm")
    assert f'"alarm_id":{alarm}' in alarm_event["data"]
    assert seen.index(alarm_event) < len(seen) - 1
    assert api.http(None).get("/events").status_code == 401
