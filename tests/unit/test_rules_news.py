"""What an alarm says and when: a rise in severity after an acknowledgement, surges at low traffic,
readiness that waits for evidence, rules limited to room types."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from examwatch.alarm import ENGINE, State
from examwatch.datafile import DataFileError
from examwatch.rulebook.configs import RatioConfig
from examwatch.rulebook.files import load_dir
from examwatch.store import lifecycle
from harness.rules_kit import (
    SHIPPED_RULES,
    TEST_RULES,
    FakeClock,
    alarms,
    beat,
    engine,
    timetable,
    transitions,
    write_rules,
)
from rules.types import ratio
from rules.types._base import observe

PWR = "S01-VAULT-PWR1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


def test_a_rise_after_an_acknowledgement_fires_again_in_one_transition(tmp_path: Path, clock: FakeClock) -> None:
    rules = {**TEST_RULES, "power": [{"name": "power_ups_low", "type": "threshold", "field": "ups_minutes_left",
                                      "levels": [{"severity": "major", "below": 60},
                                                 {"severity": "critical", "below": 20}],
                                      "clear": {"above": 90}}]}
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400), rules)
    beat(eng, clock.now, S01_VAULT_PWR1={"ups_minutes_left": 50.0})
    eng.commit()
    (a,) = lifecycle.list_alarms(eng.store)
    lifecycle.acknowledge(eng.store, a.id, "王老师", "UPS checked")
    clock.now += 1
    beat(eng, clock.now, S01_VAULT_PWR1={"ups_minutes_left": 40.0})  # still major: nothing new
    written = eng.commit()
    assert written is not None
    assert not written.transitions
    clock.now += 1
    beat(eng, clock.now, S01_VAULT_PWR1={"ups_minutes_left": 15.0})
    written = eng.commit()
    assert written is not None
    # the person's step goes out first, so subscribers see both and the rise is retained
    assert [(t.seq, t.state, t.severity, t.comment) for t in written.transitions] == [
        (2, "acknowledged", "major", "UPS checked"),
        (3, "firing", "critical", "severity raised to critical; acknowledge again")]
    assert [(t.state, t.severity, t.by) for t in lifecycle.history(eng.store, a.id)] == [
        ("firing", "major", "rules"), ("acknowledged", "major", "王老师"), ("firing", "critical", "rules")]
    lifecycle.acknowledge(eng.store, a.id, "王老师", "on it again")  # a new acknowledgement is accepted
    with pytest.raises(lifecycle.AlarmError, match="cannot become firing"), eng.store.begin() as conn:
        lifecycle.transition(conn, lifecycle.get(conn, a.id), State.FIRING, "王老师")  # people cannot un-acknowledge


def _surge_rule() -> RatioConfig:
    (cfg,) = [r for k, r in load_dir(SHIPPED_RULES).rules if k == "gate" and isinstance(r, RatioConfig)]
    return cfg


@pytest.mark.parametrize("every_s", [10.0, 20.0], ids=["1-pass-per-10s", "1-pass-per-20s"])
def test_a_surge_at_low_traffic_alarms_within_the_window(every_s: float) -> None:
    cfg = _surge_rule()
    active, window, raised_at = False, [], None
    for i in range(int(cfg.window_s // every_s)):  # three in ten passes failing the face match
        t = every_s * i
        active, window, found = ratio.evaluate(cfg, active, window, t, num=1 if i % 10 in (2, 5, 8) else 0, den=1)
        if found is not None and found.active and raised_at is None:
            raised_at = t
    assert raised_at is not None, "30 % failures at low traffic raised nothing"
    assert raised_at < cfg.window_s
    # before the window holds min_denominator passes: the floor of failures, not the ratio, spoke
    assert raised_at < cfg.min_denominator * every_s
    # the surge ends and the trickle goes on: the alarm clears once the failures age out
    cleared_at = None
    for i in range(int(cfg.window_s // 10 * 2)):
        t = cfg.window_s + 10.0 * i
        active, window, found = ratio.evaluate(cfg, active, window, t, num=0, den=1)
        if found is not None and not found.active:
            cleared_at = t
            break
    assert cleared_at is not None
    assert cleared_at <= 2 * cfg.window_s


def test_three_percent_of_a_thousand_passes_stays_quiet() -> None:
    cfg = _surge_rule()
    active, window = False, []
    for i in range(10):  # 1,000 passes over the window, 30 failing
        active, window, found = ratio.evaluate(cfg, active, window, 20.0 * i, num=3, den=100)
        assert found is None
    assert not active


def test_one_doubtful_candidate_alone_is_not_a_surge() -> None:
    cfg = _surge_rule()
    active, _, found = ratio.evaluate(cfg, False, [], 0, num=3, den=1)  # three failed tries, one pass
    assert (active, found) == (False, None)


def test_readiness_waits_until_every_device_is_heard_since_the_start(tmp_path: Path, clock: FakeClock) -> None:
    tt = timetable(clock.now, start_in_s=3600)
    before = engine(tmp_path, clock, tt)
    beat(before, clock.now)  # every device reported to an engine that then stopped
    before.commit()
    clock.now += 1800 - 5  # restarted five seconds before T−30
    eng = engine(tmp_path, clock, tt, store=before.store)
    assert eng.world.seen  # the store remembers them: that is not evidence that they work now
    clock.now += 6
    eng.run_due()
    eng.commit()
    rows = _readiness(eng)
    assert [(r["site"], bool(r["go"])) for r in rows] == [("S01", False), ("S02", False), ("S03", False)]
    assert all(r["detail"].startswith("waiting: ") for r in rows)
    heard = {"S01", "S02"}
    beat(eng, clock.now, sites=heard)
    clock.now += 1
    eng.run_due()
    eng.commit()
    rows = {r["site"]: r for r in _readiness(eng)}
    assert (bool(rows["S01"]["go"]), rows["S01"]["detail"]) == (True, "all devices ready")
    assert rows["S03"]["detail"].startswith("waiting: ")
    # S03 stays silent past its devices' absence timeouts since the start (the detectors' default,
    # 60 s, is the longest): no-go, naming them
    for _ in range(62):
        clock.now += 1
        beat(eng, clock.now, sites=heard)
        eng.run_due()
    eng.commit()
    s03 = {r["site"]: r for r in _readiness(eng)}["S03"]
    assert not s03["go"]
    assert "S03-R01-JAM1 not heard since the rules started" in s03["detail"]


def _readiness(eng: object) -> list[dict[str, object]]:
    with eng.store.connect() as conn:  # type: ignore[attr-defined]
        q = "SELECT site, go, detail FROM readiness WHERE room = '_site' ORDER BY site"
        return [dict(r) for r in conn.exec_driver_sql(q).mappings()]


def test_rules_limited_to_room_types(tmp_path: Path, clock: FakeClock) -> None:
    rules = {**TEST_RULES, "camera": [
        {"name": "camera_tamper", "type": "threshold", "field": "tamper", "during": "paper",
         "levels": [{"severity": "major", "equals": True}], "rooms": ["exam"]},
        {"name": "vault_camera_tamper", "type": "threshold", "field": "tamper",
         "levels": [{"severity": "major", "equals": True}], "rooms": ["storage"]},
        {"name": "vault_camera_offline", "type": "absence", "timeout_s": 3, "rooms": ["storage"]},
    ]}
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400), rules)
    for dev in ("S01-VAULT-CAM1", "S01-R01-CAM1", "S01-ENT-CAM1"):
        eng.handle(observe(eng.world, dev, clock.now, recording=True, video_loss=False, tamper=True))
    eng.commit()
    assert [(a["rule"], a["subject"]) for a in alarms(eng.store)] == [("vault_camera_tamper", "S01-VAULT-CAM1")]
    vault_cams = {d for d in eng.world.devices if "-VAULT-CAM" in d}
    for _ in range(8):  # only the storage room's cameras have an absence rule
        clock.now += 0.5
        beat(eng, clock.now, skip=vault_cams)
        eng.run_due()
    eng.commit()
    offline = {a["subject"] for a in alarms(eng.store, "rule = 'vault_camera_offline'")}
    assert offline == {f"{s}-VAULT-CAM{i}" for s in ("S01", "S02", "S03") for i in (1, 2)}


def test_two_absence_rules_may_not_watch_the_same_rooms(tmp_path: Path) -> None:
    rules = {"camera": [{"name": "a", "type": "absence", "timeout_s": 60},
                        {"name": "b", "type": "absence", "timeout_s": 30, "rooms": ["storage"]}]}
    with pytest.raises(DataFileError, match=r"camera.yaml: rules: a and b both watch the silence of cameras"):
        load_dir(write_rules(tmp_path / "r", rules))
    rules["camera"][0]["rooms"] = ["exam", "entrance", "rest"]
    assert len(load_dir(write_rules(tmp_path / "ok", rules)).rules) == 2


def test_a_site_silence_rule_cannot_be_limited_to_rooms(tmp_path: Path) -> None:
    d = tmp_path / "r"
    d.mkdir()
    (d / "site.yaml").write_text(yaml.safe_dump(
        {"rules": [{"name": "site_silent", "type": "absence", "timeout_s": 30, "rooms": ["exam"]}]}))
    with pytest.raises(DataFileError, match=r"site\.yaml:.*rooms applies to device rules"):
        load_dir(d)


def test_the_shipped_rules_watch_the_storage_room_at_every_hour() -> None:
    found = {r.name: r for _, r in load_dir(SHIPPED_RULES).rules}
    for what in ("recording", "video_loss", "tamper"):
        vault = found[f"vault_camera_{'not_recording' if what == 'recording' else what}"]
        exam = found[f"camera_{'not_recording' if what == 'recording' else what}"]
        assert (vault.rooms, getattr(vault, "during")) == (("storage",), "always")  # noqa: B009
        assert getattr(exam, "during") == "paper"  # noqa: B009
        assert exam.rooms
        assert "storage" not in exam.rooms
    for name in ("power_mains_lost", "power_on_ups", "power_ups_low", "power_door_open"):
        assert getattr(found[name], "during") == "always"  # noqa: B009


def test_only_the_engine_moves_an_acknowledged_alarm_back_to_firing(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine(tmp_path, clock, timetable(clock.now, start_in_s=86_400))
    beat(eng, clock.now, S01_VAULT_PWR1={"mains_v": 0.0})
    eng.commit()
    (a,) = lifecycle.list_alarms(eng.store)
    lifecycle.acknowledge(eng.store, a.id, "王老师")
    with eng.store.begin() as conn, pytest.raises(lifecycle.AlarmError, match="cannot become firing"):
        lifecycle.transition(conn, lifecycle.get(conn, a.id), State.FIRING, ENGINE)  # not without a rise
    assert [t["state"] for t in transitions(eng.store)] == ["firing", "acknowledged"]
