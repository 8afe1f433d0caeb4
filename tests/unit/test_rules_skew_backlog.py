"""A backlog makes every message late; the skew rule warns about drifting clocks, not about the lag."""

from __future__ import annotations

import time

from examwatch.rulebook.configs import SkewConfig
from harness.rules_kit import inventory, timetable
from rules.types._base import observe
from rules.types.skew import SkewRule
from rules.world import World


def _rule() -> tuple[SkewRule, World, list[str]]:
    world = World(inventory(rooms=10), timetable(time.time()))
    cameras = [d for d, ref in world.devices.items() if ref.kind == "camera"]
    cfg = SkewConfig.model_validate({"name": "camera_clock", "type": "skew"})
    return SkewRule(cfg, "camera", world), world, cameras


def test_a_backlog_does_not_warn_every_device_but_a_drifting_clock_still_warns() -> None:
    rule, world, cameras = _rule()
    assert len(cameras) >= 32
    now = time.time()
    raised: list[str] = []
    for rnd in range(4):  # the engine reads a 5 s old backlog: every report is 5 s late
        for dev in cameras:
            ts = now + rnd - 5.0 - (120.0 if dev == cameras[7] else 0.0)  # one clock drifted 2 min behind
            for verdict in rule.on_message(observe(world, dev, now + rnd, ts_s=ts, recording=True)):
                raised.append(verdict.subject.id)
    assert raised == [cameras[7]]  # once, and nobody else


def test_with_few_devices_the_raw_skew_counts() -> None:
    rule, world, cameras = _rule()
    now = time.time()
    verdicts = [v for i in range(2) for v in rule.on_message(observe(world, cameras[0], now + i, ts_s=now + i - 3.5))]
    assert [v.subject.id for v in verdicts] == [cameras[0]]
