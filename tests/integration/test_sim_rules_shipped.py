"""Every fault of every shipped drill scenario, scored against the real rules engine running the
shipped rules, with the notifier and Kannel: detected, marked drill, cleared (100 %).

The shipped scenarios last about 15 simulated minutes each and the rules engine judges on wall
time (speed 1), so the test runs everything at 1/K of its shipped time scale, derived here from
the shipped files (nothing is copied by hand):
- rules: every waiting time (``timeout_s`` and its overrides, ``window_s``, ``for``,
  ``clear_after_s``) divided by K; thresholds, severities, names and counts as shipped;
- scenarios: the report interval divided by K, fault lengths divided by K and capped (but kept
  long enough for their rule: a flat battery needs the simulator's two-minute fall, a gate
  surge enough passes in its window), a face-match rate multiplied by 3K (the window is K times
  shorter, and passes are failures // 3 per report, which a short interval rounds down).
A fault's meaning depends on the hour (a gate surge needs the entry queue, a band drop the
jammer window, tamper a paper in session), so the faults go into two merged runs, each on a
stack of its own (broker, ingest, rules, notify) at the same time: the entry surge (20 minutes
before the paper) and the paper (a minute into it). A fault that two scenarios share (the same
type on the same device) runs once.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.scenario import parse_offset
from examwatch.store import open_store
from harness.notify_kit import Processes, store_url, write_config
from harness.rules_kit import alarms
from harness.servers import Influx, Kannel, wait_for
from harness.stack import EXAMWATCH, Stack

ROOT = Path(__file__).parents[2]
SCENARIOS = sorted((ROOT / "config" / "scenarios").glob("*.yaml"))
K = 5
TIME_FIELDS = ("timeout_s", "window_s", "for", "clear_after_s")
CAP_S = 40.0
MIN_S = {"battery_flat": 115.0, "face_match_surge": 50.0}
STAGGER_S = 2
PHASE_AT_S = {"entry": -20 * 60, "paper": 60}


def seconds(text: str) -> float:
    return float(parse_offset(text).total_seconds())


def compressed_rules(dst: Path) -> Path:
    """The shipped rules with every waiting time divided by K."""
    dst.mkdir(parents=True)
    for src in sorted((ROOT / "config" / "rules").glob("*.yaml")):
        doc = yaml.safe_load(src.read_text())
        for rule in doc["rules"]:
            for name in TIME_FIELDS:
                if name in rule:
                    rule[name] = rule[name] / K
            if "overrides" in rule:
                rule["overrides"] = {k: v / K for k, v in rule["overrides"].items()}
        (dst / src.name).write_text(yaml.safe_dump(doc, allow_unicode=True))
    return dst


def phase(fault: dict[str, Any]) -> str:
    if fault["type"] == "face_match_surge":
        return "entry"
    if fault["type"] in ("band_down", "tamper"):
        return "paper"
    return "entry" if seconds(fault["at"]) < 0 else "paper"


@dataclass
class Run:
    """One merged run: its faults (compressed) and, per fault, the shipped scenarios it stands for."""

    phase: str
    faults: list[dict[str, Any]] = field(default_factory=list)
    origins: list[list[str]] = field(default_factory=list)

    def scenario(self) -> dict[str, Any]:
        ordered = sorted(range(len(self.faults)), key=lambda i: -seconds(self.faults[i]["for"]))
        self.faults = [self.faults[i] for i in ordered]
        self.origins = [self.origins[i] for i in ordered]
        for n, f in enumerate(self.faults):
            f["at"] = f"{PHASE_AT_S[self.phase] + n * STAGGER_S:+d}s"
        return {"name": f"shipped-{self.phase}", "title": f"every shipped fault of the {self.phase} phase",
                "paper": "d1-chinese", "interval": 30 // K, "warmup": "15s", "tail": "25s", "faults": self.faults}


def derive() -> dict[str, Run]:
    runs = {p: Run(p) for p in PHASE_AT_S}
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for path in SCENARIOS:
        for i, raw in enumerate(yaml.safe_load(path.read_text())["faults"]):
            origin = f"{path.stem}#{i + 1} {raw['type']}"
            key = (raw["type"], raw.get("device") or raw["site"])
            if key in seen:
                p, j = seen[key]
                runs[p].origins[j].append(origin)
                continue
            fault = dict(raw)
            length = min(seconds(raw["for"]) / K, CAP_S)
            fault["for"] = f"{round(max(length, MIN_S.get(raw['type'], 0.0)))}s"
            if raw["type"] == "face_match_surge":
                fault["per_minute"] = raw.get("per_minute", 12) * 3 * K
            run = runs[phase(raw)]
            seen[key] = (run.phase, len(run.faults))
            run.faults.append(fault)
            run.origins.append([origin])
    return runs


@dataclass
class Lane:
    """A stack running one merged run: drill, then rules and notify on the drill's timetable."""

    run: Run
    stack: Stack
    procs: Processes
    dir: Path
    drill: subprocess.Popen[str] | None = None

    def configs(self, kannel: Kannel, rules_dir: Path) -> tuple[Path, Path]:
        """The drill's (the shipped timetable, which it shifts) and the services' (the shifted one)."""
        drill = write_config(self.stack, kannel, "drill.toml", rules=True, rules_dir=rules_dir)
        services = write_config(self.stack, kannel, "services.toml", rules=True, rules_dir=rules_dir,
                                timetable=self.dir / "timetable.yaml")
        return drill, services

    def start(self, kannel: Kannel, rules_dir: Path) -> None:
        drill_cfg, service_cfg = self.configs(kannel, rules_dir)
        scenario = self.dir / "scenario.yaml"
        scenario.write_text(yaml.safe_dump(self.run.scenario(), allow_unicode=True))
        self.stack.start_ingest()
        self.drill = drill = subprocess.Popen(
            [EXAMWATCH, "drill", "run", str(scenario), "--config", str(drill_cfg), "--quiet", "--source", "store",
             "--json", str(self.dir / "report.json"), "--write-timetable", str(self.dir / "timetable.yaml")],
            stdout=(self.dir / "drill.out").open("w"), stderr=subprocess.STDOUT, text=True,
        )
        wait_for(lambda: (self.dir / "timetable.yaml").exists() or drill.poll() is not None, 30,
                 "the drill's timetable")
        assert drill.poll() is None, (self.dir / "drill.out").read_text()
        self.procs.start(service_cfg, "rules")
        self.procs.start(service_cfg, "notify")

    def report(self) -> dict[str, Any]:
        assert self.drill is not None
        code = self.drill.wait(300)
        out = (self.dir / "drill.out").read_text()
        print(out)
        assert (self.dir / "report.json").exists(), out
        report: dict[str, Any] = json.loads((self.dir / "report.json").read_text())
        report["exit"] = code
        return report


