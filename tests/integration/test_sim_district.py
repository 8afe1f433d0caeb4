"""A compressed exam morning for 3 sites, through real mosquitto, ingest and InfluxDB."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from harness.stack import EXAMWATCH, Stack

INTERVAL = 60  # simulated seconds between reports
MIN = 60_000   # ms


def simulate(stack: Stack, tmp: Path, *args: str) -> dict:
    stats = tmp / "stats.json"
    subprocess.run(
        [EXAMWATCH, "simulate", "--config", str(stack.config), "--quiet", "--stats", str(stats), *args],
        check=True, timeout=120,
    )
    return json.loads(stats.read_text())


def test_compressed_exam_morning_has_the_timetable_shape(stack: Stack, tmp_path: Path) -> None:
    stack.start_ingest()
    # 07:45 to 09:15 of gaokao day 1 (语文 at 09:00), 300 times faster: 18 s of wall time.
    run = simulate(stack, tmp_path, "--speed", "300", "--interval", str(INTERVAL), "--duration", "90",
                   "--lead", "75")
    devices = len(stack.inventory.devices)
    assert run["devices"] == devices == 75
    assert run["dropped"] == 0
    assert run["reports"] == devices * 90
    start = int(run["clock"]["first_paper_start"] * 1000)
    for kind in ("gate", "jammer", "detector", "camera", "power"):
        per_device = len([d for d in stack.inventory.devices.values() if d.kind == kind])
        stack.wait_count(kind, per_device * 90, timeout=30)

    jam = stack.influx.rows('SELECT "on", "rf_dbm_n78" FROM "jammer"')
    before = [r for r in jam if r["time"] < start - 15 * MIN]
    during = [r for r in jam if start - 15 * MIN <= r["time"]]
    assert before
    assert during
    assert not any(r["on"] for r in before), "a jammer was on more than 15 min before the paper"
    assert all(r["on"] and r["rf_dbm_n78"] > 20 for r in during), "a jammer was off from 15 min before the paper"

    gate = stack.influx.rows('SELECT "passes", "face_match_failures" FROM "gate"')
    surge = sum(r["passes"] for r in gate if start - 60 * MIN <= r["time"] < start - 15 * MIN)
    early = sum(r["passes"] for r in gate if r["time"] < start - 60 * MIN)
    after = sum(r["passes"] for r in gate if r["time"] >= start)
    # 3 exam rooms of 30 candidates per site, 90 % of them in the surge.
    assert 150 < surge < 330, surge
    assert early == 0
    assert after == 0

    power = stack.influx.rows('SELECT "mains_v" FROM "power"')
    assert all(209 <= r["mains_v"] <= 231 for r in power)
    battery = stack.influx.rows('SELECT first("battery_pct"), last("battery_pct") FROM "detector" GROUP BY "device"')
    assert len(battery) == 9
    assert all(b["last"] < b["first"] for b in battery), "handheld batteries did not drain"
    cams = stack.influx.rows('SELECT min("fps"), max("fps") FROM "camera"')[0]
    assert 24 < cams["min"] <= cams["max"] < 26
    switched = stack.influx.rows('SELECT "on" FROM "jammer_event"')
    assert len(switched) == 12
    assert all(r["on"] for r in switched)
