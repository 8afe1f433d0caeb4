"""The simulator's devices on the drill clock of a settings file's ``[clock]`` section.

``examwatch simulate`` makes its own clock (now, shifted timetable); a test that runs the rules
engine on a drill clock needs the devices on that same clock and on the timetable as written.
This runs the simulator's own engine (``simulators.engine``: behaviour, cadence, gateway links)
that way, and can leave chosen jammers switched off, as a jammer that never came on at T−15::

    python -m harness.clocked_sim --config drill.toml --interval 30 --duration 2400 \\
        --jammer-off S02-R01-JAM1
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from examwatch import inventory as inventory_mod
from examwatch import timetable as timetable_mod
from examwatch.clock import DrillClock
from examwatch.settings import load_settings
from simulators.effects import Effect
from simulators.engine import Engine, Mode, Options
from simulators.readings import RF_OFF_DBM, Payload


class SwitchedOff(Effect):
    """A jammer that stays off, whatever its schedule says (it still reports)."""

    def telemetry(self, payload: Payload, t: float) -> Payload | bytes:
        return {**payload, "on": False, "rf_dbm": dict.fromkeys(payload.get("rf_dbm") or {}, RF_OFF_DBM)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, required=True, help="settings with [clock] start, wall_start, speed")
    ap.add_argument("--inventory", type=Path, help="default: the settings' inventory")
    ap.add_argument("--interval", type=int, default=30, help="clock seconds between a device's reports")
    ap.add_argument("--duration", type=float, required=True, help="clock seconds to run from the clock's start")
    ap.add_argument("--jammer-off", action="append", default=[], help="a jammer that never switches on")
    args = ap.parse_args(argv)
    settings = load_settings(args.config)
    clock = settings.clock.make()
    if not isinstance(clock, DrillClock):
        print(f"{args.config}: no [clock] start and wall_start: not a drill clock", file=sys.stderr)
        return 2
    inv = inventory_mod.load(args.inventory or settings.inventory)
    tt = timetable_mod.load(settings.timetable)
    engine = Engine(settings, inv, tt, clock, Options(Mode.GATEWAY, args.interval, args.duration,
                                                      start_at=clock.start))
    for dev in args.jammer_off:
        engine.devices[dev].effects.append(SwitchedOff(clock.start, clock.start + args.duration + 1))
    stats = asyncio.run(engine.run())
    print(f"published {stats.sent} messages, dropped {stats.dropped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
