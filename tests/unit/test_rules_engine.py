"""The engine on a fake clock and a real SQLite store: each rule's behaviour end to end, without servers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from examwatch.inventory import Inventory
from examwatch.rulebook.configs import RatioConfig
from examwatch.store import lifecycle
from harness.rules_kit import (
    TEST_RULES,
    FakeClock,
    alarms,
    beat,
    engine,
    healthy,
    inventory,
    ruleset,
    timetable,
    transitions,
)
from rules.engine import Engine
from rules.intake import Intake
from rules.model import Refusal
from rules.types import ratio
from rules.types._base import observe
from rules.world import World

JAM = "S01-R01-JAM1"
JAM_KEY = JAM.replace("-", "_")
INTAKE_RULES = {
    **TEST_RULES,
    "site": [
        *TEST_RULES["site"],
        {"name": "payload_rejected", "type": "intake", "refused": "payload", "clear_after_s": 10},
        {"name": "unknown_device", "type": "intake", "refused": "unknown_device", "clear_after_s": 10},
    ],
}


def advance(eng: Engine, clock: FakeClock, seconds: float, step: float = 0.5, **kw: object) -> None:
    """Let time pass with every device (but kw's ``skip``) reporting each ``step``."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        beat(eng, clock.now, **kw)  # type: ignore[arg-type]
        eng.run_due()
    eng.commit()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


def low_band(eng: Engine, dbm: float = 5.0) -> dict[str, object]:
    bands = eng.world.specs[JAM].bands
    return {"rf_dbm": {b: (dbm if i == 0 else 27.0) for i, b in enumerate(bands)}}


def test_jammer_band_drop_during_paper_is_critical(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=-60))
    advance(eng, clock, 1)
    advance(eng, clock, 1, **{JAM_KEY: low_band(eng)})
    got = alarms(eng.store, "rule = 'jammer_shielding'")
    assert [(a["subject"], a["severity"], a["state"]) for a in got] == [(JAM, "critical", "firing")]
    assert "n28 5 dBm < 20" in got[0]["message"]
    advance(eng, clock, 1)
    assert alarms(eng.store, "rule = 'jammer_shielding'")[0]["state"] == "resolved"


def test_jammer_band_drop_outside_paper_raises_nothing(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    advance(eng, clock, 2, **{JAM_KEY: {"on": False}})
    assert alarms(eng.store, "rule = 'jammer_shielding'") == []


def test_jammer_required_from_15_minutes_before_and_not_in_listening(
    tmp_path: Path, clock: FakeClock
) -> None:
    # the paper starts in 10 min (jammers already required); listening 10-12 min from now is exempt
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=600, off=(0, 120)))
    advance(eng, clock, 1, **{JAM_KEY: {"on": False}})
    assert len(alarms(eng.store, "rule = 'jammer_shielding' AND active")) == 1
    eng2 = engine(tmp_path / "b", FakeClock(clock.now), timetable(clock.now, start_in_s=-30, off=(0, 120)))
    advance(eng2, eng2.clock, 1, **{JAM_KEY: {"on": False}})  # type: ignore[arg-type]
    assert alarms(eng2.store, "rule = 'jammer_shielding'") == []


