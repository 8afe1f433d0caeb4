"""The engine's own lag is not a silent site: timers fire on the stream's time, and a stall is held
for ``silence_hold_s`` of wall time (times the clock's speed on a drill clock); clock skew on a
compressed clock."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from examwatch.rulebook.configs import SkewConfig
from examwatch.store import open_store
from harness.rules_kit import FakeClock, alarms, beat, inventory, ruleset, timetable
from rules.engine import Engine
from rules.types._base import observe
from rules.types.skew import SkewRule
from rules.world import World


def _run(eng: Engine, clock: FakeClock, seconds: float, step: float = 0.25) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.now += step
        beat(eng, clock.now)
        eng.run_due()
    eng.commit()


def _engine(tmp_path: Path, clock: FakeClock, speed: float = 1.0) -> Engine:
    eng = Engine(open_store(f"sqlite:///{tmp_path / 's.db'}"), World(inventory(), timetable(clock.now, 86_400)),
                 ruleset(tmp_path), clock, grace_s=0, tick_s=0.5, speed=speed, silence_hold_s=2.0)
    eng.restore()
    return eng


@pytest.mark.parametrize("speed", [1.0, 30.0], ids=["wall", "drill-30x"])
def test_a_stall_of_the_engine_is_not_a_silent_district(tmp_path: Path, speed: float) -> None:
    clock = FakeClock(time.time())
    eng = _engine(tmp_path, clock, speed)
    _run(eng, clock, 3)
    # The engine stalls for 1.5 wall seconds (GC, a slow disk, the CPU shared with the simulator):
    # the devices went on reporting, but their messages are still in its socket when it wakes up.
    stalled = 1.5 * speed
    sent = [clock.now + t for t in (0.25 * i for i in range(1, int(stalled / 0.25) + 1))]
    clock.now += stalled
    eng.run_due()  # timers first: the worst order
    for t in sent:
        beat(eng, t)  # then the backlog (received now, made during the stall)
    eng.run_due()
    eng.commit()
    _run(eng, clock, 2)
    assert alarms(eng.store) == [], "the engine's own stall was taken for silence"


@pytest.mark.parametrize("speed", [1.0, 30.0], ids=["wall", "drill-30x"])
def test_a_district_really_gone_is_seen_once_the_hold_has_passed(tmp_path: Path, speed: float) -> None:
    clock = FakeClock(time.time())
    eng = _engine(tmp_path, clock, speed)
    _run(eng, clock, 3)
    last = clock.now
    hold = 2.0 * speed
    while clock.now < last + 1.5 + hold - 0.5:  # the site timeout (1.5 s) has passed, the hold not yet
        clock.now += 0.25
        eng.run_due()
    eng.commit()
    assert alarms(eng.store) == []
    clock.now = last + 1.5 + hold + 0.5
    eng.run_due()
    eng.commit()
    assert sorted(a["subject"] for a in alarms(eng.store, "rule = 'site_silent'")) == ["S01", "S02", "S03"]


def test_one_site_gone_while_the_others_speak_is_seen_on_time(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    eng = _engine(tmp_path, clock, speed=30.0)  # a hold of 60 clock seconds: the stream is alive, no need
    _run(eng, clock, 3)
    last = clock.now
    while clock.now < last + 2.5:
        clock.now += 0.25
        beat(eng, clock.now, sites={"S01", "S03"})
        eng.run_due()
    eng.commit()
    (a,) = alarms(eng.store, "rule = 'site_silent'")
    assert a["subject"] == "S02"
    assert a["opened_ns"] / 1e9 <= last + 1.5 + 0.25 + 1e-3


def _skew_rule(speed: float, kind_devices: int = 4) -> tuple[SkewRule, World, list[str]]:
    world = World(inventory(rooms=kind_devices), timetable(time.time()))
    world.speed = speed
    cfg = SkewConfig.model_validate({"name": "camera_clock", "type": "skew"})
    cams = [d for d, ref in world.devices.items() if ref.kind == "camera"]
    return SkewRule(cfg, "camera", world), world, cams


@pytest.mark.parametrize("speed", [1.0, 60.0], ids=["wall", "drill-60x"])
def test_transport_on_a_compressed_clock_is_not_clock_skew_but_a_clock_fault_is(speed: float) -> None:
    rule, world, cams = _skew_rule(speed, kind_devices=1)
    rng = random.Random(3)
    now = time.time()
    raised: list[str] = []
    for rnd in range(20):
        for dev in cams:
            t = now + rnd * 5
            delay = rng.uniform(0.002, 0.5) * speed  # 2-500 ms (a loaded box, a lagging simulator), in clock s
            fault = (2.0 + 1.0) * speed if dev == cams[0] else 0.0  # one clock off by 3 s in wall terms
            recv = t + delay
            world.heard(world.devices[dev], recv, False)
            world.note_report(dev, int((t - fault) * 1000), recv)
            obs = observe(world, dev, recv, ts_s=t - fault, recording=True)
            raised += [v.subject.id for v in rule.on_message(obs) if v.active]
    assert raised == [cams[0]]
