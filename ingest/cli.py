"""``examwatch ingest``: run an ingest worker (this typer form is what ``examwatch --help`` lists;
the ``examwatch`` launcher starts ``ingest.main`` directly, without loading the full command line)."""

from __future__ import annotations

from typing import Annotated

import typer

from examwatch.cli import ConfigOption, LogLevel, LogLevelOption
from ingest import main

app = typer.Typer(help="MQTT → validated points → InfluxDB.", invoke_without_command=True)


@app.callback()
def ingest(
    config: ConfigOption = None,
    worker: Annotated[
        str, typer.Option(help="stable worker name: MQTT client id ingest-<worker> and its spool directory")
    ] = "1",
    log_level: LogLevelOption = LogLevel.INFO,
) -> None:
    """Consume exam/v1/# through the shared subscription $share/ingest, validate every message
    against the device contract and the inventory, and write points to InfluxDB in batches.

    A message is acknowledged only once its point is in InfluxDB or in the on-disk spool, so a
    crash or an InfluxDB outage loses nothing. Bad messages become `ingest_reject` records with
    their reason. Run several workers with different --worker names to split the load. SIGTERM
    flushes, acknowledges and disconnects. Prometheus metrics are served on ingest.metrics_port.
    """
    code = main.serve(config, worker, log_level.value)
    if code:
        raise typer.Exit(code)