def test_silent_device_goes_offline_then_recovers(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    advance(eng, clock, 1)
    advance(eng, clock, 2.5, skip={JAM})
    assert alarms(eng.store, "rule = 'jammer_offline'") == []
    advance(eng, clock, 1, skip={JAM})
    got = alarms(eng.store, "rule = 'jammer_offline'")
    assert [(a["subject"], a["state"]) for a in got] == [(JAM, "firing")]
    advance(eng, clock, 1)
    assert alarms(eng.store, "rule = 'jammer_offline'")[0]["state"] == "resolved"
    assert [t["state"] for t in transitions(eng.store) if t["rule"] == "jammer_offline"] == [
        "firing",
        "resolved",
    ]


def test_last_will_takes_a_device_offline_at_once(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    advance(eng, clock, 1)
    eng.handle(observe(eng.world, JAM, clock.now, online=False))
    eng.commit()
    got = alarms(eng.store, "rule = 'jammer_offline'")
    assert [(a["subject"], a["state"]) for a in got] == [(JAM, "firing")]
    assert "Last Will" in got[0]["message"]


def test_silent_site_raises_one_alarm_and_suppresses_children(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    advance(eng, clock, 1)
    advance(eng, clock, 6, sites={"S01", "S03"})  # S02 falls silent
    s02 = alarms(eng.store, "site = 'S02'")
    assert [(a["rule"], a["subject"], a["subject_type"], a["severity"]) for a in s02] == [
        ("site_silent", "S02", "site", "critical")
    ]
    assert alarms(eng.store, "site IN ('S01', 'S03')") == []
    # the site returns, but one camera stays silent: the site alarm resolves, the camera's is released
    # and fires once its own timeout (3 s) has passed since the site's return
    cam = "S02-R01-CAM1"
    advance(eng, clock, 2.5, skip={cam})
    assert alarms(eng.store, "rule = 'camera_offline'") == []
    advance(eng, clock, 1.5, skip={cam})
    s02 = {a["rule"]: a for a in alarms(eng.store, "site = 'S02'")}
    assert s02["site_silent"]["state"] == "resolved"
    assert (s02["camera_offline"]["subject"], s02["camera_offline"]["state"]) == (cam, "firing")
    assert len(alarms(eng.store, "site = 'S02' AND rule != 'site_silent'")) == 1


def test_last_wills_of_a_dark_site_are_suppressed(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    advance(eng, clock, 1)
    advance(eng, clock, 2, sites={"S01", "S03"})  # S02 dark for 2 s: its site alarm is up (1.5 s)
    for dev, ref in eng.world.devices.items():  # then the broker publishes its devices' Last Wills
        if ref.site == "S02":
            eng.handle(observe(eng.world, dev, clock.now, online=False))
    advance(eng, clock, 2, sites={"S01", "S03"})
    assert [(a["rule"], a["subject"]) for a in alarms(eng.store, "site = 'S02'")] == [("site_silent", "S02")]
    # the site returns without one camera, whose Last Will stands: released as its own alarm
    cam = "S02-R01-CAM1"
    advance(eng, clock, 4, skip={cam})
    got = {a["rule"]: a for a in alarms(eng.store, "site = 'S02'")}
    assert got["site_silent"]["state"] == "resolved"
    assert (got["camera_offline"]["subject"], got["camera_offline"]["state"]) == (cam, "firing")
    assert len(got) == 2


def test_hysteresis_does_not_flap(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    for i in range(20):  # oscillates between 66 and 75: above 70 fires, clears only below 65
        advance(eng, clock, 0.5, **{JAM_KEY: {"temperature_c": 75.0 if i % 2 else 66.0}})
    got = alarms(eng.store, "rule = 'jammer_hot'")
    assert [(a["state"], a["severity"]) for a in got] == [("firing", "minor")]
    advance(eng, clock, 0.5, **{JAM_KEY: {"temperature_c": 90.0}})
    advance(eng, clock, 0.5, **{JAM_KEY: {"temperature_c": 60.0}})
    got = alarms(eng.store, "rule = 'jammer_hot'")
    assert [a["state"] for a in got] == ["resolved"]
    states = [(t["state"], t["severity"]) for t in transitions(eng.store) if t["rule"] == "jammer_hot"]
    assert states == [("firing", "minor"), ("firing", "major"), ("resolved", "major")]


def test_pending_then_firing_after_for(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    det = "S01-R01-DET1"
    advance(eng, clock, 1, **{det.replace("-", "_"): {"battery_pct": 10.0}})
    assert alarms(eng.store, "rule = 'detector_battery_low'")[0]["state"] == "pending"
    advance(eng, clock, 2, **{det.replace("-", "_"): {"battery_pct": 10.0}})
    assert alarms(eng.store, "rule = 'detector_battery_low'")[0]["state"] == "firing"


def test_storage_power_loss_is_critical_at_any_hour(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    advance(eng, clock, 1, S01_VAULT_PWR1={"mains_v": 0.0, "on_ups": True})
    got = alarms(eng.store, "rule = 'power_mains_lost'")
    assert [(a["subject"], a["severity"], a["state"]) for a in got] == [
        ("S01-VAULT-PWR1", "critical", "firing")
    ]


def test_drill_data_marks_the_alarm_as_drill(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    advance(eng, clock, 1)
    eng.handle(observe(eng.world, "S01-VAULT-PWR1", clock.now, drill=True, mains_v=0.0, on_ups=True))
    eng.commit()
    assert [bool(a["drill"]) for a in alarms(eng.store, "rule = 'power_mains_lost'")] == [True]


def test_a_drilled_network_cut_raises_and_clears_a_drill_site_alarm(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    site = {d: ref for d, ref in eng.world.devices.items() if ref.site == "S02"}

    def drill_beat() -> None:
        for dev, ref in site.items():
            eng.handle(observe(eng.world, dev, clock.now, drill=True, **healthy(ref.kind, eng.world.specs[dev].bands)))

    advance(eng, clock, 1)
    drill_beat()  # the drill's data: every S02 device's last report is drill-tagged
    advance(eng, clock, 2, sites={"S01", "S03"})
    got = alarms(eng.store, "rule = 'site_silent'")
    assert [(a["subject"], a["state"], bool(a["drill"])) for a in got] == [("S02", "firing", True)]
    drill_beat()
    eng.run_due()
    eng.commit()
    assert [a["state"] for a in alarms(eng.store, "rule = 'site_silent'")] == ["resolved"]


@pytest.mark.parametrize("out_drill", [True, False], ids=["drill-out-real-back", "real-out-drill-back"])
def test_a_silence_clears_as_it_was_raised_whatever_comes_back_first(
        tmp_path: Path, clock: FakeClock, out_drill: bool) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    site = {d: ref for d, ref in eng.world.devices.items() if ref.site == "S02"}

    def s02_beat(drill: bool) -> None:
        for dev, ref in site.items():
            eng.handle(observe(eng.world, dev, clock.now, drill=drill, **healthy(ref.kind, eng.world.specs[dev].bands)))

    advance(eng, clock, 1)
    s02_beat(out_drill)
    advance(eng, clock, 2, sites={"S01", "S03"})
    got = alarms(eng.store, "rule = 'site_silent'")
    assert [(a["state"], bool(a["drill"])) for a in got] == [("firing", out_drill)]
    s02_beat(not out_drill)  # the first data back is of the other kind: it still ends the silence
    eng.run_due()
    eng.commit()
    assert [a["state"] for a in alarms(eng.store, "rule = 'site_silent'")] == ["resolved"]


def test_an_offline_device_clears_as_it_was_raised(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    advance(eng, clock, 1)
    eng.handle(observe(eng.world, JAM, clock.now, drill=True, **healthy("jammer", eng.world.specs[JAM].bands)))
    advance(eng, clock, 8, skip={JAM})
    got = alarms(eng.store, "rule = 'jammer_offline'")
    assert [(a["state"], bool(a["drill"])) for a in got] == [("firing", True)]
    advance(eng, clock, 1)  # real data back first
    assert [a["state"] for a in alarms(eng.store, "rule = 'jammer_offline'")] == ["resolved"]


def test_drill_is_judged_apart_from_real_data(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    pwr = "S01-VAULT-PWR1"
    for _ in range(4):  # the drill injects a power cut while the real sensor keeps reporting mains
        clock.now += 0.5
        eng.handle(observe(eng.world, pwr, clock.now, drill=True, mains_v=0.0, on_ups=True))
        beat(eng, clock.now)
        eng.run_due()
    eng.commit()
    got = alarms(eng.store, "rule = 'power_mains_lost'")
    assert [(bool(a["drill"]), a["state"]) for a in got] == [(True, "firing")], "no flapping, no real alarm"
    advance(eng, clock, 1, S01_VAULT_PWR1={"mains_v": 0.0})  # a real cut during the drill: its own alarm
    got = alarms(eng.store, "rule = 'power_mains_lost'")
    assert [(bool(a["drill"]), a["state"]) for a in got] == [(True, "firing"), (False, "firing")]
    eng.handle(observe(eng.world, pwr, clock.now, drill=True, mains_v=220.0, on_ups=False))  # drill over
    eng.commit()
    assert [a["state"] for a in alarms(eng.store, "rule = 'power_mains_lost'")] == ["resolved", "firing"]


def test_coverage_gap_during_a_paper(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=-60))
    advance(eng, clock, 1)
    advance(eng, clock, 4, skip={JAM})
    got = alarms(eng.store, "rule = 'room_coverage'")
    assert [(a["subject"], a["subject_type"], a["severity"]) for a in got] == [
        ("S01-R01", "room", "critical")
    ]
    assert "no reporting jammer" in got[0]["message"]


def test_ratio_gate_surge(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    advance(eng, clock, 2, S01_ENT_GATE1={"passes": 10, "face_match_failures": 4})
    got = alarms(eng.store, "rule = 'gate_surge'")
    assert [(a["subject"], a["state"]) for a in got] == [("S01-ENT-GATE1", "firing")]


def test_ratio_surge_clears_when_failures_stop_even_with_few_passes() -> None:
    cfg = RatioConfig(name="surge", type="ratio", numerator="face_match_failures", denominator="passes",
                      window_s=10, above=0.2, clear_below=0.1, min_denominator=20)
    active, window, found = ratio.evaluate(cfg, False, [], 0, num=10, den=25)
    assert active
    assert found is not None
    assert found.active
    active, window, found = ratio.evaluate(cfg, True, window, 5, num=1, den=2)  # too few passes to judge
    assert active
    assert found is None
    active, window, found = ratio.evaluate(cfg, True, window, 12, num=0, den=2)  # the surge aged out
    assert not active
    assert found is not None
    assert not found.active
    no_floor = cfg.model_copy(update={"min_denominator": 0})
    active, _, found = ratio.evaluate(no_floor, True, [], 30, num=0, den=0)  # no passes at all, no failures left
    assert not active
    assert found is not None


def test_clock_skew_warning(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600))
    eng.handle(observe(eng.world, JAM, clock.now, ts_s=clock.now - 3, on=True))
    eng.commit()
    assert alarms(eng.store, "rule = 'jammer_clock'") == []  # one late report may be transport, not clock
    eng.handle(observe(eng.world, JAM, clock.now + 5, ts_s=clock.now + 2, on=True))
    eng.commit()
    assert [a["severity"] for a in alarms(eng.store, "rule = 'jammer_clock'")] == ["warning"]


def test_readiness_at_t_minus_30(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=1800 + 2))
    advance(eng, clock, 1, S01_R01_CAM1={"recording": False})
    with eng.store.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM readiness").scalar() == 0
    advance(eng, clock, 2, S01_R01_CAM1={"recording": False})
    with eng.store.connect() as conn:
        rows = {(r.site, r.room): r for r in conn.exec_driver_sql("SELECT * FROM readiness")}
    assert not rows[("S01", "_site")].go
    assert "S01-R01-CAM1 not recording" in rows[("S01", "_site")].detail
    assert (rows[("S01", "R01")].go, rows[("S01", "R02")].go) == (False, True)
    assert rows[("S02", "_site")].go
    advance(eng, clock, 2)
    with eng.store.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM readiness WHERE room = '_site'").scalar() == 3


def test_acknowledge_and_resolve_keep_who_when_why(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    advance(eng, clock, 1, S01_VAULT_PWR1={"mains_v": 0.0})
    (alarm,) = lifecycle.list_alarms(eng.store)
    lifecycle.acknowledge(eng.store, alarm.id, "王老师", "called the power bureau")
    with pytest.raises(lifecycle.AlarmError, match="already acknowledged"):
        lifecycle.acknowledge(eng.store, alarm.id, "李老师")
    advance(eng, clock, 1)  # mains back: the engine resolves the acknowledged alarm
    hist = lifecycle.history(eng.store, alarm.id)
    assert [(t.state, t.by) for t in hist] == [
        ("firing", "rules"),
        ("acknowledged", "王老师"),
        ("resolved", "rules"),
    ]
    assert hist[1].comment == "called the power bureau"
    with pytest.raises(lifecycle.AlarmError, match="already resolved"):
        lifecycle.resolve(eng.store, alarm.id, "王老师")


def test_restart_restores_state_and_never_repeats_a_transition(tmp_path: Path, clock: FakeClock) -> None:
    tt = timetable(clock.now, start_in_s=-60)
    eng = engine(tmp_path, clock, tt)
    advance(eng, clock, 1, **{JAM_KEY: low_band(eng)})
    before = transitions(eng.store)
    assert any(t["rule"] == "jammer_shielding" for t in before)
    # a crash after the commit: the broker redelivers the last messages to a new engine
    eng2 = engine(tmp_path, clock, tt, store=eng.store)
    assert eng2.world.seen[JAM].last_s == pytest.approx(clock.now, abs=1.1)
    beat(eng2, clock.now, **{JAM_KEY: low_band(eng2)})
    eng2.run_due()
    eng2.commit()
    assert transitions(eng2.store) == before


def _refuse(eng: Engine, topic: str, payload: bytes, now: float) -> None:
    got = Intake(eng.world).observe(topic, payload, now)
    assert isinstance(got, Refusal), got
    eng.refuse(got)
    eng.run_due()
    eng.commit()


def test_malformed_payload_alarms_on_the_device_marked_by_its_last_drill_flag(
    tmp_path: Path, clock: FakeClock
) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600), INTAKE_RULES)
    eng.handle(observe(eng.world, JAM, clock.now, drill=True, on=True))  # last known: a drill
    _refuse(eng, f"exam/v1/S01/jammer/{JAM}/telemetry", b'{"ts": 1, "dev', clock.now)
    got = alarms(eng.store, "rule = 'payload_rejected'")
    assert [(a["subject"], a["severity"], a["state"], a["drill"]) for a in got] == [
        (JAM, "warning", "firing", True)
    ]
    assert "(not_json: Invalid JSON: EOF while parsing" in got[0]["message"]  # the same reasons as ingest_reject
    clock.now += 5  # refused again within clear_after_s: still one alarm, not cleared
    _refuse(eng, f"exam/v1/S01/jammer/{JAM}/telemetry", b"\xff\xfe", clock.now)
    clock.now += 8
    advance(eng, clock, 1)  # valid reports do not clear it (no flapping on a garbled one in three)
    assert [a["state"] for a in alarms(eng.store, "rule = 'payload_rejected'")] == ["firing"]
    advance(eng, clock, 1.5)
    assert [a["state"] for a in alarms(eng.store, "rule = 'payload_rejected'")] == ["resolved"]


def test_rogue_device_alarms_on_its_site_and_does_not_keep_a_dark_site_alive(
    tmp_path: Path, clock: FakeClock
) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600), INTAKE_RULES)
    rogue = b'{"ts": 1, "device": "S02-R09-CAM7", "recording": true, "drill": true}'
    advance(eng, clock, 1)
    end = clock.now + 3
    while clock.now < end:  # S02 goes dark; only the rogue speaks under its topics
        clock.now += 0.5
        beat(eng, clock.now, sites={"S01", "S03"})
        _refuse(eng, "exam/v1/S02/camera/S02-R09-CAM7/telemetry", rogue, clock.now)
    rows = {a["rule"]: a for a in alarms(eng.store)}
    assert (rows["unknown_device"]["subject"], rows["unknown_device"]["subject_type"]) == ("S02", "site")
    assert not rows["unknown_device"]["drill"]  # it says drill, but no drill runs at S02: a real alarm
    assert "S02-R09-CAM7" in rows["unknown_device"]["message"]
    assert rows["site_silent"]["subject"] == "S02"


def test_refusal_alarm_clears_after_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600), INTAKE_RULES)
    _refuse(eng, "exam/v1/S01/camera/S01-R09-CAM7/telemetry", b"{}", clock.now)
    assert [a["state"] for a in alarms(eng.store, "rule = 'unknown_device'")] == ["firing"]
    again = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600), INTAKE_RULES, store=eng.store)
    clock.now += 11
    again.run_due()
    again.commit()
    # nothing at all arrives after the restart: the quiet is judged on the clock once the silence
    # hold (2 s of wall time) has passed, not before (it might be the engine's own lag)
    assert [a["state"] for a in alarms(again.store, "rule = 'unknown_device'")] == ["firing"]
    clock.now += again.world.hold_s
    again.run_due()
    again.commit()
    assert [a["state"] for a in alarms(again.store, "rule = 'unknown_device'")] == ["resolved"]


def test_an_intake_rule_in_a_kinds_file_sees_only_that_kinds_topics(tmp_path: Path, clock: FakeClock) -> None:
    rules = {**TEST_RULES, "camera": [{"name": "rogue_camera", "type": "intake", "refused": "unknown_device"}]}
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=3600), rules)
    _refuse(eng, "exam/v1/S01/jammer/S01-R09-JAM7/telemetry", b"{}", clock.now)
    assert alarms(eng.store) == []
    _refuse(eng, "exam/v1/S01/camera/S01-R09-CAM7/telemetry", b"{}", clock.now)
    assert [(a["rule"], a["subject"]) for a in alarms(eng.store)] == [("rogue_camera", "S01")]


