"""The scorer on a hand-made record: expected alarms, false alarms at timetable moments, SMS accounting.

The stores are real SQLite stores (migrated), filled as the rules engine and the notifier fill
them; the SMS centre is a fakesmsc log in its own format. The same scorer runs on the real chain
in tests/integration/test_sim_exam_day.py.
"""

from __future__ import annotations

import time
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from drills import markdown, sms
from drills import scenario as sc
from drills.plan import Plan, build
from drills.record import read
from drills.report import ActionScore, Report
from drills.score import Context, score, text_problem
from examwatch import inventory, roster, timetable
from examwatch.store import Alarm, Transition, open_store, writing
from examwatch.store.notify_models import Notification

INV = inventory.load(Path("config/district.yaml"))
TT = timetable.load(Path("config/timetable.yaml"))
ROSTER = roster.load(Path("config/roster.yaml"))
BJ = timezone(timedelta(hours=8))
OFFICER = "13901999001"  # drill-officer, level 1 of drill alarms
CENTER = "13901999002"  # drill-center, level 2
_A = cast(sa.Table, Alarm.__table__)
_T = cast(sa.Table, Transition.__table__)
_N = cast(sa.Table, Notification.__table__)
SCENARIO = """\
name: t
title: test
paper: d2-physics
start: "07:30"
end: "11:00"
faults:
  - {id: mains, type: mains_lost, device: S07-VAULT-PWR1, at: "10:00", for: 10m}
  - {id: cut, type: network_cut, site: S20, at: "10:20", for: 10m}
actions:
  - {type: ack, fault: mains, at: "10:02", by: drill-officer}
expect_quiet:
  - {from: "07:40", to: "07:55", sites: [S01, S02]}
"""


def at(hhmm: str) -> float:
    h, m, *s = (int(x) for x in hhmm.split(":"))
    return datetime(2026, 6, 8, h, m, s[0] if s else 0, tzinfo=BJ).timestamp()


class World:
    """A store, a plan and a fakesmsc log for one test."""

    def __init__(self, tmp_path: Path) -> None:
        path = tmp_path / "s.yaml"
        path.write_text(SCENARIO)
        self.plan: Plan = build(sc.load(path, INV, TT, ROSTER), INV, TT, 1.0)
        self.store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        self.notify = open_store(f"sqlite:///{tmp_path / 'notify.db'}")
        self.log = tmp_path / "fakesmsc.out"
        self.log.write_text("2026-06-08 07:29:00 [1] [0] DEBUG: Connecting to <127.0.0.1>\n")
        self.smsc_n = 0

    def alarm(self, rule: str, subject: str, site: str, steps: list[tuple[str, str, str]],
              subject_type: str = "device", by: str = "rules") -> int:
        """An alarm with ``steps`` (state, severity, HH:MM[:SS]) as the rules engine writes them."""
        with writing(self.store) as conn:
            first = at(steps[0][2])
            alarm_id = conn.execute(sa.insert(_A).values(
                rule=rule, subject=subject, subject_type=subject_type, site=site, severity=steps[-1][1],
                state=steps[-1][0], active=steps[-1][0] != "resolved", drill=True, message=f"{rule} on {subject}",
                opened_ns=int(first * 1e9), updated_ns=int(at(steps[-1][2]) * 1e9), seq=len(steps))).inserted_primary_key[0]
            for seq, (state, severity, hhmm) in enumerate(steps, 1):
                who = by if state in ("acknowledged",) else "rules"
                conn.execute(sa.insert(_T).values(alarm_id=alarm_id, seq=seq, state=state, severity=severity,
                                                  at_ns=int(at(hhmm) * 1e9), by=who, comment="", message="", sent=True))
        return int(alarm_id)

    def sms(self, alarm_id: int, kind: str, phone: str, hhmm: str, text: str = "【演练】【考务告警】S07 市电中断 请立即处置",
            arrives: bool = True, person: str = "drill-officer", level: int = 1) -> None:
        """A notification the notifier sent, and (``arrives``) its line in fakesmsc's output."""
        t = at(hhmm)
        with writing(self.notify) as conn:
            conn.execute(sa.insert(_N).values(
                alarm_id=alarm_id, cause=f"{alarm_id}.{kind}.{hhmm}.{phone}", kind=kind, level=level, person=person,
                address=phone, text=text, drill=True, status="sent", attempts=1, created_ns=int(t * 1e9),
                next_try_ns=int(t * 1e9), sent_ns=int(t * 1e9), result="0: Accepted"))
        if arrives:
            self.smsc(phone, text, t)

    def smsc(self, phone: str, text: str, t: float) -> None:
        self.smsc_n += 1
        body = urllib.parse.quote_plus(text.encode("utf-16-be"))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
        with self.log.open("a") as f:
            f.write(f"{stamp} [1] [0] DEBUG: Got message {self.smsc_n}: <10690000 {phone} ucs-2 {body}>\n")

    def score(self, actions: list[ActionScore] | None = None) -> Report:
        record = read(self.store, self.notify, self.plan.start, self.plan.end)
        ctx = Context(ROSTER, "Asia/Shanghai", True, sms.fakesmsc_log(self.log), "fakesmsc", lambda t: t,
                      actions or [], [])
        return score(self.plan, record, ctx)


