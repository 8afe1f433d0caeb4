"""Roster loading (errors name file:line and field), routing by level, and the SMS texts."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

import pytest

from examwatch import roster
from examwatch.alarm import Severity
from examwatch.datafile import DataFileError
from examwatch.inventory import load as load_inventory
from examwatch.settings import NotifySettings
from notify import messages
from notify import roster as routing
from notify.labels import rule_words
from notify.messages import AlarmTransition
from notify.planner import Planner

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def duty() -> roster.Roster:
    inv = load_inventory(ROOT / "config" / "district.yaml")
    return roster.load(ROOT / "config" / "roster.yaml", {s.id for s in inv.sites})


def _transition(**over: object) -> AlarmTransition:
    # 17:42:05 Beijing time on an exam day.
    at = int(datetime(2026, 6, 7, 9, 42, 5, tzinfo=UTC).timestamp() * 1e9)
    base: dict[str, object] = {
        "transition_id": "7.2", "alarm_id": 7, "seq": 2, "rule": "power_mains_lost", "severity": "critical",
        "site": "S01", "subject": "S01-VAULT-PWR1", "subject_type": "device", "state": "firing",
        "message": "mains_v 0 < 187", "drill": False, "at_ns": at, "by": "rules"}
    base.update(over)
    return AlarmTransition.model_validate(base)


def test_shipped_roster_routes_storage_power_through_three_levels(duty: roster.Roster) -> None:
    assert routing.levels(duty, "S03", "power", "critical", drill=False) == [1, 2, 3]
    assert routing.levels(duty, "S03", "camera", "critical", drill=False) == [1, 2]
    assert routing.levels(duty, "S03", "camera", "warning", drill=False) == []
    chief = routing.recipients(duty, 1, "S03", "power", "critical", False, dtime(17, 42))
    assert [(r.person, r.address) for r in chief] == [("chief-S03", "13901000003")]
    bureau = routing.recipients(duty, 3, "S03", "power", "critical", False, dtime(3, 0))
    assert sorted(r.address for r in bureau) == ["13801000009", "95598000001"]


def test_active_hours_pick_the_day_or_night_desk(duty: roster.Roster) -> None:
    day = routing.recipients(duty, 2, "S01", "power", "critical", False, dtime(12, 0))
    night = routing.recipients(duty, 2, "S01", "power", "critical", False, dtime(23, 30))
    assert sorted(r.address for r in day) == ["13801000001", "13801000002"]
    assert [r.address for r in night] == ["13801000003"]


def test_drill_alarms_follow_drill_routes_only(duty: roster.Roster) -> None:
    assert routing.levels(duty, "S01", "power", "critical", drill=True) == [1, 2]
    people = routing.recipients(duty, 1, "S01", "power", "critical", True, dtime(10, 0))
    assert [r.person for r in people] == ["drill-officer"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("people:\n  - {id: a, name: A, phones: ['12x']}\nroutes:\n  - {name: r, level: 1, people: [a]}\n",
         "roster.yaml:2: people[0].phones[0]: String should match pattern"),
        ("people:\n  - {id: a, name: A, phones: ['123456']}\nroutes:\n  - {name: r, level: 1, people: [a], kinds: [toaster]}\n",
         "roster.yaml:4: routes[0].kinds: Value error, unknown kind 'toaster'"),
        ("people:\n  - {id: a, name: A, phones: ['123456'], active_hours: ['8-20']}\nroutes:\n  - {name: r, level: 1, people: [a]}\n",
         "roster.yaml:2: people[0].active_hours: Value error, active hours must look like 08:00-20:00"),
        ("people:\n  - {id: a, name: A, phones: ['123456']}\nroutes:\n  - {name: r, level: 1, people: [b]}\n",
         "roster.yaml:1: (top level): Value error, route r names people not listed: b"),
        ("people:\n  - {id: a, name: A, phones: ['123456']}\nroutes:\n  - {name: r, level: 1, sites: [S99], people: [a]}\n",
         "roster.yaml:4: routes[0].sites: Value error, site S99 is not in the inventory"),
    ],
)
def test_bad_roster_names_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(text)
    with pytest.raises(DataFileError) as err:
        roster.load(path, {"S01"})
    assert str(err.value).startswith(f"{tmp_path}/{expected}"), str(err.value)


def test_hours_cross_midnight() -> None:
    p = roster.Person.model_validate({"id": "n", "name": "N", "phones": ["12345"], "active_hours": ["19:00-07:00"]})
    assert p.on_duty(dtime(23, 0))
    assert p.on_duty(dtime(6, 59))
    assert not p.on_duty(dtime(7, 0))
    assert not p.on_duty(dtime(18, 59))


def test_alert_text_matches_the_examples_and_fits_one_segment(duty: roster.Roster) -> None:
    inv = load_inventory(ROOT / "config" / "district.yaml")
    planner = Planner(duty, inv, NotifySettings())
    t = _transition()
    p = messages.place(inv, t)
    assert (p.kind, p.room, p.room_name) == ("power", "VAULT", "保密室")
    alert = messages.render(planner.text(t, p, "alert", t.at_ns, code="K7"))
    assert alert == "【考务告警】紧急 S01 人大附中 保密室市电中断 17:42:05 回复“1 K7”确认"
    clear = messages.render(planner.text(t, p, "all_clear", t.at_ns + 16 * 60 * 10**9, lasted_min=16,
                                         acked_by="王主考"))
    assert clear == "【考务恢复】S01 人大附中 保密室市电中断已恢复 17:58:05 历时16分 王主考已确认"
    drill = messages.render(planner.text(_transition(drill=True), p, "reminder", t.at_ns, code="K7", n=2))
    assert drill == "【演练】【考务告警·第2次提醒】紧急 S01 人大附中 保密室市电中断 17:42:05起未确认 回复“1 K7”确认"
    robot = messages.render(planner.text(t, p, "alert", t.at_ns, code="K7", reply=False))
    assert robot == "【考务告警】紧急 S01 人大附中 保密室市电中断 17:42:05"
    en = Planner(duty, inv, NotifySettings(language="en"))
    english = messages.render(en.text(t, p, "alert", t.at_ns, code="K7"), "en")
    # The school's Chinese name would make it a 70-character UCS-2 text; without it, 160 in GSM 03.38.
    assert english == "[Exam alert] CRITICAL S01 storage room: mains lost 17:42:05 reply 1 K7"
    for text in (alert, clear, drill, robot, english):
        assert len(text) <= messages.UCS2_SEGMENT


def test_long_names_are_shortened_before_what_happened(duty: roster.Roster) -> None:
    m = messages.Text(kind="alert", severity=Severity.CRITICAL, drill=True, what="保密室市电中断", at="17:42:05",
                      site="S01", site_name="首都师范大学附属实验学校国际部", where="第三十号标准化考场", code="K7M",
                      link="https://kaowu.example.edu.cn/m/AAAAAAAAAAAAAAAA")
    text = messages.render(m)
    assert len(text) <= 70
    assert "市电中断" in text
    assert "“1 K7M”" in text
    assert "https://" not in text  # the link goes first
    assert messages.segment_limit("plain ascii text") == 160
    assert messages.segment_limit("含中文") == 70


def test_a_rule_without_a_label_is_named_in_chinese_by_its_kind(duty: roster.Roster) -> None:
    assert rule_words(duty, "no_such_rule", "jammer", "zh") == "屏蔽仪告警"
    assert rule_words(duty, "unknown_device", "site", "zh") == "未登记设备接入"
    assert rule_words(duty, "no_such_rule", "toaster", "zh") == "设备告警"


def test_incidents_and_robots_in_the_roster(tmp_path: Path) -> None:
    r = roster.Roster.model_validate({
        "people": [{"id": "g", "name": "S01考务群", "robots": ["wecombot://KEY"]}],
        "routes": [{"name": "r", "level": 1, "people": ["g"]}],
        "incidents": {"power": {"rules": ["power_mains_lost", "power_on_ups", "power_ups_low"],
                                "implies": {"power_mains_lost": ["power_on_ups"], "power_on_ups": ["power_ups_low"]}}}})
    incident = r.incident_of("power_on_ups")
    assert incident is not None
    assert incident.implied("power_mains_lost") == {"power_on_ups", "power_ups_low"}
    assert [incident.depth(x) for x in ("power_mains_lost", "power_on_ups", "power_ups_low")] == [0, 1, 2]
    [group] = routing.recipients(r, 1, "S01", "power", "critical", False, dtime(9, 0))
    assert group.robot
    assert routing.robot_url(r, group.address) == "wecombot://KEY"
    assert "KEY" not in group.address  # the outbox, which the API shows, never holds the robot's secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("people:\n  - {id: a, name: A}\nroutes:\n  - {name: r, level: 1, people: [a]}\n",
         "roster.yaml:2: people[0]: Value error, give phones, robots (a group chat), or both"),
        ("people:\n  - {id: a, name: A, phones: ['123456']}\nroutes:\n  - {name: r, level: 1, people: [a]}\n"
         "incidents:\n  p: {rules: [a_b, c_d], implies: {a_b: [x_y]}}\n",
         "roster.yaml:6: incidents.p: Value error, implies names rules not in this incident's rules: x_y"),
        ("people:\n  - {id: a, name: A, phones: ['123456']}\nroutes:\n  - {name: r, level: 1, people: [a]}\n"
         "incidents:\n  p: {rules: [a_b, c_d]}\n  q: {rules: [c_d, e_f]}\n",
         "roster.yaml:1: (top level): Value error, rule c_d is in incidents p and q"),
    ],
)
def test_bad_incidents_and_people_name_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(text)
    with pytest.raises(DataFileError) as err:
        roster.load(path)
    assert str(err.value).startswith(f"{tmp_path}/{expected}"), str(err.value)
