"""``examwatch simulate``: bring an inventory to life on the contract's topics."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
from collections.abc import Callable
from datetime import timedelta, tzinfo
from pathlib import Path
from typing import Annotated

import typer

from examwatch import timetable as timetable_mod
from examwatch.cli import ConfigOption, fail, inventory_or_exit, settings_or_exit
from examwatch.clock import DrillClock
from examwatch.datafile import DataFileError
from examwatch.inventory import Inventory
from examwatch.mqtt import ConnectRefused
from examwatch.settings import Settings
from simulators.clock import check_span, start_day
from simulators.engine import Engine, Mode, Options
from simulators.progress import reporter
from simulators.stats import Stats

app = typer.Typer(invoke_without_command=True)

InventoryOption = Annotated[
    Path | None, typer.Option(help="inventory file (default: the settings' inventory)")]
SpeedOption = Annotated[
    float, typer.Option(min=1, max=10_000, help="time compression: simulated s per wall s")]
ModeOption = Annotated[Mode, typer.Option(help="gateway: one connection per site (gw-<site>); "
                                                "device: one per device, with its Last Will")]
IntervalOption = Annotated[
    int, typer.Option(min=1, max=3600, help="simulated seconds between a device's reports")]
PaperOption = Annotated[str | None, typer.Option(help="paper id the day is anchored on (default: the first)")]
LeadOption = Annotated[float, typer.Option(help="start this many simulated minutes before that paper")]
RealClockOption = Annotated[
    bool, typer.Option(help="keep the timetable's own dates; simulated time = wall time")]
World = tuple[Settings, Inventory, timetable_mod.Timetable]


def load_world(config: Path | None, inventory: Path | None) -> World:
    """Settings, inventory and timetable, or a one-line error and exit 2."""
    settings = settings_or_exit(config)
    inv = inventory_or_exit(inventory or settings.inventory)
    try:
        tt = timetable_mod.load(settings.timetable)
    except DataFileError as exc:
        fail(str(exc))
    return settings, inv, tt


def day_or_exit(
    tt: timetable_mod.Timetable, paper: str | None, lead_min: float, speed: float, real_clock: bool
) -> tuple[DrillClock, timetable_mod.Timetable]:
    if real_clock and speed != 1:
        fail("--real-clock runs at --speed 1 only")
    try:
        return start_day(tt, paper, timedelta(minutes=lead_min), speed, real_clock)
    except KeyError:
        fail(f"--paper {paper}: no such paper in the timetable ({', '.join(p.id for p in tt.papers)})")


def fds_or_exit(mode: Mode, devices: int) -> None:
    """In device mode every device holds a socket: raise the soft fd limit, or refuse clearly."""
    if mode is not Mode.DEVICE:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = devices + 256
    if soft < wanted <= hard or (soft < wanted and hard == resource.RLIM_INFINITY):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    elif soft < wanted:
        fail(f"--mode device needs {wanted} file descriptors for {devices} devices, the limit is {hard}: "
             "use --mode gateway (one connection per site) or raise `ulimit -n`")


def run_engine(engine: Engine, links: int, duration_s: float, quiet: bool,
               more: Callable[[float], str] | None = None, tz: tzinfo | None = None) -> Stats:
    """Run ``engine`` with a progress display until it ends, SIGINT or SIGTERM (``more``: more
    to show at a simulated moment, ``tz``: the offset to show simulated time in)."""
    async def main() -> Stats:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        with reporter(links, duration_s, quiet, more, tz) as rep:
            return await engine.run(rep.connected, rep.tick)

    try:
        return asyncio.run(main())
    except ConnectRefused as exc:
        fail(str(exc), code=3)


@app.callback()
def simulate(
    config: ConfigOption = None,
    inventory: InventoryOption = None,
    mode: ModeOption = Mode.GATEWAY,
    speed: SpeedOption = 1.0,
    interval: IntervalOption = 5,
    duration: Annotated[float, typer.Option(min=0, help="simulated minutes to run; 0 = until Ctrl-C")] = 0,
    rounds: Annotated[int, typer.Option(min=0, help="reports per device, then stop (instead of --duration)")] = 0,
    paper: PaperOption = None,
    lead: LeadOption = 10,
    real_clock: RealClockOption = False,
    drill: Annotated[bool, typer.Option(help="tag every payload \"drill\": true")] = False,
    stats: Annotated[Path | None, typer.Option(help="write the run's figures here as JSON")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Publish every inventory device's telemetry and events on the contract's topics.

    Behaviour follows the timetable (settings.timetable): gate passes surge 60 to 15 minutes
    before each paper and stop once it starts; jammers are on from 15 minutes before each paper
    until its end (off in listening windows); cameras hold steady; detector batteries drain;
    storage-room mains stays at 220 V ± 5 %.

    Time: unless --real-clock, the timetable is shifted so that the moment --lead minutes before
    --paper is now (default 10: jammers already on, the paper about to start; --lead 75 opens
    with the gates' entry surge), and simulated time runs --speed times faster than the wall clock. Device
    timestamps are simulated time, so in a compressed run each point's skew_ms is how far the
    simulated day has run ahead of the wall clock, not a clock fault (run at --speed 1 to exercise
    clock rules); the run is refused when it would run further ahead than ingest accepts
    (ingest.max_clock_offset_s, 24 h). Progress (simulated time, rate, lag, memory) is shown on
    stderr; --stats writes the figures as JSON.

    Identities: --mode gateway sends through one connection per site (user gw-<site>), which is
    what scales to a province (1,000 connections for 100k devices); --mode device gives every
    device its own connection, credentials and retained Last Will "offline" on its status topic
    (one file descriptor each: mind `ulimit -n`).
    """
    settings, inv, tt = load_world(config, inventory)
    clock, shifted = day_or_exit(tt, paper, lead, speed, real_clock)
    if rounds:
        duration = rounds * interval / 60
    if speed > 1 and not duration:
        fail("--speed above 1 needs --duration: a compressed run without end would run ahead of the wall clock "
             "until ingest refuses its timestamps")
    problem = check_span(duration * 60, speed, settings.ingest.max_clock_offset_s)
    if problem:
        fail(problem)
    fds_or_exit(mode, len(inv.devices))
    engine = Engine(settings, inv, shifted, clock, Options(mode, interval, duration * 60, drill))
    links = len(inv.sites) if mode is Mode.GATEWAY else len(inv.devices)
    result = run_engine(engine, links, duration * 60, quiet)
    summary = result.summary()
    first = shifted.for_site(inv.sites[0].id)
    summary["clock"] = {"wall0": clock.wall_start, "sim0": clock.start, "speed": clock.speed,
                        "first_paper_start": first[0].start.timestamp() if first else None}
    if stats is not None:
        stats.write_text(json.dumps(summary, indent=2) + "\n")
    typer.echo(f"published {result.sent} messages for {result.devices} devices in {result.elapsed_s:.1f} s "
               f"({summary['msg_rate']:,.0f} msg/s, lag p99 ≤ {summary['lag_p99_le_s']} s, "
               f"dropped {result.dropped}, peak RSS {summary['peak_rss_mb']:.0f} MB)")
