"""Every fault of every shipped drill scenario (but the exam day, which has its own test), scored
against the shipped rules, the notifier and Kannel on a drill clock: detected at its severity, the
first roster level told by SMS (counted at fakesmsc), cleared with an all-clear.

The scenarios are the shipped files, merged into one drill as they are (the same offsets from the
same paper, d1-chinese; a fault that two scenarios share, the same type on the same device, runs
once). Nothing is rescaled: the services and the simulator share one drill clock, so every
timeout, ``for`` and window of the shipped rules holds in drill time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.scenario import parse_offset
from harness.drill_kit import ROOT, DrillStack
from harness.servers import Influx

SHIPPED = sorted(p for p in (ROOT / "config" / "scenarios").glob("*.yaml") if p.stem != "exam-day")
SPEED = 60.0  # as the exam day: the engine keeps up since it reads through the lean subscriber

pytestmark = pytest.mark.slow


def merged() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One scenario with every shipped fault once, and for each fault the scenarios it stands for."""
    faults: list[dict[str, Any]] = []
    origins: dict[str, list[str]] = {}
    seen: dict[tuple[str, str], str] = {}
    for path in SHIPPED:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc.get("paper", "d1-chinese") == "d1-chinese", path
        for i, raw in enumerate(doc["faults"]):
            origin = f"{path.stem}#{i + 1}"
            key = (raw["type"], raw.get("device") or raw["site"])
            if key in seen:
                origins[seen[key]].append(origin)
                continue
            fid = f"{path.stem}-{i + 1}"
            seen[key] = fid
            origins[fid] = [origin]
            faults.append({**raw, "id": fid})
    first = min(parse_offset(f["at"]) for f in faults)
    last = max(parse_offset(f["at"]) + parse_offset(f["for"]) for f in faults)
    scenario = {"name": "shipped", "title": "every shipped fault", "paper": "d1-chinese", "interval": 30,
                "start": f"-{int((-first).total_seconds()) // 60 + 5}m",
                "end": f"+{int(last.total_seconds()) // 60 + 10}m", "faults": faults}
    return scenario, origins


def test_the_merged_drill_covers_every_shipped_fault() -> None:
    scenario, origins = merged()
    shipped = sum(len(yaml.safe_load(p.read_text())["faults"]) for p in SHIPPED)
    assert {p.stem for p in SHIPPED} >= {"camera", "detector", "gate", "jammer", "power", "exam-morning"}
    assert sum(len(o) for o in origins.values()) == shipped
    assert len(scenario["faults"]) == len(origins)


@pytest.mark.timeout(600)
def test_every_shipped_fault_is_detected_told_and_cleared(tmp_path: Path, influx_server: Influx) -> None:
    scenario, origins = merged()
    path = tmp_path / "shipped.yaml"
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True), encoding="utf-8")
    ds = DrillStack(tmp_path / "stack", influx_server, "t_shipped", path, SPEED, api=False)
    try:
        ds.start()
        out = ds.run(timeout=400)
    finally:
        ds.close()
    report_file = tmp_path / "stack" / "drill.json"
    assert report_file.exists(), out.stdout + out.stderr
    report = json.loads(report_file.read_text(encoding="utf-8"))
    failures = []
    for fault in report["faults"]:
        problems = [p for e in fault["expectations"] for p in e["problems"]]
        if problems:
            failures.append(f"{', '.join(origins[fault['id']])} {fault['detail']}: {'; '.join(problems)}")
        for e in fault["expectations"]:
            if e["should_hear"] and not problems:
                assert any(t["received"] for t in e["told"]), e  # counted at fakesmsc, not in a table
    assert not failures, "\n".join(failures)
    assert report["sms"]["unaccounted"] == []
    assert report["sms"]["received"] >= sum(1 for f in report["faults"] for e in f["expectations"]
                                            if e["should_hear"])
