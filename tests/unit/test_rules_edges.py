"""Timetable edges on the shipped rules, fed by the simulator's own devices: no false alarm at T−15,
paper start, listening start and end, paper end; a jammer really off is still caught at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examwatch.timetable import Timetable
from harness.rules_kit import FakeClock, SimDay, alarms, shipped_engine, timetable, transitions
from rules.engine import Engine
from rules.types._base import observe
from rules.types.timetable import GRACE_MARGIN_S

INTERVAL = 30  # s between a device's reports, as exam-day jammers send them
START_IN = 1200  # the paper starts 20 minutes after the engine: T−15 falls 5 minutes in
LISTENING = (300.0, 600.0)  # jammers off from 5 to 10 minutes into the paper
LENGTH = 1500
JAM = "S02-R01-JAM1"


def day(tmp_path: Path, **kw: Any) -> tuple[Engine, FakeClock, Timetable, float]:
    clock = FakeClock(1_780_000_000.0)
    tt = timetable(clock.now, start_in_s=START_IN, length_s=LENGTH, off=LISTENING)
    return shipped_engine(tmp_path, clock, tt, **kw), clock, tt, tt.papers[0].start.timestamp()


def edges(start: float) -> dict[str, float]:
    return {"T-15": start - 900, "paper start": start, "listening start": start + LISTENING[0],
            "listening end": start + LISTENING[1], "paper end": start + LENGTH}


def test_healthy_devices_raise_nothing_at_any_edge(tmp_path: Path) -> None:
    eng, clock, _tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    sim.run(start + LENGTH + 120)
    assert sim.reports > 75 * (START_IN + LENGTH) // INTERVAL
    assert alarms(eng.store) == []
    with eng.store.connect() as conn:
        sites = conn.exec_driver_sql("SELECT site, go, detail FROM readiness WHERE room = '_site'").all()
    assert sorted((site, bool(go)) for site, go, _ in sites) == [("S01", True), ("S02", True), ("S03", True)]


@pytest.mark.parametrize("lag_s", [5.0, 20.0], ids=["lag-5s", "lag-20s"])
def test_every_report_late_still_raises_nothing(tmp_path: Path, lag_s: float) -> None:
    """Reports made before an edge and received after it (a backlog, a compressed drill clock
    where 80 ms of transport is 5 s of clock) are not judged against the window."""
    eng, clock, _tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL, delay_s=lag_s)
    sim.run(start + LISTENING[1] + 120)
    assert alarms(eng.store) == []


def test_a_jammer_left_off_is_caught_at_its_first_report_in_every_window(tmp_path: Path) -> None:
    eng, clock, _tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    sim.over[JAM] = lambda p, _t: {**p, "on": False, "rf_dbm": dict.fromkeys(p["rf_dbm"], -60.0)}
    sim.run(start + LENGTH + 120)
    got = alarms(eng.store)
    assert {(a["rule"], a["subject"]) for a in got} == {("jammer_shielding", JAM)}
    first, again = got  # one per jammer window: from T−15 to the listening, and after it to the end
    grace = INTERVAL + max(GRACE_MARGIN_S, INTERVAL / 2) + 2
    at = edges(start)
    assert at["T-15"] < first["opened_ns"] / 1e9 <= at["T-15"] + INTERVAL + 2 + 0.1 < at["T-15"] + grace + 5
    assert at["listening end"] < again["opened_ns"] / 1e9 <= at["listening end"] + INTERVAL + 2 + 0.1
    steps = [(t["state"], t["severity"], t["message"]) for t in transitions(eng.store)]
    assert [(state, sev) for state, sev, _ in steps] == [("firing", "critical"), ("resolved", "critical")] * 2
    assert all("switched off" in m for state, _, m in steps if state == "firing")
    assert all("no paper requires it now" in m for state, _, m in steps if state == "resolved")


def test_a_jammer_silent_from_t_minus_15_is_not_reporting_not_switched_off(tmp_path: Path) -> None:
    eng, clock, _tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    t15 = edges(start)["T-15"]
    sim.over[JAM] = lambda p, t: None if t >= t15 - 5 else p  # its last report: within 35 s before T−15
    sim.run(t15 + 20)
    assert alarms(eng.store, "rule = 'jammer_shielding'") == []  # not yet: its grace runs
    sim.run(t15 + 90)
    (shielding,) = alarms(eng.store, "rule = 'jammer_shielding'")  # still firing: its message is the opening one
    grace = INTERVAL + max(GRACE_MARGIN_S, INTERVAL / 2) + 2
    assert shielding["subject"] == JAM
    assert "not reporting since shielding became required" in shielding["message"]
    assert "switched off" not in shielding["message"]
    assert shielding["opened_ns"] / 1e9 == pytest.approx(t15 + grace, abs=1.5)
    assert [a["subject"] for a in alarms(eng.store, "rule = 'jammer_offline'")] == [JAM]  # absence speaks too
    assert {a["rule"] for a in alarms(eng.store)} == {"jammer_shielding", "jammer_offline"}


def test_a_site_dark_at_t_minus_15_raises_its_silence_not_one_alarm_per_jammer(tmp_path: Path) -> None:
    eng, clock, _tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    t15 = edges(start)["T-15"]
    for s in sim.sims:
        if s.site == "S03":
            sim.over[s.id] = lambda p, t: None if t >= t15 - 20 else p
    sim.run(t15 + 150)
    assert {(a["rule"], a["subject"]) for a in alarms(eng.store)} == {("site_silent", "S03")}


def test_storage_room_cameras_are_watched_at_night_exam_room_cameras_in_papers(tmp_path: Path) -> None:
    clock = FakeClock(1_780_000_000.0)
    tt = timetable(clock.now, start_in_s=8 * 3600)  # the night before: no paper for eight hours
    eng = shipped_engine(tmp_path, clock, tt)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    sim.over["S01-VAULT-CAM1"] = lambda p, _t: {**p, "tamper": True}
    sim.over["S01-R01-CAM1"] = lambda p, _t: {**p, "tamper": True, "video_loss": True, "recording": False}
    sim.run(clock.now + 120)
    assert {(a["rule"], a["subject"], a["severity"]) for a in alarms(eng.store)} == {
        ("vault_camera_tamper", "S01-VAULT-CAM1", "major")}
    del sim.over["S01-VAULT-CAM1"]
    sim.over["S01-VAULT-CAM2"] = lambda p, _t: {**p, "recording": False}
    sim.run(clock.now + 120)
    got = {(a["rule"], a["subject"], a["state"]) for a in alarms(eng.store)}
    assert got == {("vault_camera_tamper", "S01-VAULT-CAM1", "resolved"),
                   ("vault_camera_not_recording", "S01-VAULT-CAM2", "firing")}


def test_an_exam_room_camera_fault_is_judged_once_the_paper_is_on(tmp_path: Path) -> None:
    eng, clock, _tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    sim.over["S01-R01-CAM1"] = lambda p, _t: {**p, "tamper": True}
    sim.run(start - 60)
    assert alarms(eng.store) == []
    sim.run(start + INTERVAL + 5)
    (a,) = alarms(eng.store)
    assert (a["rule"], a["subject"]) == ("camera_tamper", "S01-R01-CAM1")
    assert start + 2 <= a["opened_ns"] / 1e9 <= start + INTERVAL + 2.1


def test_a_room_whose_cameras_stop_recording_at_paper_start_is_unwatched(tmp_path: Path) -> None:
    eng, clock, _tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    for cam in ("S01-R02-CAM1", "S01-R02-CAM2"):
        sim.over[cam] = lambda p, t: {**p, "recording": t < start}
    sim.run(start + 2 * INTERVAL)
    got = {(a["rule"], a["subject"]) for a in alarms(eng.store)}
    assert got == {("room_recording", "S01-R02"), ("camera_not_recording", "S01-R02-CAM1"),
                   ("camera_not_recording", "S01-R02-CAM2")}


def test_a_restart_at_t_minus_15_judges_no_stale_report(tmp_path: Path) -> None:
    eng, clock, tt, start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    t15 = edges(start)["T-15"]
    sim.run(t15 - 1)
    again = shipped_engine(tmp_path / "b", clock, tt)  # a new engine on a new store: knows nothing
    sim.eng, sim.intake.world = again, again.world
    sim.run(t15 + 3 * INTERVAL)
    assert alarms(again.store) == []


def test_an_engine_started_in_a_window_gives_each_jammer_its_grace_from_its_own_start(tmp_path: Path) -> None:
    """Started mid-paper, the engine hears each device's "online" first and its report up to one
    interval later: nobody was listening before it started, so nobody is late yet."""
    clock = FakeClock(1_780_000_000.0)
    tt = timetable(clock.now, start_in_s=-600, length_s=LENGTH)  # the paper began 10 minutes ago
    eng = shipped_engine(tmp_path, clock, tt)
    for dev in eng.world.devices:
        eng.handle(observe(eng.world, dev, clock.now, online=True))
    sim = SimDay(eng, clock, interval_s=INTERVAL)
    sim.run(clock.now + 3 * INTERVAL)
    assert alarms(eng.store) == []


def test_a_site_back_from_a_network_cut_raises_nothing_for_its_devices(tmp_path: Path) -> None:
    """A site's network comes back: its devices report again at their own phases, and one of each
    kind loses its first report after the return (one lost report is within every device's own
    timeout). Each is judged on its own timeout from the return, not on the site's 30 s."""
    eng, clock, _tt, _start = day(tmp_path)
    sim = SimDay(eng, clock, interval_s=INTERVAL, delay_s=0.5)
    cut, back = clock.now + 60, clock.now + 660  # between papers: nothing else is required
    losing = {s.spec.kind: s.id for s in sim.sims if s.site == "S03"}  # one device of each kind
    for s in sim.sims:
        if s.site == "S03":
            gap_end = back + INTERVAL if s.id in losing.values() else back
            sim.over[s.id] = lambda p, t, end=gap_end: None if cut <= t < end else p
    sim.run(back + 300)
    got = alarms(eng.store)
    assert [(a["rule"], a["subject"], a["state"]) for a in got] == [("site_silent", "S03", "resolved")]
