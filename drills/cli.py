"""``examwatch drill``: run a scenario of faults against the backend and score what it saw."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drills import scenario as sc
from drills.evidence import AlarmSource, InfluxAlarms, IngestEvidence
from drills.runner import describe, prepare, score, settle
from drills.store_source import StoreAlarms
from examwatch.cli import ConfigOption, fail
from examwatch.datafile import DataFileError
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from examwatch.settings import Settings
from examwatch.store import open_store
from simulators import timetable_out as timetable_mod
from simulators.cli import InventoryOption, ModeOption, SpeedOption, fds_or_exit, load_world, run_engine
from simulators.engine import Mode

#: what a drill can be scored against, each made from the InfluxDB client and the settings
SOURCES: dict[str, Callable[[Influx, Settings], AlarmSource]] = {
    "ingest": lambda influx, _settings: IngestEvidence(influx),
    "alarms": lambda influx, _settings: InfluxAlarms(influx),
    "store": lambda _influx, settings: StoreAlarms(open_store(settings.store.url)),
}

app = typer.Typer(help="Drills (应急演练): inject faults into a simulated district and score the backend.",
                  no_args_is_help=True)
ScenarioArg = Annotated[Path, typer.Argument(help="scenario YAML file (see config/scenarios/)")]


@app.command("check")
def check(scenario: ScenarioArg, config: ConfigOption = None, inventory: InventoryOption = None) -> None:
    """Validate a scenario against the inventory and timetable; a fault is reported as file:line: field."""
    _, inv, tt = load_world(config, inventory)
    try:
        s = sc.load(scenario, inv, tt)
    except DataFileError as exc:
        fail(str(exc))
    typer.echo(f"{scenario}: {s.name}: {len(s.faults)} faults: OK")


@app.command("run")
def run(
    scenario: ScenarioArg,
    config: ConfigOption = None,
    inventory: InventoryOption = None,
    mode: ModeOption = Mode.GATEWAY,
    speed: SpeedOption = 1.0,
    interval: Annotated[
        int | None, typer.Option(min=1, help="report interval, simulated s (default: the scenario's)")
    ] = None,
    source: Annotated[str, typer.Option(help="what to score against: ingest (evidence in InfluxDB), alarms "
                                             "(the rules engine's alarm measurement) or store (the rules engine's "
                                             "alarms and the notifier's outbox: all four times)")] = "ingest",
    json_path: Annotated[Path | None, typer.Option("--json", help="also write the report here as JSON")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    write_timetable: Annotated[
        Path | None, typer.Option(help="write the timetable shifted to this drill's day here, for the rules engine")
    ] = None,
) -> None:
    """Run a drill scenario: inject its faults into a simulated district, then score what was seen.

    Every payload is tagged "drill": true and each fault is injected at its time. The timetable
    is shifted so the drill starts now; --speed compresses it. --source says what is scored:
    ingest (the default) looks for each fault's evidence in what ingest stored in InfluxDB
    (faulty values, silence, rejections): the data path, not the rules engine. alarms looks for
    the expected alarm in the rules engine's alarm measurement (detected, cleared). store reads
    the state store the rules engine and the notifier share, and fills all four times: detected,
    notified (first alert SMS), acknowledged, cleared. alarms and store need `examwatch rules`
    running on this drill's timetable (--write-timetable) and --speed 1, since the engine judges
    on its own clock. Exit code 1 when any fault went unseen, 2 for a bad scenario or settings,
    3 when the broker or InfluxDB refuses us.
    """
    if source not in SOURCES:
        fail(f"--source must be one of {', '.join(SOURCES)}")
    settings, inv, tt = load_world(config, inventory)
    try:
        s = sc.load(scenario, inv, tt)
    except DataFileError as exc:
        fail(str(exc))
    fds_or_exit(mode, len(inv.devices))
    drill = prepare(settings, inv, tt, s, mode, speed, interval)
    console = Console(stderr=True)
    console.print(describe(drill))
    if write_timetable is not None:
        timetable_mod.dump(drill.engine.timetable, write_timetable)
        console.print(f"wrote the drill's timetable to {write_timetable}")
    influx = Influx(settings.influx)
    links = len(inv.sites) if mode is Mode.GATEWAY else len(inv.devices)
    run_engine(drill.engine, links, drill.end - drill.start, quiet)
    try:
        if not settle(influx, drill):
            console.print("warning: ingest had not stored the drill's last reports after 30 s")
        report = score(drill, SOURCES[source](influx, settings), speed)
    except (InfluxUnavailable, InfluxRejected) as exc:
        fail(f"cannot read the results from InfluxDB: {exc}", code=3)
    report.print(Console())
    if json_path is not None:
        report.write_json(json_path)
    raise typer.Exit(1 if report.unseen else 0)
