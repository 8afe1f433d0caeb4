"""Every committed panel's query, run on a real InfluxDB after a short simulated run, returns data.

The simulator publishes two rounds of every device's telemetry through real mosquitto and a
real ingest process. The rules engine is not part of this test: ``RULES_ENGINE_STAND_IN``
points are written directly (named as test fixtures) in the ``alarm`` and ``readiness``
schema the rules engine writes, so the alarm and readiness panels are proven on data of that
shape. Grafana's macros are expanded the way Grafana expands them (dashboards.macros).
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
from harness.servers import wait_for
from harness.stack import EXAMWATCH, Stack, device_topic, publish_all, telemetry

REPO = Path(__file__).resolve().parents[2]

#: (tags, state, active, message) alarm transitions, as the rules engine writes them.
ALARMS = [
    (
        "rule=power_lost,severity=critical,site=S01,subject=S01-VAULT-PWR1,subject_type=device",
        "firing",
        True,
        "保密室市电中断",
    ),
    (
        "rule=detector_battery,severity=minor,site=S01,subject=S01-R02-DET1,subject_type=device",
        "acknowledged",
        True,
        "battery 12%",
    ),
    (
        "rule=camera_offline,severity=major,site=S02,subject=S02-R01,subject_type=room",
        "firing",
        True,
        "S02-R01-CAM2 offline",
    ),
    (
        "rule=jammer_off,severity=critical,site=S02,subject=S02-R02,subject_type=room",
        "firing",
        True,
        "jammer off",
    ),
    (
        "rule=jammer_off,severity=critical,site=S02,subject=S02-R02,subject_type=room",
        "resolved",
        False,
        "jammer back on",
    ),
    (
        "rule=clock_skew,severity=warning,site=S03,subject=S03-ENT-GATE2,subject_type=device",
        "pending",
        True,
        "clock +2.4 s",
    ),
]
#: Worst active severity per site after the transitions above: S02's critical was resolved.
EXPECTED_STATUS = {"S01": 4, "S02": 3, "S03": 1}
READINESS = [
    ("site=S01,room=_site,paper=d1-chinese", True, "all rooms ready"),
    ("site=S02,room=_site,paper=d1-chinese", False, "R01: camera offline"),
    ("site=S03,room=_site,paper=d1-chinese", True, "all rooms ready"),
    ("site=S01,room=R01,paper=d1-chinese", True, "jammer on, 2 cameras recording"),
]


def rules_engine_stand_in(stack: Stack, drill: bool) -> None:
    """Test fixture: the alarm and readiness points the rules engine would write."""
    now = time.time_ns()
    extra = ",drill=true" if drill else ""
    lines = []
    for i, (tags, state, active, message) in enumerate(ALARMS):
        fields = f'state="{state}",active={str(active).lower()},message="{message}"'
        lines.append(f"alarm,{tags}{extra} {fields} {now - (len(ALARMS) - i) * 1_000_000}")
    for tags, go, detail in READINESS:
        lines.append(f'readiness,{tags}{extra} go={str(go).lower()},detail="{detail}" {now}')
    stack.influx.write("\n".join(lines).encode())


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
    assert sorted(r["rule"] for r in rows) == ["camera_offline", "clock_skew", "detector_battery", "power_lost"]
    now_ms = time.time_ns() // 1_000_000
    assert all(now_ms - 60_000 < r["time"] <= now_ms for r in rows), "the 'since' column is the alarm's own time"
    assert {r["state"] for r in rows} == {"firing", "acknowledged", "pending"}