def test_alarms_nothing_can_clear_are_resolved_on_reload_and_restart(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    advance(eng, clock, 1)
    eng.handle(observe(eng.world, "S01-VAULT-PWR1", clock.now, mains_v=0.0, on_ups=True))
    advance(eng, clock, 6, skip={JAM, "S01-VAULT-PWR1"})  # the jammer goes offline, the mains stay lost
    assert {a["rule"] for a in alarms(eng.store, "active")} >= {"power_mains_lost", "jammer_offline"}
    # the jammer rules are removed from the files: their alarm can never clear, so it is resolved now
    without_jammer = {k: v for k, v in TEST_RULES.items() if k != "jammer"}
    eng.reload(ruleset(tmp_path / "reload", without_jammer))
    eng.commit()
    gone = alarms(eng.store, "rule = 'jammer_offline'")
    assert [a["state"] for a in gone] == ["resolved"]
    assert "no longer in the rules files" in _last_comment(eng, gone[0]["id"])
    # restarted on an inventory without the storage room's power sensor: its alarm is resolved too
    doc = inventory().model_dump(mode="json")
    for site in doc["sites"]:
        site["devices"] = [d for d in site["devices"] if d["id"] != "S01-VAULT-PWR1"]
    again = Engine(eng.store, World(Inventory.model_validate(doc), eng.world.timetable),
                   ruleset(tmp_path / "again", without_jammer), clock, grace_s=0, tick_s=0.5)
    again.restore()
    again.commit()
    power = alarms(again.store, "rule = 'power_mains_lost'")
    assert [a["state"] for a in power] == ["resolved"]
    assert "no longer in the inventory" in _last_comment(again, power[0]["id"])


def _last_comment(eng: Engine, alarm_id: int) -> str:
    comment: str = [t for t in transitions(eng.store) if t["alarm_id"] == alarm_id][-1]["comment"]
    return comment
