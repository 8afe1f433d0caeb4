"""Every shipped drill scenario runs against real mosquitto, ingest and InfluxDB, and the ingest
diagnostic (--source ingest) finds each fault's evidence; the store source fails a drill whose
fault nobody raised."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from examwatch.timetable import load as load_timetable
from harness.notify_kit import roster_yaml
from harness.stack import EXAMWATCH, Stack

# the exam day names the whole district's devices and has its own test (test_sim_exam_day.py)
SCENARIOS = sorted(p for p in Path("config/scenarios").glob("*.yaml") if p.stem != "exam-day")


def drill(stack: Stack, scenario: Path, report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXAMWATCH_NOTIFY__ROSTER": str(roster(stack, report.parent))}
    return subprocess.run(
        [EXAMWATCH, "drill", "run", str(scenario), "--config", str(stack.config), "--quiet",
         "--speed", "300", "--interval", "60", "--source", "ingest", "--json", str(report), *args], env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_runs_and_every_fault_is_seen(stack: Stack, tmp_path: Path, scenario: Path) -> None:
    stack.start_ingest()
    out = drill(stack, scenario, tmp_path / "report.json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["scored_against"].startswith("ingest evidence")
    assert report["unseen"] == 0
    for fault in report["faults"]:
        assert fault["detected"], fault
        assert fault["cleared"], fault
        evidence = fault["expectations"][0]
        assert evidence["reached_at"] >= fault["start"] - 60
        assert evidence["told"] == []  # the data path only: nobody is notified here
    assert "PASS" in out.stdout
    # Drill traffic is tagged as such.
    assert stack.count("camera", "\"drill\" = 'true'") > 0
    assert stack.count("camera", "\"drill\" != 'true'") == 0


def test_exam_morning_faults_are_in_the_data(stack: Stack, tmp_path: Path) -> None:
    stack.start_ingest()
    out = drill(stack, Path("config/scenarios/exam-morning.yaml"), tmp_path / "r.json", "--mode", "device")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = stack.influx.rows
    assert rows('SELECT min("mains_v") FROM "power" WHERE "device" = \'S01-VAULT-PWR1\'')[0]["min"] == 0
    assert rows('SELECT "lost" FROM "power_event"')[0]["lost"] is True
    n79 = rows('SELECT "rf_dbm_n79", "rf_dbm_n78" FROM "jammer" WHERE "device" = \'S01-R03-JAM1\' AND "rf_dbm_n79" = 0')
    assert len(n79) >= 4
    assert all(r["rf_dbm_n78"] > 20 for r in n79)  # only the one band fell
    assert rows('SELECT count("tamper") FROM "camera" WHERE "tamper" = true')[0]["count"] >= 4
    rejects = {r["reason"] for r in rows('SELECT "reason", "device" FROM "ingest_reject"')}
    assert {"unknown_device", "not_json"} <= rejects
    # In device mode a silenced device leaves by its Last Will: the broker published "offline".
    offline = rows('SELECT "online" FROM "device_status" WHERE "device" = \'S02-R01-CAM2\' AND "online" = false')
    assert offline
    cut = rows('SELECT count("online") FROM "device_status" WHERE "site" = \'S03\' AND "online" = false')
    assert cut[0]["count"] >= 25


TINY = """\
name: tiny
title: storage-room mains lost for 6 s
interval: 2
warmup: 4s
tail: 6s
faults:
  - {type: mains_lost, device: S01-VAULT-PWR1, at: -50m, for: 6s}
"""


def test_unseen_fault_fails_the_drill(stack: Stack, tmp_path: Path) -> None:
    """Scored against the store while no rules engine runs: the fault is unseen and the exit code is 1."""
    stack.start_ingest()
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    tt = tmp_path / "timetable.yaml"
    env = {**os.environ, "EXAMWATCH_STORE__URL": f"sqlite:///{tmp_path}/store.db",
           "EXAMWATCH_NOTIFY__STORE_URL": f"sqlite:///{tmp_path}/notify.db",
           "EXAMWATCH_NOTIFY__ROSTER": str(roster(stack, tmp_path))}
    out = subprocess.run([EXAMWATCH, "drill", "run", str(scenario), "--config", str(stack.config), "--quiet",
                          "--json", str(tmp_path / "r.json"), "--write-timetable", str(tt)],
                         capture_output=True, text=True, timeout=120, check=False, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["unseen"] == 1
    assert report["faults"][0]["expectations"][0]["problems"] == [
        "no power_mains_lost alarm on S01-VAULT-PWR1 by " + report_time(report, "due")]
    assert report["scored_against"].startswith("the alarm store")
    assert report["verdict"].startswith("FAIL")
    # The drill's day is today: the anchor paper starts within the drill's warmup of its start.
    chinese = next(p for p in load_timetable(tt).papers if p.id == "d1-chinese")
    assert 0 < chinese.start.timestamp() - time.time() < 3600


def report_time(report: dict, key: str) -> str:
    t = report["faults"][0]["expectations"][0][key]
    return datetime.fromtimestamp(t, timezone(timedelta(hours=8))).strftime("%H:%M:%S")


def roster(stack: Stack, tmp_path: Path) -> Path:
    path = tmp_path / "roster.yaml"
    path.write_text(roster_yaml([s.id for s in stack.inventory.sites]))
    return path
