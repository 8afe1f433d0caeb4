"""The ``examwatch`` command.

Domain commands (``broker-config``, ``inventory``) live here; each service adds its own
subcommand through the ``examwatch.commands`` entry-point group, so this package never
imports a service.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import sqlalchemy as sa
import typer
import yaml

from examwatch import broker, contract_doc, kannel, sample, timetable
from examwatch import inventory as inventory_mod
from examwatch.datafile import DataFileError
from examwatch.mqtt import ConnectRefused
from examwatch.settings import Settings, load_settings
from examwatch.store import open_store

P = ParamSpec("P")
T = TypeVar("T")

app = typer.Typer(
    name="examwatch",
    help="Telemetry backend for exam sites: ingest, rules, alarms, SMS, dashboards and drills.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Check or generate inventory files (sites, rooms, devices).", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")
timetable_app = typer.Typer(help="Check or shift timetable files (papers per site).", no_args_is_help=True)
app.add_typer(timetable_app, name="timetable")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="EXAMWATCH_CONFIG", help="settings TOML file (see config/examwatch.sample.toml)"
    ),
]


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


LogLevelOption = Annotated[LogLevel, typer.Option(case_sensitive=False, help="how much the service logs")]


def start_logging(level: LogLevel) -> None:
    """Log to stderr with time and logger name, as every service does."""
    logging.basicConfig(level=level.value, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a problem the user can fix as plain lines on stderr and exit; no traceback."""
    typer.echo(f"examwatch: {message}", err=True)
    raise typer.Exit(code)


