"""Drill scenario files: the shipped ones are valid, a bad one is refused with its line and field,
and a scenario laid onto the clock puts every fault, action and expectation at its moment."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from drills import scenario as sc
from drills.plan import build
from drills.times import moment, when
from examwatch import inventory, roster, timetable
from examwatch.datafile import DataFileError
from harness.stack import EXAMWATCH

INVENTORY = inventory.load(Path("config/district.yaml"))
TIMETABLE = timetable.load(Path("config/timetable.yaml"))
ROSTER = roster.load(Path("config/roster.yaml"))
SHIPPED = sorted(Path("config/scenarios").glob("*.yaml"))
HEAD = "name: t\ntitle: test\npaper: d2-physics\nfaults:\n"
BEIJING = timezone(timedelta(hours=8))
PHYSICS = datetime.fromisoformat("2026-06-08T08:00:00+08:00").timestamp()
DEMO = {"EXAMWATCH_MODE": "demo", "PATH": "/usr/bin:/bin"}


def load(tmp_path: Path, faults: str, head: str = HEAD, tail: str = "") -> sc.Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(head + faults + tail)
    return sc.load(path, INVENTORY, TIMETABLE, ROSTER)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_are_valid(path: Path) -> None:
    s = sc.load(path, INVENTORY, TIMETABLE, ROSTER)
    assert s.faults


def test_the_exam_day_covers_the_day_every_fault_type_and_the_people() -> None:
    s = sc.load(Path("config/scenarios/exam-day.yaml"), INVENTORY, TIMETABLE, ROSTER)
    plan = build(s, INVENTORY, TIMETABLE, 60)
    assert {f.type for f in s.faults} == {t.model_fields["type"].default for t in sc.FAULT_TYPES}
    assert datetime.fromtimestamp(plan.start, BEIJING).strftime("%H:%M") == "07:20"
    assert datetime.fromtimestamp(plan.end, BEIJING).strftime("%H:%M") == "17:10"
    edges = {m for site in ("S01", "S21") for m in _edges(site)}
    assert all(plan.start < t < plan.end for t in edges)  # T-15, starts, listening, ends: all inside
    acks = [a for a in s.actions if isinstance(a, sc.Ack)]
    assert {a.via for a in acks} == {"api", "sms"}
    assert any(isinstance(a, sc.Resolve) for a in s.actions)
    assert any(isinstance(a, sc.SilenceAction) for a in s.actions)
    assert len(s.expect_quiet) >= 5
    assert any(isinstance(f, sc.NetworkCut) and INVENTORY.site(f.site).type == "backup" for f in s.faults)


def _edges(site: str) -> list[float]:
    out = []
    for p in TIMETABLE.for_site(site):
        if p.start.date().isoformat() == "2026-06-08":
            out += [(p.start - timedelta(minutes=15)).timestamp(), p.start.timestamp(), p.end.timestamp()]
            out += [t.timestamp() for w in p.jammer_off for t in (w.start, w.end)]
    return out


def test_times_are_offsets_or_times_of_day_on_the_anchor_date() -> None:
    anchor = datetime.fromisoformat("2026-06-08T08:00:00+08:00")
    assert when("07:45", anchor) == -timedelta(minutes=15)
    assert when("15:20:30", anchor) == timedelta(hours=7, minutes=20, seconds=30)
    assert when("-1h30m", anchor) == -timedelta(minutes=90)
    assert sc.parse_offset("+90s") == timedelta(seconds=90)
    with pytest.raises(ValueError, match="not a duration"):
        sc.parse_offset("5 minutes")
    with pytest.raises(ValueError, match="quote a time of day"):
        when(27900, anchor)  # what YAML makes of an unquoted 07:45


def test_the_moment_a_time_falls_on() -> None:
    assert moment(TIMETABLE, "S01", PHYSICS - 15 * 60 + 25) == "T-15 物理 (d2-physics) +0:25"
    listening_end = datetime.fromisoformat("2026-06-08T15:20:00+08:00").timestamp()
    assert moment(TIMETABLE, "S01", listening_end - 40) == "listening end 外语 (d2-english) -0:40"
    assert moment(TIMETABLE, "S01", PHYSICS + 3600) == "during 物理 (d2-physics)"
    assert moment(TIMETABLE, "S01", PHYSICS + 4 * 3600) == "between papers"


def test_a_plan_puts_faults_and_deadlines_on_the_clock(tmp_path: Path) -> None:
    s = load(tmp_path, "  - {id: m, type: mains_lost, device: S07-VAULT-PWR1, at: '10:30', for: 40m}\n"
                       "  - {id: c, type: tamper, device: S08-R07-CAM1, at: '07:50', for: 20m}\n"
                       "  - {id: v, type: video_loss, device: S09-R01-CAM1, at: '12:00', for: 5m}\n"
                       "  - {id: n, type: network_cut, site: S20, at: '13:00', for: 10m}\n",
             tail="actions:\n  - {type: ack, fault: m, at: '10:33', by: drill-officer}\n")
    plan = build(s, INVENTORY, TIMETABLE, 60)
    mains, cam, exam_cam, cut = plan.faults
    assert mains.start == PHYSICS + 2.5 * 3600
    allowance = 0.5 * 60  # half a wall second of processing at 60×
    assert mains.expectations[0].due == mains.start + 30 + 30 + allowance
    # an exam-room camera is judged from the paper's start, not before; outside a paper not at all
    assert cam.expectations[0].start == PHYSICS
    assert exam_cam.expectations == []
    assert (cut.subject, cut.expectations[0].rule) == ("S20", "site_silent")
    assert cut.explains("camera_offline", "S20-R01-CAM1", "S20", cut.start + 60, set())
    assert not cut.explains("camera_offline", "S19-R01-CAM1", "S19", cut.start + 60, set())
    assert not cut.explains("site_silent", "S20", "S20", cut.start - 120, set())
    assert plan.actions[0].rule == "power_mains_lost"
    assert plan.actions[0].at == PHYSICS + 2.5 * 3600 + 180


@pytest.mark.parametrize(
    ("faults", "where"),
    [
        ("  - {type: mains_lost, device: S01-R01-CAM1, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\].mains_lost.device: .*S01-R01-CAM1 is a camera; this fault needs a power"),
        ("  - type: tamper\n    device: S01-R01-CAM1\n    at: soon\n    for: 5m\n",
         r"s.yaml:7: faults\[0\].tamper.at: .*'soon' is not a duration"),
        ("  - {type: tamper, device: S01-R01-CAM1, at: 15:20, for: 5m}\n",
         r"s.yaml:5: faults\[0\].tamper.at: .*quote a time of day"),
        ("  - {type: band_down, device: S01-R01-JAM1, band: gnss, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\].band_down.band: .*does not cover band gnss"),
        ("  - {type: band_down, device: S01-R01-JAM1, at: '07:30', for: 5m}\n",
         r"s.yaml:5: faults\[0\].band_down: .*while jammers are required \(07:45-09:30, 14:45-15:00, 15:20-17:00\)"),
        ("  - {type: jammer_not_on, device: S01-R01-JAM1, at: '08:10', for: 5m}\n",
         r"s.yaml:5: faults\[0\].jammer_not_on: .*must start when jammers become required \(07:45, 14:45, 15:20\)"),
        ("  - {type: offline, device: S01-R01-CAM1, at: 1m, for: 0s}\n",
         r"s.yaml:5: faults\[0\].offline.for: "),
        ("  - {type: offline, device: NOPE-1, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\].offline.device: .*NOPE-1 is not in the inventory"),
        ("  - {type: offline, device: S01-R01-CAM1, at: -9h, for: 5m}\n",
         r"s.yaml:5: faults\[0\].offline: .*outside the drill's day 2026-06-08"),
        ("  - {type: battery_flat, device: S01-ENT-WTD1, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\].battery_flat.device: .*needs a handheld"),
        ("  - {type: network_cut, site: S99, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\].network_cut.site: .*site S99 is not in the inventory"),
        ("  - {type: rogue_device, site: S01, device: S01-R01-CAM1, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\].rogue_device.device: .*must not be"),
        ("  - {type: clock_skew, device: S01-R01-CAM1, offset: 1s, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\].clock_skew.offset: .*under 5 s"),
        ("  - {type: smoke, device: S01-R01-CAM1, at: 1m, for: 5m}\n",
         r"s.yaml:5: faults\[0\]: .*does not match any of the expected tags"),
        ("  - {type: offline, device: S01-R01-CAM1, at: 1m, for: 5m, colour: red}\n",
         r"s.yaml:5: faults\[0\].offline.colour: Extra inputs are not permitted"),
    ],
    ids=["kind", "offset", "unquoted-time", "band", "band-window", "not-on-edge", "length", "unknown-device",
         "outside-day", "walkthrough", "site", "rogue", "skew", "type", "extra"],
)
def test_bad_faults_are_refused_with_line_and_field(tmp_path: Path, faults: str, where: str) -> None:
    with pytest.raises(DataFileError, match=where):
        load(tmp_path, faults)


FAULT = "  - {id: m, type: mains_lost, device: S07-VAULT-PWR1, at: '10:30', for: 10m}\n"


@pytest.mark.parametrize(
    ("actions", "where"),
    [
        ("  - {type: ack, fault: m, at: '10:32', by: nobody}\n",
         r"s.yaml:7: actions\[0\].ack.by: .*nobody is not a person of the roster"),
        ("  - {type: ack, fault: m, at: '10:32', by: drill-officer, as: janitor}\n",
         r"s.yaml:7: actions\[0\].ack.as: .*'viewer', 'operator' or 'admin'"),
        ("  - {type: ack, fault: x, at: '10:32', by: drill-officer}\n",
         r"s.yaml:7: actions\[0\].ack: .*no fault 'x' \(faults: m\)"),
        ("  - {type: ack, fault: m, rule: camera_tamper, at: '10:32', by: drill-officer}\n",
         r"s.yaml:7: actions\[0\].ack: .*fault 'm' raises power_mains_lost, not camera_tamper"),
        ("  - {type: resolve, fault: m, at: '10:20', by: drill-officer}\n",
         r"s.yaml:7: actions\[0\].resolve: .*resolve before fault 'm' starts"),
        ("  - {type: ack, fault: m, at: '10:32', by: drill-officer, via: fax}\n",
         r"s.yaml:7: actions\[0\].ack.via: "),
        ("  - {type: silence, at: '10:32', for: 5m, by: drill-officer}\n",
         r"s.yaml:7: actions\[0\].silence: .*needs at least one of site, device, rule"),
        ("  - {type: wave, at: '10:32', by: drill-officer}\n",
         r"s.yaml:7: actions\[0\]: .*does not match any of the expected tags"),
    ],
    ids=["person", "role", "no-fault", "wrong-rule", "too-early", "via", "empty-silence", "type"],
)
def test_bad_actions_are_refused_with_line_and_field(tmp_path: Path, actions: str, where: str) -> None:
    with pytest.raises(DataFileError, match=where):
        load(tmp_path, FAULT, tail="actions:\n" + actions)


def test_an_ack_of_a_camera_fault_that_raises_nothing_is_refused(tmp_path: Path) -> None:
    """An exam-room camera outside a paper is not judged: no alarm to acknowledge."""
    with pytest.raises(DataFileError, match=r"actions\[0\].ack: .*fault 'c' raises no alarm to ack"):
        load(tmp_path, "  - {id: c, type: tamper, device: S08-R07-CAM1, at: '12:00', for: 5m}\n",
             tail="actions:\n  - {type: ack, fault: c, at: '12:01', by: drill-officer}\n")


def test_bad_expectations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"s.yaml:7: expect_quiet\[0\]: .*to must be after from"):
        load(tmp_path, FAULT, tail="expect_quiet:\n  - {from: '10:00', to: '09:00'}\n")
    with pytest.raises(DataFileError, match=r"s.yaml:7: expect\[0\].subject: .*S99-R01 is no device"):
        load(tmp_path, FAULT, tail="expect:\n  - {rule: x, severity: major, subject: S99-R01, after: '10:00', "
                                   "within: 5m}\n")


def test_unknown_paper_is_refused(tmp_path: Path) -> None:
    head = "name: t\ntitle: test\npaper: d9-latin\nfaults:\n"
    with pytest.raises(DataFileError, match=r"s.yaml:3: paper: .*no paper d9-latin"):
        load(tmp_path, "  - {type: offline, device: S01-R01-CAM1, at: 1m, for: 5m}\n", head)


def test_drill_check_cli_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "  - type: offline\n    device: S01-R01-CAM1\n    at: 1m\n    for: forever\n")
    out = subprocess.run([EXAMWATCH, "drill", "check", str(bad)], capture_output=True, text=True, env=DEMO,
                         check=False)
    assert out.returncode == 2
    assert f"{bad}:8: faults[0].offline.for:" in out.stderr
    assert "Traceback" not in out.stderr


def test_drill_clock_prints_the_clock_section_for_the_scenario() -> None:
    before = datetime.now(UTC)
    out = subprocess.run([EXAMWATCH, "drill", "clock", "config/scenarios/exam-day.yaml", "--speed", "60",
                          "--lead", "2m"], capture_output=True, text=True, env=DEMO, check=True)
    lines = dict(re.findall(r"^(\w+) = (.+)$", out.stdout, re.M))
    assert lines["start"] == '"2026-06-08T07:20:00+08:00"'
    assert lines["speed"] == "60"
    wall = datetime.fromisoformat(lines["wall_start"].strip('"'))
    assert timedelta(seconds=115) <= wall - before <= timedelta(seconds=125)
    assert "0:09:50" in out.stdout  # 9 h 50 min of exam day at 60×


def test_compressed_simulation_without_an_end_is_refused() -> None:
    out = subprocess.run([EXAMWATCH, "simulate", "--speed", "60"], capture_output=True, text=True, env=DEMO,
                         check=False)
    assert out.returncode == 2
    assert "--speed above 1 needs --duration" in out.stderr
