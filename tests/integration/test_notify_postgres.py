"""The notifier's store on PostgreSQL: migrations, the outbox's unique key, escalation state, silences.

PostgreSQL runs as its own cluster on a free loopback port (as the ``postgres`` user when the
tests run as root, since initdb refuses root), under the test's temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from examwatch import roster
from examwatch.inventory import load as load_inventory
from examwatch.settings import NotifySettings
from examwatch.store import open_store, silences, writing
from examwatch.store.notify_models import Notification
from harness.servers import Postgres
from notify.messages import AlarmTransition
from notify.planner import Planner

ROOT = Path(__file__).parents[2]
S = 1_000_000_000
T0 = 1_780_810_925 * S
_N = cast(sa.Table, Notification.__table__)

@pytest.fixture
def pg_url() -> Iterator[str]:
    server = Postgres()
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


def tr(seq: int, state: str, **over: Any) -> AlarmTransition:
    base: dict[str, Any] = {
        "transition_id": f"7.{seq}", "alarm_id": 7, "seq": seq, "rule": "power_mains_lost", "severity": "critical",
        "site": "S03", "subject": "S03-VAULT-PWR1", "subject_type": "device", "state": state, "at_ns": T0}
    base.update(over)
    return AlarmTransition.model_validate(base)


def test_outbox_escalation_and_silences_on_postgresql(pg_url: str) -> None:
    store = open_store(pg_url)  # runs every migration, the notifier's 0002_notify included
    try:
        planner = Planner(roster.load(ROOT / "config" / "roster.yaml"), load_inventory(ROOT / "config" / "district.yaml"),
                          NotifySettings(remind_every_s=60, escalate_after_s=300))
        with writing(store) as conn:
            step = planner.apply(conn, tr(1, "firing"), T0)
        assert step is not None
        assert len(step.queued) == 1
        with writing(store) as conn:  # the same transition again: the unique key holds, nothing new
            conn.execute(sa.update(sa.table("notify_alarm", sa.column("seq"))).values(seq=0))
            again = planner.apply(conn, tr(1, "firing"), T0)
        assert again is not None
        assert again.queued == []
        with writing(store) as conn:
            planner.due(conn, 7, T0 + 300 * S)
            conn.execute(sa.update(_N).where(_N.c.status == "queued").values(status="sent"))  # as the sender would
        s = silences.create(store, site="S03", ends_ns=T0 + 10_000 * S, by="王", now_ns=T0 + 301 * S)
        with writing(store) as conn:
            planner.apply(conn, tr(2, "resolved"), T0 + 400 * S)
        with store.connect() as conn:
            rows = [(r.kind, r.status, r.silence_id) for r in conn.execute(sa.select(_N).order_by(_N.c.id))]
        # The alert; at +300 s the day desk's two phones (escalation) and a reminder to all three told;
        # the all-clear to the same three (all were sent a message), muted by the silence and kept.
        assert [r[0] for r in rows] == ["alert", *["escalation"] * 2, *["reminder"] * 3, *["all_clear"] * 3]
        assert {r[1:] for r in rows if r[0] == "all_clear"} == {("muted", s.id)}
        assert [v.id for v in silences.list_silences(store, now_ns=T0 + 500 * S)] == [s.id]
    finally:
        store.dispose()
