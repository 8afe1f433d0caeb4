"""The ``examwatch`` command.

Domain commands (``broker-config``, ``inventory``) live here; each service adds its own
subcommand through the ``examwatch.commands`` entry-point group, so this package never
imports a service.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from examwatch import broker, contract_doc, sample
from examwatch import inventory as inventory_mod
from examwatch.datafile import DataFileError
from examwatch.settings import Settings, load_settings

app = typer.Typer(
    name="examwatch",
    help="Telemetry backend for exam sites: ingest, rules, alarms, SMS, dashboards and drills.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Check or generate inventory files (sites, rooms, devices).", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="EXAMWATCH_CONFIG", help="settings TOML file (see config/examwatch.sample.toml)"
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a problem the user can fix as plain lines on stderr and exit; no traceback."""
    typer.echo(f"examwatch: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except DataFileError as exc:
        fail(str(exc))


def inventory_or_exit(path: Path) -> inventory_mod.Inventory:
    try:
        return inventory_mod.load(path)
    except DataFileError as exc:
        fail(str(exc))


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


@app.command("contract")
def contract() -> None:
    """Print the device contract (topics, every payload field, bounds and meaning) as Markdown."""
    typer.echo(contract_doc.render(), nl=False)


def main() -> None:
    for ep in entry_points(group="examwatch.commands"):
        app.add_typer(ep.load(), name=ep.name)
    app()
