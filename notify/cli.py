"""``examwatch notify``: run the notifier; ``check`` a roster, ``status``, ``silence add/list/expire``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, cast

import sqlalchemy as sa
import typer

from examwatch import roster
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
)
from examwatch.clock import now_ns
from examwatch.store import open_store, silences
from examwatch.store.notify_models import Notification, NotifyHealth
from examwatch.store.silences import SilenceError, SilenceView
from notify import providers

app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
silence_app = typer.Typer(help="Silences and maintenance windows: mute notifications, keep the records.",
                          no_args_is_help=True)
app.add_typer(silence_app, name="silence")
ByOption = Annotated[str, typer.Option("--by", help="who does it (kept with the silence)")]


@app.callback()
def notify(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_level: LogLevelOption = LogLevel.INFO,
) -> None:
    """Send SMS for alarms (with no subcommand), or manage silences and look at the outbox.

    The notifier consumes the alarm transitions the rules engine publishes on
    exam/v1/_alarm/# (user svc-notifier, shared subscription $share/notify, persistent session)
    and routes each by the duty roster (examwatch.roster, notify.roster): site, device kind and severity, in
    levels. Every message is stored in the outbox before it is sent through notify.provider
    (Kannel sendsms or an Apprise URL), retried with backoff while the gateway is down, never
    twice for the same transition and phone, and rate-limited per phone. Critical alarms are
    repeated every notify.remind_every_s and escalate to the next level after
    notify.escalate_after_s until someone acknowledges them. Silences mute messages and keep
    the records; drill alarms go only to drill routes, marked 【演练】. A bad roster or provider
    setting stops the start with one line naming it.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = config
        return
    from notify import service  # noqa: PLC0415 - subcommands need not load paho and the service

    start_logging(log_level)
    settings = settings_or_exit(config)
    inventory = inventory_or_exit(settings.inventory)
    duty = or_exit(roster.load, settings.notify.roster, {s.id for s in inventory.sites})
    run_service(lambda: service.run(settings, inventory, duty), providers.ProviderError)


def _notify_store(config: Path | None) -> sa.Engine:
    """The notifier's own store (``notify.store_url``, or the shared one when that is empty), migrated."""
    settings = settings_or_exit(config)
    url = settings.notify_store_url
    try:
        return open_store(url)
    except sa.exc.SQLAlchemyError as exc:
        fail(f"notifier store {url}: {exc}", code=3)


def _clock_now_ns(config: Path | None) -> int:
    """Now on the clock the notifier judges by (a drill's, when [clock] sets one)."""
    return now_ns(settings_or_exit(config).clock.make())


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="roster YAML file")] = Path("config/roster.yaml"),
    inventory: Annotated[Path | None, typer.Option(help="inventory whose sites the routes may name")] = None,
) -> None:
    """Validate a roster file; any fault is reported as file:line: field: reason."""
    sites = {s.id for s in inventory_or_exit(inventory).sites} if inventory is not None else None
    r = or_exit(roster.load, path, sites)
    typer.echo(f"{path}: {len(r.people)} people, {len(r.routes)} routes, {len(r.labels)} labels: OK")


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Provider health, the outbox by status, and the silences in force."""
    store = _notify_store(ctx.obj)
    n, h = cast(sa.Table, Notification.__table__), cast(sa.Table, NotifyHealth.__table__)
    with store.connect() as conn:
        for row in conn.execute(sa.select(h)):
            state = "ok" if row.ok else "DOWN"
            typer.echo(f"provider {row.provider}: {state} ({row.detail}) at {_when(row.at_ns)}")
        by_status = sa.select(n.c.status, sa.func.count()).group_by(n.c.status)
        counts: dict[str, int] = {str(r[0]): int(r[1]) for r in conn.execute(by_status)}
    typer.echo("outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))
    for s in silences.list_silences(store, now_ns=_clock_now_ns(ctx.obj)):
        typer.echo(_show(s))


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _show(s: SilenceView) -> str:
    ended = f" (ended early by {s.expired_by})" if s.expired_by else ""
    span = f"{_when(s.starts_ns)} → {_when(s.ends_ns)}{ended}"
    return f"{s.id:>5} {s.kind:<11} {s.describe():<40} {span} by {s.by}: {s.comment}"


@silence_app.command("add")
def silence_add(
    ctx: typer.Context,
    by: ByOption,
    site: Annotated[str | None, typer.Option(help="site id")] = None,
    room: Annotated[str | None, typer.Option(help="room id (with --site)")] = None,
    device: Annotated[str | None, typer.Option(help="device id")] = None,
    rule: Annotated[str | None, typer.Option(help="rule name")] = None,
    minutes: Annotated[float | None, typer.Option(min=0.01, help="lasts this many minutes from now")] = None,
    until: Annotated[datetime | None, typer.Option(help="ends then (ISO 8601; without a zone: UTC)")] = None,
    maintenance: Annotated[bool, typer.Option(help="record it as a maintenance window")] = False,
    comment: Annotated[str, typer.Option(help="why")] = "",
) -> None:
    """Mute notifications for alarms matching every matcher given, until an end time.

    Alarms are still raised and kept; their messages are stored as muted, naming the silence.
    """
    if (minutes is None) == (until is None):
        fail("give exactly one of --minutes or --until")
    now = _clock_now_ns(ctx.obj)
    if until is not None:
        ends = int((until if until.tzinfo else until.replace(tzinfo=UTC)).timestamp() * 1e9)
    else:
        ends = now + int((minutes or 0) * 60e9)
    try:
        s = silences.create(_notify_store(ctx.obj), ends_ns=ends, by=by, site=site, room=room, device=device, rule=rule,
                            kind="maintenance" if maintenance else "silence", comment=comment, now_ns=now)
    except SilenceError as exc:
        fail(str(exc))
    typer.echo(_show(s))


@silence_app.command("list")
def silence_list(ctx: typer.Context,
                 all_: Annotated[bool, typer.Option("--all", help="ended silences too")] = False) -> None:
    """List silences and maintenance windows, newest first."""
    for s in silences.list_silences(_notify_store(ctx.obj), active_only=not all_, now_ns=_clock_now_ns(ctx.obj)):
        typer.echo(_show(s))


@silence_app.command("expire")
def silence_expire(ctx: typer.Context, silence_id: Annotated[int, typer.Argument(help="silence id (see list)")],
                   by: ByOption) -> None:
    """End a silence now; notifications flow again for new messages."""
    try:
        typer.echo(_show(silences.expire(_notify_store(ctx.obj), silence_id, by, _clock_now_ns(ctx.obj))))
    except SilenceError as exc:
        fail(str(exc))