def or_exit(load: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call a loader of something the user wrote (settings, inventory, rules, roster, scenario);
    a DataFileError becomes its one-line message on stderr and exit status 2."""
    try:
        return load(*args, **kwargs)
    except DataFileError as exc:
        fail(str(exc))


def run_service(run: Callable[[], None], *refusals: type[Exception]) -> None:
    """Run a service until it stops. The broker refusing it (or one of ``refusals``, such as an
    SMS gateway's) is its one-line message; a socket, file or store error ends it with
    ``stopped: …``; both exit with status 3."""
    refused: tuple[type[Exception], ...] = (ConnectRefused, *refusals)
    try:
        run()
    except refused as exc:
        fail(str(exc), code=3)
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        fail(f"stopped: {exc}", code=3)


def settings_or_exit(path: Path | None) -> Settings:
    return or_exit(load_settings, path)


def store_or_exit(config: Path | None) -> sa.Engine:
    """The state store named by the settings, migrated; exit 3 when it cannot be opened."""
    settings = settings_or_exit(config)
    try:
        return open_store(settings.store.url)
    except sa.exc.SQLAlchemyError as exc:
        fail(f"store {settings.store.url}: {exc}", code=3)


def inventory_or_exit(path: Path) -> inventory_mod.Inventory:
    return or_exit(inventory_mod.load, path)


@app.command("broker-config")
def broker_config(
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="directory for mosquitto.conf, passwd and acl")] = Path("var/broker"),
) -> None:
    """Generate Mosquitto's config, password file and ACL from the inventory.

    Every device may publish only under exam/v1/{site}/{kind}/{device}/; each site gateway
    only under its site; each service (svc-ingest, svc-rules, svc-api, svc-notifier) has its
    own password. Passwords are derived from the settings' secret. Run mosquitto with
    `mosquitto -c OUT/mosquitto.conf`.
    """
    settings = settings_or_exit(config)
    inv = inventory_or_exit(settings.inventory)
    files = broker.write(inv, settings.secret.get_secret_value(), settings.broker, out)
    typer.echo(f"wrote {files.conf}, {files.passwd} and {files.acl} for {len(broker.usernames(inv))} users")


@app.command("kannel-config")
def kannel_config(
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="directory for kannel.conf and kannel-inbound.conf")] = Path("var/kannel"),
    fake_smsc_port: Annotated[int | None, typer.Option(min=1, max=65535, help="demo/tests: Kannel's fake SMSC "
                                                       "for texts out (fakesmsc -r PORT)")] = None,
    phones_port: Annotated[int | None, typer.Option(min=1, max=65535, help="demo/tests: a fake SMSC that "
                                                    "replies from phones come in on")] = None,
    smsc_include: Annotated[Path | None, typer.Option(help="production: a file with your `group = smsc` "
                                                      "connection(s), included as is")] = None,
    admin_port: Annotated[int | None, typer.Option(min=1, max=65535, help="default: sendsms port + 1")] = None,
    box_port: Annotated[int | None, typer.Option(min=1, max=65535, help="default: sendsms port + 2")] = None,
    spool: Annotated[Path | None, typer.Option(help="Kannel's message store (default OUT/spool)")] = None,
    logs: Annotated[Path | None, typer.Option(help="bearerbox.log and the smsbox logs (default OUT)")] = None,
) -> None:
    """Generate Kannel's configuration from the settings: OUT/kannel.conf (bearerbox and the
    sending smsbox) and OUT/kannel-inbound.conf (the receiving smsbox).

    The notifier sends through its sendsms-user (notify.kannel_url, kannel_username,
    kannel_password) on the sending smsbox. Every SMS received, and every delivery report, goes to
    the receiving smsbox: replies are posted to the API's /sms/reply (api.callback_url), whose
    answer is the reply SMS. Name --fake-smsc-port (and --phones-port for replies) for the demo
    and tests, or --smsc-include for a real SMSC (each of its `group = smsc` needs an smsc-id).
    Run `bearerbox OUT/kannel.conf`, `smsbox OUT/kannel.conf` and `smsbox OUT/kannel-inbound.conf`.
    """
    settings = settings_or_exit(config)
    out = out.resolve()
    try:
        lay = kannel.layout(settings, spool_dir=(spool or out / "spool").resolve(), log_dir=(logs or out).resolve(),
                            admin_port=admin_port, box_port=box_port, fake_smsc_port=fake_smsc_port,
                            phones_port=phones_port, smsc_include=smsc_include.resolve() if smsc_include else None)
    except kannel.KannelConfigError as exc:
        fail(f"{config or 'settings'}: {exc}")
    path = kannel.write(lay, out)
    typer.echo(f"wrote {path} and {path.with_name(kannel.INBOUND_CONF)}: sendsms on 127.0.0.1:{lay.sendsms_port}, "
               f"replies to {lay.api_url}{kannel.REPLY_PATH}")


@inventory_app.command("check")
def inventory_check(path: Annotated[Path, typer.Argument(help="inventory YAML file")]) -> None:
    """Validate an inventory file; any fault is reported with its line and field."""
    inv = inventory_or_exit(path)
    devices = inv.devices
    typer.echo(f"{path}: {len(inv.sites)} sites, {len(devices)} devices: OK")


@inventory_app.command("sample")
def inventory_sample(
    formal: Annotated[int, typer.Option(min=1, help="formal sites")] = 18,
    backup: Annotated[int, typer.Option(min=0, help="backup sites")] = 3,
    rooms: Annotated[int, typer.Option(min=1, max=99, help="exam rooms per site")] = 30,
    district: Annotated[str, typer.Option(help="district name")] = "海淀区",
) -> None:
    """Print a generated district inventory (the shipped sample is the defaults) as YAML."""
    data = sample.district(formal, backup, rooms, district)
    sample.dump(data, sys.stdout)


@timetable_app.command("check")
def timetable_check(path: Annotated[Path, typer.Argument(help="timetable YAML file")]) -> None:
    """Validate a timetable file; any fault is reported with its line and field."""
    tt = or_exit(timetable.load, path)
    typer.echo(f"{path}: {len(tt.papers)} papers, first {tt.ordered[0].start.isoformat()}: OK")


@timetable_app.command("shift")
def timetable_shift(
    path: Annotated[Path, typer.Argument(help="timetable YAML file")],
    starting_in: Annotated[float, typer.Option(help="minutes from now to the first paper's start")] = 10.0,
    out: Annotated[Path | None, typer.Option(help="write here instead of standard output")] = None,
) -> None:
    """Write the timetable moved so its first paper starts --starting-in minutes from now.

    For demos and rehearsals: the simulator, the rules engine and the wall's countdown then agree
    on a day that runs now. Every paper keeps its length and its place relative to the first.
    """
    tt = or_exit(timetable.load, path)
    first = tt.ordered[0].start
    target = (datetime.now(first.tzinfo) + timedelta(minutes=starting_in)).replace(microsecond=0)
    moved = tt.shifted(target - first)
    text = "# Shifted by `examwatch timetable shift`.\n" + yaml.safe_dump(
        moved.model_dump(mode="json"), allow_unicode=True, sort_keys=False
    )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@app.command("contract")
def contract() -> None:
    """Print the device contract (topics, every payload field, bounds and meaning) as Markdown."""
    typer.echo(contract_doc.render(), nl=False)


def main() -> None:
    for ep in entry_points(group="examwatch.commands"):
        app.add_typer(ep.load(), name=ep.name)
    app()