def healthy_mains(w: World) -> int:
    """The mains loss seen, told, acknowledged and cleared as it should be."""
    a = w.alarm("power_mains_lost", "S07-VAULT-PWR1", "S07",
                [("firing", "critical", "10:00:20"), ("acknowledged", "critical", "10:02:05"),
                 ("resolved", "critical", "10:10:20")], by="演练评估员")
    w.sms(a, "alert", OFFICER, "10:00:21")
    w.sms(a, "all_clear", OFFICER, "10:10:22", text="【演练】【考务恢复】S07 市电中断已恢复")
    return a


def healthy_cut(w: World) -> int:
    a = w.alarm("site_silent", "S20", "S20", [("firing", "critical", "10:20:35"), ("resolved", "critical",
                                                                                    "10:30:10")], "site")
    w.sms(a, "alert", OFFICER, "10:20:36", text="【演练】【考务告警】S20 考点失联 请立即处置")
    w.sms(a, "reminder", OFFICER, "10:25:36", text="【演练】【考务告警·第1次提醒】S20 考点失联 请立即处置")
    w.sms(a, "all_clear", OFFICER, "10:30:11", text="【演练】【考务恢复】S20 考点失联已恢复")
    # its devices' silence is the cut's doing, not a false alarm
    w.alarm("camera_offline", "S20-R01-CAM1", "S20", [("firing", "major", "10:21:30"),
                                                      ("resolved", "major", "10:30:05")])
    return a


def test_a_drill_where_everything_goes_right_passes(tmp_path: Path) -> None:
    w = World(tmp_path)
    healthy_mains(w)
    healthy_cut(w)
    r = w.score()
    assert r.problems == []
    assert r.passed
    assert r.false_alarms == []
    mains = r.faults[0].expectations[0]
    assert (mains.fired_at, mains.should_hear, mains.acked_by) == (at("10:00:20"), ["drill-officer"], "演练评估员")
    assert [c.rule for c in r.faults[1].consequences] == ["camera_offline"]
    assert r.sms is not None
    assert r.sms.per_recipient["演练评估员 (drill-officer)"] == {"alert": 2, "reminder": 1, "all_clear": 2}
    assert "PASS" in markdown.render(r)


def test_false_alarms_are_listed_with_the_timetable_moment_and_fail_the_drill(tmp_path: Path) -> None:
    w = World(tmp_path)
    healthy_mains(w)
    healthy_cut(w)
    jam = w.alarm("jammer_shielding", "S05-R01-JAM1", "S05", [("firing", "critical", "07:45:10"),
                                                              ("resolved", "critical", "07:45:40")])
    w.sms(jam, "alert", OFFICER, "07:45:11", text="【演练】【考务告警】S05 屏蔽信号不足 请立即处置")
    # an alarm on the faulty device before its fault started is not the fault's either
    early = w.alarm("power_mains_lost", "S07-VAULT-PWR1", "S07", [("firing", "critical", "09:00")])
    # pending that never fired is nothing anyone saw
    w.alarm("jammer_shielding", "S06-R01-JAM1", "S06", [("pending", "critical", "07:45:10"),
                                                        ("resolved", "critical", "07:45:12")])
    r = w.score()
    assert not r.passed
    assert [(a.alarm_id, a.rule, a.severity) for a in r.false_alarms] == [(jam, "jammer_shielding", "critical"),
                                                                          (early, "power_mains_lost", "critical")]
    assert r.false_alarms[0].moment == "T-15 物理 (d2-physics) +0:10"
    assert r.false_alarms[0].sms == 1
    assert r.sms is not None
    assert r.sms.for_false_alarms == 1
    page = markdown.render(r)
    assert "| jammer_shielding | critical | T-15 物理 (d2-physics) | 1 | S05 | 1 |" in page
    assert "2 false alarm(s)" in r.verdict


def test_a_quiet_span_is_broken_by_any_alarm_on_its_subjects(tmp_path: Path) -> None:
    w = World(tmp_path)
    healthy_mains(w)
    healthy_cut(w)
    w.alarm("camera_clock", "S01-R01-CAM1", "S01", [("firing", "warning", "07:50"), ("resolved", "warning", "07:51")])
    w.alarm("camera_clock", "S03-R01-CAM1", "S03", [("firing", "warning", "07:50"), ("resolved", "warning", "07:51")])
    r = w.score()
    assert [a.subject for a in r.quiet[0].violations] == ["S01-R01-CAM1"]  # S03 is not in the span's sites
    assert "quiet 07:40:00-07:55:00: 1 alarm(s)" in r.problems


