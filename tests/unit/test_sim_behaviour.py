"""Timetable-driven device behaviour, simulated time, and the drill's fault effects (no servers)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from drills import faults
from drills import scenario as sc
from examwatch import inventory, timetable
from examwatch.clock import DrillClock
from examwatch.kinds import KINDS
from examwatch.settings import load_settings
from simulators import behaviour, timetable_out
from simulators.behaviour import DeviceSim, SiteDay
from simulators.clock import check_span, start_day
from simulators.engine import Engine, Options
from simulators.readings import poisson

INV = inventory.load(Path("config/district.yaml"))
TT = timetable.load(Path("config/timetable.yaml"))
SITE = INV.sites[0]
DAY = SiteDay.build(TT, SITE)
CHINESE = next(p for p in TT.papers if p.id == "d1-chinese").start.timestamp()
ENGLISH = next(p for p in TT.papers if p.id == "d2-english")
MIN = 60.0


def dev(device_id: str) -> DeviceSim:
    return DeviceSim(INV.device_specs[device_id], SITE.id, 0.0)


def reports(device: DeviceSim, start: float, end: float, interval: int = 60) -> list[tuple[dict, list]]:
    rng = random.Random(7)
    return [behaviour.step(device, t, DAY, rng, interval) for t in range(int(start), int(end), interval)]


def test_jammers_on_from_15_minutes_before_each_paper_and_off_in_listening() -> None:
    assert not DAY.jammers_on(CHINESE - 15 * MIN - 1)
    assert DAY.jammers_on(CHINESE - 15 * MIN)
    assert DAY.jammers_on(CHINESE + 149 * MIN)
    assert not DAY.jammers_on(CHINESE + 150 * MIN)
    listening = ENGLISH.jammer_off[0]
    assert DAY.jammers_on(listening.start.timestamp() - 1)
    assert not DAY.jammers_on(listening.start.timestamp() + 60)
    assert DAY.jammers_on(listening.end.timestamp())


def test_jammer_reports_and_switch_events_follow_the_timetable() -> None:
    jam = dev("S01-R01-JAM1")
    out = reports(jam, CHINESE - 20 * MIN, CHINESE + 5 * MIN)
    on = [p["on"] for p, _ in out]
    assert on == [False] * 5 + [True] * 20
    assert all(v == -60 for v in out[0][0]["rf_dbm"].values())
    assert all(20 < v < 35 for v in out[-1][0]["rf_dbm"].values())
    events = [e for _, evs in out for e in evs]
    assert events == [{"ts": int((CHINESE - 15 * MIN) * 1000), "device": jam.id, "event": "switched", "on": True,
                       "by": "schedule"}]


def test_gate_passes_surge_before_the_paper_and_stop_when_it_starts() -> None:
    gate = dev("S01-ENT-GATE1")
    def passes(a: float, b: float) -> int:
        return sum(p["passes"] for p, _ in reports(gate, a, b))
    surge = passes(CHINESE - 60 * MIN, CHINESE - 15 * MIN)
    # 30 rooms x 30 candidates over 4 gates, 90 % of them in the surge.
    assert 150 < surge < 260
    assert passes(CHINESE - 15 * MIN, CHINESE) < surge / 3
    assert passes(CHINESE - 120 * MIN, CHINESE - 60 * MIN) == 0
    assert passes(CHINESE, CHINESE + 60 * MIN) == 0


def test_every_kind_validates_against_the_contract_through_a_day() -> None:
    for device_id in ("S01-ENT-GATE1", "S01-ENT-WTD1", "S01-R01-DET1", "S01-R01-JAM1", "S01-VAULT-CAM1",
                      "S01-VAULT-PWR1"):
        d = dev(device_id)
        kind = KINDS[d.spec.kind.value]
        for payload, events in reports(d, CHINESE - 75 * MIN, CHINESE + 30 * MIN):
            kind.telemetry_adapter.validate_json(json.dumps(payload))
            for ev in events:
                kind.event_adapter.validate_json(json.dumps(ev))


def test_power_stays_in_band_and_detector_batteries_drain() -> None:
    volts = [p["mains_v"] for p, _ in reports(dev("S01-VAULT-PWR1"), CHINESE - 4 * 3600, CHINESE)]
    assert all(209 <= v <= 231 for v in volts)
    assert 218 < sum(volts) / len(volts) < 222
    battery = [p["battery_pct"] for p, _ in reports(dev("S01-R01-DET1"), CHINESE - 2 * 3600, CHINESE + 3600)]
    assert battery == sorted(battery, reverse=True)
    assert 70 < battery[-1] < 90


def test_poisson_mean() -> None:
    rng = random.Random(3)
    for lam in (0.5, 4.0, 80.0):
        mean = sum(poisson(rng, lam) for _ in range(4000)) / 4000
        assert mean == pytest.approx(lam, rel=0.08)


def test_compressed_clock_maps_both_ways_and_shifts_the_day_to_now() -> None:
    clock, shifted = start_day(TT, "d1-chinese", timedelta(minutes=75), 60, real_clock=False)
    paper = next(p for p in shifted.papers if p.id == "d1-chinese")
    assert paper.start.timestamp() - clock.start == pytest.approx(75 * MIN)
    assert clock.at_wall(clock.wall_start + 10) == pytest.approx(clock.start + 600)
    assert clock.wall_at(clock.at_wall(clock.wall_start + 3.5)) == pytest.approx(clock.wall_start + 3.5)
    same, unshifted = start_day(TT, None, timedelta(0), 1, real_clock=True)
    assert unshifted is TT
    assert same.speed == 1


def test_a_span_too_far_ahead_of_the_wall_clock_is_refused() -> None:
    assert check_span(8 * 3600, 60, 86_400) is None
    problem = check_span(4 * 86_400, 100, 86_400)
    assert problem is not None
    assert "max_clock_offset_s" in problem
    assert check_span(4 * 86_400, 1, 86_400) is None  # real time never runs ahead


def _effect_payloads(fault: sc.Fault, device_id: str, start: float) -> list[dict | bytes]:
    engine = Engine(load_settings(None, mode="demo"), INV, TT, DrillClock(start, start), Options(interval_s=60))
    faults.install(fault, engine, start, start + 300)
    eff = engine.devices[device_id].effects[0]
    payload, _ = behaviour.step(engine.devices[device_id], start, DAY, random.Random(1), 60)
    return [eff.telemetry(payload, start + 60), *eff.events(payload, True), *eff.events(payload, False)]


def test_fault_effects_change_what_the_device_sends() -> None:
    t = CHINESE + 20 * MIN
    mains = sc.MainsLost(device="S01-VAULT-PWR1", at=timedelta(0), duration=timedelta(minutes=5))
    sent, lost, back = _effect_payloads(mains, "S01-VAULT-PWR1", t)
    assert isinstance(sent, dict)
    assert (sent["mains_v"], sent["on_ups"], lost["lost"], back["lost"]) == (0.0, True, True, False)
    band = sc.BandDown(device="S01-R01-JAM1", band="n41", at=timedelta(0), duration=timedelta(minutes=5))
    sent = _effect_payloads(band, "S01-R01-JAM1", t)[0]
    assert isinstance(sent, dict)
    assert sent["rf_dbm"]["n41"] == 0
    assert sent["rf_dbm"]["n78"] > 20
    bug = sc.Malformed(device="S01-R01-CAM1", style="nan", at=timedelta(0), duration=timedelta(minutes=5))
    raw = _effect_payloads(bug, "S01-R01-CAM1", t)[0]
    assert isinstance(raw, bytes)
    assert b"NaN" in raw


def test_a_shifted_timetable_is_written_as_a_file_that_loads_back(tmp_path: Path) -> None:
    _, shifted = start_day(TT, None, timedelta(minutes=75), 1, real_clock=False)
    path = tmp_path / "drill-timetable.yaml"
    timetable_out.dump(shifted, path)
    assert timetable.load(path) == shifted
