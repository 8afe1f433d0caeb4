"""The planner on a real SQLite store with a settable time: routing, repeats, escalation, silences, drills."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from examwatch import roster
from examwatch.inventory import Inventory
from examwatch.inventory import load as load_inventory
from examwatch.settings import NotifySettings
from examwatch.store import engine, open_store, silences, writing
from examwatch.store.notify_models import Notification, NotifyAlarm
from examwatch.store.silences import SilenceError
from notify.messages import AlarmTransition
from notify.planner import Planned, Planner
from notify.sender import RateLimit

ROOT = Path(__file__).parents[2]
S = 1_000_000_000
T0 = 1_780_810_925 * S  # 2026-06-07 13:42:05 Beijing: the day desk is on duty
_N, _NA = cast(sa.Table, Notification.__table__), cast(sa.Table, NotifyAlarm.__table__)


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_inventory(ROOT / "config" / "district.yaml")


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "template.db"
    open_store(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def store(tmp_path: Path, migrated: Path) -> sa.Engine:
    shutil.copy(migrated, tmp_path / "state.db")  # migrating once per module keeps these tests quick
    return engine(f"sqlite:///{tmp_path}/state.db")


@pytest.fixture
def planner(inventory: Inventory) -> Planner:
    duty = roster.load(ROOT / "config" / "roster.yaml")
    return Planner(duty, inventory, NotifySettings(remind_every_s=60, escalate_after_s=300))


def tr(seq: int, state: str, at_s: float = 0, **over: Any) -> AlarmTransition:
    base: dict[str, Any] = {
        "transition_id": f"7.{seq}", "alarm_id": 7, "seq": seq, "rule": "power_mains_lost", "severity": "critical",
        "site": "S03", "subject": "S03-VAULT-PWR1", "subject_type": "device", "state": state, "drill": False,
        "at_ns": T0 + int(at_s * S)}
    base.update(over)
    return AlarmTransition.model_validate(base)


def apply(store: sa.Engine, planner: Planner, t: AlarmTransition, at_s: float = 0) -> Planned | None:
    with writing(store) as conn:
        return planner.apply(conn, t, T0 + int(at_s * S))


def due(store: sa.Engine, planner: Planner, at_s: float) -> Planned | None:
    with writing(store) as conn:
        return planner.due(conn, 7, T0 + int(at_s * S))


def sent(store: sa.Engine) -> None:
    """As if the sender had sent every queued row."""
    with writing(store) as conn:
        conn.execute(sa.update(_N).where(_N.c.status == "queued").values(status="sent", sent_ns=T0))


def code_of(store: sa.Engine, alarm_id: int) -> str:
    with store.connect() as conn:
        return str(conn.execute(sa.select(_NA.c.code).where(_NA.c.alarm_id == alarm_id)).scalar_one())


def rows(store: sa.Engine) -> list[tuple[str, str, str, str]]:
    with store.connect() as conn:
        return [(r.kind, r.person, r.address, r.status) for r in conn.execute(sa.select(_N).order_by(_N.c.id))]


def test_firing_alerts_level_one_once_even_when_repeated(store: sa.Engine, planner: Planner) -> None:
    assert apply(store, planner, tr(1, "pending")) is not None
    assert rows(store) == []
    step = apply(store, planner, tr(2, "firing"))
    assert step is not None
    assert len(step.queued) == 1
    assert step.timers == [(T0 + 60 * S, 7)]  # the first reminder
    assert apply(store, planner, tr(2, "firing")) is None  # redelivered: nothing new
    assert apply(store, planner, tr(1, "pending")) is None  # older: ignored
    assert rows(store) == [("alert", "chief-S03", "13901000003", "queued")]
    with store.connect() as conn:
        text = conn.execute(sa.select(_N.c.text)).scalar_one()
    code = code_of(store, 7)
    assert text == f"【考务告警】紧急 S03 北大附中 保密室市电中断 13:42:05 回复“1 {code}”确认"


def test_unacknowledged_reminds_then_escalates_level_by_level(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(1, "firing"))
    assert due(store, planner, 30) is None  # not due yet
    step = due(store, planner, 60)
    assert step is not None
    assert len(step.queued) == 1
    assert rows(store)[-1][:2] == ("reminder", "chief-S03")
    assert due(store, planner, 60) is None  # the same timer twice (two workers): nothing new
    for at in (120, 180, 240):
        due(store, planner, at)
    step = due(store, planner, 300)  # escalation to the command center (the day desk at 13:47)
    assert step is not None
    assert [r[1:3] for r in rows(store) if r[0] == "escalation"] == [("center-day", "13801000001"),
                                                                      ("center-day", "13801000002")]
    due(store, planner, 600)  # then to the power bureau and the office head
    esc = sorted(r[2] for r in rows(store) if r[0] == "escalation")
    assert esc == ["13801000001", "13801000002", "13801000009", "95598000001"]
    last = {r[2] for r in rows(store) if r[0] == "reminder"}
    assert {"13901000003", "13801000001", "95598000001"} <= last  # reminders reach every level reached


def test_acknowledgement_stops_reminders_and_escalation(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(1, "firing"))
    step = apply(store, planner, tr(2, "acknowledged", at_s=10), at_s=10)
    assert step is not None
    assert step.timers == []
    assert due(store, planner, 60) is None
    assert due(store, planner, 900) is None
    assert [r[0] for r in rows(store)] == ["alert"]


def test_resolution_sends_an_all_clear_to_the_same_people(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(1, "firing"))
    due(store, planner, 300)  # escalated to level 2 as well
    sent(store)  # everything so far reached the phones
    step = apply(store, planner, tr(2, "resolved", at_s=400), at_s=400)
    assert step is not None
    assert len(step.queued) == 3
    clear = sorted(r[2] for r in rows(store) if r[0] == "all_clear")
    assert clear == ["13801000001", "13801000002", "13901000003"]


def test_warning_alarms_are_not_sent(store: sa.Engine, planner: Planner) -> None:
    step = apply(store, planner, tr(1, "firing", severity="warning", rule="power_clock"))
    assert step is not None
    assert step.queued == []
    assert step.timers == []


def test_drill_goes_to_drill_recipients_only(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(1, "firing", drill=True))
    due(store, planner, 300)
    assert sorted((r[0], r[1]) for r in rows(store)) == [("alert", "drill-officer"), ("escalation", "drill-center"),
                                                         ("reminder", "drill-center"), ("reminder", "drill-officer")]
    with store.connect() as conn:
        assert all(t.startswith("【演练】") for t in conn.execute(sa.select(_N.c.text)).scalars())


def test_silence_mutes_but_keeps_the_record(store: sa.Engine, planner: Planner) -> None:
    s = silences.create(store, site="S03", room="VAULT", ends_ns=T0 + 120 * S, by="李老师", now_ns=T0 - S,
                        comment="保密室电路检修", kind="maintenance")
    apply(store, planner, tr(1, "firing"))
    assert rows(store) == [("alert", "chief-S03", "13901000003", "muted")]
    with store.connect() as conn:
        assert conn.execute(sa.select(_N.c.silence_id)).scalar_one() == s.id
    due(store, planner, 180)  # the window is over: the reminder goes out
    assert rows(store)[-1][3] == "queued"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, "name at least one"),
        ({"room": "VAULT"}, "needs its site"),
        ({"site": "S01", "ends_ns": T0 - S}, "must be after the start"),
        ({"site": "S01", "by": " "}, "say who you are"),
    ],
)
def test_silence_refuses_bad_input(store: sa.Engine, kw: dict[str, Any], expected: str) -> None:
    args: dict[str, Any] = {"ends_ns": T0 + S, "by": "李老师", "now_ns": T0, **kw}
    with pytest.raises(SilenceError, match=expected):
        silences.create(store, **args)


def test_silences_list_and_expire(store: sa.Engine) -> None:
    a = silences.create(store, rule="camera_clock", ends_ns=T0 + 600 * S, by="王", now_ns=T0)
    b = silences.create(store, device="S01-R01-CAM1", ends_ns=T0 + 600 * S, by="王", now_ns=T0)
    assert [s.id for s in silences.list_silences(store, now_ns=T0 + S)] == [b.id, a.id]
    ended = silences.expire(store, a.id, "张", now_ns=T0 + 2 * S)
    assert ended.expired_by == "张"
    assert ended.ends_ns == T0 + 2 * S
    assert [s.id for s in silences.list_silences(store, now_ns=T0 + 3 * S)] == [b.id]
    assert len(silences.list_silences(store, active_only=False)) == 2
    with pytest.raises(SilenceError, match="already ended"):
        silences.expire(store, a.id, "张", now_ns=T0 + 4 * S)
    with pytest.raises(SilenceError, match="no silence 99"):
        silences.expire(store, 99, "张")
    with store.connect() as conn:  # a device silence mutes that device only
        assert silences.matching(conn, site="S01", room="R01", device="S01-R01-CAM1", rule="camera_offline",
                                 at_ns=T0 + 5 * S) is not None
        assert silences.matching(conn, site="S01", room="R01", device="S01-R01-CAM2", rule="camera_offline",
                                 at_ns=T0 + 5 * S) is None


def test_rate_limit_per_phone() -> None:
    limit = RateLimit(2, 60)
    for now in (0.0, 1.0):
        assert limit.wait("138", now) == 0
        limit.record("138", now)
    assert limit.wait("138", 2.0) == pytest.approx(58.0)
    assert limit.wait("139", 2.0) == 0
    assert limit.wait("138", 60.5) == 0