def test_late_or_missing_detection_and_late_sms_are_problems(tmp_path: Path) -> None:
    w = World(tmp_path)
    a = w.alarm("power_mains_lost", "S07-VAULT-PWR1", "S07", [("firing", "critical", "10:03"),
                                                              ("acknowledged", "critical", "10:03:30"),
                                                              ("resolved", "critical", "10:10:20")])
    w.sms(a, "alert", OFFICER, "10:03:40")
    w.sms(a, "all_clear", OFFICER, "10:10:22", text="【演练】【考务恢复】S07 市电中断已恢复")
    r = w.score()
    mains, cut = r.faults[0].expectations[0], r.faults[1].expectations[0]
    assert any(p.startswith("detected 180 s after the fault, due within 60 s") for p in mains.problems)
    assert any("heard 40 s after detection, due within 10 s" in p for p in mains.problems)
    assert cut.problems == ["no site_silent alarm on S20 by 10:21:00"]


def test_sms_nobody_sent_sms_lost_and_sms_not_in_chinese(tmp_path: Path) -> None:
    w = World(tmp_path)
    a = healthy_mains(w)
    healthy_cut(w)
    w.smsc(CENTER, "【演练】【考务告警】S07 市电中断 请立即处置", at("10:01"))  # no outbox row
    w.sms(a, "reminder", OFFICER, "10:05", arrives=False, text="【演练】【考务告警·第1次提醒】S07 市电中断")
    w.sms(a, "escalation", CENTER, "10:06", level=2, person="drill-center",
          text="【演练】【考务告警·升级】S07 site_silent 10:06 请立即处置")
    w.sms(a, "reminder", OFFICER, "10:07", text="【演练】【考务告警·第2次提醒】S07 市电中断")
    with writing(w.notify) as conn:  # the notifier says it dropped it, yet the phone got it
        conn.execute(sa.update(_N).where(_N.c.text.like("%第2次%")).values(status="dropped"))
    r = w.score()
    assert r.sms is not None
    assert [(x.to, x.recipient) for x in r.sms.unaccounted] == [(CENTER, "演练指挥中心 (drill-center)")]
    assert [x.text for x in r.sms.lost] == ["【演练】【考务告警·第1次提醒】S07 市电中断"]
    assert [x.problem for x in r.sms.text_problems] == ["English words in the text: site, silent"]
    assert [x.problem for x in r.sms.inconsistent] == ["the outbox says dropped, yet it reached the phone"]
    # acknowledged at 10:02:05: the reminders and the escalation after it are nagging
    assert "3 reminder/escalation SMS after the acknowledgement at 10:02:05" in r.faults[0].expectations[0].problems


def test_the_first_level_must_hear_and_an_all_clear_must_follow(tmp_path: Path) -> None:
    w = World(tmp_path)
    healthy_cut(w)
    a = w.alarm("power_mains_lost", "S07-VAULT-PWR1", "S07", [("firing", "critical", "10:00:20"),
                                                              ("acknowledged", "critical", "10:02:05"),
                                                              ("resolved", "critical", "10:10:20")])
    w.sms(a, "alert", OFFICER, "10:00:21", arrives=False)
    r = w.score()
    problems = r.faults[0].expectations[0].problems
    assert "drill-officer (level 1) never received an SMS about it" in problems
    assert not any("all-clear" in p for p in problems)  # nobody was told, so nobody is owed an all-clear
    w.smsc(OFFICER, "【演练】【考务告警】S07 市电中断 请立即处置", at("10:00:21"))
    problems = w.score().faults[0].expectations[0].problems
    assert problems == ["no all-clear by 10:11:20 to drill-officer"]


def test_a_silenced_alert_is_not_owed(tmp_path: Path) -> None:
    w = World(tmp_path)
    healthy_mains(w)
    a = w.alarm("site_silent", "S20", "S20", [("firing", "critical", "10:20:35"), ("resolved", "critical",
                                                                                    "10:30:10")], "site")
    w.sms(a, "alert", OFFICER, "10:20:36", arrives=False)
    assert "drill-officer (level 1) never received an SMS about it" in w.score().faults[1].expectations[0].problems
    with writing(w.notify) as conn:
        conn.execute(sa.update(_N).where(_N.c.alarm_id == a).values(status="muted", sent_ns=None))
    assert w.score().faults[1].expectations[0].problems == []


