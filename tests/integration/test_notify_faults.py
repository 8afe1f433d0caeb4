"""The notifier's outbox under faults: Kannel down for 60 s, the notifier SIGKILLed during a burst,
Kannel's SMSC link down, the broker restarted. Every count is taken at fakesmsc."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from examwatch import links
from examwatch.store import engine
from examwatch.store.notify_models import NotifyHealth
from harness.notify_kit import (
    PHONES,
    FakeDlrEndpoint,
    Processes,
    notifications,
    notify_store_url,
    publish,
    transition,
    write_config,
)
from harness.servers import Kannel, wait_for
from harness.stack import Stack
from notify.sender import CONFIRMED


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[Kannel]:
    k = Kannel(tmp_path / "kannel")
    k.start()
    yield k
    k.stop()


@pytest.fixture
def procs(stack: Stack) -> Iterator[Processes]:
    p = Processes(stack)
    yield p
    p.kill_all()


def probes(n: int, first_id: int = 1000, severities: tuple[str, ...] = ("critical",)) -> list[tuple[str, bytes]]:
    """``n`` alarms over the stack's three sites, each of its own rule (no flood), severities in turn."""
    return [transition(first_id + i, 1, "firing", site=f"S0{i % 3 + 1}", rule=f"probe_{i}",
                       severity=severities[i % len(severities)]) for i in range(n)]


def received(kannel: Kannel) -> Counter[tuple[str, str]]:
    return Counter((to, text) for _f, to, text in kannel.smsc.messages())


def all_sent(stack: Stack, n: int) -> bool:
    rows = notifications(stack)
    return len(rows) == n and all(r["status"] == "sent" for r in rows)


def health(stack: Stack) -> tuple[bool | None, str]:
    """The provider's health as the notifier recorded it (None: nothing recorded)."""
    eng = engine(notify_store_url(stack))
    try:
        with eng.connect() as conn:
            row = conn.execute(sa.select(NotifyHealth.ok, NotifyHealth.detail)
                               .where(NotifyHealth.provider == "kannel")).first()
            return (row.ok, row.detail) if row is not None else (None, "")
    finally:
        eng.dispose()


@pytest.mark.slow
def test_kannel_down_60s_every_sms_arrives_once_in_severity_order(stack: Stack, kannel: Kannel,
                                                                  procs: Processes) -> None:
    procs.notifier(kannel)
    kannel.stop()
    down_at = time.monotonic()
    publish(stack.client("svc-rules"), probes(12, severities=("major", "critical")))  # lesser ones first
    wait_for(lambda: len(notifications(stack)) == 12, 10, "12 rows in the outbox")
    wait_for(lambda: health(stack)[0] is False, 10, "the provider reported down")
    # The gateway stays down for 60 s; the notifier keeps retrying with backoff, nothing is lost.
    wait_for(lambda: time.monotonic() - down_at >= 60, 70, "60 s of gateway outage", interval=1.0)
    rows = notifications(stack)
    assert {r["status"] for r in rows} == {"queued"}
    assert max(r["attempts"] for r in rows) >= 10  # retried all along, not given up
    assert kannel.smsc.messages() == []
    kannel.start()
    back_at = time.monotonic()
    wait_for(lambda: all_sent(stack, 12), 20, "every row sent after Kannel returned")
    took = time.monotonic() - back_at
    wait_for(lambda: sum(received(kannel).values()) >= 12, 10, "12 SMS at fakesmsc")
    got = received(kannel)
    assert sorted(got.values()) == [1] * 12, got
    assert {(r["address"], r["text"]) for r in rows} == set(got)
    # Most urgent first, then oldest: the six critical alerts, then the six major ones.
    arrived = [t.removeprefix("【考务告警】").split()[0] for _f, _to, t in kannel.smsc.messages()]
    assert arrived == ["紧急"] * 6 + ["重要"] * 6, arrived
    by_sent = sorted(notifications(stack), key=lambda r: (r["sent_ns"], r["id"]))
    assert [r["id"] for r in by_sent[:6]] == sorted(r["id"] for r in by_sent[:6])  # then by age
    assert took < 5  # retry_max_s is 2 s in the test settings
    assert health(stack) == (True, "accepting messages")


