"""Every shipped drill scenario runs against real mosquitto, ingest and InfluxDB, and is scored."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from drills import scenario as sc
from drills.evidence import FaultRun, InfluxAlarms
from examwatch.clock import DrillClock
from examwatch.influx import Influx
from examwatch.timetable import load as load_timetable
from harness.stack import EXAMWATCH, Stack

SCENARIOS = sorted(Path("config/scenarios").glob("*.yaml"))


def drill(stack: Stack, scenario: Path, report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXAMWATCH, "drill", "run", str(scenario), "--config", str(stack.config), "--quiet",
         "--speed", "300", "--interval", "60", "--json", str(report), *args],
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
        assert fault["time_to_detect_s"] is not None
        assert fault["time_to_notify_s"] is None  # nobody notifies until the rules engine exists
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


def test_unseen_fault_fails_the_drill(stack: Stack, tmp_path: Path) -> None:
    """Scored against alarms while no rules engine runs: the fault is unseen and the exit code is 1."""
    stack.start_ingest()
    tt = tmp_path / "timetable.yaml"
    out = drill(stack, Path("config/scenarios/power.yaml"), tmp_path / "r.json", "--source", "alarms",
                "--write-timetable", str(tt))
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["unseen"] == 1
    assert report["faults"][0]["expected_rule"] == "power_mains_lost"
    assert report["scored_against"].startswith("alarms")
    assert report["verdict"].startswith("FAIL")
    # The drill's day is today: the anchor paper starts within the drill's warmup of its start.
    chinese = next(p for p in load_timetable(tt).papers if p.id == "d1-chinese")
    assert 0 < chinese.start.timestamp() - time.time() < 3600


def test_alarm_source_scores_detect_notify_ack_and_clear(stack: Stack, tmp_path: Path) -> None:
    """The alarm source reads the rules engine's measurement; here written by the test as a stand-in."""
    influx = Influx(stack.settings.influx)
    influx.create_database()
    t0 = 1_800_000_000.0
    tags = "rule=power_mains_lost,severity=critical,site=S01,subject=S01-VAULT-PWR1,drill=true"
    lines = [f'alarm,{tags} state="{state}",active={active},message="m" {int((t0 + dt) * 1e9)}'
             for state, active, dt in (("pending", "true", 35), ("firing", "true", 40), ("notified", "true", 42),
                                       ("acknowledged", "true", 90), ("resolved", "false", 330))]
    influx.write("\n".join(lines).encode())
    fault = sc.MainsLost(device="S01-VAULT-PWR1", at="-50m", duration="5m")
    run = FaultRun(fault, fault.expected("power"), t0, t0 + 300, "S01", "S01-VAULT-PWR1", DrillClock(t0, t0), 30, 300)
    obs = InfluxAlarms(influx).observe(run)
    assert (obs.detected_at, obs.notified_at, obs.acked_at, obs.cleared_at) == (t0 + 40, t0 + 42, t0 + 90, t0 + 330)