def test_an_acknowledgement_the_scenario_expects_must_happen(tmp_path: Path) -> None:
    w = World(tmp_path)
    healthy_cut(w)
    a = w.alarm("power_mains_lost", "S07-VAULT-PWR1", "S07", [("firing", "critical", "10:00:20"),
                                                              ("resolved", "critical", "10:10:20")])
    w.sms(a, "alert", OFFICER, "10:00:21")
    w.sms(a, "all_clear", OFFICER, "10:10:22", text="【演练】【考务恢复】S07 市电中断已恢复")
    r = w.score([ActionScore(0, "ack", at("10:02"), "drill-officer", "sms", "power_mains_lost on S07-VAULT-PWR1", a,
                             at("10:02"), "replied '1 K7' from 13901999001", True)])
    assert r.faults[0].expectations[0].problems == ["not acknowledged (the scenario acknowledges it at 10:02:00)"]
    assert "| 10:02:00 | ack | drill-officer | sms |" in markdown.render(r)


@pytest.mark.parametrize(("text", "problem"), [
    ("【演练】【考务告警】S07 人大附中 市电中断 10:00 请立即处置", None),
    ("【演练】【考务告警】S07 site S07: nothing heard for 33 s", "English words in the text: site, nothing, heard, for"),
    ("Exam alert S07 mains lost", "not Chinese"),
    ("告" * 71, "71 characters, more than one SMS (70)"),
])
def test_text_checks(text: str, problem: str | None) -> None:
    assert text_problem(text) == problem


def test_fakesmsc_output_is_read_in_every_coding(tmp_path: Path) -> None:
    log = tmp_path / "f.out"
    ucs2 = urllib.parse.quote_plus("市电中断 S07".encode("utf-16-be"))
    data = urllib.parse.quote("已确认".encode())
    log.write_text(
        "2026-06-08 10:00:00 [9] [0] DEBUG: Got message 1: <10690000 139 ucs-2 " + ucs2 + ">\n"
        "2026-06-08 10:00:01 [9] [0] DEBUG: Got message 2: <10690000 139 text hello > world>\n"
        "2026-06-08 10:00:02 [9] [0] DEBUG: Got message 3: <10690000 139 data " + data + ">\n"
        "2026-06-08 10:00:03 [9] [0] INFO: something else\n")
    got = sms.fakesmsc_log(log)
    assert [(m.to, m.text) for m in got] == [("139", "市电中断 S07"), ("139", "hello > world"), ("139", "已确认")]
    assert got[1].wall - got[0].wall == 1
    assert sms.fakesmsc_log(tmp_path / "missing") == []


def test_a_reply_line_is_fakesmsc_protocol() -> None:
    assert sms.line("13901999001", "10690000", "1 K7") == b"13901999001 10690000 text 1 K7\n"
    assert sms.line("1", "2", "2 已到") == b"1 2 data 2%20%E5%B7%B2%E5%88%B0\n"
    with pytest.raises(ValueError, match="one line"):
        sms.line("1", "2", "a\nb")
    assert sms.parse_address("127.0.0.1:13014") == ("127.0.0.1", 13014)
    with pytest.raises(ValueError, match="HOST:PORT"):
        sms.parse_address("nohost")


def test_the_json_report_carries_the_verdict(tmp_path: Path) -> None:
    w = World(tmp_path)
    healthy_mains(w)
    r = w.score()
    data: dict[str, Any] = r.to_json()
    assert data["passed"] is False
    assert data["false_alarm_count"] == 0
    assert data["faults"][1]["expectations"][0]["problems"] == ["no site_silent alarm on S20 by 10:21:00"]
    r.write_json(tmp_path / "r.json")
    assert "no site_silent alarm" in (tmp_path / "r.json").read_text()


def test_a_simulator_lag_is_a_warning_and_dropped_messages_fail_the_drill() -> None:
    """The drill fails on what people see; a lagging simulator only explains a failure, if any."""
    from types import SimpleNamespace  # noqa: PLC0415

    from drills.runner import integrity  # noqa: PLC0415
    from simulators.stats import Stats  # noqa: PLC0415

    drill = cast(Any, SimpleNamespace(clock=SimpleNamespace(speed=60.0),
                                      plan=SimpleNamespace(interval=30, tz=lambda: UTC)))
    calm = Stats(max_lag_s=0.2)
    assert integrity(drill, calm) == ([], [])
    behind = Stats(max_lag_s=0.61, max_lag_at=1_780_890_958.0)
    problems, warnings = integrity(drill, behind)
    assert problems == []
    assert len(warnings) == 1
    assert "0.61 s (wall)" in warnings[0]
    assert "37 s of drill time" in warnings[0]
    problems, warnings = integrity(drill, Stats(dropped=3))
    assert problems == ["the simulator dropped 3 messages (its connections' queues were full)"]
    assert warnings == []
