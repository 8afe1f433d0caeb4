"""Run a drill: simulate the district, inject the scenario's faults on time, then score them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drills import faults
from drills import scenario as sc
from drills.evidence import AlarmSource, FaultRun
from drills.report import FaultScore, Report
from examwatch.clock import DrillClock
from examwatch.influx import Influx
from examwatch.inventory import Inventory
from examwatch.kinds import KINDS
from examwatch.settings import Settings
from examwatch.timetable import Timetable
from simulators.clock import shift_for
from simulators.engine import Engine, Mode, Options


@dataclass
class Drill:
    """A scenario laid onto a clock: the engine to run and each fault's simulated window."""

    scenario: sc.Scenario
    engine: Engine
    runs: list[FaultRun]
    start: float
    end: float


def prepare(
    settings: Settings, inventory: Inventory, timetable: Timetable, scenario: sc.Scenario, mode: Mode,
    speed: float, interval: int | None = None,
) -> Drill:
    """Shift the timetable so that the drill starts now, and install every fault on the engine."""
    clock = DrillClock.starting_now(speed)
    papers = {p.id: p for p in timetable.papers}
    anchor = papers[scenario.paper] if scenario.paper else min(timetable.papers, key=lambda p: p.start)
    shifted = timetable.shifted(shift_for(anchor.start + scenario.first, clock))
    paper_start = clock.start - scenario.first.total_seconds()
    cadence = interval or scenario.interval
    length = (scenario.last - scenario.first).total_seconds()
    engine = Engine(settings, inventory, shifted, clock,
                    Options(mode, cadence, length, drill=True, start_at=clock.start))
    runs = []
    for fault in scenario.faults:
        start = paper_start + fault.at.total_seconds()
        end = start + fault.duration.total_seconds()
        faults.install(fault, engine, start, end)
        kind: str | None = None
        if isinstance(fault, sc.NetworkCut | sc.RogueDevice):
            # a rogue device is not in the inventory: the rules engine raises unknown_device on
            # the site whose topics it used, and names the id in the alarm's message
            site, subject = fault.site, fault.site
        else:
            ref = inventory.devices[fault.device]
            site, subject, kind = ref.site, fault.device, ref.kind
        runs.append(FaultRun(fault, fault.expected(kind), start, end, site, subject, clock, cadence,
                             scenario.tail.total_seconds()))
    return Drill(scenario, engine, runs, clock.start, clock.start + length)


def settle(influx: Influx, drill: Drill, timeout_s: float = 30.0) -> bool:
    """Wait until ingest has stored the drill's last reports (or ``timeout_s`` passes)."""
    kinds = ",".join(f'"{k}"' for k in KINDS)
    wanted = int((drill.end - 2 * drill.engine.options.interval_s) * 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = influx.rows(f"SELECT last(\"skew_ms\") FROM {kinds} WHERE \"drill\" = 'true' AND "  # noqa: S608
                           f"time >= {wanted}ms")
        if rows:
            return True
        time.sleep(0.25)
    return False


def score(drill: Drill, source: AlarmSource, speed: float, wait: Callable[[], None] | None = None) -> Report:
    """Ask ``source`` about every fault and build the report."""
    if wait is not None:
        wait()
    scores = [FaultScore.of(i + 1, run, source.observe(run)) for i, run in enumerate(drill.runs)]
    return Report(drill.scenario.name, drill.scenario.title, source.name, speed, scores)


def describe(drill: Drill) -> str:
    start = datetime.fromtimestamp(drill.start, UTC).astimezone()
    return (f"drill {drill.scenario.name}: {len(drill.runs)} faults over "
            f"{timedelta(seconds=round(drill.end - drill.start))} simulated, from {start:%H:%M:%S}")
