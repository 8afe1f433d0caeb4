"""Every committed panel's query, run on a real InfluxDB after a short simulated run, returns data.

The simulator publishes two rounds of every device's telemetry through real mosquitto and a
real ingest process. The rules engine is not part of this test: its ``alarm`` and
``readiness`` points are written by its own formatters (``rules.outbox``, named as a test
fixture), so the alarm and readiness panels are proven on data the engine would write. Grafana's macros are expanded the way Grafana expands them (dashboards.macros).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from dashboards import build, timetable_feed
from dashboards.macros import Context
from dashboards.verify import Result, run_dashboard
from examwatch import timetable
from examwatch.alarm import AlarmTransition, Severity, State, SubjectType
from harness.servers import wait_for
from harness.stack import EXAMWATCH, Stack, device_topic, publish_all, telemetry
from rules.outbox import alarm_line, readiness_line

REPO = Path(__file__).resolve().parents[2]

#: (rule, severity, site, subject, subject type, state, message): alarm transitions, written to
#: InfluxDB by the rules engine's own formatter (rules.outbox.alarm_line).
ALARMS = [
    ("power_mains_lost", "critical", "S01", "S01-VAULT-PWR1", "device", "firing", "保密室市电中断"),
    ("detector_battery_low", "minor", "S01", "S01-R02-DET1", "device", "acknowledged", "battery 12%"),
    ("room_recording", "major", "S02", "S02-R01", "room", "firing", "S02-R01-CAM2 offline"),
    ("jammer_shielding", "critical", "S02", "S02-R02", "room", "firing", "jammer off"),
    ("jammer_shielding", "critical", "S02", "S02-R02", "room", "resolved", "jammer back on"),
    ("gate_clock", "warning", "S03", "S03-ENT-GATE2", "device", "pending", "clock +2.4 s"),
]
#: Worst active severity per site after the transitions above: S02's critical was resolved.
EXPECTED_STATUS = {"S01": 4, "S02": 3, "S03": 1}
READINESS = [  # (site, room, paper, go, detail), written by rules.outbox.readiness_line
    ("S01", "_site", "d1-chinese", True, "all rooms ready"),
    ("S02", "_site", "d1-chinese", False, "R01: camera offline"),
    ("S03", "_site", "d1-chinese", True, "all rooms ready"),
    ("S01", "R01", "d1-chinese", True, "jammer on, 2 cameras recording"),
]


def rules_engine_stand_in(stack: Stack, drill: bool) -> None:
    """Test fixture: alarm and readiness points as the rules engine writes them, by its own
    formatters (the engine itself is not running here)."""
    now = time.time_ns()
    lines = []
    for i, (rule, severity, site, subject, subject_type, state, message) in enumerate(ALARMS):
        t = AlarmTransition(alarm_id=i + 1 + (100 if drill else 0), seq=1, rule=rule, severity=Severity(severity),
                            site=site, subject=subject, subject_type=SubjectType(subject_type), state=State(state),
                            message=message, drill=drill, at_ns=now - (len(ALARMS) - i) * 1_000_000)
        lines.append(alarm_line(t))
    for site, room, paper, go, detail in READINESS:
        lines.append(readiness_line({"site": site, "room": room, "paper": paper, "go": go, "detail": detail,
                                     "drill": drill, "at_ns": now}))
    stack.influx.write(b"\n".join(lines))


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, object]]:
    return build.load()


def test_every_panel_query_returns_data(stack: Stack, dashboards: dict[str, dict[str, object]]) -> None:
    stack.start_ingest()
    subprocess.run(
        [EXAMWATCH, "simulate", "--config", str(stack.config), "--rounds", "2", "--interval", "1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    gw1, gw2 = stack.gateway("S01"), stack.gateway("S02")
    publish_all(
        gw1,
        [
            (
                device_topic(stack, "S01-VAULT-PWR1"),
                telemetry("S01-VAULT-PWR1", "power", drill=True, mains_v=0.0, on_ups=True, ups_minutes_left=140.0),
            ),
            (device_topic(stack, "S01-R01-JAM1"), telemetry("S01-R01-JAM1", "jammer", drill=True, on=False)),
            (device_topic(stack, "S01-R02-JAM1"), b"{not json"),
        ],
    )
    publish_all(gw2, [(device_topic(stack, "S02-R01-JAM1"), telemetry("S02-R01-JAM1", "jammer", on=False))])
    rules_engine_stand_in(stack, drill=False)
    rules_engine_stand_in(stack, drill=True)
    tt = timetable.load(REPO / "config" / "timetable.yaml")
    timetable_feed.write(stack.influx, timetable_feed.starting_in(tt, 30))
    devices = len(stack.inventory.devices)
    stack.wait_count("power", 2 * 3 + 1)
    stack.wait_count("jammer", 2 * len([d for d in stack.inventory.devices.values() if d.kind == "jammer"]) + 2)
    stack.wait_count("ingest_reject", 1)
    wait_for(
        lambda: len(stack.influx.rows('SELECT "received" FROM "ingest_stats"')) >= 4,
        30,
        "ingest_stats points",
    )
    assert devices == 75

    ctx = Context(range="1h", interval="1s")
    results: list[Result] = []
    for doc in dashboards.values():
        results += run_dashboard(doc, stack.influx, ctx)
    empty = [f"{r.dashboard} / {r.panel} / {r.ref}: {r.error or 'no data'} ← {r.query}" for r in results if not r.ok]
    assert not empty, "panels that would show No data:\n" + "\n".join(empty)
    targets = sum(len(p.get("targets", [])) for d in dashboards.values() for p in d["panels"])  # type: ignore[attr-defined]
    assert len(results) == targets, "every target ran"

    # The operator's command runs the same check and agrees.
    verify = subprocess.run(
        [EXAMWATCH, "dashboards", "verify", "--config", str(stack.config), "--interval", "1s"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count(" ok") == len(results)

    # The values mean what the panels say.
    by = {(r.dashboard, r.panel, r.ref): r for r in results}
    wall = "District wall 区考务指挥大屏"
    assert by[(wall, "Cameras recording 录像", "share")].values == [100.0]
    assert by[(wall, "Jammer coverage 屏蔽覆盖", "C")].values == [1]  # S02-R01 reports off
    assert by[(wall, "Jammer coverage 屏蔽覆盖", "B")].values == [12]  # 4 jammers × 3 sites
    assert by[(wall, "Readiness 考前就绪", "B")].values == [1]
    assert by[(wall, "Active alarms 告警列表", "A")].rows == 4  # 5 alarms, of which one was resolved
    assert by[(wall, "Next paper 下一科目", "A")].rows == 1


def test_site_grid_ranks_worst_active_alarm(stack: Stack, dashboards: dict[str, dict[str, object]]) -> None:
    stack.influx.create_database()
    stack.influx.write(
        b"\n".join(
            f"power,site={s},device={s}-VAULT-PWR1 skew_ms=5i,mains_v=220.0 {time.time_ns()}".encode()
            for s in EXPECTED_STATUS
        )
    )
    rules_engine_stand_in(stack, drill=False)
    rules_engine_stand_in(stack, drill=True)  # a drill's critical alarm must not colour the wall
    wall = dashboards["wall.json"]
    grid = next(p for p in wall["panels"] if p["title"] == "Sites 考点状态")  # type: ignore[index]
    query = Context().expand(grid["targets"][0]["query"], grid["timeFrom"])
    worst: dict[str, int] = {}
    for series in stack.influx.query(query)[0]["series"]:
        site = series["tags"]["site"]
        worst[site] = max(worst.get(site, 0), *(v[1] for v in series["values"]))
    assert worst == EXPECTED_STATUS


def test_active_alarms_show_when_they_last_changed(stack: Stack, dashboards: dict[str, dict[str, object]]) -> None:
    stack.influx.create_database()
    rules_engine_stand_in(stack, drill=False)
    wall = dashboards["wall.json"]
    table = next(p for p in wall["panels"] if p["title"] == "Active alarms 告警列表")  # type: ignore[index]
    rows = stack.influx.rows(Context().expand(table["targets"][0]["query"], table["timeFrom"]))
    assert sorted(r["rule"] for r in rows) == ["detector_battery_low", "gate_clock", "power_mains_lost", "room_recording"]
    now_ms = time.time_ns() // 1_000_000
    assert all(now_ms - 60_000 < r["time"] <= now_ms for r in rows), "the 'since' column is the alarm's own time"
    assert {r["state"] for r in rows} == {"firing", "acknowledged", "pending"}
