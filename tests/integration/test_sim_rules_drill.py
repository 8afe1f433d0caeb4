"""A drill scored against the real rules engine's alarms (speed 1: the engine judges on wall time)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from harness.rules_kit import RulesProcess, timetable
from harness.stack import EXAMWATCH, Stack

RULES = {
    "power": [{"name": "power_mains_lost", "type": "threshold", "field": "mains_v", "severity": "critical",
               "levels": [{"severity": "critical", "below": 187}], "clear": {"above": 200}}],
    "camera": [{"name": "camera_offline", "type": "absence", "severity": "major", "timeout_s": 6}],
    "site": [{"name": "site_silent", "type": "absence", "severity": "critical", "timeout_s": 4}],
}
SCENARIO = """\
name: rules-e2e
title: mains lost and a camera offline, scored against the rules engine
interval: 2
warmup: 8s
tail: 20s
faults:
  - {type: mains_lost, device: S01-VAULT-PWR1, at: -50m, for: 20s}
  - {type: offline, device: S02-R01-CAM2, at: -50m, for: 20s}
"""


@pytest.mark.slow
def test_drill_scores_the_rules_engines_alarms(stack: Stack, tmp_path: Path) -> None:
    stack.start_ingest()
    rules = RulesProcess(stack, timetable(time.time(), start_in_s=7200), RULES)
    rules.start()
    scenario = tmp_path / "rules-e2e.yaml"
    scenario.write_text(SCENARIO)
    try:
        out = subprocess.run(
            [EXAMWATCH, "drill", "run", str(scenario), "--config", str(stack.config), "--quiet", "--mode", "device",
             "--source", "alarms", "--json", str(tmp_path / "r.json")],
            capture_output=True, text=True, timeout=180, check=False,
        )
    finally:
        rules.stop()
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scored_against"].startswith("alarms")
    by_rule = {f["expected_rule"]: f for f in report["faults"]}
    assert set(by_rule) == {"power_mains_lost", "camera_offline"}
    for fault in report["faults"]:
        assert fault["detected"], fault
        assert fault["cleared"], fault
        assert fault["time_to_detect_s"] < 10, fault
    assert "marked drill" in by_rule["power_mains_lost"]["evidence"]
    assert "NOT" not in by_rule["power_mains_lost"]["evidence"]
