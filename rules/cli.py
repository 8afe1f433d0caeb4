"""``examwatch rules``: run the rules engine; ``ack``, ``resolve``, ``list``, ``history``, ``check``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from examwatch import timetable as timetable_mod
from examwatch.cli import (
    ConfigOption,
    LogLevel,
    LogLevelOption,
    fail,
    inventory_or_exit,
    or_exit,
    run_service,
    settings_or_exit,
    start_logging,
    store_or_exit,
)
from examwatch.clock import now_ns
from examwatch.rulebook import files as rulesfile
from examwatch.store import lifecycle
from examwatch.store.lifecycle import AlarmError, AlarmView
from rules import service

app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
ByOption = Annotated[str, typer.Option("--by", help="who does it (kept with the transition)")]
CommentOption = Annotated[str, typer.Option("--comment", help="why, what was done")]


@app.callback()
def rules(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_level: LogLevelOption = LogLevel.INFO,
) -> None:
    """Evaluate the rules on the live stream (with no subcommand), or manage alarms.

    Consumes exam/v1/# through $share/rules (user svc-rules); InfluxDB is never polled.

    Rules: rules.rules_dir holds one YAML file per device kind, plus site.yaml.

    Alarms: kept in the store, written to InfluxDB (alarm), retained on exam/v1/_alarm/...

    Readiness (T-30 min): kept, written to InfluxDB (readiness), retained on exam/v1/_readiness/{site}.

    A broken rules file stops the start with file:line: field: reason.

    SIGHUP reloads the rules keeping alarm state; SIGTERM commits and stops.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = config
        return
    start_logging(log_level)
    settings = settings_or_exit(config)
    inventory = inventory_or_exit(settings.inventory)
    timetable = or_exit(timetable_mod.load, settings.timetable)
    ruleset = or_exit(rulesfile.load_dir, settings.rules.rules_dir)
    run_service(lambda: service.run(settings, inventory, timetable, ruleset))


def _show(a: AlarmView) -> str:
    when = datetime.fromtimestamp(a.updated_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
    drill = " [drill]" if a.drill else ""
    return f"{a.id:>6} {a.state:<12} {a.severity:<8} {a.rule:<26} {a.subject:<18} {when}Z {a.message}{drill}"


@app.command("ack")
def ack(
    ctx: typer.Context,
    alarm_id: Annotated[int, typer.Argument(help="alarm id (see `list`)")],
    by: ByOption,
    comment: CommentOption = "",
) -> None:
    """Acknowledge an alarm: someone owns it now. Kept with who, when and the comment."""
    _step(lifecycle.acknowledge, ctx, alarm_id, by, comment)


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    alarm_id: Annotated[int, typer.Argument(help="alarm id (see `list`)")],
    by: ByOption,
    comment: CommentOption = "",
) -> None:
    """Resolve an alarm by hand (the engine resolves alarms whose condition clears by itself)."""
    _step(lifecycle.resolve, ctx, alarm_id, by, comment)


def _step(
    step: Callable[..., AlarmView], ctx: typer.Context, alarm_id: int, by: str, comment: str
) -> None:
    """Take one lifecycle step from the command line, stamped on the settings' clock, and show the alarm after it."""
    at_ns = now_ns(settings_or_exit(ctx.obj).clock.make())
    try:
        typer.echo(_show(step(store_or_exit(ctx.obj), alarm_id, by, comment, at_ns=at_ns)))
    except AlarmError as exc:
        fail(str(exc))


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="resolved alarms too")] = False,
    site: Annotated[str | None, typer.Option(help="only this site")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 200,
) -> None:
    """List alarms, newest first: id, state, severity, rule, subject, last change, message."""
    for a in lifecycle.list_alarms(store_or_exit(ctx.obj), active_only=not all_, site=site, limit=limit):
        typer.echo(_show(a))


@app.command("history")
def history(ctx: typer.Context, alarm_id: Annotated[int, typer.Argument(help="alarm id")]) -> None:
    """Every transition of an alarm: when, state, severity, by whom, comment, message."""
    for t in lifecycle.history(store_or_exit(ctx.obj), alarm_id):
        when = datetime.fromtimestamp(t.at_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        who = f"by {t.by}: {t.comment or '-'}"
        typer.echo(f"{alarm_id}.{t.seq} {when}Z {t.state:<12} {t.severity:<8} {who} | {t.message}")


@app.command("check")
def check(directory: Annotated[Path, typer.Argument(help="rules directory")] = Path("config/rules")) -> None:
    """Validate the rules files; any fault is reported as file:line: field: reason."""
    ruleset = or_exit(rulesfile.load_dir, directory)
    typer.echo(f"{directory}: {len(ruleset.rules)} rules: OK")