def test_derived_runs_cover_every_shipped_fault() -> None:
    runs = derive()
    shipped = sum(len(yaml.safe_load(p.read_text())["faults"]) for p in SCENARIOS)
    assert {p.stem for p in SCENARIOS} >= {"camera", "detector", "gate", "jammer", "power", "exam-morning"}
    assert sum(len(o) for r in runs.values() for o in r.origins) == shipped
    for run in runs.values():
        for f in run.faults:
            assert seconds(f["for"]) <= max(CAP_S, *MIN_S.values())


@pytest.mark.slow
def test_every_shipped_scenario_scores_100_against_the_rules_engine(
    tmp_path: Path, influx_server: Influx, kannel: Kannel
) -> None:
    rules_dir = compressed_rules(tmp_path / "rules")
    lanes: list[Lane] = []
    try:
        for name, run in derive().items():
            stack = Stack(tmp_path / name, influx_server, f"t_shipped_{name}")
            stack.mosquitto.start()
            lanes.append(Lane(run, stack, Processes(stack), tmp_path / name))
        for lane in lanes:
            lane.start(kannel, rules_dir)
        reports = [(lane, lane.report()) for lane in lanes]
    finally:
        for lane in lanes:
            if lane.drill is not None and lane.drill.poll() is None:
                lane.drill.kill()
                lane.drill.wait()
            lane.procs.kill_all()
            lane.stack.close()
    failures: list[str] = []
    for lane, report in reports:
        assert report["scored_against"].startswith("the state store")
        assert len(report["faults"]) == len(lane.run.faults)
        store = open_store(store_url(lane.stack))
        for fault, spec, origins in zip(report["faults"], lane.run.faults, lane.run.origins, strict=True):
            problem = judge(store, fault, spec)
            if problem:
                failures.append(f"{', '.join(origins)} on {fault['subject']} ({fault['expected_rule']}): {problem}")
        assert report["exit"] == 0 or failures, report
    assert not failures, "\n".join(failures)


def judge(store: Any, fault: dict[str, Any], spec: dict[str, Any]) -> str:
    """What is wrong with one fault's score ("" when nothing)."""
    evidence = fault["evidence"]
    if not fault["detected"]:
        return f"not detected: {evidence}"
    if "marked drill" not in evidence or "NOT marked" in evidence:
        return f"not marked drill: {evidence}"
    if not fault["cleared"]:
        return f"not cleared: {evidence}"
    rows = alarms(store, f"rule = '{fault['expected_rule']}' AND subject = '{fault['subject']}'")
    if rows[0]["severity"] != fault["expected_severity"]:
        return f"severity {rows[0]['severity']}, expected {fault['expected_severity']}"
    if fault["type"] == "rogue_device" and spec["device"] not in evidence:
        return f"the alarm does not name the rogue id: {evidence}"
    return ""
