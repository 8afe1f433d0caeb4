"""The outbox: a transition sent again (after a crash between send and mark) does not add a point."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from examwatch.alarm import Severity, Subject, SubjectType
from examwatch.influx import Influx
from examwatch.settings import InfluxSettings
from examwatch.store import lifecycle, open_store
from harness.servers import Influx as InfluxServer
from rules.outbox import Outbox


def test_resending_overwrites_instead_of_adding(tmp_path: Path, influx_server: InfluxServer,
                                                request: pytest.FixtureRequest) -> None:
    db = "t_" + re.sub(r"\W", "_", request.node.name)[:50]
    influx = Influx(InfluxSettings(url=influx_server.url, database=db))
    influx.create_database()
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    published: list[tuple[str, dict[str, object]]] = []

    def publish(topic: str, payload: bytes) -> Callable[[], None]:
        published.append((topic, json.loads(payload)))
        return lambda: None

    with store.begin() as conn:
        subject = Subject("S01-VAULT-PWR1", SubjectType.DEVICE, "S01")
        a = lifecycle.open_alarm(conn, "power_mains_lost", subject, severity=Severity.CRITICAL,
                                 message="mains_v = 0.0", drill=True, at_ns=1_800_000_000_000_000_000,
                                 pending_for_s=0)
    lifecycle.acknowledge(store, a.id, "王老师", "on it")
    outbox = Outbox(store, influx, publish)
    assert outbox.drain_once() is False  # one batch, nothing more
    with store.begin() as conn:
        conn.execute(sa.text("UPDATE alarm_transition SET sent = 0"))  # as if we crashed before marking
    outbox.drain_once()
    rows = influx.rows('SELECT * FROM "alarm"')
    assert len(rows) == 2
    assert [(r["state"], r["active"], r["alarm_id"], r["drill"], r["subject_type"]) for r in rows] == [
        ("firing", True, a.id, "true", "device"), ("acknowledged", True, a.id, "true", "device")]
    topic = "exam/v1/_alarm/S01/power_mains_lost/S01-VAULT-PWR1"
    assert [(t, p["transition_id"], p["state"]) for t, p in published] == [
        (topic, f"{a.id}.1", "firing"), (topic, f"{a.id}.2", "acknowledged")] * 2
    assert published[1][1]["by"] == "王老师"
