"""Timetable-driven device behaviour, simulated time, and the drill's fault effects (no servers)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from drills import faults
from drills import scenario as sc
from drills.plan import FaultPlan, build
from examwatch import inventory, timetable
from examwatch.kinds import KINDS
from simulators import behaviour, timetable_out
from simulators.behaviour import DeviceSim, SiteDay
from simulators.clock import check_span, start_day
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


def _plan_fault(tmp_path: Path, fault: str) -> FaultPlan:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\ntitle: t\npaper: d2-physics\nfaults:\n  - {fault}\n")
    return build(sc.load(path, INV, TT), INV, TT, 1.0).faults[0]


def _effect_payloads(tmp_path: Path, fault: str, speed: float = 1.0) -> tuple[FaultPlan, list[dict | bytes]]:
    """What the faulty device sends a minute into the fault, and its events at both edges."""
    fp = _plan_fault(tmp_path, fault)
    eff = faults.effect(fp, speed)
    device = DeviceSim(INV.device_specs[fp.subject], fp.site, 0.0)
    payload, _ = behaviour.step(device, fp.start, SiteDay.build(TT, INV.site(fp.site)), random.Random(1), 60)
    return fp, [eff.telemetry(payload, fp.start + 60), *eff.events(payload, True), *eff.events(payload, False)]


def test_fault_effects_change_what_the_device_sends(tmp_path: Path) -> None:
    _, (sent, lost, back) = _effect_payloads(
        tmp_path, "{type: mains_lost, device: S01-VAULT-PWR1, at: '10:00', for: 40m, drain_pct_per_min: 2}")
    assert isinstance(sent, dict)
    assert isinstance(lost, dict)
    assert isinstance(back, dict)
    assert (sent["mains_v"], sent["on_ups"], lost["lost"], back["lost"]) == (0.0, True, True, False)
    # a minute at 2 %/min: 98 % left, 49 minutes at that rate
    assert (sent["ups_battery_pct"], sent["ups_minutes_left"]) == (98.0, 49.0)
    _, (sent, *_) = _effect_payloads(tmp_path, "{type: band_down, device: S01-R01-JAM1, band: n41, at: '08:10', "
                                               "for: 5m}")
    assert isinstance(sent, dict)
    assert sent["rf_dbm"]["n41"] == 0
    assert sent["rf_dbm"]["n78"] > 20
    _, (raw, *_) = _effect_payloads(tmp_path, "{type: malformed, device: S01-R01-CAM1, style: nan, at: '08:10', "
                                              "for: 5m}")
    assert isinstance(raw, bytes)
    assert b"NaN" in raw


def test_a_jammer_switched_off_reports_off_and_says_so(tmp_path: Path) -> None:
    fp, (sent, off, on) = _effect_payloads(tmp_path, "{type: jammer_off, device: S01-R01-JAM1, at: '08:10', for: 5m}")
    assert isinstance(sent, dict)
    assert sent["on"] is False
    assert all(v == -60 for v in sent["rf_dbm"].values())
    assert (off["event"], off["on"], off["by"], on["on"]) == ("switched", False, "manual", True)
    # held off at its window's start: no "switched off" (it never came on), and the schedule's
    # "switched on" is not sent while the fault lasts
    fp, (sent, on) = _effect_payloads(tmp_path, "{type: jammer_not_on, device: S01-R01-JAM1, at: '07:45', for: 5m}")
    assert on["on"] is True
    eff = faults.effect(fp, 1.0)
    scheduled = [{"event": "switched", "on": True, "by": "schedule"}, {"event": "other"}]
    assert eff.filter_events(scheduled) == [{"event": "other"}]


@pytest.mark.parametrize(("kind", "field", "value"),
                         [("tamper", "tamper", True), ("video_loss", "video_loss", True),
                          ("recording_stopped", "recording", False)])
def test_camera_faults_set_their_field_and_alert(tmp_path: Path, kind: str, field: str, value: bool) -> None:
    _, (sent, begins, ends) = _effect_payloads(tmp_path, f"{{type: {kind}, device: S01-VAULT-CAM1, at: '12:00', "
                                                         "for: 5m}")
    assert isinstance(sent, dict)
    assert sent[field] is value
    assert (begins["alert"], begins["active"], ends["active"]) == (kind, True, False)
    KINDS["camera"].event_adapter.validate_json(json.dumps(begins))


def test_face_match_surge_holds_its_share_at_its_pass_rate(tmp_path: Path) -> None:
    fp = _plan_fault(tmp_path, "{type: face_match_surge, device: S01-ENT-GATE1, share: 0.3, passes_per_min: 6, "
                               "at: '07:50', for: 20m}")
    eff = faults.effect(fp, 1.0)
    gate = DeviceSim(INV.device_specs["S01-ENT-GATE1"], "S01", 0.0)
    day = SiteDay.build(TT, SITE)
    rng = random.Random(2)
    sent = [eff.telemetry(behaviour.step(gate, fp.start + n * 30, day, rng, 30)[0], fp.start + n * 30)
            for n in range(200)]
    passes = sum(p["passes"] for p in sent if isinstance(p, dict))
    failures = sum(p["face_match_failures"] for p in sent if isinstance(p, dict))
    assert passes == pytest.approx(200 * 3, rel=0.15)  # 6 a minute, 30 s reports
    assert failures / passes == pytest.approx(0.3, abs=0.06)


def test_clock_skew_scales_with_a_compressed_clock(tmp_path: Path) -> None:
    fault = "{type: clock_skew, device: S01-R01-CAM1, offset: +10s, at: '12:00', for: 5m}"
    fp, (sent, *_) = _effect_payloads(tmp_path, fault)
    _, (fast, *_) = _effect_payloads(tmp_path, fault, speed=60)
    assert isinstance(sent, dict)
    assert isinstance(fast, dict)
    assert sent["ts"] - int(fp.start * 1000) == 10_001  # a millisecond off the report grid
    assert fast["ts"] - int(fp.start * 1000) == 600_001


def test_a_shifted_timetable_is_written_as_a_file_that_loads_back(tmp_path: Path) -> None:
    _, shifted = start_day(TT, None, timedelta(minutes=75), 1, real_clock=False)
    path = tmp_path / "drill-timetable.yaml"
    timetable_out.dump(shifted, path)
    assert timetable.load(path) == shifted
