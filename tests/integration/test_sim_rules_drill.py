"""A drill on the wall clock (a rehearsal on a live stack, speed 1), scored from the store and fakesmsc.

Short test rules (absence in seconds) so that it runs in about half a minute; the rules engine
and the notifier run on wall time, the drill shifts the timetable to start now.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.notify_kit import PHONES, Processes, write_config
from harness.servers import Kannel
from harness.stack import EXAMWATCH, Stack

RULES = {
    "power": [{"name": "power_mains_lost", "type": "threshold", "field": "mains_v", "severity": "critical",
               "levels": [{"severity": "critical", "below": 187}], "clear": {"above": 200}}],
    "camera": [{"name": "camera_offline", "type": "absence", "severity": "major", "timeout_s": 6}],
    "site": [{"name": "site_silent", "type": "absence", "severity": "critical", "timeout_s": 4}],
}
SCENARIO = """\
name: rules-e2e
title: mains lost and a camera offline, scored against the rules engine and the SMS
interval: 2
warmup: 8s
tail: 20s
faults:
  - {type: mains_lost, device: S01-VAULT-PWR1, at: -50m, for: 20s}
  - {type: offline, device: S02-R01-CAM2, at: -50m, for: 20s, expect: [{rule: camera_offline, severity: major,
     within: 12s}]}
"""


@pytest.mark.slow
def test_a_wall_clock_drill_is_scored_from_the_store_and_the_sms(stack: Stack, tmp_path: Path,
                                                                 kannel: Kannel) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for kind, rules in RULES.items():
        (rules_dir / f"{kind}.yaml").write_text(yaml.safe_dump({"rules": rules}))
    config = write_config(stack, kannel, "drill.toml", rules=True, rules_dir=rules_dir)
    stack.start_ingest()
    procs = Processes(stack)
    scenario = tmp_path / "rules-e2e.yaml"
    scenario.write_text(SCENARIO)
    smsc_log = kannel.smsc.root / f"{kannel.smsc.name}.out"
    try:
        procs.start(config, "rules")
        procs.start(config, "notify")
        out = subprocess.run(
            [EXAMWATCH, "drill", "run", str(scenario), "--config", str(config), "--quiet", "--mode", "device",
             "--smsc-log", str(smsc_log), "--json", str(tmp_path / "r.json")],
            capture_output=True, text=True, timeout=180, check=False,
        )
    finally:
        procs.kill_all()
    report = json.loads((tmp_path / "r.json").read_text())
    by_rule = {e["rule"]: e for f in report["faults"] for e in f["expectations"]}
    assert set(by_rule) == {"power_mains_lost", "camera_offline"}
    mains = by_rule["power_mains_lost"]
    assert mains["reached_at"] - mains["start"] < 10, mains
    assert mains["should_hear"] == ["drill"]
    assert [t["address"] for t in mains["told"] if t["kind"] == "alert" and t["received"]] == [PHONES["drill"]]
    assert mains["cleared_at"] is not None
    # the camera's own offline alarm is expected; its site's other devices kept reporting
    assert by_rule["camera_offline"]["problems"] == [], by_rule["camera_offline"]
    assert report["sms"]["unaccounted"] == []
    assert report["scored_against"].startswith("the alarm store")
    assert out.returncode == (0 if report["passed"] else 1), out.stderr
