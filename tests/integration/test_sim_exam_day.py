"""The whole exam day through the real chain, scored from what people saw.

``config/scenarios/exam-day.yaml`` (day 2 of the shipped timetable, 07:20 to 17:10, all 21 sites
and their 2,793 devices, every fault type, acknowledgements through the API and by SMS reply, a
resolve, a silence, quiet spans at every timetable edge) runs on a drill clock through the
simulator → Mosquitto → ingest and the rules engine → the notifier → Kannel → fakesmsc, with the
API taking people's actions and Kannel's reply link carrying the SMS reply. The drill's own
scorer reads the stores and fakesmsc's output. One run (module fixture) serves every test here:

- the drill passes: every fault detected and notified in time, 0 false alarms, 0 SMS unaccounted for;
- one test per fault type, naming what went wrong with it;
- the acknowledgement by SMS reply stops reminders and escalation;
- the timetable edges stay quiet.

Speed: ``EXAMWATCH_EXAM_DAY_SPEED`` (default 60: 9 h 50 min of exam day in about 10 minutes).
The shipped rules, timetable and roster are used as they are.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from harness.drill_kit import ROOT, DrillStack
from harness.servers import Influx

SCENARIO = ROOT / "config" / "scenarios" / "exam-day.yaml"
SPEED = float(os.environ.get("EXAMWATCH_EXAM_DAY_SPEED", "60"))
FAULTS = [(f["id"], f["type"]) for f in yaml.safe_load(SCENARIO.read_text())["faults"]]
#: the day at SPEED, plus starting the stack and scoring
TIMEOUT_S = 35_400 / SPEED + 300

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S + 120)]


@dataclass
class Day:
    out: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    markdown: str

    def fault(self, fault_id: str) -> dict[str, Any]:
        return next(f for f in self.report["faults"] if f["id"] == fault_id)

    def why(self) -> str:
        """What to read when a test fails: the verdict, the problems, the drill's own output."""
        return (f"{self.report.get('verdict')}\n" + "\n".join(self.report.get("problems", [])[:40])
                + f"\n--- drill output ---\n{self.out.stdout[-3000:]}\n{self.out.stderr[-2000:]}")


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory, influx_server: Influx) -> Day:
    root = tmp_path_factory.mktemp("exam-day")
    ds = DrillStack(root, influx_server, "t_exam_day", SCENARIO, SPEED)
    try:
        ds.start()
        out = ds.run(timeout=TIMEOUT_S)
    finally:
        ds.close()
    report_path = root / "drill.json"
    assert report_path.exists(), f"no report; the drill said:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    markdown = (root / "drill.md").read_text(encoding="utf-8")
    print(f"exam-day report: {root / 'drill.md'}")
    return Day(out, json.loads(report_path.read_text(encoding="utf-8")), markdown)


def test_the_exam_day_passes(day: Day) -> None:
    assert day.report["passed"], day.why()
    assert day.out.returncode == 0, day.why()
    assert day.report["verdict"].startswith("PASS")


def test_no_false_alarm_and_no_sms_unaccounted_for(day: Day) -> None:
    false = day.report["false_alarms"]
    summary = "\n".join(f"{a['rule']} {a['subject']} {a['severity']} {a['moment']}" for a in false[:30])
    assert false == [], f"{len(false)} false alarms:\n{summary}"
    sms = day.report["sms"]
    assert sms["received"] > 0
    assert sms["unaccounted"] == [], sms["unaccounted"][:10]
    assert sms["lost"] == [], sms["lost"][:10]
    assert sms["text_problems"] == [], sms["text_problems"][:10]


@pytest.mark.parametrize(("fault_id", "fault_type"), FAULTS, ids=[f"{t}:{i}" for i, t in FAULTS])
def test_every_fault_is_detected_notified_and_cleared(day: Day, fault_id: str, fault_type: str) -> None:
    fault = day.fault(fault_id)
    assert fault["type"] == fault_type
    problems = [p for e in fault["expectations"] for p in e["problems"]]
    assert problems == [], f"{fault_id} ({fault['detail']}): {problems}"
    for e in fault["expectations"]:
        assert e["reached_at"] is not None
        if set(e["should_hear"]) - set(e["muted"]):  # a silence people set holds the rest back
            assert any(t["received"] and t["kind"] != "all_clear" for t in e["told"]), e


def test_the_silence_people_set_holds_back_the_texts_it_covers(day: Day) -> None:
    """The scenario silences S19's camera_offline from 11:50 for 30 minutes; its camera fault at
    12:00 is detected and on the wall, but nobody is texted about it."""
    (e,) = day.fault("s19-camera-offline")["expectations"]
    assert e["reached_at"] is not None, e
    assert e["should_hear"], e
    assert e["muted"] == e["should_hear"], e
    assert not [t for t in e["told"] if t["received"]], e


def test_people_act_through_the_api_and_by_sms_reply(day: Day) -> None:
    actions = day.report["actions"]
    assert [a["ok"] for a in actions] == [True] * len(actions), actions
    assert {a["via"] for a in actions} == {"api", "sms"}
    replied = day.fault("s02-jammer-not-on")["expectations"][0]
    assert replied["acked_at"] is not None, "the SMS reply acknowledged nothing"
    # acknowledged by SMS: reminders and escalation stopped (no problem saying otherwise), and no
    # escalation reached the second level after the reply
    escalations = [t for t in replied["told"] if t["kind"] == "escalation" and (t["at"] or 0) > replied["acked_at"]]
    assert escalations == []
    resolved = day.fault("s12-rogue")["expectations"][0]
    assert resolved["cleared_by"] not in (None, "rules"), resolved


def test_every_timetable_edge_is_quiet(day: Day) -> None:
    for q in day.report["quiet"]:
        assert q["violations"] == [], f"{q['why']}: {[(a['rule'], a['subject']) for a in q['violations'][:10]]}"


def test_the_report_reads_as_a_timeline(day: Day) -> None:
    assert "## Faults" in day.markdown
    assert "## False alarms" in day.markdown
    assert "## SMS" in day.markdown
    assert "| 07:45:00 | injected: jammer_not_on on S02-R05-JAM1 |" in day.markdown