def test_sigkill_at_random_moments_every_sms_arrives_exactly_once(stack: Stack, kannel: Kannel,
                                                                   procs: Processes) -> None:
    """1,000 alarms; the notifier SIGKILLed three times while it sends. The SMS in Kannel's hands at
    a kill is known by its delivery report (dlr-url naming the row): neither sent twice nor lost.
    (With delivery_reports = false the same run sends those SMS twice: this test then fails.)"""
    n = 1000
    dlr = FakeDlrEndpoint(stack).start()
    try:
        config = write_config(stack, kannel, api=dlr.api, dlr_wait_s=5.0)
        proc = procs.start(config)
        publish(stack.client("svc-rules"), probes(n))
        kills = sorted(random.Random().sample(range(50, n - 100), 3))
        delivered = lambda: sum(t == 1 for _n, t, _k in dlr.reports)  # noqa: E731 - cheap: no log to parse
        for at in kills:
            wait_for(lambda at=at: delivered() >= at, 60, f"{at} SMS before a kill", interval=0.001)  # type: ignore[misc]
            proc.kill()
            proc = procs.start(config)
        wait_for(lambda: all_sent(stack, n), 90, f"all {n} rows sent")
        wait_for(lambda: sum(received(kannel).values()) >= n, 20, f"{n} SMS at fakesmsc")
        got = received(kannel)
        rows = notifications(stack)
        assert {(r["address"], r["text"]) for r in rows} == set(got), "an SMS lost, or one not in the outbox"
        assert set(got.values()) == {1}, {k: v for k, v in got.items() if v > 1}
        assert len(got) == n
        wait_for(lambda: sum(r["delivery"] == "delivered" for r in notifications(stack)) == n, 30,
                 "a delivery report for every SMS")
        assert {k for _n, _t, k in dlr.reports} == {links.callback_key(stack.secret)}
        confirmed = [r["id"] for r in notifications(stack) if r["result"] == CONFIRMED]
        print(f"killed after {kills} SMS; in flight at a kill and confirmed by its delivery report: {confirmed}")
    finally:
        dlr.stop()


def test_smsc_link_down_counts_as_queued_at_kannel_not_resent(stack: Stack, kannel: Kannel,
                                                              procs: Processes) -> None:
    """Kannel answers 202 ``3: Queued for later delivery`` while its SMSC is gone: sent once, health degraded."""
    procs.notifier(kannel)
    kannel.smsc.stop()
    wait_for(lambda: not kannel.smsc_connected(), 20, "bearerbox to see the SMSC gone")
    publish(stack.client("svc-rules"), probes(1))
    wait_for(lambda: all_sent(stack, 1), 15, "the row handed to Kannel")
    [row] = notifications(stack)
    assert row["result"].startswith("202 3: Queued for later delivery")
    assert row["attempts"] == 1
    ok, detail = health(stack)
    assert ok is False
    assert "3: Queued for later delivery" in detail
    kannel.smsc.start()
    wait_for(kannel.smsc.messages, 90, "Kannel to deliver its queued message")
    assert [to for _f, to, _t in kannel.smsc.messages()] == [PHONES["chief-S01"]]
    assert notifications(stack)[0]["attempts"] == 1


def test_broker_restart_loses_no_transition(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    """Transitions published while the notifier is away wait in its session across a broker restart,
    and the running notifier reconnects by itself after another."""
    config = write_config(stack, kannel)
    notifier = procs.start(config)
    publish(stack.client("svc-rules"), probes(20))
    wait_for(lambda: all_sent(stack, 20), 20, "the first 20 sent")
    notifier.stop()  # away: what follows waits in its persistent session
    publish(stack.client("svc-rules"), probes(20, first_id=2000))
    stack.mosquitto.stop()  # SIGTERM: mosquitto saves its sessions
    stack.mosquitto.start()
    procs.start(config)
    publish(stack.client("svc-rules"), probes(10, first_id=3000))
    wait_for(lambda: all_sent(stack, 50), 30, "all 50 sent after the restart")
    stack.mosquitto.stop()  # and once more, the notifier running
    stack.mosquitto.start()
    publish(stack.client("svc-rules"), probes(10, first_id=4000))
    wait_for(lambda: all_sent(stack, 60), 60, "all 60 sent after the notifier reconnected by itself")
    wait_for(lambda: sum(received(kannel).values()) >= 60, 10, "60 SMS at fakesmsc")
    got = received(kannel)
    assert len(got) == 60
    assert set(got.values()) == {1}
