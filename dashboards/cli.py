"""``examwatch dashboards``: build, check, verify and push the Grafana dashboards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dashboards import build as build_mod
from dashboards import push as push_mod
from dashboards import timetable_feed
from dashboards.macros import Context
from dashboards.verify import run_dashboard
from examwatch import timetable as timetable_mod
from examwatch.cli import ConfigOption, fail, settings_or_exit
from examwatch.datafile import DataFileError
from examwatch.influx import Influx, InfluxRejected, InfluxUnavailable

app = typer.Typer(
    help="Grafana dashboards as code: the district wall, site, drill and ingest health.", no_args_is_help=True
)

OutOption = Annotated[Path, typer.Option(help="directory of the dashboards' JSON")]


@app.command("build")
def build(
    out: OutOption = build_mod.JSON_DIR,
    check: Annotated[bool, typer.Option("--check", help="change nothing; exit 1 if the JSON is stale")] = False,
) -> None:
    """Regenerate the dashboards' JSON from the Python definitions (commit the result).

    With --check, only report which files regenerating would change.
    """
    if check:
        stale = build_mod.stale(out)
        if stale:
            fail(
                f"stale dashboard JSON in {out}: {', '.join(stale)} (run `examwatch dashboards build`)",
                code=1,
            )
        typer.echo(f"{out}: up to date")
        return
    for path in build_mod.write(out):
        typer.echo(f"wrote {path}")


@app.command("push")
def push(
    url: Annotated[str, typer.Option(help="Grafana base URL, e.g. http://grafana:3000")],
    token: Annotated[str, typer.Option(envvar="GRAFANA_TOKEN", help="service-account token (or GRAFANA_TOKEN)")],
    out: OutOption = build_mod.JSON_DIR,
    folder: Annotated[str, typer.Option(help="Grafana folder title")] = push_mod.FOLDER_TITLE,
) -> None:
    """Upload the committed dashboards to a running Grafana (needs the `grafana` extra).

    The datasource they query (uid examwatch-influxql) comes from the provisioning file
    dashboards/provisioning/datasources/examwatch.yaml.
    """
    docs = build_mod.load(out)
    if not docs:
        fail(f"no dashboard JSON in {out} (run `examwatch dashboards build`)")
    try:
        urls = push_mod.push(url, token, docs, folder)
    except push_mod.PushError as exc:
        fail(str(exc), code=3)
    for u in urls:
        typer.echo(f"pushed {u}")


@app.command("timetable")
def timetable(
    config: ConfigOption = None,
    path: Annotated[Path | None, typer.Option("--timetable", help="timetable file (default: settings)")] = None,
    starting_in: Annotated[
        float | None,
        typer.Option(help="shift the timetable so its first paper starts this many minutes from now"),
    ] = None,
) -> None:
    """Write the timetable into InfluxDB, which feeds the wall's next-paper countdown."""
    settings = settings_or_exit(config)
    try:
        tt = timetable_mod.load(path or settings.timetable)
    except DataFileError as exc:
        fail(str(exc))
    if starting_in is not None:
        tt = timetable_feed.starting_in(tt, starting_in)
    try:
        n = timetable_feed.write(Influx(settings.influx), tt)
    except (InfluxUnavailable, InfluxRejected) as exc:
        fail(f"InfluxDB: {exc}", code=3)
    typer.echo(f"wrote {n} papers to {settings.influx.database}.{timetable_feed.MEASUREMENT}")


@app.command("verify")
def verify(
    config: ConfigOption = None,
    out: OutOption = build_mod.JSON_DIR,
    interval: Annotated[str, typer.Option(help="Grafana's $__interval")] = "10s",
    time_range: Annotated[str, typer.Option("--range", help="dashboard time range, back from now")] = "1h",
) -> None:
    """Run every panel's queries on InfluxDB with Grafana's macros expanded; list the empty ones.

    Exit 1 when any panel would show "No data" or an error.
    """
    settings = settings_or_exit(config)
    influx = Influx(settings.influx)
    ctx = Context(range=time_range, interval=interval)
    bad = 0
    try:
        for name, doc in build_mod.load(out).items():
            for r in run_dashboard(doc, influx, ctx):
                status = "ok" if r.ok else (r.error or "NO DATA")
                bad += not r.ok
                typer.echo(f"{name:20} {r.panel[:40]:40} {r.ref:5} {r.rows:5} rows  {status}")
    except (InfluxUnavailable, LookupError) as exc:
        fail(str(exc), code=3)
    if bad:
        fail(f"{bad} queries returned no data", code=1)
