"""The outbox: published from memory at once, InfluxDB on its own, a repeat overwrites, retained stays newest."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from examwatch.alarm import ENGINE, Severity, State, Subject, SubjectType
from examwatch.influx import Influx
from examwatch.settings import InfluxSettings
from examwatch.store import lifecycle, open_store, writing
from harness.servers import Influx as InfluxServer
from harness.servers import free_port, wait_for
from rules.engine import Committed
from rules.outbox import Outbox

SUBJECT = Subject("S01-VAULT-PWR1", SubjectType.DEVICE, "S01")
TOPIC = "exam/v1/_alarm/S01/power_mains_lost/S01-VAULT-PWR1"
T0 = 1_800_000_000_000_000_000


def _influx(influx_server: InfluxServer, request: pytest.FixtureRequest) -> Influx:
    db = "t_" + re.sub(r"\W", "_", request.node.name)[:50]
    influx = Influx(InfluxSettings(url=influx_server.url, database=db))
    influx.create_database()
    return influx


def _recorder() -> tuple[list[tuple[str, dict[str, object]]], Callable[[str, bytes], Callable[[], None]]]:
    published: list[tuple[str, dict[str, object]]] = []

    def publish(topic: str, payload: bytes) -> Callable[[], None]:
        published.append((topic, json.loads(payload)))
        return lambda: None

    return published, publish


def _unsent(store: sa.Engine) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM alarm_transition WHERE NOT sent")).scalar_one())


def test_resending_overwrites_instead_of_adding(tmp_path: Path, influx_server: InfluxServer,
                                                request: pytest.FixtureRequest) -> None:
    influx = _influx(influx_server, request)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    published, publish = _recorder()
    with store.begin() as conn:
        a = lifecycle.open_alarm(conn, "power_mains_lost", SUBJECT, severity=Severity.CRITICAL,
                                 message="mains_v = 0.0", drill=True, at_ns=T0, pending_for_s=0)
    lifecycle.acknowledge(store, a.id, "王老师", "on it")
    Outbox(store, influx, publish).drain_once()
    assert _unsent(store) == 0
    with store.begin() as conn:
        conn.execute(sa.text("UPDATE alarm_transition SET sent = 0"))  # as if we crashed before marking
    Outbox(store, influx, publish).drain_once()  # the restarted engine's outbox sends them again
    rows = influx.rows('SELECT * FROM "alarm"')
    assert len(rows) == 2
    assert [(r["state"], r["active"], r["alarm_id"], r["drill"], r["subject_type"]) for r in rows] == [
        ("firing", True, a.id, "true", "device"), ("acknowledged", True, a.id, "true", "device")]
    assert [(t, p["transition_id"], p["state"]) for t, p in published] == [
        (TOPIC, f"{a.id}.1", "firing"), (TOPIC, f"{a.id}.2", "acknowledged")] * 2
    assert published[1][1]["by"] == "王老师"


def test_committed_transitions_go_out_at_once_while_influxdb_is_down(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    dead = Influx(InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database="x", timeout_s=1))
    published: list[str] = []
    got = threading.Event()

    def publish(topic: str, payload: bytes) -> Callable[[], None]:
        published.append(json.loads(payload)["transition_id"])
        got.set()
        return lambda: None

    # the next poll is an hour away: whatever is published below came from memory, not from the store
    outbox = Outbox(store, dead, publish, poll_s=3600)
    outbox.start()
    try:
        wait_for(lambda: outbox.polls >= 1, 5, "the outbox's first look at the (empty) store")
        with writing(store) as conn:
            a = lifecycle.open_alarm(conn, "power_mains_lost", SUBJECT, severity=Severity.CRITICAL,
                                     message="mains_v = 0.0", drill=False, at_ns=T0, pending_for_s=0)
        outbox.send(Committed([lifecycle.message(a)], []))
        assert got.wait(5), "the transition was not published while InfluxDB is down"
        assert published.count(f"{a.id}.1") == 1
        assert _unsent(store) == 1, "marked sent although InfluxDB never took it"
    finally:
        outbox.stop()


def test_an_older_step_found_later_does_not_replace_the_retained_newer_one(
    tmp_path: Path, influx_server: InfluxServer, request: pytest.FixtureRequest
) -> None:
    influx = _influx(influx_server, request)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    published, publish = _recorder()
    with writing(store) as conn:
        a = lifecycle.open_alarm(conn, "power_mains_lost", SUBJECT, severity=Severity.CRITICAL,
                                 message="mains_v = 0.0", drill=False, at_ns=T0, pending_for_s=0)
    outbox = Outbox(store, influx, publish)
    outbox.send(Committed([lifecycle.message(a)], []))
    outbox.drain_once()
    acked = lifecycle.acknowledge(store, a.id, "王老师")  # another process: the API
    with writing(store) as conn:  # the engine resolves it before its outbox polled the ack
        resolved = lifecycle.transition(conn, acked, State.RESOLVED, ENGINE, "condition cleared", at_ns=T0 + 10)
    outbox.send(Committed([lifecycle.message(resolved)], []))
    outbox.drain_once()
    assert [p["state"] for _, p in published] == ["firing", "resolved"]  # retained: resolved, not the ack
    assert {r["state"] for r in influx.rows('SELECT * FROM "alarm"')} == {"firing", "acknowledged", "resolved"}
    assert _unsent(store) == 0
