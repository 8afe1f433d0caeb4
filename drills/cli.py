"""``examwatch drill``: check a scenario, set up its clock, run it against the backend and score it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drills import evidence, markdown, sms
from drills import scenario as sc
from drills.operator import Api, Operator
from drills.plan import Plan, build
from drills.record import read
from drills.report import Report
from drills.runner import Drill, describe, integrity, prepare, settle
from drills.score import Context, score
from drills.times import clock_text, moments, parse_offset
from examwatch import roster as roster_mod
from examwatch.cli import ConfigOption, fail
from examwatch.clock import DrillClock
from examwatch.datafile import DataFileError
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable
from examwatch.roster import Roster
from examwatch.settings import Settings
from examwatch.store import open_store
from simulators import timetable_out as timetable_mod
from simulators.cli import InventoryOption, ModeOption, SpeedOption, World, fds_or_exit, load_world, run_engine
from simulators.engine import Mode

SOURCES = ("store", "ingest")
app = typer.Typer(help="Drills (应急演练): inject faults into a simulated district and score what people saw.",
                  no_args_is_help=True)
ScenarioArg = Annotated[Path, typer.Argument(help="scenario YAML file (see config/scenarios/)")]
JsonOption = Annotated[Path | None, typer.Option("--json", help="also write the report here as JSON")]
ReportOption = Annotated[Path | None, typer.Option("--report", help="write the report here as Markdown")]
SmscLogOption = Annotated[Path | None, typer.Option(
    help="fakesmsc's output: the SMS that reached phones (default: the notifier's delivery reports)")]


def _load(config: Path | None, inventory: Path | None, scenario: Path) -> tuple[World, Roster, sc.Scenario]:
    settings, inv, tt = load_world(config, inventory)
    try:
        roster = roster_mod.load(settings.notify.roster, {s.id for s in inv.sites})
        return (settings, inv, tt), roster, sc.load(scenario, inv, tt, roster)
    except DataFileError as exc:
        fail(str(exc))


@app.command("check")
def check(scenario: ScenarioArg, config: ConfigOption = None, inventory: InventoryOption = None) -> None:
    """Validate a scenario against the inventory, timetable and roster; a problem is file:line: field."""
    (_, inv, tt), _, s = _load(config, inventory, scenario)
    plan = build(s, inv, tt, 1.0)
    typer.echo(f"{scenario}: {s.name}: {len(s.faults)} faults of {len({f.type for f in s.faults})} types, "
               f"{len(s.actions)} actions, {len(plan.expectations())} expected alarms, "
               f"{len(s.expect_quiet)} quiet spans: OK")


@app.command("clock")
def clock(
    scenario: ScenarioArg,
    speed: Annotated[float, typer.Option(min=1, max=1000, help="drill-clock seconds per real second")] = 60.0,
    lead: Annotated[str, typer.Option(help="real time from now until the drill's first moment, e.g. 30s, 2m")] = "30s",
    config: ConfigOption = None,
    inventory: InventoryOption = None,
) -> None:
    """Print the [clock] section that runs this scenario compressed: every service of the drill's stack
    reads it (append it to the stack's settings file), then `examwatch drill run` with the same file.

    The clock starts at the scenario's first moment on the shipped timetable and stands there until
    --lead from now, giving the services time to start.
    """
    (_, inv, tt), _, s = _load(config, inventory, scenario)
    try:
        lead_s = parse_offset(lead).total_seconds()
    except ValueError as exc:
        fail(f"--lead: {exc}")
    plan = build(s, inv, tt, speed)
    tz = plan.tz()
    start = datetime.fromtimestamp(plan.start, tz)
    wall = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=max(lead_s, 0))
    span = plan.end - plan.start
    typer.echo(f"# drill {s.name}: {start:%Y-%m-%d %H:%M:%S} to {clock_text(plan.end, tz)} "
               f"({timedelta(seconds=round(span))} of exam day) at {speed:g}× takes "
               f"{timedelta(seconds=round(span / speed))} from {wall:%H:%M:%S} UTC\n"
               f"[clock]\nstart = \"{start.isoformat()}\"\nwall_start = \"{wall.isoformat()}\"\nspeed = {speed:g}")


def _next_event(plan: Plan) -> Callable[[float], str]:
    """Progress text at a drill moment: the time of day, faults injected, the next thing due."""
    tz = plan.tz()
    site = plan.inventory.sites[0].id
    events = sorted([(f.start, f"{f.type} {f.subject}") for f in plan.faults]
                    + [(a.at, f"{a.action.type} by {a.action.by}") for a in plan.actions]
                    + [(m.at, m.label()) for m in moments(plan.timetable, site)])

    def text(t: float) -> str:
        done = sum(1 for f in plan.faults if f.start <= t)
        nxt = next(((at, what) for at, what in events if at > t), None)
        upcoming = f" | next {clock_text(nxt[0], tz)} {nxt[1]}" if nxt else ""
        return f"{clock_text(t, tz)} | faults {done}/{len(plan.faults)}{upcoming}"

    return text


def _finish(report: Report, console: Console, report_path: Path | None, json_path: Path | None) -> None:
    console.print(f"[bold]Drill {report.scenario}[/bold]: {report.title}")
    console.print(f"{len(report.faults)} faults, {report.alarms_seen} alarms fired, "
                  f"{len(report.false_alarms)} false alarms")
    for p in report.problems[:30]:
        console.print(f"  [red]✗[/red] {p}", markup=True, highlight=False)
    for w in report.warnings:
        console.print(f"  [yellow]![/yellow] {w}", markup=True, highlight=False)
    if report.false_alarms:
        console.print("false alarms (first 10): " + "; ".join(
            f"{a.rule} {a.subject} {a.severity} at {report.hhmm(a.fired_at)} ({a.moment})"
            for a in report.false_alarms[:10]), highlight=False)
    console.print(f"[bold]{report.verdict}[/bold]", highlight=False)
    if report_path is not None:
        report_path.write_text(markdown.render(report), encoding="utf-8")
    if json_path is not None:
        report.write_json(json_path)
    raise typer.Exit(0 if report.passed else 1)


def _score_store(settings: Settings, drill_plan: Plan, roster: Roster, smsc_log: Path | None,
                 to_clock: Callable[[float], float], actions: list, problems: list[str],  # type: ignore[type-arg]
                 warnings: list[str]) -> Report:
    store, notify_store = open_store(settings.store.url), open_store(settings.notify_store_url)
    record = read(store, notify_store, drill_plan.start - drill_plan.interval, drill_plan.end)
    received: list[sms.Received] | None
    if smsc_log is not None:
        received, source = sms.fakesmsc_log(smsc_log), f"the SMS at the SMS centre ({smsc_log})"
    elif any(n.delivery for n in record.notifications):
        received, source = None, "the delivery reports in the outbox"
    else:  # neither a log nor delivery reports: what the gateway accepted is all there is to go by
        received, source = None, "the outbox (no SMS centre log, no delivery reports: accepted counts as received)"
    ctx = Context(roster, settings.notify.timezone, settings.notify.all_clear, received, source,
                  to_clock if smsc_log else (lambda t: t), actions, problems, warnings)
    return score(drill_plan, record, ctx)


def _people(s: sc.Scenario, scenario: Path, api_url: str | None, api_token: str | None,
            api_token_file: Path | None, mo_smsc: str | None) -> tuple[Api | None, sms.MoLink | None]:
    """How people's actions reach the backend: the API and the SMS centre's reply link, or a clear refusal."""
    token = api_token
    if token is None and api_token_file is not None:
        if not api_token_file.is_file():
            fail(f"--api-token-file: {api_token_file} is not a file")
        token = api_token_file.read_text(encoding="utf-8").strip()
    needs_api = [a for a in s.actions if getattr(a, "via", "api") == "api"]
    if needs_api and (api_url is None or not token):
        fail(f"{scenario}: {len(needs_api)} actions go through the API: give --api-url and --api-token")
    if any(getattr(a, "via", "") == "sms" for a in s.actions) and mo_smsc is None:
        fail(f"{scenario}: an ack by SMS reply needs --mo-smsc HOST:PORT")
    mo = None
    if mo_smsc is not None:
        try:
            mo = sms.MoLink(*sms.parse_address(mo_smsc))
        except ValueError as exc:
            fail(f"--mo-smsc: {exc}")
    return (Api(api_url, token) if api_url and token else None), mo


@app.command("run")
def run(
    scenario: ScenarioArg,
    config: ConfigOption = None,
    inventory: InventoryOption = None,
    mode: ModeOption = Mode.GATEWAY,
    speed: SpeedOption = 1.0,
    interval: Annotated[int | None, typer.Option(min=1, help="report interval, drill seconds (default: the "
                                                            "scenario's)")] = None,
    source: Annotated[str | None, typer.Option(
        help="store (the default): the alarm store and the SMS received; ingest: a diagnostic, the faults' "
             "evidence in InfluxDB (the default on the wall clock above --speed 1, where the store cannot be "
             "scored)")] = None,
    smsc_log: SmscLogOption = None,
    api_url: Annotated[str | None, typer.Option(help="the API, for people's acks, resolves and silences")] = None,
    api_token: Annotated[str | None, typer.Option(envvar="EXAMWATCH_DRILL_API_TOKEN",
                                                  help="an admin token: the drill issues each person a token")] = None,
    api_token_file: Annotated[Path | None, typer.Option(help="a file holding that token")] = None,
    mo_smsc: Annotated[str | None, typer.Option(help="HOST:PORT of Kannel's receive-only fake SMSC, for SMS "
                                                     "replies")] = None,
    report_path: ReportOption = None,
    json_path: JsonOption = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    write_timetable: Annotated[
        Path | None, typer.Option(help="wall clock only: write the timetable shifted to this drill's day here")
    ] = None,
) -> None:
    """Run a drill: simulate the district with the scenario's faults and people's actions, then score it.

    With a drill clock in the settings ([clock], from `examwatch drill clock`) the whole stack runs
    on it: the exam day's own times, compressed by its speed. Without one the timetable is shifted
    so the drill starts now (--write-timetable writes it for the services) and --speed compresses
    only the simulator.

    Scored (--source store) from what people see: the alarm store, the notifier's outbox and the
    SMS that reached phones (--smsc-log, or delivery reports). Every alarm and SMS must belong to
    an injected fault: the others are false alarms and fail the drill. Exit 0 when it passes, 1
    when it fails, 2 for a bad scenario or settings, 3 when a server refuses us.
    """
    (settings, inv, tt), roster, s = _load(config, inventory, scenario)
    on_clock = isinstance(settings.clock.make(), DrillClock)
    if source is None:
        source = "store" if on_clock or speed == 1.0 else "ingest"
    if source not in SOURCES:
        fail(f"--source must be one of {', '.join(SOURCES)}")
    if on_clock and speed != 1.0:
        fail("--speed: the drill clock's speed is [clock] speed in the settings")
    if source == "store" and not on_clock and speed != 1.0:
        fail("--source store at --speed above 1 needs the services on the drill's clock: set [clock] "
             "(`examwatch drill clock`), or run at --speed 1")
    api, mo = _people(s, scenario, api_url, api_token, api_token_file, mo_smsc)
    fds_or_exit(mode, len(inv.devices))
    try:
        drill = prepare(settings, inv, tt, s, mode, speed, interval)
    except DataFileError as exc:
        fail(str(exc))
    console = Console(stderr=True)
    console.print(describe(drill), highlight=False)
    if write_timetable is not None:
        timetable_mod.dump(drill.engine.timetable, write_timetable)
        console.print(f"wrote the drill's timetable to {write_timetable}")
    operator = Operator(drill.plan, drill.clock, open_store(settings.store.url),
                        open_store(settings.notify_store_url), roster, settings.notify.kannel_from, api, mo)
    operator.start()
    links = len(inv.sites) if mode is Mode.GATEWAY else len(inv.devices)
    try:
        stats = run_engine(drill.engine, links, drill.end - drill.start, quiet, _next_event(drill.plan),
                           drill.plan.tz())
    finally:
        operator.stop()
    problems, warnings = integrity(drill, stats)
    if source == "ingest":
        _finish(_ingest_report(settings, drill), Console(), report_path, json_path)
    if not settle(open_store(settings.notify_store_url), drill):
        console.print("warning: the notifier still had SMS queued 30 s after the drill ended")
    to_clock = drill.clock.at_wall if drill.shared_clock else (lambda t: t)
    _finish(_score_store(settings, drill.plan, roster, smsc_log, to_clock, operator.results, problems,
                                warnings), Console(),
            report_path, json_path)


def _ingest_report(settings: Settings, drill: Drill) -> Report:
    # a wall-clock ingest stamps receive times on the wall; a drill-clock one on the drill clock
    to_clock = (lambda t: t) if drill.shared_clock else drill.clock.at_wall
    to_recv = (lambda t: t) if drill.shared_clock else drill.clock.wall_at
    try:
        influx = Influx(settings.influx)
        evidence.settle(influx, drill.plan)
        src = evidence.IngestEvidence(influx, drill.plan.interval, drill.plan.scenario.tail.total_seconds(),
                                      to_clock, to_recv, drill.clock.speed)
        return evidence.report(drill.plan, src)
    except (InfluxUnavailable, InfluxRejected) as exc:
        fail(f"cannot read the results from InfluxDB: {exc}", code=3)


@app.command("score")
def score_cmd(
    scenario: ScenarioArg,
    config: ConfigOption = None,
    inventory: InventoryOption = None,
    smsc_log: SmscLogOption = None,
    report_path: ReportOption = None,
    json_path: JsonOption = None,
) -> None:
    """Score a drill that ran on the settings' drill clock again, from the stores and the SMS log
    (people's actions are judged from the alarms' history only)."""
    (settings, inv, tt), roster, s = _load(config, inventory, scenario)
    clk = settings.clock.make()
    if not isinstance(clk, DrillClock):
        fail("score needs the drill's [clock] in the settings: it places the scenario on the day")
    plan = build(s, inv, tt, clk.speed)
    _finish(_score_store(settings, plan, roster, smsc_log, clk.at_wall, [], [], []), Console(), report_path,
            json_path)
