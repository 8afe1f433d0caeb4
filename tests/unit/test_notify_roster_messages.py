"""Roster loading (errors name file:line and field), routing by level, and the SMS texts."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from examwatch import roster
from examwatch.datafile import DataFileError
from examwatch.inventory import load as load_inventory
from notify import messages
from notify import roster as routing
from notify.messages import AlarmTransition

ROOT = Path(__file__).parents[2]
TZ = ZoneInfo("Asia/Shanghai")


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
    assert [(r.person, r.phone) for r in chief] == [("chief-S03", "13901000003")]
    bureau = routing.recipients(duty, 3, "S03", "power", "critical", False, dtime(3, 0))
    assert sorted(r.phone for r in bureau) == ["13801000009", "95598000001"]


def test_active_hours_pick_the_day_or_night_desk(duty: roster.Roster) -> None:
    day = routing.recipients(duty, 2, "S01", "power", "critical", False, dtime(12, 0))
    night = routing.recipients(duty, 2, "S01", "power", "critical", False, dtime(23, 30))
    assert sorted(r.phone for r in day) == ["13801000001", "13801000002"]
    assert [r.phone for r in night] == ["13801000003"]


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


def test_alert_text_matches_the_issue_and_fits_one_segment(duty: roster.Roster) -> None:
    inv = load_inventory(ROOT / "config" / "district.yaml")
    t = _transition()
    p = messages.place(inv, t)
    assert (p.kind, p.room, p.room_name) == ("power", "VAULT", "保密室")
    alert = messages.render(t, p, duty, "alert", "zh", TZ)
    assert alert == "【考务告警】S01 人大附中 保密室市电中断 17:42:05 请立即处置"
    clear = messages.render(t, p, duty, "all_clear", "zh", TZ)
    assert clear == "【考务恢复】S01 人大附中 保密室市电中断已恢复 17:42:05"
    drill = messages.render(_transition(drill=True), p, duty, "reminder", "zh", TZ, n=2)
    assert drill == "【演练】【考务告警·第2次提醒】S01 人大附中 保密室市电中断 17:42:05 请立即处置"
    english = messages.render(t, p, duty, "alert", "en", TZ)
    assert english == "[Exam alert] S01 人大附中 storage room: mains lost 17:42:05 act now"
    for text in (alert, clear, drill, english):
        assert len(text) <= messages.UCS2_SEGMENT


def test_long_names_are_shortened_to_one_segment(duty: roster.Roster) -> None:
    t = _transition(rule="no_label_rule", message="一条很长的规则说明" * 4)
    p = messages.Place("首都师范大学附属实验学校国际部", "power", "VAULT", "保密室", None, "S01-VAULT-PWR1")
    text = messages.render(t, p, duty, "alert", "zh", TZ)
    assert len(text) <= 70 or "首都" not in text  # the school's name goes first when it cannot fit
    assert text.endswith("17:42:05 请立即处置")
    assert messages.segment_limit("plain ascii text") == 160
    assert messages.segment_limit("含中文") == 70
