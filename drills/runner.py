"""Run a drill: lay the scenario onto its clock, simulate the district with the faults, then score.

Two clocks:

- **the drill clock** (``[clock]`` in the settings, made by ``examwatch drill clock``): every
  service of the drill's stack runs on it, so the timetable is the shipped one and simulated
  time is the exam day's own (2026-06-08 07:20 onwards), compressed ``speed`` times. The
  simulator starts where the clock stands and the faults happen at their times of day.
- **the wall clock** (no ``[clock]``): the timetable is shifted so the drill starts now, as a
  rehearsal on a live stack does; ``--speed`` compresses only the simulator, so the store can be
  scored only at speed 1 (the services judge on wall time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from drills import faults
from drills import scenario as sc
from drills.plan import Plan, build, shifted_anchor
from drills.record import queued
from examwatch.clock import DrillClock
from examwatch.datafile import DataFileError
from examwatch.inventory import Inventory
from examwatch.settings import Settings
from examwatch.timetable import Timetable
from simulators.engine import Engine, Mode, Options
from simulators.stats import Stats


@dataclass
class Drill:
    """A scenario laid onto a clock: the plan, the engine that simulates it, and that clock."""

    plan: Plan
    engine: Engine
    clock: DrillClock
    shared_clock: bool  # the services run on this clock too (settings [clock]), not on the wall's

    @property
    def start(self) -> float:
        return self.engine.options.start_at or self.plan.start

    @property
    def end(self) -> float:
        return self.plan.end


def prepare(settings: Settings, inventory: Inventory, timetable: Timetable, scenario: sc.Scenario, mode: Mode,
            speed: float, interval: int | None = None) -> Drill:
    """The drill on the settings' drill clock, or (none set) on a timetable shifted to start now.

    Raises DataFileError when the drill clock cannot run this scenario (it starts after the
    scenario's first moment, or already stands past it).
    """
    cadence = interval or scenario.interval
    clock = settings.clock.make()
    if isinstance(clock, DrillClock):
        plan = build(scenario, inventory, timetable, clock.speed, cadence)
        now = clock.now()
        if clock.start > plan.start:
            raise DataFileError(f"[clock] start {_iso(clock.start)} is after the drill's first moment "
                                f"{_iso(plan.start)}: make the clock with `examwatch drill clock`")
        if now > plan.start + cadence:
            raise DataFileError(f"the drill clock already reads {_iso(now)}, past the drill's first moment "
                                f"{_iso(plan.start)}: set [clock] wall_start later (`examwatch drill clock`)")
        begin = now  # the devices report from where the clock stands, so nothing starts silent
        engine_tt, speed = timetable, clock.speed
    else:
        clock = DrillClock.starting_now(speed)
        engine_tt = timetable.shifted(shifted_anchor(timetable, scenario, clock.start))
        plan = build(scenario, inventory, engine_tt, speed, cadence)
        begin = plan.start
    engine = Engine(settings, inventory, engine_tt, clock,
                    Options(mode, cadence, plan.end - begin, drill=True, start_at=begin))
    for fp in plan.faults:
        faults.install(fp, engine, speed)
    return Drill(plan, engine, clock, isinstance(settings.clock.make(), DrillClock))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def integrity(drill: Drill, stats: Stats) -> tuple[list[str], list[str]]:
    """Problems of the drill itself, and warnings about it.

    Dropped messages are a problem: the scenario did not run as written. A simulator that fell a
    report interval behind its clock is a warning: it may make silence the backend rightly alarms
    on, or faults it injected late, but each of those fails the drill by itself (a false alarm, a
    deadline missed); a lag that harmed nothing that people see is noted, and does not fail it."""
    lag_clock = stats.max_lag_s * drill.clock.speed
    problems, warnings = [], []
    if lag_clock >= drill.plan.interval:
        when = datetime.fromtimestamp(stats.max_lag_at, drill.plan.tz()).strftime("%H:%M:%S")
        warnings.append(f"the simulator fell {stats.max_lag_s:.2f} s (wall) behind its clock at {when}, "
                        f"{lag_clock:.0f} s of drill time, a whole report interval ({drill.plan.interval} s): "
                        "the machine barely kept up; if anything failed, lower the speed")
    if stats.dropped:
        problems.append(f"the simulator dropped {stats.dropped} messages (its connections' queues were full)")
    return problems, warnings


def settle(notify_store: sa.Engine, drill: Drill, timeout_s: float = 30.0,
           sleep: Callable[[float], None] = time.sleep) -> bool:
    """Wait until the chain has caught up with the drill's end: at least the processing allowance
    (wall), then until the notifier has sent what it queued by then (or ``timeout_s`` passes)."""
    sleep(max(drill.plan.scenario.deadlines.processing_s, 0.5))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if queued(notify_store, drill.plan.end) == 0:
            return True
        sleep(0.25)
    return False


def describe(drill: Drill) -> str:
    """One line: the drill, its faults and span on its clock."""
    tz = drill.plan.tz()
    start = datetime.fromtimestamp(drill.plan.start, tz)
    end = datetime.fromtimestamp(drill.plan.end, tz)
    which = "the services' drill clock" if drill.shared_clock else "a timetable shifted to start now"
    return (f"drill {drill.plan.scenario.name}: {len(drill.plan.faults)} faults, {len(drill.plan.actions)} actions, "
            f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} on {which}, {drill.clock.speed:g}× real time "
            f"(about {(drill.plan.end - drill.start) / drill.clock.speed / 60:.1f} min)")


__all__ = ["Drill", "Mode", "describe", "integrity", "prepare", "settle"]
