"""The notifier against real mosquitto, Kannel (bearerbox, smsbox, fakesmsc) and, end to end, the rules engine."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from examwatch.clock import DrillClock, now_ns
from examwatch.store import engine, silences
from examwatch.store.notify_models import NotifyAlarm
from harness.notify_kit import (
    PHONES,
    Processes,
    notifications,
    notify_store_url,
    publish,
    sms_to,
    store_url,
    transition,
    write_config,
)
from harness.servers import Kannel, wait_for
from harness.stack import EXAMWATCH, Stack, device_topic, telemetry

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def procs(stack: Stack) -> Iterator[Processes]:
    p = Processes(stack)
    yield p
    p.kill_all()


def test_storage_room_power_loss_reaches_the_chief_by_sms(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    """Power telemetry → `examwatch rules` → alarm on MQTT → `examwatch notify` → Kannel → fakesmsc."""
    since = len(kannel.smsc.messages())
    config = write_config(stack, kannel, rules=True)
    procs.start(config, "rules")
    procs.start(config, "notify")
    gw = stack.gateway("S01")
    sent_at = time.time()
    gw.publish(device_topic(stack, "S01-VAULT-PWR1"), telemetry("S01-VAULT-PWR1", "power", mains_v=0.0,
                                                                frequency_hz=0.0, on_ups=False), qos=1)
    chief = PHONES["chief-S01"]
    wait_for(lambda: _published(stack), 20, "the rules engine to publish the alarm")
    wait_for(lambda: any("市电中断" in t for t in sms_to(kannel, chief, since)), 20, "the SMS to the S01 chief")
    texts = [t for t in sms_to(kannel, chief, since) if "市电中断" in t]
    assert len(texts) == 1
    when = texts[0].split()[-3]
    code = _code(stack)
    assert texts[0] == f"【考务告警】紧急 S01 人大附中 保密室市电中断 {when} 回复“1 {code}”确认"
    fired = datetime.strptime(when, "%H:%M:%S").time()
    assert abs(datetime.combine(datetime.now(TZ).date(), fired, TZ).timestamp() - sent_at) < 5
    # Only S01's chief at level 1; nobody else has been told of this alarm yet.
    rows = [r for r in notifications(stack) if "市电中断" in r["text"]]
    assert [(r["person"], r["address"], r["status"]) for r in rows] == [("chief-S01", chief, "sent")]
    assert all(to == chief for _f, to, t in kannel.smsc.messages()[since:] if "市电中断" in t)
    # Mains back: the all-clear goes to the same number.
    gw.publish(device_topic(stack, "S01-VAULT-PWR1"), telemetry("S01-VAULT-PWR1", "power", mains_v=221.0), qos=1)
    wait_for(lambda: any("已恢复" in t for t in sms_to(kannel, chief, since)), 20, "the all-clear")
    assert next(t for t in sms_to(kannel, chief, since) if "已恢复" in t).startswith("【考务恢复】S01 人大附中 保密室市电中断已恢复")


def _code(stack: Stack) -> str:
    eng = engine(notify_store_url(stack))
    try:
        with eng.connect() as conn:
            return str(conn.execute(sa.select(NotifyAlarm.code).where(NotifyAlarm.rule == "power_mains_lost")).scalar())
    finally:
        eng.dispose()


def test_unacknowledged_alarm_reminds_and_escalates_on_time(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    """The reminder and the escalation come when the store says they were due, never early, and
    not much later; the times are the notifier's own records (created_ns, on its clock), so a
    loaded machine delays the SMS without making the check flaky."""
    since = len(kannel.smsc.messages())
    procs.notifier(kannel, remind_every_s=1.5, escalate_after_s=3.0)
    at_ns = time.time_ns()
    publish(stack.client("svc-rules"), [transition(101, 1, "firing", site="S02", at_ns=at_ns)])
    wait_for(lambda: any("升级" in t for t in sms_to(kannel, PHONES["center"], since)), 15,
             "the escalation to the command center")
    rows = {r["kind"]: r for r in reversed(notifications(stack, alarm_id=101))}  # the first of each kind
    after = {kind: (r["created_ns"] - at_ns) / 1e9 for kind, r in rows.items()}
    assert after["alert"] < 1.0
    assert 1.5 <= after["reminder"] < 1.5 + 1.0
    assert 3.0 <= after["escalation"] < 3.0 + 1.0
    assert rows["escalation"]["address"] == PHONES["center"]
    assert any(t.startswith("【考务告警·升级】紧急 S02") for t in sms_to(kannel, PHONES["center"], since))


def test_reminders_and_escalation_run_on_the_drill_clock(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    """On a drill clock 60 times faster than the wall, a 2-minute reminder comes after 2 wall seconds
    and the texts carry the drill clock's time of day."""
    since = len(kannel.smsc.messages())
    wall = time.time()
    start = datetime(2026, 6, 7, 7, 59, 0, tzinfo=TZ)
    clock = DrillClock(start.timestamp(), wall, 60.0)
    procs.notifier(kannel, clock={"start": start.isoformat(), "wall_start": datetime.fromtimestamp(wall, TZ).isoformat(),
                                  "speed": 60.0}, remind_every_s=120.0, escalate_after_s=240.0)
    at_ns = now_ns(clock)
    publish(stack.client("svc-rules"), [transition(111, 1, "firing", site="S02", at_ns=at_ns)])
    wait_for(lambda: any("升级" in t for t in sms_to(kannel, PHONES["center"], since)), 15,
             "the escalation on the drill clock")
    rows = {r["kind"]: r for r in reversed(notifications(stack, alarm_id=111))}
    after = {kind: (r["created_ns"] - at_ns) / 1e9 for kind, r in rows.items()}  # clock seconds
    assert 120 <= after["reminder"] < 120 + 60
    assert 240 <= after["escalation"] < 240 + 60
    [alert] = sms_to(kannel, PHONES["chief-S02"], since)[:1]
    assert alert.split()[-3].startswith(("07:59", "08:00")), alert
    assert any(t.startswith("【考务告警·升级】") for t in sms_to(kannel, PHONES["center"], since))
    assert all(r["sent_ns"] >= start.timestamp() * 1e9 for r in rows.values())


