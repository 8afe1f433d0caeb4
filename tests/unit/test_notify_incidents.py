"""The planner's threads of texts: incidents (implied, folded, worse), rises after an acknowledgement,
stale messages withdrawn, floods summarised, escalation on request, short codes and links."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from examwatch import links, roster
from examwatch.inventory import Inventory
from examwatch.inventory import load as load_inventory
from examwatch.settings import NotifySettings
from examwatch.store import engine, open_store, writing
from examwatch.store.notify_models import Notification, NotifyAlarm
from notify.messages import AlarmTransition
from notify.planner import Planned, Planner

ROOT = Path(__file__).parents[2]
S = 1_000_000_000
T0 = 1_780_810_925 * S  # 2026-06-07 13:42:05 Beijing: the day desk is on duty
_N, _NA = cast(sa.Table, Notification.__table__), cast(sa.Table, NotifyAlarm.__table__)
CHIEF_S03 = "13901000003"
SECRET = "a-test-secret-of-32-characters!!"


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
    shutil.copy(migrated, tmp_path / "notify.db")
    return engine(f"sqlite:///{tmp_path}/notify.db")


def planner_for(inventory: Inventory, **cfg: Any) -> Planner:
    duty = roster.load(ROOT / "config" / "roster.yaml")
    public = cfg.pop("public_url", "")
    return Planner(duty, inventory, NotifySettings(remind_every_s=60, escalate_after_s=300, **cfg), public, SECRET)


@pytest.fixture
def planner(inventory: Inventory) -> Planner:
    return planner_for(inventory)


def tr(alarm_id: int, seq: int, state: str, rule: str = "power_mains_lost", at_s: float = 0,
       **over: Any) -> AlarmTransition:
    base: dict[str, Any] = {"alarm_id": alarm_id, "seq": seq, "rule": rule, "severity": "critical", "site": "S03",
                            "subject": "S03-VAULT-PWR1", "subject_type": "device", "state": state,
                            "at_ns": T0 + int(at_s * S)}
    base.update(over)
    return AlarmTransition.model_validate(base)


def apply(store: sa.Engine, planner: Planner, *ts: AlarmTransition, at_s: float = 0) -> Planned:
    out = Planned()
    with writing(store) as conn:
        for step in planner.apply_batch(conn, list(ts), T0 + int(at_s * S)):
            out.queued += step.queued
            out.timers += step.timers
    return out


def sent(store: sa.Engine) -> None:
    with writing(store) as conn:
        conn.execute(sa.update(_N).where(_N.c.status == "queued").values(status="sent", sent_ns=T0))


def rows(store: sa.Engine, **where: Any) -> list[dict[str, Any]]:
    with store.connect() as conn:
        q = sa.select(_N).where(*(_N.c[k] == v for k, v in where.items())).order_by(_N.c.id)
        return [dict(r) for r in conn.execute(q).mappings()]


def alarm(store: sa.Engine, alarm_id: int) -> dict[str, Any]:
    with store.connect() as conn:
        return dict(conn.execute(sa.select(_NA).where(_NA.c.alarm_id == alarm_id)).mappings().one())


def test_mains_loss_then_recovery_is_one_alert_one_update_per_rise_one_all_clear(store: sa.Engine,
                                                                                  planner: Planner) -> None:
    # One telemetry report raises mains lost and on UPS together (the batch may list them either way).
    apply(store, planner, tr(11, 1, "firing", rule="power_on_ups"), tr(10, 1, "firing"))
    sent(store)
    apply(store, planner, tr(12, 1, "firing", rule="power_ups_low", severity="major", at_s=600), at_s=600)
    apply(store, planner, tr(10, 2, "acknowledged", at_s=700, by="chief-S03"), at_s=700)
    apply(store, planner, tr(12, 2, "firing", rule="power_ups_low", at_s=3000), at_s=3000)  # major → critical
    sent(store)
    apply(store, planner, tr(10, 3, "resolved", at_s=3600), tr(11, 2, "resolved", at_s=3600), at_s=3600)
    assert [r["kind"] for r in rows(store, address=CHIEF_S03)] == ["alert", "update"]  # UPS still low
    apply(store, planner, tr(12, 3, "resolved", rule="power_ups_low", at_s=5400), at_s=5400)
    chief = [(r["kind"], r["alarm_id"]) for r in rows(store, address=CHIEF_S03)]
    assert chief == [("alert", 10), ("update", 12), ("all_clear", 10)]
    assert (alarm(store, 11)["folded"], alarm(store, 11)["incident"]) == ("inhibited", 10)
    assert alarm(store, 12)["incident"] == 10
    texts = [r["text"] for r in rows(store, address=CHIEF_S03)]
    assert "市电中断" in texts[0]
    assert texts[1].startswith("【告警加重】紧急 S03 北大附中 保密室UPS电量低")
    assert f"“1 {alarm(store, 12)['code']}”" in texts[1]  # the update asks for its own acknowledgement
    # The all-clear waits for the whole incident: the UPS charged back at 15:12.
    assert texts[2] == "【考务恢复】S03 北大附中 保密室市电中断已恢复 15:12:05 历时90分 张主考已确认"


def test_a_no_worse_member_is_folded_silently(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(10, 1, "firing"))
    apply(store, planner, tr(12, 1, "firing", rule="power_ups_low", severity="major", at_s=60), at_s=60)
    assert alarm(store, 12)["folded"] == "folded"
    assert [r["kind"] for r in rows(store)] == ["alert"]


def test_a_rise_after_acknowledgement_is_news_and_restarts_the_reminders(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(7, 1, "firing", rule="power_ups_low", severity="major"))
    assert apply(store, planner, tr(7, 2, "acknowledged", rule="power_ups_low", severity="major", at_s=5),
                 at_s=5).timers == []
    step = apply(store, planner, tr(7, 3, "firing", rule="power_ups_low", at_s=100), at_s=100)
    [update] = rows(store, kind="update")
    assert update["text"].startswith("【告警加重】紧急 S03")
    assert update["address"] == CHIEF_S03
    assert step.timers == [(T0 + 160 * S, 7)]  # critical escalates: reminders start again from the rise
    with writing(store) as conn:
        reminder = planner.due(conn, 7, T0 + 160 * S)
    assert reminder is not None
    assert len(reminder.queued) == 1
    apply(store, planner, tr(7, 4, "acknowledged", rule="power_ups_low", at_s=170), at_s=170)
    with writing(store) as conn:
        assert planner.due(conn, 7, T0 + 400 * S) is None  # acknowledged again: nothing more


def test_what_was_not_sent_before_the_acknowledgement_is_dropped(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(7, 1, "firing"))
    apply(store, planner, tr(7, 2, "acknowledged", at_s=1), at_s=1)
    assert [(r["kind"], r["status"]) for r in rows(store)] == [("alert", "dropped")]
    apply(store, planner, tr(7, 3, "resolved", at_s=2), at_s=2)
    assert [r["kind"] for r in rows(store)] == ["alert"]  # nobody was told, so nobody gets an all-clear


def jammers(n: int, first_id: int = 1000, seq: int = 1, state: str = "firing", at_s: float = 0) -> list[AlarmTransition]:
    devices = [f"S{s:02d}-R{r:02d}-JAM1" for r in range(1, 32) for s in range(1, 22)][:n]
    return [tr(first_id + i, seq, state, rule="jammer_shielding", site=d[:3], subject=d, at_s=at_s)
            for i, d in enumerate(devices)]


def test_a_flood_is_one_summary_per_recipient_and_a_mains_loss_still_alerts(store: sa.Engine,
                                                                            planner: Planner) -> None:
    burst = jammers(650)
    step = apply(store, planner, *burst[:300], tr(10, 1, "firing", site="S05", subject="S05-VAULT-PWR1"),
                 *burst[300:])
    texts = rows(store)
    assert [r["address"] for r in texts if r["kind"] == "alert"] == ["13901000005"]  # the mains loss only
    summaries = [r for r in texts if r["kind"] == "summary"]
    assert Counter(r["address"] for r in summaries) == Counter(f"139010000{s:02d}" for s in range(1, 22))
    assert summaries[0]["text"] == "【考务告警·汇总】屏蔽信号不足 650起 S01、S02、S03等21个考点 13:42:05起 详见指挥大屏"
    assert {q.due_ns for q in step.queued if q.id in {r["id"] for r in summaries}} == {T0 + 10 * S}
    sent(store)
    apply(store, planner, *jammers(650, seq=2, state="resolved", at_s=30), at_s=30)
    clears = [r for r in rows(store) if r["kind"] == "summary_clear"]
    assert len(clears) == 21
    assert clears[0]["text"] == "【考务恢复·汇总】屏蔽信号不足 650起已全部恢复 13:42:35"


def test_a_flood_recognised_late_withdraws_the_alerts_still_queued(store: sa.Engine, planner: Planner) -> None:
    burst = jammers(60)
    for t in burst[:49]:  # one at a time: nothing tells the planner more are coming
        apply(store, planner, t)
    assert len(rows(store, kind="alert")) == 49
    apply(store, planner, burst[49])  # the 50th within a minute: a flood
    assert {r["status"] for r in rows(store, kind="alert")} == {"folded"}
    apply(store, planner, *burst[50:])
    summaries = rows(store, kind="summary")
    assert len(summaries) == len({r["address"] for r in summaries}) == 21
    assert "60起" in summaries[0]["text"]


def test_a_flood_that_clears_before_its_summary_is_sent_sends_nothing(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, *jammers(60))
    apply(store, planner, *jammers(60, seq=2, state="resolved"), at_s=5)
    assert {r["status"] for r in rows(store)} == {"dropped"}
    assert rows(store, kind="summary_clear") == []


def test_a_reply_zero_escalates_at_once(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, tr(7, 1, "firing"))
    with writing(store) as conn:
        step = planner.escalate_now(conn, 7, "chief-S03", T0 + 5 * S)
    assert sorted(r["address"] for r in rows(store, kind="escalation")) == ["13801000001", "13801000002"]
    assert len(step.queued) == 2
    assert alarm(store, 7)["level"] == 2
    with writing(store) as conn:
        again = planner.escalate_now(conn, 7, "chief-S03", T0 + 6 * S)  # to the power bureau, level 3
        assert planner.escalate_now(conn, 7, "chief-S03", T0 + 7 * S).queued == []  # no level 4
        assert planner.escalate_now(conn, 999, "chief-S03", T0 + 7 * S).queued == []  # unknown alarm
    assert len(again.queued) == 2


def test_short_codes_are_unique_among_open_alarms(store: sa.Engine, planner: Planner) -> None:
    apply(store, planner, *[tr(100 + i, 1, "firing", rule=f"r{i}", site=f"S{i % 21 + 1:02d}") for i in range(200)])
    codes = [alarm(store, 100 + i)["code"] for i in range(200)]
    assert len(set(codes)) == 200
    assert all(re.fullmatch(r"[A-HJKMNP-Z][A-HJKMNP-Z2-9]{1,3}", c) for c in codes), codes
    assert all(f"“1 {c}”" in r["text"] for c, r in zip(codes, rows(store, kind="alert"), strict=True))


def test_an_alert_links_to_its_mobile_page(store: sa.Engine, inventory: Inventory) -> None:
    planner = planner_for(inventory, public_url="http://k.cn/")
    apply(store, planner, tr(7, 1, "firing"))
    [row] = rows(store)
    token = row["text"].rsplit("/m/", 1)[1]
    grant = links.verify(SECRET, token, T0 / S)
    assert grant.notification_id == row["id"]
    assert grant.expires_s >= T0 / S + 12 * 3600
    assert len(row["text"]) <= 70
