"""The sender's order and limits on a real SQLite outbox, with a provider that records what it is handed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from examwatch.settings import NotifySettings
from examwatch.store import open_store, writing
from examwatch.store.notify_models import Notification
from harness.servers import wait_for
from notify.outbox import Queued, rank
from notify.providers import Result
from notify.sender import AWAITING, CONFIRMED, InFlight, Sender

_N = cast(sa.Table, Notification.__table__)


class Recording:
    """A provider that keeps what it is handed; ``gate`` holds every send until it is set."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def check(self) -> None:
        pass

    def send(self, address: str, text: str, ref: int = 0) -> Result:
        self.gate.wait(10)
        self.sent.append((address, text, ref))
        return Result(True, "0: Accepted for delivery")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = open_store(f"sqlite:///{tmp_path}/notify.db")
    yield eng
    eng.dispose()


def row(store: sa.Engine, text: str, severity: str = "critical", kind: str = "alert", address: str = "139",
        status: str = "queued", result: str = "", **extra: Any) -> Queued:
    with writing(store) as conn:
        nid = conn.execute(sa.insert(_N).values(
            alarm_id=1, cause=text, kind=kind, level=1, person="p", address=address, text=text, drill=False,
            status=status, attempts=0, created_ns=0, next_try_ns=0, result=result, severity=severity, **extra,
        ).returning(_N.c.id)).scalar_one()
    return Queued(nid, rank(severity))


def sender(store: sa.Engine, tmp_path: Path, provider: Recording, **cfg: Any) -> Sender:
    return Sender(store, provider, NotifySettings(state_dir=tmp_path / "state", **cfg))


def test_most_urgent_first_then_oldest(store: sa.Engine, tmp_path: Path) -> None:
    provider = Recording()
    s = sender(store, tmp_path, provider)
    provider.gate.clear()  # the first send blocks: everything else queues behind it
    s.push([row(store, "first", "minor")])
    s.start()
    wait_for(lambda: s.pending() == 0, 5, "the first row taken")
    s.push([row(store, "major-old", "major"), row(store, "minor", "minor"), row(store, "critical", "critical"),
            row(store, "major-new", "major")])
    provider.gate.set()
    wait_for(lambda: len(provider.sent) == 5, 5, "five sends")
    s.stop()
    assert [t for _a, t, _r in provider.sent] == ["first", "critical", "major-old", "major-new", "minor"]


def test_the_phone_limit_never_holds_a_critical_alert(store: sa.Engine, tmp_path: Path) -> None:
    provider = Recording()
    s = sender(store, tmp_path, provider, rate_per_phone=1, rate_window_s=3600.0)
    s.start()
    s.push([row(store, "first", "major")])
    wait_for(lambda: len(provider.sent) == 1, 5, "the first send")
    s.push([row(store, "reminder", "critical", kind="reminder"), row(store, "lesser", "major"),
            row(store, "critical alert", "critical"), row(store, "critical update", "critical", kind="update")])
    wait_for(lambda: len(provider.sent) == 3, 5, "the critical alert and update")
    assert [t for _a, t, _r in provider.sent] == ["first", "critical alert", "critical update"]
    assert s.pending() == 2  # the reminder and the lesser alert wait out the window
    s.stop()


def test_a_withdrawn_row_is_not_sent(store: sa.Engine, tmp_path: Path) -> None:
    provider = Recording()
    s = sender(store, tmp_path, provider)
    s.push([row(store, "stale", status="dropped"), row(store, "live")])
    s.start()
    wait_for(lambda: provider.sent, 5, "a send")
    wait_for(lambda: s.pending() == 0, 5, "the queue empty")
    s.stop()
    assert [t for _a, t, _r in provider.sent] == ["live"]


def test_the_row_in_flight_at_a_crash_waits_for_its_delivery_report(store: sa.Engine, tmp_path: Path) -> None:
    silent = row(store, "in flight, no report")
    reported = row(store, "awaited since an earlier crash, reported", delivery="delivered", result=AWAITING)
    unreported = row(store, "awaited since an earlier crash, no report", result=AWAITING)
    other = row(store, "queued")
    provider = Recording()
    InFlight(tmp_path / "state" / "inflight-1").mark(silent.id)
    s = sender(store, tmp_path, provider, dlr_wait_s=0.3)
    assert s.load() == 4
    s.start()
    wait_for(lambda: len(provider.sent) == 3, 5, "the three without a report sent")
    s.stop()
    assert provider.sent[0][2] == other.id  # at once; the others after their wait
    assert sorted(ref for _a, _t, ref in provider.sent[1:]) == sorted([silent.id, unreported.id])
    with store.connect() as conn:
        result = conn.execute(sa.select(_N.c.status, _N.c.result).where(_N.c.id == reported.id)).one()
    assert tuple(result) == ("sent", CONFIRMED)


class Scripted(Recording):
    """Answers each send with the next of ``results``."""

    def __init__(self, results: list[Result]) -> None:
        super().__init__()
        self.results = results

    def send(self, address: str, text: str, ref: int = 0) -> Result:
        super().send(address, text, ref)
        return self.results[len(self.sent) - 1]


def test_health_follows_the_gateway_from_down_to_queued_to_accepting(store: sa.Engine, tmp_path: Path) -> None:
    """A gateway back up but still queueing (Kannel without its SMSC link) is recorded as such, not left
    saying "connection refused"; and the next accepted text says it accepts again."""
    from notify.sender import _H  # noqa: PLC0415 - the health table, read as `examwatch notify status` does

    def health() -> tuple[bool, str]:
        with store.connect() as conn:
            r = conn.execute(sa.select(_H.c.ok, _H.c.detail)).one()
        return bool(r.ok), str(r.detail)

    provider = Scripted([Result(False, "kannel: connection refused"),
                         Result(True, "202 3: Queued for later delivery", degraded=True),
                         Result(True, "202 0: Accepted for delivery")])
    s = sender(store, tmp_path, provider, retry_min_s=0.05, retry_max_s=0.05)
    s.start()
    s.push([row(store, "first")])
    wait_for(lambda: len(provider.sent) == 2, 5, "the failed send and its retry")
    wait_for(lambda: health() == (False, "202 3: Queued for later delivery"), 5, "health: queued at the gateway")
    s.push([row(store, "second")])
    wait_for(lambda: health() == (True, "accepting messages"), 5, "health: accepting")
    s.stop()
    assert [t for _a, t, _r in provider.sent] == ["first", "first", "second"]
