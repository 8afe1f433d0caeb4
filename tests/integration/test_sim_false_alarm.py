"""The scorer catches a false alarm injected on purpose, through the real chain.

The shipped rules with one threshold tightened so that healthy readings trip it: storage-room
mains "lost" below 235 V, where every healthy sensor reads 209-231 V. A short drill on the
exam day's clock injects one real mains loss from its first moment (so that sensor never reads
healthy before it); the other sites' sensors then raise alarms nobody injected. The drill must name them (rule, subject, severity, timetable moment), fail with exit
code 1, and still score the real fault as detected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.drill_kit import ROOT, DrillStack
from harness.servers import Influx

SCENARIO = """\
name: tightened-on-purpose
title: a threshold tightened so that healthy readings trip it
paper: d2-physics
start: "10:00"
end: "10:10"
faults:
  - {id: mains, type: mains_lost, device: S07-VAULT-PWR1, at: "10:00", for: 4m}
"""
SPEED = 20.0  # 10 minutes of exam day in 30 s

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def tightened_rules(dst: Path) -> Path:
    """The shipped rules, with power_mains_lost firing below 235 V instead of 187 V."""
    dst.mkdir(parents=True)
    for src in (ROOT / "config" / "rules").glob("*.yaml"):
        doc = yaml.safe_load(src.read_text(encoding="utf-8"))
        for rule in doc["rules"]:
            if rule["name"] == "power_mains_lost":
                rule["levels"] = [{"severity": "critical", "below": 235}]
                rule["clear"] = {"above": 240}
        (dst / src.name).write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return dst


def test_a_rule_tightened_on_purpose_fails_the_drill_with_its_false_alarms(
        tmp_path: Path, influx_server: Influx) -> None:
    scenario = tmp_path / "tightened.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    ds = DrillStack(tmp_path / "stack", influx_server, "t_false_alarm", scenario, SPEED,
                    rules_dir=tightened_rules(tmp_path / "rules"), api=False)
    try:
        ds.start()
        out = ds.run(timeout=200)
    finally:
        ds.close()
    report = json.loads((tmp_path / "stack" / "drill.json").read_text(encoding="utf-8"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert not report["passed"]
    tripped = {a["subject"] for a in report["false_alarms"] if a["rule"] == "power_mains_lost"}
    healthy = {f"S{n:02d}-VAULT-PWR1" for n in range(1, 22)} - {"S07-VAULT-PWR1"}
    assert tripped == healthy, sorted(healthy - tripped)
    first = next(a for a in report["false_alarms"] if a["rule"] == "power_mains_lost")
    assert first["severity"] == "critical"
    assert first["moment"] == "between papers"
    assert f"{len(report['false_alarms'])} false alarm(s)" in report["verdict"]
    # the injected fault is still the fault's: detected, not counted as false
    mains = report["faults"][0]["expectations"][0]
    assert mains["alarm_id"] is not None
    assert "S07-VAULT-PWR1" not in tripped
    page = (tmp_path / "stack" / "drill.md").read_text(encoding="utf-8")
    assert "| power_mains_lost | critical | between papers | 20 |" in page