def test_acknowledgement_stops_reminders_and_escalation(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    since = len(kannel.smsc.messages())
    procs.notifier(kannel, remind_every_s=1.0, escalate_after_s=2.0)
    rules = stack.client("svc-rules")
    publish(rules, [transition(201, 1, "firing", site="S01")])
    wait_for(lambda: sms_to(kannel, PHONES["chief-S01"], since), 10, "the alert")
    publish(rules, [transition(201, 2, "acknowledged", site="S01")])
    wait_for(lambda: _alarm_state(stack, 201) == "acknowledged", 10, "the acknowledgement to be applied")
    # A control alarm raised after the acknowledgement escalates later than the first one would have.
    publish(rules, [transition(202, 1, "firing", site="S03")])
    wait_for(lambda: any("升级" in t and "S03" in t for t in sms_to(kannel, PHONES["center"], since)), 10,
             "the control alarm's escalation")
    assert sms_to(kannel, PHONES["chief-S01"], since) == [sms_to(kannel, PHONES["chief-S01"], since)[0]]
    assert not any("S01" in t for t in sms_to(kannel, PHONES["center"], since))


def test_silence_mutes_the_sms_and_keeps_the_record(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    since = len(kannel.smsc.messages())
    procs.notifier(kannel)
    eng = engine(notify_store_url(stack))
    s = silences.create(eng, site="S02", room="VAULT", ends_ns=time.time_ns() + 600 * 10**9, by="王老师",
                        kind="maintenance", comment="电路检修")
    eng.dispose()
    rules = stack.client("svc-rules")
    publish(rules, [transition(301, 1, "firing", site="S02"), transition(302, 1, "firing", site="S03")])
    wait_for(lambda: sms_to(kannel, PHONES["chief-S03"], since), 10, "the unsilenced site's SMS")
    wait_for(lambda: notifications(stack, alarm_id=301), 10, "the muted row")
    assert sms_to(kannel, PHONES["chief-S02"], since) == []
    [row] = notifications(stack, alarm_id=301)
    assert (row["status"], row["silence_id"], row["address"]) == ("muted", s.id, PHONES["chief-S02"])


def test_drill_alarm_reaches_only_drill_recipients(stack: Stack, kannel: Kannel, procs: Processes) -> None:
    since = len(kannel.smsc.messages())
    procs.notifier(kannel)
    publish(stack.client("svc-rules"), [transition(401, 1, "firing", site="S03", drill=True)])
    wait_for(lambda: sms_to(kannel, PHONES["drill"], since), 10, "the drill SMS")
    wait_for(lambda: all(r["status"] == "sent" for r in notifications(stack, alarm_id=401)), 10, "every row sent")
    [text] = sms_to(kannel, PHONES["drill"], since)
    assert text.startswith("【演练】【考务告警】紧急 S03 北大附中 保密室市电中断")
    assert [to for _f, to, _t in kannel.smsc.messages()[since:]] == [PHONES["drill"]]


def _published(stack: Stack) -> bool:
    eng = engine(store_url(stack))
    try:
        with eng.connect() as conn:
            return bool(conn.execute(sa.text("SELECT count(*) FROM alarm_transition WHERE sent")).scalar())
    finally:
        eng.dispose()


def _alarm_state(stack: Stack, alarm_id: int) -> Any:
    eng = engine(notify_store_url(stack))
    try:
        with eng.connect() as conn:
            return conn.execute(sa.select(NotifyAlarm.state).where(NotifyAlarm.alarm_id == alarm_id)).scalar()
    finally:
        eng.dispose()


def test_bad_provider_settings_stop_the_start_with_one_line(stack: Stack, kannel: Kannel) -> None:
    config = write_config(stack, kannel, name="bad.toml", kannel_password="wrong-password")
    out = subprocess.run([EXAMWATCH, "notify", "--config", str(config)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 3
    assert "refused notify.kannel_username/password" in out.stderr
    assert "Traceback" not in out.stderr


def test_mains_loss_on_ups_and_recovery_is_one_alert_and_one_all_clear(stack: Stack, kannel: Kannel,
                                                                       procs: Processes) -> None:
    """One report raises mains lost and on UPS (both critical); on UPS is implied, so the chief gets one
    alert naming the cause, and after recovery one all-clear (rules engine and notifier, real chain)."""
    since = len(kannel.smsc.messages())
    config = write_config(stack, kannel, rules=True)
    procs.start(config, "rules")
    procs.start(config, "notify")
    gw = stack.gateway("S02")
    topic = device_topic(stack, "S02-VAULT-PWR1")
    gw.publish(topic, telemetry("S02-VAULT-PWR1", "power", mains_v=0.0, frequency_hz=0.0, on_ups=True), qos=1)
    chief = PHONES["chief-S02"]
    wait_for(lambda: sms_to(kannel, chief, since), 20, "the alert")
    wait_for(lambda: len(notifications(stack)) >= 1 and _alarms(stack) >= 2, 20, "both alarms at the notifier")
    gw.publish(topic, telemetry("S02-VAULT-PWR1", "power", mains_v=221.0, on_ups=False), qos=1)
    wait_for(lambda: any("已恢复" in t for t in sms_to(kannel, chief, since)), 20, "the all-clear")
    texts = sms_to(kannel, chief, since)
    assert len(texts) == 2, texts
    assert texts[0].startswith("【考务告警】紧急 S02 中关村中学 保密室市电中断")
    assert texts[1].startswith("【考务恢复】S02 中关村中学 保密室市电中断已恢复")


def _alarms(stack: Stack) -> int:
    eng = engine(notify_store_url(stack))
    try:
        with eng.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(NotifyAlarm)).scalar_one())
    finally:
        eng.dispose()


def test_a_rise_after_acknowledgement_is_texted_and_reminded_again(stack: Stack, kannel: Kannel,
                                                                   procs: Processes) -> None:
    since = len(kannel.smsc.messages())
    procs.notifier(kannel, remind_every_s=1.0, escalate_after_s=60.0)
    rules = stack.client("svc-rules")
    chief = PHONES["chief-S03"]
    low = {"site": "S03", "rule": "power_ups_low"}
    publish(rules, [transition(901, 1, "firing", severity="major", **low)])
    wait_for(lambda: sms_to(kannel, chief, since), 10, "the major alert")
    publish(rules, [transition(901, 2, "acknowledged", severity="major", **low)])
    wait_for(lambda: _alarm_state(stack, 901) == "acknowledged", 10, "the acknowledgement applied")
    publish(rules, [transition(901, 3, "firing", severity="critical", **low)])  # the engine renews the alarm
    wait_for(lambda: any("提醒" in t for t in sms_to(kannel, chief, since)), 10, "a reminder after the rise")
    texts = sms_to(kannel, chief, since)
    assert texts[0].startswith("【考务告警】重要 S03 北大附中 保密室UPS电量低")
    assert texts[1].startswith("【告警加重】紧急 S03 北大附中 保密室UPS电量低")
    assert texts[2].startswith("【考务告警·第1次提醒】紧急 S03")
    publish(rules, [transition(901, 4, "acknowledged", severity="critical", **low)])
    wait_for(lambda: _alarm_state(stack, 901) == "acknowledged", 10, "the second acknowledgement applied")
    count = len(sms_to(kannel, chief, since))
    publish(rules, [transition(902, 1, "firing", site="S01")])  # a later alarm, to know time has passed
    wait_for(lambda: sms_to(kannel, PHONES["chief-S01"], since), 10, "the control alarm")
    wait_for(lambda: any("提醒" in t for t in sms_to(kannel, PHONES["chief-S01"], since)), 10, "its reminder")
    assert len(sms_to(kannel, chief, since)) <= count + 1  # at most one reminder already in flight, then none
