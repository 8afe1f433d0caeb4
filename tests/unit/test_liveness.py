"""'Is this device online' has one answer: the rules engine's World and the API's device states agree."""

from __future__ import annotations

from pathlib import Path

from api.devstate import combine
from examwatch import liveness
from examwatch.inventory import load as load_inventory
from examwatch.rulebook.files import load_dir
from examwatch.timetable import load as load_timetable
from rules.engine import build
from rules.world import World

ROOT = Path(__file__).parents[2]
S = 1_000_000_000


def test_timeouts_come_from_the_absence_rules_of_each_kind_and_room() -> None:
    inv = load_inventory(ROOT / "config" / "district.yaml")
    timeouts = liveness.absence_timeouts(load_dir(ROOT / "config" / "rules"), inv)
    kinds_watched = {inv.devices[d].kind for d in timeouts}
    assert {"jammer", "camera", "gate", "power"} <= kinds_watched
    assert "detector" not in kinds_watched, "no absence rule watches detectors (handhelds report through a dock)"
    assert all(t > 0 for t in timeouts.values())


def test_the_engine_and_the_api_agree_on_every_case() -> None:
    inv = load_inventory(ROOT / "config" / "district.yaml")
    ruleset = load_dir(ROOT / "config" / "rules")
    world = World(inv, load_timetable(ROOT / "config" / "timetable.yaml"))
    build(ruleset, world)
    dev = "S01-R01-JAM1"
    timeout = world.timeout(dev)
    assert timeout == liveness.absence_timeouts(ruleset, inv)[dev]
    now = 1_800_000_000.0
    world.started_s = now - 10 * timeout  # listening long since
    for age, said_offline in ((1.0, False), (timeout - 1, False), (timeout + 1, False), (1.0, True)):
        world.heard(inv.devices[dev], now - age, drill=False, lwt_offline=False)
        world.seen[dev].lwt_offline = said_offline
        world.frontier_s = now
        engine_says = world.reporting(dev, now)
        states = combine({dev: (int((now - age) * S), 0)},
                         {dev: (int((now - age) * S) + 1, False)} if said_offline else {},
                         int(now * S), offline_after_s=999, timeouts={dev: timeout})
        assert engine_says == states[dev].online == (age < timeout and not said_offline), (age, said_offline)
